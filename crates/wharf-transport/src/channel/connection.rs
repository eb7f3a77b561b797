//! One connection on its event loop: its socket, outbound queue and state,
//! and how it reads, flushes, half-closes and closes.
//!
//! The loop owns a [`Connection`] in its slab and is the only thread that
//! touches it. Handler code reaches it through a [`Context`](crate::Context)
//! during a callback; what a callback asks for that changes the
//! connection's life (close, errors, interest) is recorded in its state and
//! carried out by the loop when the callback returns, so nothing re-enters
//! the handler.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use crate::channel::codec::CodecError;
use crate::channel::config::{ChannelConfig, IdleConfig};
use crate::channel::handler::{ChannelError, IdleState};
use crate::channel::outbound::{OutboundBuffer, Written};
use crate::channel::pipeline::ChannelPipeline;
use crate::channel::recv::AdaptiveRecvSizer;
use crate::channel::shared::ChannelShared;
use crate::file_region::{TransferCx, Waker};
use crate::reactor::event_loop::LoopServices;
use crate::reactor::stats::add;
use crate::reactor::timer::{Timer, TimerId};
use crate::sys::epoll::LtInterest;

/// The life of a connection, as flags.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ConnState {
    /// Reading is on (the handler's backpressure switch).
    pub auto_read: bool,
    /// The peer's FIN (or an error) was read: nothing more to read.
    pub input_closed: bool,
    /// An event said the peer closed its side: read to the end of stream
    /// even past short reads, also when reading resumes from the ready
    /// list (no new edge comes for a FIN already reported).
    pub peer_closed: bool,
    /// End of input was passed to the pipeline.
    pub eof_delivered: bool,
    /// Shut down the output once the queue is sent.
    pub shutdown_output_requested: bool,
    /// The output is shut down.
    pub output_shut: bool,
    /// Close once the queue is sent.
    pub close_requested: bool,
    /// When the close was asked for (for the close timeout).
    pub closing_since: Option<Instant>,
    /// Close now, without sending the queue (the socket failed).
    pub abort: bool,
    /// The socket is closed.
    pub closed: bool,
    /// A write would block: wait for writability.
    pub waiting_writable: bool,
    /// A file region waits for the blocking-I/O pool to read.
    pub waiting_file: bool,
    /// On the loop's ready list.
    pub queued: bool,
    /// Reading used up its budget (edge-triggered): read again soon.
    pub read_pending: bool,
    /// Flushing used up its spin budget: flush again soon.
    pub flush_pending: bool,
    /// The writability flips the handler has been told about.
    pub notified_flips: u64,
    /// A decode error happened: discard further input.
    pub decode_failed: bool,
    /// The handler panicked: it gets no more calls.
    pub poisoned: bool,
    /// The pipeline holds decoded messages that reading was turned off
    /// before it could deliver: deliver them when reading resumes.
    pub held_input: bool,
    /// Level-triggered interest currently registered.
    pub registered: LtInterest,
}

/// Per-kind idle deadlines (Netty's `IdleStateHandler`).
#[derive(Debug, Default)]
pub(crate) struct IdleTracker {
    reader_next: Option<Instant>,
    writer_next: Option<Instant>,
    all_next: Option<Instant>,
    pub timer: Option<TimerId>,
}

/// The state of a connection that a handler's context works on.
#[derive(Debug)]
pub(crate) struct ConnCore {
    pub stream: TcpStream,
    pub shared: Arc<ChannelShared>,
    pub config: Arc<ChannelConfig>,
    pub out: OutboundBuffer,
    pub recv: AdaptiveRecvSizer,
    pub state: ConnState,
    pub errors: VecDeque<ChannelError>,
    pub last_read: Instant,
    pub last_write: Instant,
    pub idle: IdleTracker,
    /// Timers the handler scheduled, cancelled when the channel closes.
    pub user_timers: Vec<TimerId>,
    pub close_timer: Option<TimerId>,
}

