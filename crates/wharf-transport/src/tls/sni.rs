//! The server name a ClientHello asks for (RFC 6066 §3), read from the
//! first handshake record: rustls's unbuffered server connection does not
//! expose it, and handlers want it (virtual hosts, logs).
//!
//! Every length is checked against what is left; anything malformed is
//! simply "no name" (rustls rejects the hello itself).

/// The host name in the ClientHello that `record` (a whole TLS record, or
/// its start) begins with.
pub(crate) fn client_hello_server_name(record: &[u8]) -> Option<String> {
    let mut r = Reader(record);
    // Record header: handshake, version, length.
    if r.u8()? != 22 {
        return None;
    }
    r.skip(4)?;
    // Handshake header: client_hello, 24-bit length.
    if r.u8()? != 1 {
        return None;
    }
    r.skip(3)?;
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
            client_hello_server_name(&hello(&exts)).as_deref(),
            Some("files.example")
        );
    }

    #[test]
    fn no_name_without_the_extension_or_with_bad_lengths() {
        assert_eq!(client_hello_server_name(&hello(&[])), None);
        let mut bad = hello(&sni(b"a.example"));
        let len = bad.len();
        bad.truncate(len - 3);
        assert_eq!(client_hello_server_name(&bad), None);
        assert_eq!(client_hello_server_name(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(client_hello_server_name(&[]), None);
    }
}
