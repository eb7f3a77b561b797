//! wharf: a Netty-style reactor networking framework for Linux.
//!
//! This facade re-exports the member crates, so an application depends on
//! `wharf` alone:
//!
//! * [`buf`]: the pooled direct-buffer allocator and [`ByteBuf`](buf::ByteBuf);
//! * [`transport`]: event loops, channels, pipelines, reactor modes and
//!   triggers, file regions; its main types are also at the crate root;
//! * [`codec`]: line, length-field, UTF-8 and HTTP/1.1 codecs;
//! * [`tls`]: TLS as a layer under any pipeline (rustls);
//! * [`logging`]: a stderr logger for programs that have not picked one.
//!
//! `use wharf::prelude::*;` brings the names most programs need.

pub mod logging;

pub use wharf_buf as buf;
pub use wharf_codec as codec;
pub use wharf_transport as transport;
pub use wharf_transport::tls;

pub use wharf_transport::{
    Balance, Bootstrap, ChannelConfig, ChannelError, ChannelHandle, ChannelId, ChunkedFile, Codec,
    CodecError, CodecExt, Context, Encoded, EventLoopGroup, EventLoopHandle, FileRegion, Handler,
    IdleConfig, IdleState, Lingering, LoopStats, OutboundMessage, Pipeline, RawBytes, RawMessages,
    ReactorMode, RecvSize, Relay, RelayConfig, RelayStats, Server, ServerBootstrap, ShutdownHandle,
    SocketOption, SpliceMode, TimerId, TransferStats, TransferStrategy, Transform, Trigger,
    UserEvent, WaterMark,
};

/// The names most programs need, in one `use`.
pub mod prelude {
    pub use wharf_buf::{Allocator, ByteBuf, FrozenBuf, PoolConfig, PooledAllocator};
    pub use wharf_transport::{
        Bootstrap, ChannelHandle, Codec, CodecExt, Context, EventLoopGroup, Handler, Pipeline,
        RawBytes, ReactorMode, ServerBootstrap, SocketOption, Trigger, UserEvent,
    };
}
