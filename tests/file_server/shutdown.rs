//! Graceful shutdown as the example runs it (issue 9, point 7; issue 8,
//! point 7): the transport tells the handlers, so idle kept-alive
//! connections close at once instead of holding the shutdown until its
//! deadline, and the responses the deadline cuts are counted. In every
//! mode × trigger. (The signals and exit codes are in
//! tests/file_server_process.)

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::client::{Client, Closed, request};
use crate::common::{self, Config};
use crate::site::{Site, Spec, data};

/// A download of `/big.bin` whose reader stopped after the head.
fn stalled_download(addr: SocketAddr) -> Client {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(64 << 10).expect("SO_RCVBUF");
    socket.connect(&addr.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    let mut client = Client::from_stream(stream);
    client.send(&request("GET", "/big.bin", &[]));
    assert_eq!(client.response_head().expect("the head").status, 200);
    client
}

#[test]
fn a_shutdown_closes_idle_connections_at_once_and_counts_what_it_cuts() {
    let site = Site::new("shutdown");
    site.write("a.txt", b"hello\n");
    site.write("big.bin", &data(40, 32 << 20));
    let configs = Config::all().into_iter().filter(|c| c.pooled).collect();
    common::for_each_parallel(configs, |config| {
        let what = config.to_string();
        let running = Spec::new(&site.root).config(config).start();
        let mut idle = running.client();
        assert_eq!(idle.get("/a.txt").body, b"hello\n", "{what}");
        let _stalled = stalled_download(running.server.local_addr());
        running.wait_open(2);

        let timeout = Duration::from_secs(1);
        let crate::site::Running {
            mut server,
            settings,
            ..
        } = running;
        let started = Instant::now();
        settings.connections.begin_shutdown();
        let shutdown = std::thread::spawn(move || {
            let result = server.shutdown_gracefully(Duration::from_millis(200), timeout);
            (result, server.stats().shutdown_aborts)
        });
        // The idle connection closes at once, in order.
        idle.read_timeout(Duration::from_secs(5));
        assert_eq!(idle.expect_closed(), Closed::Eof, "{what}");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{what}: the idle connection closed after {:?}",
            started.elapsed()
        );
        let (result, cut) = shutdown.join().expect("the shutdown thread");
        result.expect("shut down");
        assert_eq!(cut, 1, "{what}: the stalled download");
        assert!(
            started.elapsed() < timeout + Duration::from_secs(1),
            "{what}"
        );
    });
}
