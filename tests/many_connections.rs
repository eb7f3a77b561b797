//! Ten thousand connections open at once on one single-reactor,
//! edge-triggered echo server: all are accepted (the server counts exactly
//! 10 000 at the peak), every one is served an echo, and the user-space
//! memory each costs is printed.
//!
//! A test binary of its own: it raises the process's descriptor limit. The
//! clients run in a child process (this binary again, in a client role):
//! the hard descriptor limit here is 20 000 and cannot be raised (no
//! `CAP_SYS_RESOURCE`), too few for both ends of 10 000 connections in one
//! process. The server's memory is then measured alone.

mod common;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, unbounded};

use common::Config;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use wharf::transport::handlers::Echo;
use wharf::transport::sys::limits;
use wharf::{Pipeline, ReactorMode, Trigger};

const CONNECTIONS: usize = 10_000;
/// Connects in flight at once: well under the listen backlog (4096 here).
const BATCH: usize = 1_000;
const MESSAGE: usize = 16;
/// Set in the child process: the server's address.
const CLIENT_ROLE: &str = "WHARF_MANY_CONNECTIONS_CLIENT";
/// Reports on the child's stdout start with this.
const TAG: &str = "many:";

/// Makes sure `wanted` descriptors can be open: the soft limit up to the
/// hard one, and the hard one too if need be (root may).
fn ensure_fd_limit(wanted: u64) {
    let soft = limits::raise_fd_limit(wanted).expect("raise the descriptor limit");
    if soft >= wanted {
        return;
    }
    let (_, hard) = limits::fd_limits().expect("the descriptor limits");
    let raised = libc::rlimit {
        rlim_cur: wanted as libc::rlim_t,
        rlim_max: wanted.max(hard) as libc::rlim_t,
    };
    // SAFETY: `raised` is a valid, initialised rlimit that outlives the call.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
    if rc != 0 {
        panic!(
            "this test needs {wanted} descriptors; the soft limit is {soft} (hard {hard}) and \
             raising the hard limit failed: {}",
            io::Error::last_os_error()
        );
    }
    let (soft, _) = limits::fd_limits().expect("the descriptor limits");
    assert!(
        soft >= wanted,
        "the descriptor limit is {soft} after raising it to {wanted}"
    );
}

/// Resident memory of the process, from /proc/self/statm.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("resident pages in statm");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page as u64
}

fn message(i: usize) -> [u8; MESSAGE] {
    let mut m = [0u8; MESSAGE];
    m[..8].copy_from_slice(&(i as u64).to_be_bytes());
    m[8..].copy_from_slice(&(!(i as u64)).to_be_bytes());
    m
}

struct Client {
    stream: TcpStream,
    received: Vec<u8>,
}

