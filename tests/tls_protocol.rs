//! TLS as the protocol sees it, against rustls clients that do not go
//! through wharf: every version and cipher suite the ring provider offers
//! echoes byte for byte; key updates in the middle of a stream; session
//! resumption; ALPN and SNI selection; `close_notify` both ways, with and
//! without half-closure, and the server's `shutdown_output`. Each test runs
//! in every reactor mode × trigger × allocator unless its comment says it
//! is a check of the protocol alone (one configuration).

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use common::tls::{self, Client, End, KeyKind, Pki, Seen};
use common::{Config, Rng, pattern};
use wharf::tls::TlsServer;
use wharf::tls::rustls::crypto::ring::cipher_suite as suite;
use wharf::tls::rustls::version::{TLS12, TLS13};
use wharf::tls::rustls::{
    self, HandshakeKind, ProtocolVersion, SupportedCipherSuite, SupportedProtocolVersion,
};
use wharf::{Pipeline, Server};

const WAIT: Duration = Duration::from_secs(10);

/// A server in `config` whose handlers are [`tls::Probe`]s recording into
/// `seen` (echoing if `echo`).
fn probe_server(config: Config, tls: TlsServer, seen: &Seen, echo: bool) -> Server {
    let seen = seen.clone();
    config
        .server()
        .tls(tls)
        .child_handler(move || Pipeline::bytes(seen.probe(echo)))
        .bind("127.0.0.1:0")
        .expect("bind")
}

/// Every suite of the ring provider, with the key type its certificate
/// must have (TLS 1.3 suites do not depend on it).
fn every_suite() -> Vec<(SupportedCipherSuite, KeyKind)> {
    vec![
        (suite::TLS13_AES_128_GCM_SHA256, KeyKind::EcdsaP256),
        (suite::TLS13_AES_256_GCM_SHA384, KeyKind::EcdsaP256),
        (suite::TLS13_CHACHA20_POLY1305_SHA256, KeyKind::EcdsaP256),
        (
            suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            KeyKind::EcdsaP256,
        ),
        (
            suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            KeyKind::EcdsaP256,
        ),
        (
            suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            KeyKind::EcdsaP256,
        ),
        (
            suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            KeyKind::Rsa2048,
        ),
        (
            suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            KeyKind::Rsa2048,
        ),
        (
            suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            KeyKind::Rsa2048,
        ),
    ]
}

fn version_of(s: SupportedCipherSuite) -> &'static SupportedProtocolVersion {
    match s {
        SupportedCipherSuite::Tls13(_) => &TLS13,
        SupportedCipherSuite::Tls12(_) => &TLS12,
    }
}

/// A PKI with an ECDSA P-256 leaf (`ec.test`, the default) and an RSA
/// one (`rsa.test`, chosen by SNI).
fn ec_and_rsa(tag: &str) -> (Pki, TlsServer) {
    let pki = Pki::new(tag, &["ec.test"]);
    pki.leaf("rsa.test", &["rsa.test"], KeyKind::Rsa2048, |_| {});
    let server = TlsServer::builder()
        .certificate_files(pki.cert("ec.test"), pki.key("ec.test"))
        .expect("default certificate")
        .sni_files("rsa.test", pki.cert("rsa.test"), pki.key("rsa.test"))
        .expect("RSA certificate")
        .build()
        .expect("TLS server");
    (pki, server)
}

