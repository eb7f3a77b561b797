//! The life of a connection, as one state machine.
//!
//! ```text
//!            peer FIN (half-closure)        shutdown_output, flushed
//!   Open{in: Open} ──────────────▶ Open{in: Ended}     Open{out: Shut}
//!        │    ╲                         │   both ended ──▶ Closed
//!        │     ╲ close(), decode error, │
//!        │      ╲ peer FIN (no half-closure)
//!        ▼       ▼                      ▼
//!   Closing{input_ended} ── queue flushed ──▶ Closed
//!        │                      ╲ (unread input, lingering on)
//!        │                       ▼
//!        │                 Lingering{until, left} ── peer FIN, deadline, or bytes
//!        │                                           spent and output acknowledged ──▶ Closed
//!        │
//!   any ── I/O error, handler panic, close timeout ──▶ Aborting ──▶ Closed
//! ```
//!
//! Every transition is a method here, and each is a no-op from a phase
//! where it makes no sense (a close asked for twice, a FIN after the
//! connection failed), so no caller can produce an impossible combination:
//! a closed connection that still reads, an aborted one that flushes, a
//! lingering one that accepts writes. What is *not* life but scheduling
//! (waiting for writability, on the ready list, reading paused by the
//! handler) lives beside this, in the connection's I/O flags.

use std::time::Instant;

use crate::channel::config::Lingering;
use crate::time::saturating_add;

/// The output side while the connection is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// Writing.
    Open,
    /// `shutdown_output` was asked for: the queue is flushed, then the
    /// write side is shut down.
    ShutRequested,
    /// The write side is shut down (this side's half-close).
    Shut,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Both directions may carry data; `input_ended` after the peer's FIN
    /// when half-closure is allowed, `output` after this side's.
    Open { input_ended: bool, output: Output },
    /// A close was asked for: no more input reaches the handler (what
    /// arrives is discarded), what was written is flushed.
    Closing { input_ended: bool },
    /// Flushed and shut down for writing; discarding input until the peer
    /// ends its side, `until` passes or `left` bytes more were read.
    Lingering { until: Instant, left: usize },
    /// Failed: the handler hears why, then the socket closes without
    /// sending what is queued.
    Aborting,
    /// Closed.
    Closed,
}

impl Phase {
    /// A connection that has just become active.
    pub(crate) const ACTIVE: Phase = Phase::Open {
        input_ended: false,
        output: Output::Open,
    };

    /// The peer ended its output (read returned 0). With half-closure
    /// allowed (and our output still open) the connection stays open for
    /// writing; otherwise it closes once its queue is sent.
    pub(crate) fn input_ended(self, half_closure: bool) -> Phase {
        match self {
            Phase::Open {
                input_ended: false,
                output,
            } => {
                if output == Output::Shut {
                    Phase::Closed
                } else if half_closure {
                    Phase::Open {
                        input_ended: true,
                        output,
                    }
                } else {
                    Phase::Closing { input_ended: true }
                }
            }
            Phase::Closing { .. } => Phase::Closing { input_ended: true },
            Phase::Lingering { .. } => Phase::Closed,
            other => other,
        }
    }

    /// `close()`: stop delivering input, flush, close.
    pub(crate) fn close_requested(self) -> Phase {
        match self {
            Phase::Open { input_ended, .. } => Phase::Closing { input_ended },
            other => other,
        }
    }

    /// `shutdown_output()`: shut the write side once the queue is sent.
    pub(crate) fn shutdown_output_requested(self) -> Phase {
        match self {
            Phase::Open {
                input_ended,
                output: Output::Open,
            } => Phase::Open {
                input_ended,
                output: Output::ShutRequested,
            },
            other => other,
        }
    }

    /// The write side was shut down after the queue was sent. If the peer
    /// had already ended its side, nothing is left to do.
    pub(crate) fn output_shut(self) -> Phase {
        match self {
            Phase::Open {
                input_ended,
                output: Output::ShutRequested,
            } => {
                if input_ended {
                    Phase::Closed
                } else {
                    Phase::Open {
                        input_ended,
                        output: Output::Shut,
                    }
                }
            }
            other => other,
        }
    }

    /// A closing connection has sent everything. It lingers if input is
    /// still coming (`unread_input`) and lingering is configured;
    /// otherwise it is done.
    pub(crate) fn flushed(
        self,
        unread_input: bool,
        lingering: Option<Lingering>,
        now: Instant,
    ) -> Phase {
        match (self, lingering) {
            (
                Phase::Closing {
                    input_ended: false, ..
                },
                Some(linger),
            ) if unread_input => Phase::Lingering {
                until: saturating_add(now, linger.timeout),
                left: linger.max_bytes,
            },
            (Phase::Closing { .. }, _) => Phase::Closed,
            (other, _) => other,
        }
    }

