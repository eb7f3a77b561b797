//! Memory after a crowd leaves (issue 9, point 8): the file server's
//! resident memory before, with and after 10 000 kept-alive connections,
//! over three rounds, and what holds it (the buffer pool's mapped chunks,
//! glibc's heap). The server runs in this process, alone; the clients run
//! in a child process (this binary again, in a client role), since the
//! hard descriptor limit here (20 000) is too low for both ends of 10 000
//! connections in one process.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, unbounded};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use wharf::transport::sys::limits;

use crate::common::{self, Config};
use crate::site::{Site, Spec};

const CONNECTIONS: usize = 10_000;
/// Connects in flight at once: well under the listen backlog.
const BATCH: usize = 1_000;
/// Set in the child: the server's address; be the clients.
const CLIENTS: &str = "WHARF_FILE_SERVER_CLIENTS";
/// Reports on the child's stdout start with this.
const TAG: &str = "clients:";
/// What each client asks for.
const REQUEST: &[u8] = b"GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
/// The size of `/a.txt`.
const FILE: usize = 1024;
/// How far above its start-up RSS the server may stay once idle again:
/// what the transport keeps for a crowd it has seen (its connection slab
/// and timer tables keep their capacity, about 7 MiB for 10 000
/// connections) and a few MiB more.
const SLACK: u64 = 12 << 20;

/// Resident memory of this process, in bytes.
pub fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("resident pages");
    pages * 4096
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// What glibc's allocator holds: (bytes in its arenas, of which in use,
/// bytes in its own mappings).
fn glibc_heap() -> (u64, u64, u64) {
    // SAFETY: mallinfo2 has no preconditions; it returns a plain struct.
    let info = unsafe { libc::mallinfo2() };
    (info.arena as u64, info.uordblks as u64, info.hblkhd as u64)
}

/// One line on the memory of this process.
fn snapshot(what: &str) -> String {
    let pool = wharf::buf::Allocator::pooled().metrics();
    let (arena, used, mapped) = glibc_heap();
    format!(
        "{what:<28} RSS {:>10} | pool: {} mapped, {} in use | glibc: {} in arenas ({} in use), {} mmapped",
        mib(rss()),
        mib(pool.bytes_mapped),
        mib(pool.bytes_in_use),
        mib(arena),
        mib(used),
        mib(mapped)
    )
}

/// In the child: the clients. `None` in the parent.
pub fn clients_if_child() -> Option<ExitCode> {
    let addr: SocketAddr = std::env::var(CLIENTS).ok()?.parse().expect("an address");
    client_role(addr);
    Some(ExitCode::SUCCESS)
}

