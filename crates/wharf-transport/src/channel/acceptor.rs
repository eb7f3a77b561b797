//! A listening socket on its event loop: accepting, handing new connections
//! to this loop or to a sub-reactor, and surviving descriptor exhaustion.
//!
//! When `accept` fails with `EMFILE`, `ENFILE`, `ENOBUFS` or `ENOMEM`, the
//! acceptor stops accepting for a back-off (Netty: 1 s) instead of spinning
//! on the connections waiting in the backlog, logs once per episode, and
//! keeps serving the connections it has; it accepts again when the back-off
//! ends and descriptors are free. `ECONNABORTED`, `EINTR` and the network
//! errors `accept(2)` passes through from the new socket are retried.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpListener;

use crate::bootstrap::Balance;
use crate::channel::init::ChannelInit;
use crate::reactor::handle::EventLoopHandle;

/// Where accepted connections go.
#[derive(Debug)]
pub(crate) enum AcceptorTarget {
    /// Registered on the accepting loop.
    Local,
    /// Handed to one of these loops.
    Subs {
        loops: Vec<EventLoopHandle>,
        balance: Balance,
        next: usize,
    },
}

impl AcceptorTarget {
    /// The loop for the next connection (`None`: this one).
    pub(crate) fn next_loop(&mut self) -> Option<EventLoopHandle> {
        match self {
            AcceptorTarget::Local => None,
            AcceptorTarget::Subs {
                loops,
                balance,
                next,
            } => {
                let n = loops.len();
                let start = *next % n;
                *next = next.wrapping_add(1);
                let chosen = match balance {
                    Balance::RoundRobin => start,
                    // The fewest connections; ties go round robin.
                    Balance::LeastConnections => (0..n)
                        .map(|k| (start + k) % n)
                        .min_by_key(|&i| loops[i].connections())
                        .unwrap_or(start),
                };
                loops.get(chosen).cloned()
            }
        }
    }
}

/// A listener in a loop's slab.
#[derive(Debug)]
pub(crate) struct Acceptor {
    pub listener: TcpListener,
    pub target: AcceptorTarget,
    pub init: Arc<ChannelInit>,
    /// Accepting is paused after a resource error.
    pub paused: bool,
    /// On the loop's ready list.
    pub queued: bool,
    /// The current resource-error episode was logged.
    episode_logged: bool,
    /// Connections closed at once because of the connection limit.
    rejected: u64,
}

impl Acceptor {
    pub(crate) fn new(
        listener: TcpListener,
        target: AcceptorTarget,
        init: Arc<ChannelInit>,
    ) -> Acceptor {
        Acceptor {
            listener,
            target,
            init,
            paused: false,
            queued: false,
            episode_logged: false,
            rejected: 0,
        }
    }

    /// Errors after which the next accept may well succeed.
    pub(crate) fn is_transient(e: &io::Error) -> bool {
        matches!(
            e.kind(),
            io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
        ) || matches!(
            e.raw_os_error(),
            Some(
                libc::EPROTO
                    | libc::ENOPROTOOPT
                    | libc::EHOSTDOWN
                    | libc::ENONET
                    | libc::EHOSTUNREACH
                    | libc::ENETUNREACH
                    | libc::ENETDOWN
            )
        )
    }

    /// A connection was accepted: a resource episode, if any, is over.
    pub(crate) fn accepted(&mut self) {
        if self.episode_logged {
            self.episode_logged = false;
            log::info!("accepting on {:?} again", self.listener.local_addr().ok());
        }
    }

    /// Pauses accepting after `error`; returns how long for.
    pub(crate) fn pause(&mut self, error: &io::Error) -> Duration {
        self.paused = true;
        let backoff = self.init.accept_backoff;
        if !self.episode_logged {
            self.episode_logged = true;
            log::warn!(
                "accept on {:?} failed: {error}; not accepting for {backoff:?} \
                 (open connections are still served)",
                self.listener.local_addr().ok()
            );
        }
        backoff
    }

    /// A connection was closed at once because of the connection limit.
    pub(crate) fn rejected(&mut self) {
        self.rejected += 1;
        if self.rejected.is_power_of_two() {
            log::warn!(
                "connection limit of {:?} reached: {} connection(s) closed on accept so far",
                self.init.max_connections,
                self.rejected
            );
        }
    }
}
