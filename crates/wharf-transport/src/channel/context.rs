//! The handler's view of its channel: the outbound operations (write, flush,
//! close, shutdown of the output) and what it may ask about the channel.
//!
//! On the event loop a context acts at once: a write is encoded and queued,
//! a flush writes to the socket. On a worker thread (the worker-pool modes)
//! it records the operations and hands them to the loop in one task when the
//! handler returns; writes count against the water marks immediately (by the
//! codec's size estimate), so [`Context::is_writable`] tells the truth on
//! both sides.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wharf_buf::Allocator;

use crate::channel::connection::ConnCore;
use crate::channel::env::{ChannelEnv, ChannelMsg};
use crate::channel::handle::ChannelHandle;
use crate::channel::receive::{FileReceive, Receiving};
use crate::channel::shared::{ChannelId, ChannelShared};
use crate::tls::TlsInfo;
use crate::{EventLoopHandle, TimerId};

/// Encodes a handler's messages into a channel's outbound queue; implemented
/// by the pipeline, which owns the codec.
pub(crate) trait Encoder<O> {
    /// Encodes and queues `msg`; an encode error is recorded on the channel.
    fn encode_into(&mut self, msg: O, core: &mut ConnCore);

    /// Starts a receive around the codec: the input the codec holds is
    /// taken first (see `receive.rs`).
    fn start_receive(&mut self, receiving: Receiving, core: &mut ConnCore, env: &mut ChannelEnv);
}

/// An outbound operation made off the loop, applied there in order.
pub(crate) enum RemoteOp<O> {
    /// A message to encode and queue; carries the estimate it was counted
    /// with, released when the real bytes are queued.
    Write(O, usize),
    Flush,
    Close,
    ShutdownOutput,
    /// The handler (on its worker) switched reading on or off; the switch
    /// is already set, the loop follows (resumes reading, re-registers).
    ReadingSwitched,
    /// Reading on or off, as a [`ChannelHandle`](crate::ChannelHandle)
    /// asked: the worker, which holds decoded messages while reading is
    /// off, must hear of it too.
    SetAutoReadFromHandle(bool),
    Schedule(TimerId, Duration, u64),
    CancelTimer(TimerId),
    UserEvent(Box<dyn Any + Send>),
    Receive(Receiving),
}

/// Operations recorded off the loop for one channel.
pub(crate) struct RemoteOps<O> {
    pub shared: Arc<ChannelShared>,
    pub size_of: fn(&O) -> usize,
    pub allocator: Allocator,
    pub ops: Vec<RemoteOp<O>>,
    /// Whether an unwritable channel holds its decoded messages
    /// ([`ChannelConfig::backpressure`](crate::ChannelConfig::backpressure)).
    pub backpressure: bool,
    /// The handler closed the channel: it gets no more messages.
    pub closed: bool,
    /// Receives the handler started whose end it has not heard: each is
    /// told before `on_inactive`, also one the loop never saw (the channel
    /// closed while it was on its way).
    pub receives: usize,
}

impl<O: Send + 'static> RemoteOps<O> {
    pub(crate) fn new(
        shared: Arc<ChannelShared>,
        size_of: fn(&O) -> usize,
        allocator: Allocator,
        backpressure: bool,
    ) -> Self {
        RemoteOps {
            shared,
            size_of,
            allocator,
            ops: Vec::new(),
            backpressure,
            closed: false,
            receives: 0,
        }
    }

    /// Whether the handler takes decoded messages now: reading is on, the
    /// channel is writable (with backpressure on), and it was not closed.
    pub(crate) fn delivering(&self) -> bool {
        !self.closed && self.shared.auto_read() && (!self.backpressure || self.shared.is_writable())
    }

    /// Records a write and counts its estimate at once.
    pub(crate) fn write(&mut self, msg: O) {
        let estimate = (self.size_of)(&msg) + crate::channel::outbound::ENTRY_OVERHEAD;
        self.shared.add_pending(estimate);
        self.ops.push(RemoteOp::Write(msg, estimate));
    }

    /// Sends what was recorded to the loop as one task; `completes` says
    /// that applying it ends a worker task of the channel (see
    /// [`post_remote_ops`]). Returns whether anything was sent.
    pub(crate) fn send(&mut self, completes: bool) -> bool {
        if self.ops.is_empty() {
            return false;
        }
        post_remote_ops(&self.shared, std::mem::take(&mut self.ops), completes);
        true
    }
}

/// Hands operations made off the loop to the channel's loop, in one task.
/// If the channel or its loop is gone by then, the estimates of its writes
/// are released (the writes are dropped).
///
/// With `completes`, the operations are the result of a worker task of the
/// channel, which stays counted until they are applied: a channel waiting
/// to close does not close while replies are still on their way to it.
pub(crate) fn post_remote_ops<O: Send + 'static>(
    shared: &Arc<ChannelShared>,
    ops: Vec<RemoteOp<O>>,
    completes: bool,
) {
    let released: usize = ops
        .iter()
        .map(|op| match op {
            RemoteOp::Write(_, estimate) => *estimate,
            _ => 0,
        })
        .sum();
    shared.post(ChannelMsg::Ops {
        ops: Box::new(ops),
        owner: Arc::clone(shared),
        released,
        completes,
    });
}

