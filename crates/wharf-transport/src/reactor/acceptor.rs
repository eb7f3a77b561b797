//! A listening socket on its event loop: accepting, admitting new
//! connections under the connection limit, handing them to this loop or to
//! a sub-reactor, and surviving descriptor exhaustion.
//!
//! When `accept` fails with `EMFILE`, `ENFILE`, `ENOBUFS` or `ENOMEM`, the
//! acceptor stops accepting for a back-off (Netty: 1 s) instead of spinning
//! on the connections waiting in the backlog, logs once per episode, and
//! keeps serving the connections it has; it accepts again when the back-off
//! ends and descriptors are free. `ECONNABORTED`, `EINTR` and the network
//! errors `accept(2)` passes through from the new socket are retried.
//!
//! The connection limit counts a connection from the moment it is admitted
//! here, not from its registration: connections handed to a busy
//! sub-reactor and still on their way count too, so a burst cannot slip
//! past the limit while the hand-offs are in flight.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::bootstrap::Balance;
use crate::channel::init::ChannelInit;
use crate::channel::socket::Socket;
use crate::reactor::event_loop::{EventLoop, Slot, TimerAction};
use crate::reactor::handle::EventLoopHandle;
use crate::reactor::listener::Listener;
use crate::stats::{LoopCounters, add};
use crate::sys::epoll::LtInterest;
use crate::time::saturating_add;
use crate::token::Token;

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

/// What one round of accepting ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// The backlog is empty.
    Drained,
    /// The read budget was used up with connections still waiting.
    BudgetUsed,
    /// Descriptors ran out: accepting pauses for this long.
    Paused(Duration),
}

/// A listener in a loop's slab.
#[derive(Debug)]
pub(crate) struct Acceptor {
    pub listener: Listener,
    pub target: AcceptorTarget,
    pub init: Arc<ChannelInit>,
    /// Accepting is paused after a resource error.
    paused: bool,
    /// On the loop's ready list.
    queued: bool,
    /// The current resource-error episode was logged.
    episode_logged: bool,
    /// Connections closed at once because of the connection limit.
    rejected: u64,
}

impl Acceptor {
    pub(crate) fn new(
        listener: Listener,
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

    /// Accepts up to the read budget. Connections for this loop go to
    /// `local` (already admitted and counted); the others are handed to
    /// their sub-reactor.
    pub(crate) fn accept(
        &mut self,
        local: &mut Vec<(Socket, Option<SocketAddr>)>,
        counters: &LoopCounters,
    ) -> Accepted {
        for _ in 0..self.init.config.max_messages_per_read {
            if self.paused {
                return Accepted::Drained;
            }
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    self.episode_over();
                    add(&counters.accepts, 1);
                    self.admit(stream, peer, local, counters);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Accepted::Drained,
                Err(e) if is_transient(&e) => {}
                Err(e) => return Accepted::Paused(self.pause(&e)),
            }
        }
        Accepted::BudgetUsed
    }

    /// Admits a connection under the limit and sends it where it goes.
    fn admit(
        &mut self,
        stream: Socket,
        peer: Option<SocketAddr>,
        local: &mut Vec<(Socket, Option<SocketAddr>)>,
        counters: &LoopCounters,
    ) {
        let live = &self.init.live;
        let admitted = live.fetch_add(1, Ordering::AcqRel);
        if self.init.max_connections.is_some_and(|max| admitted >= max) {
            live.fetch_sub(1, Ordering::AcqRel);
            add(&counters.connections_refused, 1);
            self.rejected();
            // Closed at once: the peer sees an orderly end of stream.
            drop(stream);
            return;
        }
        match self.target.next_loop() {
            None => local.push((stream, peer)),
            Some(sub) => {
                sub.shared.connections.fetch_add(1, Ordering::AcqRel);
                let init = Arc::clone(&self.init);
                let posted = sub.run_on_loop(move |el| {
                    el.register_counted(stream, peer, &init);
                });
                if !posted {
                    sub.shared.connections.fetch_sub(1, Ordering::AcqRel);
                    live.fetch_sub(1, Ordering::AcqRel);
                    log::warn!(peer:? = peer; "a sub-reactor has stopped; a new connection ({peer:?}) dropped");
                }
            }
        }
    }