/// Each of the nine suites, over the version it belongs to: a client that
/// offers only that suite echoes payloads across record boundaries byte
/// for byte, and the server's handler sees the suite and version.
#[test]
fn every_version_and_cipher_suite_echoes_byte_for_byte() {
    let (pki, tls_server) = ec_and_rsa("suites");
    let suites = every_suite();
    common::for_each(Config::all(), |config| {
        let seen = Seen::new();
        let server = probe_server(config, tls_server.clone(), &seen, true);
        let mut rng = Rng::new(0x5017e);
        for (i, &(s, key)) in suites.iter().enumerate() {
            let client = Arc::new(pki.rustls_client_with(&[version_of(s)], &[s]));
            let name = if key == KeyKind::Rsa2048 {
                "rsa.test"
            } else {
                "ec.test"
            };
            // One byte, a record and a byte, and a few records.
            let payloads = vec![
                pattern(i as u64, 1),
                pattern(i as u64 + 100, (16 << 10) + 1),
                pattern(i as u64 + 200, rng.range(40 << 10, 120 << 10)),
            ];
            let before = seen.infos().len();
            tls::echo_all(
                server.local_addr(),
                client,
                name,
                payloads,
                32 << 10,
                i as u64,
                WAIT,
            )
            .unwrap_or_else(|e| panic!("{config}: {:?}: {e}", s.suite()));
            let infos = seen.infos();
            assert_eq!(
                infos.len(),
                before + 3,
                "{config}: {:?}: handshakes",
                s.suite()
            );
            for info in &infos[before..] {
                assert_eq!(info.cipher_suite, s.suite(), "{config}: suite");
                let version = if matches!(s, SupportedCipherSuite::Tls13(_)) {
                    ProtocolVersion::TLSv1_3
                } else {
                    ProtocolVersion::TLSv1_2
                };
                assert_eq!(info.version, version, "{config}: {:?}: version", s.suite());
            }
        }
        assert!(
            seen.errors().is_empty(),
            "{config}: TLS errors: {:?}",
            seen.errors()
        );
        common::wait_for_no_connections(&server);
    });
}

/// A check of the protocol (one configuration): certificates with P-384
/// and Ed25519 keys work in both versions too (the handshake signs with
/// them; the record layer does not care).
#[test]
fn other_certificate_key_types_work_in_both_versions() {
    let pki = Pki::new("keytypes", &["p256.test"]);
    let config = Config::all()[0];
    for kind in [KeyKind::EcdsaP384, KeyKind::Ed25519] {
        let name = format!("{kind:?}.test").to_lowercase();
        pki.leaf(&name, &[&name], kind, |_| {});
        let seen = Seen::new();
        let server = probe_server(
            config,
            TlsServer::from_pem_files(pki.cert(&name), pki.key(&name)).expect("TLS server"),
            &seen,
            true,
        );
        for version in [&TLS13, &TLS12] {
            let client = Arc::new(pki.rustls_client_with(&[version], &[]));
            let mut c = Client::connect(server.local_addr(), client, &name)
                .unwrap_or_else(|e| panic!("{kind:?} {version:?}: handshake: {e}"));
            c.echo(&pattern(3, 5000))
                .unwrap_or_else(|e| panic!("{kind:?} {version:?}: echo: {e}"));
            assert_eq!(c.tls.protocol_version(), Some(version.version));
        }
        common::wait_for_no_connections(&server);
    }
}

/// A client's `refresh_traffic_keys` sends `key_update` with
/// `update_requested`: the server opens what follows with the client's
/// next key, and answers with a `key_update` of its own before sealing
/// more with its next key. The echo goes on across several updates, and
/// the client's receiving sequence number shows the server's key changed
/// (it starts again from zero at each change).
#[test]
fn key_updates_in_the_middle_of_a_stream() {
    let pki = Pki::new("keyupdate", &["ku.test"]);
    common::for_each(Config::all(), |config| {
        let seen = Seen::new();
        let server = probe_server(config, pki.server("ku.test"), &seen, true);
        for s in [
            suite::TLS13_AES_128_GCM_SHA256,
            suite::TLS13_AES_256_GCM_SHA384,
            suite::TLS13_CHACHA20_POLY1305_SHA256,
        ] {
            let mut client_config = pki.rustls_client_with(&[&TLS13], &[s]);
            client_config.enable_secret_extraction = true;
            let mut c = Client::connect(server.local_addr(), Arc::new(client_config), "ku.test")
                .unwrap_or_else(|e| panic!("{config}: handshake: {e}"));
            // Enough records from the server for its sequence number to
            // tell an update from none.
            for i in 0..10 {
                c.echo(&pattern(i, 100 + i as usize))
                    .unwrap_or_else(|e| panic!("{config}: echo before: {e}"));
            }
            for round in 0..3u64 {
                c.tls
                    .refresh_traffic_keys()
                    .expect("a TLS 1.3 connection can update its keys");
                c.echo(&pattern(50 + round, 30_000)).unwrap_or_else(|e| {
                    panic!("{config}: {:?}: echo after update {round}: {e}", s.suite())
                });
            }
            let secrets = c
                .tls
                .dangerous_extract_secrets()
                .expect("the client's secrets");
            // 30 000 bytes: two records since the server's last update.
            assert!(
                secrets.rx.0 <= 4,
                "{config}: {:?}: the client's receiving sequence is at {}: the server never \
                 changed its sending key",
                s.suite(),
                secrets.rx.0
            );
        }
        assert!(seen.errors().is_empty(), "{config}: {:?}", seen.errors());
        common::wait_for_no_connections(&server);
    });
}

