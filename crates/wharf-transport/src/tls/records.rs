//! The TLS record layer after the handshake: records sealed and opened in
//! place, in the channel's pooled buffers.
//!
//! rustls runs the handshake; once it is done, the connection's traffic
//! keys are taken out of it (its kernel-connection API, the one kTLS uses)
//! and records are protected here, with `ring`'s AEAD on the bytes where
//! they lie: a read buffer is decrypted where it was read, and plaintext is
//! encrypted where it was copied (or read from a file) into the outgoing
//! buffer. rustls's own record path allocates a vector per record in each
//! direction; this one allocates nothing per record.
//!
//! Formats (RFC 8446 §5.2, RFC 5288, RFC 7905):
//!
//! ```text
//! TLS 1.3          header(23, 0x0303, len) | AEAD(plaintext | type) | tag
//! TLS 1.2 AES-GCM  header(type, 0x0303, len) | explicit nonce (8) | AEAD(plaintext) | tag
//! TLS 1.2 ChaCha   header(type, 0x0303, len) | AEAD(plaintext) | tag
//! ```
//!
//! The nonce is the connection's IV XOR the record's sequence number (for
//! TLS 1.2 AES-GCM, its last eight bytes travel as the explicit nonce).
//! The additional data is the record header in TLS 1.3, and sequence
//! number, type, version and plaintext length in TLS 1.2.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use rustls::ConnectionTrafficSecrets;

use crate::tls::error::TlsError;

/// Bytes of a record header.
pub(crate) const HEADER: usize = 5;
/// Bytes of an AEAD tag (every suite here uses 16).
const TAG: usize = 16;
/// Largest plaintext a record may carry (RFC 8446 §5.1).
pub(crate) const MAX_PLAINTEXT: usize = 1 << 14;
/// Largest ciphertext a peer's record may carry: TLS 1.2 allows 2048
/// bytes of expansion, TLS 1.3 256.
pub(crate) const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 2048;
/// Largest whole record a peer may send.
pub(crate) const MAX_RECORD: usize = HEADER + MAX_CIPHERTEXT;

/// A record's content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentType {
    /// `change_cipher_spec` (20).
    ChangeCipherSpec,
    /// `alert` (21).
    Alert,
    /// `handshake` (22).
    Handshake,
    /// `application_data` (23).
    ApplicationData,
}

impl ContentType {
    fn byte(self) -> u8 {
        match self {
            ContentType::ChangeCipherSpec => 20,
            ContentType::Alert => 21,
            ContentType::Handshake => 22,
            ContentType::ApplicationData => 23,
        }
    }

    fn from_byte(b: u8) -> Option<ContentType> {
        Some(match b {
            20 => ContentType::ChangeCipherSpec,
            21 => ContentType::Alert,
            22 => ContentType::Handshake,
            23 => ContentType::ApplicationData,
            _ => return None,
        })
    }
}

/// The record format of the negotiated version and suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// TLS 1.3, any suite.
    Tls13,
    /// TLS 1.2 with AES-GCM (explicit nonce).
    Tls12Gcm,
    /// TLS 1.2 with ChaCha20-Poly1305.
    Tls12Chacha,
}

impl Format {
    /// Bytes before the plaintext in a sealed record.
    pub(crate) fn prefix(self) -> usize {
        match self {
            Format::Tls12Gcm => HEADER + 8,
            Format::Tls13 | Format::Tls12Chacha => HEADER,
        }
    }

    /// Bytes after the plaintext in a sealed record.
    pub(crate) fn suffix(self) -> usize {
        match self {
            Format::Tls13 => 1 + TAG,
            Format::Tls12Gcm | Format::Tls12Chacha => TAG,
        }
    }

    /// Bytes a record adds to its plaintext.
    pub(crate) fn overhead(self) -> usize {
        self.prefix() + self.suffix()
    }
}

/// One direction's keys and sequence number.
pub(crate) struct RecordCipher {
    format: Format,
    key: LessSafeKey,
    iv: [u8; aead::NONCE_LEN],
    seq: u64,
}

