//! The event loop: one thread that owns a poller, a slab of channels, the
//! timers and a task queue, and runs everything that touches them.
//!
//! One iteration: poll (blocking until an event, a task, or the next timer),
//! dispatch the events (writable before readable), serve the ready list
//! (edge-triggered sockets that used up their read budget, flushes that used
//! up their spin budget), fire due timers, run queued tasks. Other threads
//! reach the loop only through its [`EventLoopHandle`].
//!
//! Handler callbacks may ask for a close or cause an error; the loop carries
//! those out after the callback returns ([`EventLoop::settle`]), so a
//! handler is never re-entered. A handler that panics on the loop takes
//! down its connection only.

use std::any::Any;
use std::io;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, unbounded};
use mio::Events;
use mio::net::{TcpListener, TcpStream};
use slab::Slab;

use crate::channel::acceptor::{Acceptor, AcceptorTarget};
use crate::channel::config::Trigger;
use crate::channel::connection::{ConnCore, ConnState, Connection};
use crate::channel::handler::UserEvent;
use crate::channel::init::ChannelInit;
use crate::channel::shared::{ChannelId, ChannelShared};
use crate::reactor::handle::{EventLoopHandle, LoopShared, Task};
use crate::reactor::poller::{Poller, WAKER};
use crate::reactor::stats::{LoopCounters, add};
use crate::reactor::timer::{Timer, TimerId, TimerQueue};
use crate::sys::epoll::LtInterest;
use crate::sys::file::Pipe;

/// Tasks run per iteration at most, so a flood of tasks cannot starve I/O.
const TASK_BUDGET: usize = 1024;

/// Marks a ready-list entry for a listener rather than a connection.
const LISTENER: ChannelId = ChannelId(0);

/// The parts of a loop that channel code uses during callbacks.
pub(crate) struct LoopServices {
    pub handle: EventLoopHandle,
    pub timers: TimerQueue,
    /// The time of the current iteration (read once per poll).
    pub now: Instant,
    /// Whether sockets are level-triggered.
    pub level: bool,
    ready: std::collections::VecDeque<(usize, ChannelId)>,
    /// The loop's spare pipe for spliced file transfers.
    pub pipe: Option<Pipe>,
}

impl LoopServices {
    /// The loop's counters.
    pub(crate) fn counters(&self) -> &LoopCounters {
        &self.handle.shared.counters
    }

    /// Serves the connection again on the next iteration, without waiting
    /// for a new readiness event.
    pub(crate) fn push_ready(&mut self, token: usize, id: ChannelId, state: &mut ConnState) {
        if !state.queued {
            state.queued = true;
            self.ready.push_back((token, id));
        }
    }
}

/// What a slab entry holds.
#[expect(
    clippy::large_enum_variant,
    reason = "connections are nearly every entry; boxing them would add an allocation \
              per connection and an indirection per event"
)]
pub(crate) enum Slot {
    Listener(Acceptor),
    Conn(Connection),
    Connecting(Connecting),
}

/// A client connection waiting for its connect to finish.
pub(crate) struct Connecting {
    stream: TcpStream,
    init: Arc<ChannelInit>,
    reply: crossbeam_channel::Sender<io::Result<Arc<ChannelShared>>>,
    timer: Option<TimerId>,
}

/// Readiness of one event, copied out of mio's event.
#[derive(Debug, Clone, Copy)]
struct Readiness {
    readable: bool,
    writable: bool,
    read_closed: bool,
    write_closed: bool,
    error: bool,
}

/// A graceful shutdown in progress.
#[derive(Debug)]
struct Shutdown {
    quiet: Duration,
    deadline: Instant,
    last_activity: Instant,
    closing_all: bool,
}