/// Two key update requests in one flight (both records arrive in one
/// read): the server answers them (with one `key_update`, as RFC 8446
/// §4.6.3 allows, or two) and moves its sending key once per `key_update`
/// it sends, so the client, which moves its receiving key once per
/// `key_update` it gets, still opens what follows. (The server once moved
/// its key twice and sent one answer: the client failed with
/// `DecryptError`.)
#[test]
fn two_key_update_requests_in_one_read_are_answered() {
    let pki = Pki::new("keyupdate2", &["ku.test"]);
    common::for_each(Config::all(), |config| {
        let seen = Seen::new();
        let server = probe_server(config, pki.server("ku.test"), &seen, true);
        let client = Arc::new(pki.rustls_client_with(&[&TLS13], &[]));
        let mut c = Client::connect(server.local_addr(), client, "ku.test")
            .unwrap_or_else(|e| panic!("{config}: handshake: {e}"));
        c.echo(b"before").expect("echo before the updates");
        c.tls.refresh_traffic_keys().expect("first update");
        c.tls.refresh_traffic_keys().expect("second update");
        c.tls
            .writer()
            .write_all(b"after two updates")
            .expect("plaintext");
        // Both requests and the data in one write: one read on the server.
        let flight = c.take_tls();
        c.tcp.write_all(&flight).expect("send the flight");
        let back = c.recv_exact(17);
        assert!(
            matches!(&back, Ok(b) if b == b"after two updates"),
            "{config}: after two key updates in one flight: {back:?}; server saw {:?}",
            seen.log.snapshot()
        );
        c.echo(b"and on").expect("echo after");
        drop(c);
        common::wait_for_no_connections(&server);
    });
}

/// The server's tickets let a second connection with the same rustls
/// configuration resume, over TLS 1.3 and 1.2: the client sees a resumed
/// handshake, and so does the server's handler (`ctx.tls().resumed`).
#[test]
fn a_second_connection_resumes_the_session() {
    let pki = Pki::new("resume", &["resume.test"]);
    common::for_each(Config::all(), |config| {
        let seen = Seen::new();
        let server = probe_server(config, pki.server("resume.test"), &seen, true);
        for version in [&TLS13, &TLS12] {
            let client = Arc::new(pki.rustls_client_with(&[version], &[]));
            let before = seen.infos().len();
            for round in 0..3 {
                let mut c = Client::connect(server.local_addr(), client.clone(), "resume.test")
                    .unwrap_or_else(|e| panic!("{config}: {version:?}: handshake: {e}"));
                // The echo also brings the TLS 1.3 tickets in.
                c.echo(b"tickets, please").expect("echo");
                let kind = c.tls.handshake_kind();
                let expected = if round == 0 {
                    HandshakeKind::Full
                } else {
                    HandshakeKind::Resumed
                };
                assert_eq!(kind, Some(expected), "{config}: {version:?}: round {round}");
            }
            let resumed: Vec<bool> = seen.infos()[before..].iter().map(|i| i.resumed).collect();
            assert_eq!(
                resumed,
                [false, true, true],
                "{config}: {version:?}: the server's view"
            );
        }
        common::wait_for_no_connections(&server);
    });
}

