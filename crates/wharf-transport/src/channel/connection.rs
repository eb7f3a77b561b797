//! One connection on its event loop: its socket, outbound queue, life cycle
//! and I/O flags, and the entry points its loop calls.
//!
//! The loop owns a [`Connection`] in its slab and is the only thread that
//! touches it. Handler code reaches it through a [`Context`](crate::Context)
//! during a callback; what a callback asks for that changes the
//! connection's life (a close, an error) is recorded in its [`Phase`] and
//! carried out in [`Connection::settle`] when the callback returns, so
//! nothing re-enters the handler. Reading is in `reader.rs`, writing in
//! `writer.rs`, the close sequence in `closing.rs`, timers in
//! `timers.rs`, the TLS layer in `tls_io.rs`.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::TimerId;
use crate::channel::codec::CodecError;
use crate::channel::config::ChannelConfig;
use crate::channel::env::{ChannelEnv, ChannelMsg, Readiness};
use crate::channel::handler::{ChannelError, UserEvent};
use crate::channel::idle::IdleTracker;
pub(crate) use crate::channel::io_flags::IoFlags;
use crate::channel::lifecycle::Phase;
use crate::channel::outbound::{Gathering, OutboundBuffer};
use crate::channel::pipeline::ChannelPipeline;
pub(crate) use crate::channel::rare::{ActiveHook, Rare};
use crate::channel::receives::Receives;
use crate::channel::recv::AdaptiveRecvSizer;
use crate::channel::shared::ChannelShared;
use crate::channel::socket::Socket;
use crate::relay::RelayLink;
use crate::sys::epoll::LtInterest;
use crate::tls::session::TlsSession;

/// The state of a connection that a handler's context works on.
#[derive(Debug)]
pub(crate) struct ConnCore {
    pub socket: Socket,
    pub shared: Arc<ChannelShared>,
    pub config: Arc<ChannelConfig>,
    pub out: OutboundBuffer,
    pub recv: AdaptiveRecvSizer,
    pub phase: Phase,
    pub io: IoFlags,
    pub last_write: Instant,
    /// Idle detection, on a channel configured for it.
    pub idle: Option<Box<IdleTracker>>,
    pub idle_timer: Option<TimerId>,
    /// What few connections need at a time, out of line (see [`Rare`]).
    pub rare: Option<Box<Rare>>,
    /// The TLS layer, on a TLS channel.
    pub tls: Option<Box<TlsSession>>,
    /// Linked to a partner channel: the loop relays between them
    /// (`crate::relay`). Boxed, as everything here that few connections
    /// use: every idle connection pays for the room kept inline.
    pub relay: Option<Box<RelayLink>>,
    /// Input received into a file, or skipped, around the pipeline
    /// (`receive.rs`); only while there is any.
    pub receives: Option<Box<Receives>>,
}

impl ConnCore {
    pub(crate) fn new(
        socket: Socket,
        shared: Arc<ChannelShared>,
        config: Arc<ChannelConfig>,
        now: Instant,
    ) -> ConnCore {
        let io = IoFlags::default();
        ConnCore {
            socket,
            shared,
            recv: AdaptiveRecvSizer::new(config.recv_size),
            out: OutboundBuffer::default(),
            config,
            phase: Phase::ACTIVE,
            io,
            last_write: now,
            idle: None,
            idle_timer: None,
            rare: None,
            tls: None,
            relay: None,
            receives: None,
        }
    }

    /// How the outbound queue gathers small writes (the configuration's).
    pub(crate) fn gathering(&self) -> Gathering {
        Gathering {
            max: self.config.coalesce_writes,
            allocator: self.config.allocator,
        }
    }

    /// The out-of-line part, made if need be.
    pub(crate) fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// The out-of-line part, if there is one.
    pub(crate) fn rare_mut(&mut self) -> Option<&mut Rare> {
        self.rare.as_deref_mut()
    }

    /// Drops the out-of-line part once nothing is in it.
    pub(crate) fn tidy(&mut self) {
        if self.rare.as_ref().is_some_and(|rare| rare.is_empty()) {
            self.rare = None;
        }
    }

