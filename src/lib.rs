//! wharf: a Netty-style reactor networking framework for Linux.
//!
//! This facade re-exports the member crates, so an application depends on
//! `wharf` alone:
//!
//! * [`buf`]: the pooled direct-buffer allocator and [`ByteBuf`](buf::ByteBuf);
//! * [`transport`]: event loops, channels, pipelines, reactor modes and
//!   triggers, file regions; its main types are also at the crate root;
//! * [`codec`]: line, length-field, UTF-8, HTTP/1.1 and RESP codecs;
//! * [`tls`]: TLS as a layer under any pipeline (rustls);
//! * [`metrics`]: the framework's metrics and their Prometheus exposition;
//! * [`signal`]: waiting for Ctrl-C or `SIGTERM` to shut down in order;
//! * [`logging`]: a stderr logger for programs that have not picked one;
//! * [`bytes`]: the `bytes` crate `ByteBuf` speaks (`Buf`, `BufMut`,
//!   `Bytes`), so its version always matches.
//!
//! `use wharf::prelude::*;` brings the names most programs need.
//!
//! # Writing a codec
//!
//! A [`Codec`] turns a connection's bytes into messages and messages into
//! bytes; a [`Handler`] sits on top. This one frames messages with a
//! two-byte big-endian length, answers each with the same bytes in upper
//! case, and answers a frame longer than its limit with an error frame
//! before the connection closes.
//!
//! * **Partial frames.** `decode` is called with everything read and not
//!   yet consumed; it takes the complete frames and leaves the rest, and is
//!   called again when more bytes arrive. A frame split over any number of
//!   reads decodes exactly as if it came whole.
//! * **Large frames.** `size_hint` tells the channel how long the next
//!   frame is once its header is in; the channel reserves the whole frame
//!   at once and reads straight into it, so a large frame costs one
//!   allocation, not a chain of copies.
//! * **Errors.** A decode error reaches [`Handler::on_error`], which may
//!   still write and flush: the channel sends what it wrote, then closes.
//!   While it flushes it keeps reading (and throwing away) what the peer
//!   still sends, and lingers after, so the answer reaches a peer that is
//!   still sending instead of being cut off by a reset. Messages decoded
//!   before the bad frame are delivered first.
//! * **Closing.** After [`Context::close`] no `on_read` follows, also for
//!   messages already decoded from the same read; what was written before
//!   the close is sent.
//!
//! ```
#![doc = include_str!("../examples/length_prefixed.rs")]
//! ```

pub mod logging;
pub mod metrics;
pub mod signal;

pub use bytes;
pub use wharf_buf as buf;
pub use wharf_codec as codec;
pub use wharf_transport as transport;
pub use wharf_transport::tls;

pub use wharf_transport::{
    Balance, Bootstrap, ChannelConfig, ChannelError, ChannelHandle, ChannelId, ChunkedFile, Codec,
    CodecError, CodecExt, Context, Encoded, EventLoopGroup, EventLoopHandle, FileMap, FileReceive,
    FileRegion, Handler, IdleConfig, IdleState, Lingering, LoopMetrics, LoopStats, MetricsHandle,
    OutboundMessage, ParseModeError, Pipeline, RawBytes, RawMessages, ReactorMode, Received,
    RecvSize, Relay, RelayConfig, RelayStats, Server, ServerBootstrap, ServerMetrics,
    ShutdownHandle, SocketOption, SpliceMode, TimerId, TransferStats, TransferStrategy, Transform,
    Trigger, UserEvent, WaterMark,
};

/// The names most programs need, in one `use`.
pub mod prelude {
    pub use wharf_buf::{Allocator, ByteBuf, FrozenBuf, PoolConfig, PooledAllocator};
    pub use wharf_transport::{
        Bootstrap, ChannelError, ChannelHandle, Codec, CodecError, CodecExt, Context, Encoded,
        EventLoopGroup, Handler, Pipeline, RawBytes, ReactorMode, ServerBootstrap, SocketOption,
        Trigger, UserEvent,
    };
}

/// The README's code, compiled and run as doctests, so that what a
/// newcomer copies from it works.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
