//! Bootstraps: how servers and clients are configured and started.
//!
//! The reactor modes are wirings of the same parts (event loops, the worker
//! pool), chosen by [`ReactorMode`]; the pipeline and handler code is the
//! same in every mode and with either [`Trigger`](crate::Trigger).

pub(crate) mod client;
pub(crate) mod descriptors;
pub(crate) mod mode_spec;
pub(crate) mod modes;
pub(crate) mod options;
pub(crate) mod running;
pub(crate) mod server;
pub(crate) mod shutdown;
pub(crate) mod unix;

pub use mode_spec::ParseModeError;

/// How a server's threads are wired.
///
/// Each mode carries its own parameters. A command line names one as
/// text, which [`FromStr`](std::str::FromStr) parses and
/// [`Display`](std::fmt::Display) prints: `single`, `pool:WORKERS`,
/// `multi:SUB_REACTORS` or `multi:SUB_REACTORS,workers=WORKERS`,
/// `reuseport:REACTORS` (see [`ParseModeError`] for the details).
///
/// ```
/// use wharf_transport::ReactorMode;
///
/// let mode: ReactorMode = "multi:2,workers=4".parse().unwrap();
/// assert_eq!(mode, ReactorMode::MultiReactor { sub_reactors: 2, workers: 4 });
/// assert_eq!(mode.to_string(), "multi:sub_reactors=2,workers=4");
/// assert!("pool:0".parse::<ReactorMode>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReactorMode {
    /// One event loop accepts, does all the I/O and runs the handlers
    /// (redis).
    Single,
    /// One event loop accepts and does all the I/O; decoded messages go to
    /// `workers` threads that run the handlers. A connection is pinned to
    /// one worker, so its messages stay in order; what the handler writes
    /// goes back to the loop.
    WorkerPool {
        /// Worker threads (at least one).
        workers: usize,
    },
    /// A main loop accepts and hands each connection to one of
    /// `sub_reactors` loops that do its I/O (Netty's boss and workers,
    /// memcached, nginx); `workers > 0` adds the worker pool on top.
    MultiReactor {
        /// I/O loops (at least one).
        sub_reactors: usize,
        /// Worker threads for the handlers; 0 runs them on the I/O loops.
        workers: usize,
    },
    /// `reactors` independent loops, each with its own `SO_REUSEPORT`
    /// listener on the same address: the kernel spreads connections, and
    /// there is no hand-off at all.
    Reuseport {
        /// Loops, each accepting and serving (at least one).
        reactors: usize,
    },
}

impl ReactorMode {
    /// A short name for logs and reports: `single`, `pool`, `multi`,
    /// `reuseport`.
    pub fn name(&self) -> &'static str {
        match self {
            ReactorMode::Single => "single",
            ReactorMode::WorkerPool { .. } => "pool",
            ReactorMode::MultiReactor { .. } => "multi",
            ReactorMode::Reuseport { .. } => "reuseport",
        }
    }

    /// I/O event loops the mode runs (not counting a main acceptor loop).
    pub fn io_loops(&self) -> usize {
        match *self {
            ReactorMode::Single | ReactorMode::WorkerPool { .. } => 1,
            ReactorMode::MultiReactor { sub_reactors, .. } => sub_reactors,
            ReactorMode::Reuseport { reactors } => reactors,
        }
    }

    /// Worker threads the mode runs.
    pub fn workers(&self) -> usize {
        match *self {
            ReactorMode::WorkerPool { workers } => workers,
            ReactorMode::MultiReactor { workers, .. } => workers,
            _ => 0,
        }
    }
}

/// How a main loop picks the sub-reactor for a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Balance {
    /// Each in turn.
    #[default]
    RoundRobin,
    /// The one with the fewest open connections (ties in turn).
    LeastConnections,
}

/// The channel settings both bootstraps share, as builder methods.
macro_rules! channel_settings {
    () => {
        /// The channel settings so far (for the crate's tests).
        #[cfg(test)]
        pub(crate) fn settings(&self) -> &crate::ChannelConfig {
            &self.config
        }

        /// Sets a socket option (see [`SocketOption`](crate::SocketOption)).
        pub fn option(mut self, option: crate::SocketOption) -> Self {
            self.options.set(option);
            self
        }

        /// Replaces every channel setting at once.
        pub fn channel_config(mut self, config: crate::ChannelConfig) -> Self {
            self.config = config;
            self
        }

        /// Where buffers come from (default: the process-wide pool).
        pub fn allocator(mut self, allocator: crate::buf::Allocator) -> Self {
            self.config.allocator = allocator;
            self
        }

        /// The outbound water marks in bytes (default 32 KiB / 64 KiB; the
        /// low one not above the high one).
        pub fn water_mark(mut self, low: usize, high: usize) -> Self {
            self.config.water_mark = crate::WaterMark { low, high };
            self
        }

        /// Reads per readiness event (default 16; at least 1).
        pub fn max_messages_per_read(mut self, reads: usize) -> Self {
            self.config.max_messages_per_read = reads;
            self
        }

        /// Gathering writes per flush before yielding (default 16; at
        /// least 1).
        pub fn write_spin_count(mut self, spins: usize) -> Self {
            self.config.write_spin_count = spins;
            self
        }

        /// Writes of at most `max_bytes` are copied into the outbound
        /// queue's last buffer instead of becoming entries of their own
        /// (default 512; 0 turns it off; see
        /// [`ChannelConfig::coalesce_writes`](crate::ChannelConfig::coalesce_writes)).
        pub fn coalesce_writes(mut self, max_bytes: usize) -> Self {
            self.config.coalesce_writes = max_bytes;
            self
        }

        /// Whether a peer's half-close keeps the channel open (default no).
        pub fn allow_half_closure(mut self, allow: bool) -> Self {
            self.config.allow_half_closure = allow;
            self
        }

        /// Idle timeouts that fire [`UserEvent::Idle`](crate::UserEvent::Idle).
        pub fn idle(mut self, idle: crate::IdleConfig) -> Self {
            self.config.idle = idle;
            self
        }

        /// Whether channels read as soon as they are active (default yes).
        pub fn auto_read(mut self, auto_read: bool) -> Self {
            self.config.auto_read = auto_read;
            self
        }

        /// How long an open channel may have output waiting that the
        /// socket takes none of before it is failed and reset (default:
        /// no limit; see [`ChannelConfig::write_timeout`](crate::ChannelConfig::write_timeout)).
        pub fn write_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
            self.config.write_timeout = timeout;
            self
        }

        /// Whether an unwritable channel stops reading until it drains
        /// below the low water mark (default yes; see
        /// [`ChannelConfig::backpressure`](crate::ChannelConfig::backpressure)).
        pub fn backpressure(mut self, on: bool) -> Self {
            self.config.backpressure = on;
            self
        }

        /// How a channel that closes while its peer is still sending
        /// lingers (default 5 s and 64 KiB; `None` closes at once; see
        /// [`Lingering`](crate::Lingering)).
        pub fn lingering_close(mut self, lingering: Option<crate::Lingering>) -> Self {
            self.config.lingering = lingering;
            self
        }

        /// How long a closing channel may go without the socket taking any
        /// of what it has queued before it is closed anyway (default 10 s).
        pub fn close_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.config.close_timeout = timeout;
            self
        }
    };
}
pub(crate) use channel_settings;
