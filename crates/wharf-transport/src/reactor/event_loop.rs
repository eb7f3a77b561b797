//! The event loop: one thread that waits for readiness, dispatches it to
//! what is registered, serves its ready list, fires its timers and runs the
//! tasks other threads post. That is all it does; the units it dispatches
//! to own their behaviour: the [`Acceptor`] accepting, the [`Connector`]
//! connecting, each [`Connection`] reading, writing and closing, the
//! graceful [`Shutdown`]'s phases.
//!
//! One iteration: poll (blocking until an event, a task, or the next timer),
//! dispatch the events (writable before readable), serve the ready list
//! (edge-triggered sockets that used up their read budget, flushes that used
//! up their spin budget), fire due timers, run queued tasks. A connection's
//! callbacks may ask for a close or cause an error; the connection settles
//! that after the callback returns ([`Connection::settle`]), so a handler is
//! never re-entered, and a handler that panics takes down its connection
//! only. Other threads reach the loop only through its
//! [`EventLoopHandle`].

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Events;

use crate::channel::closing::Settled;
use crate::channel::connection::Connection;
use crate::channel::env::{ChannelEnv, ChannelTimer, Readiness, TimerOp};
use crate::reactor::acceptor::Acceptor;
use crate::reactor::connector::Connector;
use crate::reactor::handle::{LoopShared, Task};
use crate::reactor::idle::IdleTrim;
use crate::reactor::mailbox::Inbox;
use crate::reactor::poller::Poller;
use crate::reactor::shutdown::Shutdown;
use crate::reactor::slots::Slots;
use crate::reactor::timer_queue::{TimerId, TimerQueue};
use crate::stats::{LoopCounters, add, shift};
use crate::token::Token;

/// Tasks run per iteration at most, so a flood of tasks cannot starve I/O.
const TASK_BUDGET: usize = 1024;

/// What a slot of the loop holds. Connections, nearly every entry, are
/// kept inline: boxing them would add an allocation per connection and an
/// indirection per event.
pub(crate) enum Slot {
    Listener(Acceptor),
    Conn(Connection),
    Connecting(Connector),
}

/// What a loop timer does when it fires.
pub(crate) enum TimerAction {
    /// A timer of one channel.
    Channel(Token, ChannelTimer),
    /// A listener's accept back-off ended.
    ResumeAccept(Token),
    /// A connect took too long.
    ConnectTimeout(Token),
    /// A user task ([`EventLoopHandle::schedule`](crate::EventLoopHandle::schedule)).
    Task(Box<dyn FnMut() + Send>),
}

/// One event loop. Lives on its own thread; see the module docs.
pub(crate) struct EventLoop {
    pub(crate) shared: Arc<LoopShared>,
    pub(crate) poller: Poller,
    events: Events,
    pub(crate) slots: Slots<Slot>,
    inbox: Inbox<Task>,
    pub(crate) timers: TimerQueue<TimerAction>,
    /// What channels see of the loop (time, ready list, pipe, counters).
    pub(crate) env: ChannelEnv,
    pub(crate) shutdown: Option<Shutdown>,
    /// Something happened this iteration (for the quiet period).
    pub(crate) active: bool,
    pub(crate) idle: IdleTrim,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("id", &self.shared.id)
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// Counts what a connection's callbacks changed for the loop's metrics:
/// writability flips the handler was told of since `flips_before` (and a
/// backpressure pause if they left it unwritable), and its bytes queued for
/// output, against what was counted for it last time.
fn account(conn: &mut Connection, counters: &LoopCounters, flips_before: u32) {
    let core = &mut conn.core;
    let flips = u64::from(core.io.notified_flips.wrapping_sub(flips_before));
    if flips > 0 {
        add(&counters.writability_flips, flips);
        if core.config.backpressure && !core.shared.is_writable() {
            add(&counters.backpressure_pauses, 1);
        }
    }
    let queued = core.shared.pending();
    let was = std::mem::replace(&mut core.io.outbound_counted, queued);
    if queued != was {
        shift(&counters.outbound_queued, queued as i64 - was as i64);
    }
}

impl EventLoop {
    pub(crate) fn new(
        shared: Arc<LoopShared>,
        poller: Poller,
        inbox: Inbox<Task>,
        env: ChannelEnv,
    ) -> EventLoop {
        EventLoop {
            shared,
            poller,
            events: Events::with_capacity(1024),
            slots: Slots::default(),
            inbox,
            timers: TimerQueue::default(),
            env,
            shutdown: None,
            active: false,
            idle: IdleTrim::default(),
        }
    }