/// With `no_tickets(true)` a TLS 1.3 client gets nothing to resume with.
/// A check of the configuration (one configuration).
#[test]
fn without_tickets_every_handshake_is_full() {
    let pki = Pki::new("notickets", &["nt.test"]);
    let config = Config::all()[0];
    let seen = Seen::new();
    let tls = TlsServer::builder()
        .certificate_files(pki.cert("nt.test"), pki.key("nt.test"))
        .expect("certificate")
        .no_tickets(true)
        .build()
        .expect("TLS server");
    let server = probe_server(config, tls, &seen, true);
    let client = Arc::new(pki.rustls_client_with(&[&TLS13], &[]));
    for _ in 0..2 {
        let mut c = Client::connect(server.local_addr(), client.clone(), "nt.test").expect("TLS");
        c.echo(b"x").expect("echo");
        assert_eq!(c.tls.handshake_kind(), Some(HandshakeKind::Full));
    }
    common::wait_for_no_connections(&server);
}

/// ALPN: the server offers `h2` and `http/1.1`; a client offering
/// `http/1.1` gets it (and the handler sees it); one offering nothing
/// gets none; one offering only `foo` fails the handshake with
/// `no_application_protocol`, which the handler hears as a TLS error
/// without ever becoming active.
#[test]
fn alpn_chooses_a_common_protocol_or_refuses() {
    let pki = Pki::new("alpn", &["alpn.test"]);
    let tls_server = TlsServer::builder()
        .certificate_files(pki.cert("alpn.test"), pki.key("alpn.test"))
        .expect("certificate")
        .alpn(["h2", "http/1.1"])
        .build()
        .expect("TLS server");
    common::for_each(Config::all(), |config| {
        let seen = Seen::new();
        let server = probe_server(config, tls_server.clone(), &seen, true);
        for version in [&TLS13, &TLS12] {
            let mut client = pki.rustls_client_with(&[version], &[]);
            client.alpn_protocols = vec![b"http/1.1".to_vec()];
            let mut c = Client::connect(server.local_addr(), Arc::new(client), "alpn.test")
                .expect("handshake with http/1.1");
            c.echo(b"GET").expect("echo");
            assert_eq!(c.tls.alpn_protocol(), Some(&b"http/1.1"[..]));
            let info = seen.infos().pop().expect("the handler became active");
            assert_eq!(info.alpn.as_deref(), Some(&b"http/1.1"[..]), "{config}");

            let client = pki.rustls_client_with(&[version], &[]);
            let mut c =
                Client::connect(server.local_addr(), Arc::new(client), "alpn.test").expect("TLS");
            c.echo(b"GET").expect("echo");
            assert_eq!(seen.infos().pop().expect("active").alpn, None, "{config}");

            let active = seen.log.count("active");
            let errors = seen.errors().len();
            let mut client = pki.rustls_client_with(&[version], &[]);
            client.alpn_protocols = vec![b"foo".to_vec()];
            let refused = Client::connect(server.local_addr(), Arc::new(client), "alpn.test");
            let error = refused
                .err()
                .expect("a handshake without a common protocol");
            let inner = error
                .get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>())
                .cloned();
            assert_eq!(
                inner,
                Some(rustls::Error::AlertReceived(
                    rustls::AlertDescription::NoApplicationProtocol
                )),
                "{config}: {version:?}: {error}"
            );
            common::wait_until(WAIT, "the server's TLS error", || {
                seen.errors().len() > errors
            });
            let error = seen.errors().pop().expect("a TLS error");
            assert_eq!(
                error,
                wharf::tls::TlsError::Handshake(rustls::Error::NoApplicationProtocol),
                "{config}"
            );
            assert_eq!(seen.log.count("active"), active, "{config}: never active");
        }
        common::wait_for_no_connections(&server);
        // Every channel ends with on_inactive, the failed ones too (in the
        // worker modes it runs on a worker, after the count dropped).
        common::wait_until(WAIT, "on_inactive for every channel", || {
            let log = seen.log.snapshot();
            log.iter().filter(|e| *e == "inactive").count()
                == log.iter().filter(|e| *e == "active").count() + seen.errors().len()
        });
    });
}