    /// A connection was accepted: a resource episode, if any, is over.
    fn episode_over(&mut self) {
        if self.episode_logged {
            self.episode_logged = false;
            let listener = self.listener.describe();
            log::info!(listener:%; "accepting on {listener} again");
        }
    }

    /// Pauses accepting after `error`; returns how long for.
    fn pause(&mut self, error: &io::Error) -> Duration {
        self.paused = true;
        let backoff = self.init.accept_backoff;
        if !self.episode_logged {
            self.episode_logged = true;
            let listener = self.listener.describe();
            log::warn!(
                listener:%, error:%, backoff_ms = backoff.as_millis() as u64;
                "accept on {listener} failed: {error}; not accepting for {backoff:?} \
                 (open connections are still served)"
            );
        }
        backoff
    }

    /// A connection was closed at once because of the connection limit.
    fn rejected(&mut self) {
        self.rejected += 1;
        if self.rejected.is_power_of_two() {
            let (limit, refused) = (self.init.max_connections, self.rejected);
            log::warn!(
                limit:?, refused;
                "connection limit of {limit:?} reached: {refused} connection(s) closed on accept so far"
            );
        }
    }
}

/// Errors after which the next accept may well succeed.
fn is_transient(e: &io::Error) -> bool {
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

/// The loop's side: run the acceptor on readiness, register what it
/// accepted for this loop, carry out a pause.
impl EventLoop {
    /// The listener `token` is readable (or was left on the ready list).
    pub(crate) fn accept(&mut self, token: Token) {
        let Some(Slot::Listener(acceptor)) = self.slots.get_mut(token) else {
            return;
        };
        let mut local = Vec::new();
        let outcome = acceptor.accept(&mut local, &self.env.counters);
        let init = Arc::clone(&acceptor.init);
        match outcome {
            Accepted::Drained => {}
            // Edge-triggered: no new edge comes for connections already
            // waiting; level-triggered reports them again.
            Accepted::BudgetUsed if !self.env.level && !acceptor.queued => {
                acceptor.queued = true;
                self.env.serve_again(token);
            }
            Accepted::BudgetUsed => {}
            Accepted::Paused(backoff) => self.pause_accepting(token, backoff),
        }
        for (stream, peer) in local {
            self.register_connection(stream, peer, &init);
        }
    }

    /// The listener's turn on the ready list.
    pub(crate) fn accept_again(&mut self, token: Token) {
        if let Some(Slot::Listener(acceptor)) = self.slots.get_mut(token) {
            acceptor.queued = false;
            self.accept(token);
        }
    }

    /// Stops accepting for `backoff` (descriptors ran out): the listener
    /// stays open, existing connections are served, and the loop does not
    /// spin on the pending connections.
    fn pause_accepting(&mut self, token: Token, backoff: Duration) {
        add(&self.env.counters.accept_backoffs, 1);
        if let Some(Slot::Listener(acceptor)) = self.slots.get(token)
            && self.env.level
        {
            add(&self.env.counters.epoll_ctl, 1);
            let _ = self
                .poller
                .modify(&acceptor.listener, token, LtInterest::default());
        }
        let id = self.env.event_loop.next_timer_id();
        let at = saturating_add(self.env.now, backoff);
        self.timers
            .insert(id, at, None, TimerAction::ResumeAccept(token));
    }

    /// The back-off ended: accept again.
    pub(crate) fn resume_accepting(&mut self, token: Token) {
        let Some(Slot::Listener(acceptor)) = self.slots.get_mut(token) else {
            return;
        };
        acceptor.paused = false;
        if self.env.level {
            add(&self.env.counters.epoll_ctl, 1);
            let interest = LtInterest {
                read: true,
                write: false,
            };
            let _ = self.poller.modify(&acceptor.listener, token, interest);
        } else {
            // Connections waiting in the backlog bring no new edge.
            self.accept(token);
        }
    }
}
