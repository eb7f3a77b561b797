//! What a TLS channel's handshake settled, for its handler
//! ([`Context::tls`](crate::Context::tls)).

use rustls::pki_types::CertificateDer;
use rustls::{CipherSuite, HandshakeKind, ProtocolVersion};

/// The outcome of a channel's TLS handshake.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsInfo {
    /// TLS 1.3 or 1.2.
    pub version: ProtocolVersion,
    /// The negotiated cipher suite.
    pub cipher_suite: CipherSuite,
    /// The application protocol ALPN chose, if any (for example
    /// `b"http/1.1"`).
    pub alpn: Option<Vec<u8>>,
    /// The server name the client asked for (SNI), if it sent one; on a
    /// client channel, the name it connected as (what the server's
    /// certificate was checked against).
    pub server_name: Option<String>,
    /// Whether the session was resumed from a ticket (no full handshake).
    pub resumed: bool,
    /// The peer's certificate chain, leaf first: the server's on a client
    /// channel, the client's on a server channel that asked for one.
    pub peer_certificates: Vec<CertificateDer<'static>>,
}

impl TlsInfo {
    pub(crate) fn from_state(state: &rustls::CommonState, server_name: Option<String>) -> TlsInfo {
        TlsInfo {
            version: state.protocol_version().unwrap_or(ProtocolVersion::TLSv1_3),
            cipher_suite: state
                .negotiated_cipher_suite()
                .map(|s| s.suite())
                .unwrap_or(CipherSuite::Unknown(0)),
            alpn: state.alpn_protocol().map(<[u8]>::to_vec),
            server_name,
            resumed: state.handshake_kind() == Some(HandshakeKind::Resumed),
            peer_certificates: state
                .peer_certificates()
                .map(|c| c.to_vec())
                .unwrap_or_default(),
        }
    }
}
