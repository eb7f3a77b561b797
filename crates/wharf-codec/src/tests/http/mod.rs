//! `HttpServerCodec`: requests, errors and their statuses, limits, chunked
//! bodies, keep-alive, smuggling attempts, hostile input and the encoder.
//!
//! The helpers here are `feed` and `decode_three_ways` for a codec whose
//! messages are requests rather than bytes.

use http::StatusCode;
use wharf_buf::ByteBuf;
use wharf_transport::Codec;

use super::{buf, bytewise, chunked};
use crate::{HttpError, HttpLimits, HttpRequest, HttpServerCodec};

mod chunked;
mod decode;
mod encode;
mod errors;
mod hand_over;
mod hostile;
mod keep_alive;
mod limits;
mod smuggling;

/// What the handler receives for each request.
pub(crate) type Decoded = Result<HttpRequest, HttpError>;

/// Runs `chunks` through `codec` exactly as the transport does (see
/// `super::feed`): a chunk becomes the cumulation when nothing is pending
/// and is appended otherwise, `decode` runs after each, `decode_eof` at
/// the end.
///
/// Checks on every call that decoding never fails the channel, that the
/// input never grows, that bodies come only from consumed bytes (counted
/// from the start: a chunked body is consumed over several calls before
/// it is delivered), and that after an error nothing is left pending.
pub(crate) fn feed<'a>(
    codec: &mut HttpServerCodec,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<Decoded> {
    let mut cumulation = ByteBuf::new();
    let mut all = Vec::new();
    let mut decoded = Vec::new();
    let mut consumed = 0;
    for chunk in chunks {
        if chunk.is_empty() {
            continue; // a read of 0 bytes is the end of input
        }
        let read = buf(chunk);
        if cumulation.is_empty() {
            cumulation = read;
        } else {
            cumulation.extend_from_slice(&read);
        }
        let before = cumulation.len();
        assert_eq!(codec.decode(&mut cumulation, &mut decoded), Ok(()));
        all.append(&mut decoded);
        check(before, &cumulation, &mut consumed, &all);
        if cumulation.is_empty() && cumulation.capacity() > 0 {
            cumulation = ByteBuf::new();
        }
    }
    let before = cumulation.len();
    assert_eq!(codec.decode_eof(&mut cumulation, &mut decoded), Ok(()));
    assert!(cumulation.is_empty(), "input left after the end");
    all.append(&mut decoded);
    check(before, &cumulation, &mut consumed, &all);
    all
}

fn check(before: usize, after: &ByteBuf, consumed: &mut usize, decoded: &[Decoded]) {
    assert!(
        after.len() <= before,
        "the input grew from {before} to {}",
        after.len()
    );
    *consumed += before - after.len();
    let bodies: usize = decoded
        .iter()
        .filter_map(|d| d.as_ref().ok())
        .map(|r| r.body.len())
        .sum();
    assert!(
        bodies <= *consumed,
        "{bodies} bytes of bodies from {consumed} bytes consumed",
    );
    if decoded.last().is_some_and(Result::is_err) {
        assert!(after.is_empty(), "input kept after an error");
    }
}

/// Decodes `data` one byte per read, in reads of `sizes`, and in one read,
/// each with a fresh codec with `limits`; asserts that the three agree
/// and returns what they gave.
#[track_caller]
pub(crate) fn decode_three_ways(limits: HttpLimits, data: &[u8], sizes: &[usize]) -> Vec<Decoded> {
    let make = || HttpServerCodec::with_limits(limits);
    let whole = feed(&mut make(), [data]);
    let bytes = feed(&mut make(), bytewise(data));
    assert_eq!(bytes, whole, "one byte per read vs one read");
    let random = feed(&mut make(), chunked(data, sizes));
    assert_eq!(random, whole, "reads of {sizes:?} vs one read");
    whole
}

/// `data` decoded with default limits, in one read and one byte per read
/// (which must agree).
#[track_caller]
pub(crate) fn decode(data: &[u8]) -> Vec<Decoded> {
    decode_with(HttpLimits::default(), data)
}

/// As [`decode`], with `limits`.
#[track_caller]
pub(crate) fn decode_with(limits: HttpLimits, data: &[u8]) -> Vec<Decoded> {
    decode_three_ways(limits, data, &[3, 1, 7])
}

/// The one request `data` holds.
#[track_caller]
pub(crate) fn one(data: &[u8]) -> HttpRequest {
    let mut decoded = decode(data);
    assert_eq!(decoded.len(), 1, "{decoded:?}");
    match decoded.pop() {
        Some(Ok(request)) => request,
        other => panic!("expected a request, got {other:?}"),
    }
}

/// The error `data` ends with, with `limits`.
#[track_caller]
pub(crate) fn refused_with(limits: HttpLimits, data: &[u8]) -> HttpError {
    match decode_with(limits, data).pop() {
        Some(Err(error)) => error,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The status of the error `data` ends with.
#[track_caller]
pub(crate) fn refused(data: &[u8]) -> StatusCode {
    refused_with(HttpLimits::default(), data).status
}

/// A GET for `/` with `Host: a` and `fields` (each ending with `\r\n`),
/// then `body`.
pub(crate) fn get(fields: &str, body: &[u8]) -> Vec<u8> {
    request("GET / HTTP/1.1", &format!("Host: a\r\n{fields}"), body)
}

/// `line`, `\r\n`, `fields` (each ending with `\r\n`), `\r\n`, `body`.
pub(crate) fn request(line: &str, fields: &str, body: &[u8]) -> Vec<u8> {
    let mut data = format!("{line}\r\n{fields}\r\n").into_bytes();
    data.extend_from_slice(body);
    data
}
