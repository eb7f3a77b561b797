//! The request head: the request line and the header block, found as they
//! arrive, checked against the limits as soon as each is passed, and parsed
//! with `httparse` into `http`'s types.

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use wharf_buf::ByteBuf;

use super::error::HttpError;
use super::limits::HttpLimits;
use super::scan::LineScan;

/// Header slots kept on the stack; larger limits take a heap array.
const STACK_HEADERS: usize = 128;

/// The longest request target `http::Uri` accepts.
const MAX_URI: usize = (u16::MAX - 1) as usize;

/// What the request line says.
#[derive(Debug)]
pub(crate) struct RequestLine {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) version: Version,
}

/// A parsed head: request line and header fields.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) line: RequestLine,
    pub(crate) headers: HeaderMap,
}

/// Reads one head off the front of the input, across as many calls as
/// its bytes take to arrive.
///
/// Checks happen in the order the bytes come, so the outcome does not
/// depend on how they were cut into reads: the request line's length (414),
/// then the request line itself (400, 501, 505), then the header block's
/// length (431), then its fields (400, 431).
#[derive(Debug, Default)]
pub(crate) struct HeadReader {
    scan: LineScan,
    /// The request line once complete, and where the header block starts.
    line: Option<(RequestLine, usize)>,
}

impl HeadReader {
    /// The head at the front of `input`, consumed, once all of it is there.
    pub(crate) fn read(
        &mut self,
        input: &mut ByteBuf,
        limits: &HttpLimits,
    ) -> Result<Option<Head>, HttpError> {
        if self.line.is_none() && self.scan.is_fresh() {
            // RFC 9112 §2.2: ignore empty lines before the request line
            // (a client's stray CRLF after a body). They are dropped, so
            // they cost no memory however many there are.
            let blank = input
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            input.skip(blank);
        }
        loop {
            let Some(line) = self.scan.next_line(input) else {
                self.check_pending(input, limits)?;
                return Ok(None);
            };
            match &self.line {
                None => {
                    if line.len() > limits.max_request_line {
                        return Err(uri_too_long());
                    }
                    let bytes = input.get(..line.next).unwrap_or_default();
                    self.line = Some((parse_request_line(bytes)?, line.next));
                }
                Some((_, header_start)) if line.is_empty() => {
                    let header_start = *header_start;
                    if line.next.saturating_sub(header_start) > limits.max_header_size {
                        return Err(header_block_too_large());
                    }
                    let block = input.get(header_start..line.next).unwrap_or_default();
                    let headers = parse_header_block(block, limits.max_headers)?;
                    let Some((request_line, _)) = self.line.take() else {
                        return Err(HttpError::bad_request("malformed request head"));
                    };
                    input.skip(line.next);
                    *self = HeadReader::default();
                    return Ok(Some(Head {
                        line: request_line,
                        headers,
                    }));
                }
                Some(_) => {}
            }
        }
    }

    /// Fails if what has arrived of the head is already over a limit.
    fn check_pending(&self, input: &[u8], limits: &HttpLimits) -> Result<(), HttpError> {
        match &self.line {
            None if self.scan.pending(input) > limits.max_request_line => Err(uri_too_long()),
            Some((_, header_start))
                if input.len().saturating_sub(*header_start) > limits.max_header_size =>
            {
                Err(header_block_too_large())
            }
            _ => Ok(()),
        }
    }
}

fn uri_too_long() -> HttpError {
    HttpError::new(StatusCode::URI_TOO_LONG, "request line exceeds the limit")
}

fn header_block_too_large() -> HttpError {
    HttpError::headers_too_large("header block exceeds the limit")
}

/// Parses one complete request line (with its line ending).
pub(crate) fn parse_request_line(line: &[u8]) -> Result<RequestLine, HttpError> {
    let mut request = httparse::Request::new(&mut []);
    match request.parse(line) {
        // Without header slots and without the header block, a valid
        // request line is "partial": the fields are filled in.
        Ok(_) => {}
        Err(httparse::Error::Version) if names_a_version(line) => {
            if let Some(as_1_1) = later_minor_of_http_1(line) {
                return parse_request_line(&as_1_1);
            }
            return Err(HttpError::new(
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                "only HTTP/1 is supported",
            ));
        }
        Err(_) => return Err(HttpError::bad_request("malformed request line")),
    }
    let (Some(method), Some(target), Some(minor)) = (request.method, request.path, request.version)
    else {
        return Err(HttpError::bad_request("malformed request line"));
    };
    let method = standard_method(method)?;
    let version = if minor == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let uri = parse_target(&method, target)?;
    Ok(RequestLine {
        method,
        uri,
        version,
    })
}

/// RFC 9110 §2.5: a request with a higher minor version of a major
/// version the server supports is handled as the highest minor version it
/// supports. For a request line ending in `HTTP/1.2` to `HTTP/1.9`, the
/// same line with `HTTP/1.1` (issue 9, point 6: they were 505); `None`
/// for any other.
fn later_minor_of_http_1(line: &[u8]) -> Option<Vec<u8>> {
    let text = line.strip_suffix(b"\n").unwrap_or(line);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    let at = text.len().checked_sub(b" HTTP/1.x".len())?;
    let (prefix, minor) = text[at..].split_at(b" HTTP/1.".len());
    if prefix != b" HTTP/1." || !matches!(minor, [b'2'..=b'9']) {
        return None;
    }
    let mut as_1_1 = line.to_vec();
    as_1_1[text.len() - 1] = b'1';
    Some(as_1_1)
}

