//! The timers of one event loop: a binary heap of deadlines beside a table
//! of live timers.
//!
//! Cancelling removes a timer from the table at once (O(1)) and leaves its
//! heap entry behind, to be skipped when it reaches the top. Left alone,
//! those husks would pile up: a server that arms a 60 s keep-alive timer per
//! request and cancels it when the next request comes would hold millions
//! of them. So the heap is rebuilt from the live timers whenever the husks
//! outnumber the live entries (plus a small slack): memory stays within a
//! constant factor of the live timers, and each rebuild is paid for by the
//! cancels that made it necessary (amortised O(1) per cancel).
//!
//! Timer ids are handed out by the loop's handle from any thread; the insert
//! and a later cancel both go through the loop's task queue, which keeps
//! their order (a cancel can only name an id its caller got after the
//! schedule call returned).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use crate::time::saturating_add;

/// Names a scheduled timer, to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(NonZeroU64);

impl TimerId {
    /// The id numbered `id` (ids start at 1: never zero, so that an
    /// `Option<TimerId>`, which every connection keeps several of, takes
    /// no more room than the id).
    pub(crate) fn from_raw(id: u64) -> TimerId {
        TimerId(NonZeroU64::new(id).expect("timer ids start at 1"))
    }

    fn raw(self) -> u64 {
        self.0.get()
    }
}

/// Husks allowed beyond the live count before the heap is rebuilt.
const SLACK: usize = 64;

/// A pending timer.
#[derive(Debug)]
struct Entry<T> {
    deadline: Instant,
    /// For timers at a fixed rate.
    period: Option<Duration>,
    payload: T,
}

/// A timer that came due, taken out of the queue by
/// [`TimerQueue::pop_expired`].
#[derive(Debug)]
pub(crate) struct Expired<T> {
    pub id: TimerId,
    pub payload: T,
    period: Option<Duration>,
    deadline: Instant,
}

/// Pending timers of one loop, each carrying a `T` that says what to do.
#[derive(Debug)]
pub(crate) struct TimerQueue<T> {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    live: HashMap<u64, Entry<T>>,
    /// The fixed-rate timer whose payload is running (taken out of the
    /// table), and whether it was cancelled meanwhile.
    running: Option<(u64, bool)>,
}

impl<T> Default for TimerQueue<T> {
    fn default() -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
            live: HashMap::new(),
            running: None,
        }
    }
}

impl<T> TimerQueue<T> {
    /// Adds a timer that fires at `deadline`, then every `period` if given.
    pub(crate) fn insert(
        &mut self,
        id: TimerId,
        deadline: Instant,
        period: Option<Duration>,
        payload: T,
    ) {
        self.heap.push(Reverse((deadline, id.raw())));
        let entry = Entry {
            deadline,
            period,
            payload,
        };
        if self.live.insert(id.raw(), entry).is_some() {
            // Re-inserted under the same id: the old heap entry is a husk.
            self.compact_if_needed();
        }
    }