/// The child's side: opens the connections batch by batch when told, then
/// sends each its message and checks the echo, then waits to be told to
/// close. Reports on stdout, takes orders on stdin.
fn client_role(addr: std::net::SocketAddr) {
    let mut orders = io::stdin().lock().lines();
    let mut wait_for = |order: &str| {
        let line = orders
            .next()
            .unwrap_or_else(|| panic!("the parent went away before {order:?}"))
            .expect("read an order");
        assert_eq!(line, order, "an unexpected order");
    };
    let mut poll = Poll::new().expect("poll");
    let mut clients: Vec<Client> = Vec::with_capacity(CONNECTIONS);
    while clients.len() < CONNECTIONS {
        let end = (clients.len() + BATCH).min(CONNECTIONS);
        for i in clients.len()..end {
            let mut stream =
                TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect #{i}: {e}"));
            poll.registry()
                .register(&mut stream, Token(i), Interest::READABLE)
                .expect("register");
            clients.push(Client {
                stream,
                received: Vec::with_capacity(MESSAGE),
            });
        }
        println!("{TAG}batch {end}");
        wait_for("go");
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let msg = message(i);
        match client.stream.write(&msg) {
            Ok(MESSAGE) => {}
            other => panic!("connection #{i}: write: {other:?}"),
        }
    }
    let mut events = Events::with_capacity(1024);
    let mut served = 0;
    let mut scratch = [0u8; 64];
    let deadline = Instant::now() + Duration::from_secs(20);
    while served < CONNECTIONS {
        assert!(
            Instant::now() < deadline,
            "timed out: {served} of {CONNECTIONS} connections got their echo"
        );
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .expect("poll");
        for event in events.iter() {
            let i = event.token().0;
            let client = &mut clients[i];
            loop {
                match client.stream.read(&mut scratch) {
                    Ok(0) => panic!(
                        "connection #{i} closed after {} bytes",
                        client.received.len()
                    ),
                    Ok(n) => {
                        let done_before = client.received.len() == MESSAGE;
                        client.received.extend_from_slice(&scratch[..n]);
                        assert!(
                            client.received.len() <= MESSAGE,
                            "connection #{i}: more bytes than it sent"
                        );
                        if !done_before && client.received.len() == MESSAGE {
                            assert_eq!(client.received, message(i), "connection #{i}: echo");
                            served += 1;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => panic!("connection #{i}: read: {e}"),
                }
            }
        }
    }
    println!("{TAG}served {served}");
    wait_for("close");
    drop(clients);
    println!("{TAG}closed");
}

/// The parent's end of the child: its reports and its orders.
struct ClientProcess {
    child: Child,
    orders: ChildStdin,
    reports: Receiver<String>,
}

impl ClientProcess {
    fn start(addr: std::net::SocketAddr) -> ClientProcess {
        let mut child = Command::new(std::env::current_exe().expect("this test's executable"))
            .args([
                "--exact",
                "ten_thousand_connections_are_each_served",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CLIENT_ROLE, addr.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the client process");
        let orders = child.stdin.take().expect("the child's stdin");
        let stdout = child.stdout.take().expect("the child's stdout");
        let (tx, reports) = unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The harness's "test ... " can precede the first report.
                if let Some(at) = line.find(TAG) {
                    let _ = tx.send(line[at + TAG.len()..].to_string());
                }
            }
        });
        ClientProcess {
            child,
            orders,
            reports,
        }
    }

    /// The next report, within `limit`.
    fn report(&mut self, limit: Duration) -> String {
        match self.reports.recv_timeout(limit) {
            Ok(report) => report,
            Err(_) => {
                let status = self.child.try_wait();
                panic!(
                    "no report from the client process within {limit:?} (its status: {status:?})"
                );
            }
        }
    }

    fn order(&mut self, order: &str) {
        writeln!(self.orders, "{order}").expect("give the client process an order");
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

#[test]
fn ten_thousand_connections_are_each_served() {
    if let Ok(addr) = std::env::var(CLIENT_ROLE) {
        client_role(addr.parse().expect("the server's address"));
        return;
    }
    let started = Instant::now();
    // The server's side of every connection, and some to spare; the child
    // inherits the limit.
    ensure_fd_limit(CONNECTIONS as u64 + 1_000);
    let config = Config {
        mode: ReactorMode::Single,
        trigger: Trigger::Edge,
        pooled: true,
    };
    let server = config
        .server()
        .child_handler(|| Pipeline::bytes(Echo))
        .bind("127.0.0.1:0")
        .expect("bind");
    let rss_before = rss_bytes();
    let mut clients = ClientProcess::start(server.local_addr());

    // Batch by batch, letting the server's count catch up each time.
    let mut opened = 0;
    while opened < CONNECTIONS {
        let report = clients.report(Duration::from_secs(10));
        opened = report
            .strip_prefix("batch ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("an unexpected report: {report:?}"));
        common::wait_until(
            Duration::from_secs(10),
            "the server to accept a batch",
            || server.connections() >= opened,
        );
        clients.order("go");
    }
    let connected = started.elapsed();
    assert_eq!(server.connections(), CONNECTIONS, "connections at the peak");

    let report = clients.report(Duration::from_secs(25));
    assert_eq!(
        report,
        format!("served {CONNECTIONS}"),
        "the client process's result"
    );
    assert_eq!(
        server.connections(),
        CONNECTIONS,
        "connections after the echoes"
    );
    let stats = server.stats();
    assert_eq!(stats.accepts, CONNECTIONS as u64, "accepts");
    assert_eq!(
        stats.bytes_read,
        (CONNECTIONS * MESSAGE) as u64,
        "bytes read"
    );
    let rss_after = rss_bytes();
    let per_connection = rss_after.saturating_sub(rss_before) / CONNECTIONS as u64;
    println!(
        "user-space memory per connection: {per_connection} bytes (server RSS {rss_before} -> \
         {rss_after} bytes with {CONNECTIONS} connections open; the clients run in another \
         process and are not counted)"
    );
    eprintln!(
        "user-space memory per connection: {per_connection} bytes; connected after {connected:?}, \
         all served after {:?}",
        started.elapsed()
    );

    clients.order("close");
    let report = clients.report(Duration::from_secs(10));
    assert_eq!(report, "closed", "the client process's result");
    common::wait_until(
        Duration::from_secs(15),
        "the server to close every connection",
        || server.connections() == 0,
    );
    drop(clients);
    drop(server);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(30), "the test took {took:?}");
}
