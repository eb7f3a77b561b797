//! An event loop's thread: started with its poller, mailbox and counters,
//! shut down and joined; never left behind. A `LoopThread` dropped without
//! a shutdown (a bind that failed after its loops started, say) stops its
//! loop and joins it, so no thread is left in `epoll_wait` holding its
//! descriptors.

use std::cell::Cell;
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::channel::config::Trigger;
use crate::channel::env::ChannelEnv;
use crate::reactor::event_loop::EventLoop;
use crate::reactor::handle::{EventLoopHandle, LoopShared};
use crate::reactor::mailbox::mailbox;
use crate::reactor::poller::Poller;
use crate::time::saturating_add;

thread_local! {
    /// Whether this thread runs an event loop.
    static ON_A_LOOP: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread runs an event loop (of any group): blocking
/// there would stall every channel of that loop.
pub(crate) fn on_an_event_loop() -> bool {
    ON_A_LOOP.with(Cell::get)
}

/// An event loop thread.
#[derive(Debug)]
pub(crate) struct LoopThread {
    pub handle: EventLoopHandle,
    thread: Option<JoinHandle<()>>,
}

impl LoopThread {
    /// Starts loop number `id` on a thread called `name`.
    pub(crate) fn start(id: usize, trigger: Trigger, name: String) -> io::Result<LoopThread> {
        LoopThread::start_timed(id, trigger, name, crate::metrics::HANDLER_TIMING_SAMPLE)
    }

    /// [`start`](Self::start), timing one pipeline callback in `timing`
    /// (0: none; see [`metrics`](crate::metrics)).
    pub(crate) fn start_timed(
        id: usize,
        trigger: Trigger,
        name: String,
        timing: u32,
    ) -> io::Result<LoopThread> {
        let poller = Poller::new(trigger)?;
        let (mailbox, inbox) = mailbox(poller.waker()?);
        let shared = Arc::new(LoopShared::new(id, mailbox));
        let handle = EventLoopHandle {
            shared: Arc::clone(&shared),
        };
        let mut env = ChannelEnv::new(
            poller.is_level(),
            handle.clone(),
            Arc::clone(&shared.counters),
            Arc::clone(&shared.transfers),
        );
        env.timing = crate::metrics::Sampler::new(timing);
        let event_loop = EventLoop::new(shared, poller, inbox, env);
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            ON_A_LOOP.with(|on| on.set(true));
            if let Err(e) = crate::sys::signal::block_sigpipe() {
                log::warn!("blocking SIGPIPE on an event loop: {e}");
            }
            event_loop.run();
        })?;
        Ok(LoopThread {
            handle,
            thread: Some(thread),
        })
    }

    /// Starts the loop's graceful shutdown.
    pub(crate) fn begin_shutdown(&self, quiet: Duration, deadline: Instant) {
        self.handle
            .run_on_loop(move |el| el.begin_shutdown(quiet, deadline));
    }

    /// Waits for the loop's thread to end (unless called on that very
    /// thread, which cannot wait for itself: the loop ends on its own once
    /// its shutdown completes).
    pub(crate) fn join(&mut self) -> io::Result<()> {
        if self.handle.in_event_loop() {
            self.thread = None;
            return Ok(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| io::Error::other("an event loop thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for LoopThread {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.begin_shutdown(
                Duration::ZERO,
                saturating_add(Instant::now(), Duration::from_secs(1)),
            );
            let _ = self.join();
        }
    }
}

/// Shuts loops down in stages: each stage is started, then joined, before
/// the next, so connections handed from one stage to the next are never
/// lost.
pub(crate) fn shut_down_loops(
    stages: [&mut [LoopThread]; 2],
    quiet: Duration,
    timeout: Duration,
) -> io::Result<()> {
    let deadline = saturating_add(Instant::now(), timeout);
    let mut result = Ok(());
    for stage in stages {
        for lt in stage.iter() {
            lt.begin_shutdown(quiet, deadline);
        }
        for lt in stage.iter_mut() {
            if let Err(e) = lt.join() {
                result = Err(e);
            }
        }
    }
    result
}
