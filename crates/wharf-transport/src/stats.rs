//! What an event loop did, counted as it goes: the numbers the benches use
//! to compare triggers and modes (polls, events, reads per event, syscalls),
//! and the ones an operator watches (connections, messages, backpressure),
//! which [`metrics`](crate::metrics) puts together with the gauges and
//! histograms.
//!
//! Each counter is written by its loop's thread only, with a plain load and
//! store (no locked instruction on the hot path), and read by any thread;
//! the counters of several loops are summed when read.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::metrics::histogram::LogHistogram;

/// Adds `n` to a counter only the loop thread writes.
#[inline]
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Moves a gauge only the loop thread writes by `delta` (kept as a
/// two's-complement `u64`, read back with [`gauge`]).
#[inline]
pub(crate) fn shift(gauge: &AtomicU64, delta: i64) {
    gauge.store(gauge.load(Relaxed).wrapping_add(delta as u64), Relaxed);
}

/// A gauge's value (never below zero).
pub(crate) fn gauge(gauge: &AtomicU64) -> u64 {
    (gauge.load(Relaxed) as i64).max(0) as u64
}

/// Declares the counters once: the loop's atomics, the public snapshot,
/// its sum and its difference.
macro_rules! loop_counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// Counters of one event loop. Written by the loop thread only (a
        /// plain load and store, no locked instruction), read by any thread.
        #[derive(Debug, Default)]
        pub(crate) struct LoopCounters {
            $(pub $name: AtomicU64,)*
            /// Bytes waiting in the outbound queues of the loop's channels
            /// (a gauge, see [`shift`]).
            pub outbound_queued: AtomicU64,
            /// Readiness events per `epoll_wait`.
            pub events_per_poll: LogHistogram,
            /// Nanoseconds a pipeline callback took (sampled).
            pub handler_time: LogHistogram,
            /// Nanoseconds from `epoll_wait`'s return to the end of the
            /// iteration.
            pub loop_lag: LogHistogram,
        }

        impl LoopCounters {
            pub(crate) fn snapshot(&self) -> LoopStats {
                LoopStats { $($name: self.$name.load(Relaxed),)* }
            }
        }

        /// A snapshot of one event loop's counters (each counts from the
        /// loop's start; [`since`](Self::since) gives a period's).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct LoopStats {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl LoopStats {
            /// The counters of several loops added up.
            pub fn sum<'a>(all: impl IntoIterator<Item = &'a LoopStats>) -> LoopStats {
                all.into_iter().fold(LoopStats::default(), |a, b| LoopStats {
                    $($name: a.$name + b.$name,)*
                })
            }

            /// What happened between `earlier` and this snapshot.
            pub fn since(&self, earlier: &LoopStats) -> LoopStats {
                LoopStats { $($name: self.$name - earlier.$name,)* }
            }
        }
    };
}

loop_counters! {
    /// `epoll_wait` calls.
    polls,
    /// Readiness events returned by them.
    events,
    /// `read` calls on connections (including the ones that found nothing).
    reads,
    /// Bytes read.
    bytes_read,
    /// `writev` calls.
    writes,
    /// Bytes written.
    bytes_written,
    /// `epoll_ctl` calls after registration (level-triggered interest changes).
    epoll_ctl,
    /// Connections accepted.
    accepts,
    /// Tasks run from the queue.
    tasks,
    /// Timers fired.
    timers,
    /// Times another thread woke the loop.
    wakeups,
    /// Connections a graceful shutdown's deadline closed at once, what
    /// they had queued dropped (a response cut off).
    shutdown_aborts,
    /// Connections that became channels on this loop (accepted here or
    /// handed to it, and client connections).
    connections_opened,
    /// Channels of this loop that closed.
    connections_closed,
    /// Connections accepted and closed at once because of the connection
    /// limit ([`ServerBootstrap::max_connections`](crate::ServerBootstrap::max_connections)).
    connections_refused,
    /// Times accepting paused because descriptors ran out
    /// ([`ServerBootstrap::accept_backoff`](crate::ServerBootstrap::accept_backoff)).
    accept_backoffs,
    /// Messages the codecs decoded.
    messages_decoded,
    /// Writability changes the handlers were told of (both ways).
    writability_flips,
    /// Times a channel with backpressure on was left unwritable, so that
    /// it stopped reading until its queue drained below the low water mark.
    backpressure_pauses,
    /// Bytes of input written into files by receives
    /// ([`Context::receive_file`](crate::Context::receive_file)).
    received_bytes,
    /// `splice` calls of receives from their pipes into files (the splices
    /// from sockets into the pipes count as `reads`).
    receive_splices,
    /// `pwrite` calls of receives into files (the copy path).
    receive_writes,
}
