//! The framework's own metrics: what each event loop and worker did, and
//! what a server holds now, as snapshots any thread can take.
//!
//! This module exists so that an operator can see inside a running server
//! without a debugger: how many connections come and go, how many bytes and
//! messages pass, whether handlers or the loop itself are slow, whether
//! backpressure is biting. It follows the loops' design: every figure is
//! written by one thread (its loop or worker) with a plain load and store,
//! never a locked instruction, and the figures of several loops are summed
//! when read. Nothing is computed until someone asks.
//!
//! * counters ([`LoopStats`]): polls, events, reads, bytes, connections
//!   opened / closed / refused, accepts and accept back-offs, messages
//!   decoded, writability flips, backpressure pauses, ...;
//! * gauges: connections open, bytes queued for output;
//! * [`Histogram`]s: readiness events per `epoll_wait`, the time a
//!   pipeline callback takes (codec and handler), and the loop's lag (how
//!   long an iteration runs between two waits: the longest an event that
//!   arrives meanwhile waits to be seen);
//! * the allocator's figures ([`AllocatorMetrics`]).
//!
//! [`Server::metrics`](crate::Server::metrics) takes a [`ServerMetrics`]
//! snapshot; [`Server::metrics_handle`](crate::Server::metrics_handle)
//! gives a [`MetricsHandle`] to take them from any thread (an exporter, a
//! test). The facade crate renders them in Prometheus's text format
//! (`wharf::metrics`).
//!
//! # Handler time is sampled
//!
//! Timing a callback costs two clock reads (about 20 ns each on this
//! hardware), as much as a small handler itself. Callbacks are therefore
//! timed one in [`HANDLER_TIMING_SAMPLE`] by default, which keeps the
//! histogram's shape and costs a counter increment for the others; the
//! rate is set with
//! [`ServerBootstrap::handler_timing`](crate::ServerBootstrap::handler_timing)
//! (1 times every callback, 0 none). The loop lag is not sampled: it costs
//! one clock read per iteration, not per callback, and it is what catches
//! the one slow callback a sample can miss.

pub(crate) mod histogram;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

pub use wharf_buf::AllocatorMetrics;

pub use crate::metrics::histogram::{BUCKETS, Histogram};
use crate::reactor::handle::EventLoopHandle;
pub use crate::stats::LoopStats;
use crate::stats::{LoopCounters, add, gauge};
use crate::{ReactorMode, Trigger};

/// Pipeline callbacks timed by default: one in this many.
pub const HANDLER_TIMING_SAMPLE: u32 = 16;

/// Decides which callbacks are timed: one in `every` (0: none). Lives on
/// one thread (a loop's environment, a worker).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sampler {
    every: u32,
    tick: u32,
}

impl Sampler {
    pub(crate) fn new(every: u32) -> Sampler {
        Sampler { every, tick: 0 }
    }

    /// The start time if this callback is one to time.
    #[inline]
    pub(crate) fn start(&mut self) -> Option<Instant> {
        if self.every == 0 {
            return None;
        }
        self.tick += 1;
        if self.tick < self.every {
            return None;
        }
        self.tick = 0;
        Some(Instant::now())
    }
}

/// What one event loop did and holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoopMetrics {
    /// The loop's id ([`EventLoopHandle::id`]); `None` for a sum of loops.
    pub id: Option<usize>,
    /// Its counters.
    pub stats: LoopStats,
    /// Connections open on it now (with those handed to it and on their
    /// way).
    pub connections: u64,
    /// Bytes waiting in its channels' outbound queues now (as the water
    /// marks count them: with a small overhead per message, and writes on
    /// their way from other threads).
    pub outbound_queued: u64,
    /// Readiness events per `epoll_wait`.
    pub events_per_poll: Histogram,
    /// Nanoseconds a pipeline callback took on the loop (decode, handler
    /// and encode), sampled (see the module docs). In the worker-pool
    /// modes the handlers run on the workers ([`WorkerMetrics`]).
    pub handler_time: Histogram,
    /// Nanoseconds from `epoll_wait`'s return to the end of the iteration:
    /// the longest an event that arrived meanwhile waited to be seen.
    pub loop_lag: Histogram,
}

impl LoopMetrics {
    /// The metrics of one loop, read from its counters now.
    pub(crate) fn of(handle: &EventLoopHandle) -> LoopMetrics {
        let c: &LoopCounters = &handle.shared.counters;
        LoopMetrics {
            id: Some(handle.id()),
            stats: c.snapshot(),
            connections: handle.connections() as u64,
            outbound_queued: gauge(&c.outbound_queued),
            events_per_poll: c.events_per_poll.snapshot(),
            handler_time: c.handler_time.snapshot(),
            loop_lag: c.loop_lag.snapshot(),
        }
    }