impl std::fmt::Debug for RecordCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordCipher")
            .field("format", &self.format)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// Where an opened record's content lies in the record's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Opened {
    /// The inner content type.
    pub kind: ContentType,
    /// Offset of the content from the record's start.
    pub start: usize,
    /// Length of the content.
    pub len: usize,
}

impl RecordCipher {
    /// A cipher for `format` from rustls's traffic secrets, starting at
    /// sequence number `seq`.
    pub(crate) fn new(
        format: Format,
        secrets: ConnectionTrafficSecrets,
        seq: u64,
    ) -> Result<RecordCipher, TlsError> {
        let (algorithm, key, iv) = match &secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, key, iv)
            }
            _ => return Err(TlsError::protocol("a cipher suite this record layer lacks")),
        };
        let format = match (format, algorithm == &aead::CHACHA20_POLY1305) {
            (Format::Tls13, _) => Format::Tls13,
            (_, true) => Format::Tls12Chacha,
            (_, false) => Format::Tls12Gcm,
        };
        let key = UnboundKey::new(algorithm, key.as_ref())
            .map_err(|_| TlsError::protocol("a traffic key of the wrong length"))?;
        let iv: [u8; aead::NONCE_LEN] = iv
            .as_ref()
            .try_into()
            .map_err(|_| TlsError::protocol("a traffic IV of the wrong length"))?;
        Ok(RecordCipher {
            format,
            key: LessSafeKey::new(key),
            iv,
            seq,
        })
    }

    /// The record format.
    pub(crate) fn format(&self) -> Format {
        self.format
    }

    /// Records protected so far with these keys.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// The nonce of the next record: the IV XOR the sequence number.
    fn nonce(&self) -> [u8; aead::NONCE_LEN] {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        nonce
    }

    /// The TLS 1.2 additional data.
    fn aad12(&self, kind: u8, len: usize) -> [u8; 13] {
        let mut aad = [0u8; 13];
        aad[..8].copy_from_slice(&self.seq.to_be_bytes());
        aad[8] = kind;
        aad[9..11].copy_from_slice(&[3, 3]);
        aad[11..].copy_from_slice(&(len as u16).to_be_bytes());
        aad
    }

    /// Takes the next sequence number.
    fn advance(&mut self) -> Result<(), TlsError> {
        self.seq = self
            .seq
            .checked_add(1)
            .ok_or_else(|| TlsError::protocol("the record sequence number ran out"))?;
        Ok(())
    }

    /// Seals the record in `record`: its plaintext (`len` bytes, at most
    /// [`MAX_PLAINTEXT`]) is already at [`Format::prefix`]; `record` is
    /// exactly `prefix + len + suffix` bytes. Writes the header, nonce,
    /// inner type and tag around it and encrypts it in place.
    pub(crate) fn seal(
        &mut self,
        record: &mut [u8],
        kind: ContentType,
        len: usize,
    ) -> Result<(), TlsError> {
        let format = self.format;
        debug_assert!(len <= MAX_PLAINTEXT);
        debug_assert_eq!(record.len(), format.overhead() + len);
        let nonce = self.nonce();
        let body = record.len() - HEADER;
        let (header, rest) = record.split_at_mut(HEADER);
        let outer = if format == Format::Tls13 {
            ContentType::ApplicationData
        } else {
            kind
        };
        header.copy_from_slice(&[outer.byte(), 3, 3, (body >> 8) as u8, body as u8]);
        let nonce_for_key = Nonce::assume_unique_for_key(nonce);
        let tag = match format {
            Format::Tls13 => {
                rest[len] = kind.byte();
                let aad = Aad::from(&*header);
                self.key
                    .seal_in_place_separate_tag(nonce_for_key, aad, &mut rest[..len + 1])
            }
            Format::Tls12Gcm => {
                rest[..8].copy_from_slice(&nonce[4..]);
                let aad = self.aad12(kind.byte(), len);
                self.key.seal_in_place_separate_tag(
                    nonce_for_key,
                    Aad::from(aad),
                    &mut rest[8..8 + len],
                )
            }
            Format::Tls12Chacha => {
                let aad = self.aad12(kind.byte(), len);
                self.key
                    .seal_in_place_separate_tag(nonce_for_key, Aad::from(aad), &mut rest[..len])
            }
        }
        .map_err(|_| TlsError::protocol("sealing a record failed"))?;
        let end = rest.len();
        rest[end - TAG..].copy_from_slice(tag.as_ref());
        self.advance()
    }

    /// Opens the whole record at the start of `record` (header included,
    /// `record.len()` its exact length) in place; returns where its
    /// content lies. A record that fails authentication, or is malformed,
    /// is an error: the connection cannot go on.
    pub(crate) fn open(&mut self, record: &mut [u8]) -> Result<Opened, TlsError> {
        let (header, rest) = record.split_at_mut(HEADER);
        let outer = ContentType::from_byte(header[0])
            .ok_or_else(|| TlsError::protocol("a record of an unknown content type"))?;
        if rest.len() > MAX_CIPHERTEXT {
            return Err(TlsError::protocol("a record longer than TLS allows"));
        }
        let nonce = self.nonce();
        let opened = match self.format {
            Format::Tls13 => {
                if outer != ContentType::ApplicationData {
                    return Err(TlsError::protocol(
                        "an unprotected record after the handshake",
                    ));
                }
                let aad = Aad::from(&*header);
                let plain = self
                    .key
                    .open_in_place(Nonce::assume_unique_for_key(nonce), aad, rest)
                    .map_err(|_| TlsError::BadRecordMac)?;
                // The inner type is the last non-zero byte; zeros after
                // it are padding.
                let end = plain
                    .iter()
                    .rposition(|&b| b != 0)
                    .ok_or_else(|| TlsError::protocol("a record without a content type"))?;
                let kind = ContentType::from_byte(plain[end])
                    .filter(|&k| k != ContentType::ChangeCipherSpec)
                    .ok_or_else(|| TlsError::protocol("a record of an unknown inner type"))?;
                Opened {
                    kind,
                    start: HEADER,
                    len: end,
                }
            }
            Format::Tls12Gcm => {
                if rest.len() < 8 + TAG {
                    return Err(TlsError::protocol("a record too short to be sealed"));
                }
                let len = rest.len() - 8 - TAG;
                let mut explicit = self.iv;
                explicit[4..].copy_from_slice(&rest[..8]);
                let aad = self.aad12(outer.byte(), len);
                self.key
                    .open_in_place(
                        Nonce::assume_unique_for_key(explicit),
                        Aad::from(aad),
                        &mut rest[8..],
                    )
                    .map_err(|_| TlsError::BadRecordMac)?;
                Opened {
                    kind: outer,
                    start: HEADER + 8,
                    len,
                }
            }
            Format::Tls12Chacha => {
                if rest.len() < TAG {
                    return Err(TlsError::protocol("a record too short to be sealed"));
                }
                let len = rest.len() - TAG;
                let aad = self.aad12(outer.byte(), len);
                self.key
                    .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), rest)
                    .map_err(|_| TlsError::BadRecordMac)?;
                Opened {
                    kind: outer,
                    start: HEADER,
                    len,
                }
            }
        };
        if opened.len > MAX_PLAINTEXT {
            return Err(TlsError::protocol(
                "a record's plaintext longer than TLS allows",
            ));
        }
        self.advance()?;
        Ok(opened)
    }
}

