//! A small HTTP/1.1 client over a blocking `TcpStream`, independent of
//! wharf: raw request bytes out, responses parsed in order (several
//! pipelined ones from one connection), and the server's close told apart
//! from a response.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Bytes a response head may take before the client gives up on it.
const MAX_HEAD: usize = 64 << 10;

/// One parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    pub status: u16,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `Content-Length`, parsed.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("bad Content-Length {v:?}"))
        })
    }

    /// Whether `Connection` lists `token`.
    pub fn connection_has(&self, token: &str) -> bool {
        self.headers_named("connection")
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The body as text (lossy), for messages and listings.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How the server ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// An orderly end of stream.
    Eof,
    /// A reset (or an abort) instead.
    Reset,
}

/// The bytes of a connection: plain TCP, or TLS (rustls) over it.
enum Conn {
    Plain(TcpStream),
    Tls(Box<crate::common::tls::TlsStream>),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Plain(_) => "Plain",
            Conn::Tls(_) => "Tls",
        })
    }
}

impl Conn {
    fn socket(&mut self) -> &mut TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &mut s.sock,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// One connection to the server under test.
#[derive(Debug)]
pub struct Client {
    stream: Conn,
    /// Bytes read past the last response: the start of the next.
    pending: Vec<u8>,
}

/// `METHOD target HTTP/1.1` with `Host` and `extra` header lines.
pub fn request(method: &str, target: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

impl Client {
    /// Connects with 20 s read and write timeouts.
    pub fn connect(addr: SocketAddr) -> Client {
        Client::from_stream(crate::common::connect(addr))
    }

    /// Connects over TLS (20 s timeouts), trusting what `config` trusts,
    /// for the server name `localhost`.
    pub fn connect_tls(
        addr: SocketAddr,
        config: std::sync::Arc<wharf::tls::rustls::ClientConfig>,
    ) -> Client {
        let stream = crate::common::tls::connect(addr, config, "localhost")
            .unwrap_or_else(|e| panic!("TLS connect to {addr}: {e}"));
        Client {
            stream: Conn::Tls(Box::new(stream)),
            pending: Vec::new(),
        }
    }

    /// Wraps a connected stream.
    pub fn from_stream(stream: TcpStream) -> Client {
        Client {
            stream: Conn::Plain(stream),
            pending: Vec::new(),
        }
    }

    /// The socket (under TLS, if any), for timeouts and raw reads.
    pub fn stream(&mut self) -> &mut TcpStream {
        self.stream.socket()
    }

    /// Sets the read timeout.
    pub fn read_timeout(&mut self, timeout: Duration) {
        self.stream
            .socket()
            .set_read_timeout(Some(timeout))
            .expect("read timeout");
    }

    /// Writes `bytes` whole.
    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes).expect("send a request");
    }

    /// Writes `bytes`, where the server may already have closed.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Sends a request and reads its response.
    pub fn call(&mut self, method: &str, target: &str, extra: &[(&str, &str)]) -> Response {
        self.send(&request(method, target, extra));
        self.response(method == "HEAD")
            .unwrap_or_else(|e| panic!("{method} {target}: no response: {e}"))
    }

    /// `GET target`.
    pub fn get(&mut self, target: &str) -> Response {
        self.call("GET", target, &[])
    }

    /// `GET target` with extra header lines.
    pub fn get_with(&mut self, target: &str, extra: &[(&str, &str)]) -> Response {
        self.call("GET", target, extra)
    }

    /// `HEAD target` with extra header lines.
    pub fn head_with(&mut self, target: &str, extra: &[(&str, &str)]) -> Response {
        self.call("HEAD", target, extra)
    }

    /// Reads one response: the head, then the body framed by
    /// `Content-Length` (none for HEAD, 1xx, 204 and 304; to the end of
    /// the stream when there is no length).
    pub fn response(&mut self, to_head: bool) -> io::Result<Response> {
        let mut response = self.response_head()?;
        let no_body =
            to_head || response.status < 200 || response.status == 204 || response.status == 304;
        if no_body {
            return Ok(response);
        }
        match response.content_length() {
            Some(len) => {
                let len = usize::try_from(len).expect("a body that fits in memory");
                response.body = self.body_bytes(len)?;
            }
            None => {
                let (rest, _) = self.read_until_closed();
                response.body = rest;
            }
        }
        Ok(response)
    }

