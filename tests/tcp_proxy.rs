//! The splice relay through `TcpProxy` (issue 11, point 1), against
//! upstreams on plain threads and std sockets: bytes both ways at once and
//! byte-exact from 0 B to 256 MiB, half-closes in both orders, upstreams
//! that refuse or never answer, resets passed on both ways, backpressure
//! both ways, 1 000 proxied connections at once, the splice and copy paths
//! each forced, pipes running out, descriptors running out (copying
//! instead), and an upstream outage logged once.
//!
//! Every mode × trigger, with the pooled allocator (the relay reads into
//! pooled buffers below the splice threshold; the allocator itself is
//! covered elsewhere). The 256 MiB exchange runs in three configurations,
//! not ten: it is the same code path as the 16 MiB one, and takes seconds.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::upstream::{
    Upstream, count_then_answer, exchange, greet_then_count, read_to_the_end, run_exchange,
};
use common::{Config, MODES, Rng, connect, driver, pattern};
use wharf::transport::handlers::{Echo, TcpProxy};
use wharf::{Pipeline, ReactorMode, Relay, RelayConfig, Server, SpliceMode, Trigger};

/// Every mode × trigger, pooled.
fn configs() -> Vec<Config> {
    Config::all().into_iter().filter(|c| c.pooled).collect()
}

/// A proxy in `config` to `upstream`, relaying with `relay`.
fn proxy(config: Config, upstream: std::net::SocketAddr, relay: RelayConfig) -> (Server, TcpProxy) {
    let proxy = TcpProxy::new(upstream, Relay::new(relay).expect("relay config"))
        .connect_timeout(Duration::from_millis(500));
    let server = proxy
        .serve(config.server())
        .bind("127.0.0.1:0")
        .expect("bind the proxy");
    (server, proxy)
}

/// Runs one exchange through `server` and checks both ends.
fn exchange_through(server: &Server, upstream: &Upstream, seed: u64, fwd: u64, back: u64) {
    let conn = connect(server.local_addr());
    run_exchange(conn, seed, fwd, back)
        .unwrap_or_else(|e| panic!("client, {fwd} B out and {back} B back: {e}"));
    let seen = upstream.next_seen();
    assert_eq!(seen.received, Ok(fwd), "upstream, {fwd} B in");
    assert_eq!(seen.sent, Ok(()), "upstream, {back} B out");
}

#[test]
fn bytes_flow_both_ways_at_once_byte_exact_from_0_b_to_16_mib() {
    const SIZES: [(u64, u64); 7] = [
        (0, 0),
        (1, 0),
        (0, 1),
        (4095, 4097),
        (65_537, 1 << 20),
        ((1 << 20) + 7, (3 << 20) + 1),
        (16 << 20, 16 << 20),
    ];
    common::for_each(configs(), |config| {
        let upstream = Upstream::start(exchange);
        let (server, proxy) = proxy(config, upstream.addr, RelayConfig::default());
        std::thread::scope(|s| {
            for (i, (fwd, back)) in SIZES.into_iter().enumerate() {
                let server = &server;
                s.spawn(move || {
                    let conn = connect(server.local_addr());
                    run_exchange(conn, i as u64, fwd, back).unwrap_or_else(|e| {
                        panic!("{config}: client, {fwd} B out and {back} B back: {e}")
                    });
                });
            }
        });
        for _ in SIZES {
            let seen = upstream.next_seen();
            assert!(
                seen.received.is_ok(),
                "{config}: upstream: {:?}",
                seen.received
            );
            assert_eq!(seen.sent, Ok(()), "{config}: upstream");
        }
        common::wait_for_no_connections(&server);
        let stats = proxy.stats();
        assert_eq!(stats.connections, SIZES.len() as u64, "{config}");
        assert_eq!(stats.relay.links, SIZES.len() as u64, "{config}");
        assert!(
            stats.relay.spliced_bytes > 0,
            "{config}: bulk data spliced: {stats:?}"
        );
        assert!(
            stats.relay.copied_bytes > 0,
            "{config}: small reads copied: {stats:?}"
        );
    });
}

#[test]
fn a_quarter_gib_each_way_at_once() {
    let chosen = [
        (ReactorMode::Single, Trigger::Edge),
        (MODES[3], Trigger::Level),
        (MODES[4], Trigger::Edge),
    ];
    let configs = configs()
        .into_iter()
        .filter(|c| chosen.contains(&(c.mode, c.trigger)))
        .collect();
    common::for_each(configs, |config| {
        let upstream = Upstream::start(exchange);
        let (server, _proxy) = proxy(config, upstream.addr, RelayConfig::default());
        exchange_through(&server, &upstream, 256, 256 << 20, 256 << 20);
        common::wait_for_no_connections(&server);
    });
}