    /// Runs the loop until its shutdown completes.
    pub(crate) fn run(mut self) {
        let _ = self.shared.thread.set(std::thread::current().id());
        loop {
            let work_waiting = self.shared.mailbox.arm(&self.inbox);
            let timeout = if work_waiting || self.env.ready_len() > 0 {
                Some(Duration::ZERO)
            } else {
                self.poll_timeout()
            };
            if let Err(e) = self.poller.poll(&mut self.events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                let event_loop = self.shared.id;
                log::error!(event_loop, error:% = e; "event loop {event_loop}: poll failed: {e}");
                break;
            }
            self.shared.mailbox.disarm();
            self.env.now = Instant::now();
            self.active = false;
            add(&self.env.counters.polls, 1);
            self.dispatch_events();
            self.run_ready();
            self.run_timers();
            self.run_tasks();
            // The loop lag: how long this iteration kept the loop from
            // waiting (and so from seeing what arrived meanwhile).
            self.env
                .counters
                .loop_lag
                .record(self.env.now.elapsed().as_nanos() as u64);
            if self.shutdown_finished() {
                break;
            }
            self.idle_step();
        }
        self.teardown();
    }

    /// The poll timeout: until the next timer, the next shutdown check, or
    /// the moment an idle loop gives back its cached memory.
    fn poll_timeout(&mut self) -> Option<Duration> {
        let mut until = self.timers.next_deadline();
        for other in [self.shutdown_wake_at(), self.idle.wake_at()] {
            until = match (until, other) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        until.map(|t| t.saturating_duration_since(Instant::now()))
    }

    fn dispatch_events(&mut self) {
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        let mut count = 0;
        for event in events.iter() {
            count += 1;
            let token = Token::from_mio(event.token());
            if token == Token::WAKER {
                add(&self.env.counters.wakeups, 1);
                continue;
            }
            self.active = true;
            let readiness = Readiness {
                readable: event.is_readable(),
                writable: event.is_writable(),
                read_closed: event.is_read_closed(),
                write_closed: event.is_write_closed(),
                error: event.is_error(),
            };
            self.dispatch(token, readiness);
        }
        add(&self.env.counters.events, count);
        self.env.counters.events_per_poll.record(count);
        self.events = events;
    }

    /// Hands one event to what `token` names; a stale token names nothing.
    fn dispatch(&mut self, token: Token, r: Readiness) {
        match self.slots.get(token) {
            Some(Slot::Listener(_)) => self.accept(token),
            Some(Slot::Conn(c)) if c.core.relay.is_some() => self.relay_event(token, r),
            Some(Slot::Conn(_)) => self.on_conn(token, |conn, env| conn.on_event(r, env)),
            Some(Slot::Connecting(_)) => self.connect_event(token, r),
            None => {}
        }
    }

    /// Runs `f` on the connection `token` names with the loop's
    /// environment, then settles the connection.
    pub(crate) fn on_conn(
        &mut self,
        token: Token,
        f: impl FnOnce(&mut Connection, &mut ChannelEnv),
    ) {
        debug_assert!(self.on_loop_thread(), "channel state touched off its loop");
        let Some(Slot::Conn(conn)) = self.slots.get_mut(token) else {
            return;
        };
        f(conn, &mut self.env);
        self.settle(token);
    }

    /// Lets the connection settle what its callbacks asked for, applies
    /// the timer changes, and re-registers or closes it as it says.
    pub(crate) fn settle(&mut self, token: Token) {
        loop {
            let Some(Slot::Conn(conn)) = self.slots.get_mut(token) else {
                return;
            };
            let flips = conn.core.io.notified_flips;
            let settled = conn.settle(&mut self.env);
            account(conn, &self.env.counters, flips);
            self.apply_timer_ops();
            match settled {
                Settled::Open(None) => return,
                Settled::Open(Some(interest)) => {
                    add(&self.env.counters.epoll_ctl, 1);
                    let Some(Slot::Conn(conn)) = self.slots.get_mut(token) else {
                        return;
                    };
                    match self.poller.modify(&conn.core.socket, token, interest) {
                        Ok(()) => return,
                        // Settle again: the failure closes it.
                        Err(e) => conn.core.fail_io(e),
                    }
                }
                Settled::Close => return self.close(token),
            }
        }
    }

    /// Applies the timer changes channels asked for.
    pub(crate) fn apply_timer_ops(&mut self) {
        for op in self.env.take_timer_ops() {
            match op {
                TimerOp::Schedule {
                    id,
                    at,
                    token,
                    timer,
                } => self
                    .timers
                    .insert(id, at, None, TimerAction::Channel(token, timer)),
                TimerOp::Cancel(id) => {
                    self.timers.cancel(id);
                }
            }
        }
    }

    fn run_ready(&mut self) {
        for _ in 0..self.env.ready_len() {
            let Some(token) = self.env.pop_ready() else {
                break;
            };
            match self.slots.get(token) {
                Some(Slot::Listener(_)) => self.accept_again(token),
                Some(Slot::Conn(c)) if c.core.relay.is_some() => {
                    self.active = true;
                    self.relay_ready(token);
                }
                Some(Slot::Conn(_)) => {
                    self.active = true;
                    self.on_conn(token, |conn, env| conn.on_ready(env));
                }
                _ => {}
            }
        }
    }

    fn run_timers(&mut self) {
        let now = self.env.now;
        while let Some(mut expired) = self.timers.pop_expired(now) {
            add(&self.env.counters.timers, 1);
            let id = expired.id;
            match &mut expired.payload {
                TimerAction::Channel(token, timer) => {
                    let (token, timer) = (*token, *timer);
                    self.on_conn(token, |conn, env| conn.on_timer(id, timer, env));
                }
                TimerAction::ResumeAccept(token) => self.resume_accepting(*token),
                TimerAction::ConnectTimeout(token) => self.connect_timed_out(*token),
                TimerAction::Task(task) => {
                    self.active = true;
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(task)).is_err() {
                        let event_loop = self.shared.id;
                        log::error!(event_loop; "a timer task panicked on event loop {event_loop}");
                    }
                }
            }
            self.timers.done(expired, now);
        }
    }

