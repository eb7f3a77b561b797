//! Unix-domain stream channels (issue 11, point 3): the echo suite over a
//! socket path in every mode but reuseport × trigger × allocator, clients
//! that connect on a path (blocking and from a loop), the reuseport mode
//! refused with an error naming it, and the stale socket file of a run
//! that crashed replaced only when nothing listens on it. The half-close
//! suite runs over Unix sockets in tests/half_close.rs.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc;
use std::time::Duration;

use common::transport::socket_path;
use common::{Config, Rng, buf_of, driver, pattern};
use wharf::buf::ByteBuf;
use wharf::transport::handlers::Echo;
use wharf::{
    Bootstrap, Context, EventLoopGroup, Handler, Pipeline, ReactorMode, ServerBootstrap,
    SocketOption, Trigger,
};

/// Every configuration but the reuseport mode.
fn unix_configs() -> Vec<Config> {
    Config::all()
        .into_iter()
        .filter(|c| !matches!(c.mode, ReactorMode::Reuseport { .. }))
        .collect()
}

#[test]
fn hundred_connections_echo_random_payloads_over_a_unix_socket() {
    common::for_each(unix_configs(), |config| {
        let path = socket_path();
        let server = config
            .server()
            .child_handler(|| Pipeline::bytes(Echo))
            .bind_unix(&path)
            .expect("bind_unix");
        assert_eq!(server.unix_path(), Some(path.as_path()));
        let mut rng = Rng::new(0x11);
        let payloads: Vec<Vec<u8>> = (0..100)
            .map(|i| {
                let len = if i % 10 == 0 {
                    rng.range(1, 1 << 20)
                } else {
                    rng.range(1, 64 << 10)
                };
                pattern(i, len)
            })
            .collect();
        driver::echo_all(
            driver::Target::Unix(path.clone()),
            payloads,
            1 << 20,
            3,
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{config}: {e}"));
        common::wait_for_no_connections(&server);
        drop(server);
        assert!(!path.exists(), "{config}: the socket file is removed");
    });
}

#[test]
fn the_reuseport_mode_and_option_are_refused_for_unix_sockets() {
    let path = socket_path();
    let error = ServerBootstrap::new()
        .mode(ReactorMode::Reuseport { reactors: 2 })
        .child_handler(|| Pipeline::bytes(Echo))
        .bind_unix(&path)
        .expect_err("reuseport over a Unix socket");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().starts_with("mode:"), "{error}");
    let error = ServerBootstrap::new()
        .option(SocketOption::ReusePort(true))
        .child_handler(|| Pipeline::bytes(Echo))
        .bind_unix(&path)
        .expect_err("SO_REUSEPORT over a Unix socket");
    assert!(error.to_string().contains("ReusePort"), "{error}");
    assert!(!path.exists(), "a refused bind creates no file");
}

#[test]
fn a_stale_socket_file_is_replaced_only_when_nothing_listens() {
    let path = socket_path();
    // A crashed run: its listener is gone, its file is not.
    drop(UnixListener::bind(&path).expect("std bind"));
    assert!(path.exists());
    let server = ServerBootstrap::new()
        .child_handler(|| Pipeline::bytes(Echo))
        .bind_unix(&path)
        .expect("the stale file is replaced");
    // A second server on the path of a live one is refused, and the live
    // one goes on serving.
    let error = ServerBootstrap::new()
        .child_handler(|| Pipeline::bytes(Echo))
        .bind_unix(&path)
        .expect_err("a live socket is kept");
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse, "{error}");
    let mut client = UnixStream::connect(&path).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    client.write_all(b"still here").expect("write");
    let mut reply = [0u8; 10];
    client.read_exact(&mut reply).expect("echo");
    assert_eq!(&reply, b"still here");
    drop(client);
    common::wait_for_no_connections(&server);
    drop(server);
    assert!(!path.exists(), "removed at shutdown");
    // A regular file at the path is never taken for a stale socket.
    std::fs::write(&path, b"data").expect("file");
    let error = ServerBootstrap::new()
        .child_handler(|| Pipeline::bytes(Echo))
        .bind_unix(&path)
        .expect_err("not a socket");
    assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists, "{error}");
    assert_eq!(std::fs::read(&path).expect("kept"), b"data");
    std::fs::remove_file(&path).expect("clean up");
}

/// Sends what it reads to a channel on the test's side.
struct Collect(mpsc::Sender<Vec<u8>>);

impl Handler for Collect {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
        let _ = self.0.send(msg.to_vec());
    }
}

/// Receives `len` bytes from `rx`.
fn collect(rx: &mpsc::Receiver<Vec<u8>>, len: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < len {
        got.extend(
            rx.recv_timeout(Duration::from_secs(10))
                .expect("echoed bytes"),
        );
    }
    got
}

#[test]
fn clients_connect_on_a_path_blocking_and_from_a_loop() {
    for trigger in [Trigger::Edge, Trigger::Level] {
        let path = socket_path();
        let server = ServerBootstrap::new()
            .trigger(trigger)
            .child_handler(|| Pipeline::bytes(Echo))
            .bind_unix(&path)
            .expect("bind_unix");
        let group = EventLoopGroup::new(1, trigger).expect("group");
        let (tx, rx) = mpsc::channel();
        let channel = Bootstrap::new(&group)
            .connect_unix(&path, Pipeline::bytes(Collect(tx)))
            .expect("connect_unix");
        assert_eq!(
            channel.peer_addr(),
            None,
            "a Unix-domain peer has no IP address"
        );
        let data = pattern(5, 300_000);
        channel.write_and_flush(buf_of(wharf::buf::Allocator::pooled(), &data));
        assert!(
            collect(&rx, data.len()) == data,
            "{trigger:?}: the echo differs"
        );
        // From a loop thread, without blocking it.
        let (tx2, rx2) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let (p, el) = (path.clone(), group.next());
        let on_loop = el.clone();
        let second = pattern(6, 100_000);
        let sent = second.clone();
        el.execute(move || {
            Bootstrap::on_loop(&on_loop).connect_unix_then(
                &p,
                Pipeline::bytes(Collect(tx2)),
                move |outcome| {
                    let ok = match outcome {
                        Ok(handle) => {
                            handle.write_and_flush(buf_of(wharf::buf::Allocator::pooled(), &sent));
                            true
                        }
                        Err(_) => false,
                    };
                    let _ = done_tx.send(ok);
                },
            );
        });
        assert_eq!(
            done_rx.recv_timeout(Duration::from_secs(10)),
            Ok(true),
            "{trigger:?}: connect_unix_then from the loop"
        );
        assert!(
            collect(&rx2, second.len()) == second,
            "{trigger:?}: the second echo differs"
        );
        // Refused: nothing at the path.
        let missing = socket_path();
        let error = Bootstrap::new(&group)
            .connect_unix(&missing, Pipeline::bytes(Echo))
            .expect_err("nothing listens there");
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound, "{error}");
        drop(channel);
        group
            .shutdown_gracefully(Duration::ZERO, Duration::from_secs(2))
            .expect("group shutdown");
        common::wait_for_no_connections(&server);
    }
}