/// The length of the whole record that starts `bytes`, once its header is
/// there; an error for a header no TLS peer sends (the first bytes of a
/// plain-text request, say).
pub(crate) fn record_len(bytes: &[u8]) -> Result<Option<usize>, TlsError> {
    if bytes.len() < HEADER {
        return Ok(None);
    }
    if ContentType::from_byte(bytes[0]).is_none() || bytes[1] != 3 {
        return Err(TlsError::protocol("bytes that are not a TLS record"));
    }
    let len = u16::from_be_bytes([bytes[3], bytes[4]]) as usize;
    if len > MAX_CIPHERTEXT {
        return Err(TlsError::protocol("a record longer than TLS allows"));
    }
    Ok(Some(HEADER + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::crypto::cipher::{AeadKey, Iv};

    fn secrets(chacha: bool) -> ConnectionTrafficSecrets {
        let key = AeadKey::from([7u8; 32]);
        let iv = Iv::new([9u8; 12]);
        if chacha {
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv }
        } else {
            ConnectionTrafficSecrets::Aes256Gcm { key, iv }
        }
    }

    fn pair(format: Format, chacha: bool) -> (RecordCipher, RecordCipher) {
        (
            RecordCipher::new(format, secrets(chacha), 0).expect("keys"),
            RecordCipher::new(format, secrets(chacha), 0).expect("keys"),
        )
    }

    fn sealed(tx: &mut RecordCipher, kind: ContentType, data: &[u8]) -> Vec<u8> {
        let f = tx.format();
        let mut record = vec![0u8; f.overhead() + data.len()];
        record[f.prefix()..f.prefix() + data.len()].copy_from_slice(data);
        tx.seal(&mut record, kind, data.len()).expect("seal");
        record
    }

    #[test]
    fn every_format_round_trips_and_counts_records() {
        for (format, chacha) in [
            (Format::Tls13, false),
            (Format::Tls13, true),
            (Format::Tls12Gcm, false),
            (Format::Tls12Chacha, true),
        ] {
            let (mut tx, mut rx) = pair(format, chacha);
            for (i, len) in [0usize, 1, 100, MAX_PLAINTEXT].into_iter().enumerate() {
                let data: Vec<u8> = (0..len).map(|b| (b * 31 + i) as u8).collect();
                let mut record = sealed(&mut tx, ContentType::ApplicationData, &data);
                assert_eq!(record_len(&record).unwrap(), Some(record.len()));
                if len > 0 {
                    let sealed = &record[format.prefix()..][..len];
                    assert_ne!(sealed, &data[..], "{format:?} encrypts");
                }
                let opened = rx.open(&mut record).expect("open");
                assert_eq!(opened.kind, ContentType::ApplicationData);
                assert_eq!(&record[opened.start..opened.start + opened.len], &data[..]);
            }
            assert_eq!((tx.seq(), rx.seq()), (4, 4));
        }
    }

    #[test]
    fn the_inner_type_survives_tls13_sealing() {
        let (mut tx, mut rx) = pair(Format::Tls13, false);
        let mut record = sealed(&mut tx, ContentType::Alert, &[1, 0]);
        assert_eq!(record[0], 23, "TLS 1.3 hides the type");
        let opened = rx.open(&mut record).expect("open");
        assert_eq!((opened.kind, opened.len), (ContentType::Alert, 2));
    }

    #[test]
    fn tampering_replay_and_reordering_fail_authentication() {
        for (format, chacha) in [(Format::Tls13, false), (Format::Tls12Gcm, false)] {
            let (mut tx, mut rx) = pair(format, chacha);
            let first = sealed(&mut tx, ContentType::ApplicationData, b"one");
            let second = sealed(&mut tx, ContentType::ApplicationData, b"two");
            let mut flipped = first.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 1;
            assert_eq!(rx.open(&mut flipped), Err(TlsError::BadRecordMac));
            let (_, mut rx2) = pair(format, chacha);
            // The second record first: its sequence number does not match.
            let mut out_of_order = second.clone();
            assert_eq!(rx2.open(&mut out_of_order), Err(TlsError::BadRecordMac));
        }
    }

    #[test]
    fn headers_that_are_not_tls_are_refused_early() {
        assert!(record_len(b"GET / HTTP/1.1\r\n").is_err());
        assert!(record_len(&[23, 3, 3, 0xff, 0xff]).is_err());
        assert_eq!(record_len(&[23, 3, 3]).unwrap(), None);
        assert_eq!(record_len(&[22, 3, 1, 0, 10]).unwrap(), Some(15));
    }
}