/// SNI: the server picks the certificate by the name the client asks
/// for (the client verifies it for that name, and it is byte for byte the
/// one configured), tells the handler the name, and serves the default
/// certificate for names it has none for, and to clients that send no
/// name (an IP address).
#[test]
fn sni_chooses_the_certificate_by_name() {
    let pki = Pki::new("sni", &[]);
    for (file, sans) in [
        (
            "default",
            &["default.example", "c.example", "127.0.0.1"][..],
        ),
        ("a", &["a.example"][..]),
        ("b", &["b.example"][..]),
    ] {
        pki.leaf(file, sans, KeyKind::EcdsaP256, |_| {});
    }
    let tls_server = TlsServer::builder()
        .certificate_files(pki.cert("default"), pki.key("default"))
        .expect("default certificate")
        .sni_files("a.example", pki.cert("a"), pki.key("a"))
        .expect("a")
        .sni_files("B.Example", pki.cert("b"), pki.key("b"))
        .expect("b")
        .build()
        .expect("TLS server");
    common::for_each(Config::all(), |config| {
        let seen = Seen::new();
        let server = probe_server(config, tls_server.clone(), &seen, true);
        for version in [&TLS13, &TLS12] {
            let client = Arc::new(pki.rustls_client_with(&[version], &[]));
            for (asked, file, told) in [
                ("a.example", "a", Some("a.example")),
                ("b.example", "b", Some("b.example")),
                ("c.example", "default", Some("c.example")),
                ("127.0.0.1", "default", None),
            ] {
                let mut c = Client::connect(server.local_addr(), client.clone(), asked)
                    .unwrap_or_else(|e| panic!("{config}: {version:?}: {asked}: {e}"));
                c.echo(b"hello").expect("echo");
                let served = c.tls.peer_certificates().expect("a certificate")[0].clone();
                assert!(
                    served == pki.cert_der(file),
                    "{config}: {asked}: not the certificate of {file}"
                );
                let info = seen.infos().pop().expect("active");
                assert_eq!(info.server_name.as_deref(), told, "{config}: {version:?}");
            }
        }
        common::wait_for_no_connections(&server);
    });
}

/// The server name reaches the handler even when the client's hello is
/// split over several records (rustls's `max_fragment_size`), which TLS
/// allows and the certificate choice (rustls's) handles. A check of the
/// protocol (one configuration).
#[test]
fn sni_of_a_fragmented_client_hello_reaches_the_handler() {
    let pki = Pki::new("snifrag", &["default.example"]);
    pki.leaf("a", &["a.example"], KeyKind::EcdsaP256, |_| {});
    let tls_server = TlsServer::builder()
        .certificate_files(pki.cert("default.example"), pki.key("default.example"))
        .expect("default certificate")
        .sni_files("a.example", pki.cert("a"), pki.key("a"))
        .expect("a")
        .build()
        .expect("TLS server");
    let config = Config::all()[0];
    let seen = Seen::new();
    let server = probe_server(config, tls_server, &seen, true);
    let mut client = pki.rustls_client_with(&[&TLS13], &[]);
    client.max_fragment_size = Some(64);
    let mut c = Client::connect(server.local_addr(), Arc::new(client), "a.example")
        .expect("the right certificate for a fragmented hello");
    c.echo(b"hi").expect("echo");
    let info = seen.infos().pop().expect("active");
    assert_eq!(info.server_name.as_deref(), Some("a.example"));
    drop(c);
    common::wait_for_no_connections(&server);
}

