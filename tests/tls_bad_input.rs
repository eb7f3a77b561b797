//! Bad input on a TLS port, in every reactor mode × trigger × allocator:
//! a plain-HTTP request, random bytes, a truncated handshake, a peer that
//! stalls in the middle of its handshake, a corrupted record after a good
//! handshake, and a thousand handshakes cut off at random points. Each
//! ends in a close (with an alert where TLS has one) within a bounded
//! time, the handler hears a fitting `ChannelError::Tls` and never becomes
//! active, nothing panics, and a good TLS client on the same server, open
//! all along, keeps echoing.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::tls::{self, Client, KeyKind, Pki, Seen};
use common::{Config, Rng, pattern};
use wharf::tls::rustls::crypto::ring::cipher_suite as suite;
use wharf::tls::rustls::version::{TLS12, TLS13};
use wharf::tls::rustls::{self, AlertDescription, ClientConfig, ClientConnection};
use wharf::tls::{TlsError, TlsServer};
use wharf::{Pipeline, Server};

const WAIT: Duration = Duration::from_secs(10);
/// The servers' handshake timeout here.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a bad peer may take to be closed (what the server must read
/// plus its reaction; the timeout case adds the handshake timeout).
const CLOSE_WITHIN: Duration = Duration::from_secs(3);

fn server(config: Config, pki: &Pki, seen: &Seen) -> Server {
    let tls = TlsServer::builder()
        .certificate_files(pki.cert("bad.test"), pki.key("bad.test"))
        .expect("certificate")
        .handshake_timeout(HANDSHAKE_TIMEOUT)
        .build()
        .expect("TLS server");
    let seen = seen.clone();
    config
        .server()
        .tls(tls)
        .child_handler(move || Pipeline::bytes(seen.probe(true)))
        .bind("127.0.0.1:0")
        .expect("bind")
}

/// A good client that stays connected while the bad input happens.
struct Neighbour(Client);

impl Neighbour {
    fn new(addr: SocketAddr, pki: &Pki) -> Neighbour {
        let mut c = Client::connect(addr, pki.rustls_client(), "bad.test").expect("a good client");
        c.echo(b"before").expect("the good client's echo");
        Neighbour(c)
    }

    /// Still echoes, and a new client still gets through too.
    fn still_fine(&mut self, addr: SocketAddr, pki: &Pki, what: &str) {
        self.0
            .echo(&pattern(5, 30_000))
            .unwrap_or_else(|e| panic!("{what}: the good client's echo after: {e}"));
        let mut fresh = Client::connect(addr, pki.rustls_client(), "bad.test")
            .unwrap_or_else(|e| panic!("{what}: a new good client: {e}"));
        fresh
            .echo(b"fresh")
            .unwrap_or_else(|e| panic!("{what}: a new good client's echo: {e}"));
    }
}

/// A raw TCP peer with a read timeout.
fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// Reads until the server closes; panics if that takes longer than
/// `within`. Returns what was read.
fn closed_within(stream: &mut TcpStream, within: Duration, what: &str) -> Vec<u8> {
    let started = Instant::now();
    let (data, end) = common::read_until_closed(stream);
    let took = started.elapsed();
    // A reset is a close too (the server may not have read everything).
    if let Err(e) = &end {
        assert!(
            e.kind() == std::io::ErrorKind::ConnectionReset,
            "{what}: the stream ended with {e} after {took:?}"
        );
    }
    assert!(took < within, "{what}: closed only after {took:?}");
    data
}

/// Waits for the bad channel's TLS error and its end, checks it never
/// became active (only the neighbour, and the fresh client, did), and
/// returns the error.
fn the_error(seen: &Seen, errors_before: usize, what: &str) -> TlsError {
    common::wait_until(WAIT, "the server's TLS error", || {
        seen.errors().len() > errors_before
    });
    let errors = seen.errors();
    assert_eq!(
        errors.len(),
        errors_before + 1,
        "{what}: one error: {errors:?}"
    );
    common::wait_until(WAIT, "on_inactive of the bad channel", || {
        seen.log.count("inactive") >= errors.len()
    });
    errors[errors_before].clone()
}

