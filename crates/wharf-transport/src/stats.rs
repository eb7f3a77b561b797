//! What an event loop did, counted as it goes: the numbers the benches use
//! to compare triggers and modes (polls, events, reads per event, syscalls).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one event loop. Written by the loop thread only (a plain
/// load and store, no locked instruction), read by any thread.
#[derive(Debug, Default)]
pub(crate) struct LoopCounters {
    pub polls: AtomicU64,
    pub events: AtomicU64,
    pub reads: AtomicU64,
    pub bytes_read: AtomicU64,
    pub writes: AtomicU64,
    pub bytes_written: AtomicU64,
    pub epoll_ctl: AtomicU64,
    pub accepts: AtomicU64,
    pub tasks: AtomicU64,
    pub timers: AtomicU64,
    pub wakeups: AtomicU64,
    pub shutdown_aborts: AtomicU64,
}

/// Adds `n` to a counter only the loop thread writes.
#[inline]
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

impl LoopCounters {
    pub(crate) fn snapshot(&self) -> LoopStats {
        LoopStats {
            polls: self.polls.load(Relaxed),
            events: self.events.load(Relaxed),
            reads: self.reads.load(Relaxed),
            bytes_read: self.bytes_read.load(Relaxed),
            writes: self.writes.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            epoll_ctl: self.epoll_ctl.load(Relaxed),
            accepts: self.accepts.load(Relaxed),
            tasks: self.tasks.load(Relaxed),
            timers: self.timers.load(Relaxed),
            wakeups: self.wakeups.load(Relaxed),
            shutdown_aborts: self.shutdown_aborts.load(Relaxed),
        }
    }
}

/// A snapshot of one event loop's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// `epoll_wait` calls.
    pub polls: u64,
    /// Readiness events returned by them.
    pub events: u64,
    /// `read` calls on connections (including the ones that found nothing).
    pub reads: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// `writev` calls.
    pub writes: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// `epoll_ctl` calls after registration (level-triggered interest changes).
    pub epoll_ctl: u64,
    /// Connections accepted.
    pub accepts: u64,
    /// Tasks run from the queue.
    pub tasks: u64,
    /// Timers fired.
    pub timers: u64,
    /// Times another thread woke the loop.
    pub wakeups: u64,
    /// Connections a graceful shutdown's deadline closed at once, what
    /// they had queued dropped (a response cut off).
    pub shutdown_aborts: u64,
}

impl LoopStats {
    /// The counters of several loops added up.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a LoopStats>) -> LoopStats {
        all.into_iter()
            .fold(LoopStats::default(), |a, b| LoopStats {
                polls: a.polls + b.polls,
                events: a.events + b.events,
                reads: a.reads + b.reads,
                bytes_read: a.bytes_read + b.bytes_read,
                writes: a.writes + b.writes,
                bytes_written: a.bytes_written + b.bytes_written,
                epoll_ctl: a.epoll_ctl + b.epoll_ctl,
                accepts: a.accepts + b.accepts,
                tasks: a.tasks + b.tasks,
                timers: a.timers + b.timers,
                wakeups: a.wakeups + b.wakeups,
                shutdown_aborts: a.shutdown_aborts + b.shutdown_aborts,
            })
    }

    /// What happened between `earlier` and this snapshot.
    pub fn since(&self, earlier: &LoopStats) -> LoopStats {
        LoopStats {
            polls: self.polls - earlier.polls,
            events: self.events - earlier.events,
            reads: self.reads - earlier.reads,
            bytes_read: self.bytes_read - earlier.bytes_read,
            writes: self.writes - earlier.writes,
            bytes_written: self.bytes_written - earlier.bytes_written,
            epoll_ctl: self.epoll_ctl - earlier.epoll_ctl,
            accepts: self.accepts - earlier.accepts,
            tasks: self.tasks - earlier.tasks,
            timers: self.timers - earlier.timers,
            wakeups: self.wakeups - earlier.wakeups,
            shutdown_aborts: self.shutdown_aborts - earlier.shutdown_aborts,
        }
    }
}
