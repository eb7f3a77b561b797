//! Ctrl-C and `SIGTERM` (issue 9, point 7): the first starts a graceful
//! shutdown, a second exits at once; a shutdown whose deadline cut
//! responses exits non-zero and says how many; a clean one exits 0. In
//! every reactor mode × trigger: the shutdown runs through every loop.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::child::{ServerProcess, mode_args};
use crate::client::{Client, request};
use crate::common::{self, Config};
use crate::site::{Site, data};

fn configs() -> Vec<Config> {
    Config::all().into_iter().filter(|c| c.pooled).collect()
}

/// A client with a small receive buffer, so that a large response cannot
/// be handed to the kernel at once.
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

/// A download of `/big.bin` whose reader has stopped after the head.
fn stalled_download(addr: SocketAddr, what: &str) -> Client {
    let mut client = narrow_client(addr);
    client.send(&request("GET", "/big.bin", &[]));
    let head = client.response_head().expect("the head");
    assert_eq!(head.status, 200, "{what}");
    client
}

/// Waits until the server no longer accepts connections: its listeners
/// are closed, so the shutdown has begun.
fn wait_until_refused(addr: SocketAddr, what: &str) {
    common::wait_until(
        Duration::from_secs(5),
        &format!("{what}: the listener to close"),
        || TcpStream::connect(addr).is_err(),
    );
}

fn site() -> Site {
    let site = Site::new("signals");
    site.write("a.txt", b"hello\n");
    site.write("big.bin", &data(30, 32 << 20));
    site
}

pub fn a_clean_shutdown_exits_zero() {
    let site = site();
    common::for_each_parallel(configs(), |config| {
        let what = config.to_string();
        let mut server = ServerProcess::start(&site.root, &mode_args(config), None);
        // A kept-alive connection, idle when the signal comes.
        let mut idle = Client::connect(server.addr);
        assert_eq!(idle.get("/a.txt").body, b"hello\n", "{what}");
        let started = Instant::now();
        server.signal(libc::SIGTERM);
        let status = server
            .wait_exit(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{what}: still running 5 s after SIGTERM"));
        assert!(
            status.success(),
            "{what}: {status} after a clean shutdown; output {:#?}",
            server.drain_output()
        );
        assert!(started.elapsed() < Duration::from_secs(3), "{what}");
        idle.expect_closed();
    });
}

pub fn a_second_signal_exits_at_once() {
    let site = site();
    common::for_each_parallel(configs(), |config| {
        let what = config.to_string();
        let mut flags = mode_args(config);
        flags.extend(["--shutdown-timeout".to_string(), "30".to_string()]);
        let mut server = ServerProcess::start(&site.root, &flags, None);
        // The graceful shutdown would wait for this download up to 30 s.
        let _stalled = stalled_download(server.addr, &what);
        server.signal(libc::SIGINT);
        wait_until_refused(server.addr, &what);
        assert!(server.running(), "{what}: exited before the second signal");
        let started = Instant::now();
        server.signal(libc::SIGINT);
        let status = server.wait_exit(Duration::from_secs(3)).unwrap_or_else(|| {
            panic!(
                "{what}: still running 3 s after a second SIGINT; output {:#?}",
                server.drain_output()
            )
        });
        assert!(started.elapsed() < Duration::from_secs(2), "{what}");
        assert_eq!(status.code(), Some(130), "{what}: {status}, 128 + SIGINT");
        let output = server.drain_output().join("\n");
        assert!(output.contains("exiting now"), "{what}: {output}");
    });
}

pub fn a_shutdown_that_cuts_responses_exits_non_zero_and_says_how_many() {
    let site = site();
    common::for_each_parallel(configs(), |config| {
        let what = config.to_string();
        let mut flags = mode_args(config);
        flags.extend(["--shutdown-timeout".to_string(), "1".to_string()]);
        let mut server = ServerProcess::start(&site.root, &flags, None);
        let _cut = [
            stalled_download(server.addr, &what),
            stalled_download(server.addr, &what),
        ];
        // And one that is done, kept alive: closed, not cut.
        let mut idle = Client::connect(server.addr);
        assert_eq!(idle.get("/a.txt").body, b"hello\n", "{what}");
        server.signal(libc::SIGINT);
        let status = server.wait_exit(Duration::from_secs(5)).unwrap_or_else(|| {
            panic!("{what}: still running 5 s after SIGINT with a 1 s shutdown timeout")
        });
        let output = server.drain_output().join("\n");
        assert_eq!(status.code(), Some(1), "{what}: {status}; output {output}");
        assert!(output.contains("cut 2 "), "{what}: {output}");
    });
}