/// The handler's log of a run where the neighbour (and a fresh client
/// after every case) were the only ones to become active.
fn only_good_ones_active(seen: &Seen, cases: usize, what: &str) {
    assert_eq!(
        seen.log.count("active"),
        1 + cases,
        "{what}: channels that became active: {:?}",
        seen.log.snapshot()
    );
}

/// `GET / HTTP/1.1` on the TLS port: closed at once, and the handler
/// hears `TlsError::PlainText`.
#[test]
fn a_plain_http_request_is_refused() {
    let pki = Pki::new("plain", &["bad.test"]);
    common::for_each(Config::all(), |config| {
        let seen = Seen::new();
        let server = server(config, &pki, &seen);
        let mut good = Neighbour::new(server.local_addr(), &pki);
        let mut http = raw(server.local_addr());
        http.write_all(b"GET / HTTP/1.1\r\nHost: bad.test\r\nUser-Agent: test\r\n\r\n")
            .expect("send the request");
        let what = format!("{config}: plain HTTP");
        let answer = closed_within(&mut http, CLOSE_WITHIN, &what);
        assert!(
            answer.is_empty() || answer[0] == 21,
            "{what}: answered with {answer:?}"
        );
        assert_eq!(the_error(&seen, 0, &what), TlsError::PlainText, "{what}");
        good.still_fine(server.local_addr(), &pki, &what);
        only_good_ones_active(&seen, 1, &what);
        drop(good);
        common::wait_for_no_connections(&server);
    });
}

/// Random bytes (pure noise, and noise behind a plausible handshake
/// record header), then the end of the peer's output: the server closes
/// within a bounded time and the handler hears a TLS error.
#[test]
fn random_bytes_are_refused() {
    let pki = Pki::new("random", &["bad.test"]);
    common::for_each(Config::all(), |config| {
        let seen = Seen::new();
        let server = server(config, &pki, &seen);
        let mut good = Neighbour::new(server.local_addr(), &pki);
        let mut rng = Rng::new(config.to_string().len() as u64);
        for case in 0..4u64 {
            let mut noise = pattern(rng.next(), rng.range(1, 4096));
            if case % 2 == 1 {
                // A handshake record header with a length that fits.
                let len = (noise.len().saturating_sub(5) as u16).to_be_bytes();
                noise.splice(..5.min(noise.len()), [22, 3, 1, len[0], len[1]]);
            }
            let what = format!("{config}: noise {case} ({} bytes)", noise.len());
            let mut peer = raw(server.local_addr());
            peer.write_all(&noise).expect("send noise");
            let _ = peer.shutdown(Shutdown::Write);
            let answer = closed_within(&mut peer, CLOSE_WITHIN, &what);
            assert!(
                answer.is_empty() || answer[0] == 21,
                "{what}: answered with {answer:?}"
            );
            let error = the_error(&seen, case as usize, &what);
            assert!(
                !matches!(error, TlsError::HandshakeTimeout(_)),
                "{what}: {error:?}"
            );
        }
        good.still_fine(server.local_addr(), &pki, &format!("{config}"));
        only_good_ones_active(&seen, 1, &format!("{config}"));
        drop(good);
        common::wait_for_no_connections(&server);
    });
}

/// Half a ClientHello, then the peer's FIN: the handshake is cut off,
/// the server closes, the handler hears why.
#[test]
fn a_truncated_handshake_is_closed() {
    let pki = Pki::new("truncated", &["bad.test"]);
    let hello = tls::client_hello(pki.rustls_client(), "bad.test");
    common::for_each(Config::all(), |config| {
        let seen = Seen::new();
        let server = server(config, &pki, &seen);
        let mut good = Neighbour::new(server.local_addr(), &pki);
        let what = format!("{config}: half a hello");
        let mut peer = raw(server.local_addr());
        peer.write_all(&hello[..hello.len() / 2]).expect("send");
        peer.shutdown(Shutdown::Write).expect("FIN");
        closed_within(&mut peer, CLOSE_WITHIN, &what);
        let error = the_error(&seen, 0, &what);
        assert!(
            matches!(&error, TlsError::Protocol(why) if why.contains("closed")),
            "{what}: {error:?}"
        );
        good.still_fine(server.local_addr(), &pki, &what);
        only_good_ones_active(&seen, 1, &what);
        drop(good);
        common::wait_for_no_connections(&server);
    });
}