/// The state of a context on the loop.
pub(crate) struct LocalCx<'a, O> {
    pub core: &'a mut ConnCore,
    pub env: &'a mut ChannelEnv,
    pub encoder: &'a mut dyn Encoder<O>,
    pub size_of: fn(&O) -> usize,
}

enum Inner<'a, O> {
    Local(LocalCx<'a, O>),
    Remote(&'a mut RemoteOps<O>),
}

/// A handler's view of its channel during one event.
///
/// Outbound operations: [`write`](Self::write), [`flush`](Self::flush),
/// [`write_and_flush`](Self::write_and_flush), [`close`](Self::close),
/// [`shutdown_output`](Self::shutdown_output). A write only queues; nothing
/// is sent before a flush (Netty's model), so a handler can write a batch
/// of replies and flush once in
/// [`on_read_complete`](crate::Handler::on_read_complete).
///
/// Threading: a context lives for one handler call, on the thread making it.
/// For anything later or from elsewhere, take a [`handle`](Self::handle).
pub struct Context<'a, O> {
    inner: Inner<'a, O>,
}

impl<O> std::fmt::Debug for Context<'_, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (shared, on_loop) = match &self.inner {
            Inner::Local(cx) => (&cx.core.shared, true),
            Inner::Remote(ops) => (&ops.shared, false),
        };
        f.debug_struct("Context")
            .field("channel", &shared.id)
            .field("on_loop", &on_loop)
            .finish()
    }
}

