//! TLS for the tests: certificates made on the spot (rcgen; no key is
//! shipped), the server and client settings built from them, and a
//! blocking rustls client that does not go through wharf's own code.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use wharf::tls::rustls::pki_types::{CertificateDer, ServerName};
use wharf::tls::rustls::{self, ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use wharf::tls::{TlsClient, TlsServer};

/// A CA and leaf certificates it signed, as PEM files in a directory of
/// their own.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_der: CertificateDer<'static>,
}

impl Pki {
    /// A CA, and a leaf for each name in `names` (the first also answers
    /// `localhost` and 127.0.0.1), written as `<name>.pem`/`<name>.key`.
    pub fn new(tag: &str, names: &[&str]) -> Pki {
        let dir = std::env::temp_dir().join(format!("wharf-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "wharf test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA cert");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write CA");
        let issuer = Issuer::new(ca_params, ca_key);
        for (i, name) in names.iter().enumerate() {
            let mut sans = vec![name.to_string()];
            if i == 0 {
                sans.push("localhost".to_string());
                sans.push("127.0.0.1".to_string());
            }
            let key = KeyPair::generate().expect("leaf key");
            let params = CertificateParams::new(sans).expect("leaf params");
            let cert = params.signed_by(&key, &issuer).expect("leaf cert");
            std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write cert");
            std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem())
                .expect("write key");
        }
        Pki {
            dir,
            ca_der: ca.der().clone(),
        }
    }

    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Server settings with `name`'s certificate.
    pub fn server(&self, name: &str) -> TlsServer {
        TlsServer::from_pem_files(self.cert(name), self.key(name)).expect("TLS server settings")
    }

    /// wharf client settings trusting the CA, for `server_name`.
    pub fn client(&self, server_name: &str) -> TlsClient {
        TlsClient::builder()
            .ca_file(self.ca())
            .expect("CA file")
            .build(server_name)
            .expect("TLS client settings")
    }

    /// A rustls client configuration trusting the CA.
    pub fn rustls_client(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("CA root");
        Arc::new(
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A blocking TLS client connection (rustls over a std socket).
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Connects to `addr` and completes the handshake as `server_name`.
pub fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    server_name: &str,
) -> io::Result<TlsStream> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(30)))?;
    let name = ServerName::try_from(server_name.to_string()).map_err(io::Error::other)?;
    let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// One client connection of [`echo_all`].
struct Conn {
    stream: mio::net::TcpStream,
    tls: ClientConnection,
    payload: Vec<u8>,
    sent: usize,
    received: usize,
}

/// [`driver::echo_all`](super::driver::echo_all) over TLS: each payload
/// on its own connection (rustls on a non-blocking socket, one thread),
/// written as plaintext in writes of 1 to `max_write` bytes while the
/// echo is read back and checked byte for byte.
pub fn echo_all(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    server_name: &str,
    payloads: Vec<Vec<u8>>,
    max_write: usize,
    seed: u64,
    limit: Duration,
) -> Result<(), String> {
    use mio::{Events, Interest, Poll, Token};
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(1024);
    let mut rng = super::Rng::new(seed);
    let name = ServerName::try_from(server_name.to_string()).map_err(|e| e.to_string())?;
    let mut conns = std::collections::HashMap::new();
    for (i, payload) in payloads.into_iter().enumerate() {
        let mut stream = mio::net::TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        poll.registry()
            .register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        let tls = ClientConnection::new(config.clone(), name.clone()).map_err(|e| e.to_string())?;
        conns.insert(
            i,
            Conn {
                stream,
                tls,
                payload,
                sent: 0,
                received: 0,
            },
        );
    }
    let deadline = std::time::Instant::now() + limit;
    let mut scratch = vec![0u8; 256 << 10];
    let total = conns.len();
    let mut done = 0;
    while done < total {
        if std::time::Instant::now() > deadline {
            let stuck: Vec<_> = conns
                .iter()
                .map(|(i, c)| (*i, c.sent, c.received, c.payload.len()))
                .take(5)
                .collect();
            return Err(format!(
                "timed out after {limit:?}: {done}/{total} done; stuck (conn, sent, received, len): {stuck:?}"
            ));
        }
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        // Every connection makes what progress it can on each wake-up
        // (edge-triggered: an event may cover several readinesses).
        let ids: Vec<usize> = conns.keys().copied().collect();
        for i in ids {
            let conn = conns.get_mut(&i).expect("present");
            // Plaintext in while little ciphertext waits.
            while conn.sent < conn.payload.len()
                && !conn.tls.wants_write()
                && !conn.tls.is_handshaking()
            {
                let size = rng.range(1, max_write).min(conn.payload.len() - conn.sent);
                let n = conn
                    .tls
                    .writer()
                    .write(&conn.payload[conn.sent..conn.sent + size])
                    .map_err(|e| format!("conn {i}: tls write: {e}"))?;
                conn.sent += n;
            }
            // Ciphertext out.
            while conn.tls.wants_write() {
                match conn.tls.write_tls(&mut conn.stream) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("conn {i}: write: {e}")),
                }
            }
            // Ciphertext in, plaintext checked.
            loop {
                match conn.tls.read_tls(&mut conn.stream) {
                    Ok(0) => {
                        if conn.received < conn.payload.len() {
                            return Err(format!(
                                "conn {i}: closed after {} of {} bytes",
                                conn.received,
                                conn.payload.len()
                            ));
                        }
                        break;
                    }
                    Ok(_) => {
                        conn.tls
                            .process_new_packets()
                            .map_err(|e| format!("conn {i}: TLS: {e}"))?;
                        loop {
                            match conn.tls.reader().read(&mut scratch) {
                                Ok(0) => break,
                                Ok(n) => {
                                    let end = conn.received + n;
                                    if end > conn.payload.len()
                                        || scratch[..n] != conn.payload[conn.received..end]
                                    {
                                        return Err(format!(
                                            "conn {i}: bytes {}..{end} differ from what was sent",
                                            conn.received
                                        ));
                                    }
                                    conn.received = end;
                                }
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(e) => return Err(format!("conn {i}: plaintext: {e}")),
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("conn {i}: read: {e}")),
                }
            }
            if conn.received == conn.payload.len() && conn.sent == conn.payload.len() {
                let mut conn = conns.remove(&i).expect("present");
                let _ = poll.registry().deregister(&mut conn.stream);
                done += 1;
            }
        }
    }
    Ok(())
}
