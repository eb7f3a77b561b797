//! The TLS twin of `load.rs`: a load driver for echo servers over TLS that
//! shares no code with wharf (rustls's client on `mio` sockets, on the
//! calling thread). Each connection completes its handshake first (not
//! measured), then keeps one message of a fixed size in flight, checks the
//! echo byte for byte, and sends the next.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use wharf::tls::rustls::pki_types::ServerName;
use wharf::tls::rustls::{ClientConfig, ClientConnection};

struct Conn {
    stream: TcpStream,
    tls: ClientConnection,
    /// Bytes of the current echo read so far.
    read: usize,
    /// When the current message was started; `None` when idle.
    started: Option<Instant>,
}

/// Many TLS connections to one echo server.
pub struct TlsDriver {
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    payload: Vec<u8>,
    scratch: Vec<u8>,
}

impl TlsDriver {
    /// Connects `conns` connections to `addr` and completes their
    /// handshakes, for messages of `size` bytes.
    pub fn connect(
        addr: SocketAddr,
        conns: usize,
        size: usize,
        config: Arc<ClientConfig>,
    ) -> io::Result<TlsDriver> {
        let poll = Poll::new()?;
        let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
        let mut list = Vec::with_capacity(conns);
        for i in 0..conns {
            let std = std::net::TcpStream::connect(addr)?;
            std.set_nodelay(true)?;
            std.set_nonblocking(true)?;
            let mut stream = TcpStream::from_std(std);
            poll.registry().register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            let tls =
                ClientConnection::new(config.clone(), name.clone()).map_err(io::Error::other)?;
            list.push(Conn {
                stream,
                tls,
                read: 0,
                started: None,
            });
        }
        let mut driver = TlsDriver {
            poll,
            events: Events::with_capacity(1024),
            conns: list,
            payload: (0..size).map(|i| (i * 7 + 3) as u8).collect(),
            scratch: vec![0; size.max(64 << 10)],
        };
        driver.handshake()?;
        Ok(driver)
    }

    /// Drives every connection until its handshake is done.
    fn handshake(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.conns.iter().any(|c| c.tls.is_handshaking()) {
            if Instant::now() > deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "handshakes"));
            }
            for i in 0..self.conns.len() {
                self.pump(i)?;
            }
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(10)))?;
        }
        Ok(())
    }

    /// Writes what rustls wants written, reads what the socket has, and
    /// checks the plaintext; returns whether the current message is done.
    fn pump(&mut self, i: usize) -> io::Result<bool> {
        let size = self.payload.len();
        let conn = &mut self.conns[i];
        while conn.tls.wants_write() {
            match conn.tls.write_tls(&mut conn.stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut done = false;
        loop {
            match conn.tls.read_tls(&mut conn.stream) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "server closed",
                    ));
                }
                Ok(_) => {
                    conn.tls.process_new_packets().map_err(io::Error::other)?;
                    loop {
                        match conn.tls.reader().read(&mut self.scratch) {
                            Ok(0) => break,
                            Ok(n) => {
                                if conn.started.is_none()
                                    || conn.read + n > size
                                    || self.scratch[..n] != self.payload[conn.read..conn.read + n]
                                {
                                    return Err(io::Error::new(
                                        io::ErrorKind::InvalidData,
                                        "echo differs",
                                    ));
                                }
                                conn.read += n;
                                if conn.read == size {
                                    done = true;
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e),
                        }
                    }
                    // Handshake replies and the like.
                    while conn.tls.wants_write() {
                        match conn.tls.write_tls(&mut conn.stream) {
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Starts a message on connection `i`; returns whether its echo is
    /// already complete.
    fn begin(&mut self, i: usize) -> io::Result<bool> {
        let conn = &mut self.conns[i];
        conn.read = 0;
        conn.started = Some(Instant::now());
        conn.tls.writer().write_all(&self.payload)?;
        self.pump(i)
    }

    /// Completes `messages` round trips; returns the time taken.
    pub fn run_messages(&mut self, messages: u64) -> io::Result<Duration> {
        let start = Instant::now();
        self.run(|done, _| done >= messages, messages)?;
        Ok(start.elapsed())
    }

    /// Runs for `duration`; returns the round trips completed.
    pub fn run_for(&mut self, duration: Duration) -> io::Result<u64> {
        let start = Instant::now();
        let mut done = 0;
        self.run(
            |count, now| {
                done = count;
                now.duration_since(start) >= duration
            },
            u64::MAX,
        )?;
        Ok(done)
    }

    /// Drives until `stop(completed, now)`; starts at most `limit`
    /// messages, and lets the ones in flight finish.
    fn run(&mut self, mut stop: impl FnMut(u64, Instant) -> bool, limit: u64) -> io::Result<()> {
        let mut started = 0u64;
        let mut completed = 0u64;
        let mut stopping = false;
        let mut last_progress = Instant::now();
        let mut ready: Vec<(usize, bool)> = Vec::new();
        for i in 0..self.conns.len() {
            if started < limit {
                started += 1;
                let done = self.begin(i)?;
                ready.push((i, done));
            }
        }
        loop {
            for (i, mut done) in ready.drain(..) {
                if !done && self.conns[i].started.is_some() {
                    done = self.pump(i)?;
                }
                while done {
                    self.conns[i].started = None;
                    completed += 1;
                    last_progress = Instant::now();
                    stopping |= stop(completed, last_progress);
                    done = if !stopping && started < limit {
                        started += 1;
                        self.begin(i)?
                    } else {
                        false
                    };
                }
            }
            if completed == started {
                return Ok(());
            }
            if last_progress.elapsed() > Duration::from_secs(10) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no echo for 10 s"));
            }
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(100)))?;
            ready.extend(self.events.iter().map(|e| (e.token().0, false)));
        }
    }
}