/// One event loop. Lives on its own thread; see the module docs.
pub(crate) struct EventLoop {
    pub shared: Arc<LoopShared>,
    pub services: LoopServices,
    poller: Poller,
    events: Events,
    slots: Slab<Slot>,
    rx: Receiver<Task>,
    shutdown: Option<Shutdown>,
    /// Something happened this iteration (for the quiet period).
    active: bool,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("id", &self.shared.id)
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// Starts an event loop thread.
pub(crate) fn spawn(
    id: usize,
    trigger: Trigger,
    name: String,
) -> io::Result<(EventLoopHandle, JoinHandle<()>)> {
    let poller = Poller::new(trigger)?;
    let waker = poller.waker()?;
    let (tx, rx) = unbounded();
    let shared = Arc::new(LoopShared::new(id, tx, waker));
    let handle = EventLoopHandle {
        shared: Arc::clone(&shared),
    };
    let event_loop = EventLoop {
        services: LoopServices {
            handle: handle.clone(),
            timers: TimerQueue::default(),
            now: Instant::now(),
            level: poller.is_level(),
            ready: Default::default(),
            pipe: None,
        },
        shared,
        poller,
        events: Events::with_capacity(1024),
        slots: Slab::new(),
        rx,
        shutdown: None,
        active: false,
    };
    let thread = std::thread::Builder::new()
        .name(name)
        .spawn(move || event_loop.run())?;
    Ok((handle, thread))
}

impl EventLoop {
    fn run(mut self) {
        let _ = self.shared.thread.set(std::thread::current().id());
        loop {
            self.shared.arm_wakeup();
            let timeout = if !self.rx.is_empty() || !self.services.ready.is_empty() {
                Some(Duration::ZERO)
            } else {
                self.poll_timeout()
            };
            if let Err(e) = self.poller.poll(&mut self.events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                log::error!("event loop {}: poll failed: {e}", self.shared.id);
                break;
            }
            self.shared.disarm_wakeup();
            self.services.now = Instant::now();
            self.active = false;
            add(&self.services.counters().polls, 1);
            self.dispatch_events();
            self.run_ready();
            self.run_timers();
            self.run_tasks();
            if self.shutdown_finished() {
                break;
            }
        }
        self.teardown();
    }

    /// The poll timeout: until the next timer, or the next shutdown check.
    fn poll_timeout(&mut self) -> Option<Duration> {
        let now = Instant::now();
        let mut until = self.services.timers.next_deadline();
        if let Some(sd) = &self.shutdown {
            let check = if sd.closing_all {
                sd.deadline
            } else {
                (sd.last_activity + sd.quiet).min(sd.deadline)
            };
            until = Some(until.map_or(check, |t| t.min(check)));
        }
        until.map(|t| t.saturating_duration_since(now))
    }

