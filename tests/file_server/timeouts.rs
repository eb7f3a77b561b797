//! Slow and idle clients: a head trickled in is answered 408 and closed
//! (slowloris), an idle kept-alive connection is closed quietly, and
//! neither timeout touches a client that is being served.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::client::{Client, Closed, is_reset, request};
use crate::site::{Site, Spec, data, descriptors_on};

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_millis(500);

/// Sends `head` one byte every 200 ms (never completing it) until the
/// server answers; returns the response, how long it took from the first
/// byte, and the client, to check the close.
fn trickle(mut client: Client, head: &[u8]) -> (crate::client::Response, Duration, Client) {
    client.read_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let mut answered = false;
    for &byte in head.iter().cycle().take(75) {
        if client.stream().write_all(&[byte]).is_err() {
            // Closed: whatever it answered is there to read.
            answered = true;
            break;
        }
        let mut probe = [0u8; 1];
        match client.stream().peek(&mut probe) {
            Ok(_) => {
                answered = true;
                break;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if is_reset(&e) => break,
            Err(e) => panic!("slow client: {e}"),
        }
    }
    assert!(
        answered,
        "the trickled head was not answered within {:?}",
        started.elapsed()
    );
    client.read_timeout(Duration::from_secs(5));
    let response = client.response(false).expect("the 408");
    (response, started.elapsed(), client)
}

#[test]
fn slowloris_gets_408_while_others_are_served() {
    let site = Site::new("slowloris");
    let a = data(20, 1 << 20);
    site.write("a.bin", &a);
    let running = Spec::new(&site.root)
        .timeouts(HEADER_TIMEOUT, KEEPALIVE_TIMEOUT)
        .start();
    let addr = running.server.local_addr();
    std::thread::scope(|s| {
        // A head that never ends, from the start of the connection.
        let fresh = s.spawn(|| {
            let head = b"GET /a.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa";
            trickle(Client::connect(addr), head)
        });
        // A second request trickled after a first one was served.
        let kept = s.spawn(|| {
            let mut client = Client::connect(addr);
            assert_eq!(client.get("/a.bin").status, 200);
            trickle(
                client,
                b"GET /a.bin HTTP/1.1\r\nX-Slow: bbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            )
        });
        // Meanwhile, normal clients are served, new and kept-alive.
        let mut client = Client::connect(addr);
        for _ in 0..3 {
            assert!(client.get("/a.bin").body == a);
            assert!(Client::connect(addr).get("/a.bin").body == a);
        }
        for (what, handle) in [("fresh", fresh), ("kept-alive", kept)] {
            let (response, took, mut client) = handle.join().expect("slow client");
            assert_eq!(response.status, 408, "{what}: {response:?}");
            assert!(response.connection_has("close"), "{what}");
            client.expect_closed();
            assert!(
                took >= HEADER_TIMEOUT - Duration::from_millis(250)
                    && took < Duration::from_secs(3),
                "{what}: answered after {took:?}, the header timeout is {HEADER_TIMEOUT:?}"
            );
        }
        assert!(Client::connect(addr).get("/a.bin").body == a);
    });
}

#[test]
fn an_idle_kept_alive_connection_is_closed_without_a_response() {
    let site = Site::new("idle");
    site.write("a.txt", b"abc");
    let running = Spec::new(&site.root)
        .timeouts(HEADER_TIMEOUT, KEEPALIVE_TIMEOUT)
        .start();
    let mut client = running.client();
    client.read_timeout(Duration::from_secs(5));
    assert_eq!(client.get("/a.txt").body, b"abc");
    let started = Instant::now();
    assert_eq!(client.expect_closed(), Closed::Eof);
    let took = started.elapsed();
    assert!(
        took >= KEEPALIVE_TIMEOUT - Duration::from_millis(100) && took < Duration::from_secs(3),
        "closed after {took:?}, the keep-alive timeout is {KEEPALIVE_TIMEOUT:?}"
    );
    // An idle connection that never sent anything is a slow head: 408.
    let mut silent = running.client();
    let started = Instant::now();
    let response = silent.response(false).expect("the 408");
    assert_eq!(response.status, 408);
    silent.expect_closed();
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// The keep-alive time counts from the last response: a connection that
/// goes on sending requests past its first deadline (where the lazily
/// re-armed timer fires, finds the deadline moved and waits again) is
/// kept, and closed a keep-alive timeout after its last response.
#[test]
fn the_keepalive_timeout_counts_from_the_last_response() {
    let site = Site::new("idle-late");
    site.write("a.txt", b"abc");
    let running = Spec::new(&site.root)
        .timeouts(HEADER_TIMEOUT, KEEPALIVE_TIMEOUT)
        .start();
    let mut client = running.client();
    client.read_timeout(Duration::from_secs(5));
    let first = Instant::now();
    // Requests every 150 ms for three keep-alive periods: the time between
    // them is the subject here, not a wait for something.
    while first.elapsed() < KEEPALIVE_TIMEOUT * 3 {
        assert_eq!(
            client.get("/a.txt").body,
            b"abc",
            "after {:?}",
            first.elapsed()
        );
        std::thread::sleep(Duration::from_millis(150));
    }
    assert_eq!(client.get("/a.txt").body, b"abc");
    let last = Instant::now();
    assert_eq!(client.expect_closed(), Closed::Eof);
    let took = last.elapsed();
    assert!(
        took >= KEEPALIVE_TIMEOUT - Duration::from_millis(100) && took < Duration::from_secs(3),
        "closed {took:?} after the last response, the keep-alive timeout is {KEEPALIVE_TIMEOUT:?}"
    );
}

/// A keep-alive timeout too long for the clock to add (`Duration::MAX`)
/// never fires, and never panics the loop: the connection serves on.
#[test]
fn a_keepalive_timeout_beyond_the_clock_is_never() {
    let site = Site::new("idle-max");
    site.write("a.txt", b"abc");
    let running = Spec::new(&site.root)
        .timeouts(HEADER_TIMEOUT, Duration::MAX)
        .start();
    let mut client = running.client();
    client.read_timeout(Duration::from_secs(5));
    for _ in 0..3 {
        assert_eq!(client.get("/a.txt").body, b"abc");
    }
}

/// A connection with a small receive buffer, so that the server cannot
/// hand a large response to the kernel at once.
fn narrow_client(addr: SocketAddr) -> Client {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(64 << 10).expect("SO_RCVBUF");
    socket.connect(&addr.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    Client::from_stream(stream)
}

/// The keep-alive timeout is for time between requests: a download that
/// takes longer than it must not cost the client its connection.
#[test]
fn a_download_longer_than_the_keepalive_timeout_keeps_the_connection() {
    let site = Site::new("long-download");
    let big = data(21, 16 << 20);
    site.write("big.bin", &big);
    let keepalive = Duration::from_millis(300);
    let running = Spec::new(&site.root)
        .timeouts(HEADER_TIMEOUT, keepalive)
        .start();
    let mut client = narrow_client(running.server.local_addr());
    client.send(&request("GET", "/big.bin", &[]));
    let head = client.response_head().expect("the head");
    assert_eq!(head.status, 200);
    // The first 6 MiB at 8 MiB/s: 0.75 s, while the server still has
    // more to send than the socket buffers hold. Then the rest at once,
    // so that the next request follows the end of the response closely.
    let started = Instant::now();
    let paced = 6 << 20;
    let mut got = Vec::with_capacity(big.len());
    let mut buf = vec![0u8; 64 << 10];
    while got.len() < big.len() {
        let want = buf.len().min(big.len() - got.len());
        let n = match client.read_some(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => panic!("after {} bytes: {e}", got.len()),
        };
        got.extend_from_slice(&buf[..n]);
        if got.len() < paced {
            let due = Duration::from_secs_f64(got.len() as f64 / f64::from(8u32 << 20));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    assert!(
        got == big,
        "the slow download: {} bytes, first difference at {:?}",
        got.len(),
        crate::client::first_difference(&got, &big)
    );
    assert!(started.elapsed() > keepalive * 2);
    // Straight away, the next request on the same connection.
    client.send(&request("GET", "/big.bin", &[("Range", "bytes=0-9")]));
    let response = client.response(false).unwrap_or_else(|e| {
        panic!(
            "the server closed a kept-alive connection right after a {:?} download \
             (keep-alive timeout {keepalive:?}): {e}",
            started.elapsed()
        )
    });
    assert_eq!(response.status, 206);
}

/// Issue 9, point 4: a client that asks for a large file on a kept-alive
/// connection and stops reading must not hold the connection and the open
/// file for ever. No write progress for the close timeout resets the
/// response, kept alive or not (with `Connection: close` the transport's
/// close timeout always did). In every mode × trigger.
#[test]
fn a_kept_alive_response_whose_reader_stops_is_reset() {
    const CLOSE: Duration = Duration::from_millis(500);
    let site = Site::new("stalled-reader");
    let big = data(22, 16 << 20);
    let configs = crate::common::Config::all()
        .into_iter()
        .filter(|c| c.pooled)
        .collect();
    crate::common::for_each_parallel(configs, |config| {
        let what = config.to_string();
        // A file of its own, to count the descriptors open on it.
        let name = format!("big-{}.bin", what.replace('/', "-"));
        let path = site.write(&name, &big);
        let running = Spec::new(&site.root)
            .config(config)
            .timeouts(HEADER_TIMEOUT, Duration::from_millis(200))
            .close_timeout(CLOSE)
            // The descriptor counted is the response's: none cached.
            .open_file_cache(0)
            .start();
        let mut client = narrow_client(running.server.local_addr());
        client.send(&request("GET", &format!("/{name}"), &[]));
        let head = client.response_head().expect("the head");
        assert_eq!(head.status, 200, "{what}");
        assert!(!head.connection_has("close"), "{what}: kept alive");
        let mut first = vec![0u8; 64 << 10];
        let n = client.read_some(&mut first).expect("the first bytes");
        // Then the client stops reading.
        let stalled = Instant::now();
        crate::common::wait_until(
            CLOSE * 2 + Duration::from_secs(3),
            &format!("{what}: the server to give up the stalled response"),
            || running.open() == 0,
        );
        let took = stalled.elapsed();
        assert!(
            took >= CLOSE - Duration::from_millis(100),
            "{what}: reset after {took:?}, the close timeout is {CLOSE:?}"
        );
        assert_eq!(descriptors_on(&path), 0, "{what}: the file is still open");
        // What was in flight arrives, then the reset: a cut response never
        // looks complete.
        let (rest, end) = client.read_until_closed();
        assert!(n + rest.len() < big.len(), "{what}: the whole file came");
        let end = end.expect_err("an orderly end after a cut response");
        assert!(is_reset(&end), "{what}: {end}");
    });
}

/// The other side of the rule above: a slow reader that takes something
/// within every close timeout is not cut off, however long it takes.
/// Progress is the server writing more to its socket, which takes room in
/// the socket's send buffer: the buffer is kept small here, so that a
/// reader at this pace frees room within every close timeout.
#[test]
fn a_slow_kept_alive_reader_that_makes_progress_is_not_reset() {
    const CLOSE: Duration = Duration::from_secs(1);
    let site = Site::new("slow-reader");
    let big = data(23, 16 << 20);
    site.write("big.bin", &big);
    let running = Spec::new(&site.root)
        .timeouts(HEADER_TIMEOUT, Duration::from_millis(200))
        .close_timeout(CLOSE)
        .send_buffer(64 << 10)
        .start();
    let mut client = narrow_client(running.server.local_addr());
    client.send(&request("GET", "/big.bin", &[]));
    assert_eq!(client.response_head().expect("the head").status, 200);
    // 64 KiB (half the receive buffer, so that the window opens) every
    // 100 ms for twice the close timeout, then the rest at once.
    let mut got = Vec::with_capacity(big.len());
    let mut buf = vec![0u8; 64 << 10];
    let paced_until = Instant::now() + 2 * CLOSE;
    while got.len() < big.len() {
        let want = if Instant::now() < paced_until {
            std::thread::sleep(Duration::from_millis(100));
            64 << 10
        } else {
            buf.len()
        };
        let want = want.min(big.len() - got.len());
        match client.read_some(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("after {} bytes: {e}", got.len()),
        }
    }
    assert!(got == big, "the slow download: {} bytes", got.len());
    assert_eq!(
        client
            .call("GET", "/big.bin", &[("Range", "bytes=0-9")])
            .status,
        206
    );
}