/// Half a ClientHello, then nothing: the server closes the connection at
/// its handshake timeout (not before, not much after) with
/// `HandshakeTimeout`; a good connection made at the same time, idle for
/// longer than that, is not touched (its handshake timer is gone).
#[test]
fn a_peer_that_stalls_mid_handshake_is_closed_at_the_timeout() {
    let pki = Pki::new("stall", &["bad.test"]);
    let hello = tls::client_hello(pki.rustls_client(), "bad.test");
    common::for_each_parallel(Config::all(), |config| {
        let seen = Seen::new();
        let server = server(config, &pki, &seen);
        let mut good = Neighbour::new(server.local_addr(), &pki);
        let good_since = Instant::now();
        let what = format!("{config}: stalled");
        let mut peer = raw(server.local_addr());
        let started = Instant::now();
        peer.write_all(&hello[..hello.len() / 2]).expect("send");
        closed_within(&mut peer, HANDSHAKE_TIMEOUT + CLOSE_WITHIN, &what);
        let took = started.elapsed();
        assert!(
            took >= HANDSHAKE_TIMEOUT - Duration::from_millis(50),
            "{what}: closed after {took:?}, before the handshake timeout"
        );
        assert_eq!(
            the_error(&seen, 0, &what),
            TlsError::HandshakeTimeout(HANDSHAKE_TIMEOUT),
            "{what}"
        );
        // The good connection stays open well past its own handshake's
        // deadline.
        while good_since.elapsed() < HANDSHAKE_TIMEOUT * 2 {
            std::thread::sleep(Duration::from_millis(20));
        }
        good.still_fine(server.local_addr(), &pki, &what);
        assert_eq!(seen.errors().len(), 1, "{what}: {:?}", seen.log.snapshot());
        only_good_ones_active(&seen, 1, &what);
        drop(good);
        common::wait_for_no_connections(&server);
    });
}

/// A client configuration for `s`, with the certificate it needs.
fn client_for(pki: &Pki, s: rustls::SupportedCipherSuite) -> Arc<ClientConfig> {
    let version = match s {
        rustls::SupportedCipherSuite::Tls13(_) => &TLS13,
        rustls::SupportedCipherSuite::Tls12(_) => &TLS12,
    };
    Arc::new(pki.rustls_client_with(&[version], &[s]))
}