/// Whether the request line is three parts of which the last is shaped
/// like an HTTP version (`HTTP/2`, `HTTP/3.0`), so that refusing it is 505
/// rather than 400.
fn names_a_version(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(_method), Some(_target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    version.strip_prefix(b"HTTP/").is_some_and(|number| {
        number.first().is_some_and(u8::is_ascii_digit)
            && number.iter().all(|&b| b.is_ascii_digit() || b == b'.')
    })
}

/// The methods of RFC 9110 §9 and PATCH (RFC 5789); any other token is
/// 501 Not Implemented (§9.1). Methods are case-sensitive.
fn standard_method(token: &str) -> Result<Method, HttpError> {
    Ok(match token {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "DELETE" => Method::DELETE,
        "OPTIONS" => Method::OPTIONS,
        "TRACE" => Method::TRACE,
        "PATCH" => Method::PATCH,
        "CONNECT" => Method::CONNECT,
        _ => {
            return Err(HttpError::new(
                StatusCode::NOT_IMPLEMENTED,
                "unknown request method",
            ));
        }
    })
}

/// The request target in the form RFC 9112 §3.2 allows for `method`:
/// origin-form (`/path?query`) or absolute-form (`http://host/path`) for
/// most methods, authority-form (`host:port`) for CONNECT only, and `*`
/// for OPTIONS only. A fragment is never part of a target.
fn parse_target(method: &Method, target: &str) -> Result<Uri, HttpError> {
    if target.len() > MAX_URI {
        return Err(uri_too_long());
    }
    let bad = || HttpError::bad_request("invalid request target");
    if target.contains('#') {
        return Err(bad());
    }
    let uri = Uri::try_from(target).map_err(|_| bad())?;
    let valid = if *method == Method::CONNECT {
        uri.scheme().is_none()
            && uri.path_and_query().is_none()
            && uri
                .authority()
                .is_some_and(|a| a.port_u16().is_some() && !a.as_str().contains('@'))
    } else if target == "*" {
        *method == Method::OPTIONS
    } else if target.starts_with('/') {
        true
    } else {
        uri.scheme().is_some() && uri.authority().is_some()
    };
    if valid { Ok(uri) } else { Err(bad()) }
}

/// Parses a complete header block (or trailer section), ending with its
/// empty line, into a map.
pub(crate) fn parse_header_block(block: &[u8], max_headers: usize) -> Result<HeaderMap, HttpError> {
    let too_many = || HttpError::headers_too_large("too many header fields");
    let malformed = || HttpError::bad_request("malformed header field");
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let mut heap = Vec::new();
    let slots = match stack.get_mut(..max_headers) {
        Some(slots) => slots,
        None => {
            heap.resize(max_headers, httparse::EMPTY_HEADER);
            &mut heap[..]
        }
    };
    let fields = match httparse::parse_headers(block, slots) {
        Ok(httparse::Status::Complete((end, fields))) if end == block.len() => fields,
        Err(httparse::Error::TooManyHeaders) => return Err(too_many()),
        _ => return Err(malformed()),
    };
    let mut map = HeaderMap::try_with_capacity(fields.len()).map_err(|_| too_many())?;
    for field in fields {
        let name = HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| malformed())?;
        let value = HeaderValue::from_bytes(field.value).map_err(|_| malformed())?;
        map.try_append(name, value).map_err(|_| too_many())?;
    }
    Ok(map)
}

/// Whether a `Host` value is `uri-host [":" port]` (RFC 9110 §7.2, RFC
/// 3986 §3.2.2): an IP literal in brackets, or a reg-name or IPv4
/// address (unreserved characters, sub-delims and percent-encodings),
/// then an optional port of digits. Empty is allowed (the target then has
/// no authority). Checked in place: no copy of the value.
pub(crate) fn valid_host(value: &[u8]) -> bool {
    let (host_ok, rest) = match value.strip_prefix(b"[") {
        Some(literal) => match literal.iter().position(|&b| b == b']') {
            Some(end) => (
                end > 0
                    && literal[..end]
                        .iter()
                        .all(|&b| b.is_ascii_alphanumeric() || b":.-_~".contains(&b)),
                &literal[end + 1..],
            ),
            None => (false, &[][..]),
        },
        None => {
            let end = value.iter().position(|&b| b == b':').unwrap_or(value.len());
            (reg_name(&value[..end]), &value[end..])
        }
    };
    host_ok
        && (rest.is_empty()
            || rest
                .strip_prefix(b":")
                .is_some_and(|digits| digits.iter().all(u8::is_ascii_digit)))
}

/// Whether `name` is a reg-name (or an IPv4 address, which is one too).
fn reg_name(name: &[u8]) -> bool {
    let mut i = 0;
    while i < name.len() {
        match name[i] {
            b'%' => {
                let hex = name.get(i + 1..i + 3);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b) => i += 1,
            _ => return false,
        }
    }
    true
}
