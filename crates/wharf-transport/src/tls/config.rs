//! TLS settings for a bootstrap: [`TlsServer`] for a server's channels,
//! [`TlsClient`] for a client's, each built from PEM files (the common
//! case) or wrapping a rustls configuration the application made itself.
//!
//! The crypto provider is rustls's `ring` one: it builds from the crate
//! registry with only a C compiler (which the Rust toolchain's targets
//! already need), where `aws-lc-rs` also needs CMake and, for some
//! targets, Go and NASM. The record layer uses `ring` directly too.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::tls::verify::AcceptAnyCertificate;

/// How long a handshake may take by default.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The crypto provider every configuration here is built with.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(option: &str, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{option}: {why}"))
}

/// A certificate chain and its private key, from PEM files: the chain
/// (leaf first) in one, the key (PKCS#8, SEC1 or PKCS#1 RSA) in the
/// other. The error names the file and says what is wrong with it.
pub fn load_certified_key(cert_chain: &Path, key: &Path) -> io::Result<Arc<CertifiedKey>> {
    let chain_pem = std::fs::read(cert_chain)
        .map_err(|e| invalid(&format!("certificate {}", cert_chain.display()), e))?;
    let key_pem =
        std::fs::read(key).map_err(|e| invalid(&format!("private key {}", key.display()), e))?;
    certified_key_from_pem(&chain_pem, &key_pem).map_err(|e| {
        invalid(
            &format!("{} and {}", cert_chain.display(), key.display()),
            e,
        )
    })
}

/// A certificate chain (leaf first) and its private key (PKCS#8, SEC1 or
/// PKCS#1 RSA) from PEM text in memory; an error says which part is
/// wrong, and a key that does not belong to the leaf is refused.
pub fn certified_key_from_pem(cert_chain: &[u8], key: &[u8]) -> io::Result<Arc<CertifiedKey>> {
    let chain = CertificateDer::pem_slice_iter(cert_chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("certificate", e))?;
    if chain.is_empty() {
        return Err(invalid("certificate", "no CERTIFICATE block in the PEM"));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| invalid("private key", e))?;
    let certified = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| {
        invalid(
            "private key",
            format!("{e} (does it belong to the certificate?)"),
        )
    })?;
    Ok(Arc::new(certified))
}

