//! The worker pool of the worker-pool reactor modes: threads that run
//! handlers, so a handler that computes (or blocks) does not hold up the
//! event loop doing the I/O.
//!
//! Each connection is pinned to one worker (by channel id), and each worker
//! runs its tasks in order, so a connection's events reach its handler in
//! order and never concurrently. Each worker counts its tasks and times a
//! sample of them ([`metrics`](crate::metrics)).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use wharf_buf::Allocator;

use crate::channel::shared::ChannelShared;
use crate::metrics::{Sampler, WorkerCounters};
use crate::reactor::handle::EventLoopHandle;

type WorkerTask = Box<dyn FnOnce() + Send>;

/// A fixed set of worker threads.
pub(crate) struct WorkerPool {
    senders: Mutex<Vec<Sender<WorkerTask>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Each worker's counters, in order.
    pub(crate) counters: Vec<Arc<WorkerCounters>>,
}

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool").finish_non_exhaustive()
    }
}

impl WorkerPool {
    /// Starts `workers` threads named `{name}-{i}`; the handlers on them
    /// allocate from `allocator`, whose thread caches they trim when idle.
    /// One task in `timing` is timed (0: none).
    pub(crate) fn start(
        workers: usize,
        name: &str,
        allocator: Allocator,
        timing: u32,
    ) -> std::io::Result<Arc<WorkerPool>> {
        let mut senders = Vec::with_capacity(workers);
        let mut threads = Vec::with_capacity(workers);
        let mut all = Vec::with_capacity(workers);
        for i in 0..workers {
            let (tx, rx) = unbounded::<WorkerTask>();
            let counters = Arc::new(WorkerCounters::default());
            let mine = Arc::clone(&counters);
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || work(&rx, allocator, &mine, Sampler::new(timing)))?;
            senders.push(tx);
            threads.push(thread);
            all.push(counters);
        }
        Ok(Arc::new(WorkerPool {
            senders: Mutex::new(senders),
            threads: Mutex::new(threads),
            counters: all,
        }))
    }

    /// The worker for a channel (chosen by its id), counting its tasks
    /// against `owner`, the channel's loop, whose graceful shutdown waits
    /// for them.
    pub(crate) fn worker_for(
        &self,
        channel: &Arc<ChannelShared>,
        owner: EventLoopHandle,
    ) -> Option<WorkerRef> {
        let senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        if senders.is_empty() {
            return None;
        }
        let tx = senders[(channel.id.0 as usize) % senders.len()].clone();
        Some(WorkerRef { tx, owner })
    }

    /// Lets the workers finish their queues and joins them.
    pub(crate) fn shutdown(&self) {
        self.senders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// A worker thread: runs tasks in order until the pool shuts down; after a
/// second without any it gives back its thread cache (as idle loops do),
/// once per idle spell.
fn work(
    tasks: &Receiver<WorkerTask>,
    allocator: Allocator,
    counters: &WorkerCounters,
    mut timing: Sampler,
) {
    let mut trimmed = true;
    loop {
        match tasks.recv_timeout(IDLE_AFTER) {
            Ok(task) => {
                trimmed = false;
                let started = timing.start();
                if catch_unwind(AssertUnwindSafe(task)).is_err() {
                    log::error!("a worker task panicked");
                }
                counters.task_done(started);
            }
            Err(RecvTimeoutError::Timeout) if !trimmed => {
                trimmed = true;
                allocator.trim_thread_cache();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// How long a worker has nothing to do before it trims its cache.
const IDLE_AFTER: Duration = Duration::from_secs(1);

/// The worker one connection is pinned to.
#[derive(Clone)]
pub(crate) struct WorkerRef {
    tx: Sender<WorkerTask>,
    owner: EventLoopHandle,
}

/// Counts a task in flight on a worker against its loop; when the task
/// ends (even by a panic), uncounts it and wakes the loop if it is shutting
/// down and waits for that.
struct InFlight {
    owner: EventLoopHandle,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.owner.worker_task_ended();
    }
}

impl WorkerRef {
    /// Runs `task` on the worker, after the tasks queued before it.
    pub(crate) fn run(&self, task: impl FnOnce() + Send + 'static) {
        self.owner.worker_task_started();
        let guard = InFlight {
            owner: self.owner.clone(),
        };
        let task: WorkerTask = Box::new(move || {
            let _guard = guard;
            task();
        });
        // If the pool is gone the task is dropped, and its guard with it.
        let _ = self.tx.send(task);
    }
}
