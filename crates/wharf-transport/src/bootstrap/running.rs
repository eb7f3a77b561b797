//! The running [`Server`]: where it listens, its loops and metrics, and
//! how it shuts down.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::bootstrap::ReactorMode;
use crate::bootstrap::modes::Bound;
use crate::bootstrap::shutdown::{Control, ShutdownHandle};
use crate::channel::config::Trigger;
use crate::metrics::{MetricsHandle, ServerMetrics};
use crate::reactor::handle::EventLoopHandle;
use crate::reactor::loop_thread::{LoopThread, shut_down_loops};
use crate::stats::LoopStats;
use crate::worker::WorkerPool;

/// A running server.
///
/// Dropping it shuts it down with no quiet period and a 2 s limit; use
/// [`shutdown_gracefully`](Self::shutdown_gracefully) to choose.
///
/// Threading: `Send`; the server's own threads do the work, and the handle
/// methods can be called from any one thread that owns it.
pub struct Server {
    pub(super) bound: Bound,
    pub(super) max_connections: Option<usize>,
    pub(super) mode: ReactorMode,
    pub(super) trigger: Trigger,
    /// Loops with listeners: shut down first.
    pub(super) acceptors: Vec<LoopThread>,
    /// Sub-reactors of the multi-reactor mode.
    pub(super) io_loops: Vec<LoopThread>,
    pub(super) workers: Option<Arc<WorkerPool>>,
    pub(super) live: Arc<AtomicUsize>,
    pub(super) allocator: crate::buf::Allocator,
    pub(super) control: Arc<Control>,
    pub(super) done: bool,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("bound", &self.bound)
            .field("mode", &self.mode)
            .field("trigger", &self.trigger)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// The address the server listens on. A server bound with
    /// [`bind_unix`](crate::ServerBootstrap::bind_unix) has none: it says
    /// `0.0.0.0:0` (see [`unix_path`](Self::unix_path)).
    pub fn local_addr(&self) -> SocketAddr {
        match &self.bound {
            Bound::Tcp(addr) => *addr,
            Bound::Unix(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }

    /// The path of the Unix-domain socket the server listens on (`None`
    /// for TCP).
    pub fn unix_path(&self) -> Option<&Path> {
        match &self.bound {
            Bound::Tcp(_) => None,
            Bound::Unix(file) => Some(file.path()),
        }
    }

    /// The connection limit in force: the one asked for, capped to what
    /// the descriptor limit allows (`None`: none was asked for).
    pub fn max_connections(&self) -> Option<usize> {
        self.max_connections
    }

    /// The reactor mode.
    pub fn mode(&self) -> ReactorMode {
        self.mode
    }

    /// The trigger.
    pub fn trigger(&self) -> Trigger {
        self.trigger
    }

    /// Handles to every event loop of the server (acceptors first).
    pub fn event_loops(&self) -> Vec<EventLoopHandle> {
        self.acceptors
            .iter()
            .chain(&self.io_loops)
            .map(|l| l.handle.clone())
            .collect()
    }

    /// The counters of all the server's loops, added up.
    pub fn stats(&self) -> LoopStats {
        let all: Vec<LoopStats> = self.event_loops().iter().map(|l| l.stats()).collect();
        LoopStats::sum(&all)
    }

    /// The server's metrics now: every loop's and worker's counters,
    /// gauges and histograms, and the allocator's figures (see
    /// [`metrics`](crate::metrics)).
    pub fn metrics(&self) -> ServerMetrics {
        self.metrics_handle().snapshot()
    }

    /// A handle that takes [`Server::metrics`] snapshots from any thread
    /// (an exporter's), also after the server has shut down.
    pub fn metrics_handle(&self) -> MetricsHandle {
        MetricsHandle {
            mode: self.mode,
            trigger: self.trigger,
            loops: self.event_loops(),
            workers: self
                .workers
                .as_ref()
                .map(|w| w.counters.clone())
                .unwrap_or_default(),
            live: Arc::clone(&self.live),
            max_connections: self.max_connections,
            allocator: self.allocator,
        }
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// A handle to request a shutdown from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            control: Arc::clone(&self.control),
        }
    }

    /// Shuts down: listeners close at once; open connections are served
    /// until nothing has happened for `quiet` (no I/O, no task, no handler
    /// work in flight), then closed after what they have queued is sent;
    /// whatever is still open after `timeout` is closed at once. Returns when
    /// every thread of the server has ended. Netty's defaults are 2 s and
    /// 15 s.
    pub fn shutdown_gracefully(&mut self, quiet: Duration, timeout: Duration) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let result = shut_down_loops([&mut self.acceptors, &mut self.io_loops], quiet, timeout);
        if let Some(workers) = self.workers.take() {
            workers.shutdown();
        }
        result
    }

    /// Blocks until a [`ShutdownHandle`] requests a shutdown, then carries
    /// it out.
    pub fn wait(&mut self) -> io::Result<()> {
        let (quiet, timeout) = self.control.wait_for_request();
        self.shutdown_gracefully(quiet, timeout)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
    }
}
