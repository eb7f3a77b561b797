//! The server name a ClientHello asks for (RFC 6066 §3): rustls's
//! unbuffered server connection does not expose it, and handlers want it
//! (virtual hosts, logs).
//!
//! The hello may be split over several handshake records (TLS allows it;
//! rustls's `max_fragment_size` does it), and rustls coalesces fragments
//! in place, so the name is read before rustls sees the input: the server
//! waits for the whole hello (`tests/tls_protocol.rs`,
//! `sni_of_a_fragmented_client_hello_reaches_the_handler`; the name was
//! once read from the first record alone, and lost).
//!
//! Every length is checked against what is left; anything malformed is
//! simply "no name" (rustls rejects the hello itself).

use std::borrow::Cow;

/// Largest plaintext record body (RFC 8446 §5.1).
const MAX_FRAGMENT: usize = 1 << 14;
/// Largest handshake message rustls accepts (its `MAX_HANDSHAKE_SIZE`).
const MAX_MESSAGE: usize = 0xffff;

/// What the start of a server's handshake input holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Hello {
    /// The start of a ClientHello: the rest is still to come.
    Partial,
    /// A whole ClientHello, asking for this server name (or none).
    Whole(Option<String>),
    /// Not a ClientHello in handshake records: rustls will say why.
    Other,
}

/// Reads the ClientHello at the start of `input` (its records, or their
/// start).
pub(crate) fn client_hello(input: &[u8]) -> Hello {
    // The handshake bytes: a view of the first record if the hello fits
    // in it, a copy of the records' bodies if it is split.
    let mut message: Cow<'_, [u8]> = Cow::Borrowed(&[]);
    let mut rest = input;
    loop {
        if let Some(len) = message_len(&message) {
            if len > MAX_MESSAGE {
                return Hello::Other;
            }
            if message.len() >= 4 + len {
                return Hello::Whole(server_name(&message[4..4 + len]));
            }
        } else if message.first().is_some_and(|&t| t != 1) {
            return Hello::Other;
        }
        let [kind, _, _, hi, lo, ..] = *rest else {
            return Hello::Partial;
        };
        let body = usize::from(u16::from_be_bytes([hi, lo]));
        if kind != 22 || body == 0 || body > MAX_FRAGMENT {
            return Hello::Other;
        }
        let Some(record) = rest.get(5..5 + body) else {
            return Hello::Partial;
        };
        rest = &rest[5 + body..];
        if message.is_empty() {
            message = Cow::Borrowed(record);
        } else {
            message.to_mut().extend_from_slice(record);
        }
    }
}

/// The body length of the ClientHello `message` starts with, once its
/// header is there.
fn message_len(message: &[u8]) -> Option<usize> {
    match *message {
        [1, a, b, c, ..] => Some(u32::from_be_bytes([0, a, b, c]) as usize),
        _ => None,
    }
}

/// The host name in a ClientHello's body.
fn server_name(hello: &[u8]) -> Option<String> {
    let mut r = Reader(hello);
    r.skip(2 + 32)?; // legacy_version, random
    let session = r.u8()? as usize;
    r.skip(session)?;
    let suites = r.u16()? as usize;
    r.skip(suites)?;
    let compression = r.u8()? as usize;
    r.skip(compression)?;
    let mut extensions = Reader(r.prefixed()?);
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let body = extensions.prefixed()?;
        if kind != 0 {
            continue;
        }
        let mut list = Reader(body);
        let mut names = Reader(list.prefixed()?);
        while !names.0.is_empty() {
            let name_type = names.u8()?;
            let name = names.prefixed()?;
            if name_type == 0 {
                let name = std::str::from_utf8(name).ok()?;
                return Some(name.to_ascii_lowercase());
            }
        }
        return None;
    }
    None
}

/// A cursor over bytes that fails instead of reading past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// Bytes preceded by their 16-bit length.
    fn prefixed(&mut self) -> Option<&'a [u8]> {
        let len = self.u16()? as usize;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello with the given extensions block.
    fn hello(extensions: &[u8]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0u8; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one suite
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
        body.extend_from_slice(extensions);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut record = vec![22, 3, 1];
        record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        record.extend_from_slice(&hs);
        record
    }

    fn sni(name: &[u8]) -> Vec<u8> {
        let mut entry = vec![0];
        entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
        entry.extend_from_slice(name);
        let mut list = (entry.len() as u16).to_be_bytes().to_vec();
        list.extend_from_slice(&entry);
        let mut ext = vec![0, 0];
        ext.extend_from_slice(&(list.len() as u16).to_be_bytes());
        ext.extend_from_slice(&list);
        ext
    }

    #[test]
    fn finds_the_name_after_other_extensions() {
        let mut exts = vec![0, 16, 0, 3, 2, b'h', b'2']; // some other extension
        exts.extend_from_slice(&sni(b"Files.Example"));
        assert_eq!(
            client_hello(&hello(&exts)),
            Hello::Whole(Some("files.example".to_string()))
        );
    }

    #[test]
    fn no_name_without_the_extension_or_with_bad_lengths() {
        assert_eq!(client_hello(&hello(&[])), Hello::Whole(None));
        // The handshake message claims more than its record holds, and
        // the next record is not a handshake record.
        let mut bad = hello(&sni(b"a.example"));
        bad[4] -= 3;
        bad.extend_from_slice(&[23, 3, 3, 0, 1, 0]);
        assert_eq!(client_hello(&bad), Hello::Other);
        assert_eq!(client_hello(b"GET / HTTP/1.1\r\n"), Hello::Other);
        assert_eq!(client_hello(&[22, 3, 1, 0, 4, 2, 0, 0, 0]), Hello::Other);
    }

    #[test]
    fn a_hello_is_partial_until_its_last_byte() {
        let whole = hello(&sni(b"a.example"));
        for cut in 0..whole.len() {
            assert_eq!(client_hello(&whole[..cut]), Hello::Partial, "{cut}");
        }
    }

    #[test]
    fn a_hello_split_over_records_is_put_together() {
        let whole = hello(&sni(b"Split.Example"));
        let message = &whole[5..];
        let mut records = Vec::new();
        for piece in message.chunks(7) {
            records.extend_from_slice(&[22, 3, 3, 0, piece.len() as u8]);
            records.extend_from_slice(piece);
        }
        for cut in 0..records.len() {
            assert_eq!(client_hello(&records[..cut]), Hello::Partial, "{cut}");
        }
        assert_eq!(
            client_hello(&records),
            Hello::Whole(Some("split.example".to_string()))
        );
    }
}