impl<'a, O: Send + 'static> Context<'a, O> {
    pub(crate) fn local(cx: LocalCx<'a, O>) -> Self {
        Context {
            inner: Inner::Local(cx),
        }
    }

    pub(crate) fn remote(ops: &'a mut RemoteOps<O>) -> Self {
        Context {
            inner: Inner::Remote(ops),
        }
    }

    fn shared(&self) -> &Arc<ChannelShared> {
        match &self.inner {
            Inner::Local(cx) => &cx.core.shared,
            Inner::Remote(ops) => &ops.shared,
        }
    }

    /// Queues a message to be encoded and sent at the next flush. Writes to
    /// a closed channel are dropped.
    pub fn write(&mut self, msg: O) {
        match &mut self.inner {
            Inner::Local(cx) => cx.encoder.encode_into(msg, cx.core),
            Inner::Remote(ops) => ops.write(msg),
        }
    }

    /// Sends everything written so far, as far as the socket takes it now;
    /// the rest goes when the socket becomes writable.
    pub fn flush(&mut self) {
        match &mut self.inner {
            Inner::Local(cx) => {
                cx.core.out.mark_flushed();
                cx.core.flush(cx.env);
            }
            Inner::Remote(ops) => ops.ops.push(RemoteOp::Flush),
        }
    }

    /// [`write`](Self::write) then [`flush`](Self::flush).
    pub fn write_and_flush(&mut self, msg: O) {
        self.write(msg);
        self.flush();
    }

    /// Closes the channel: reading stops, what was written is flushed and
    /// sent (for at most the channel's close timeout), then the socket is
    /// closed and [`on_inactive`](crate::Handler::on_inactive) follows.
    /// No [`on_read`](crate::Handler::on_read) follows a close, also for
    /// messages already decoded from the same read (a pipelined `QUIT`
    /// ends the session there: the requests behind it are not handled).
    /// Writes made before the socket actually closes are still sent. If
    /// queued data has to be thrown away (the close timeout or a shutdown
    /// deadline passed), the close sends a reset, so the peer cannot take
    /// the stream for complete; with `SO_LINGER` set to zero every close
    /// does.
    pub fn close(&mut self) {
        match &mut self.inner {
            Inner::Local(cx) => cx.core.request_close(),
            Inner::Remote(ops) => {
                ops.closed = true;
                ops.ops.push(RemoteOp::Close);
            }
        }
    }

    /// Shuts down the channel's output once what was written is sent (a
    /// half-close: the peer reads end of stream, this side keeps reading).
    pub fn shutdown_output(&mut self) {
        match &mut self.inner {
            Inner::Local(cx) => cx.core.request_shutdown_output(cx.env),
            Inner::Remote(ops) => ops.ops.push(RemoteOp::ShutdownOutput),
        }
    }

    /// Writes the next `receive.len` bytes of input into a file, around
    /// the pipeline: an upload stored without passing through the handler
    /// (and, on a plain socket, without a copy through user space:
    /// `splice` socket → pipe → file). Bytes the channel already holds
    /// undecoded go first; the rest is read from the socket as it comes,
    /// a bounded amount per event. The end arrives as
    /// [`UserEvent::Received`](crate::UserEvent::Received), with the file;
    /// only then does decoding go on after the bytes (a request pipelined
    /// behind an upload is answered after it).
    ///
    /// Use it from [`on_read`](crate::Handler::on_read) on the message that
    /// announced the bytes, with a codec that stops in front of them
    /// ([`Codec::input_claimed`](crate::Codec::input_claimed); the HTTP
    /// codec does with `HttpServerCodec::hand_over_bodies`): what the codec
    /// already decoded into messages is not input any more. One receive
    /// at a time; another one started meanwhile ends at once with
    /// `InvalidInput`.
    pub fn receive_file(&mut self, receive: FileReceive) {
        self.receive(Receiving::file(receive));
    }

    /// Reads the next `len` bytes of input and throws them away, around the
    /// pipeline (a refused upload on a connection that stays open). Ends
    /// with [`UserEvent::Received`](crate::UserEvent::Received) like
    /// [`receive_file`](Self::receive_file).
    pub fn skip_input(&mut self, len: u64) {
        self.receive(Receiving::skip(len));
    }

    fn receive(&mut self, receiving: Receiving) {
        match &mut self.inner {
            Inner::Local(cx) => cx.encoder.start_receive(receiving, cx.core, cx.env),
            Inner::Remote(ops) => {
                ops.receives += 1;
                ops.ops.push(RemoteOp::Receive(receiving));
            }
        }
    }

    /// Whether the outbound queue is below the high water mark. Producers
    /// should write while this holds and wait for
    /// [`on_writability_changed`](crate::Handler::on_writability_changed).
    pub fn is_writable(&self) -> bool {
        self.shared().is_writable()
    }

    /// Bytes queued and not yet sent, counting a fixed overhead per queued
    /// message (and estimates for writes on their way from other threads).
    pub fn pending_outbound_bytes(&self) -> usize {
        self.shared().pending()
    }

    /// Stops (`false`) or resumes (`true`) reading from the socket: the
    /// handler's own backpressure. It takes effect at once, also within a
    /// batch: messages already decoded but not yet passed to
    /// [`Handler::on_read`](crate::Handler::on_read) are held and delivered,
    /// in order, when reading resumes (or when the input ends), so a peer
    /// that pipelines many requests in one segment cannot make the handler
    /// take them all on while its output is backed up.
    pub fn set_auto_read(&mut self, auto_read: bool) {
        match &mut self.inner {
            Inner::Local(cx) => cx.core.set_auto_read(auto_read, cx.env),
            Inner::Remote(ops) => {
                // At once, so that the loop's next read already sees it;
                // the operation makes the loop resume reading if it is on.
                ops.shared.set_auto_read(auto_read);
                ops.ops.push(RemoteOp::ReadingSwitched);
            }
        }
    }

    /// Fires [`UserEvent::Timer`](crate::UserEvent::Timer)`(token)` at this
    /// handler after `delay`, unless cancelled or the channel closes first.
    pub fn schedule(&mut self, delay: Duration, token: u64) -> TimerId {
        match &mut self.inner {
            Inner::Local(cx) => cx.core.schedule_user_timer(cx.env, delay, token),
            Inner::Remote(ops) => {
                let id = ops.shared.event_loop.next_timer_id();
                ops.ops.push(RemoteOp::Schedule(id, delay, token));
                id
            }
        }
    }

    /// Cancels a timer set with [`schedule`](Self::schedule).
    pub fn cancel_timer(&mut self, id: TimerId) {
        match &mut self.inner {
            Inner::Local(cx) => cx.core.cancel_user_timer(cx.env, id),
            Inner::Remote(ops) => ops.ops.push(RemoteOp::CancelTimer(id)),
        }
    }

    /// A handle to this channel for other threads and later use.
    pub fn handle(&self) -> ChannelHandle<O> {
        let size_of = match &self.inner {
            Inner::Local(cx) => cx.size_of,
            Inner::Remote(ops) => ops.size_of,
        };
        ChannelHandle::new(Arc::clone(self.shared()), size_of)
    }

    /// The channel's id.
    pub fn id(&self) -> ChannelId {
        self.shared().id
    }

    /// The local address of the connection.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.shared().peer_addr()
    }

    /// What the TLS handshake settled (version, cipher suite, ALPN
    /// protocol, server name, resumption), on a TLS channel.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.shared().tls()
    }

    /// The allocator the channel reads and encodes with.
    pub fn allocator(&self) -> Allocator {
        match &self.inner {
            Inner::Local(cx) => cx.core.config.allocator,
            Inner::Remote(ops) => ops.allocator,
        }
    }

    /// The event loop the channel belongs to.
    pub fn event_loop(&self) -> &EventLoopHandle {
        &self.shared().event_loop
    }

    /// Whether this call runs on the channel's event loop (as opposed to a
    /// worker thread).
    pub fn in_event_loop(&self) -> bool {
        matches!(self.inner, Inner::Local(_))
    }
}