    /// `n` bytes were read and discarded while lingering (or, with `n`
    /// zero, the linger time may have run out). At the deadline the
    /// connection is done; once `left` is spent, it is done as soon as
    /// everything it sent has reached the peer (`output_acknowledged`):
    /// closing earlier, with the peer's data unread, would reset the
    /// connection and destroy the response still on its way.
    pub(crate) fn discarded(self, n: usize, now: Instant, output_acknowledged: bool) -> Phase {
        match self {
            Phase::Lingering { until, left } => {
                let left = left.saturating_sub(n);
                if now >= until || (left == 0 && output_acknowledged) {
                    Phase::Closed
                } else {
                    Phase::Lingering { until, left }
                }
            }
            other => other,
        }
    }

    /// The socket failed, the handler panicked, or a timeout gave up on it.
    pub(crate) fn aborted(self) -> Phase {
        match self {
            Phase::Closed => Phase::Closed,
            _ => Phase::Aborting,
        }
    }

    /// Whether decoded input goes to the handler.
    pub(crate) fn delivers_input(self) -> bool {
        matches!(
            self,
            Phase::Open {
                input_ended: false,
                ..
            }
        )
    }

    /// Whether the socket is read at all (to deliver, or to discard while
    /// closing or lingering).
    pub(crate) fn reads_socket(self) -> bool {
        matches!(
            self,
            Phase::Open {
                input_ended: false,
                ..
            } | Phase::Closing {
                input_ended: false,
                ..
            } | Phase::Lingering { .. }
        )
    }

    /// Whether input read now is thrown away.
    pub(crate) fn discards_input(self) -> bool {
        matches!(self, Phase::Closing { .. } | Phase::Lingering { .. })
    }

    /// Whether handler writes are still queued (and sent): while open with
    /// the output open, and while closing (what an error handler writes is
    /// the last thing the peer reads).
    pub(crate) fn accepts_writes(self) -> bool {
        matches!(
            self,
            Phase::Open {
                output: Output::Open,
                ..
            } | Phase::Closing { .. }
        )
    }

    /// Whether the queue is being flushed towards a close or a half-close
    /// (so a flush is implied even without one from the handler).
    pub(crate) fn flushes_everything(self) -> bool {
        matches!(
            self,
            Phase::Closing { .. }
                | Phase::Open {
                    output: Output::ShutRequested,
                    ..
                }
        )
    }

    /// Whether the connection has failed and closes without flushing.
    pub(crate) fn is_aborting(self) -> bool {
        self == Phase::Aborting
    }

    /// Whether the socket is closed.
    pub(crate) fn is_closed(self) -> bool {
        self == Phase::Closed
    }