    /// The oldest failure the handler is still to hear of.
    pub(crate) fn take_error(&mut self) -> Option<ChannelError> {
        let errors = &mut self.rare_mut()?.errors;
        (!errors.is_empty()).then(|| errors.remove(0))
    }

    /// Takes the hook waiting for the connection to become active.
    pub(crate) fn take_on_active(&mut self) -> Option<ActiveHook> {
        self.rare_mut()?.on_active.take()
    }

    /// Something was read at `now` (idle tracking wants to know).
    pub(crate) fn read_at(&mut self, now: Instant) {
        crate::channel::idle::read_at(&mut self.idle, now);
    }

    /// Whether writes are still accepted.
    pub(crate) fn accepts_writes(&self) -> bool {
        self.phase.accepts_writes()
    }

    /// Records an I/O failure: the handler hears of it, then the connection
    /// is closed without sending what is queued.
    pub(crate) fn fail_io(&mut self, error: io::Error) {
        if !self.phase.is_aborting() && !self.phase.is_closed() {
            self.phase = self.phase.aborted();
            self.rare().errors.push(ChannelError::Io(error));
        }
    }

    /// Records a decode failure: the handler hears of it, no more input is
    /// delivered, and the connection closes after sending what is queued.
    pub(crate) fn fail_decode(&mut self, error: CodecError) {
        if self.phase.delivers_input() {
            self.phase = self.phase.close_requested();
            self.rare().errors.push(ChannelError::Decode(error));
        }
    }

    /// Asks for a graceful close.
    pub(crate) fn request_close(&mut self) {
        self.phase = self.phase.close_requested();
    }

    /// Asks for the output to be shut down once the flushed queue is sent.
    pub(crate) fn request_shutdown_output(&mut self, env: &mut ChannelEnv) {
        self.out.mark_flushed();
        self.phase = self.phase.shutdown_output_requested();
        self.flush(env);
    }

    /// Puts the channel on the loop's ready list, once.
    pub(crate) fn serve_again(&mut self, env: &mut ChannelEnv) {
        if !self.io.queued {
            self.io.queued = true;
            env.serve_again(self.shared.token);
        }
    }

    /// Whether the socket may be read now: for a relay, while the partner
    /// takes more; for a receive into a file, while the handler wants
    /// input; otherwise while the handler takes messages and the codec
    /// claims no input for a receive still to start.
    pub(crate) fn reading_enabled(&self) -> bool {
        if let Some(link) = &self.relay {
            // Relayed: read while the partner takes more.
            return link.reading_enabled();
        }
        if let Some(receives) = &self.receives {
            if receives.is_receiving() {
                // Into a file: no output comes of it, no worker waits for it.
                return self.shared.auto_read();
            }
            if receives.has_untold() {
                // What follows a receive waits until the handler heard its end.
                return false;
            }
        }
        !self.io.input_claimed && self.takes_messages()
    }

    /// Whether the handler takes decoded messages now: it wants input, the
    /// channel is writable (with backpressure on), and its worker (in the
    /// pooled modes) is not saturated. (Input the codec claimed stops the
    /// socket's reads, not the delivery of what was decoded before it.)
    pub(crate) fn takes_messages(&self) -> bool {
        self.shared.auto_read()
            && (!self.config.backpressure || self.shared.is_writable())
            && !self.shared.worker.saturated()
    }

    /// Turns the handler's reading switch.
    pub(crate) fn set_auto_read(&mut self, on: bool, env: &mut ChannelEnv) {
        self.shared.set_auto_read(on);
        if on {
            self.resume_reading(env);
        }
    }

    /// Reading may have become possible again: read (and deliver held
    /// messages) on the next iteration. Edge-triggered, data that arrived
    /// meanwhile brings no new edge; held messages wait for no socket event
    /// at all.
    pub(crate) fn resume_reading(&mut self, env: &mut ChannelEnv) {
        if (self.reading_enabled() && (!env.level || self.eof_held()))
            || (self.io.held_input && self.takes_messages())
        {
            self.io.read_pending = true;
            self.serve_again(env);
        }
    }

