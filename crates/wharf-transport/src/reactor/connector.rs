//! A client connect in progress on an event loop: a non-blocking
//! `connect(2)` waiting for the socket to become writable, with a timeout,
//! whose outcome is delivered on the loop that started it (Netty's
//! `ChannelFuture` listener). Nothing here ever blocks the loop: a handler
//! can start a connect from its own callback and hear the result later on
//! the same thread.

use std::io;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mio::net::{TcpStream, UnixStream};

use crate::channel::connection::ActiveHook;
use crate::channel::env::Readiness;
use crate::channel::init::ChannelInit;
use crate::channel::shared::ChannelShared;
use crate::channel::socket::Socket;
use crate::reactor::event_loop::{EventLoop, Slot, TimerAction};
use crate::reactor::timer_queue::TimerId;
use crate::sys::epoll::LtInterest;
use crate::time::saturating_add;
use crate::token::Token;

/// What is told the outcome of a connect, on the loop that made it.
pub(crate) type ConnectDone = Box<dyn FnOnce(io::Result<Arc<ChannelShared>>) + Send>;

/// Where a client connects to.
#[derive(Debug, Clone)]
pub(crate) enum Remote {
    /// A TCP address.
    Tcp(SocketAddr),
    /// The path of a Unix-domain stream socket.
    Unix(PathBuf),
}

impl Remote {
    /// Starts a non-blocking connect.
    fn connect(&self) -> io::Result<Socket> {
        match self {
            Remote::Tcp(addr) => TcpStream::connect(*addr).map(Socket::Tcp),
            Remote::Unix(path) => match UnixStream::connect(path) {
                Ok(stream) => Ok(Socket::Unix(stream)),
                // A Unix-domain connect does not wait for room in the
                // listener's backlog when non-blocking: it fails at once.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("{}: the listener's backlog is full", path.display()),
                )),
                Err(e) => Err(e),
            },
        }
    }
}

/// A connect in progress, in its loop's slab.
pub(crate) struct Connector {
    stream: Socket,
    init: Arc<ChannelInit>,
    on_done: ConnectDone,
    timer: TimerId,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("peer", &self.stream.peer_addr())
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// What an event says about the connect: `None` while it is still in
    /// progress, then its outcome.
    fn outcome(&self, r: Readiness) -> Option<io::Result<()>> {
        if !(r.writable || r.error || r.write_closed) {
            return None;
        }
        if let Ok(Some(e)) | Err(e) = self.stream.take_error() {
            return Some(Err(e));
        }
        match self.stream.is_connected() {
            Ok(true) => Some(Ok(())),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// `on_done`, shielded from panics, to be told later.
fn guarded(on_done: ConnectDone) -> ActiveHook {
    ActiveHook(Box::new(move |outcome| report(on_done, outcome)))
}

/// Tells `on_done` the outcome, shielding the loop from a panic in it.
fn report(on_done: ConnectDone, outcome: io::Result<Arc<ChannelShared>>) {
    if catch_unwind(AssertUnwindSafe(|| on_done(outcome))).is_err() {
        log::error!("a connect callback panicked");
    }
}

/// The loop's side of connecting.
impl EventLoop {
    /// Starts connecting to `remote` on this loop; `on_done` hears the
    /// outcome here, once the connection is active (its handler's
    /// `on_active` has run) or has failed or timed out.
    pub(crate) fn start_connect(
        &mut self,
        remote: Remote,
        init: Arc<ChannelInit>,
        timeout: Duration,
        on_done: ConnectDone,
    ) {
        let mut stream = match remote.connect() {
            Ok(stream) => stream,
            Err(e) => return report(on_done, Err(e)),
        };
        let token = self.slots.next_token();
        let interest = LtInterest {
            read: false,
            write: true,
        };
        if let Err(e) = self.poller.register(&mut stream, token, interest) {
            return report(on_done, Err(e));
        }
        let timer = self.env.event_loop.next_timer_id();
        let at = saturating_add(self.env.now, timeout);
        self.timers
            .insert(timer, at, None, TimerAction::ConnectTimeout(token));
        let connector = Connector {
            stream,
            init,
            on_done,
            timer,
        };
        let inserted = self.slots.insert(Slot::Connecting(connector));
        debug_assert_eq!(inserted, token);
    }

    /// An event for a connect in progress.
    pub(crate) fn connect_event(&mut self, token: Token, r: Readiness) {
        let Some(Slot::Connecting(connector)) = self.slots.get(token) else {
            return;
        };
        match connector.outcome(r) {
            None => {}
            Some(Ok(())) => self.connected(token),
            Some(Err(e)) => self.fail_connect(token, e),
        }
    }

    /// The connect timer fired.
    pub(crate) fn connect_timed_out(&mut self, token: Token) {
        let error = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
        self.fail_connect(token, error);
    }

    /// Fails a connect in progress with `error` (also at shutdown).
    pub(crate) fn fail_connect(&mut self, token: Token, error: io::Error) {
        if let Some(Slot::Connecting(mut c)) = self.slots.remove(token) {
            let _ = self.poller.deregister(&mut c.stream);
            self.timers.cancel(c.timer);
            report(c.on_done, Err(error));
        }
    }

    /// The connect succeeded: the socket becomes a channel of this loop.
    fn connected(&mut self, token: Token) {
        let Some(Slot::Connecting(mut c)) = self.slots.remove(token) else {
            return;
        };
        self.timers.cancel(c.timer);
        let _ = self.poller.deregister(&mut c.stream);
        c.init.live.fetch_add(1, Ordering::AcqRel);
        let outcome = match self.register_connection(c.stream, None, &c.init) {
            Some(token) => match self.slots.get_mut(token) {
                Some(Slot::Conn(conn)) if !conn.core.shared.is_active() => {
                    // A TLS handshake is under way: the connect is done
                    // when it is (or fails with its reason).
                    conn.core.rare().on_active = Some(guarded(c.on_done));
                    return;
                }
                Some(Slot::Conn(conn)) => Ok(Arc::clone(&conn.core.shared)),
                _ => Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the connection closed as soon as it opened",
                )),
            },
            None => Err(io::Error::other("could not register the connection")),
        };
        report(c.on_done, outcome);
    }
}
