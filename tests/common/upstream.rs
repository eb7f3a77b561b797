//! Upstream servers for the proxy tests, on plain threads and std sockets
//! (not wharf's code): an exchanger that sends and receives a stream at
//! once on each connection, and helpers for the other end's view.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::stream::PatternStream;

/// What one connection to an upstream saw.
#[derive(Debug)]
pub struct Seen {
    /// The check of what it received (bytes, or what went wrong).
    pub received: Result<u64, String>,
    /// How its own stream's sending ended.
    pub sent: Result<(), String>,
}

/// A listener on loopback whose connections run `serve`, each on a thread
/// of its own; reports of each connection come through `seen`.
pub struct Upstream {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    pub seen: mpsc::Receiver<Seen>,
}

impl Upstream {
    pub fn start(serve: fn(TcpStream) -> Seen) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the upstream");
        let addr = listener.local_addr().expect("upstream address");
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, seen) = mpsc::channel();
        let s = Arc::clone(&stop);
        let acceptor = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
                let _ = conn.set_write_timeout(Some(Duration::from_secs(60)));
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let _ = tx.send(serve(conn));
                });
            }
        });
        Upstream {
            addr,
            stop,
            acceptor: Some(acceptor),
            seen,
        }
    }

    /// The report of the next connection that ends.
    pub fn next_seen(&self) -> Seen {
        self.seen
            .recv_timeout(Duration::from_secs(120))
            .expect("an upstream connection's report")
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// The header of an exchange: the seed, then the bytes each way.
pub fn header(seed: u64, forward: u64, back: u64) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[..8].copy_from_slice(&seed.to_le_bytes());
    h[8..16].copy_from_slice(&forward.to_le_bytes());
    h[16..].copy_from_slice(&back.to_le_bytes());
    h
}

/// The stream the client sends, and the one the upstream sends back.
pub fn streams(seed: u64, forward: u64, back: u64) -> (PatternStream, PatternStream) {
    (
        PatternStream::new(seed ^ 0xf0, forward),
        PatternStream::new(seed ^ 0xba, back),
    )
}

/// The exchanger: reads a header, then at once sends its stream (and
/// shuts its output) and checks the client's to the end of input.
pub fn exchange(mut conn: TcpStream) -> Seen {
    let mut h = [0u8; 24];
    if let Err(e) = conn.read_exact(&mut h) {
        return Seen {
            received: Err(format!("header: {e}")),
            sent: Err("no header".into()),
        };
    }
    let word = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().expect("8 bytes"));
    let (forward, back) = streams(word(0), word(8), word(16));
    let mut writer = conn.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        let sent = back.write_to(&mut writer).map_err(|e| e.to_string());
        let _ = writer.shutdown(Shutdown::Write);
        sent
    });
    let received = forward.check_reader(&mut conn);
    let sent = sender
        .join()
        .unwrap_or_else(|_| Err("sender panicked".into()));
    Seen { received, sent }
}

/// Reads to the end of input, then answers with the byte count and
/// closes (a request, then its response: the client's half-close first).
pub fn count_then_answer(mut conn: TcpStream) -> Seen {
    let mut n = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    let received = loop {
        match conn.read(&mut buf) {
            Ok(0) => break Ok(n),
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(format!("after {n} bytes: {e}")),
        }
    };
    let sent = conn
        .write_all(format!("got {n}").as_bytes())
        .map_err(|e| e.to_string());
    Seen { received, sent }
}

/// Greets and shuts its output at once (its half-close first), then
/// counts what the client sends until the client's end of input.
pub fn greet_then_count(mut conn: TcpStream) -> Seen {
    let sent = conn
        .write_all(b"hello")
        .and_then(|()| conn.shutdown(Shutdown::Write))
        .map_err(|e| e.to_string());
    let mut n = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    let received = loop {
        match conn.read(&mut buf) {
            Ok(0) => break Ok(n),
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(format!("after {n} bytes: {e}")),
        }
    };
    Seen { received, sent }
}

/// Reads until the stream ends, and says how: `Ok(bytes)` for an orderly
/// end, `Err(kind)` for a reset or another error.
pub fn read_to_the_end(conn: &mut impl Read) -> Result<u64, io::ErrorKind> {
    let mut n = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.kind()),
        }
    }
}

/// Sends `stream` after its header on `conn`, shuts the output, and checks
/// what comes back against `back`.
pub fn run_exchange(mut conn: TcpStream, seed: u64, forward: u64, back: u64) -> Result<(), String> {
    let (out, expected) = streams(seed, forward, back);
    let mut writer = conn.try_clone().map_err(|e| e.to_string())?;
    let sender = std::thread::spawn(move || {
        writer.write_all(&header(seed, forward, back))?;
        out.write_to(&mut writer)?;
        writer.shutdown(Shutdown::Write)
    });
    let received = expected.check_reader(&mut conn);
    let sent = sender
        .join()
        .map_err(|_| "sender panicked".to_string())?
        .map_err(|e| format!("sending: {e}"));
    received.map_err(|e| format!("receiving: {e}"))?;
    sent
}
