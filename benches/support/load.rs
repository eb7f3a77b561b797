//! A load driver for echo servers that shares no code with wharf: `mio`
//! directly, on the calling thread. Each connection keeps one message of a
//! fixed size in flight, checks the echo byte for byte, and sends the next
//! (request/response, as a client of an RPC server would).

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Round-trip times in microseconds.
pub type Latencies = hdrhistogram::Histogram<u64>;

/// A new latency histogram (1 µs to 60 s, 3 significant digits).
pub fn latencies() -> Latencies {
    hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

struct Conn {
    stream: TcpStream,
    /// Bytes of the current message written so far.
    written: usize,
    /// Bytes of the current echo read so far.
    read: usize,
    /// When the current message was started; `None` when idle.
    started: Option<Instant>,
}

/// Many connections to one echo server.
pub struct Driver {
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    payload: Vec<u8>,
    scratch: Vec<u8>,
}

impl Driver {
    /// Connects `conns` connections to `addr` for messages of `size` bytes.
    pub fn connect(addr: SocketAddr, conns: usize, size: usize) -> io::Result<Driver> {
        let poll = Poll::new()?;
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
            list.push(Conn {
                stream,
                written: 0,
                read: 0,
                started: None,
            });
        }
        Ok(Driver {
            poll,
            events: Events::with_capacity(1024),
            conns: list,
            payload: (0..size).map(|i| (i * 7 + 3) as u8).collect(),
            scratch: vec![0; size.max(64 << 10)],
        })
    }

    /// Completes `messages` round trips; returns the time taken.
    pub fn run_messages(
        &mut self,
        messages: u64,
        latencies: Option<&mut Latencies>,
    ) -> io::Result<Duration> {
        let start = Instant::now();
        self.run(|done, _| done >= messages, messages, latencies)?;
        Ok(start.elapsed())
    }

    /// Runs for `duration`; returns the round trips completed. `progress`
    /// is called about once a second with the count so far.
    pub fn run_for(
        &mut self,
        duration: Duration,
        latencies: Option<&mut Latencies>,
        mut progress: impl FnMut(u64),
    ) -> io::Result<u64> {
        let start = Instant::now();
        let mut next_report = start + Duration::from_secs(1);
        let mut done = 0;
        self.run(
            |count, now| {
                done = count;
                if now >= next_report {
                    progress(count);
                    next_report += Duration::from_secs(1);
                }
                now.duration_since(start) >= duration
            },
            u64::MAX,
            latencies,
        )?;
        Ok(done)
    }

    /// Drives until `stop(completed, now)`; starts at most `limit` messages.
    fn run(
        &mut self,
        mut stop: impl FnMut(u64, Instant) -> bool,
        limit: u64,
        mut latencies: Option<&mut Latencies>,
    ) -> io::Result<()> {
        let size = self.payload.len();
        let mut started = 0u64;
        let mut completed = 0u64;
        // Start one message on every connection.
        for i in 0..self.conns.len() {
            if started < limit {
                started += 1;
                self.begin(i)?;
            }
        }
        let mut last_progress = Instant::now();
        loop {
            let now = Instant::now();
            if stop(completed, now) {
                break;
            }
            if completed == started {
                break;
            }
            if now.duration_since(last_progress) > Duration::from_secs(10) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no echo for 10 s"));
            }
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(100)))?;
            let ready: Vec<usize> = self.events.iter().map(|e| e.token().0).collect();
            for i in ready {
                self.write_more(i)?;
                loop {
                    let conn = &mut self.conns[i];
                    if conn.started.is_none() {
                        break;
                    }
                    let want = size - conn.read;
                    match conn.stream.read(&mut self.scratch[..want]) {
                        Ok(0) => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "server closed",
                            ));
                        }
                        Ok(n) => {
                            if self.scratch[..n] != self.payload[conn.read..conn.read + n] {
                                return Err(io::Error::new(
                                    io::ErrorKind::InvalidData,
                                    "echo differs",
                                ));
                            }
                            conn.read += n;
                            if conn.read == size {
                                let rtt = conn
                                    .started
                                    .take()
                                    .map_or(0, |t| t.elapsed().as_micros() as u64);
                                if let Some(h) = latencies.as_deref_mut() {
                                    let _ = h.record(rtt.max(1));
                                }
                                completed += 1;
                                last_progress = Instant::now();
                                if started < limit && !stop(completed, last_progress) {
                                    started += 1;
                                    self.begin(i)?;
                                }
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        // Let messages in flight finish, so the next run starts clean.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.conns.iter().any(|c| c.started.is_some()) {
            if Instant::now() > deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "draining"));
            }
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(100)))?;
            let ready: Vec<usize> = self.events.iter().map(|e| e.token().0).collect();
            for i in ready {
                self.write_more(i)?;
                let conn = &mut self.conns[i];
                while conn.started.is_some() {
                    let want = size - conn.read;
                    match conn.stream.read(&mut self.scratch[..want]) {
                        Ok(0) => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "server closed",
                            ));
                        }
                        Ok(n) => {
                            conn.read += n;
                            if conn.read == size {
                                conn.started = None;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(())
    }

    fn begin(&mut self, i: usize) -> io::Result<()> {
        let conn = &mut self.conns[i];
        conn.written = 0;
        conn.read = 0;
        conn.started = Some(Instant::now());
        self.write_more(i)
    }

    fn write_more(&mut self, i: usize) -> io::Result<()> {
        let size = self.payload.len();
        let conn = &mut self.conns[i];
        while conn.started.is_some() && conn.written < size {
            match conn.stream.write(&self.payload[conn.written..]) {
                Ok(n) => conn.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
