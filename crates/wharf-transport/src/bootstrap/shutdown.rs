//! A shutdown requested from any thread and carried out by
//! [`Server::wait`](crate::Server::wait).

use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The request a [`ShutdownHandle`] posts and a waiting server takes.
#[derive(Default)]
pub(crate) struct Control {
    request: Mutex<Option<(Duration, Duration)>>,
    requested: Condvar,
}

impl Control {
    /// Blocks until a shutdown is requested; returns its quiet period and
    /// timeout (the first request's, if there were several).
    pub(crate) fn wait_for_request(&self) -> (Duration, Duration) {
        let mut request = self.request.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(r) = *request {
                return r;
            }
            request = self
                .requested
                .wait(request)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Asks a running server to shut down, from any thread (a signal handler
/// thread, a test); [`Server::wait`](crate::Server::wait) carries it out.
#[derive(Clone)]
pub struct ShutdownHandle {
    pub(crate) control: Arc<Control>,
}

impl fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownHandle").finish_non_exhaustive()
    }
}

impl ShutdownHandle {
    /// Requests a graceful shutdown (see
    /// [`Server::shutdown_gracefully`](crate::Server::shutdown_gracefully));
    /// returns at once.
    pub fn shutdown_gracefully(&self, quiet: Duration, timeout: Duration) {
        let mut request = self
            .control
            .request
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        request.get_or_insert((quiet, timeout));
        self.control.requested.notify_all();
    }
}
