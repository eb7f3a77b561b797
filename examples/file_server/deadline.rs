//! A connection's one timeout, re-armed lazily: moving the deadline later
//! (the keep-alive time after each response) touches no timer. The armed
//! timer fires at the old deadline, finds the new one still ahead and is
//! armed again for the rest, as Netty's `IdleStateHandler` does. A
//! kept-alive connection answering request after request then costs no
//! timer insertion and cancellation per request, only one re-arm per
//! timeout period. A deadline moved earlier (a request head started
//! arriving: the shorter header timeout) re-arms at once.

use std::time::{Duration, Instant};

use wharf::{Context, TimerId};

/// The deadline, and the timer that watches it.
#[derive(Debug, Default)]
pub struct Deadline {
    /// When the timeout is up; `None`: no timeout runs.
    due: Option<Instant>,
    /// The timer armed: its id, its token and when it fires.
    armed: Option<(TimerId, u64, Instant)>,
    /// Token of the last timer armed; a stale timer's token differs.
    generation: u64,
}

impl Deadline {
    /// Times out `delay` from now. The armed timer is kept if it fires by
    /// then. A delay too long for the clock to add never times out.
    pub fn set<O: Send + 'static>(&mut self, ctx: &mut Context<'_, O>, delay: Duration) {
        let now = Instant::now();
        let Some(due) = now.checked_add(delay) else {
            self.cancel(ctx);
            return;
        };
        self.due = Some(due);
        if let Some((_, _, fires)) = self.armed
            && fires <= due
        {
            return;
        }
        self.cancel_timer(ctx);
        self.arm(ctx, now, due);
    }

    /// No timeout runs for now (the timer, if any, stays armed and will be
    /// ignored or re-armed when it fires).
    pub fn clear(&mut self) {
        self.due = None;
    }

    /// No timeout runs, and the timer is cancelled.
    pub fn cancel<O: Send + 'static>(&mut self, ctx: &mut Context<'_, O>) {
        self.due = None;
        self.cancel_timer(ctx);
    }

    /// Whether the timer of `token` that just fired means the timeout is
    /// up. A stale timer, or one that fired before the deadline (which is
    /// then armed again for the rest), does not.
    pub fn fired<O: Send + 'static>(&mut self, ctx: &mut Context<'_, O>, token: u64) -> bool {
        if self.armed.map(|(_, t, _)| t) != Some(token) {
            return false;
        }
        self.armed = None;
        let Some(due) = self.due else {
            return false;
        };
        let now = Instant::now();
        if now < due {
            self.arm(ctx, now, due);
            return false;
        }
        self.due = None;
        true
    }

    fn arm<O: Send + 'static>(&mut self, ctx: &mut Context<'_, O>, now: Instant, due: Instant) {
        self.generation += 1;
        let id = ctx.schedule(due - now, self.generation);
        self.armed = Some((id, self.generation, due));
    }

    fn cancel_timer<O: Send + 'static>(&mut self, ctx: &mut Context<'_, O>) {
        if let Some((id, _, _)) = self.armed.take() {
            ctx.cancel_timer(id);
        }
    }
}
