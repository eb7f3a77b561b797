//! The response a handler writes: status, header fields and a body that is
//! either in memory or a range of a file sent without copying.

use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderName};
use http::{HeaderMap, HeaderValue, StatusCode, Version};
use wharf_buf::{Allocator, ByteBuf, FrozenBuf};
use wharf_transport::FileRegion;

use super::error::HttpError;
use super::fields::EncodedFields;
use super::request::HttpRequest;

/// What the encoder counts for a response's head in
/// [`Codec::message_size`](wharf_transport::Codec::message_size).
const HEAD_ESTIMATE: usize = 256;

/// A response body.
///
/// Threading: `Send`; a `FileRegion` body is sent by the channel's loop.
#[derive(Debug, Default)]
pub enum Body {
    /// No body (`Content-Length: 0`).
    #[default]
    Empty,
    /// Bytes in a buffer (small ones are copied next to the head, larger
    /// ones go out as they are).
    Bytes(ByteBuf),
    /// Shared, immutable bytes: the same page for many responses.
    Frozen(FrozenBuf),
    /// A range of a file, sent with the channel's transfer strategy
    /// (sendfile by default) and never read into memory by the codec.
    File(FileRegion),
}

impl Body {
    /// Bytes the body holds (for a file, what is left of its region).
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(buf) => buf.len() as u64,
            Body::Frozen(buf) => buf.len() as u64,
            Body::File(region) => region.remaining(),
        }
    }

    /// Whether the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of `bytes` in a buffer from the default allocator.
    pub fn copy_from(bytes: &[u8]) -> Body {
        let mut buf = Allocator::default().buffer(bytes.len());
        buf.extend_from_slice(bytes);
        Body::Bytes(buf)
    }
}

impl From<ByteBuf> for Body {
    fn from(buf: ByteBuf) -> Body {
        Body::Bytes(buf)
    }
}

impl From<FrozenBuf> for Body {
    fn from(buf: FrozenBuf) -> Body {
        Body::Frozen(buf)
    }
}

impl From<FileRegion> for Body {
    fn from(region: FileRegion) -> Body {
        Body::File(region)
    }
}

impl From<&str> for Body {
    /// Copies the text.
    fn from(text: &str) -> Body {
        Body::copy_from(text.as_bytes())
    }
}

impl From<&[u8]> for Body {
    /// Copies the bytes.
    fn from(bytes: &[u8]) -> Body {
        Body::copy_from(bytes)
    }
}

/// A response for [`HttpServerCodec`](crate::HttpServerCodec) to encode.
///
/// The encoder frames the body with `Content-Length` (adding it when the
/// handler did not), and enforces what RFC 9110 says no response may
/// carry:
///
/// * 1xx and 204: no body and no `Content-Length` (both are dropped);
/// * 304: no body (dropped); a `Content-Length` the handler set is kept
///   (it describes the representation), none is added;
/// * [`head_only`](Self::head_only), the answer to HEAD: the header
///   fields of the full response, with its `Content-Length`, but no body.
///
/// A `Content-Length` set by the handler that does not match the body it
/// sends, or a `Transfer-Encoding` (this encoder does not chunk), is an
/// encoding error rather than a corrupt stream.
///
/// ```
/// use http::header::CONTENT_TYPE;
/// use http::{HeaderValue, StatusCode};
/// use wharf_codec::HttpResponse;
///
/// let page = HttpResponse::new(StatusCode::OK)
///     .header(CONTENT_TYPE, HeaderValue::from_static("text/html"))
///     .body("<h1>hello</h1>");
/// assert_eq!(page.body.len(), 14);
/// ```
///
/// Threading: `Send`; write it from the channel's loop, a worker or a
/// [`ChannelHandle`](wharf_transport::ChannelHandle).
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code; the reason phrase written is its canonical one.
    pub status: StatusCode,
    /// HTTP/1.1 by default, whatever the request's version (RFC 9110
    /// §6.2: a server sends the highest version it conforms to); HTTP/1.0
    /// may be set. Other versions cannot be encoded.
    pub version: Version,
    /// Header fields, written in order (names lower-case, as `http`
    /// stores them). `HeaderValue` cannot hold CR or LF, so no field can
    /// split the response.
    pub headers: HeaderMap,
    /// Fields encoded once, written after `headers` as they are (see
    /// [`EncodedFields`]); their `Content-Length` counts as set by the
    /// handler.
    pub fields: Option<EncodedFields>,
    /// The body.
    pub body: Body,
    /// Headers only: the body (if any) is not sent. What a HEAD request
    /// gets; see [`head_only`](Self::head_only).
    pub head_only: bool,
}

