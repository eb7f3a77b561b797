//! The TLS flags of the server examples (`--tls-cert`, `--tls-key`): with
//! both, the server speaks TLS on the same address; with neither, plain
//! TCP. Shared so that they mean the same everywhere.

use std::path::PathBuf;

use wharf::tls::TlsServer;

/// A certificate and its key, in PEM files.
#[derive(Debug, clap::Args)]
pub struct TlsArgs {
    /// PEM certificate chain (leaf first) to serve TLS with; needs --tls-key.
    #[arg(long, requires = "tls_key", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, SEC1 or RSA) of --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The TLS settings the flags describe (offering `alpn`), if any; an
    /// unreadable or mismatched file is an error naming it.
    pub fn server(&self, alpn: &[&str]) -> std::io::Result<Option<TlsServer>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let tls = TlsServer::builder()
            .certificate_files(cert, key)
            .map_err(|e| std::io::Error::new(e.kind(), format!("--tls-cert/--tls-key: {e}")))?
            .alpn(alpn)
            .build()?;
        Ok(Some(tls))
    }
}