impl ConnCore {
    pub(crate) fn new(
        stream: TcpStream,
        shared: Arc<ChannelShared>,
        config: Arc<ChannelConfig>,
        now: Instant,
    ) -> ConnCore {
        let state = ConnState {
            auto_read: config.auto_read,
            ..ConnState::default()
        };
        ConnCore {
            stream,
            shared,
            recv: AdaptiveRecvSizer::new(config.recv_size),
            config,
            out: OutboundBuffer::default(),
            state,
            errors: VecDeque::new(),
            last_read: now,
            last_write: now,
            idle: IdleTracker::default(),
            user_timers: Vec::new(),
            close_timer: None,
        }
    }

    /// Whether writes are still accepted.
    pub(crate) fn accepts_writes(&self) -> bool {
        !self.state.closed
            && !self.state.abort
            && !self.state.output_shut
            && !self.state.shutdown_output_requested
    }

    /// Records an I/O failure: the handler hears of it, then the connection
    /// is closed without sending what is queued.
    pub(crate) fn fail_io(&mut self, error: io::Error) {
        if !self.state.abort {
            self.state.abort = true;
            self.errors.push_back(ChannelError::Io(error));
        }
    }

    /// Records a decode failure: the handler hears of it, further input is
    /// discarded, and the connection closes after sending what is queued.
    pub(crate) fn fail_decode(&mut self, error: CodecError) {
        if !self.state.decode_failed {
            self.state.decode_failed = true;
            self.state.close_requested = true;
            self.errors.push_back(ChannelError::Decode(error));
        }
    }

    /// Asks for a graceful close.
    pub(crate) fn request_close(&mut self) {
        self.state.close_requested = true;
    }

    /// Asks for the output to be shut down once the flushed queue is sent.
    pub(crate) fn request_shutdown_output(&mut self) {
        self.state.shutdown_output_requested = true;
    }

    /// Turns reading on or off.
    pub(crate) fn set_auto_read(&mut self, on: bool, services: &mut LoopServices) {
        let was = self.state.auto_read;
        self.state.auto_read = on;
        if on && !was && (!services.level || self.state.held_input) {
            // Edge-triggered: data that arrived meanwhile brings no new edge;
            // and held messages wait for no socket event at all.
            self.state.read_pending = true;
            services.push_ready(self.shared.token, self.shared.id, &mut self.state);
        }
    }

    /// Writes flushed entries until the queue is drained, the socket would
    /// block, a file region waits for the disk, or the spin budget is used
    /// up (then the loop flushes again on its next iteration, after serving
    /// other sockets).
    pub(crate) fn flush(&mut self, services: &mut LoopServices) {
        if self.state.closed
            || self.state.abort
            || self.state.waiting_writable
            || self.state.waiting_file
        {
            return;
        }
        let mut spins = 0;
        while self.out.has_flushed() {
            if spins == self.config.write_spin_count {
                self.state.flush_pending = true;
                services.push_ready(self.shared.token, self.shared.id, &mut self.state);
                return;
            }
            spins += 1;
            let mut cx = TransferCx {
                default: self.config.transfer,
                allocator: self.config.allocator,
                pipe: &mut services.pipe,
                loop_stats: &services.handle.shared.transfers,
                channel_stats: &self.shared.transfers,
                max_bytes: self.config.max_bytes_per_write,
                waker: Waker {
                    event_loop: services.handle.clone(),
                    token: self.shared.token,
                    channel: self.shared.id,
                },
            };
            let written = self.out.write_to(&self.stream, &mut cx);
            add(&services.counters().writes, 1);
            match written {
                Ok(Written::Progress(progress)) => {
                    add(&services.counters().bytes_written, progress.bytes as u64);
                    self.shared.release_pending(progress.released);
                    if progress.bytes > 0 {
                        self.last_write = services.now;
                    } else if progress.released == 0 {
                        // Nothing moved and nothing was dropped: wait for
                        // the socket rather than spin.
                        self.state.waiting_writable = true;
                        return;
                    }
                }
                Ok(Written::WouldBlock) => {
                    self.state.waiting_writable = true;
                    return;
                }
                Ok(Written::Pending) => {
                    self.state.waiting_file = true;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail_io(e);
                    return;
                }
            }
        }
        self.state.flush_pending = false;
        if self.state.shutdown_output_requested && !self.state.output_shut {
            self.shut_output();
        }
    }

