//! wharf's TLS *client*: a `Bootstrap` with a `TlsClient` against a wharf
//! TLS server (every reactor mode × trigger × allocator, the client's
//! group in the same trigger and allocator) and against a rustls server
//! that does not go through wharf (both triggers, TLS 1.3 and 1.2, over
//! 127.0.0.1 and ::1). A certificate the client must not accept (another
//! name, an unknown CA, expired) and a server that never answers each end
//! the connect with an error: the handler hears `ChannelError::Tls`, and
//! never `on_active`.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::tls::{Pki, Seen};
use common::{Config, Rng, pattern};
use wharf::buf::ByteBuf;
use wharf::tls::rustls::pki_types::pem::PemObject;
use wharf::tls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use wharf::tls::rustls::version::{TLS12, TLS13};
use wharf::tls::rustls::{
    self, AlertDescription, CertificateError, ServerConfig, ServerConnection, StreamOwned,
};
use wharf::tls::{TlsClient, TlsError};
use wharf::{Bootstrap, ChannelHandle, EventLoopGroup, Pipeline, Server, Trigger};

const WAIT: Duration = Duration::from_secs(10);

/// A wharf TLS server in `config` whose handlers echo and record into
/// `seen`.
fn echo_server(config: Config, pki: &Pki, name: &str, seen: &Seen) -> Server {
    let seen = seen.clone();
    config
        .server()
        .tls(pki.server(name))
        .child_handler(move || Pipeline::bytes(seen.probe(true)))
        .bind("127.0.0.1:0")
        .expect("bind")
}

/// A client group in `config`'s trigger, and a bootstrap on it in its
/// allocator with `tls`.
fn client(config: Config, tls: TlsClient) -> (EventLoopGroup, Bootstrap) {
    let group = EventLoopGroup::new(1, config.trigger).expect("client group");
    let bootstrap = Bootstrap::new(&group)
        .allocator(config.allocator())
        .tls(tls);
    (group, bootstrap)
}

/// Writes `data` through `handle` in pieces of random sizes and waits
/// until `seen` (the client's non-echoing probe) has read it all back.
fn echo_through(handle: &ChannelHandle<ByteBuf>, seen: &Seen, data: &[u8], seed: u64, what: &str) {
    let mut rng = Rng::new(seed);
    let mut sent = 0;
    while sent < data.len() {
        let n = rng.range(1, 256 << 10).min(data.len() - sent);
        let mut buf = wharf::buf::Allocator::unpooled().buffer(n);
        buf.extend_from_slice(&data[sent..sent + n]);
        handle.write_and_flush(buf);
        sent += n;
    }
    common::wait_until(WAIT, &format!("{what}: the echo"), || {
        seen.received.lock().unwrap().len() >= data.len()
    });
    let back = seen.take_received();
    assert!(
        back == data,
        "{what}: the echo differs ({} bytes back)",
        back.len()
    );
}

