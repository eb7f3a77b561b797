//! The timers of one event loop: a binary heap of deadlines.
//!
//! Cancelling removes the timer from the table at once and leaves its heap
//! entry to be skipped when it reaches the top. Timer ids are handed out by
//! the loop's handle from any thread; the insert and a later cancel both go
//! through the loop's task queue, which keeps their order (a cancel can only
//! name an id its caller got after the schedule call returned).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use crate::reactor::event_loop::EventLoop;

/// What a timer runs, on its loop, with the loop at hand.
pub(crate) type TimerTask = Box<dyn FnMut(&mut EventLoop) + Send>;

/// Names a scheduled timer, to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub(crate) u64);

/// A timer waiting in the queue.
pub(crate) struct Timer {
    pub deadline: Instant,
    /// For timers at a fixed rate.
    pub period: Option<Duration>,
    pub task: TimerTask,
}

/// Pending timers of one loop.
#[derive(Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    timers: HashMap<u64, Timer>,
    /// The timer whose task is running (taken out of the table), and
    /// whether it was cancelled meanwhile.
    running: Option<(u64, bool)>,
}

impl std::fmt::Debug for TimerQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerQueue")
            .field("pending", &self.timers.len())
            .finish()
    }
}

impl TimerQueue {
    /// Adds a timer.
    pub(crate) fn insert(&mut self, id: TimerId, timer: Timer) {
        self.heap.push(Reverse((timer.deadline, id.0)));
        self.timers.insert(id.0, timer);
    }

    /// Cancels a timer; returns whether it was pending. A fixed-rate timer
    /// cancelled by its own task does not run again.
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        if let Some((running, cancelled)) = &mut self.running
            && *running == id.0
        {
            *cancelled = true;
        }
        self.timers.remove(&id.0).is_some()
    }

    /// The earliest deadline of a pending timer.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, id))) = self.heap.peek() {
            match self.timers.get(id) {
                Some(timer) if timer.deadline == *deadline => return Some(*deadline),
                // Cancelled, or rescheduled with a new heap entry.
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }

    /// Takes the next timer whose deadline is at or before `now`; it counts
    /// as running until [`done`](Self::done).
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<(TimerId, Timer)> {
        let deadline = self.next_deadline()?;
        if deadline > now {
            return None;
        }
        let Reverse((_, id)) = self.heap.pop()?;
        let timer = self.timers.remove(&id)?;
        self.running = Some((id, false));
        Some((TimerId(id), timer))
    }

    /// Ends the run of a timer taken by `pop_expired`: a fixed-rate timer
    /// not cancelled meanwhile goes back for its next period. One that fell
    /// more than a period behind starts again from `now` rather than firing
    /// in a burst to catch up.
    pub(crate) fn done(&mut self, id: TimerId, mut timer: Timer, now: Instant) {
        let cancelled = matches!(self.running.take(), Some((running, true)) if running == id.0);
        let Some(period) = timer.period else { return };
        if cancelled {
            return;
        }
        timer.deadline += period;
        if timer.deadline < now {
            timer.deadline = now + period;
        }
        self.heap.push(Reverse((timer.deadline, id.0)));
        self.timers.insert(id.0, timer);
    }

    /// Drops every pending timer.
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        self.timers.clear();
    }
}
