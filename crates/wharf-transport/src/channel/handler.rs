//! The handler: the top of a pipeline, where the application lives.

use std::any::Any;
use std::fmt;
use std::io;

use crate::channel::codec::CodecError;
use crate::channel::context::Context;
use crate::channel::receive::Received;
use crate::tls::TlsError;

/// Application code for one connection, at the top of its pipeline.
///
/// Every inbound event of the channel arrives here, in this order:
/// [`on_active`](Self::on_active) once; then any number of
/// [`on_read`](Self::on_read) calls, each batch followed by
/// [`on_read_complete`](Self::on_read_complete), with
/// [`on_writability_changed`](Self::on_writability_changed) and
/// [`on_user_event`](Self::on_user_event) in between;
/// [`on_input_shutdown`](Self::on_input_shutdown) if the peer half-closes
/// and half-closure is allowed; [`on_error`](Self::on_error) on failure; and
/// [`on_inactive`](Self::on_inactive) once, last. Over TLS, `on_active`
/// comes once the handshake is done; a handshake that fails reaches the
/// handler as [`on_error`](Self::on_error) with [`ChannelError::Tls`] and
/// `on_inactive`, without `on_active`.
///
/// The outbound operations are on the [`Context`]: write, flush, close,
/// shutdown of the output.
///
/// Threading: a handler is created for each connection and called from one
/// thread at a time, never concurrently: its channel's event loop, or (in
/// the worker-pool modes) the worker thread the connection is pinned to.
/// The same handler runs unchanged in every reactor mode.
pub trait Handler: Send + 'static {
    /// Messages the handler receives, as decoded by the codec.
    type In: Send + 'static;
    /// Messages the handler writes, to be encoded by the codec.
    type Out: Send + 'static;

    /// The connection is established and registered.
    fn on_active(&mut self, ctx: &mut Context<'_, Self::Out>) {
        let _ = ctx;
    }

    /// One decoded message.
    fn on_read(&mut self, ctx: &mut Context<'_, Self::Out>, msg: Self::In);

    /// The channel has delivered everything one readiness event produced;
    /// a good place to flush replies written during the batch. Also called
    /// when bytes arrived that did not complete a message.
    fn on_read_complete(&mut self, ctx: &mut Context<'_, Self::Out>) {
        let _ = ctx;
    }

    /// The outbound queue crossed a water mark: `false` above the high one,
    /// `true` again below the low one. A producer should write while
    /// [`Context::is_writable`] and resume here. When the flag flips and
    /// flips back before the event is delivered (a producer on another
    /// thread), the event carries the flag as it is by then, so the same
    /// value can come twice in a row.
    fn on_writability_changed(&mut self, ctx: &mut Context<'_, Self::Out>, writable: bool) {
        let _ = (ctx, writable);
    }

    /// Something other than data happened: an idle timeout, a timer the
    /// handler scheduled, or an event fired through a
    /// [`ChannelHandle`](crate::ChannelHandle).
    fn on_user_event(&mut self, ctx: &mut Context<'_, Self::Out>, event: UserEvent) {
        let _ = (ctx, event);
    }

    /// The peer shut down its output (half-close) and the channel allows
    /// half-closure: nothing more will be read, writing still works. Without
    /// half-closure, end of input closes the channel instead.
    fn on_input_shutdown(&mut self, ctx: &mut Context<'_, Self::Out>) {
        let _ = ctx;
    }

    /// Something failed: a decode error, a write error, a reset by the
    /// peer. By default the channel is closed.
    ///
    /// After a decode error ([`ChannelError::Decode`]) the handler may
    /// still write and flush: the answer to a malformed or oversized
    /// request (`-ERR Protocol error`, `400 Bad Request`). The channel
    /// delivers no more input, sends what was written, then closes; while
    /// it flushes it reads and throws away what the peer is still sending,
    /// and once flushed it shuts its write side and lingers (see
    /// [`Lingering`](crate::Lingering)), so a peer still in the middle of
    /// sending reads the answer instead of a reset. Messages decoded before
    /// the bad bytes were delivered first. After an I/O error
    /// ([`ChannelError::Io`]) the connection is gone: writes are dropped.
    fn on_error(&mut self, ctx: &mut Context<'_, Self::Out>, error: &ChannelError) {
        let _ = error;
        ctx.close();
    }

    /// The channel is closed; the last event. Writes are no longer possible.
    fn on_inactive(&mut self, ctx: &mut Context<'_, Self::Out>) {
        let _ = ctx;
    }
}

/// An event that is not data. New kinds may be added: match with a
/// wildcard arm.
#[derive(Debug)]
#[non_exhaustive]
pub enum UserEvent {
    /// No read, no write, or neither happened for the configured time.
    Idle(IdleState),
    /// A timer set with [`Context::schedule`] fired; carries its token.
    Timer(u64),
    /// An event fired through [`ChannelHandle::fire_user_event`](crate::ChannelHandle::fire_user_event).
    Custom(Box<dyn Any + Send>),
    /// A receive started with [`Context::receive_file`] or
    /// [`Context::skip_input`] ended: all its bytes are in, or what
    /// stopped it.
    Received(Received),
    /// The server is shutting down gracefully: no new connections come,
    /// and this one is closed once the loop has been quiet for the quiet
    /// period (or at the deadline). A protocol handler that can tell a
    /// connection is idle between requests closes it now; one in the middle
    /// of a response finishes it and closes after.
    Shutdown,
}

/// Which kind of idleness an [`UserEvent::Idle`] reports (Netty's
/// `IdleStateEvent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdleState {
    /// Nothing was read for the reader timeout.
    ReaderIdle,
    /// Nothing was written for the writer timeout.
    WriterIdle,
    /// Neither happened for the all-idle timeout.
    AllIdle,
}

/// Why a channel failed.
#[derive(Debug)]
pub enum ChannelError {
    /// Reading, writing or connecting failed (a reset by the peer is
    /// `ConnectionReset`, a write to a closed peer `BrokenPipe`).
    Io(io::Error),
    /// The codec could not decode the input (the connection closes).
    Decode(CodecError),
    /// The codec could not encode a message the handler wrote; the message
    /// was dropped.
    Encode(CodecError),
    /// The TLS layer failed: the handshake (which then never made the
    /// channel active), or a record from the peer. The connection closes.
    Tls(TlsError),
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Io(e) => write!(f, "i/o error: {e}"),
            ChannelError::Decode(e) => write!(f, "decode error: {e}"),
            ChannelError::Encode(e) => write!(f, "encode error: {e}"),
            ChannelError::Tls(e) => write!(f, "tls error: {e}"),
        }
    }
}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ChannelError::Io(e) => Some(e),
            ChannelError::Decode(e) | ChannelError::Encode(e) => Some(e),
            ChannelError::Tls(e) => Some(e),
        }
    }
}