/// After a good handshake, one application-data record with a bit
/// flipped (in the ciphertext, the tag, or a TLS 1.2 explicit nonce): the
/// server answers `bad_record_mac` and closes, the handler hears
/// `TlsError::BadRecordMac`. A record header no TLS peer sends gets
/// `unexpected_message` and `TlsError::Protocol`. Every record format
/// (TLS 1.3, TLS 1.2 AES-GCM, TLS 1.2 ChaCha20).
#[test]
fn a_corrupted_record_after_the_handshake_gets_bad_record_mac() {
    let pki = Pki::new("corrupt", &["bad.test"]);
    let suites = [
        suite::TLS13_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    common::for_each(Config::all(), |config| {
        let seen = Seen::new();
        let server = server(config, &pki, &seen);
        let mut good = Neighbour::new(server.local_addr(), &pki);
        let mut rng = Rng::new(77);
        let mut cases = 0;
        for s in suites {
            for spot in ["body", "tag", "first byte after the header"] {
                let what = format!("{config}: {:?}: {spot}", s.suite());
                let mut c = Client::connect(server.local_addr(), client_for(&pki, s), "bad.test")
                    .unwrap_or_else(|e| panic!("{what}: handshake: {e}"));
                c.echo(b"fine so far").expect("echo");
                c.tls
                    .writer()
                    .write_all(&pattern(rng.next(), 1000))
                    .expect("plaintext");
                let mut record = c.take_tls();
                let at = match spot {
                    "body" => rng.range(6, record.len() - 17),
                    "tag" => record.len() - 1,
                    _ => 5,
                };
                record[at] ^= 1 << rng.range(0, 7);
                c.tcp.write_all(&record).expect("send the corrupted record");
                let (data, end) = c.read_to_end();
                assert!(data.is_empty(), "{what}: {} bytes came back", data.len());
                assert!(
                    tls::is_alert(&end, AlertDescription::BadRecordMac),
                    "{what}: the stream ended with {end:?}"
                );
                assert_eq!(
                    the_error(&seen, cases, &what),
                    TlsError::BadRecordMac,
                    "{what}"
                );
                cases += 1;
            }
            let what = format!("{config}: {:?}: not a record", s.suite());
            let mut c = Client::connect(server.local_addr(), client_for(&pki, s), "bad.test")
                .unwrap_or_else(|e| panic!("{what}: handshake: {e}"));
            c.echo(b"fine so far").expect("echo");
            c.tcp
                .write_all(b"\x63\x03\x03\x00\x20 thirty-two bytes of nothing...")
                .expect("send");
            let (_, end) = c.read_to_end();
            assert!(
                tls::is_alert(&end, AlertDescription::UnexpectedMessage),
                "{what}: the stream ended with {end:?}"
            );
            let error = the_error(&seen, cases, &what);
            assert!(matches!(error, TlsError::Protocol(_)), "{what}: {error:?}");
            cases += 1;
        }
        good.still_fine(server.local_addr(), &pki, &format!("{config}"));
        // Every corrupted connection had become active first.
        assert_eq!(seen.log.count("active"), 2 + cases, "{config}");
        drop(good);
        common::wait_for_no_connections(&server);
        common::wait_until(WAIT, "every channel's on_inactive", || {
            seen.log.count("inactive") == seen.log.count("active")
        });
    });
}

/// How one of the aborted handshakes ends.
#[derive(Debug, Clone, Copy)]
enum Abort {
    /// Connects, sends nothing, closes.
    Silent,
    /// Sends a prefix of the ClientHello, then FIN.
    HelloPrefix,
    /// Sends a prefix of the ClientHello, then a reset.
    HelloPrefixReset,
    /// Sends the ClientHello, reads part of the server's flight, closes.
    AfterServerHello,
    /// Gets the server's flight, sends part of its Finished flight, resets.
    FinishedPrefix,
    /// Completes the handshake and resets.
    AfterHandshake,
}

const ABORTS: [Abort; 6] = [
    Abort::Silent,
    Abort::HelloPrefix,
    Abort::HelloPrefixReset,
    Abort::AfterServerHello,
    Abort::FinishedPrefix,
    Abort::AfterHandshake,
];

fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// One handshake cut off as `abort` says, at a random byte.
fn abort_handshake(addr: SocketAddr, config: &Arc<ClientConfig>, abort: Abort, rng: &mut Rng) {
    let name = rustls::pki_types::ServerName::try_from("bad.test").expect("name");
    let mut conn = ClientConnection::new(config.clone(), name).expect("client");
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).expect("hello");
    }
    let mut stream = raw(addr);
    let cut = rng.range(0, hello.len() - 1);
    match abort {
        Abort::Silent => drop(stream),
        Abort::HelloPrefix => {
            let _ = stream.write_all(&hello[..cut]);
            let _ = stream.shutdown(Shutdown::Write);
            // Its answer (a close) is not waited for.
        }
        Abort::HelloPrefixReset => {
            let _ = stream.write_all(&hello[..cut]);
            reset(stream);
        }
        Abort::AfterServerHello => {
            let _ = stream.write_all(&hello);
            let mut buf = vec![0u8; rng.range(1, 200)];
            let _ = stream.read(&mut buf);
            if rng.next().is_multiple_of(2) {
                reset(stream);
            }
        }
        Abort::FinishedPrefix => {
            let _ = stream.write_all(&hello);
            // Read the server's flight until the client has its answer.
            while conn.is_handshaking() && !conn.wants_write() {
                if conn.read_tls(&mut stream).map(|n| n == 0).unwrap_or(true) {
                    return;
                }
                if conn.process_new_packets().is_err() {
                    return;
                }
            }
            let mut finished = Vec::new();
            while conn.wants_write() {
                conn.write_tls(&mut finished).expect("finished");
            }
            let cut = rng.range(0, finished.len().saturating_sub(1));
            let _ = stream.write_all(&finished[..cut]);
            reset(stream);
        }
        Abort::AfterHandshake => {
            drop(stream);
            if let Ok(c) = Client::connect(addr, config.clone(), "bad.test") {
                reset(c.tcp);
            }
        }
    }
}

