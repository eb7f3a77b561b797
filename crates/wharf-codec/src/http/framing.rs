//! What a head says beyond its syntax: how long the body is (the field
//! where request smuggling happens, RFC 9112 §6.3), whether the
//! connection persists, and whether `Host` is acceptable.

use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode, Version};

use super::error::HttpError;
use super::head::valid_host;

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Exactly this many bytes follow the head (0 without any framing
    /// field: a request without one has no body, RFC 9112 §6.3 rule 7).
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
}

/// The body's framing, refusing every ambiguity a front-end proxy and this
/// server might resolve differently:
///
/// * `Transfer-Encoding` and `Content-Length` together: 400 (§6.3 rule 3
///   lets a server go with `Transfer-Encoding`; refusing is safer, as
///   "ought to be handled as an error" suggests).
/// * `Transfer-Encoding` whose last coding is not `chunked`: 400 (§6.3
///   rule 4); `chunked` twice: 400 (§6.1); another coding before
///   `chunked` (`gzip, chunked`): 501, since this decoder only removes
///   `chunked` (§6.1: a server that does not understand a coding SHOULD
///   answer 501).
/// * `Content-Length` values that are not all the same `1*DIGIT`, or too
///   large for 64 bits: 400 (§6.3 rule 5). A repeated identical value
///   (`42, 42`, or the field twice) is accepted, as RFC 9110 §8.6 allows.
pub(crate) fn framing(headers: &HeaderMap) -> Result<Framing, HttpError> {
    if headers.contains_key(TRANSFER_ENCODING) {
        if headers.contains_key(CONTENT_LENGTH) {
            return Err(HttpError::bad_request(
                "both Content-Length and Transfer-Encoding",
            ));
        }
        // Several fields make one list (RFC 9110 §5.3).
        let codings = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .flat_map(|value| list(value.as_bytes()));
        let mut last = None;
        let mut unknown = false;
        for coding in codings {
            if last.is_some_and(is_chunked) {
                return Err(HttpError::bad_request(
                    "chunked is not the final transfer coding",
                ));
            }
            unknown |= last.is_some();
            last = Some(coding);
        }
        if !last.is_some_and(is_chunked) {
            return Err(HttpError::bad_request(
                "chunked is not the final transfer coding",
            ));
        }
        if unknown {
            return Err(HttpError::new(
                StatusCode::NOT_IMPLEMENTED,
                "unsupported transfer coding",
            ));
        }
        return Ok(Framing::Chunked);
    }
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        let bytes = value.as_bytes();
        // An empty field is not a list of no values here: it is no length.
        if trim(bytes).is_empty() {
            return Err(bad_length());
        }
        for element in bytes.split(|&b| b == b',').map(trim) {
            let n = parse_decimal(element).ok_or_else(bad_length)?;
            if length.is_some_and(|seen| seen != n) {
                return Err(HttpError::bad_request("conflicting Content-Length values"));
            }
            length = Some(n);
        }
    }
    Ok(Framing::Length(length.unwrap_or(0)))
}

fn bad_length() -> HttpError {
    HttpError::bad_request("invalid Content-Length")
}

fn is_chunked(coding: &[u8]) -> bool {
    coding.eq_ignore_ascii_case(b"chunked")
}

/// `1*DIGIT` as a number, or `None` if it is not one or overflows.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Whether the connection stays open after this request (RFC 9112 §9.3):
/// in HTTP/1.1 unless `Connection` has `close`; in HTTP/1.0 only if it has
/// `keep-alive` (and not `close`). Tokens are case-insensitive and may be
/// spread over several fields and comma-separated lists.
pub(crate) fn keep_alive(headers: &HeaderMap, version: Version) -> bool {
    let (mut close, mut keep) = (false, false);
    for option in headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|value| list(value.as_bytes()))
    {
        close |= option.eq_ignore_ascii_case(b"close");
        keep |= option.eq_ignore_ascii_case(b"keep-alive");
    }
    !close && (version == Version::HTTP_11 || keep)
}

/// RFC 9112 §3.2: an HTTP/1.1 request needs exactly one `Host`, and any
/// request's `Host` must be a valid `uri-host [":" port]`.
pub(crate) fn check_host(headers: &HeaderMap, version: Version) -> Result<(), HttpError> {
    let mut hosts = headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if version == Version::HTTP_11 => {
            Err(HttpError::bad_request("HTTP/1.1 request without Host"))
        }
        (Some(_), Some(_)) => Err(HttpError::bad_request("more than one Host")),
        (Some(host), None) if !valid_host(host.as_bytes()) => {
            Err(HttpError::bad_request("invalid Host"))
        }
        _ => Ok(()),
    }
}

/// The non-empty elements of a comma-separated list (RFC 9110 §5.6.1),
/// without the optional whitespace around them.
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|element| !element.is_empty())
}

/// `bytes` without the spaces and tabs (OWS) around it.
fn trim(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}