#[test]
fn the_splice_path_and_the_copy_path_each_forced() {
    for (mode, spliced) in [(SpliceMode::Always, true), (SpliceMode::Never, false)] {
        let config = configs()[0];
        let upstream = Upstream::start(exchange);
        let relay = RelayConfig {
            splice: mode,
            ..RelayConfig::default()
        };
        let (server, proxy) = proxy(config, upstream.addr, relay);
        exchange_through(&server, &upstream, 7, 32 << 20, (32 << 20) + 3);
        exchange_through(&server, &upstream, 8, 5, 3);
        common::wait_for_no_connections(&server);
        let stats = proxy.stats().relay;
        if spliced {
            assert_eq!(stats.copied_bytes, 0, "{mode:?}: {stats:?}");
            assert_eq!(
                stats.spliced_bytes,
                (64 << 20) + 3 + 24 + 5 + 3 + 24,
                "{mode:?}: {stats:?}"
            );
        } else {
            assert_eq!(stats.spliced_bytes, 0, "{mode:?}: {stats:?}");
            assert_eq!(
                stats.copied_bytes,
                (64 << 20) + 3 + 24 + 5 + 3 + 24,
                "{mode:?}: {stats:?}"
            );
        }
    }
}

#[test]
fn running_out_of_pipes_copies_instead_and_fails_nothing() {
    let config = configs()[0];
    let upstream = Upstream::start(exchange);
    let relay = RelayConfig {
        splice: SpliceMode::Always,
        max_pipes: 1,
        ..RelayConfig::default()
    };
    let (server, proxy) = proxy(config, upstream.addr, relay);
    // A client that does not read yet: once its socket is full, the one
    // pipe waits in its queue, holding bytes.
    let mut stalled = connect(server.local_addr());
    stalled
        .write_all(&common::upstream::header(1, 0, 32 << 20))
        .expect("header");
    stalled.shutdown(Shutdown::Write).expect("half-close");
    // Other connections still get through, by copying.
    let mut n = 0;
    common::wait_until(Duration::from_secs(30), "a lease refused", || {
        n += 1;
        run_exchange(connect(server.local_addr()), 100 + n, 1 << 20, 1 << 20)
            .unwrap_or_else(|e| panic!("connection {n}: {e}"));
        proxy.stats().relay.pipe_shortages > 0
    });
    let (_, back) = common::upstream::streams(1, 0, 32 << 20);
    assert_eq!(
        back.check_reader(&mut stalled),
        Ok(32 << 20),
        "the stalled one"
    );
    for _ in 0..=n {
        let seen = upstream.next_seen();
        assert!(seen.received.is_ok() && seen.sent.is_ok(), "{seen:?}");
    }
    common::wait_for_no_connections(&server);
    let stats = proxy.stats().relay;
    assert!(
        stats.spliced_bytes > 0 && stats.copied_bytes > 0,
        "{stats:?}"
    );
}

/// Set in the child process of the test below: it runs the test's body.
const OUT_OF_DESCRIPTORS_CHILD: &str = "WHARF_TEST_PROXY_OUT_OF_DESCRIPTORS";

