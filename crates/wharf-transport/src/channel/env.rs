//! What a channel may ask of the event loop it lives on: the narrow
//! interface between the two (muduo's `Channel` → `EventLoop`).
//!
//! The loop owns its channels and calls them; a channel never sees the loop
//! itself. During a call it gets a [`ChannelEnv`]: the time of this
//! iteration, the loop's counters and spare pipe, a way to be served again
//! on the next iteration, and timers that come back to it as
//! [`ChannelTimer`]s. Work that reaches a channel from other threads (a
//! handle's writes, a worker's replies, a disk read done) arrives as a
//! [`ChannelMsg`] through the loop's task queue. Everything else (epoll
//! registration, the slab, closing the socket) is the loop's business.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::channel::shared::ChannelShared;
use crate::file_region::TransferCounters;
use crate::metrics::Sampler;
use crate::relay::PipeShelf;
use crate::stats::LoopCounters;
use crate::sys::file::Pipe;
use crate::token::Token;
use crate::{EventLoopHandle, TimerId};

/// Readiness reported by one epoll event.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Readiness {
    pub readable: bool,
    pub writable: bool,
    pub read_closed: bool,
    pub write_closed: bool,
    pub error: bool,
}

/// A timer of one channel, delivered back to it when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelTimer {
    /// A timer the handler scheduled, with its token.
    User(u64),
    /// Check the idle timeouts.
    Idle,
    /// A closing channel's close timeout, or an open channel's write
    /// timeout: give up if the socket took nothing for that long.
    Stall,
    /// A lingering close's deadline.
    Linger,
    /// A TLS handshake's deadline.
    Handshake,
}

/// A timer change a channel asked for during a call; the loop applies it
/// to its timer queue when the call returns (timers never fire during a
/// call, so nothing can tell the difference).
#[derive(Debug)]
pub(crate) enum TimerOp {
    /// Schedule `timer` for the channel `token` at `at`, under `id`.
    Schedule {
        id: TimerId,
        at: Instant,
        token: Token,
        timer: ChannelTimer,
    },
    /// Cancel a timer (nothing if it fired or was cancelled).
    Cancel(TimerId),
}

/// Work for one channel from another thread, routed by the loop.
pub(crate) enum ChannelMsg {
    /// Operations made off the loop (a `Vec<RemoteOp<Out>>`). `released`
    /// is the estimate their writes were counted with, given back if the
    /// channel is gone; `completes` says they are what a worker task of
    /// the channel produced, which stays counted until they are applied.
    Ops {
        ops: Box<dyn Any + Send>,
        owner: Arc<ChannelShared>,
        released: usize,
        completes: bool,
    },
    /// A worker task of the channel ended without operations: a channel
    /// waiting for its worker may go on.
    WorkerDone,
    /// The blocking-I/O pool read a chunk a file region waits for.
    FileReady,
}

impl std::fmt::Debug for ChannelMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelMsg::Ops {
                released,
                completes,
                ..
            } => f
                .debug_struct("Ops")
                .field("released", released)
                .field("completes", completes)
                .finish_non_exhaustive(),
            ChannelMsg::WorkerDone => f.write_str("WorkerDone"),
            ChannelMsg::FileReady => f.write_str("FileReady"),
        }
    }
}

impl ChannelMsg {
    /// The channel is gone (or its loop is): give back what the message
    /// holds on its behalf.
    pub(crate) fn abandon(self) {
        if let ChannelMsg::Ops {
            owner,
            released,
            completes,
            ..
        } = self
        {
            owner.release_pending(released);
            if completes {
                owner.worker_task_done();
            }
        }
    }
}

/// The loop as its channels see it: owned by the loop, lent to one
/// channel at a time.
#[derive(Debug)]
pub(crate) struct ChannelEnv {
    /// The time of this loop iteration (read once per poll).
    pub now: Instant,
    /// Whether sockets are level-triggered.
    pub level: bool,
    /// A handle to the loop, for what must come back later.
    pub event_loop: EventLoopHandle,
    /// The loop's spare pipe for spliced file transfers.
    pub pipe: Option<Pipe>,
    /// The loop's pipes for relays between channels.
    pub pipes: Arc<PipeShelf>,
    /// The loop's counters.
    pub counters: Arc<LoopCounters>,
    /// The loop's file-transfer counters.
    pub transfers: Arc<TransferCounters>,
    /// Which pipeline callbacks are timed for the handler-time histogram.
    pub timing: Sampler,
    ready: VecDeque<Token>,
    timer_ops: Vec<TimerOp>,
}

impl ChannelEnv {
    /// The environment of a new loop.
    pub(crate) fn new(
        level: bool,
        event_loop: EventLoopHandle,
        counters: Arc<LoopCounters>,
        transfers: Arc<TransferCounters>,
    ) -> ChannelEnv {
        ChannelEnv {
            now: Instant::now(),
            level,
            event_loop,
            pipe: None,
            pipes: Arc::default(),
            counters,
            transfers,
            timing: Sampler::new(crate::metrics::HANDLER_TIMING_SAMPLE),
            ready: VecDeque::new(),
            timer_ops: Vec::new(),
        }
    }

    /// The start of a pipeline callback, if it is one to time (see
    /// [`metrics`](crate::metrics)); give it back to [`Self::handler_done`].
    #[inline]
    pub(crate) fn handler_started(&mut self) -> Option<Instant> {
        self.timing.start()
    }

    /// A pipeline callback that [`Self::handler_started`] timed is over.
    #[inline]
    pub(crate) fn handler_done(&self, started: Option<Instant>) {
        if let Some(t) = started {
            self.counters
                .handler_time
                .record(t.elapsed().as_nanos() as u64);
        }
    }

    /// Serves the channel `token` again on the next iteration, without
    /// waiting for a readiness event (the caller makes sure it is queued
    /// once).
    pub(crate) fn serve_again(&mut self, token: Token) {
        self.ready.push_back(token);
    }

    /// Schedules `timer` for the channel `token` at `at`; returns its id.
    pub(crate) fn schedule(&mut self, at: Instant, token: Token, timer: ChannelTimer) -> TimerId {
        let id = self.event_loop.next_timer_id();
        self.schedule_as(id, at, token, timer);
        id
    }

    /// Schedules a handler timer whose id was handed out already.
    pub(crate) fn schedule_as(
        &mut self,
        id: TimerId,
        at: Instant,
        token: Token,
        timer: ChannelTimer,
    ) {
        self.timer_ops.push(TimerOp::Schedule {
            id,
            at,
            token,
            timer,
        });
    }

    /// Cancels a timer.
    pub(crate) fn cancel(&mut self, id: TimerId) {
        self.timer_ops.push(TimerOp::Cancel(id));
    }

    /// The timer changes asked for since the last call (for the loop).
    pub(crate) fn take_timer_ops(&mut self) -> std::vec::Drain<'_, TimerOp> {
        self.timer_ops.drain(..)
    }

    /// The channels to serve again, in order (for the loop): how many are
    /// queued now, and the next one.
    pub(crate) fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// The next channel to serve again (for the loop).
    pub(crate) fn pop_ready(&mut self) -> Option<Token> {
        self.ready.pop_front()
    }
}
