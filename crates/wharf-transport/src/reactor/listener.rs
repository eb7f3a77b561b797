//! The listening socket under an acceptor: TCP or a Unix-domain stream
//! listener, behind one type, so that accepting, back-off, the connection
//! limit and hand-offs to sub-reactors are written once for both (as
//! [`Socket`] does for connections).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::PathBuf;

use mio::event::Source;
use mio::net::{TcpListener, UnixListener};
use mio::{Interest, Registry, Token};

use crate::channel::socket::Socket;

/// A bound, listening, non-blocking socket.
#[derive(Debug)]
pub(crate) enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix-domain stream listener.
    Unix(UnixListener),
}

/// Where a listener listens, for logs.
#[derive(Debug)]
pub(crate) enum Where {
    Tcp(Option<SocketAddr>),
    Unix(Option<PathBuf>),
}

impl fmt::Display for Where {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Where::Tcp(Some(addr)) => write!(f, "{addr}"),
            Where::Unix(Some(path)) => write!(f, "{}", path.display()),
            Where::Tcp(None) | Where::Unix(None) => f.write_str("(unknown address)"),
        }
    }
}

impl Listener {
    /// Accepts one connection: the stream, and the peer's address for TCP
    /// (a Unix-domain peer has none worth naming: clients rarely bind).
    pub(crate) fn accept(&self) -> io::Result<(Socket, Option<SocketAddr>)> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, peer)| (Socket::Tcp(s), Some(peer))),
            Listener::Unix(l) => l.accept().map(|(s, _)| (Socket::Unix(s), None)),
        }
    }

    /// Where it listens, for logs.
    pub(crate) fn describe(&self) -> Where {
        match self {
            Listener::Tcp(l) => Where::Tcp(l.local_addr().ok()),
            Listener::Unix(l) => Where::Unix(
                l.local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(PathBuf::from)),
            ),
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l) => l.as_fd(),
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl Source for Listener {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.register(registry, token, interests),
            Listener::Unix(l) => l.register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.reregister(registry, token, interests),
            Listener::Unix(l) => l.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.deregister(registry),
            Listener::Unix(l) => l.deregister(registry),
        }
    }
}
