//! The synchronization of the cross-thread paths (a block freed on another
//! thread going back to its owner, and the hand-over when the owner thread
//! exits) from `std` and crossbeam or, under `--cfg loom`, from loom, so
//! that the code that is model-checked is the code that runs (tokio's
//! facade, in small; wharf-transport has the same).
//!
//! Only the modules on those paths use it: `thread_cache` (the owned flag,
//! its fences, the return queue) and `pool` (the locks of the arena and of
//! the slots, which order a slot's release before its reuse). Counters that
//! only feed the metrics stay `std` atomics.

#[cfg(not(loom))]
pub(crate) use crossbeam_queue::SegQueue;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, Ordering, fence};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use seg_queue::SegQueue;

/// crossbeam's `SegQueue` in small, for loom: one block of a few slots,
/// with crossbeam's orderings (a sequentially consistent claim of the tail
/// index, a release store that marks the slot written, a sequentially
/// consistent fence before a pop reads the tail, `is_empty` and `len` from
/// sequentially consistent loads of both indices).
///
/// Not a mutex around a deque, as wharf-transport's mailbox uses: a lock
/// would order the thread that pushes and the exiting owner that looks at
/// the queue by itself, and hide a missing fence of the hand-over (tried:
/// with a locked deque, deleting either fence passes every model).
#[cfg(loom)]
mod seg_queue {
    use std::fmt;

    use loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};

    /// Pushes a queue takes over its life; the models push a handful.
    const CAPACITY: usize = 8;

    struct Slot<T> {
        written: AtomicBool,
        value: UnsafeCell<Option<T>>,
    }

    pub(crate) struct SegQueue<T> {
        /// The next index to pop.
        head: AtomicUsize,
        /// The next index to push.
        tail: AtomicUsize,
        slots: Box<[Slot<T>]>,
    }

    // SAFETY: as for crossbeam's queue: a slot's value is written once, by
    // the one pusher that claimed its index, and taken once, by the one
    // popper that claimed it, after the `written` flag (release, acquire)
    // says the write is complete. Values cross threads, hence `T: Send`.
    unsafe impl<T: Send> Send for SegQueue<T> {}
    // SAFETY: see `Send`.
    unsafe impl<T: Send> Sync for SegQueue<T> {}

    impl<T> SegQueue<T> {
        pub(crate) fn new() -> SegQueue<T> {
            SegQueue {
                head: AtomicUsize::new(0),
                tail: AtomicUsize::new(0),
                slots: (0..CAPACITY)
                    .map(|_| Slot {
                        written: AtomicBool::new(false),
                        value: UnsafeCell::new(None),
                    })
                    .collect(),
            }
        }

        pub(crate) fn push(&self, value: T) {
            // crossbeam claims the index with a SeqCst compare-exchange loop.
            let index = self.tail.fetch_add(1, Ordering::SeqCst);
            let slot = self
                .slots
                .get(index)
                .expect("a loom model pushes at most CAPACITY values");
            // SAFETY: the index is ours alone; no popper reads the slot
            // before `written` is set below.
            slot.value.with_mut(|v| unsafe { *v = Some(value) });
            slot.written.store(true, Ordering::Release);
        }

        pub(crate) fn pop(&self) -> Option<T> {
            let mut head = self.head.load(Ordering::Acquire);
            loop {
                fence(Ordering::SeqCst);
                if head == self.tail.load(Ordering::Relaxed) {
                    return None;
                }
                match self.head.compare_exchange(
                    head,
                    head + 1,
                    Ordering::SeqCst,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        // The pusher may have claimed the slot and not yet
                        // written it: wait, as crossbeam does.
                        let slot = &self.slots[head];
                        while !slot.written.load(Ordering::Acquire) {
                            loom::hint::spin_loop();
                        }
                        // SAFETY: the index is ours alone, and the acquire
                        // load above saw the pusher's write completed.
                        return slot.value.with_mut(|v| unsafe { (*v).take() });
                    }
                    Err(current) => head = current,
                }
            }
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.head.load(Ordering::SeqCst) == self.tail.load(Ordering::SeqCst)
        }

        pub(crate) fn len(&self) -> usize {
            let tail = self.tail.load(Ordering::SeqCst);
            tail.saturating_sub(self.head.load(Ordering::SeqCst))
        }
    }

    impl<T> fmt::Debug for SegQueue<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("SegQueue").finish_non_exhaustive()
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! The stand-in queue itself: what the models of the hand-over rely on.

    use loom::sync::Arc;
    use loom::thread;

    use super::SegQueue;

    /// Two threads push while a third pops: every value comes out exactly
    /// once, whatever the interleaving.
    #[test]
    fn seg_queue_hands_each_value_out_once() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound.get_or_insert(3);
        builder.check(|| {
            let queue = Arc::new(SegQueue::new());
            let pushers: Vec<_> = [1u32, 2]
                .into_iter()
                .map(|v| {
                    let queue = queue.clone();
                    thread::spawn(move || queue.push(v))
                })
                .collect();
            let mut seen = Vec::new();
            seen.extend(queue.pop());
            for p in pushers {
                p.join().unwrap();
            }
            while let Some(v) = queue.pop() {
                seen.push(v);
            }
            seen.sort_unstable();
            assert_eq!(seen, [1, 2]);
            assert!(queue.is_empty());
        });
    }
}