/// The client connects (its `connect` returns after `on_active`), sees
/// what was negotiated, echoes a megabyte in random pieces byte for byte
/// over TLS 1.3 and 1.2, resumes its session on a second connection (the
/// tickets of a wharf server reach a wharf client), and its `close()`
/// ends both channels cleanly (its `close_notify` ends the server's input:
/// no error on either side).
#[test]
fn a_wharf_client_and_a_wharf_server_echo_and_resume() {
    let pki = Pki::new("client-wharf", &["server.test"]);
    let data = pattern(41, (1 << 20) + 17);
    common::for_each(Config::all(), |config| {
        let server_seen = Seen::new();
        let server = echo_server(config, &pki, "server.test", &server_seen);
        for version in [&TLS13, &TLS12] {
            let what = format!("{config}: {:?}", version.version);
            let tls = TlsClient::from_config(
                Arc::new(pki.rustls_client_with(&[version], &[])),
                "server.test",
            )
            .expect("client settings");
            let (group, bootstrap) = client(config, tls);
            for round in 0..2 {
                let seen = Seen::new();
                let handle = bootstrap
                    .connect(server.local_addr(), Pipeline::bytes(seen.probe(false)))
                    .unwrap_or_else(|e| panic!("{what}: connect: {e}"));
                assert_eq!(seen.log.snapshot(), ["active"], "{what}");
                let info = seen.infos().pop().expect("the client's TLS info");
                assert_eq!(info.version, version.version, "{what}");
                assert_eq!(info.resumed, round == 1, "{what}: round {round}: resumed");
                assert_eq!(
                    info.server_name.as_deref(),
                    Some("server.test"),
                    "{what}: the name the client connected as"
                );
                assert_eq!(
                    info.peer_certificates.first(),
                    Some(&pki.cert_der("server.test")),
                    "{what}: the server's certificate"
                );
                // (The server may become active after the client.)
                common::wait_until(WAIT, "the server's on_active", || {
                    server_seen.infos().len() == round + 1 + 2 * usize::from(*version == TLS12)
                });
                let server_info = server_seen.infos().pop().expect("the server's TLS info");
                assert_eq!(server_info.server_name.as_deref(), Some("server.test"));
                assert_eq!(server_info.resumed, round == 1, "{what}: the server's view");
                echo_through(&handle, &seen, &data, round as u64, &what);
                handle.close();
                seen.log.wait_for(WAIT, "inactive");
                common::wait_until(WAIT, "the server's channel to close", || {
                    server.connections() == 0
                });
                assert!(
                    seen.errors().is_empty(),
                    "{what}: {:?}",
                    seen.log.snapshot()
                );
            }
            common::wait_until(WAIT, "the group's connections to end", || {
                group.connections() == 0
            });
        }
        assert!(
            server_seen.errors().is_empty(),
            "{config}: the server's errors: {:?}",
            server_seen.log.snapshot()
        );
        common::wait_until(WAIT, "every server channel's on_inactive", || {
            server_seen.log.count("inactive") == 4
        });
    });
}

/// A rustls server on plain threads, one per connection: it echoes until
/// it reads `close`, then answers `bye` and sends `close_notify`; or until
/// the client's `close_notify` (which it counts). ALPN `wharf-test`.
struct RustlsServer {
    addr: SocketAddr,
    clean_ends: Arc<AtomicUsize>,
}

impl RustlsServer {
    fn start(
        pki: &Pki,
        name: &str,
        ip: &str,
        version: &'static rustls::SupportedProtocolVersion,
    ) -> RustlsServer {
        let chain = CertificateDer::pem_file_iter(pki.cert(name))
            .expect("certificate file")
            .collect::<Result<Vec<_>, _>>()
            .expect("certificates");
        let key = PrivateKeyDer::from_pem_file(pki.key(name)).expect("key");
        let mut config = ServerConfig::builder_with_provider(common::tls::provider(&[]))
            .with_protocol_versions(&[version])
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        config.alpn_protocols = vec![b"wharf-test".to_vec()];
        let config = Arc::new(config);
        let listener = TcpListener::bind(format!("{ip}:0")).expect("bind");
        let addr = listener.local_addr().expect("address");
        let clean_ends = Arc::new(AtomicUsize::new(0));
        let ends = Arc::clone(&clean_ends);
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { return };
                let config = Arc::clone(&config);
                let ends = Arc::clone(&ends);
                std::thread::spawn(move || {
                    tcp.set_read_timeout(Some(WAIT)).expect("timeout");
                    let conn = ServerConnection::new(config).expect("server connection");
                    let mut stream = StreamOwned::new(conn, tcp);
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        match stream.read(&mut buf) {
                            // The client's close_notify.
                            Ok(0) => {
                                ends.fetch_add(1, Ordering::SeqCst);
                                stream.conn.send_close_notify();
                                let _ = stream.flush();
                                return;
                            }
                            Ok(n) if &buf[..n] == b"close" => {
                                let _ = stream.write_all(b"bye");
                                stream.conn.send_close_notify();
                                let _ = stream.flush();
                                return;
                            }
                            Ok(n) => {
                                if stream.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                            Err(_) => return,
                        }
                    }
                });
            }
        });
        RustlsServer { addr, clean_ends }
    }
}