    /// Cancels a timer; returns whether it was pending. A fixed-rate timer
    /// cancelled by its own payload does not run again.
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        if let Some((running, cancelled)) = &mut self.running
            && *running == id.raw()
        {
            *cancelled = true;
        }
        let was_live = self.live.remove(&id.raw()).is_some();
        if was_live {
            self.compact_if_needed();
        }
        was_live
    }

    /// The earliest deadline of a pending timer.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, id))) = self.heap.peek() {
            match self.live.get(id) {
                Some(entry) if entry.deadline == *deadline => return Some(*deadline),
                // Cancelled, or rescheduled with a newer heap entry.
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }

    /// Takes the next timer whose deadline is at or before `now`. A
    /// fixed-rate timer goes back by [`done`](Self::done).
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Expired<T>> {
        let deadline = self.next_deadline()?;
        if deadline > now {
            return None;
        }
        let Reverse((_, id)) = self.heap.pop()?;
        let entry = self.live.remove(&id)?;
        if entry.period.is_some() {
            self.running = Some((id, false));
        }
        Some(Expired {
            id: TimerId::from_raw(id),
            payload: entry.payload,
            period: entry.period,
            deadline: entry.deadline,
        })
    }

    /// Ends the run of a fixed-rate timer taken by `pop_expired`: unless
    /// it was cancelled meanwhile it goes back for its next period. One that
    /// fell more than a period behind starts again from `now` rather than
    /// firing in a burst to catch up. Deadlines saturate instead of
    /// overflowing.
    pub(crate) fn done(&mut self, expired: Expired<T>, now: Instant) {
        let Some(period) = expired.period else {
            return;
        };
        let cancelled = matches!(self.running.take(), Some((id, true)) if id == expired.id.raw());
        if cancelled {
            return;
        }
        let mut deadline = saturating_add(expired.deadline, period);
        if deadline < now {
            deadline = saturating_add(now, period);
        }
        self.insert(expired.id, deadline, Some(period), expired.payload);
    }

    /// How many timers are pending.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    /// Heap entries held, live or cancelled (for tests of the bound).
    #[cfg(test)]
    fn heap_len(&self) -> usize {
        self.heap.len()
    }

    /// Drops every pending timer.
    pub(crate) fn clear(&mut self) {
        self.heap = BinaryHeap::new();
        self.live = HashMap::new();
        self.running = None;
    }

    /// Gives back the memory of tables a crowd of timers left behind.
    pub(crate) fn shrink(&mut self) {
        self.compact_if_needed();
        self.heap.shrink_to_fit();
        self.live.shrink_to_fit();
    }

    /// Rebuilds the heap from the live timers once cancelled entries
    /// outnumber them, and gives back table memory after a crowd left.
    fn compact_if_needed(&mut self) {
        if self.heap.len() <= 2 * self.live.len() + SLACK {
            return;
        }
        let live: Vec<Reverse<(Instant, u64)>> = self
            .live
            .iter()
            .map(|(id, entry)| Reverse((entry.deadline, *id)))
            .collect();
        self.heap = BinaryHeap::from(live);
        if self.live.capacity() > 4 * self.live.len() + SLACK {
            self.live.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn timers_come_due_in_deadline_order() {
        let mut q = TimerQueue::default();
        let t0 = Instant::now();
        for (id, at) in [(1, 30), (2, 10), (3, 20), (4, 10)] {
            q.insert(TimerId::from_raw(id), t0 + ms(at), None, id);
        }
        assert_eq!(q.pop_expired(t0 + ms(5)).map(|e| e.payload), None);
        let mut order = Vec::new();
        while let Some(e) = q.pop_expired(t0 + ms(100)) {
            order.push(e.payload);
        }
        assert_eq!(order[2..], [3, 1]);
        assert!(order[..2].contains(&2) && order[..2].contains(&4));
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn a_cancelled_timer_never_fires() {
        let mut q = TimerQueue::default();
        let t0 = Instant::now();
        q.insert(TimerId::from_raw(1), t0, None, "a");
        q.insert(TimerId::from_raw(2), t0, None, "b");
        assert!(q.cancel(TimerId::from_raw(1)));
        assert!(
            !q.cancel(TimerId::from_raw(1)),
            "a second cancel finds nothing"
        );
        assert!(!q.cancel(TimerId::from_raw(99)), "unknown ids are ignored");
        assert_eq!(q.pop_expired(t0).map(|e| e.payload), Some("b"));
        assert!(q.pop_expired(t0).is_none());
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn fixed_rate_timers_come_back_and_stop_when_cancelled_by_their_own_run() {
        let mut q = TimerQueue::default();
        let t0 = Instant::now();
        q.insert(TimerId::from_raw(1), t0 + ms(10), Some(ms(10)), ());
        let e = q.pop_expired(t0 + ms(10)).expect("due");
        q.done(e, t0 + ms(10));
        assert_eq!(q.next_deadline(), Some(t0 + ms(20)));
        // Far behind: restarts from now instead of a burst.
        let e = q.pop_expired(t0 + ms(95)).expect("due");
        q.done(e, t0 + ms(95));
        assert_eq!(q.next_deadline(), Some(t0 + ms(105)));
        let e = q.pop_expired(t0 + ms(105)).expect("due");
        q.cancel(e.id);
        q.done(e, t0 + ms(105));
        assert_eq!(q.next_deadline(), None);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn deadlines_saturate_instead_of_overflowing() {
        let mut q = TimerQueue::default();
        let t0 = Instant::now();
        let never = saturating_add(t0, Duration::MAX);
        assert!(never > t0 + Duration::from_secs(1_000_000));
        q.insert(TimerId::from_raw(1), never, Some(Duration::MAX), ());
        assert!(q.pop_expired(t0).is_none());
        // A fixed-rate timer with a huge period, due now: no panic.
        q.insert(TimerId::from_raw(2), t0, Some(Duration::MAX), ());
        let e = q.pop_expired(t0).expect("due");
        q.done(e, t0);
        assert_eq!(q.len(), 2);
    }

    /// Issue 8.10: a million arm/cancel cycles (a keep-alive timer re-armed
    /// per request) leave the structure a small constant above the live
    /// count.
    #[test]
    fn a_million_arm_and_cancel_cycles_keep_memory_bounded_by_the_live_timers() {
        let mut q = TimerQueue::default();
        let t0 = Instant::now();
        let live = 100u64;
        for id in 1..=live {
            q.insert(
                TimerId::from_raw(id),
                t0 + Duration::from_secs(60),
                None,
                (),
            );
        }
        let mut max_heap = 0;
        for i in 1..=1_000_000u64 {
            // Re-arm connection `i % live`: cancel its timer, arm a new one.
            let old = TimerId::from_raw(i);
            let new = TimerId::from_raw(i + live);
            assert!(q.cancel(old));
            q.insert(new, t0 + Duration::from_secs(60) + ms(i), None, ());
            max_heap = max_heap.max(q.heap_len());
        }
        assert_eq!(q.len(), live as usize);
        let bound = 2 * live as usize + SLACK + 1;
        assert!(
            max_heap <= bound,
            "heap reached {max_heap} entries for {live} live timers (bound {bound})"
        );
    }

    #[test]
    fn compaction_keeps_every_live_timer_and_its_order() {
        let mut q = TimerQueue::default();
        let t0 = Instant::now();
        for id in 0..1000u64 {
            q.insert(TimerId::from_raw(id + 1), t0 + ms(1000 - id), None, id);
        }
        for id in (0..1000u64).filter(|id| id % 10 != 0) {
            q.cancel(TimerId::from_raw(id + 1));
        }
        let mut fired = Vec::new();
        while let Some(e) = q.pop_expired(t0 + ms(2000)) {
            fired.push(e.payload);
        }
        let expected: Vec<u64> = (0..1000).rev().filter(|id| id % 10 == 0).collect();
        assert_eq!(fired, expected);
    }
}
