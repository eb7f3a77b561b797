//! What a loop needs to turn a socket into a channel: shared by all the
//! connections of one server or client bootstrap.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use crate::bootstrap::options::SocketOptions;
use crate::channel::config::ChannelConfig;
use crate::channel::pipeline::PipelineFactory;
use crate::tls::session::TlsSetup;
use crate::worker::WorkerPool;

/// How new channels of one bootstrap are set up.
pub(crate) struct ChannelInit {
    pub factory: PipelineFactory,
    pub config: Arc<ChannelConfig>,
    pub options: SocketOptions,
    /// Worker threads for the handlers, in the worker-pool modes.
    pub workers: Option<Arc<WorkerPool>>,
    /// Open connections of the bootstrap, across its loops.
    pub live: Arc<AtomicUsize>,
    /// Connections beyond this are closed as soon as they are accepted.
    pub max_connections: Option<usize>,
    /// How long accepting pauses after running out of descriptors.
    pub accept_backoff: Duration,
    /// TLS for every channel, if set.
    pub tls: Option<TlsSetup>,
}

impl std::fmt::Debug for ChannelInit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelInit")
            .field("config", &self.config)
            .field("options", &self.options)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}
