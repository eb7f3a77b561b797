//! What happens after every callback: the connection settles what the
//! callback asked for (errors to report, writability to announce, a close
//! to carry on), and tells its loop whether to close it or to change what
//! it is registered for.
//!
//! The close sequence: a close request (or a decode error, or the peer's
//! FIN without half-closure) moves the connection to `Closing`; it flushes
//! what was written, giving up when the socket takes nothing for the close
//! timeout; once everything is sent, and the handler's tasks still out on
//! a worker have landed, it closes, or lingers first if input is still
//! coming (see [`Lingering`](crate::Lingering)).

use std::io;

use crate::channel::connection::Connection;
use crate::channel::env::{ChannelEnv, ChannelTimer};
use crate::channel::lifecycle::Phase;
use crate::sys::epoll::LtInterest;
use crate::time::saturating_add;

/// What the loop should do with a connection after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Keep it; re-register it for this interest (level-triggered) if given.
    Open(Option<LtInterest>),
    /// Deregister and close it.
    Close,
}

impl Connection {
    /// Carries out what the last callbacks asked for: error events,
    /// writability events, the close sequence, level-triggered interest.
    pub(crate) fn settle(&mut self, env: &mut ChannelEnv) -> Settled {
        loop {
            let phase = self.core.phase;
            if phase.is_closed() || self.is_poisoned() {
                break;
            }
            if phase.flushes_everything() {
                self.core.out.mark_flushed();
                self.guarded(env, |_, core, env| core.flush(env));
            }
            if self.core.output_waiting()
                && self
                    .core
                    .rare
                    .as_ref()
                    .is_none_or(|r| r.stall_timer.is_none())
                && let Some(limit) = self.core.stall_limit()
            {
                self.arm_stall_timer(env, limit);
            }
            if let Some((received, taken)) =
                self.core.receives.as_mut().and_then(|r| r.next_ended())
            {
                self.guarded(env, |pipeline, core, env| {
                    pipeline.receive_ended(core, env, received, taken)
                });
                continue;
            }
            if self.core.receives.as_ref().is_some_and(|r| r.is_idle()) {
                self.core.receives = None;
            }
            if let Some(error) = self.core.take_error() {
                self.guarded(env, |pipeline, core, env| pipeline.error(core, env, error));
                continue;
            }
            // Any flip since the last event is reported, with the flag as
            // it is now: a producer on another thread may have seen the
            // channel unwritable, and a flush here made it writable again
            // before we looked; it still needs to hear "writable".
            // The low bits only (see `IoFlags::notified_flips`).
            let flips = self.core.shared.writes.flips() as u32;
            if !phase.is_aborting() && flips != self.core.io.notified_flips {
                self.core.io.notified_flips = flips;
                let writable = self.core.shared.is_writable();
                if let Some(link) = &self.core.relay {
                    // Relayed: the partner reads for us, not the handler.
                    link.writability_changed(writable, env);
                    continue;
                }
                self.guarded(env, |pipeline, core, env| {
                    pipeline.writability_changed(core, env, writable)
                });
                if writable {
                    // Backpressure lets go: read what waited meanwhile.
                    self.core.resume_reading(env);
                }
                continue;
            }
            break;
        }
        self.core.tidy();
        if self.is_poisoned() || self.core.phase.is_aborting() || self.core.phase.is_closed() {
            return Settled::Close;
        }
        if self.core.phase.is_closing() && !self.core.output_waiting() {
            // A graceful close also waits for the handler's tasks still on
            // its worker: their replies come back as operations, and the
            // last task to finish wakes the loop.
            if self.core.shared.worker.busy() {
                return self.interest();
            }
            // Over TLS, close_notify goes out last.
            if self.core.close_notify_pending(env) {
                if self.core.phase.is_aborting() {
                    return Settled::Close;
                }
                return self.interest();
            }
            self.close_flushed(env);
            if self.core.phase.is_closed() {
                return Settled::Close;
            }
        }
        self.interest()
    }

    /// The level-triggered interest to register, if it changed.
    fn interest(&mut self) -> Settled {
        let wanted = self.core.wanted_interest();
        if wanted == self.core.io.registered {
            return Settled::Open(None);
        }
        self.core.io.registered = wanted;
        Settled::Open(Some(wanted))
    }

    /// Everything a closing connection had to send is sent: close, or
    /// linger while input is still coming.
    fn close_flushed(&mut self, env: &mut ChannelEnv) {
        let core = &mut self.core;
        let lingering = core.config.lingering;
        // Input still coming: the peer was sending while we closed, or is
        // in the middle of a message. (Messages already read and no
        // longer wanted are not: they left no data behind in the socket
        // for a close to reset the connection over.)
        let unread = core.io.discarded || self.pipeline.has_partial_input();
        core.phase = core.phase.flushed(unread, lingering, env.now);
        let lingers = core.rare.as_ref().is_none_or(|r| r.linger_timer.is_none());
        if let (Phase::Lingering { until, .. }, true) = (core.phase, lingers) {
            if let Some(id) = core.rare_mut().and_then(|r| r.stall_timer.take()) {
                env.cancel(id);
            }
            if let Err(e) = core.socket.shutdown_write()
                && e.kind() != io::ErrorKind::NotConnected
            {
                core.fail_io(e);
                return;
            }
            let timer = env.schedule(until, core.shared.token, ChannelTimer::Linger);
            core.rare().linger_timer = Some(timer);
            // Input that arrived meanwhile brings no new edge.
            core.io.read_pending = true;
            core.serve_again(env);
        }
    }

    /// Arms the stall timer of a channel with output waiting: it runs from
    /// the last write, so a slow reader that keeps reading is not cut off.
    fn arm_stall_timer(&mut self, env: &mut ChannelEnv, limit: std::time::Duration) {
        let core = &mut self.core;
        let at = saturating_add(core.last_write.max(env.now), limit);
        let timer = env.schedule(at, core.shared.token, ChannelTimer::Stall);
        core.rare().stall_timer = Some(timer);
    }

    /// The stall timer fired: a channel whose socket still takes data (a
    /// slow reader of a large response) gets another period counted from
    /// its last write; one that took nothing for the close timeout (when
    /// closing) or the write timeout (when open) is failed, and reset.
    pub(crate) fn stall_timed_out(&mut self, env: &mut ChannelEnv) {
        let core = &mut self.core;
        if let Some(rare) = core.rare_mut() {
            rare.stall_timer = None;
        }
        let Some(limit) = core.stall_limit() else {
            return;
        };
        if !core.output_waiting() {
            // Everything went; the next wait arms a new timer.
            return;
        }
        let next = saturating_add(core.last_write, limit);
        if next > env.now {
            let timer = env.schedule(next, core.shared.token, ChannelTimer::Stall);
            core.rare().stall_timer = Some(timer);
            return;
        }
        let what = if core.phase.is_closing() {
            "close timed out with data still queued"
        } else {
            "write timed out: the peer took nothing of what was sent"
        };
        core.fail_io(io::Error::new(io::ErrorKind::TimedOut, what));
    }

    /// The lingering close's time is up.
    pub(crate) fn linger_timed_out(&mut self, env: &mut ChannelEnv) {
        let core = &mut self.core;
        if let Some(rare) = core.rare_mut() {
            rare.linger_timer = None;
        }
        core.phase = core.phase.discarded(0, env.now, false);
    }
}