    /// Several loops' figures added up (`id` is `None`).
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a LoopMetrics>) -> LoopMetrics {
        let mut total = LoopMetrics::default();
        for m in all {
            total.stats = LoopStats::sum([&total.stats, &m.stats]);
            total.connections += m.connections;
            total.outbound_queued += m.outbound_queued;
            total.events_per_poll.merge(&m.events_per_poll);
            total.handler_time.merge(&m.handler_time);
            total.loop_lag.merge(&m.loop_lag);
        }
        total
    }
}

/// Counters of one worker thread, written by that thread only.
#[derive(Debug, Default)]
pub(crate) struct WorkerCounters {
    pub tasks: AtomicU64,
    pub handler_time: histogram::LogHistogram,
}

impl WorkerCounters {
    /// A task ran; `started` if it was timed.
    #[inline]
    pub(crate) fn task_done(&self, started: Option<Instant>) {
        add(&self.tasks, 1);
        if let Some(t) = started {
            self.handler_time.record(t.elapsed().as_nanos() as u64);
        }
    }
}

/// What one worker thread of the worker-pool modes did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerMetrics {
    /// The worker's number in its pool.
    pub index: usize,
    /// Handler tasks it ran (one per event handed to it, or per batch of
    /// messages).
    pub tasks: u64,
    /// Nanoseconds a task took (the handler's calls for one event),
    /// sampled as on the loops.
    pub handler_time: Histogram,
}

/// A snapshot of a whole server: its loops, its workers, its allocator.
#[derive(Debug, Clone)]
pub struct ServerMetrics {
    /// The reactor mode.
    pub mode: ReactorMode,
    /// The trigger.
    pub trigger: Trigger,
    /// Connections open now, across the loops (the count the connection
    /// limit is checked against).
    pub connections: u64,
    /// The connection limit in force, if any.
    pub max_connections: Option<usize>,
    /// Each event loop, acceptors first.
    pub loops: Vec<LoopMetrics>,
    /// Each worker thread (none outside the worker-pool modes).
    pub workers: Vec<WorkerMetrics>,
    /// The figures of the allocator the server's channels use.
    pub allocator: AllocatorMetrics,
}

impl ServerMetrics {
    /// The loops' figures added up.
    pub fn total(&self) -> LoopMetrics {
        LoopMetrics::sum(&self.loops)
    }

    /// The workers' handler times as one histogram.
    pub fn worker_handler_time(&self) -> Histogram {
        let mut all = Histogram::default();
        for w in &self.workers {
            all.merge(&w.handler_time);
        }
        all
    }
}

/// Takes [`ServerMetrics`] snapshots of one server from any thread.
///
/// Threading: `Clone + Send + Sync`; a snapshot reads the loops' and
/// workers' atomics and never waits for them, so it may be taken on an
/// event loop too (an exporter served by another wharf server). It keeps
/// no thread of the server alive: after the server has shut down it gives
/// the last figures.
#[derive(Clone)]
pub struct MetricsHandle {
    pub(crate) mode: ReactorMode,
    pub(crate) trigger: Trigger,
    pub(crate) loops: Vec<EventLoopHandle>,
    pub(crate) workers: Vec<Arc<WorkerCounters>>,
    pub(crate) live: Arc<std::sync::atomic::AtomicUsize>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) allocator: wharf_buf::Allocator,
}

impl std::fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsHandle")
            .field("mode", &self.mode)
            .field("loops", &self.loops.len())
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

impl MetricsHandle {
    /// The server's figures now.
    pub fn snapshot(&self) -> ServerMetrics {
        ServerMetrics {
            mode: self.mode,
            trigger: self.trigger,
            connections: self.live.load(std::sync::atomic::Ordering::Acquire) as u64,
            max_connections: self.max_connections,
            loops: self.loops.iter().map(LoopMetrics::of).collect(),
            workers: self
                .workers
                .iter()
                .enumerate()
                .map(|(index, w)| WorkerMetrics {
                    index,
                    tasks: w.tasks.load(std::sync::atomic::Ordering::Relaxed),
                    handler_time: w.handler_time.snapshot(),
                })
                .collect(),
            allocator: self.allocator.metrics(),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_sampler_times_one_callback_in_n_or_none() {
        let mut every = Sampler::new(1);
        assert!((0..5).all(|_| every.start().is_some()));
        let mut none = Sampler::new(0);
        assert!((0..100).all(|_| none.start().is_none()));
        let mut four = Sampler::new(4);
        let timed = (0..100).filter(|_| four.start().is_some()).count();
        assert_eq!(timed, 25);
    }
}
