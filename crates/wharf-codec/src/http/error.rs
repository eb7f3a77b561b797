//! Why a request was refused, as the status code the server should answer
//! with: decoding failures are messages for the handler, not connection
//! errors, so that the peer is told what went wrong.

use std::fmt;

use http::StatusCode;

/// A request the decoder refused, delivered to the handler in place of an
/// [`HttpRequest`](crate::HttpRequest).
///
/// The handler should answer with [`HttpResponse::from_error`](crate::HttpResponse::from_error)
/// (which carries `Connection: close`) and close the connection: after an
/// error the codec decodes nothing more and discards whatever else the peer
/// sends, since it can no longer tell where the next request would start.
///
/// | status | when |
/// |---|---|
/// | 400 Bad Request | bad syntax, a missing or repeated `Host` in HTTP/1.1, conflicting or malformed `Content-Length`, `Transfer-Encoding` with `Content-Length` or not ending in `chunked`, malformed chunked data |
/// | 411 Length Required | a chunked body on a request whose body is handed over ([`HttpServerCodec::hand_over_bodies`](crate::HttpServerCodec::hand_over_bodies)), refused at its head |
/// | 413 Content Too Large | a body over [`HttpLimits::max_body`](crate::HttpLimits::max_body) |
/// | 414 URI Too Long | a request line over [`HttpLimits::max_request_line`](crate::HttpLimits::max_request_line) |
/// | 431 Request Header Fields Too Large | a header block (or trailer section) over [`HttpLimits::max_header_size`](crate::HttpLimits::max_header_size) bytes or [`HttpLimits::max_headers`](crate::HttpLimits::max_headers) fields |
/// | 501 Not Implemented | a method other than the nine of RFC 9110 and RFC 5789, or a transfer coding other than `chunked` |
/// | 505 HTTP Version Not Supported | an HTTP major version other than 1 (HTTP/1.2 to 1.9 are handled as HTTP/1.1, RFC 9110 §2.5) |
///
/// The reason is a fixed text: it never repeats the peer's bytes, so an
/// error page cannot be used to reflect them back.
///
/// Threading: a plain `Send + Sync` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// The status to answer with.
    pub status: StatusCode,
    /// What was wrong, in a few words.
    pub reason: &'static str,
}

impl HttpError {
    /// An error with `status` and `reason`.
    pub const fn new(status: StatusCode, reason: &'static str) -> HttpError {
        HttpError { status, reason }
    }

    /// 400 Bad Request.
    pub(crate) const fn bad_request(reason: &'static str) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, reason)
    }

    /// 431 Request Header Fields Too Large.
    pub(crate) const fn headers_too_large(reason: &'static str) -> HttpError {
        HttpError::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, reason)
    }

    /// 411 Length Required.
    pub(crate) const fn length_required() -> HttpError {
        HttpError::new(
            StatusCode::LENGTH_REQUIRED,
            "this request's body needs a Content-Length",
        )
    }

    /// 413 Content Too Large.
    pub(crate) const fn body_too_large() -> HttpError {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body exceeds the limit",
        )
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.reason)
    }
}

impl std::error::Error for HttpError {}