#[test]
fn out_of_descriptors_the_relay_copies_and_fails_nothing() {
    // The body lowers the descriptor limit and fills the table: every other
    // test of this binary would fail meanwhile, so it runs alone in a child
    // process (this executable again, this test only).
    if std::env::var_os(OUT_OF_DESCRIPTORS_CHILD).is_some() {
        return out_of_descriptors_in_this_process();
    }
    let name = "out_of_descriptors_the_relay_copies_and_fails_nothing";
    let out = std::process::Command::new(std::env::current_exe().expect("this test's executable"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(OUT_OF_DESCRIPTORS_CHILD, "1")
        .output()
        .expect("run the child");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("relayed out of descriptors"),
        "the child: {}\n{stdout}\n{stderr}",
        out.status
    );
}

/// A relayed connection that moves bulk data (so it would splice) while
/// the process has no descriptor left for a pipe: it copies instead, every
/// byte arrives, and once descriptors are free again it splices.
fn out_of_descriptors_in_this_process() {
    use wharf::transport::sys::limits;
    let config = configs()[0];
    let echo = wharf::ServerBootstrap::new()
        .child_handler(|| Pipeline::bytes(Echo))
        .bind("127.0.0.1:0")
        .expect("echo upstream");
    // Auto: the first reads copy, so no pipe exists before the table is
    // full, and the bulk reads after it ask for one.
    let (server, proxy) = proxy(config, echo.local_addr(), RelayConfig::default());
    let mut conn = connect(server.local_addr());
    conn.write_all(b"hello").expect("send");
    assert_eq!(common::read_exact_n(&mut conn, 5), b"hello", "linked");

    let (soft, _) = limits::fd_limits().expect("the descriptor limits");
    let limit = limits::open_descriptors().expect("open descriptors") as u64 + 64;
    limits::set_fd_soft_limit(limit).expect("lower the descriptor limit");
    let mut dummies = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => dummies.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(e) => panic!("opening /dev/null: {e}"),
        }
        assert!(dummies.len() < limit as usize, "the limit is not enforced");
    }
    let echo_through = |conn: &TcpStream, seed: u64, len: usize| {
        let data = pattern(seed, len);
        std::thread::scope(|s| {
            let sender = s.spawn(|| {
                let mut writer = conn;
                writer.write_all(&data)
            });
            let mut back = vec![0u8; len];
            let mut reader = conn;
            reader
                .read_exact(&mut back)
                .unwrap_or_else(|e| panic!("the echo of {len} B: {e}"));
            sender.join().expect("sender").expect("send");
            assert!(back == data, "byte-exact echo");
        });
    };
    echo_through(&conn, 1, 8 << 20);
    let starved = proxy.stats().relay;
    drop(dummies);
    limits::set_fd_soft_limit(soft).expect("restore the descriptor limit");
    assert!(
        starved.pipe_shortages > 0,
        "the relay asked for pipes: {starved:?}"
    );
    assert_eq!(
        starved.spliced_bytes, 0,
        "no pipe to splice with: {starved:?}"
    );
    assert!(
        starved.copied_bytes >= 2 * (8 << 20),
        "both ways copied: {starved:?}"
    );

    // Descriptors again: the same connection splices.
    echo_through(&conn, 2, 8 << 20);
    let stats = proxy.stats().relay;
    assert!(stats.spliced_bytes > 0, "splicing again: {stats:?}");
    drop(conn);
    common::wait_for_no_connections(&server);
    assert_eq!(proxy.stats().relay.resets, 0, "nothing failed");
    println!("relayed out of descriptors: {starved:?}, then {stats:?}");
}

#[test]
fn half_closes_pass_through_in_both_orders() {
    common::for_each(configs(), |config| {
        // The client's first: a request, then its answer.
        let upstream = Upstream::start(count_then_answer);
        let (server, proxy) = proxy(config, upstream.addr, RelayConfig::default());
        let mut conn = connect(server.local_addr());
        conn.write_all(&pattern(1, 300_000)).expect("request");
        conn.shutdown(Shutdown::Write).expect("client half-close");
        let mut answer = String::new();
        conn.read_to_string(&mut answer)
            .expect("the answer, then end of stream");
        assert_eq!(answer, "got 300000", "{config}");
        let seen = upstream.next_seen();
        assert_eq!(seen.received, Ok(300_000), "{config}");
        drop(upstream);
        // The upstream's first: a greeting and its end, then the client
        // goes on sending.
        let upstream = Upstream::start(greet_then_count);
        let (server2, _) = self::proxy(config, upstream.addr, RelayConfig::default());
        let mut conn = connect(server2.local_addr());
        let mut greeting = Vec::new();
        conn.read_to_end(&mut greeting)
            .expect("greeting, then end of stream");
        assert_eq!(greeting, b"hello", "{config}");
        conn.write_all(&pattern(2, 2 << 20))
            .expect("the client's direction stays open");
        conn.shutdown(Shutdown::Write).expect("client half-close");
        let seen = upstream.next_seen();
        assert_eq!(seen.received, Ok(2 << 20), "{config}");
        assert_eq!(seen.sent, Ok(()), "{config}");
        common::wait_for_no_connections(&server);
        common::wait_for_no_connections(&server2);
        assert!(proxy.stats().relay.half_closes >= 2, "{config}");
    });
}

