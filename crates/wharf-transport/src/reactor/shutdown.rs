//! A loop's graceful shutdown, in phases.
//!
//! 1. **Start**: listeners close at once; every channel's handler hears
//!    [`UserEvent::Shutdown`](crate::UserEvent::Shutdown), so a protocol
//!    that knows a connection is idle between requests can close it now and
//!    one in the middle of a response can finish it and close after.
//! 2. **Quiet period**: the loop keeps serving until nothing has happened
//!    for `quiet` (no I/O, no task, no handler work in flight on a worker).
//!    Timers do not count: a keep-alive or idle timer that is merely
//!    pending must not hold the loop open until it fires.
//! 3. **Close**: every channel left is closed gracefully (what it has
//!    queued is sent first); connects in progress fail.
//! 4. **Deadline**: whatever is still open then is closed at once, with a
//!    reset where queued data had to be dropped.
//!
//! The loop ends as soon as nothing is registered and no handler work of
//! its channels is out on a worker.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::reactor::event_loop::{EventLoop, Slot};
use crate::time::saturating_add;

/// What the shutdown asks of the loop at one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Keep serving.
    Wait,
    /// The quiet period passed: close every channel gracefully.
    CloseAll,
    /// The deadline passed: close everything at once.
    AbortAll,
}

/// A graceful shutdown in progress.
#[derive(Debug)]
pub(crate) struct Shutdown {
    quiet: Duration,
    deadline: Instant,
    last_activity: Instant,
    closing_all: bool,
}

impl Shutdown {
    pub(crate) fn new(quiet: Duration, deadline: Instant, now: Instant) -> Shutdown {
        Shutdown {
            quiet,
            deadline,
            last_activity: now,
            closing_all: false,
        }
    }

    /// When the next check is due.
    pub(crate) fn wake_at(&self) -> Instant {
        if self.closing_all {
            self.deadline
        } else {
            saturating_add(self.last_activity, self.quiet).min(self.deadline)
        }
    }

    /// Advances the shutdown at `now`; `busy` says something happened.
    pub(crate) fn step(&mut self, now: Instant, busy: bool) -> Step {
        if busy {
            self.last_activity = now;
        }
        if now >= self.deadline {
            return Step::AbortAll;
        }
        if !self.closing_all && now.saturating_duration_since(self.last_activity) >= self.quiet {
            self.closing_all = true;
            return Step::CloseAll;
        }
        Step::Wait
    }
}

/// The loop's side of a shutdown.
impl EventLoop {
    /// Starts a graceful shutdown (see the module docs).
    pub(crate) fn begin_shutdown(&mut self, quiet: Duration, deadline: Instant) {
        let tokens = self.slots.tokens();
        for &token in &tokens {
            if let Some(Slot::Listener(_)) = self.slots.get(token) {
                self.remove_listener(token);
            }
        }
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown = Some(Shutdown::new(quiet, deadline, self.env.now));
        for token in tokens {
            self.on_conn(token, |conn, env| conn.on_shutdown(env));
        }
    }

    /// When a shutdown in progress needs the loop next.
    pub(crate) fn shutdown_wake_at(&self) -> Option<Instant> {
        self.shutdown.as_ref().map(Shutdown::wake_at)
    }

    /// Whether a shutdown in progress is complete; advances it otherwise.
    pub(crate) fn shutdown_finished(&mut self) -> bool {
        let Some(shutdown) = &mut self.shutdown else {
            return false;
        };
        let inflight = self.shared.worker_inflight.load(Ordering::SeqCst);
        let busy = self.active || inflight > 0;
        match shutdown.step(self.env.now, busy) {
            Step::Wait => {}
            Step::AbortAll => {
                for token in self.slots.tokens() {
                    if let Some(Slot::Conn(_)) = self.slots.get(token) {
                        crate::stats::add(&self.env.counters.shutdown_aborts, 1);
                    }
                    self.abort_channel(token, "event loop shut down");
                }
                return true;
            }
            Step::CloseAll => {
                for token in self.slots.tokens() {
                    match self.slots.get(token) {
                        Some(Slot::Conn(_)) => {
                            self.on_conn(token, |conn, _| conn.core.request_close());
                        }
                        Some(Slot::Connecting(_)) => {
                            self.abort_channel(token, "event loop shut down")
                        }
                        _ => {}
                    }
                }
            }
        }
        // Done once nothing is registered, unless handler work (an
        // `on_inactive`, say) is still on a worker, whose end wakes us.
        self.slots.is_empty() && self.shared.worker_inflight.load(Ordering::SeqCst) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn closes_after_the_quiet_period_and_aborts_at_the_deadline() {
        let t0 = Instant::now();
        let mut s = Shutdown::new(ms(100), t0 + ms(1000), t0);
        assert_eq!(s.wake_at(), t0 + ms(100));
        assert_eq!(s.step(t0 + ms(50), false), Step::Wait);
        // Activity restarts the quiet period.
        assert_eq!(s.step(t0 + ms(90), true), Step::Wait);
        assert_eq!(s.wake_at(), t0 + ms(190));
        assert_eq!(s.step(t0 + ms(150), false), Step::Wait);
        assert_eq!(s.step(t0 + ms(190), false), Step::CloseAll);
        assert_eq!(s.wake_at(), t0 + ms(1000));
        assert_eq!(s.step(t0 + ms(500), false), Step::Wait, "closing once");
        assert_eq!(s.step(t0 + ms(1000), true), Step::AbortAll);
    }

    #[test]
    fn a_huge_quiet_period_waits_for_the_deadline() {
        let t0 = Instant::now();
        let mut s = Shutdown::new(Duration::MAX, t0 + ms(10), t0);
        assert_eq!(s.wake_at(), t0 + ms(10));
        assert_eq!(s.step(t0 + ms(5), false), Step::Wait);
        assert_eq!(s.step(t0 + ms(10), false), Step::AbortAll);
    }
}