/// A handler that echoes and, on reading `close`, closes; on input
/// shutdown (with half-closure) writes a summary and closes; on reading
/// `shut`, writes `last words` and shuts its output down.
struct Closer {
    seen: Seen,
    received: usize,
    shut: bool,
}

impl wharf::Handler for Closer {
    type In = wharf::buf::ByteBuf;
    type Out = wharf::buf::ByteBuf;

    fn on_active(&mut self, _ctx: &mut wharf::Context<'_, wharf::buf::ByteBuf>) {
        self.seen.log.push("active");
    }

    fn on_read(
        &mut self,
        ctx: &mut wharf::Context<'_, wharf::buf::ByteBuf>,
        msg: wharf::buf::ByteBuf,
    ) {
        self.received += msg.len();
        self.seen
            .bytes
            .fetch_add(msg.len(), std::sync::atomic::Ordering::SeqCst);
        match &msg[..] {
            b"close" => {
                ctx.write(common::buf_of(ctx.allocator(), b"bye"));
                ctx.close();
            }
            b"shut" => {
                ctx.write(common::buf_of(ctx.allocator(), b"last words"));
                ctx.flush();
                ctx.shutdown_output();
                self.shut = true;
            }
            _ if !self.shut => ctx.write(msg),
            _ => {}
        }
    }

    fn on_read_complete(&mut self, ctx: &mut wharf::Context<'_, wharf::buf::ByteBuf>) {
        ctx.flush();
    }

    fn on_input_shutdown(&mut self, ctx: &mut wharf::Context<'_, wharf::buf::ByteBuf>) {
        self.seen.log.push("input_shutdown");
        if self.shut {
            ctx.close();
            return;
        }
        let summary = format!("received {}", self.received);
        ctx.write(common::buf_of(ctx.allocator(), summary.as_bytes()));
        ctx.close();
    }

    fn on_error(
        &mut self,
        ctx: &mut wharf::Context<'_, wharf::buf::ByteBuf>,
        error: &wharf::ChannelError,
    ) {
        tls::record_error(&self.seen, error);
        ctx.close();
    }

    fn on_inactive(&mut self, _ctx: &mut wharf::Context<'_, wharf::buf::ByteBuf>) {
        self.seen.log.push("inactive");
    }
}

fn closer_server(config: Config, pki: &Pki, seen: &Seen, half_closure: bool) -> Server {
    let seen = seen.clone();
    config
        .server()
        .tls(pki.server("close.test"))
        .allow_half_closure(half_closure)
        .child_handler(move || {
            Pipeline::bytes(Closer {
                seen: seen.clone(),
                received: 0,
                shut: false,
            })
        })
        .bind("127.0.0.1:0")
        .expect("bind")
}

/// `ctx.close()` sends what was written, then `close_notify`: the client
/// reads a clean end of the TLS stream, not a truncation.
#[test]
fn a_server_close_ends_with_close_notify() {
    let pki = Pki::new("close", &["close.test"]);
    let client = pki.rustls_client();
    common::for_each(Config::all(), |config| {
        let seen = Seen::new();
        let server = closer_server(config, &pki, &seen, false);
        for version in [&TLS13, &TLS12] {
            let client = Arc::new(pki.rustls_client_with(&[version], &[]));
            let mut c = Client::connect(server.local_addr(), client, "close.test").expect("TLS");
            c.echo(&pattern(1, 20_000)).expect("echo");
            c.send(b"close").expect("send close");
            let (data, end) = c.read_to_end();
            assert_eq!(data, b"bye", "{config}: {version:?}");
            assert!(
                matches!(end, End::CloseNotify),
                "{config}: {version:?}: the stream ended with {end:?}"
            );
        }
        // The same through rustls's own stream: read() returns 0.
        let mut stream =
            tls::connect(server.local_addr(), client.clone(), "close.test").expect("TLS");
        stream.write_all(b"close").expect("send");
        let mut got = Vec::new();
        let end = std::io::Read::read_to_end(&mut stream, &mut got);
        assert!(end.is_ok(), "{config}: read_to_end gave {end:?}");
        assert_eq!(got, b"bye");
        common::wait_for_no_connections(&server);
        assert!(seen.errors().is_empty(), "{config}: {:?}", seen.errors());
    });
}