/// Opens the connections batch by batch, each sending the first half of
/// its request (so the server holds a partial head for each); when told,
/// sends the rest and reads the responses; when told, closes them; again
/// and again. Reports on stdout, takes orders on stdin.
fn client_role(addr: SocketAddr) {
    let (first, rest) = REQUEST.split_at(REQUEST.len() - 2);
    let mut orders = io::stdin().lock().lines();
    let mut expect = |order: &str| matches!(orders.next(), Some(Ok(o)) if o == order);
    while expect("round") {
        let mut poll = Poll::new().expect("poll");
        let mut events = Events::with_capacity(1024);
        let mut streams: Vec<TcpStream> = Vec::with_capacity(CONNECTIONS);
        let mut sent = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        // Connected, with the first half of the request sent.
        while sent < CONNECTIONS {
            assert!(
                Instant::now() < deadline,
                "{sent} of {CONNECTIONS} connected"
            );
            if streams.len() < CONNECTIONS && streams.len() - sent < BATCH {
                let i = streams.len();
                let mut stream = TcpStream::connect(addr).expect("connect");
                poll.registry()
                    .register(&mut stream, Token(i), Interest::WRITABLE)
                    .expect("register");
                streams.push(stream);
                continue;
            }
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .expect("poll");
            for event in events.iter() {
                let i = event.token().0;
                let stream = &mut streams[i];
                if stream.write(first).ok() == Some(first.len()) {
                    sent += 1;
                    poll.registry()
                        .reregister(stream, Token(i), Interest::READABLE)
                        .expect("reregister");
                }
            }
        }
        println!("{TAG}connected");
        if !expect("finish") {
            return;
        }
        for stream in &mut streams {
            assert_eq!(
                stream.write(rest).ok(),
                Some(rest.len()),
                "the rest of a request"
            );
        }
        let mut got = vec![0usize; CONNECTIONS];
        let mut served = 0;
        let mut scratch = vec![0u8; 4096];
        while served < CONNECTIONS {
            assert!(
                Instant::now() < deadline,
                "{served} of {CONNECTIONS} served"
            );
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .expect("poll");
            for event in events.iter() {
                let i = event.token().0;
                loop {
                    match streams[i].read(&mut scratch) {
                        Ok(0) => panic!("connection {i} closed"),
                        Ok(n) => {
                            got[i] += n;
                            if got[i] > FILE && scratch[..n].ends_with(&[b'x'; 16]) {
                                served += 1;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("connection {i}: {e}"),
                    }
                }
            }
        }
        println!("{TAG}served");
        if !expect("close") {
            return;
        }
        drop(streams);
        println!("{TAG}closed");
    }
}

/// The parent's end of the child.
struct ClientProcess {
    child: Child,
    orders: ChildStdin,
    reports: Receiver<String>,
}

impl ClientProcess {
    fn start(addr: SocketAddr) -> ClientProcess {
        let mut child = Command::new(std::env::current_exe().expect("this test's executable"))
            .env(CLIENTS, addr.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the client process");
        let orders = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, reports) = unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(report) = line.strip_prefix(TAG) {
                    let _ = tx.send(report.to_string());
                }
            }
        });
        ClientProcess {
            child,
            orders,
            reports,
        }
    }

    fn order(&mut self, order: &str) {
        writeln!(self.orders, "{order}").expect("an order");
    }

    fn expect(&mut self, report: &str, limit: Duration) {
        match self.reports.recv_timeout(limit) {
            Ok(got) => assert_eq!(got, report, "the client process's report"),
            Err(_) => panic!(
                "no {report:?} from the client process within {limit:?} (status {:?})",
                self.child.try_wait()
            ),
        }
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

/// Set to measure every reactor mode × trigger, not only the single
/// reactor (by hand: it takes a few minutes).
const EVERY_MODE: &str = "WHARF_MEMORY_EVERY_MODE";

pub fn memory_returns_after_ten_thousand_connections_leave() {
    let wanted = CONNECTIONS as u64 + 1_000;
    let soft = limits::raise_fd_limit(wanted).expect("raise the descriptor limit");
    assert!(
        soft >= wanted,
        "this test needs {wanted} descriptors, the limit is {soft}"
    );
    let site = Site::new("memory");
    let mut body = vec![b'x'; FILE];
    body[0] = b'<';
    site.write("a.txt", &body);
    let configs: Vec<Config> = if std::env::var_os(EVERY_MODE).is_some() {
        Config::all().into_iter().filter(|c| c.pooled).collect()
    } else {
        vec![Config::all()[0]]
    };
    for config in configs {
        println!("{config}:");
        rounds(&site, config);
    }
}

/// Three rounds of 10 000 connections on a server in `config`.
fn rounds(site: &Site, config: Config) {
    let running = Spec::new(&site.root)
        .config(config)
        .max_connections(2 * CONNECTIONS)
        .start();
    let addr = running.server.local_addr();
    // Warm up: one connection, so that the loop's lazy state exists.
    let mut warm = crate::client::Client::connect(addr);
    assert_eq!(warm.get("/a.txt").status, 200);
    drop(warm);
    common::wait_for_no_connections(&running.server);
    let start = rss();
    println!("{}", snapshot("at start"));
    let mut clients = ClientProcess::start(addr);
    for round in 1..=3 {
        clients.order("round");
        clients.expect("connected", Duration::from_secs(60));
        common::wait_until(Duration::from_secs(20), "every connection", || {
            running.server.connections() == CONNECTIONS
        });
        println!(
            "{}",
            snapshot(&format!("round {round}: {CONNECTIONS} mid-head"))
        );
        clients.order("finish");
        clients.expect("served", Duration::from_secs(60));
        println!(
            "{}",
            snapshot(&format!("round {round}: {CONNECTIONS} served"))
        );
        clients.order("close");
        clients.expect("closed", Duration::from_secs(20));
        common::wait_until(Duration::from_secs(20), "the connections to close", || {
            running.server.connections() == 0
        });
        println!("{}", snapshot(&format!("round {round}: all closed")));
        // Within seconds, back to within a few MiB of the start.
        let left = Instant::now();
        let mut back = None;
        while left.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(500));
            if back.is_none() && rss() <= start + SLACK {
                back = Some(left.elapsed());
                println!(
                    "{}",
                    snapshot(&format!("round {round}: {:.1?} after", left.elapsed()))
                );
            }
        }
        println!(
            "{}",
            snapshot(&format!("round {round}: {:.0?} after", left.elapsed()))
        );
        assert!(
            back.is_some(),
            "round {round}: RSS {} five seconds after the connections closed, {} at start",
            mib(rss()),
            mib(start)
        );
    }
    // What glibc still held, for the record.
    // SAFETY: malloc_trim has no preconditions.
    unsafe { libc::malloc_trim(0) };
    println!("{}", snapshot("after malloc_trim(0)"));
}