    fn dispatch_events(&mut self) {
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        let mut count = 0;
        for event in events.iter() {
            count += 1;
            if event.token() == WAKER {
                add(&self.services.counters().wakeups, 1);
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
            self.dispatch(event.token().0, readiness);
        }
        add(&self.services.counters().events, count);
        self.events = events;
    }

    fn dispatch(&mut self, token: usize, r: Readiness) {
        match self.slots.get(token) {
            Some(Slot::Listener(_)) => self.accept(token),
            Some(Slot::Conn(_)) => {
                let hang_up = r.error || (r.read_closed && r.write_closed);
                let write = r.writable || r.error;
                let read = r.readable || r.read_closed || hang_up;
                self.guarded(token, |conn, services| {
                    if write {
                        conn.core.state.waiting_writable = false;
                        conn.core.flush(services);
                    }
                    if read {
                        conn.read(services, hang_up, r.read_closed || hang_up);
                    }
                });
                self.settle(token);
            }
            Some(Slot::Connecting(_)) => self.finish_connect(token, r),
            None => {}
        }
    }

    /// Runs `f` on a connection, catching a panic of its handler: the
    /// connection is then closed at once, without further handler calls.
    fn guarded(&mut self, token: usize, f: impl FnOnce(&mut Connection, &mut LoopServices)) {
        let Some(Slot::Conn(conn)) = self.slots.get_mut(token) else {
            return;
        };
        let services = &mut self.services;
        if catch_unwind(AssertUnwindSafe(|| f(&mut *conn, &mut *services))).is_err() {
            log::error!(
                "handler of channel {} panicked on event loop {}; closing the channel",
                conn.core.shared.id,
                self.shared.id
            );
            conn.core.state.abort = true;
            conn.core.state.poisoned = true;
        }
    }

    /// Carries out what the last callbacks asked for: error events,
    /// writability events, a graceful close, a half-close, level-triggered
    /// interest changes.
    pub(crate) fn settle(&mut self, token: usize) {
        debug_assert!(self.on_loop_thread(), "channel state touched off its loop");
        loop {
            let Some(Slot::Conn(conn)) = self.slots.get_mut(token) else {
                return;
            };
            let state = conn.core.state;
            if state.closed || state.poisoned {
                break;
            }
            if state.close_requested && !state.abort {
                if state.closing_since.is_none() {
                    self.start_closing(token);
                    continue;
                }
                conn.core.out.mark_flushed();
                conn.core.flush(&mut self.services);
            }
            if let Some(error) = conn.core.errors.pop_front() {
                self.guarded(token, |conn, services| {
                    conn.pipeline.error(&mut conn.core, services, error)
                });
                continue;
            }
            // Any flip since the last event is reported, with the flag as it
            // is now: a producer on another thread may have seen the channel
            // unwritable, and a flush here made it writable again before we
            // looked; it still needs to hear "writable".
            let flips = conn.core.shared.writability_flips();
            if !state.abort && flips != state.notified_flips {
                conn.core.state.notified_flips = flips;
                let writable = conn.core.shared.is_writable();
                self.guarded(token, |conn, services| {
                    conn.pipeline
                        .writability_changed(&mut conn.core, services, writable)
                });
                continue;
            }
            break;
        }
        let Some(Slot::Conn(conn)) = self.slots.get_mut(token) else {
            return;
        };
        let state = conn.core.state;
        let sent_all = !conn.core.out.has_flushed();
        let done = (state.close_requested && sent_all) || (state.input_closed && state.output_shut);
        // A graceful close also waits for the handler's tasks still on its
        // worker: their replies (to the last data, say) come back as
        // operations, and the last task to finish wakes the loop.
        if state.abort || state.closed || (done && !conn.core.shared.workers_busy()) {
            self.close_now(token);
            return;
        }
        if self.services.level {
            let wanted = conn.core.wanted_interest();
            if wanted != state.registered {
                conn.core.state.registered = wanted;
                let counters = &self.services.handle.shared.counters;
                if let Err(e) = self
                    .poller
                    .modify(&conn.core.stream, token, wanted, counters)
                {
                    conn.core.fail_io(e);
                    self.close_now(token);
                }
            }
        }
    }

    /// Begins a graceful close: stop reading, flush everything written, and
    /// give up once the socket has taken nothing for the close timeout.
    fn start_closing(&mut self, token: usize) {
        let Some(Slot::Conn(conn)) = self.slots.get_mut(token) else {
            return;
        };
        let core = &mut conn.core;
        core.state.closing_since = Some(self.services.now);
        core.out.mark_flushed();
        core.flush(&mut self.services);
        if core.out.has_flushed() && !core.state.abort {
            let deadline = self.services.now + core.config.close_timeout;
            self.arm_close_timer(token, deadline);
        }
    }

    fn arm_close_timer(&mut self, token: usize, deadline: Instant) {
        let Some(Slot::Conn(conn)) = self.slots.get_mut(token) else {
            return;
        };
        let id = self.services.handle.next_timer_id();
        let channel = conn.core.shared.id;
        self.services.timers.insert(
            id,
            Timer {
                deadline,
                period: None,
                task: Box::new(move |el| el.close_timed_out(token, channel)),
            },
        );
        conn.core.close_timer = Some(id);
    }

    /// The close timer fired: a closing channel whose socket still takes
    /// data (a slow reader of a large last response) gets another period
    /// counted from its last write; one that took nothing is failed.
    fn close_timed_out(&mut self, token: usize, id: ChannelId) {
        if let Some(Slot::Conn(conn)) = self.slots.get_mut(token)
            && conn.core.shared.id == id
        {
            conn.core.close_timer = None;
            let next = conn.core.last_write + conn.core.config.close_timeout;
            if next > self.services.now {
                self.arm_close_timer(token, next);
                return;
            }
            conn.core.fail_io(io::Error::new(
                io::ErrorKind::TimedOut,
                "close timed out with data still queued",
            ));
            self.settle(token);
        }
    }

    /// Closes a connection now: deregister, drop what is queued, cancel its
    /// timers, tell the handler, close the socket.
    pub(crate) fn close_now(&mut self, token: usize) {
        let Some(Slot::Conn(_)) = self.slots.get(token) else {
            return;
        };
        let Slot::Conn(mut conn) = self.slots.remove(token) else {
            return;
        };
        let _ = self.poller.deregister(&mut conn.core.stream);
        let panicked = conn.core.state.poisoned;
        conn.core.state.closed = true;
        conn.core.shared.set_active(false);
        let dropped = conn.core.out.discard();
        conn.core.shared.release_pending(dropped);
        if dropped > 0 {
            // Queued data is thrown away (a close timeout, the shutdown
            // deadline): reset the connection so the peer cannot take the
            // cut-off stream for a complete one.
            let _ = socket2::SockRef::from(&conn.core.stream).set_linger(Some(Duration::ZERO));
        }
        conn.core.cancel_timers(&mut self.services);
        self.shared.connections.fetch_sub(1, Ordering::AcqRel);
        if let Some(live) = conn.live.take() {
            live.fetch_sub(1, Ordering::AcqRel);
        }
        if !panicked {
            let services = &mut self.services;
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                conn.pipeline.inactive(&mut conn.core, services)
            }));
            if outcome.is_err() {
                log::error!(
                    "handler of channel {} panicked in on_inactive",
                    conn.core.shared.id
                );
            }
        }
        // Dropping the stream closes the socket.
    }

    fn run_ready(&mut self) {
        for _ in 0..self.services.ready.len() {
            let Some((token, id)) = self.services.ready.pop_front() else {
                break;
            };
            if id == LISTENER {
                if let Some(Slot::Listener(acceptor)) = self.slots.get_mut(token) {
                    acceptor.queued = false;
                    self.accept(token);
                }
                continue;
            }
            match self.slots.get_mut(token) {
                Some(Slot::Conn(conn)) if conn.core.shared.id == id => {
                    conn.core.state.queued = false;
                }
                _ => continue,
            }
            self.active = true;
            self.guarded(token, |conn, services| {
                if conn.core.state.flush_pending {
                    conn.core.state.flush_pending = false;
                    conn.core.flush(services);
                }
                if conn.core.state.read_pending {
                    conn.read(services, false, false);
                }
            });
            self.settle(token);
        }
    }

    fn run_timers(&mut self) {
        let now = self.services.now;
        while let Some((id, mut timer)) = self.services.timers.pop_expired(now) {
            add(&self.services.counters().timers, 1);
            if catch_unwind(AssertUnwindSafe(|| (timer.task)(self))).is_err() {
                log::error!("a timer task panicked on event loop {}", self.shared.id);
            }
            self.services.timers.done(id, timer, now);
        }
    }

    fn run_tasks(&mut self) {
        for _ in 0..TASK_BUDGET {
            let Ok(task) = self.rx.try_recv() else { break };
            self.active = true;
            add(&self.services.counters().tasks, 1);
            if catch_unwind(AssertUnwindSafe(|| task(self))).is_err() {
                log::error!("a task panicked on event loop {}", self.shared.id);
            }
        }
    }

    // ----- registration -------------------------------------------------

    /// Registers an accepted or connected socket as a new channel and makes
    /// it active. Returns its token.
    pub(crate) fn register_connection(
        &mut self,
        stream: TcpStream,
        peer: Option<SocketAddr>,
        init: &Arc<ChannelInit>,
    ) -> Option<usize> {
        self.shared.connections.fetch_add(1, Ordering::AcqRel);
        self.register_counted(stream, peer, init)
    }

    /// `register_connection` for a connection already counted on this loop
    /// (by the acceptor that chose the loop, so that least-connections
    /// balancing sees hand-offs still in flight).
    pub(crate) fn register_counted(
        &mut self,
        mut stream: TcpStream,
        peer: Option<SocketAddr>,
        init: &Arc<ChannelInit>,
    ) -> Option<usize> {
        debug_assert!(self.on_loop_thread(), "registration off the loop thread");
        if let Err(e) = init.options.apply_to_stream(&stream) {
            log::warn!("setting socket options on a new connection: {e}");
        }
        let entry = self.slots.vacant_entry();
        let token = entry.key();
        let interest = LtInterest {
            read: init.config.auto_read,
            write: false,
        };
        if let Err(e) = self.poller.register(&mut stream, token, interest) {
            log::warn!("registering a new connection: {e}");
            self.shared.connections.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let shared = Arc::new(ChannelShared::new(
            token,
            self.services.handle.clone(),
            stream.local_addr().ok(),
            peer.or_else(|| stream.peer_addr().ok()),
            init.config.water_mark,
        ));
        let worker = init
            .workers
            .as_ref()
            .and_then(|pool| pool.worker_for(&shared, Arc::clone(&self.shared)));
        let pipeline = (init.factory)(&shared, &init.config, worker);
        let mut core = ConnCore::new(
            stream,
            Arc::clone(&shared),
            Arc::clone(&init.config),
            self.services.now,
        );
        core.state.registered = interest;
        entry.insert(Slot::Conn(Connection {
            core,
            pipeline,
            live: Some(Arc::clone(&init.live)),
        }));
        init.live.fetch_add(1, Ordering::AcqRel);
        shared.set_active(true);
        self.guarded(token, |conn, services| {
            conn.core.start_idle(services);
            conn.pipeline.active(&mut conn.core, services);
        });
        self.settle(token);
        Some(token)
    }

    /// Registers a listening socket whose connections go to `target`.
    pub(crate) fn register_listener(
        &mut self,
        mut listener: TcpListener,
        target: AcceptorTarget,
        init: Arc<ChannelInit>,
    ) -> io::Result<usize> {
        let entry = self.slots.vacant_entry();
        let token = entry.key();
        self.poller.register_listener(&mut listener, token, true)?;
        entry.insert(Slot::Listener(Acceptor::new(listener, target, init)));
        Ok(token)
    }

    /// Accepts connections, up to the read budget per event.
    fn accept(&mut self, token: usize) {
        let budget = match self.slots.get(token) {
            Some(Slot::Listener(a)) => a.init.config.max_messages_per_read.max(1),
            _ => return,
        };
        for _ in 0..budget {
            let Some(Slot::Listener(acceptor)) = self.slots.get_mut(token) else {
                return;
            };
            if acceptor.paused {
                return;
            }
            match acceptor.listener.accept() {
                Ok((stream, peer)) => {
                    acceptor.accepted();
                    add(&self.services.counters().accepts, 1);
                    self.hand_off(token, stream, peer);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if Acceptor::is_transient(&e) => {}
                Err(e) => {
                    let backoff = acceptor.pause(&e);
                    self.pause_accepting(token, backoff);
                    return;
                }
            }
        }
        // Budget used up: edge-triggered needs a nudge, level reports again.
        if !self.services.level
            && let Some(Slot::Listener(acceptor)) = self.slots.get_mut(token)
            && !acceptor.queued
        {
            acceptor.queued = true;
            self.services.ready.push_back((token, LISTENER));
        }
    }

    /// Stops accepting for `backoff` (descriptors ran out): the listener
    /// stays open, existing connections are served, and the loop does not
    /// spin on the pending connections.
    fn pause_accepting(&mut self, token: usize, backoff: Duration) {
        if let Some(Slot::Listener(acceptor)) = self.slots.get(token)
            && self.services.level
        {
            let counters = &self.services.handle.shared.counters;
            let _ = self
                .poller
                .modify(&acceptor.listener, token, LtInterest::default(), counters);
        }
        let id = self.services.handle.next_timer_id();
        self.services.timers.insert(
            id,
            Timer {
                deadline: self.services.now + backoff,
                period: None,
                task: Box::new(move |el| el.resume_accepting(token)),
            },
        );
    }

    fn resume_accepting(&mut self, token: usize) {
        let Some(Slot::Listener(acceptor)) = self.slots.get_mut(token) else {
            return;
        };
        acceptor.paused = false;
        if self.services.level {
            let counters = &self.services.handle.shared.counters;
            let interest = LtInterest {
                read: true,
                write: false,
            };
            let _ = self
                .poller
                .modify(&acceptor.listener, token, interest, counters);
        } else {
            // Connections waiting in the backlog bring no new edge.
            self.accept(token);
        }
    }

    /// Gives an accepted connection to this loop or to a sub-reactor.
    fn hand_off(&mut self, token: usize, stream: TcpStream, peer: SocketAddr) {
        let Some(Slot::Listener(acceptor)) = self.slots.get_mut(token) else {
            return;
        };
        let init = Arc::clone(&acceptor.init);
        if let Some(max) = init.max_connections
            && init.live.load(Ordering::Acquire) >= max
        {
            acceptor.rejected();
            // Closed at once: the peer sees an orderly end of stream.
            drop(stream);
            return;
        }
        match acceptor.target.next_loop() {
            None => {
                self.register_connection(stream, Some(peer), &init);
            }
            Some(sub) => {
                sub.shared.connections.fetch_add(1, Ordering::AcqRel);
                let posted = sub.submit(Box::new(move |el| {
                    el.register_counted(stream, Some(peer), &init);
                }));
                if !posted {
                    sub.shared.connections.fetch_sub(1, Ordering::AcqRel);
                    log::warn!("a sub-reactor has stopped; connection from {peer} dropped");
                }
            }
        }
    }

    /// Starts a client connection: the connect is already under way.
    pub(crate) fn register_connecting(
        &mut self,
        mut stream: TcpStream,
        init: Arc<ChannelInit>,
        timeout: Duration,
        reply: crossbeam_channel::Sender<io::Result<Arc<ChannelShared>>>,
    ) {
        let entry = self.slots.vacant_entry();
        let token = entry.key();
        let interest = LtInterest {
            read: false,
            write: true,
        };
        if let Err(e) = self.poller.register(&mut stream, token, interest) {
            let _ = reply.send(Err(e));
            return;
        }
        let id = self.services.handle.next_timer_id();
        self.services.timers.insert(
            id,
            Timer {
                deadline: self.services.now + timeout,
                period: None,
                task: Box::new(move |el| el.connect_timed_out(token)),
            },
        );
        entry.insert(Slot::Connecting(Connecting {
            stream,
            init,
            reply,
            timer: Some(id),
        }));
    }

    fn connect_timed_out(&mut self, token: usize) {
        if let Some(Slot::Connecting(c)) = self.slots.get_mut(token) {
            c.timer = None;
            self.fail_connect(
                token,
                io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
            );
        }
    }

    fn fail_connect(&mut self, token: usize, error: io::Error) {
        if let Slot::Connecting(mut c) = self.slots.remove(token) {
            let _ = self.poller.deregister(&mut c.stream);
            if let Some(id) = c.timer.take() {
                self.services.timers.cancel(id);
            }
            let _ = c.reply.send(Err(error));
        }
    }

    fn finish_connect(&mut self, token: usize, r: Readiness) {
        let Some(Slot::Connecting(c)) = self.slots.get_mut(token) else {
            return;
        };
        if !(r.writable || r.error || r.write_closed) {
            return;
        }
        if let Ok(Some(e)) | Err(e) = c.stream.take_error() {
            self.fail_connect(token, e);
            return;
        }
        match c.stream.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
            Err(e) => {
                self.fail_connect(token, e);
                return;
            }
        }
        let Slot::Connecting(mut c) = self.slots.remove(token) else {
            return;
        };
        if let Some(id) = c.timer.take() {
            self.services.timers.cancel(id);
        }
        let _ = self.poller.deregister(&mut c.stream);
        let reply = c.reply;
        match self.register_connection(c.stream, None, &c.init) {
            Some(new_token) => match self.slots.get(new_token) {
                Some(Slot::Conn(conn)) => {
                    let _ = reply.send(Ok(Arc::clone(&conn.core.shared)));
                }
                _ => {
                    let _ = reply.send(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the connection closed as soon as it opened",
                    )));
                }
            },
            None => {
                let _ = reply.send(Err(io::Error::other("could not register the connection")));
            }
        }
    }

    // ----- entry points for tasks and timers ----------------------------

    /// Applies operations made off the loop to a channel; `false` if the
    /// channel is gone.
    pub(crate) fn remote_ops(
        &mut self,
        token: usize,
        id: ChannelId,
        ops: Box<dyn Any + Send>,
    ) -> bool {
        match self.slots.get(token) {
            Some(Slot::Conn(conn)) if conn.core.shared.id == id && !conn.core.state.closed => {}
            _ => return false,
        }
        self.guarded(token, |conn, services| {
            conn.pipeline.remote_ops(&mut conn.core, services, ops)
        });
        self.settle(token);
        true
    }

    /// A channel's last handler task on a worker finished while the
    /// channel waited to close.
    pub(crate) fn settle_channel(&mut self, token: usize, id: ChannelId) {
        if let Some(Slot::Conn(conn)) = self.slots.get(token)
            && conn.core.shared.id == id
        {
            self.settle(token);
        }
    }

    /// The blocking-I/O pool has read a chunk a channel's file region was
    /// waiting for.
    pub(crate) fn file_data_ready(&mut self, token: usize, id: ChannelId) {
        match self.slots.get_mut(token) {
            Some(Slot::Conn(conn)) if conn.core.shared.id == id => {
                conn.core.state.waiting_file = false;
            }
            _ => return,
        }
        self.active = true;
        self.guarded(token, |conn, services| conn.core.flush(services));
        self.settle(token);
    }

    /// A user timer of a channel fired.
    pub(crate) fn fire_user_timer(
        &mut self,
        token: usize,
        id: ChannelId,
        timer: TimerId,
        user_token: u64,
    ) {
        match self.slots.get_mut(token) {
            Some(Slot::Conn(conn)) if conn.core.shared.id == id => {
                conn.core.user_timers.retain(|&t| t != timer);
            }
            _ => return,
        }
        self.guarded(token, |conn, services| {
            conn.pipeline
                .user_event(&mut conn.core, services, UserEvent::Timer(user_token))
        });
        self.settle(token);
    }

    /// A channel's idle timer fired: fire the idle events that are due.
    pub(crate) fn check_idle(&mut self, token: usize, id: ChannelId) {
        let due = match self.slots.get_mut(token) {
            Some(Slot::Conn(conn)) if conn.core.shared.id == id => {
                conn.core.due_idle_states(&mut self.services)
            }
            _ => return,
        };
        for state in due {
            self.guarded(token, |conn, services| {
                conn.pipeline
                    .user_event(&mut conn.core, services, UserEvent::Idle(state))
            });
        }
        self.settle(token);
    }

    // ----- shutdown -----------------------------------------------------

    /// Starts a graceful shutdown: listeners close at once; connections are
    /// served until nothing has happened for `quiet`, then closed after
    /// sending what they have queued; whatever is left at `deadline` is
    /// closed at once.
    pub(crate) fn begin_shutdown(&mut self, quiet: Duration, deadline: Instant) {
        let listeners: Vec<usize> = self
            .slots
            .iter()
            .filter(|(_, slot)| matches!(slot, Slot::Listener(_)))
            .map(|(token, _)| token)
            .collect();
        for token in listeners {
            if let Slot::Listener(mut acceptor) = self.slots.remove(token) {
                let _ = self.poller.deregister(&mut acceptor.listener);
            }
        }
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown = Some(Shutdown {
            quiet,
            deadline,
            last_activity: self.services.now,
            closing_all: false,
        });
    }

    /// Whether a shutdown in progress is complete; advances it otherwise.
    fn shutdown_finished(&mut self) -> bool {
        let now = self.services.now;
        let busy = self.active
            || self.shared.worker_inflight.load(Ordering::Acquire) > 0
            || self.slots.iter().any(|(_, slot)| match slot {
                Slot::Conn(conn) => !conn.core.user_timers.is_empty(),
                _ => false,
            });
        let Some(sd) = &mut self.shutdown else {
            return false;
        };
        if busy {
            sd.last_activity = now;
        }
        let open: Vec<usize> = self.slots.iter().map(|(token, _)| token).collect();
        if open.is_empty() && self.shared.worker_inflight.load(Ordering::Acquire) == 0 {
            return true;
        }
        if now >= sd.deadline {
            for token in open {
                self.abort_channel(token, "event loop shut down");
            }
            return true;
        }
        if !sd.closing_all && now.duration_since(sd.last_activity) >= sd.quiet {
            sd.closing_all = true;
            for token in open {
                match self.slots.get_mut(token) {
                    Some(Slot::Conn(conn)) => {
                        conn.core.request_close();
                        self.settle(token);
                    }
                    Some(Slot::Connecting(_)) => self.fail_connect(
                        token,
                        io::Error::new(io::ErrorKind::Interrupted, "event loop shut down"),
                    ),
                    _ => {}
                }
            }
            // Idle connections closed at once: done, unless handler work
            // (their `on_inactive`) is still on a worker, whose end wakes us.
            return self.slots.is_empty()
                && self.shared.worker_inflight.load(Ordering::SeqCst) == 0;
        }
        false
    }

    /// Closes a connection at once, dropping what it has queued, or fails
    /// a connect in progress with `why`; listeners are left alone.
    fn abort_channel(&mut self, token: usize, why: &str) {
        match self.slots.get_mut(token) {
            Some(Slot::Conn(conn)) => {
                conn.core.state.abort = true;
                self.close_now(token);
            }
            Some(Slot::Connecting(_)) => self.fail_connect(
                token,
                io::Error::new(io::ErrorKind::Interrupted, why.to_string()),
            ),
            _ => {}
        }
    }

    /// Closes whatever is left when the loop ends.
    fn teardown(&mut self) {
        let tokens: Vec<usize> = self.slots.iter().map(|(token, _)| token).collect();
        for token in tokens {
            if let Some(Slot::Listener(_)) = self.slots.get(token) {
                if let Slot::Listener(mut acceptor) = self.slots.remove(token) {
                    let _ = self.poller.deregister(&mut acceptor.listener);
                }
            } else {
                self.abort_channel(token, "event loop stopped");
            }
        }
        self.services.timers.clear();
    }

    /// Whether the calling thread is this loop's (for debug assertions).
    fn on_loop_thread(&self) -> bool {
        self.shared.thread.get() == Some(&std::thread::current().id())
    }
}
