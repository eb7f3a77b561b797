//! Socket options, set through `socket2`.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::TcpListener;
use socket2::{Domain, Protocol, SockRef, Type};

use crate::channel::socket::Socket;

/// A socket option for a bootstrap. Listener options (backlog, address and
/// port reuse) apply to the listening socket; the others to every
/// connection (and the buffer sizes to the listener too, which Linux passes
/// on to accepted sockets before the handshake, when window scaling is
/// decided).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketOption {
    /// `TCP_NODELAY`: send small writes at once (default on, as Netty).
    TcpNoDelay(bool),
    /// `SO_REUSEADDR` on the listener (default on).
    ReuseAddr(bool),
    /// `SO_REUSEPORT` on the listener (default off; the `Reuseport` mode
    /// turns it on).
    ReusePort(bool),
    /// `SO_RCVBUF` in bytes (default: the kernel's autotuning).
    RecvBuffer(usize),
    /// `SO_SNDBUF` in bytes (default: the kernel's autotuning).
    SendBuffer(usize),
    /// `SO_LINGER`: `Some(Duration::ZERO)` makes close send a reset.
    Linger(Option<Duration>),
    /// `SO_KEEPALIVE` (default: the kernel's, off).
    KeepAlive(bool),
    /// The listen backlog (default `SOMAXCONN`).
    Backlog(i32),
}

/// The options of one bootstrap.
#[derive(Debug, Clone)]
pub(crate) struct SocketOptions {
    pub nodelay: bool,
    pub reuse_addr: bool,
    pub reuse_port: bool,
    pub recv_buffer: Option<usize>,
    pub send_buffer: Option<usize>,
    pub linger: Option<Option<Duration>>,
    pub keepalive: Option<bool>,
    pub backlog: i32,
}

impl Default for SocketOptions {
    fn default() -> SocketOptions {
        SocketOptions {
            nodelay: true,
            reuse_addr: true,
            reuse_port: false,
            recv_buffer: None,
            send_buffer: None,
            linger: None,
            keepalive: None,
            backlog: libc::SOMAXCONN,
        }
    }
}

impl SocketOptions {
    pub(crate) fn set(&mut self, option: SocketOption) {
        match option {
            SocketOption::TcpNoDelay(on) => self.nodelay = on,
            SocketOption::ReuseAddr(on) => self.reuse_addr = on,
            SocketOption::ReusePort(on) => self.reuse_port = on,
            SocketOption::RecvBuffer(n) => self.recv_buffer = Some(n),
            SocketOption::SendBuffer(n) => self.send_buffer = Some(n),
            SocketOption::Linger(d) => self.linger = Some(d),
            SocketOption::KeepAlive(on) => self.keepalive = Some(on),
            SocketOption::Backlog(n) => self.backlog = n,
        }
    }

    /// Applies the per-connection options to a connected socket (the TCP
    /// ones only to TCP).
    pub(crate) fn apply_to_stream(&self, stream: &Socket) -> io::Result<()> {
        let socket = SockRef::from(stream);
        if stream.is_tcp() {
            socket.set_tcp_nodelay(self.nodelay)?;
        }
        if let Some(n) = self.recv_buffer {
            socket.set_recv_buffer_size(n)?;
        }
        if let Some(n) = self.send_buffer {
            socket.set_send_buffer_size(n)?;
        }
        if let Some(linger) = self.linger {
            socket.set_linger(linger)?;
        }
        if let Some(on) = self.keepalive {
            socket.set_keepalive(on)?;
        }
        Ok(())
    }

    /// A non-blocking listening socket bound to `addr`.
    pub(crate) fn bind_listener(
        &self,
        addr: SocketAddr,
        reuse_port: bool,
    ) -> io::Result<TcpListener> {
        let socket =
            socket2::Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(self.reuse_addr)?;
        if reuse_port || self.reuse_port {
            socket.set_reuse_port(true)?;
        }
        if let Some(n) = self.recv_buffer {
            socket.set_recv_buffer_size(n)?;
        }
        if let Some(n) = self.send_buffer {
            socket.set_send_buffer_size(n)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(self.backlog)?;
        Ok(TcpListener::from_std(socket.into()))
    }
}