#[test]
fn an_upstream_that_refuses_closes_the_client_and_is_counted() {
    common::for_each(configs(), |config| {
        // A port nothing listens on any more.
        let refused = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let (server, proxy) = proxy(config, refused, RelayConfig::default());
        for _ in 0..3 {
            let mut conn = connect(server.local_addr());
            assert_eq!(
                read_to_the_end(&mut conn),
                Ok(0),
                "{config}: closed, no bytes"
            );
        }
        common::wait_for_no_connections(&server);
        let stats = proxy.stats();
        assert_eq!(stats.upstream_failures, 3, "{config}: {stats:?}");
        assert_eq!(stats.relay.links, 0, "{config}");
    });
}

#[test]
fn an_upstream_that_resets_as_it_accepts_resets_the_client() {
    // The upstream accepts and resets at once, so the proxy's connect
    // often completes with the reset already on the socket: the client
    // must hear a reset then too, not an orderly end (a truncated stream
    // passed on as a complete one). Issue 11: resets are passed on.
    // Whether a round takes the connector's failure path or the relay's
    // (the connect seen first, the reset relayed) is up to the scheduler:
    // each configuration runs 8 rounds so that the first path is taken in
    // some of them (before the fix a run failed with an orderly end read
    // in round 2 of pool/Level/pooled).
    fn reset_at_once(conn: TcpStream) -> common::upstream::Seen {
        socket2::SockRef::from(&conn)
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER");
        common::upstream::Seen {
            received: Ok(0),
            sent: Ok(()),
        }
    }
    common::for_each(configs(), |config| {
        let upstream = Upstream::start(reset_at_once);
        let (server, _proxy) = proxy(config, upstream.addr, RelayConfig::default());
        for round in 0..8 {
            let mut conn = connect(server.local_addr());
            let _ = upstream.next_seen();
            assert_eq!(
                read_to_the_end(&mut conn),
                Err(ErrorKind::ConnectionReset),
                "{config}, round {round}: the client sees a reset"
            );
        }
        common::wait_for_no_connections(&server);
    });
}

/// Records of wharf's loggers at info and above, for the test that counts
/// the proxy's: the logger is the process's, so every test of this binary
/// logs here once it is set, and that test picks its own by address.
static RECORDS: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("wharf")
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let mut records = RECORDS.lock().unwrap_or_else(|e| e.into_inner());
            records.push((record.level(), record.args().to_string()));
        }
    }

    fn flush(&self) {}
}

#[test]
fn an_upstream_outage_is_logged_once_and_the_next_one_again() {
    // Issue 11: "Upstream refused ...: close the client connection, log
    // once, count it." Logging every failure would flood the log during
    // an outage under load.
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Info);
    common::for_each(configs(), |config| {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let (server, proxy) = proxy(config, addr, RelayConfig::default());
        let about_this_upstream = |level: log::Level| {
            let records = RECORDS.lock().unwrap_or_else(|e| e.into_inner());
            records
                .iter()
                .filter(|(l, m)| *l == level && m.contains(&addr.to_string()))
                .cloned()
                .collect::<Vec<_>>()
        };
        let refused = |times: usize| {
            for _ in 0..times {
                let mut conn = connect(server.local_addr());
                assert_eq!(read_to_the_end(&mut conn), Ok(0), "{config}: closed");
            }
        };
        refused(4);
        assert_eq!(proxy.stats().upstream_failures, 4, "{config}");
        let warnings = about_this_upstream(log::Level::Warn);
        assert_eq!(
            warnings.len(),
            1,
            "{config}: one outage, one record: {warnings:#?}"
        );
        assert!(warnings[0].1.contains("failed"), "{config}: {warnings:?}");
        // The upstream is back: one connection gets through...
        let listener = TcpListener::bind(addr).expect("the upstream's port again");
        let mut conn = connect(server.local_addr());
        let (mut upstream_end, _) = listener.accept().expect("the proxy connects");
        upstream_end.write_all(b"back").expect("greet");
        assert_eq!(common::read_exact_n(&mut conn, 4), b"back", "{config}");
        drop((conn, upstream_end, listener));
        let infos = about_this_upstream(log::Level::Info);
        assert_eq!(infos.len(), 1, "{config}: the recovery, once: {infos:#?}");
        // ...and the next outage is logged again, once.
        refused(3);
        let warnings = about_this_upstream(log::Level::Warn);
        assert_eq!(warnings.len(), 2, "{config}: two outages: {warnings:#?}");
        assert_eq!(proxy.stats().upstream_failures, 7, "{config}");
        common::wait_for_no_connections(&server);
    });
}