/// TLS for a server's channels: set with
/// [`ServerBootstrap::tls`](crate::ServerBootstrap::tls).
///
/// ```no_run
/// use wharf_transport::tls::TlsServer;
///
/// let tls = TlsServer::builder()
///     .certificate_files("cert.pem", "key.pem")?
///     .alpn(["http/1.1"])
///     .build()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct TlsServer {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) handshake_timeout: Duration,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("alpn", &self.config.alpn_protocols)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsServer {
    /// A server with one certificate, from PEM files, and the defaults
    /// of [`TlsServerBuilder`].
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> io::Result<TlsServer> {
        TlsServer::builder()
            .certificate_files(cert_chain, key)?
            .build()
    }

    /// A builder: certificates (one default, more chosen by server name),
    /// ALPN protocols, versions, tickets.
    pub fn builder() -> TlsServerBuilder {
        TlsServerBuilder::default()
    }

    /// Wraps a rustls configuration the application built itself (client
    /// authentication, its own certificate resolver, …). It must use a
    /// `ring`-compatible cipher suite list (AES-GCM and ChaCha20-Poly1305:
    /// every suite rustls offers) and leave secret extraction to wharf:
    /// the record layer takes the traffic keys after the handshake, so
    /// `enable_secret_extraction` is switched on in a copy if it is off.
    pub fn from_config(config: Arc<ServerConfig>) -> TlsServer {
        let config = if config.enable_secret_extraction {
            config
        } else {
            let mut copy = Arc::unwrap_or_clone(config);
            copy.enable_secret_extraction = true;
            Arc::new(copy)
        };
        TlsServer {
            config,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// How long a handshake may take before the connection is closed
    /// (default 10 s). Refused if zero.
    pub fn handshake_timeout(mut self, timeout: Duration) -> io::Result<TlsServer> {
        self.handshake_timeout = checked_timeout(timeout)?;
        Ok(self)
    }

    /// The rustls configuration in use.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }
}

/// Builds a [`TlsServer`]: TLS 1.3 and 1.2, stateless session tickets
/// (rotating keys) for resumption, no client authentication.
#[derive(Debug, Default)]
pub struct TlsServerBuilder {
    default: Option<Arc<CertifiedKey>>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
    alpn: Vec<Vec<u8>>,
    tls13_only: bool,
    no_tickets: bool,
    timeout: Option<Duration>,
}

impl TlsServerBuilder {
    /// The certificate served when the client names no server, or one
    /// without a certificate of its own.
    pub fn certificate_files(
        mut self,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> io::Result<TlsServerBuilder> {
        self.default = Some(load_certified_key(cert_chain.as_ref(), key.as_ref())?);
        Ok(self)
    }

    /// The default certificate, already loaded.
    pub fn certificate(mut self, key: Arc<CertifiedKey>) -> TlsServerBuilder {
        self.default = Some(key);
        self
    }

    /// The certificate for clients that ask for `server_name` (SNI),
    /// from PEM files.
    pub fn sni_files(
        self,
        server_name: &str,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> io::Result<TlsServerBuilder> {
        let key = load_certified_key(cert_chain.as_ref(), key.as_ref())?;
        self.sni(server_name, key)
    }

    /// The certificate for clients that ask for `server_name` (SNI).
    /// Names compare without regard to case; the name must be a DNS name.
    pub fn sni(
        mut self,
        server_name: &str,
        key: Arc<CertifiedKey>,
    ) -> io::Result<TlsServerBuilder> {
        ServerName::try_from(server_name)
            .ok()
            .filter(|n| matches!(n, ServerName::DnsName(_)))
            .ok_or_else(|| invalid("sni", format!("{server_name:?} is not a DNS name")))?;
        self.by_name.insert(server_name.to_ascii_lowercase(), key);
        Ok(self)
    }

    /// Application protocols offered to ALPN, most preferred first (for
    /// example `["h2", "http/1.1"]`). A client that offers ALPN but none
    /// of these fails the handshake (`no_application_protocol`).
    pub fn alpn<P: AsRef<[u8]>>(mut self, protocols: impl IntoIterator<Item = P>) -> Self {
        self.alpn = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }

    /// Accepts TLS 1.3 only (default: 1.3 and 1.2).
    pub fn tls13_only(mut self, only: bool) -> Self {
        self.tls13_only = only;
        self
    }

    /// Turns session tickets (resumption) off (default on).
    pub fn no_tickets(mut self, off: bool) -> Self {
        self.no_tickets = off;
        self
    }

    /// How long a handshake may take (default 10 s; refused if zero).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The server settings; refused (naming the option) if no certificate
    /// was given or a setting cannot work.
    pub fn build(self) -> io::Result<TlsServer> {
        if self.default.is_none() && self.by_name.is_empty() {
            return Err(invalid(
                "certificate",
                "a TLS server needs at least one certificate and key",
            ));
        }
        if self.alpn.iter().any(|p| p.is_empty() || p.len() > 255) {
            return Err(invalid("alpn", "each protocol name is 1 to 255 bytes"));
        }
        let versions: &[&rustls::SupportedProtocolVersion] = if self.tls13_only {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let resolver = SniResolver {
            default: self.default,
            by_name: self.by_name,
        };
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .map_err(|e| invalid("versions", e))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = self.alpn;
        if self.no_tickets {
            config.send_tls13_tickets = 0;
        } else {
            config.ticketer =
                rustls::crypto::ring::Ticketer::new().map_err(|e| invalid("tickets", e))?;
        }
        let server = TlsServer::from_config(Arc::new(config));
        match self.timeout {
            Some(timeout) => server.handshake_timeout(timeout),
            None => Ok(server),
        }
    }
}

/// Chooses the certificate by the name the client asked for, falling back
/// to the default one.
#[derive(Debug)]
struct SniResolver {
    default: Option<Arc<CertifiedKey>>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        hello
            .server_name()
            .and_then(|name| self.by_name.get(&name.to_ascii_lowercase()))
            .or(self.default.as_ref())
            .cloned()
    }
}

/// TLS for a client's channels: set with
/// [`Bootstrap::tls`](crate::Bootstrap::tls).
///
/// ```no_run
/// use wharf_transport::tls::TlsClient;
///
/// let tls = TlsClient::builder()
///     .ca_file("ca.pem")?
///     .build("example.test")?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct TlsClient {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) server_name: ServerName<'static>,
    pub(crate) handshake_timeout: Duration,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// A builder: trusted roots, ALPN, versions.
    pub fn builder() -> TlsClientBuilder {
        TlsClientBuilder::default()
    }

    /// Wraps a rustls configuration the application built itself; the
    /// certificate must be valid for `server_name` (also sent as SNI).
    /// Secret extraction is switched on in a copy if it is off (see
    /// [`TlsServer::from_config`]).
    pub fn from_config(config: Arc<ClientConfig>, server_name: &str) -> io::Result<TlsClient> {
        let server_name =
            ServerName::try_from(server_name.to_string()).map_err(|e| invalid("server_name", e))?;
        let config = if config.enable_secret_extraction {
            config
        } else {
            let mut copy = Arc::unwrap_or_clone(config);
            copy.enable_secret_extraction = true;
            Arc::new(copy)
        };
        Ok(TlsClient {
            config,
            server_name,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    /// How long a handshake may take (default 10 s; refused if zero).
    pub fn handshake_timeout(mut self, timeout: Duration) -> io::Result<TlsClient> {
        self.handshake_timeout = checked_timeout(timeout)?;
        Ok(self)
    }

    /// The name the server's certificate is checked against.
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }
}

/// Builds a [`TlsClient`]: TLS 1.3 and 1.2, resumption with the tickets
/// servers send.
#[derive(Debug, Default)]
pub struct TlsClientBuilder {
    roots: Vec<CertificateDer<'static>>,
    insecure: bool,
    alpn: Vec<Vec<u8>>,
    tls13_only: bool,
}

impl TlsClientBuilder {
    /// Trusts the certificates in a PEM file as roots.
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> io::Result<TlsClientBuilder> {
        let path = path.as_ref();
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| invalid(&format!("ca {}", path.display()), e))?;
        if certs.is_empty() {
            return Err(invalid(
                &format!("ca {}", path.display()),
                "no CERTIFICATE block in the file",
            ));
        }
        self.roots.extend(certs);
        Ok(self)
    }

    /// Trusts `cert` (DER) as a root.
    pub fn root(mut self, cert: CertificateDer<'static>) -> TlsClientBuilder {
        self.roots.push(cert);
        self
    }

    /// Accepts any server certificate, unchecked. For tests and load
    /// generators against a server with a self-signed certificate only:
    /// it gives up the authentication TLS exists for.
    pub fn insecure_accept_any_certificate(mut self, insecure: bool) -> TlsClientBuilder {
        self.insecure = insecure;
        self
    }

    /// Application protocols to offer with ALPN, most preferred first.
    pub fn alpn<P: AsRef<[u8]>>(mut self, protocols: impl IntoIterator<Item = P>) -> Self {
        self.alpn = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }

    /// Speaks TLS 1.3 only (default: 1.3 and 1.2).
    pub fn tls13_only(mut self, only: bool) -> Self {
        self.tls13_only = only;
        self
    }

    /// The client settings for servers named `server_name`; refused
    /// (naming the option) if no root is trusted and checking is on, or a
    /// root or the name is unusable.
    pub fn build(self, server_name: &str) -> io::Result<TlsClient> {
        let versions: &[&rustls::SupportedProtocolVersion] = if self.tls13_only {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .map_err(|e| invalid("versions", e))?;
        let mut config = if self.insecure {
            let verifier: Arc<dyn ServerCertVerifier> = Arc::new(AcceptAnyCertificate::new());
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        } else {
            if self.roots.is_empty() {
                return Err(invalid(
                    "ca",
                    "no trusted root: give a CA file, or accept any certificate (insecure)",
                ));
            }
            let mut roots = RootCertStore::empty();
            for cert in self.roots {
                roots.add(cert).map_err(|e| invalid("ca", e))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        config.alpn_protocols = self.alpn;
        TlsClient::from_config(Arc::new(config), server_name)
    }
}

/// A handshake timeout that can work: more than zero.
fn checked_timeout(timeout: Duration) -> io::Result<Duration> {
    if timeout.is_zero() {
        return Err(invalid("handshake_timeout", "must be more than zero"));
    }
    Ok(timeout)
}
