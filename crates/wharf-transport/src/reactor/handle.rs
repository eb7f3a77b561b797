//! The handle other threads use to reach an event loop: post a task,
//! schedule or cancel a timer. Everything it does goes through the loop's
//! task queue, so the loop's own state stays single-threaded.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::file_region::{TransferCounters, TransferStats};
use crate::reactor::event_loop::EventLoop;
use crate::reactor::stats::{LoopCounters, LoopStats};
use crate::reactor::timer::{Timer, TimerId};

/// A unit of work for the loop, run with the loop at hand.
pub(crate) type Task = Box<dyn FnOnce(&mut EventLoop) + Send>;

/// What an event loop shares with its handles.
pub(crate) struct LoopShared {
    pub id: usize,
    tx: Sender<Task>,
    waker: mio::Waker,
    /// A wake-up is on its way (or the loop is awake): no need for another.
    notified: AtomicBool,
    next_timer: AtomicU64,
    pub counters: LoopCounters,
    pub thread: OnceLock<ThreadId>,
    /// Connections registered on the loop, for least-connections balancing.
    pub connections: AtomicUsize,
    /// Tasks handed to worker threads and not finished yet.
    pub worker_inflight: AtomicUsize,
    /// File bytes the loop sent, by strategy.
    pub transfers: TransferCounters,
    /// The loop is shutting down: a worker finishing the last in-flight
    /// task wakes it.
    pub shutting_down: AtomicBool,
}

impl LoopShared {
    pub(crate) fn new(id: usize, tx: Sender<Task>, waker: mio::Waker) -> LoopShared {
        LoopShared {
            id,
            tx,
            waker,
            notified: AtomicBool::new(false),
            next_timer: AtomicU64::new(1),
            counters: LoopCounters::default(),
            thread: OnceLock::new(),
            connections: AtomicUsize::new(0),
            worker_inflight: AtomicUsize::new(0),
            transfers: TransferCounters::default(),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Called by the loop before it blocks: later submissions must wake it.
    pub(crate) fn arm_wakeup(&self) {
        self.notified.store(false, Ordering::SeqCst);
    }

    /// Called by the loop when it is awake anyway, to spare senders a wake.
    pub(crate) fn disarm_wakeup(&self) {
        self.notified.store(true, Ordering::SeqCst);
    }
}

/// A cloneable, `Send` handle to an event loop.
///
/// Threading: usable from any thread. Work posted through it runs on the
/// loop's thread, in the order it was posted from any one thread.
#[derive(Clone)]
pub struct EventLoopHandle {
    pub(crate) shared: Arc<LoopShared>,
}

impl fmt::Debug for EventLoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoopHandle")
            .field("id", &self.shared.id)
            .finish()
    }
}

impl EventLoopHandle {
    /// Posts an internal task; `false` if the loop has stopped.
    pub(crate) fn submit(&self, task: Task) -> bool {
        if self.shared.tx.send(task).is_err() {
            return false;
        }
        if !self.shared.notified.swap(true, Ordering::SeqCst) {
            // A failed wake means the loop's poller is gone: it is stopping.
            let _ = self.shared.waker.wake();
        }
        true
    }

    /// Runs `task` on the loop's thread. Returns `false` if the loop has
    /// stopped (the task is dropped).
    pub fn execute(&self, task: impl FnOnce() + Send + 'static) -> bool {
        self.submit(Box::new(move |_| task()))
    }

    pub(crate) fn next_timer_id(&self) -> TimerId {
        TimerId(self.shared.next_timer.fetch_add(1, Ordering::Relaxed))
    }

    /// Schedules an internal timer task.
    pub(crate) fn schedule_task(
        &self,
        delay: Duration,
        period: Option<Duration>,
        task: Box<dyn FnMut(&mut EventLoop) + Send>,
    ) -> TimerId {
        let id = self.next_timer_id();
        let deadline = Instant::now() + delay;
        self.submit(Box::new(move |el| {
            el.services.timers.insert(
                id,
                Timer {
                    deadline,
                    period,
                    task,
                },
            )
        }));
        id
    }

    /// Runs `task` on the loop once `delay` has passed.
    pub fn schedule(&self, delay: Duration, task: impl FnOnce() + Send + 'static) -> TimerId {
        let mut task = Some(task);
        self.schedule_task(
            delay,
            None,
            Box::new(move |_| {
                if let Some(task) = task.take() {
                    task()
                }
            }),
        )
    }

    /// Runs `task` on the loop after `initial_delay`, then every `period`
    /// (at a fixed rate; a run more than a period late restarts the rate
    /// from then instead of catching up in a burst).
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    pub fn schedule_at_fixed_rate(
        &self,
        initial_delay: Duration,
        period: Duration,
        mut task: impl FnMut() + Send + 'static,
    ) -> TimerId {
        assert!(
            !period.is_zero(),
            "a fixed-rate timer needs a period above zero"
        );
        self.schedule_task(initial_delay, Some(period), Box::new(move |_| task()))
    }

    /// Cancels a timer of this loop. Safe to call for a timer that already
    /// fired or was cancelled.
    pub fn cancel(&self, id: TimerId) {
        self.submit(Box::new(move |el| {
            el.services.timers.cancel(id);
        }));
    }

    /// Whether the caller is running on this loop's thread.
    pub fn in_event_loop(&self) -> bool {
        self.shared.thread.get() == Some(&std::thread::current().id())
    }

    /// The loop's number within its group.
    pub fn id(&self) -> usize {
        self.shared.id
    }

    /// Connections registered on the loop now.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// The loop's counters.
    pub fn stats(&self) -> LoopStats {
        self.shared.counters.snapshot()
    }

    /// File bytes and system calls of the loop, by transfer strategy.
    pub fn transfer_stats(&self) -> TransferStats {
        self.shared.transfers.snapshot()
    }
}
