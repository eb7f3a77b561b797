//! How much of a request the decoder buffers before refusing it: the
//! bounds that keep a peer from making a connection hold unbounded memory.

/// Limits on one request, checked as the bytes arrive: the decoder fails
/// as soon as a limit is passed, without waiting for the end of the part
/// that is too long.
///
/// The defaults are Netty's and nginx's usual ones: 8 KiB request line,
/// 8 KiB of header fields, 100 fields, 1 MiB of body.
///
/// ```
/// use wharf_codec::{HttpLimits, HttpServerCodec};
///
/// // Uploads of up to 16 MiB.
/// let limits = HttpLimits { max_body: 16 << 20, ..HttpLimits::default() };
/// let _codec = HttpServerCodec::with_limits(limits);
/// ```
///
/// Threading: a plain `Copy` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest request line, without its line ending; beyond it the
    /// request is refused with 414 URI Too Long.
    pub max_request_line: usize,
    /// Longest header block (from the end of the request line to the end
    /// of the empty line that closes the head); beyond it, 431 Request
    /// Header Fields Too Large. The same bound applies to a chunked body's
    /// trailer section (431) and to each of its chunk-size lines, with
    /// their extensions (400).
    pub max_header_size: usize,
    /// Most header fields (and most trailer fields); beyond it, 431.
    pub max_headers: usize,
    /// Largest body, however it is framed; beyond it, 413 Content Too
    /// Large (as soon as `Content-Length` or a chunk size says so).
    pub max_body: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            max_request_line: 8 << 10,
            max_header_size: 8 << 10,
            max_headers: 100,
            max_body: 1 << 20,
        }
    }
}
