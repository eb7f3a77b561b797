//! The parts of a connection it needs only now and then (pending errors,
//! the handler's timers, deadlines, a client connect's hook), kept out of
//! line so that an idle connection does not carry room for them.

use std::io;
use std::sync::Arc;

use crate::TimerId;
use crate::channel::handler::ChannelError;
use crate::channel::shared::ChannelShared;

/// What a connection needs only now and then, kept out of line: an idle
/// connection would otherwise carry room for all of it (issue 12, goal 4).
/// Made when first needed, dropped once empty again ([`ConnCore::tidy`]).
#[derive(Debug, Default)]
pub(crate) struct Rare {
    /// Failures the handler is still to hear of, oldest first.
    pub errors: Vec<ChannelError>,
    /// Timers the handler scheduled, cancelled when the channel closes.
    pub user_timers: Vec<TimerId>,
    /// The close (or write) timeout of output that waits.
    pub stall_timer: Option<TimerId>,
    /// The deadline of a lingering close.
    pub linger_timer: Option<TimerId>,
    /// The deadline of a TLS handshake.
    pub handshake_timer: Option<TimerId>,
    /// Told once the connection is active, or that it failed first (a
    /// client connect waiting for its TLS handshake).
    pub on_active: Option<ActiveHook>,
}

impl Rare {
    /// Whether nothing is kept: the box can go.
    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
            && self.user_timers.is_empty()
            && self.stall_timer.is_none()
            && self.linger_timer.is_none()
            && self.handshake_timer.is_none()
            && self.on_active.is_none()
    }
}

/// What hears that a connection became active (its handler's `on_active`
/// has run), or failed before.
pub(crate) struct ActiveHook(pub Box<dyn FnOnce(io::Result<Arc<ChannelShared>>) + Send>);

impl ActiveHook {
    /// Tells the outcome.
    pub(crate) fn call(self, outcome: io::Result<Arc<ChannelShared>>) {
        (self.0)(outcome)
    }
}

impl std::fmt::Debug for ActiveHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActiveHook")
    }
}