#[test]
fn an_upstream_that_never_answers_times_out_and_closes_the_client() {
    common::concurrent::for_each_concurrently(configs(), |config| {
        // A listener with a backlog of one that never accepts: once one
        // connection waits in its queue, the kernel drops further SYNs.
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket
            .bind(
                &"127.0.0.1:0"
                    .parse::<std::net::SocketAddr>()
                    .unwrap()
                    .into(),
            )
            .expect("bind");
        socket.listen(0).expect("listen");
        let addr = socket
            .local_addr()
            .expect("addr")
            .as_socket()
            .expect("inet");
        // Fill the queue. A connect into a full queue would wait out the
        // kernel's SYN retries (minutes): bound each one.
        let _filler: Vec<TcpStream> = (0..2)
            .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok())
            .collect();
        assert!(!_filler.is_empty(), "{config}: the filler connected");
        let (server, proxy) = proxy(config, addr, RelayConfig::default());
        let started = Instant::now();
        let mut conn = connect(server.local_addr());
        assert_eq!(
            read_to_the_end(&mut conn),
            Ok(0),
            "{config}: closed, no bytes"
        );
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(400),
            "{config}: closed after {waited:?}, before the connect timeout"
        );
        common::wait_for_no_connections(&server);
        assert_eq!(proxy.stats().upstream_failures, 1, "{config}");
        drop(socket);
    });
}

#[test]
fn a_client_reset_mid_stream_resets_the_upstream_and_back() {
    /// Reads until the stream ends and reports how, as `received`.
    fn read_until_reset(mut conn: TcpStream) -> common::upstream::Seen {
        common::upstream::Seen {
            received: read_to_the_end(&mut conn).map_err(|k| format!("{k:?}")),
            sent: Ok(()),
        }
    }
    common::for_each(configs(), |config| {
        let upstream = Upstream::start(read_until_reset);
        let (server, proxy) = proxy(config, upstream.addr, RelayConfig::default());
        let mut conn = connect(server.local_addr());
        conn.write_all(&pattern(3, 1 << 20)).expect("send");
        socket2::SockRef::from(&conn)
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER");
        drop(conn);
        let seen = upstream.next_seen();
        assert_eq!(
            seen.received,
            Err(format!("{:?}", ErrorKind::ConnectionReset)),
            "{config}: the upstream sees a reset, not an orderly end"
        );
        common::wait_for_no_connections(&server);
        drop(upstream);
        // The other way: the upstream resets while the client reads.
        fn stream_then_reset(conn: TcpStream) -> common::upstream::Seen {
            let mut out = conn;
            let sent = out
                .write_all(&pattern(4, 1 << 20))
                .map_err(|e| e.to_string());
            socket2::SockRef::from(&out)
                .set_linger(Some(Duration::ZERO))
                .expect("SO_LINGER");
            common::upstream::Seen {
                received: Ok(0),
                sent,
            }
        }
        let upstream = Upstream::start(stream_then_reset);
        let (server2, proxy2) = self::proxy(config, upstream.addr, RelayConfig::default());
        let mut conn = connect(server2.local_addr());
        let _ = upstream.next_seen();
        let end = read_to_the_end(&mut conn);
        assert_eq!(
            end,
            Err(ErrorKind::ConnectionReset),
            "{config}: the client sees a reset"
        );
        common::wait_for_no_connections(&server2);
        assert!(
            proxy.stats().relay.resets + proxy2.stats().relay.resets >= 2,
            "{config}"
        );
    });
}

#[test]
fn backpressure_holds_both_ways_with_a_client_that_never_reads() {
    common::for_each(configs(), |config| {
        let echo = wharf::ServerBootstrap::new()
            .child_handler(|| Pipeline::bytes(Echo))
            .bind("127.0.0.1:0")
            .expect("echo upstream");
        let (server, _proxy) = proxy(config, echo.local_addr(), RelayConfig::default());
        let conn = connect(server.local_addr());
        conn.set_write_timeout(Some(Duration::from_millis(500)))
            .expect("write timeout");
        // Send until nothing moves for half a second: the echo's answers
        // fill every buffer on the way back, and the proxy stops reading.
        let chunk = pattern(5, 1 << 20);
        let mut sent = 0usize;
        let mut writer = &conn;
        while sent < 1 << 30 {
            match writer.write(&chunk[sent % chunk.len()..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                    break;
                }
                Err(e) => panic!("{config}: send: {e}"),
            }
        }
        assert!(
            sent < 256 << 20,
            "{config}: {} MiB went in without anyone reading: no backpressure",
            sent >> 20
        );
        // Reading resumes the flow: every byte comes back in order.
        let mut reader = &conn;
        let mut back = vec![0u8; sent];
        reader
            .read_exact(&mut back)
            .expect("the echo of everything sent");
        for (i, piece) in back.chunks(chunk.len()).enumerate() {
            assert!(
                piece == &chunk[..piece.len()],
                "{config}: piece {i} differs"
            );
        }
        drop(conn);
        common::wait_for_no_connections(&server);
    });
}