    fn shut_output(&mut self) {
        self.state.output_shut = true;
        // Whatever was written after the shutdown request is dropped.
        let dropped = self.out.discard();
        self.shared.release_pending(dropped);
        if let Err(e) = self.stream.shutdown(Shutdown::Write)
            && e.kind() != io::ErrorKind::NotConnected
        {
            self.fail_io(e);
        }
    }

    /// The level-triggered interest this connection needs now.
    pub(crate) fn wanted_interest(&self) -> LtInterest {
        LtInterest {
            read: self.state.auto_read
                && !self.state.input_closed
                && !self.state.close_requested
                && !self.state.closed,
            write: self.state.waiting_writable && !self.state.closed,
        }
    }

    /// Schedules [`UserEvent::Timer`](crate::UserEvent::Timer)`(token)`.
    pub(crate) fn schedule_user_timer(
        &mut self,
        services: &mut LoopServices,
        delay: Duration,
        token: u64,
    ) -> TimerId {
        let id = services.handle.next_timer_id();
        self.insert_user_timer(services, id, delay, token);
        id
    }

    /// Inserts a user timer whose id was already handed out.
    pub(crate) fn insert_user_timer(
        &mut self,
        services: &mut LoopServices,
        id: TimerId,
        delay: Duration,
        token: u64,
    ) {
        if self.state.closed {
            return;
        }
        let (slot, channel) = (self.shared.token, self.shared.id);
        services.timers.insert(
            id,
            Timer {
                deadline: services.now + delay,
                period: None,
                task: Box::new(move |el| el.fire_user_timer(slot, channel, id, token)),
            },
        );
        self.user_timers.push(id);
    }

    /// Cancels a user timer.
    pub(crate) fn cancel_user_timer(&mut self, services: &mut LoopServices, id: TimerId) {
        self.user_timers.retain(|&t| t != id);
        services.timers.cancel(id);
    }

    /// Starts idle tracking, if configured.
    pub(crate) fn start_idle(&mut self, services: &mut LoopServices) {
        let idle = self.config.idle;
        if !idle.is_enabled() {
            return;
        }
        let now = services.now;
        self.idle.reader_next = idle.reader.map(|t| now + t);
        self.idle.writer_next = idle.writer.map(|t| now + t);
        self.idle.all_next = idle.all.map(|t| now + t);
        self.arm_idle_timer(services);
    }

    fn arm_idle_timer(&mut self, services: &mut LoopServices) {
        let next = [
            self.idle.reader_next,
            self.idle.writer_next,
            self.idle.all_next,
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(deadline) = next else { return };
        let id = services.handle.next_timer_id();
        let (slot, channel) = (self.shared.token, self.shared.id);
        services.timers.insert(
            id,
            Timer {
                deadline,
                period: None,
                task: Box::new(move |el| el.check_idle(slot, channel)),
            },
        );
        self.idle.timer = Some(id);
    }

    /// The idle states due now; re-arms the idle timer for the next ones.
    pub(crate) fn due_idle_states(&mut self, services: &mut LoopServices) -> Vec<IdleState> {
        let IdleConfig {
            reader,
            writer,
            all,
        } = self.config.idle;
        let now = services.now;
        let mut due = Vec::new();
        let last_any = self.last_read.max(self.last_write);
        check_idle(
            &mut self.idle.reader_next,
            reader,
            self.last_read,
            now,
            || due.push(IdleState::ReaderIdle),
        );
        check_idle(
            &mut self.idle.writer_next,
            writer,
            self.last_write,
            now,
            || due.push(IdleState::WriterIdle),
        );
        check_idle(&mut self.idle.all_next, all, last_any, now, || {
            due.push(IdleState::AllIdle)
        });
        self.idle.timer = None;
        if !self.state.closed {
            self.arm_idle_timer(services);
        }
        due
    }

    /// Cancels every timer of the connection.
    pub(crate) fn cancel_timers(&mut self, services: &mut LoopServices) {
        for id in self
            .user_timers
            .drain(..)
            .chain(self.idle.timer.take())
            .chain(self.close_timer.take())
        {
            services.timers.cancel(id);
        }
    }
}

/// Fires `fire` if `next` is due and nothing happened for `timeout` since
/// `last`; moves `next` to the following check.
fn check_idle(
    next: &mut Option<Instant>,
    timeout: Option<Duration>,
    last: Instant,
    now: Instant,
    fire: impl FnOnce(),
) {
    let (Some(at), Some(timeout)) = (*next, timeout) else {
        return;
    };
    if now < at {
        return;
    }
    if now.duration_since(last) >= timeout {
        fire();
        *next = Some(now + timeout);
    } else {
        *next = Some(last + timeout);
    }
}

/// A connection in its loop's slab: the core and the pipeline above it.
pub(crate) struct Connection {
    pub core: ConnCore,
    pub pipeline: Box<dyn ChannelPipeline>,
    /// The bootstrap's count of open connections, decremented on close.
    pub live: Option<Arc<std::sync::atomic::AtomicUsize>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.core.shared.id)
            .field("state", &self.core.state)
            .finish()
    }
}

