//! The server's open connections, as the handlers count them: for the
//! connection limit (a connection over it is answered 503 and closed), and
//! for what a second Ctrl-C reports. Once a graceful shutdown has begun, a
//! connection accepted just before the listeners closed is answered 503.
//!
//! (Handlers hear of the shutdown from the transport itself,
//! `UserEvent::Shutdown`, and the responses its deadline cut are counted
//! in the server's `LoopStats::shutdown_aborts`.)
//!
//! Threading: `Send + Sync`; handlers on any loop or worker use it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The open connections.
#[derive(Debug, Default)]
pub struct Connections {
    open: AtomicUsize,
    shutting_down: AtomicBool,
}

impl Connections {
    /// Counts a new connection: how many are open with it, or `None` if
    /// the server is shutting down (then it is not counted).
    pub fn opened(&self) -> Option<usize> {
        if self.shutting_down.load(Ordering::Acquire) {
            return None;
        }
        Some(self.open.fetch_add(1, Ordering::AcqRel) + 1)
    }

    /// A counted connection closed.
    pub fn closed(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    /// How many are open.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// The server shuts down: later connections are not counted.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }
}