    fn run_tasks(&mut self) {
        for _ in 0..TASK_BUDGET {
            let Some(task) = self.inbox.try_take() else {
                break;
            };
            self.active = true;
            add(&self.env.counters.tasks, 1);
            match task {
                Task::Channel(token, msg) => match self.slots.get(token) {
                    Some(Slot::Conn(_)) => {
                        self.on_conn(token, |conn, env| conn.on_message(msg, env))
                    }
                    _ => msg.abandon(),
                },
                Task::Run(f) => {
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
                        let event_loop = self.shared.id;
                        log::error!(event_loop; "a task panicked on event loop {event_loop}");
                    }
                }
                Task::Loop(f) => f(self),
            }
        }
    }

    /// Adds a timer (for the loop's handle).
    pub(crate) fn insert_timer(
        &mut self,
        id: TimerId,
        deadline: Instant,
        period: Option<Duration>,
        timeout: TimerAction,
    ) {
        self.timers.insert(id, deadline, period, timeout);
    }

    /// Cancels a timer (for the loop's handle).
    pub(crate) fn cancel_timer(&mut self, id: TimerId) {
        self.timers.cancel(id);
    }

    /// Drains the mailbox of a loop that has stopped: channel messages give
    /// back what they hold, the rest is dropped.
    pub(crate) fn drain_tasks(&mut self) {
        while let Some(task) = self.inbox.try_take() {
            if let Task::Channel(_, msg) = task {
                msg.abandon();
            }
        }
    }

    /// Whether the calling thread is this loop's (for debug assertions).
    pub(crate) fn on_loop_thread(&self) -> bool {
        self.shared.thread.get() == Some(&std::thread::current().id())
    }
}
