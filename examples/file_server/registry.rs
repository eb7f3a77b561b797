//! The server's open connections, as the handlers see them: counted for
//! the connection limit, told when a graceful shutdown begins, and counted
//! again when its deadline cuts them.
//!
//! Why the handlers must be told (issue 9, point 7): a kept-alive
//! connection always has the handler's keep-alive timer pending, and the
//! transport's graceful shutdown counts a pending timer as work in flight,
//! so it never found a quiet moment and waited out its whole deadline,
//! then cut the idle connections too. Told, each handler closes: at once
//! when idle, after its response when one is being prepared or sent.
//!
//! Threading: `Send + Sync`; handlers on any loop or worker use it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use wharf::codec::HttpResponse;
use wharf::{ChannelHandle, ChannelId};

/// The user event that tells a handler the server is shutting down.
#[derive(Debug)]
pub struct ShuttingDown;

/// The open connections.
#[derive(Debug, Default)]
pub struct Connections {
    handles: Mutex<HashMap<ChannelId, ChannelHandle<HttpResponse>>>,
    /// When the shutdown's deadline passes, once it has begun.
    deadline: OnceLock<Instant>,
    /// Connections closed at or after the deadline: cut by it.
    cut: AtomicUsize,
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, HashMap<ChannelId, ChannelHandle<HttpResponse>>> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection: how many are open with it, or `None`
    /// if the server is shutting down (then it is not registered).
    pub fn opened(&self, handle: ChannelHandle<HttpResponse>) -> Option<usize> {
        let mut handles = self.lock();
        if self.deadline.get().is_some() {
            return None;
        }
        handles.insert(handle.id(), handle);
        Some(handles.len())
    }

    /// A registered connection closed.
    pub fn closed(&self, id: ChannelId) {
        self.lock().remove(&id);
        if self
            .deadline
            .get()
            .is_some_and(|deadline| Instant::now() >= *deadline)
        {
            self.cut.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// How many are open.
    pub fn open(&self) -> usize {
        self.lock().len()
    }

    /// Gives back the room that connections which have left took.
    pub fn shrink(&self) {
        self.lock().shrink_to_fit();
    }

    /// Tells every open connection that the server shuts down and must be
    /// gone by `deadline`; later connections are not registered.
    pub fn begin_shutdown(&self, deadline: Instant) {
        let handles = self.lock();
        if self.deadline.set(deadline).is_err() {
            return;
        }
        for handle in handles.values() {
            handle.fire_user_event(Box::new(ShuttingDown));
        }
    }

    /// How many connections the deadline cut: those still open when it
    /// passed (a response still being sent, or prepared).
    pub fn cut(&self) -> usize {
        self.cut.load(Ordering::Acquire)
    }
}
