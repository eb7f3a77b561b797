//! The command-line flags that choose how a server example is wired
//! (`--mode`, `--trigger`, `--coalesce-writes`), shared by the examples so
//! that they mean the same everywhere. A mode carries its own parameters (`pool:4`,
//! `multi:2,workers=2`; see `wharf::ParseModeError`), so no flag means one
//! thing for one mode and nothing for another.

use wharf::{ChannelConfig, ReactorMode, ServerBootstrap, Trigger};

/// How the server's threads are arranged.
#[derive(Debug, clap::Args)]
pub struct ReactorArgs {
    /// Reactor mode with its parameters: single (one loop);
    /// pool[:WORKERS] (one loop, handlers on WORKERS threads);
    /// multi[:SUB_REACTORS][,workers=N] (a main loop accepting for
    /// SUB_REACTORS loops, plus N handler threads); reuseport[:REACTORS]
    /// (independent SO_REUSEPORT loops). A missing count is the CPU count
    /// (workers of multi: 0).
    #[arg(long, default_value = "single")]
    pub mode: ReactorMode,
    /// Edge- or level-triggered epoll (edge or level).
    #[arg(long, default_value = "edge")]
    pub trigger: Trigger,
    /// Writes of at most this many bytes are copied into the outbound
    /// queue's last buffer by the transport, so that small replies leave
    /// together (0: each write its own buffer).
    #[arg(long, default_value_t = ChannelConfig::default().coalesce_writes, value_name = "BYTES")]
    pub coalesce_writes: usize,
}

impl ReactorArgs {
    /// The mode the flags describe.
    pub fn mode(&self) -> ReactorMode {
        self.mode
    }

    /// A bootstrap wired as the flags say: mode, trigger and coalescing.
    pub fn bootstrap(&self) -> ServerBootstrap {
        ServerBootstrap::new()
            .mode(self.mode)
            .trigger(self.trigger)
            .coalesce_writes(self.coalesce_writes)
    }

    /// `edge` or `level`.
    pub fn trigger_name(&self) -> &'static str {
        match self.trigger {
            Trigger::Edge => "edge",
            Trigger::Level => "level",
        }
    }
}
