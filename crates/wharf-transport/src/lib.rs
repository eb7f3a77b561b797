//! The transport of wharf: event loops, channels and pipelines, reactor
//! modes and triggers.
//!
//! # The parts
//!
//! * **Event loops** ([`EventLoopHandle`]): one thread each, owning a
//!   `mio::Poll`, a slab of channels, timers and a task queue. Everything a
//!   loop owns is touched by that thread only; other threads post tasks
//!   through the handle.
//! * **Channels**: a connection (or listener) registered on one loop. Its
//!   [`Pipeline`] is a [`Codec`] (with any [`Transform`]s stacked on it) and
//!   a [`Handler`]. Inbound events reach the handler in a fixed order;
//!   outbound operations go through its [`Context`]. A [`ChannelHandle`]
//!   reaches the channel from any thread.
//! * **Outbound queue**: writes are queued and flushed with gathering
//!   writes (at most [`IOV_MAX`] buffers a call), resumed after partial writes,
//!   with a spin budget per flush and water marks that flip the channel's
//!   writability.
//! * **Reads** use an adaptive size (64 B to 64 KiB, starting at 2 KiB),
//!   allocated per read from the pooled allocator: an idle connection holds
//!   no receive buffer.
//! * **Bootstraps**: [`ServerBootstrap`] wires the loops in a
//!   [`ReactorMode`] with a [`Trigger`]; [`Bootstrap`] connects clients on
//!   an [`EventLoopGroup`].
//! * **Metrics** ([`metrics`]): every loop's and worker's counters, gauges
//!   and histograms, as snapshots any thread can take
//!   ([`Server::metrics`], [`MetricsHandle`]).
//!
//! # Threading
//!
//! Handlers are called from one thread at a time: their loop, or (in the
//! worker-pool modes) the worker their connection is pinned to. Handles
//! (`EventLoopHandle`, `ChannelHandle`, `ShutdownHandle`) are `Send + Sync`
//! and may be used anywhere.

mod blocking;
mod bootstrap;
mod channel;
mod chunked_file;
mod file_region;
pub mod handlers;
pub mod metrics;
mod reactor;
mod relay;
mod stats;
mod sync;
pub mod sys;
mod time;
pub mod tls;
mod token;
mod worker;

pub use wharf_buf as buf;

pub use bootstrap::client::{Bootstrap, EventLoopGroup};
pub use bootstrap::options::SocketOption;
pub use bootstrap::running::Server;
pub use bootstrap::server::ServerBootstrap;
pub use bootstrap::shutdown::ShutdownHandle;
pub use bootstrap::{Balance, ParseModeError, ReactorMode};
pub use channel::codec::{
    Codec, CodecError, CodecExt, Encoded, RawBytes, RawMessages, Stacked, Transform,
};
pub use channel::config::{ChannelConfig, IdleConfig, Lingering, RecvSize, Trigger, WaterMark};
pub use channel::context::Context;
pub use channel::handle::ChannelHandle;
pub use channel::handler::{ChannelError, Handler, IdleState, UserEvent};
pub use channel::outbound::{IOV_MAX, OutboundMessage};
pub use channel::pipeline::Pipeline;
pub use channel::receive::{FileReceive, Received};
pub use channel::shared::ChannelId;
pub use chunked_file::{ChunkedFile, DEFAULT_CHUNK_SIZE};
pub use file_region::{FileMap, FileRegion, TransferStats, TransferStrategy};
pub use metrics::{LoopMetrics, MetricsHandle, ServerMetrics};
pub use reactor::handle::EventLoopHandle;
pub use reactor::timer_queue::TimerId;
pub use relay::{Relay, RelayConfig, RelayStats, SpliceMode, SplicedBytes};
pub use stats::LoopStats;