    /// Reads a response head (status line and fields), leaving its body
    /// to be read.
    pub fn response_head(&mut self) -> io::Result<Response> {
        let mut scanned = 0;
        let end = loop {
            if let Some(at) = self.pending[scanned..]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
            {
                break scanned + at + 4;
            }
            scanned = self.pending.len().saturating_sub(3);
            if self.pending.len() > MAX_HEAD {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "response head too long",
                ));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the connection ended before a response head ({} bytes: {:?})",
                        self.pending.len(),
                        String::from_utf8_lossy(&self.pending)
                    ),
                ));
            }
        };
        let head: Vec<u8> = self.pending.drain(..end).collect();
        parse_head(&head)
    }

    /// Exactly `n` bytes, from what is already read and then the socket.
    pub fn body_bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let from_pending = n.min(self.pending.len());
        let mut body = Vec::with_capacity(n);
        body.extend(self.pending.drain(..from_pending));
        body.resize(n, 0);
        self.stream.read_exact(&mut body[from_pending..])?;
        Ok(body)
    }

    /// Some bytes of what follows (what is already read first, then one
    /// read from the socket): 0 at the end of the stream.
    pub fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.pending.is_empty() {
            let n = buf.len().min(self.pending.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            return Ok(n);
        }
        self.stream.read(buf)
    }

    /// Everything until the stream ends, and how it ended (`Ok` for end of
    /// stream, the error otherwise).
    pub fn read_until_closed(&mut self) -> (Vec<u8>, io::Result<()>) {
        let mut data = std::mem::take(&mut self.pending);
        let (rest, end) = crate::common::read_until_closed(&mut self.stream);
        data.extend_from_slice(&rest);
        (data, end)
    }

    /// Asserts that the server closes the connection without sending
    /// anything more, within the read timeout; says how.
    pub fn expect_closed(&mut self) -> Closed {
        assert!(
            self.pending.is_empty(),
            "unexpected bytes after the last response: {:?}",
            String::from_utf8_lossy(&self.pending)
        );
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Closed::Eof,
                Ok(n) => panic!(
                    "expected the server to close, got {n} more bytes: {:?}",
                    String::from_utf8_lossy(&buf[..n])
                ),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_reset(&e) => return Closed::Reset,
                Err(e) => panic!("expected the server to close, got {e}"),
            }
        }
    }

    /// Reads once more from the socket into `pending`; 0 at end of stream
    /// (a reset counts as the end here: what came before it stays).
    fn fill(&mut self) -> io::Result<usize> {
        let mut buf = [0u8; 64 << 10];
        loop {
            match self.stream.read(&mut buf) {
                Ok(n) => {
                    self.pending.extend_from_slice(&buf[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_reset(&e) => return Ok(0),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether `e` is the peer resetting or aborting the connection.
pub fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Parses a complete head, ending with its empty line.
fn parse_head(head: &[u8]) -> io::Result<Response> {
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what}: {:?}", String::from_utf8_lossy(head)),
        )
    };
    let text = std::str::from_utf8(head).map_err(|_| bad("response head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_string();
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(bad("bad version in the status line"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| bad("bad status code"))?;
    let mut headers = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or_else(|| bad("bad header line"))?;
        if name.is_empty() || name.contains(' ') {
            return Err(bad("bad header name"));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok(Response {
        version,
        status,
        headers,
        body: Vec::new(),
    })
}

/// The position of the first byte where `got` and `want` differ (or where
/// the shorter ends), for failure messages.
pub fn first_difference(got: &[u8], want: &[u8]) -> Option<usize> {
    if got == want {
        return None;
    }
    Some(
        got.iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len())),
    )
}