#[test]
fn a_thousand_proxied_connections_at_once() {
    let wanted = 8_000;
    let soft = wharf::transport::sys::limits::raise_fd_limit(wanted).expect("descriptor limit");
    assert!(
        soft >= wanted,
        "the descriptor limit is {soft}: {wanted} are needed"
    );
    common::for_each(configs(), |config| {
        let echo = wharf::ServerBootstrap::new()
            .mode(ReactorMode::Reuseport { reactors: 2 })
            .child_handler(|| Pipeline::bytes(Echo))
            .bind("127.0.0.1:0")
            .expect("echo upstream");
        let (server, proxy) = proxy(config, echo.local_addr(), RelayConfig::default());
        let mut rng = Rng::new(9);
        let payloads: Vec<Vec<u8>> = (0..1000)
            .map(|i| {
                pattern(
                    i,
                    rng.range(1, if i % 50 == 0 { 1 << 20 } else { 16 << 10 }),
                )
            })
            .collect();
        driver::echo_all(
            server.local_addr(),
            payloads,
            64 << 10,
            11,
            Duration::from_secs(90),
        )
        .unwrap_or_else(|e| panic!("{config}: {e}"));
        common::wait_until(Duration::from_secs(20), "the proxy to close", || {
            server.connections() == 0
        });
        assert_eq!(proxy.stats().relay.links, 1000, "{config}");
        assert_eq!(proxy.stats().upstream_failures, 0, "{config}");
    });
}

#[test]
fn relay_settings_that_cannot_work_are_refused() {
    let bad = RelayConfig {
        pipe_size: 100,
        ..RelayConfig::default()
    };
    let error = Relay::new(bad).expect_err("a pipe of 100 bytes");
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(error.to_string().starts_with("pipe_size"), "{error}");
    let error = Relay::new(RelayConfig {
        splice_threshold: 0,
        ..RelayConfig::default()
    })
    .expect_err("a threshold of zero");
    assert!(error.to_string().starts_with("splice_threshold"), "{error}");
}

#[test]
fn a_proxy_on_a_unix_socket_relays_to_a_unix_socket_upstream() {
    use std::os::unix::net::UnixStream;
    let configs = configs()
        .into_iter()
        .filter(|c| !matches!(c.mode, ReactorMode::Reuseport { .. }))
        .collect();
    common::for_each(configs, |config| {
        let echo = wharf::ServerBootstrap::new()
            .child_handler(|| Pipeline::bytes(Echo))
            .bind_unix(common::transport::socket_path())
            .expect("echo upstream on a path");
        let upstream = echo.unix_path().expect("a path").to_path_buf();
        for (splice, len) in [(SpliceMode::Always, 4 << 20), (SpliceMode::Never, 300_000)] {
            let relay = Relay::new(RelayConfig {
                splice,
                ..RelayConfig::default()
            })
            .expect("relay config");
            let proxy = TcpProxy::to_unix(&upstream, relay);
            let server = proxy
                .serve(config.server())
                .bind_unix(common::transport::socket_path())
                .expect("bind the proxy on a path");
            let mut conn =
                UnixStream::connect(server.unix_path().expect("a path")).expect("connect");
            conn.set_read_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
            let data = pattern(11, len);
            let mut writer = conn.try_clone().expect("clone");
            let sent = data.clone();
            let sender = std::thread::spawn(move || {
                writer.write_all(&sent)?;
                writer.shutdown(Shutdown::Write)
            });
            let mut back = Vec::new();
            conn.read_to_end(&mut back)
                .expect("the echo, then end of stream");
            sender.join().expect("sender").expect("send");
            assert!(back == data, "{config}, {splice:?}: byte-exact echo");
            common::wait_for_no_connections(&server);
            let stats = proxy.stats().relay;
            match splice {
                SpliceMode::Never => assert_eq!(stats.spliced_bytes, 0, "{config}"),
                _ => assert_eq!(stats.copied_bytes, 0, "{config}"),
            }
            assert_eq!(stats.half_closes, 2, "{config}, {splice:?}: {stats:?}");
        }
    });
}