/// Against rustls's own server (TLS 1.3 and 1.2, IPv4 and IPv6): the
/// client negotiates ALPN, echoes byte for byte, ends with `close_notify`
/// (the server reads a clean end, not a truncation), and honours the
/// server's `close_notify` (what came before it arrives, then the input
/// ends without an error).
#[test]
fn a_wharf_client_against_a_rustls_server() {
    let pki = Pki::new("client-rustls", &["rustls.test"]);
    let data = pattern(43, 300_000);
    for trigger in [Trigger::Edge, Trigger::Level] {
        for version in [&TLS13, &TLS12] {
            for ip in ["127.0.0.1", "[::1]"] {
                let what = format!("{trigger:?}: {:?}: {ip}", version.version);
                let server = RustlsServer::start(&pki, "rustls.test", ip, version);
                let tls = TlsClient::builder()
                    .ca_file(pki.ca())
                    .expect("CA")
                    .alpn(["wharf-test"])
                    .build("rustls.test")
                    .expect("client settings");
                let config = Config {
                    mode: wharf::ReactorMode::Single,
                    trigger,
                    pooled: true,
                };
                let (group, bootstrap) = client(config, tls);

                let seen = Seen::new();
                let handle = bootstrap
                    .connect(server.addr, Pipeline::bytes(seen.probe(false)))
                    .unwrap_or_else(|e| panic!("{what}: connect: {e}"));
                let info = seen.infos().pop().expect("TLS info");
                assert_eq!(info.alpn.as_deref(), Some(&b"wharf-test"[..]), "{what}");
                assert_eq!(info.version, version.version, "{what}");
                echo_through(&handle, &seen, &data, 5, &what);
                handle.close();
                common::wait_until(WAIT, "the server to read close_notify", || {
                    server.clean_ends.load(Ordering::SeqCst) == 1
                });
                seen.log.wait_for(WAIT, "inactive");

                let seen = Seen::new();
                let handle = bootstrap
                    .connect(server.addr, Pipeline::bytes(seen.probe(false)))
                    .unwrap_or_else(|e| panic!("{what}: connect: {e}"));
                handle.write_and_flush(common::buf_of(config.allocator(), b"close"));
                seen.log.wait_for(WAIT, "inactive");
                assert_eq!(seen.take_received(), b"bye", "{what}");
                assert!(
                    seen.errors().is_empty() && seen.log.count("error") == 0,
                    "{what}: the server's close_notify is a clean end: {:?}",
                    seen.log.snapshot()
                );
                common::wait_until(WAIT, "the group's connections to end", || {
                    group.connections() == 0
                });
            }
        }
    }
}

/// The certificate error a failed client connect carries.
fn certificate_error(error: &std::io::Error) -> Option<CertificateError> {
    match error.get_ref()?.downcast_ref::<TlsError>()? {
        TlsError::Handshake(rustls::Error::InvalidCertificate(e)) => Some(e.clone()),
        _ => None,
    }
}

