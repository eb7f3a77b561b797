//! The decoded request: head and whole body in one message, so that a
//! handler answers requests rather than reassembling them.

use http::header::AsHeaderName;
use http::{HeaderMap, HeaderValue, Method, Uri, Version};
use wharf_buf::ByteBuf;

/// One complete request, as [`HttpServerCodec`](crate::HttpServerCodec)
/// decodes it: the head and the body, aggregated up to
/// [`HttpLimits::max_body`](crate::HttpLimits::max_body).
///
/// The body of a `Content-Length` request shares the memory it was read
/// into (no copy); a chunked body is reassembled into one buffer.
///
/// Threading: a plain `Send + Sync` value.
///
/// ```
/// use wharf_codec::HttpServerCodec;
/// use wharf_transport::Codec;
/// use wharf_transport::buf::ByteBuf;
///
/// let mut codec = HttpServerCodec::new();
/// let mut input = ByteBuf::new();
/// input.extend_from_slice(b"POST /echo?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
/// let mut requests = Vec::new();
/// codec.decode(&mut input, &mut requests).unwrap();
/// let request = requests.pop().unwrap().unwrap();
/// assert_eq!(request.path(), "/echo");
/// assert_eq!(request.query(), Some("x=1"));
/// assert_eq!(&request.body[..], b"hi");
/// assert!(request.keep_alive);
/// ```
#[derive(Debug, PartialEq)]
pub struct HttpRequest {
    /// One of the nine standard methods (others are refused with 501).
    pub method: Method,
    /// The request target: origin-form (`/path?query`), absolute-form
    /// (`http://host/path`), authority-form (`host:port`, CONNECT only) or
    /// `*` (OPTIONS only). In absolute-form, the target's authority names
    /// the host, not `Host` (RFC 9112 §3.2.2).
    pub uri: Uri,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The header fields, in order; names are lower-case.
    pub headers: HeaderMap,
    /// The body: empty when the request has none.
    pub body: ByteBuf,
    /// The trailer fields of a chunked body, kept apart from `headers`
    /// (RFC 9110 §6.5.1); usually empty.
    pub trailers: HeaderMap,
    /// Whether the connection stays open after the response: HTTP/1.1
    /// unless `Connection: close`, HTTP/1.0 only with
    /// `Connection: keep-alive`, and never after a chunked HTTP/1.0
    /// request (RFC 9112 §6.1).
    pub keep_alive: bool,
    /// The length of a body the codec handed over instead of reading it
    /// (see [`HttpServerCodec::hand_over_bodies`](crate::HttpServerCodec::hand_over_bodies)):
    /// the request came at its head, `body` is empty, and the handler
    /// takes the bytes with
    /// [`Context::receive_file`](wharf_transport::Context::receive_file)
    /// or [`Context::skip_input`](wharf_transport::Context::skip_input)
    /// (or closes the connection). `None` otherwise.
    pub unread_body: Option<u64>,
}

impl HttpRequest {
    /// The path of the target (`*` for `OPTIONS *`, empty for CONNECT's
    /// `host:port`), still percent-encoded.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The query string after `?`, if any, still percent-encoded.
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    /// The first value of header `name`.
    pub fn header<K: AsHeaderName>(&self, name: K) -> Option<&HeaderValue> {
        self.headers.get(name)
    }

    /// The first value of header `name`, if it is visible ASCII.
    pub fn header_str<K: AsHeaderName>(&self, name: K) -> Option<&str> {
        self.header(name).and_then(|value| value.to_str().ok())
    }

    /// Whether the method is HEAD: the response has headers only (see
    /// [`HttpResponse::head_only`](crate::HttpResponse::head_only)).
    pub fn is_head(&self) -> bool {
        self.method == Method::HEAD
    }
}