impl Connection {
    /// Reads what the socket has, up to the read budget, and passes each
    /// read to the pipeline.
    ///
    /// Both triggers stop at the first short read: the socket was drained
    /// at that moment, and anything arriving later is reported again, with
    /// level triggering because data remains, with edge triggering because
    /// Linux queues a new edge for every arrival (so the usual "read until
    /// `EAGAIN`" only adds a read that finds nothing). Reading stops at the
    /// budget too; edge-triggered sockets are then served again from the
    /// ready list, since no new edge would come for data already there.
    ///
    /// `until_eof` keeps reading past short reads: the event said the peer
    /// closed its side, so the end of stream is there to be read (this is
    /// remembered for later reads of the same channel). `force`
    /// reads even with reading off, to learn why a socket reported hang-up
    /// or error.
    pub(crate) fn read(&mut self, services: &mut LoopServices, force: bool, until_eof: bool) {
        let core = &mut self.core;
        core.state.read_pending = false;
        core.state.peer_closed |= until_eof;
        let until_eof = core.state.peer_closed;
        let budget = core.config.max_messages_per_read.max(1);
        let mut delivered = false;
        if core.state.held_input && core.state.auto_read && !force {
            delivered = true;
            self.pipeline.resume_input(core, services);
        }
        let mut reads = 0;
        loop {
            let state = core.state;
            if state.input_closed || state.closed || state.abort {
                break;
            }
            if !force && (!state.auto_read || state.close_requested) {
                break;
            }
            if reads == budget {
                if !services.level {
                    core.state.read_pending = true;
                    services.push_ready(core.shared.token, core.shared.id, &mut core.state);
                }
                break;
            }
            let mut buf = match core.config.allocator.try_buffer(core.recv.next_size()) {
                Ok(buf) => buf,
                Err(e) => {
                    core.fail_io(e);
                    break;
                }
            };
            let capacity = buf.capacity();
            reads += 1;
            add(&services.counters().reads, 1);
            match core.stream.read(buf.spare_mut()) {
                Ok(0) => core.state.input_closed = true,
                Ok(n) => {
                    buf.commit(n);
                    add(&services.counters().bytes_read, n as u64);
                    core.recv.record(n, capacity);
                    core.last_read = services.now;
                    if !core.state.decode_failed {
                        delivered = true;
                        self.pipeline.read(core, services, buf);
                    }
                    if n < capacity && !until_eof {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => reads -= 1,
                Err(e) => {
                    core.state.input_closed = true;
                    core.fail_io(e);
                }
            }
        }
        if delivered {
            self.pipeline.read_complete(core, services);
        }
        if core.state.input_closed && !core.state.eof_delivered && !core.state.abort {
            core.state.eof_delivered = true;
            self.pipeline.input_closed(core, services);
            if !core.config.allow_half_closure || core.state.output_shut {
                core.request_close();
            }
        }
    }
}
