//! A client for many connections at once, on one thread, with `mio`
//! directly (not wharf's own code): each connection sends its payload in
//! writes of random sizes while reading back, and checks every byte. Over
//! TCP or a Unix-domain socket.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Events, Interest, Poll, Token};

use super::Rng;

/// Where the driver connects.
#[derive(Debug, Clone)]
pub enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl From<SocketAddr> for Target {
    fn from(addr: SocketAddr) -> Target {
        Target::Tcp(addr)
    }
}

/// A non-blocking client stream of either kind.
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn connect(target: &Target) -> io::Result<Stream> {
        match target {
            Target::Tcp(addr) => TcpStream::connect(*addr).map(Stream::Tcp),
            Target::Unix(path) => UnixStream::connect(path).map(Stream::Unix),
        }
    }

    fn source(&mut self) -> &mut dyn Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Conn {
    stream: Stream,
    payload: Vec<u8>,
    sent: usize,
    received: usize,
    max_write: usize,
}

/// Sends each payload on its own connection and expects it echoed back
/// byte for byte; writes are of random sizes from 1 to `max_write` bytes.
/// Returns an error naming the first mismatch, or a timeout.
pub fn echo_all(
    target: impl Into<Target>,
    payloads: Vec<Vec<u8>>,
    max_write: usize,
    seed: u64,
    limit: Duration,
) -> Result<(), String> {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(1024);
    let mut rng = Rng::new(seed);
    let mut conns = HashMap::new();
    let target = target.into();
    for (i, payload) in payloads.into_iter().enumerate() {
        let mut stream = Stream::connect(&target).map_err(|e| format!("connect: {e}"))?;
        poll.registry()
            .register(
                stream.source(),
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        conns.insert(
            i,
            Conn {
                stream,
                payload,
                sent: 0,
                received: 0,
                max_write,
            },
        );
    }
    let deadline = Instant::now() + limit;
    let mut scratch = vec![0u8; 256 * 1024];
    let mut done = 0;
    let total = conns.len();
    while done < total {
        if Instant::now() > deadline {
            let stuck: Vec<_> = conns
                .iter()
                .filter(|(_, c)| c.received < c.payload.len())
                .map(|(i, c)| (*i, c.sent, c.received, c.payload.len()))
                .take(5)
                .collect();
            return Err(format!(
                "timed out after {limit:?}: {done}/{total} done; stuck (conn, sent, received, len): {stuck:?}"
            ));
        }
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        for event in events.iter() {
            let i = event.token().0;
            let Some(conn) = conns.get_mut(&i) else {
                continue;
            };
            // Write what the socket takes.
            while conn.sent < conn.payload.len() {
                let size = rng
                    .range(1, conn.max_write)
                    .min(conn.payload.len() - conn.sent);
                match conn
                    .stream
                    .write(&conn.payload[conn.sent..conn.sent + size])
                {
                    Ok(n) => conn.sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("conn {i}: write: {e}")),
                }
            }
            // Read and check what came back.
            loop {
                match conn.stream.read(&mut scratch) {
                    Ok(0) => {
                        if conn.received < conn.payload.len() {
                            return Err(format!(
                                "conn {i}: closed after {} of {} bytes",
                                conn.received,
                                conn.payload.len()
                            ));
                        }
                        break;
                    }
                    Ok(n) => {
                        let end = conn.received + n;
                        if end > conn.payload.len() {
                            return Err(format!(
                                "conn {i}: {} bytes more than sent",
                                end - conn.payload.len()
                            ));
                        }
                        if scratch[..n] != conn.payload[conn.received..end] {
                            let at = (0..n)
                                .find(|&k| scratch[k] != conn.payload[conn.received + k])
                                .unwrap_or(0);
                            return Err(format!("conn {i}: byte {} differs", conn.received + at));
                        }
                        conn.received = end;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("conn {i}: read: {e}")),
                }
            }
            if conn.received == conn.payload.len() && conn.sent == conn.payload.len() {
                let mut conn = conns.remove(&i).expect("present");
                let _ = poll.registry().deregister(conn.stream.source());
                done += 1;
            }
        }
    }
    Ok(())
}
