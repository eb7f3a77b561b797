//! The handle other threads use to reach an event loop: post a task,
//! schedule or cancel a timer, read its counters. Everything it does goes
//! through the loop's mailbox, so the loop's own state stays
//! single-threaded.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crate::channel::env::ChannelMsg;
use crate::file_region::{TransferCounters, TransferStats};
use crate::reactor::event_loop::{EventLoop, TimerAction};
use crate::reactor::mailbox::Mailbox;
use crate::reactor::timer_queue::TimerId;
use crate::stats::{LoopCounters, LoopStats};
use crate::time::saturating_add;
use crate::token::Token;

/// Work for a loop, posted from any thread.
pub(crate) enum Task {
    /// A user closure ([`EventLoopHandle::execute`]).
    Run(Box<dyn FnOnce() + Send>),
    /// Work for one channel (a handle's writes, a worker's replies).
    Channel(Token, ChannelMsg),
    /// The loop's own work: registrations, hand-offs, shutdown.
    Loop(Box<dyn FnOnce(&mut EventLoop) + Send>),
}

/// What an event loop shares with its handles.
pub(crate) struct LoopShared {
    pub id: usize,
    pub mailbox: Mailbox<Task, mio::Waker>,
    next_timer: AtomicU64,
    pub counters: Arc<LoopCounters>,
    pub transfers: Arc<TransferCounters>,
    pub thread: OnceLock<ThreadId>,
    /// Connections registered on the loop, or handed to it and on their
    /// way, for least-connections balancing.
    pub connections: AtomicUsize,
    /// Handler tasks of this loop's channels out on worker threads.
    pub worker_inflight: AtomicUsize,
    /// The loop is shutting down: a worker finishing the last in-flight
    /// task wakes it.
    pub shutting_down: AtomicBool,
}

impl LoopShared {
    pub(crate) fn new(id: usize, mailbox: Mailbox<Task, mio::Waker>) -> LoopShared {
        LoopShared {
            id,
            mailbox,
            next_timer: AtomicU64::new(1),
            counters: Arc::default(),
            transfers: Arc::default(),
            thread: OnceLock::new(),
            connections: AtomicUsize::new(0),
            worker_inflight: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
        }
    }
}

impl fmt::Debug for LoopShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopShared")
            .field("id", &self.id)
            .finish_non_exhaustive()
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
    /// Posts a task; gives it back if the loop has stopped.
    pub(crate) fn post(&self, task: Task) -> Result<(), Task> {
        self.shared.mailbox.post(task)
    }

    /// Runs `f` with the loop at hand, on its thread; `false` if the loop
    /// has stopped.
    pub(crate) fn run_on_loop(&self, f: impl FnOnce(&mut EventLoop) + Send + 'static) -> bool {
        self.post(Task::Loop(Box::new(f))).is_ok()
    }

    /// Sends `msg` to the channel `token` of this loop; gives it back if
    /// the loop has stopped.
    pub(crate) fn post_to_channel(&self, token: Token, msg: ChannelMsg) -> Result<(), ChannelMsg> {
        match self.post(Task::Channel(token, msg)) {
            Ok(()) => Ok(()),
            Err(Task::Channel(_, msg)) => Err(msg),
            Err(_) => unreachable!("the mailbox gives back what it was given"),
        }
    }

    /// Runs `task` on the loop's thread. Returns `false` if the loop has
    /// stopped (the task is dropped).
    pub fn execute(&self, task: impl FnOnce() + Send + 'static) -> bool {
        self.post(Task::Run(Box::new(task))).is_ok()
    }

    pub(crate) fn next_timer_id(&self) -> TimerId {
        TimerId::from_raw(self.shared.next_timer.fetch_add(1, Ordering::Relaxed))
    }

    /// Schedules a timer that runs `task` on the loop.
    fn schedule_timer(
        &self,
        delay: Duration,
        period: Option<Duration>,
        task: Box<dyn FnMut() + Send>,
    ) -> TimerId {
        let id = self.next_timer_id();
        let deadline = saturating_add(Instant::now(), delay);
        self.run_on_loop(move |el| el.insert_timer(id, deadline, period, TimerAction::Task(task)));
        id
    }

    /// Runs `task` on the loop once `delay` has passed. A delay too large
    /// to represent means never.
    pub fn schedule(&self, delay: Duration, task: impl FnOnce() + Send + 'static) -> TimerId {
        let mut task = Some(task);
        self.schedule_timer(
            delay,
            None,
            Box::new(move || {
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
    /// A zero `period` is refused (`InvalidInput`): the task would run
    /// without pause and starve the loop.
    pub fn schedule_at_fixed_rate(
        &self,
        initial_delay: Duration,
        period: Duration,
        task: impl FnMut() + Send + 'static,
    ) -> io::Result<TimerId> {
        if period.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "schedule_at_fixed_rate: the period must be above zero",
            ));
        }
        Ok(self.schedule_timer(initial_delay, Some(period), Box::new(task)))
    }

    /// Cancels a timer of this loop. Safe to call for a timer that already
    /// fired or was cancelled.
    pub fn cancel(&self, id: TimerId) {
        self.run_on_loop(move |el| el.cancel_timer(id));
    }

    /// Whether the caller is running on this loop's thread.
    pub fn in_event_loop(&self) -> bool {
        self.shared.thread.get() == Some(&std::thread::current().id())
    }

    /// The loop's number within its group.
    pub fn id(&self) -> usize {
        self.shared.id
    }

    /// Connections registered on the loop now (with those handed to it and
    /// on their way).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// The loop's counters.
    pub fn stats(&self) -> LoopStats {
        self.shared.counters.snapshot()
    }

    /// The loop's metrics now: its counters, gauges and histograms (see
    /// [`metrics`](crate::metrics)).
    pub fn metrics(&self) -> crate::metrics::LoopMetrics {
        crate::metrics::LoopMetrics::of(self)
    }

    /// File bytes and system calls of the loop, by transfer strategy.
    pub fn transfer_stats(&self) -> TransferStats {
        self.shared.transfers.snapshot()
    }

    /// A handler task of one of this loop's channels went to a worker.
    pub(crate) fn worker_task_started(&self) {
        self.shared.worker_inflight.fetch_add(1, Ordering::SeqCst);
    }

    /// A handler task of one of this loop's channels ended on its worker;
    /// wakes the loop if it is shutting down and that was the last one.
    pub(crate) fn worker_task_ended(&self) {
        let left = self.shared.worker_inflight.fetch_sub(1, Ordering::SeqCst) - 1;
        if left == 0 && self.shared.shutting_down.load(Ordering::SeqCst) {
            self.execute(|| {});
        }
    }
}
