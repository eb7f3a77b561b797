//! TLS for the tests: certificates made on the spot (rcgen, through the
//! benches' `certs`; the one key shipped is a throwaway RSA key, see
//! [`KeyKind`]), the server and client settings built from them, and a
//! blocking rustls client that does not go through wharf's own code.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rcgen::KeyPair;
use wharf::tls::rustls::pki_types::{CertificateDer, ServerName};
use wharf::tls::rustls::{self, ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use wharf::tls::{TlsClient, TlsServer};

#[path = "../../benches/support/certs.rs"]
mod certs;
use certs::{Leaf, TestCerts};

/// A CA and leaf certificates it signed (made by the benches' `certs`,
/// shared), as PEM files in a directory of their own.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_der: CertificateDer<'static>,
    certs: TestCerts,
}

impl Pki {
    /// A CA, and a leaf for each name in `names` (the first also answers
    /// `localhost` and 127.0.0.1), written as `<name>.pem`/`<name>.key`.
    pub fn new(tag: &str, names: &[&str]) -> Pki {
        let dir = std::env::temp_dir().join(format!("wharf-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let certs = TestCerts::new(names, |_, _| {});
        certs.write_to(&dir, names).expect("write the certificates");
        Pki {
            dir,
            ca_der: certs.ca_der.clone(),
            certs,
        }
    }

    /// A leaf signed by the CA, for `sans`, with a `kind` key, written as
    /// `<file>.pem`/`<file>.key`; `edit` may change its parameters (its
    /// validity, say) before it is signed.
    pub fn leaf(
        &self,
        file: &str,
        sans: &[&str],
        kind: KeyKind,
        edit: impl FnOnce(&mut rcgen::CertificateParams),
    ) {
        self.write(file, &self.certs.leaf(sans, kind.generate(), edit));
    }

    /// A self-signed certificate (no CA vouches for it) for `sans`.
    pub fn self_signed(&self, file: &str, sans: &[&str]) {
        self.write(file, &certs::self_signed(sans));
    }

    fn write(&self, file: &str, leaf: &Leaf) {
        std::fs::write(self.cert(file), &leaf.cert_pem).expect("write cert");
        std::fs::write(self.key(file), &leaf.key_pem).expect("write key");
    }

    /// The DER of `file`'s certificate (the leaf).
    pub fn cert_der(&self, file: &str) -> CertificateDer<'static> {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_file(self.cert(file)).expect("read the certificate")
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

/// A throwaway RSA key for the tests' RSA certificates: `ring` (rcgen's
/// backend here) cannot generate RSA keys, so this one was made with
/// `openssl genpkey` for the tests alone; it protects nothing.
const RSA_TEST_KEY: &str = include_str!("rsa_test_key.pem");

/// The key type of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    EcdsaP256,
    EcdsaP384,
    Ed25519,
    Rsa2048,
}

impl KeyKind {
    pub fn generate(self) -> KeyPair {
        match self {
            KeyKind::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyKind::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyKind::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
            KeyKind::Rsa2048 => KeyPair::from_pem(RSA_TEST_KEY),
        }
        .expect("a key pair")
    }
}

/// rustls's ring provider, limited to `suites` (all of them if empty).
pub fn provider(suites: &[rustls::SupportedCipherSuite]) -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !suites.is_empty() {
        provider.cipher_suites = suites.to_vec();
    }
    Arc::new(provider)
}

impl Pki {
    /// A rustls client configuration trusting the CA, speaking only
    /// `versions` with only `suites` (every suite if empty), to edit
    /// further (ALPN, fragment size, secret extraction) before use.
    pub fn rustls_client_with(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        suites: &[rustls::SupportedCipherSuite],
    ) -> ClientConfig {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("CA root");
        ClientConfig::builder_with_provider(provider(suites))
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth()
    }
}

/// What a [`Probe`] saw: its events in order (`active`, `input_shutdown`,
/// `error:tls:<TlsError as Debug>`, `error:io:<kind>`, `error:other:…`,
/// `inactive`), the TLS outcome of each channel that became active, the
/// TLS errors, and the bytes read (all of them if it does not echo).
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub log: super::EventLog,
    pub infos: Arc<std::sync::Mutex<Vec<wharf::tls::TlsInfo>>>,
    pub errors: Arc<std::sync::Mutex<Vec<wharf::tls::TlsError>>>,
    pub bytes: Arc<std::sync::atomic::AtomicUsize>,
    pub received: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Seen {
    pub fn new() -> Seen {
        Seen::default()
    }

    pub fn infos(&self) -> Vec<wharf::tls::TlsInfo> {
        self.infos.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn errors(&self) -> Vec<wharf::tls::TlsError> {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn bytes(&self) -> usize {
        self.bytes.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Takes the bytes a non-echoing probe read so far.
    pub fn take_received(&self) -> Vec<u8> {
        std::mem::take(&mut *self.received.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A handler recording into this, echoing if `echo`.
    pub fn probe(&self, echo: bool) -> Probe {
        Probe {
            seen: self.clone(),
            echo,
        }
    }
}

/// A server handler that records what happens to its channel (see
/// [`Seen`]) and, if asked, echoes.
#[derive(Debug)]
pub struct Probe {
    pub seen: Seen,
    pub echo: bool,
}

impl wharf::Handler for Probe {
    type In = wharf::buf::ByteBuf;
    type Out = wharf::buf::ByteBuf;

    fn on_active(&mut self, ctx: &mut wharf::Context<'_, wharf::buf::ByteBuf>) {
        if let Some(info) = ctx.tls() {
            self.seen
                .infos
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(info.clone());
        }
        self.seen.log.push("active");
    }

    fn on_read(
        &mut self,
        ctx: &mut wharf::Context<'_, wharf::buf::ByteBuf>,
        msg: wharf::buf::ByteBuf,
    ) {
        self.seen
            .bytes
            .fetch_add(msg.len(), std::sync::atomic::Ordering::SeqCst);
        if self.echo {
            ctx.write(msg);
        } else {
            self.seen
                .received
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(&msg);
        }
    }

    fn on_read_complete(&mut self, ctx: &mut wharf::Context<'_, wharf::buf::ByteBuf>) {
        ctx.flush();
    }

    fn on_input_shutdown(&mut self, _ctx: &mut wharf::Context<'_, wharf::buf::ByteBuf>) {
        self.seen.log.push("input_shutdown");
    }

    fn on_error(
        &mut self,
        ctx: &mut wharf::Context<'_, wharf::buf::ByteBuf>,
        error: &wharf::ChannelError,
    ) {
        record_error(&self.seen, error);
        ctx.close();
    }

    fn on_inactive(&mut self, _ctx: &mut wharf::Context<'_, wharf::buf::ByteBuf>) {
        self.seen.log.push("inactive");
    }
}

/// Records `error` in `seen`'s log (and its TLS errors).
pub fn record_error(seen: &Seen, error: &wharf::ChannelError) {
    match error {
        wharf::ChannelError::Tls(e) => {
            seen.errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(e.clone());
            seen.log.push(format!("error:tls:{e:?}"));
        }
        wharf::ChannelError::Io(e) => seen.log.push(format!("error:io:{:?}", e.kind())),
        other => seen.log.push(format!("error:other:{other}")),
    }
}

/// How a [`Client`]'s stream ended.
#[derive(Debug)]
pub enum End {
    /// The server's `close_notify` (then the end of the TCP stream, or not).
    CloseNotify,
    /// The TCP stream ended without `close_notify`.
    Eof,
    /// A TLS error (an alert from the server, say) or an I/O error.
    Error(io::Error),
}

/// A blocking rustls client on a std socket, step by step: a test decides
/// when ciphertext goes out (and may change it on the way) and when it
/// reads.
pub struct Client {
    pub tcp: TcpStream,
    pub tls: ClientConnection,
    /// Plaintext received and not yet taken.
    pending: Vec<u8>,
    /// The server's `close_notify` arrived.
    pub peer_closed: bool,
}

impl Client {
    /// Connects and completes the handshake.
    pub fn connect(
        addr: SocketAddr,
        config: Arc<ClientConfig>,
        server_name: &str,
    ) -> io::Result<Client> {
        let mut client = Client::start(addr, config, server_name)?;
        client.handshake()?;
        Ok(client)
    }

    /// Connects without starting the handshake.
    pub fn start(
        addr: SocketAddr,
        config: Arc<ClientConfig>,
        server_name: &str,
    ) -> io::Result<Client> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(20)))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(server_name.to_string()).map_err(io::Error::other)?;
        let tls = ClientConnection::new(config, name).map_err(io::Error::other)?;
        Ok(Client {
            tcp,
            tls,
            pending: Vec::new(),
            peer_closed: false,
        })
    }

    /// Completes the handshake.
    pub fn handshake(&mut self) -> io::Result<()> {
        while self.tls.is_handshaking() {
            self.tls.complete_io(&mut self.tcp)?;
        }
        self.flush()
    }

    /// The ciphertext rustls has ready, taken out instead of sent.
    pub fn take_tls(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.tls.wants_write() {
            self.tls
                .write_tls(&mut out)
                .expect("write TLS into a vector");
        }
        out
    }

    /// Sends the ciphertext rustls has ready.
    pub fn flush(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            self.tls.write_tls(&mut self.tcp)?;
        }
        Ok(())
    }

    /// Sends `data` (at most what rustls buffers, 64 KiB by default).
    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(16 << 10) {
            self.tls.writer().write_all(chunk)?;
            self.flush()?;
        }
        Ok(())
    }

    /// Reads one batch of records: `Ok(false)` at the end of the TCP
    /// stream.
    fn read_some(&mut self) -> io::Result<bool> {
        let n = self.tls.read_tls(&mut self.tcp)?;
        let state = self
            .tls
            .process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.peer_closed |= state.peer_has_closed();
        // An answer (a key update, say) goes out at once.
        self.flush()?;
        let mut buf = vec![0u8; state.plaintext_bytes_to_read()];
        if !buf.is_empty() {
            self.tls.reader().read_exact(&mut buf)?;
            self.pending.extend_from_slice(&buf);
        }
        Ok(n > 0)
    }

    /// Receives exactly `n` bytes of plaintext.
    pub fn recv_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.pending.len() < n {
            if self.peer_closed || !self.read_some()? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the stream ended after {} of {n} bytes", self.pending.len()),
                ));
            }
        }
        Ok(self.pending.drain(..n).collect())
    }

    /// Reads until the stream ends: the plaintext, and how it ended.
    pub fn read_to_end(&mut self) -> (Vec<u8>, End) {
        loop {
            if self.peer_closed {
                return (std::mem::take(&mut self.pending), End::CloseNotify);
            }
            match self.read_some() {
                Ok(true) => {}
                Ok(false) => {
                    let end = if self.peer_closed {
                        End::CloseNotify
                    } else {
                        End::Eof
                    };
                    return (std::mem::take(&mut self.pending), end);
                }
                Err(e) => return (std::mem::take(&mut self.pending), End::Error(e)),
            }
        }
    }

    /// Sends `data` and expects it back.
    pub fn echo(&mut self, data: &[u8]) -> io::Result<()> {
        self.send(data)?;
        let back = self.recv_exact(data.len())?;
        if back != data {
            return Err(io::Error::other("the echo differs from what was sent"));
        }
        Ok(())
    }
}

/// Whether `end` is the TLS alert `alert` from the server.
pub fn is_alert(end: &End, alert: rustls::AlertDescription) -> bool {
    match end {
        End::Error(e) => e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(|e| *e == rustls::Error::AlertReceived(alert)),
        _ => false,
    }
}

/// A real ClientHello (the bytes a rustls client sends first).
pub fn client_hello(config: Arc<ClientConfig>, server_name: &str) -> Vec<u8> {
    let name = ServerName::try_from(server_name.to_string()).expect("a server name");
    let mut conn = ClientConnection::new(config, name).expect("a client connection");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("write TLS into a vector");
    }
    out
}