/// A thousand handshakes, fifty per configuration, each cut off at a
/// random point (before, inside and after each flight, by FIN or reset):
/// once they are over, the server holds no connection, every channel
/// that became active also ended, and a good client still gets through.
#[test]
fn a_thousand_aborted_handshakes_leak_nothing() {
    let pki = Pki::new("aborts", &["bad.test"]);
    let tls13 = Arc::new(pki.rustls_client_with(&[&TLS13], &[]));
    let tls12 = Arc::new(pki.rustls_client_with(&[&TLS12], &[]));
    let total = std::sync::atomic::AtomicUsize::new(0);
    common::for_each_parallel(Config::all(), |config| {
        let seen = Seen::new();
        let server = server(config, &pki, &seen);
        let mut rng = Rng::new(config.to_string().bytes().map(u64::from).sum());
        for i in 0..50 {
            let abort = ABORTS[i % ABORTS.len()];
            let client = if rng.next().is_multiple_of(2) {
                &tls13
            } else {
                &tls12
            };
            abort_handshake(server.local_addr(), client, abort, &mut rng);
            total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let what = format!("{config}");
        common::wait_until(
            HANDSHAKE_TIMEOUT + WAIT,
            "the aborted connections to be closed",
            || server.connections() == 0,
        );
        common::wait_until(WAIT, "on_inactive of every active channel", || {
            seen.log.count("inactive") >= seen.log.count("active")
        });
        let mut good = Neighbour::new(server.local_addr(), &pki);
        good.still_fine(server.local_addr(), &pki, &what);
        drop(good);
        common::wait_for_no_connections(&server);
        let log = seen.log.snapshot();
        assert!(
            !log.iter()
                .any(|e| e.starts_with("error:tls:HandshakeTimeout")),
            "{what}: a connection whose peer had gone waited for the handshake timeout: {log:?}"
        );
    });
    assert_eq!(total.into_inner(), 1000);
}

/// A check of the protocol (one configuration): a certificate with an RSA
/// key and a client that offers only ECDSA suites (TLS 1.2) cannot agree:
/// the handshake fails with `handshake_failure` for the client and a
/// `Handshake` error for the handler.
#[test]
fn no_common_cipher_suite_fails_the_handshake() {
    let pki = Pki::new("nosuite", &["bad.test"]);
    pki.leaf("rsa", &["bad.test"], KeyKind::Rsa2048, |_| {});
    let config = Config::all()[0];
    let seen = Seen::new();
    let s = seen.clone();
    let server = config
        .server()
        .tls(TlsServer::from_pem_files(pki.cert("rsa"), pki.key("rsa")).expect("TLS server"))
        .child_handler(move || Pipeline::bytes(s.probe(true)))
        .bind("127.0.0.1:0")
        .expect("bind");
    let client = client_for(&pki, suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256);
    let error = Client::connect(server.local_addr(), client, "bad.test")
        .err()
        .expect("no common suite");
    assert!(
        error.to_string().contains("HandshakeFailure"),
        "the client heard {error}"
    );
    let error = the_error(&seen, 0, "no common suite");
    assert!(matches!(error, TlsError::Handshake(_)), "{error:?}");
    assert_eq!(seen.log.count("active"), 0);
    common::wait_for_no_connections(&server);
}