impl HttpResponse {
    /// A response with `status`, no header fields and no body.
    pub fn new(status: StatusCode) -> HttpResponse {
        HttpResponse {
            status,
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            fields: None,
            body: Body::Empty,
            head_only: false,
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: StatusCode, text: &str) -> HttpResponse {
        HttpResponse::new(status)
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )
            .body(text)
    }

    /// The answer to a request the decoder refused: its status, a short
    /// text body, and `Connection: close` (the codec reads nothing more
    /// from the connection, so close it once this is flushed).
    pub fn from_error(error: &HttpError) -> HttpResponse {
        let text = format!("{error}\n");
        HttpResponse::text(error.status, &text).close()
    }

    /// Appends a header field (a name may repeat).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> HttpResponse {
        self.headers.append(name, value);
        self
    }

    /// Sets the fields encoded once (see [`EncodedFields`]).
    pub fn fields(mut self, fields: EncodedFields) -> HttpResponse {
        self.fields = Some(fields);
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Body>) -> HttpResponse {
        self.body = body.into();
        self
    }

    /// Sets the version of the status line.
    pub fn version(mut self, version: Version) -> HttpResponse {
        self.version = version;
        self
    }

    /// The answer to HEAD: `Content-Length: content_length` (the length of
    /// the body a GET would get) and no body.
    pub fn head_only(mut self, content_length: u64) -> HttpResponse {
        self.headers
            .insert(CONTENT_LENGTH, HeaderValue::from(content_length));
        self.body = Body::Empty;
        self.head_only = true;
        self
    }

    /// Adds `Connection: close`: the client will not send another request
    /// on this connection (close it after flushing).
    pub fn close(mut self) -> HttpResponse {
        self.headers
            .insert(CONNECTION, HeaderValue::from_static("close"));
        self
    }

    /// Says whether the connection persists as `request` asked:
    /// `Connection: close` if it does not keep alive, `Connection:
    /// keep-alive` for an HTTP/1.0 request that does (an HTTP/1.0 client
    /// closes otherwise), nothing for HTTP/1.1.
    pub fn keep_alive_for(self, request: &HttpRequest) -> HttpResponse {
        if !request.keep_alive {
            self.close()
        } else if request.version == Version::HTTP_10 {
            let mut response = self;
            response
                .headers
                .insert(CONNECTION, HeaderValue::from_static("keep-alive"));
            response
        } else {
            self
        }
    }

    /// Whether this status may carry a body at all (not 1xx, 204, 304).
    pub fn status_allows_body(&self) -> bool {
        !(self.status.is_informational()
            || self.status == StatusCode::NO_CONTENT
            || self.status == StatusCode::NOT_MODIFIED)
    }

    /// Whether the body will be sent.
    pub fn sends_body(&self) -> bool {
        self.status_allows_body() && !self.head_only
    }

    /// About how many bytes the response takes on the wire: 256 for the
    /// head, plus the body that will be sent (for a file, what is left of
    /// its region).
    pub fn estimated_size(&self) -> usize {
        let body = if self.sends_body() {
            usize::try_from(self.body.len()).unwrap_or(usize::MAX)
        } else {
            0
        };
        HEAD_ESTIMATE.saturating_add(body)
    }
}

impl From<HttpError> for HttpResponse {
    fn from(error: HttpError) -> HttpResponse {
        HttpResponse::from_error(&error)
    }
}