    /// Whether a close was asked for and the queue is being flushed.
    pub(crate) fn is_closing(self) -> bool {
        matches!(self, Phase::Closing { .. })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn now() -> Instant {
        Instant::now()
    }

    const OPEN: Phase = Phase::ACTIVE;
    const HALF_IN: Phase = Phase::Open {
        input_ended: true,
        output: Output::Open,
    };
    const SHUTTING: Phase = Phase::Open {
        input_ended: false,
        output: Output::ShutRequested,
    };
    const HALF_OUT: Phase = Phase::Open {
        input_ended: false,
        output: Output::Shut,
    };

    /// Every phase, for the "no-op elsewhere" checks.
    fn all(t: Instant) -> Vec<Phase> {
        vec![
            OPEN,
            HALF_IN,
            SHUTTING,
            HALF_OUT,
            Phase::Open {
                input_ended: true,
                output: Output::ShutRequested,
            },
            Phase::Closing { input_ended: false },
            Phase::Closing { input_ended: true },
            Phase::Lingering {
                until: t + Duration::from_secs(5),
                left: 100,
            },
            Phase::Aborting,
            Phase::Closed,
        ]
    }

    #[test]
    fn peer_fin_without_half_closure_closes_after_the_flush() {
        assert_eq!(
            OPEN.input_ended(false),
            Phase::Closing { input_ended: true }
        );
    }

    #[test]
    fn peer_fin_with_half_closure_keeps_writing() {
        let p = OPEN.input_ended(true);
        assert_eq!(p, HALF_IN);
        assert!(p.accepts_writes());
        assert!(!p.reads_socket());
        assert!(!p.delivers_input());
    }

    #[test]
    fn both_half_closes_end_the_connection_in_either_order() {
        // Ours first, then the peer's.
        let p = OPEN.shutdown_output_requested();
        assert_eq!(p, SHUTTING);
        assert!(
            !p.accepts_writes(),
            "writes after shutdown_output are dropped"
        );
        assert!(p.flushes_everything());
        let p = p.output_shut();
        assert_eq!(p, HALF_OUT);
        assert!(p.reads_socket() && p.delivers_input());
        assert_eq!(p.input_ended(true), Phase::Closed);
        assert_eq!(p.input_ended(false), Phase::Closed);
        // The peer's first, then ours.
        let p = OPEN.input_ended(true).shutdown_output_requested();
        assert_eq!(p.output_shut(), Phase::Closed);
    }

    #[test]
    fn close_stops_delivery_and_keeps_accepting_the_last_writes() {
        let p = OPEN.close_requested();
        assert!(p.is_closing());
        assert!(!p.delivers_input());
        assert!(p.reads_socket() && p.discards_input());
        assert!(p.accepts_writes());
        assert!(p.flushes_everything());
        assert_eq!(p.close_requested(), p, "a second close changes nothing");
        // A close after the peer's FIN does not read any more.
        assert!(!HALF_IN.close_requested().reads_socket());
    }

    #[test]
    fn flushed_closes_or_lingers_depending_on_unread_input() {
        let t = now();
        let linger = Some(Lingering::default());
        let closing = OPEN.close_requested();
        assert_eq!(closing.flushed(false, linger, t), Phase::Closed);
        assert_eq!(closing.flushed(true, None, t), Phase::Closed);
        let p = closing.flushed(true, linger, t);
        assert_eq!(
            p,
            Phase::Lingering {
                until: t + Duration::from_secs(5),
                left: 64 << 10
            }
        );
        assert!(!p.accepts_writes());
        assert!(p.reads_socket() && p.discards_input());
        // The peer already ended its side: nothing to linger for.
        let ended = HALF_IN.close_requested();
        assert_eq!(ended.flushed(true, linger, t), Phase::Closed);
    }

    #[test]
    fn lingering_ends_at_the_peers_fin_the_byte_limit_or_the_deadline() {
        let t = now();
        let p = OPEN
            .close_requested()
            .flushed(true, Some(Lingering::default()), t);
        assert_eq!(p.input_ended(false), Phase::Closed);
        assert_eq!(p.discarded(64 << 10, t, true), Phase::Closed);
        let q = p.discarded(1000, t, true);
        assert!(matches!(q, Phase::Lingering { left, .. } if left == (64 << 10) - 1000));
        assert_eq!(
            q.discarded(0, t + Duration::from_secs(5), false),
            Phase::Closed
        );
        assert_eq!(q.discarded(0, t + Duration::from_secs(4), true), q);
    }

    #[test]
    fn a_spent_linger_budget_waits_for_the_output_to_be_acknowledged() {
        let t = now();
        let p = OPEN
            .close_requested()
            .flushed(true, Some(Lingering::default()), t);
        // Everything discarded, but the response is still on its way: a
        // close now would reset the connection and destroy it.
        let spent = p.discarded(1 << 20, t, false);
        assert!(matches!(spent, Phase::Lingering { left: 0, .. }));
        assert!(spent.reads_socket() && spent.discards_input());
        assert_eq!(spent.discarded(100, t, false), spent);
        assert_eq!(spent.discarded(100, t, true), Phase::Closed);
        assert_eq!(
            spent.discarded(0, t + Duration::from_secs(5), false),
            Phase::Closed
        );
    }

    #[test]
    fn a_failure_aborts_from_every_phase_but_closed() {
        let t = now();
        for p in all(t) {
            let expected = if p.is_closed() {
                Phase::Closed
            } else {
                Phase::Aborting
            };
            assert_eq!(p.aborted(), expected, "{p:?}");
        }
        assert!(!Phase::Aborting.accepts_writes());
        assert!(!Phase::Aborting.reads_socket());
        assert!(Phase::Aborting.is_aborting());
    }

    #[test]
    fn transitions_that_make_no_sense_leave_the_phase_alone() {
        let t = now();
        for p in all(t) {
            if !matches!(p, Phase::Open { .. }) {
                assert_eq!(p.close_requested(), p, "close from {p:?}");
                assert_eq!(p.shutdown_output_requested(), p, "shutdown from {p:?}");
                assert_eq!(p.output_shut(), p, "output shut from {p:?}");
            }
            if !matches!(p, Phase::Closing { .. }) {
                assert_eq!(p.flushed(true, Some(Lingering::default()), t), p, "{p:?}");
            }
            if !matches!(p, Phase::Lingering { .. }) {
                assert_eq!(p.discarded(10, t, true), p, "discard from {p:?}");
            }
            if matches!(p, Phase::Aborting | Phase::Closed) {
                assert_eq!(p.input_ended(true), p, "fin from {p:?}");
                assert!(!p.accepts_writes() && !p.reads_socket() && !p.delivers_input());
            }
        }
        // Output transitions only from the matching output state.
        assert_eq!(HALF_OUT.shutdown_output_requested(), HALF_OUT);
        assert_eq!(OPEN.output_shut(), OPEN);
    }

    #[test]
    fn a_huge_linger_timeout_saturates() {
        let t = now();
        let linger = Lingering {
            timeout: Duration::MAX,
            max_bytes: 1,
        };
        let p = OPEN.close_requested().flushed(true, Some(linger), t);
        assert!(matches!(p, Phase::Lingering { .. }));
    }
}