/// The client's `close_notify` ends the server's input: without
/// half-closure the channel closes (after sending the echo of what came
/// before, and its own `close_notify`); with it, the handler hears
/// `on_input_shutdown`, and what it writes then still reaches the client.
#[test]
fn a_client_close_notify_ends_the_input() {
    let pki = Pki::new("closenotify", &["close.test"]);
    common::for_each(Config::all(), |config| {
        for half_closure in [false, true] {
            let seen = Seen::new();
            let server = closer_server(config, &pki, &seen, half_closure);
            for version in [&TLS13, &TLS12] {
                let before = seen.log.count("inactive");
                let client = Arc::new(pki.rustls_client_with(&[version], &[]));
                let mut c =
                    Client::connect(server.local_addr(), client, "close.test").expect("TLS");
                let data = pattern(7, 3000);
                c.send(&data).expect("send");
                c.tls.send_close_notify();
                c.flush().expect("send close_notify");
                let (got, end) = c.read_to_end();
                let what = format!("{config}: half-closure {half_closure}: {version:?}");
                let expected = if half_closure {
                    let mut e = data.clone();
                    e.extend_from_slice(b"received 3000");
                    e
                } else {
                    data.clone()
                };
                assert!(
                    got == expected,
                    "{what}: got {} bytes, {:?}",
                    got.len(),
                    String::from_utf8_lossy(&got[got.len().saturating_sub(20)..])
                );
                assert!(matches!(end, End::CloseNotify), "{what}: {end:?}");
                common::wait_until(WAIT, "the channel's end", || {
                    seen.log.count("inactive") > before
                });
                assert_eq!(
                    seen.log.count("input_shutdown"),
                    if half_closure { before + 1 } else { 0 },
                    "{what}: {:?}",
                    seen.log.snapshot()
                );
            }
            assert!(
                seen.errors().is_empty(),
                "{config}: {:?}",
                seen.log.snapshot()
            );
            common::wait_for_no_connections(&server);
        }
    });
}

/// `shutdown_output()` sends what was written, `close_notify` and the
/// FIN; the client reads a clean end, and can still send: the server reads
/// it.
#[test]
fn shutdown_output_sends_close_notify_and_keeps_reading() {
    let pki = Pki::new("shutdown", &["close.test"]);
    common::for_each(Config::all(), |config| {
        let seen = Seen::new();
        let server = closer_server(config, &pki, &seen, true);
        for version in [&TLS13, &TLS12] {
            let client = Arc::new(pki.rustls_client_with(&[version], &[]));
            let mut c = Client::connect(server.local_addr(), client, "close.test").expect("TLS");
            c.send(b"shut").expect("send");
            let (got, end) = c.read_to_end();
            let what = format!("{config}: {version:?}");
            assert_eq!(got, b"last words", "{what}");
            assert!(matches!(end, End::CloseNotify), "{what}: {end:?}");
            // The FIN follows close_notify.
            let mut rest = [0u8; 64];
            let n = std::io::Read::read(&mut c.tcp, &mut rest).expect("read after close_notify");
            assert_eq!(n, 0, "{what}: bytes after close_notify");
            let before = seen.bytes();
            let late = pattern(9, 40_000);
            c.send(&late).expect("send after the server's shutdown");
            common::wait_until(WAIT, "the server to read the late bytes", || {
                seen.bytes() == before + late.len()
            });
            let inactive = seen.log.count("inactive");
            c.tls.send_close_notify();
            c.flush().expect("close_notify");
            common::wait_until(WAIT, "the channel to close", || {
                seen.log.count("inactive") > inactive
            });
        }
        assert!(
            seen.errors().is_empty(),
            "{config}: {:?}",
            seen.log.snapshot()
        );
        common::wait_for_no_connections(&server);
    });
}