/// A server certificate for another name, one no CA the client trusts
/// signed (self-signed), and an expired one: `connect` fails (`ConnectionAborted`,
/// carrying the `TlsError`), the client's handler hears
/// `ChannelError::Tls` and `on_inactive` and never `on_active`, and the
/// server hears the alert the client sent (`bad_certificate`,
/// `unknown_ca`, `certificate_expired`).
#[test]
fn a_certificate_the_client_must_refuse_fails_the_connect() {
    let pki = Pki::new("client-refuse", &["right.test"]);
    pki.leaf(
        "expired",
        &["right.test"],
        common::tls::KeyKind::EcdsaP256,
        |p| {
            p.not_before = rcgen::date_time_ymd(2000, 1, 1);
            p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        },
    );
    pki.self_signed("stranger", &["right.test"]);
    type Check = fn(&CertificateError) -> bool;
    let cases: [(&str, &str, &str, Check, AlertDescription); 3] = [
        (
            "another name",
            "right.test",
            "wrong.test",
            |e| {
                matches!(
                    e,
                    CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. }
                )
            },
            AlertDescription::BadCertificate,
        ),
        (
            "no trusted issuer",
            "stranger",
            "right.test",
            |e| *e == CertificateError::UnknownIssuer,
            AlertDescription::UnknownCA,
        ),
        (
            "expired",
            "expired",
            "right.test",
            |e| {
                matches!(
                    e,
                    CertificateError::Expired | CertificateError::ExpiredContext { .. }
                )
            },
            AlertDescription::CertificateExpired,
        ),
    ];
    common::for_each(Config::all(), |config| {
        for (case, cert, asked, check, alert) in cases {
            let what = format!("{config}: {case}");
            let server_seen = Seen::new();
            let server = echo_server(config, &pki, cert, &server_seen);
            let (_group, bootstrap) = client(config, pki.client(asked));
            let seen = Seen::new();
            let error = bootstrap
                .connect(server.local_addr(), Pipeline::bytes(seen.probe(false)))
                .err()
                .unwrap_or_else(|| panic!("{what}: the connect succeeded"));
            assert_eq!(
                error.kind(),
                ErrorKind::ConnectionAborted,
                "{what}: {error}"
            );
            let found = certificate_error(&error);
            assert!(
                found.as_ref().is_some_and(check),
                "{what}: {error} ({found:?})"
            );
            seen.log.wait_for(WAIT, "inactive");
            let log = seen.log.snapshot();
            assert_eq!(log.len(), 2, "{what}: {log:?}");
            assert!(
                log[0].starts_with("error:tls:Handshake(InvalidCertificate"),
                "{what}: {log:?}"
            );
            assert_eq!(seen.errors().len(), 1, "{what}");
            common::wait_until(WAIT, "the server's TLS error", || {
                !server_seen.errors().is_empty()
            });
            assert_eq!(
                server_seen.errors(),
                [TlsError::Handshake(rustls::Error::AlertReceived(alert))],
                "{what}: the server's view"
            );
            assert_eq!(server_seen.log.count("active"), 0, "{what}");
            common::wait_for_no_connections(&server);
        }
    });
}

/// A server that accepts and never answers: the client's handshake
/// times out (its own timeout, not the connect timeout), `connect` fails
/// and the handler hears `HandshakeTimeout`, never `on_active`.
#[test]
fn a_server_that_never_answers_times_the_client_handshake_out() {
    let pki = Pki::new("client-timeout", &["silent.test"]);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let timeout = Duration::from_millis(300);
    for trigger in [Trigger::Edge, Trigger::Level] {
        let config = Config {
            mode: wharf::ReactorMode::Single,
            trigger,
            pooled: true,
        };
        let tls = pki
            .client("silent.test")
            .handshake_timeout(timeout)
            .expect("timeout");
        let (_group, bootstrap) = client(config, tls);
        let seen = Seen::new();
        let started = std::time::Instant::now();
        let error = bootstrap
            .connect(
                listener.local_addr().expect("address"),
                Pipeline::bytes(seen.probe(false)),
            )
            .expect_err("a connect without a handshake");
        let took = started.elapsed();
        assert!(
            took >= timeout,
            "{trigger:?}: failed after {took:?}: {error}"
        );
        assert_eq!(
            error.get_ref().and_then(|e| e.downcast_ref::<TlsError>()),
            Some(&TlsError::HandshakeTimeout(timeout)),
            "{trigger:?}: {error}"
        );
        seen.log.wait_for(WAIT, "inactive");
        assert_eq!(
            seen.log.snapshot(),
            [
                format!("error:tls:{:?}", TlsError::HandshakeTimeout(timeout)),
                "inactive".to_string()
            ],
            "{trigger:?}"
        );
    }
}