    /// Whether everything written has reached the peer, asked (one
    /// `ioctl`) only when it matters: a lingering close about to spend its
    /// budget with `n` more bytes discarded.
    pub(crate) fn output_acknowledged(&self, n: usize, phase: Phase) -> bool {
        match phase {
            Phase::Lingering { left, .. } if n >= left => {
                crate::sys::net::unacknowledged(&self.socket).is_ok_and(|queued| queued == 0)
            }
            _ => false,
        }
    }

    /// How long output may wait without progress: the close timeout while
    /// closing, the write timeout (if any) while open.
    pub(crate) fn stall_limit(&self) -> Option<Duration> {
        if self.phase.is_closing() {
            Some(self.config.close_timeout)
        } else if matches!(self.phase, Phase::Open { .. }) {
            self.config.write_timeout
        } else {
            None
        }
    }

    /// The level-triggered interest this connection needs now.
    pub(crate) fn wanted_interest(&self) -> LtInterest {
        let discarding = self.phase.discards_input();
        LtInterest {
            read: self.phase.reads_socket()
                && if discarding {
                    self.config.lingering.is_some()
                } else {
                    self.reading_enabled()
                },
            write: self.io.waiting_writable && !self.phase.is_closed(),
        }
    }
}

/// A connection in its loop's slab: the core and the pipeline above it.
pub(crate) struct Connection {
    pub core: ConnCore,
    pub(crate) pipeline: Box<dyn ChannelPipeline>,
    /// The bootstrap's count of open connections, decremented on close.
    live: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.core.shared.id)
            .field("phase", &self.core.phase)
            .field("io", &self.core.io)
            .finish()
    }
}

impl Connection {
    /// A connection counted in `live` (by whoever admitted it).
    pub(crate) fn new(
        core: ConnCore,
        pipeline: Box<dyn ChannelPipeline>,
        live: Arc<AtomicUsize>,
    ) -> Connection {
        Connection {
            core,
            pipeline,
            live,
        }
    }

    /// Runs `f` on the pipeline, catching a panic of the handler: the
    /// connection is then closed at once, without further handler calls.
    pub(crate) fn guarded(
        &mut self,
        env: &mut ChannelEnv,
        f: impl FnOnce(&mut dyn ChannelPipeline, &mut ConnCore, &mut ChannelEnv),
    ) {
        if self.core.io.poisoned {
            return;
        }
        let (pipeline, core) = (&mut *self.pipeline, &mut self.core);
        if catch_unwind(AssertUnwindSafe(|| f(pipeline, core, env))).is_err() {
            let channel = self.core.shared.id;
            log::error!(
                channel = channel.0;
                "handler of channel {channel} panicked on its event loop; closing the channel"
            );
            self.core.io.poisoned = true;
            self.core.phase = self.core.phase.aborted();
        }
    }

