//! Memory per idle connection (issue 12, goal 4), in a release build: a
//! single-reactor echo server (edge-triggered, pooled buffers) holds N
//! connections open, each after a 1-byte echo, and the growth of its
//! resident memory is divided among them. Each N runs in a fresh server
//! process (this binary again), so that one round's freed memory does not
//! flatter the next; the clients run in a process of their own, so only
//! the server's memory is counted. Kernel socket memory (buffers, epoll
//! entries, the descriptors) is not in RSS and not counted.
//!
//! The descriptor limit bounds N: both ends of a connection need one, in
//! different processes, and the hard limit here is 20 000, so the largest
//! round is 19 000 connections (100 000 would need `ulimit -n` above it).
//!
//! ```text
//! cargo bench --bench idle_connections          # 10 000, and 100 000 as far as the limit allows
//! WHARF_IDLE_COUNTS=1000,5000 cargo bench --bench idle_connections
//! ```

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wharf::buf::Allocator;
use wharf::transport::handlers::Echo;
use wharf::transport::sys::limits;
use wharf::{Pipeline, ReactorMode, ServerBootstrap, Trigger};

/// Set in a server process: how many connections to hold.
const SERVER_ROLE: &str = "WHARF_IDLE_SERVER";
/// Set in a client process: the server's address and the count.
const CLIENT_ROLE: &str = "WHARF_IDLE_CLIENT";
/// Descriptors each process keeps beyond its connections.
const SPARE_FDS: u64 = 200;

fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("resident pages");
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// Bytes glibc's allocator has handed out and not had back.
fn heap_in_use() -> u64 {
    // SAFETY: mallinfo2 has no preconditions; it returns a plain struct.
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd) as u64
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Connects `n` clients one by one, each echoing one byte; says "ready"
/// and keeps them open until stdin closes.
fn client(addr: SocketAddr, n: usize) {
    limits::raise_fd_limit(n as u64 + SPARE_FDS).expect("raise the descriptor limit");
    let mut streams = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect #{i}: {e}"));
        s.write_all(b"x").expect("write");
        let mut byte = [0u8; 1];
        s.read_exact(&mut byte).expect("the echo");
        streams.push(s);
    }
    println!("ready");
    io::stdout().flush().expect("flush");
    let _ = io::stdin().read_to_end(&mut Vec::new());
}

/// Holds `n` idle connections; prints one table row.
fn server(n: usize) {
    limits::raise_fd_limit(n as u64 + SPARE_FDS).expect("raise the descriptor limit");
    let pool = Allocator::pooled();
    let server = ServerBootstrap::new()
        .mode(ReactorMode::Single)
        .trigger(Trigger::Edge)
        .allocator(pool)
        .child_handler(|| Pipeline::bytes(Echo))
        .bind("127.0.0.1:0")
        .expect("bind");
    let addr = server.local_addr();
    // Warm up: what the loop makes once.
    {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(b"x").expect("write");
        s.read_exact(&mut [0u8; 1]).expect("the echo");
    }
    wait_until(Duration::from_secs(5), "the warm-up to close", || {
        server.connections() == 0
    });
    let (rss_before, heap_before) = (rss(), heap_in_use());
    let mut child = Command::new(std::env::current_exe().expect("this executable"))
        .env(CLIENT_ROLE, format!("{addr},{n}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the clients");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the clients' report");
    assert_eq!(line.trim(), "ready", "the clients failed");
    wait_until(Duration::from_secs(10), "every connection", || {
        server.connections() == n
    });
    let (rss_after, heap_after) = (rss(), heap_in_use());
    let in_use = pool.metrics().bytes_in_use;
    let per = |before: u64, after: u64| after.saturating_sub(before) as f64 / n as f64;
    println!(
        "| {n:>6} | {:>7.0} | {:>7.0} | {:>9} | {:>5.1} → {:>5.1} MiB |",
        per(rss_before, rss_after),
        per(heap_before, heap_after),
        in_use,
        rss_before as f64 / f64::from(1 << 20),
        rss_after as f64 / f64::from(1 << 20),
    );
    drop(child.stdin.take());
    let _ = child.wait();
    wait_until(Duration::from_secs(20), "every connection to close", || {
        server.connections() == 0
    });
}

fn main() {
    if let Ok(spec) = std::env::var(CLIENT_ROLE) {
        let (addr, n) = spec.split_once(',').expect("addr,n");
        client(
            addr.parse().expect("an address"),
            n.parse().expect("a count"),
        );
        return;
    }
    if let Ok(n) = std::env::var(SERVER_ROLE) {
        server(n.parse().expect("a count"));
        return;
    }
    let (_, hard) = limits::fd_limits().expect("the descriptor limits");
    let counts: Vec<usize> = match std::env::var("WHARF_IDLE_COUNTS") {
        Ok(list) => list
            .split(',')
            .map(|n| n.trim().parse().expect("a count"))
            .collect(),
        Err(_) => vec![10_000, 100_000],
    };
    println!("Single reactor, echo, each connection after a 1-byte echo (release build):\n");
    println!(
        "| connections | RSS B/conn | malloc B/conn (with the slab's spare capacity) | pool bytes in use | server RSS |"
    );
    println!("|---|---|---|---|---|");
    for n in counts {
        if n as u64 + SPARE_FDS > hard {
            let fit = hard.saturating_sub(SPARE_FDS) / 1000 * 1000;
            println!("| {n} | (the descriptor limit is {hard}: measuring {fit} instead) | | | |");
            run_server(fit as usize);
        } else {
            run_server(n);
        }
    }
}

fn run_server(n: usize) {
    let status = Command::new(std::env::current_exe().expect("this executable"))
        .env(SERVER_ROLE, n.to_string())
        .status()
        .expect("run a server round");
    assert!(status.success(), "the round with {n} connections failed");
}
