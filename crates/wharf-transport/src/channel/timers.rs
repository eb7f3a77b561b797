//! A connection's timers: the handler's own, idle tracking, and every
//! timer cancelled when the connection closes; and what happens when one
//! fires (the close and TLS timers are handled where their state lives).

use std::time::Duration;

use crate::TimerId;
use crate::channel::connection::{ConnCore, Connection};
use crate::channel::env::{ChannelEnv, ChannelTimer};
use crate::channel::handler::UserEvent;
use crate::time::saturating_add;

impl ConnCore {
    /// Schedules [`UserEvent::Timer`](crate::UserEvent::Timer)`(token)`.
    pub(crate) fn schedule_user_timer(
        &mut self,
        env: &mut ChannelEnv,
        delay: Duration,
        token: u64,
    ) -> TimerId {
        let id = env.event_loop.next_timer_id();
        self.insert_user_timer(env, id, delay, token);
        id
    }

    /// Inserts a user timer whose id was already handed out.
    pub(crate) fn insert_user_timer(
        &mut self,
        env: &mut ChannelEnv,
        id: TimerId,
        delay: Duration,
        token: u64,
    ) {
        if self.phase.is_closed() {
            return;
        }
        let at = saturating_add(env.now, delay);
        env.schedule_as(id, at, self.shared.token, ChannelTimer::User(token));
        self.rare().user_timers.push(id);
    }

    /// Cancels a user timer.
    pub(crate) fn cancel_user_timer(&mut self, env: &mut ChannelEnv, id: TimerId) {
        if let Some(rare) = self.rare_mut() {
            rare.user_timers.retain(|&t| t != id);
        }
        env.cancel(id);
    }

    /// Starts idle tracking, if configured.
    pub(crate) fn start_idle(&mut self, env: &mut ChannelEnv) {
        if self.config.idle.is_enabled()
            && let Some(at) = self
                .idle
                .get_or_insert_with(Box::default)
                .start(self.config.idle, env.now)
        {
            self.idle_timer = Some(env.schedule(at, self.shared.token, ChannelTimer::Idle));
        }
    }

    /// Cancels every timer of the connection.
    pub(crate) fn cancel_timers(&mut self, env: &mut ChannelEnv) {
        if let Some(id) = self.idle_timer.take() {
            env.cancel(id);
        }
        if let Some(rare) = self.rare_mut() {
            for id in rare
                .user_timers
                .drain(..)
                .chain(rare.stall_timer.take())
                .chain(rare.linger_timer.take())
                .chain(rare.handshake_timer.take())
            {
                env.cancel(id);
            }
        }
    }
}

impl Connection {
    /// A timer of the connection fired.
    pub(crate) fn on_timer(&mut self, id: TimerId, timer: ChannelTimer, env: &mut ChannelEnv) {
        match timer {
            ChannelTimer::User(token) => {
                if let Some(rare) = self.core.rare_mut() {
                    rare.user_timers.retain(|&t| t != id);
                    if rare.user_timers.is_empty() {
                        // An idle connection keeps no room for timers it had.
                        rare.user_timers = Vec::new();
                    }
                }
                self.guarded(env, |pipeline, core, env| {
                    pipeline.user_event(core, env, UserEvent::Timer(token))
                });
            }
            ChannelTimer::Idle => self.check_idle(env),
            ChannelTimer::Stall => self.stall_timed_out(env),
            ChannelTimer::Linger => self.linger_timed_out(env),
            ChannelTimer::Handshake => self.handshake_timed_out(),
        }
    }

    /// The idle timer fired: fire the idle events that are due.
    fn check_idle(&mut self, env: &mut ChannelEnv) {
        let core = &mut self.core;
        core.idle_timer = None;
        let Some(idle) = core.idle.as_mut() else {
            return;
        };
        let last_read = idle.last_read.unwrap_or(env.now);
        let due = idle.due(core.config.idle, env.now, last_read, core.last_write);
        if !core.phase.is_closed()
            && let Some(at) = idle.next_check()
        {
            core.idle_timer = Some(env.schedule(at, core.shared.token, ChannelTimer::Idle));
        }
        for state in due {
            self.guarded(env, |pipeline, core, env| {
                pipeline.user_event(core, env, UserEvent::Idle(state))
            });
        }
    }
}