    /// Whether the handler panicked.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.core.io.poisoned
    }

    /// The connection is registered: it becomes active, or (over TLS)
    /// starts its handshake and becomes active when that is done.
    pub(crate) fn start(&mut self, env: &mut ChannelEnv) {
        if self.core.tls.is_some() {
            self.start_handshake(env);
        } else {
            self.activate(env);
        }
    }

    /// The handler hears that the connection is up.
    pub(crate) fn activate(&mut self, env: &mut ChannelEnv) {
        self.core.shared.set_active(true);
        self.core.start_idle(env);
        self.guarded(env, |pipeline, core, env| pipeline.active(core, env));
        if let Some(hook) = self.core.take_on_active() {
            hook.call(Ok(Arc::clone(&self.core.shared)));
        }
    }

    /// An epoll event for the connection.
    pub(crate) fn on_event(&mut self, r: Readiness, env: &mut ChannelEnv) {
        let hang_up = r.error || (r.read_closed && r.write_closed);
        let write = r.writable || r.error;
        let read = r.readable || r.read_closed || hang_up;
        if write {
            self.core.io.waiting_writable = false;
            self.guarded(env, |_, core, env| core.flush(env));
        }
        if read {
            self.read(env, hang_up, r.read_closed || hang_up);
        }
        if hang_up && !self.core.phase.is_aborting() && !self.core.phase.is_closed() {
            // In error, or hung up both ways, and neither reading nor
            // flushing found out (a half-closed channel that no longer
            // reads, say): level-triggered epoll would report it again on
            // every poll. The connection is dead; say why.
            let error = match self.core.socket.take_error() {
                Ok(Some(e)) | Err(e) => e,
                Ok(None) => {
                    io::Error::new(io::ErrorKind::ConnectionReset, "the connection hung up")
                }
            };
            self.core.fail_io(error);
        }
    }

    /// The loop serves the connection from its ready list.
    pub(crate) fn on_ready(&mut self, env: &mut ChannelEnv) {
        self.core.io.queued = false;
        if self.core.io.flush_pending {
            self.core.io.flush_pending = false;
            self.guarded(env, |_, core, env| core.flush(env));
        }
        if self.core.io.read_pending {
            self.read(env, false, false);
        }
    }

    /// Work from another thread for this connection.
    pub(crate) fn on_message(&mut self, msg: ChannelMsg, env: &mut ChannelEnv) {
        match msg {
            ChannelMsg::Ops {
                ops,
                owner,
                released,
                completes,
            } => {
                if self.core.phase.is_closed() {
                    owner.release_pending(released);
                } else {
                    self.guarded(env, |pipeline, core, env| {
                        pipeline.remote_ops(core, env, ops)
                    });
                }
                if completes {
                    owner.worker.done();
                }
            }
            // A worker caught up (or its last task ended): reading may go
            // on, and the settle that follows lets a close go on.
            ChannelMsg::WorkerDone => self.core.resume_reading(env),
            ChannelMsg::FileReady => {
                self.core.io.waiting_file = false;
                self.guarded(env, |_, core, env| core.flush(env));
            }
        }
    }

    /// A graceful shutdown of the loop started: the handler hears of it.
    pub(crate) fn on_shutdown(&mut self, env: &mut ChannelEnv) {
        if self.core.is_handshaking() {
            // Not active yet: nothing to finish, no handler to ask.
            self.core.request_close();
            return;
        }
        self.guarded(env, |pipeline, core, env| {
            pipeline.user_event(core, env, UserEvent::Shutdown)
        });
    }

    /// Closes the connection at once, dropping what is queued (a shutdown
    /// deadline, the loop ending).
    pub(crate) fn abort(&mut self) {
        self.core.phase = self.core.phase.aborted();
    }

    /// The loop removed the connection (and deregistered its socket): drop
    /// what is queued, cancel its timers, tell the handler, close the
    /// socket (when `self` drops).
    pub(crate) fn finish(mut self, env: &mut ChannelEnv) {
        let core = &mut self.core;
        core.phase = Phase::Closed;
        core.shared.set_active(false);
        let (unsent, held) = core.tls.as_mut().map_or((0, 0), |t| t.discard_output());
        let dropped = core.out.discard() + held;
        core.shared.release_pending(dropped);
        if dropped + unsent > 0 {
            // Queued data is thrown away (a close timeout, the shutdown
            // deadline): reset the connection so the peer cannot take the
            // cut-off stream for a complete one.
            let _ = socket2::SockRef::from(&core.socket).set_linger(Some(Duration::ZERO));
        }
        core.cancel_timers(env);
        if let Some(hook) = core.take_on_active() {
            hook.call(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the connection closed before it became active",
            )));
        }
        self.live.fetch_sub(1, Ordering::AcqRel);
        core.fail_receive(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the channel closed before all the bytes to receive arrived",
        ));
        let ended = core.receives.take();
        if !self.core.io.poisoned {
            let (pipeline, core) = (&mut *self.pipeline, &mut self.core);
            let inactive =
                |pipeline: &mut dyn ChannelPipeline, core: &mut ConnCore, env: &mut ChannelEnv| {
                    // Receives cut short are told first: the handler cleans up
                    // their files.
                    let mut ended = ended;
                    while let Some((received, _)) = ended.as_mut().and_then(|r| r.next_ended()) {
                        pipeline.user_event(core, env, UserEvent::Received(received));
                    }
                    pipeline.inactive(core, env);
                };
            if catch_unwind(AssertUnwindSafe(|| inactive(pipeline, core, env))).is_err() {
                let channel = self.core.shared.id;
                log::error!(channel = channel.0; "handler of channel {channel} panicked in on_inactive");
            }
        }
    }
}
