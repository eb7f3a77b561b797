//! Why a TLS channel failed, as the handler hears it in
//! [`ChannelError::Tls`](crate::ChannelError::Tls).

use std::fmt;
use std::time::Duration;

/// A TLS failure. The channel is closed (after sending an alert where
/// the protocol has one for it).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TlsError {
    /// The handshake failed: rustls's reason (no common version or cipher
    /// suite, a certificate the client does not trust, an alert from the
    /// peer, a malformed message, …).
    Handshake(rustls::Error),
    /// The handshake did not finish within the channel's handshake
    /// timeout.
    HandshakeTimeout(Duration),
    /// The peer sent plain text where a TLS record was due: typically an
    /// HTTP request to an HTTPS port.
    PlainText,
    /// A record failed authentication: corrupted or forged.
    BadRecordMac,
    /// The peer sent a fatal alert (its description code, RFC 8446 §6).
    Alert(u8),
    /// The peer broke the record protocol (what it did).
    Protocol(&'static str),
}

impl TlsError {
    pub(crate) fn protocol(what: &'static str) -> TlsError {
        TlsError::Protocol(what)
    }

    /// The alert this error is answered with (RFC 8446 §6.2), if any: a
    /// peer that failed authentication hears `bad_record_mac`, one that
    /// broke the protocol `unexpected_message` (or `decode_error`).
    pub(crate) fn alert(&self) -> Option<u8> {
        match self {
            TlsError::BadRecordMac => Some(20),
            TlsError::Protocol(_) => Some(10),
            TlsError::HandshakeTimeout(_) | TlsError::PlainText | TlsError::Alert(_) => None,
            // rustls queues its own alert for handshake failures.
            TlsError::Handshake(_) => None,
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Handshake(e) => write!(f, "TLS handshake failed: {e}"),
            TlsError::HandshakeTimeout(t) => {
                write!(f, "TLS handshake did not finish within {t:?}")
            }
            TlsError::PlainText => {
                f.write_str("the peer sent plain text (an HTTP request?) to a TLS port")
            }
            TlsError::BadRecordMac => f.write_str("a TLS record failed authentication"),
            TlsError::Alert(code) => write!(f, "the peer sent TLS alert {code}"),
            TlsError::Protocol(what) => write!(f, "TLS protocol violation: {what}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Handshake(e) => Some(e),
            _ => None,
        }
    }
}
