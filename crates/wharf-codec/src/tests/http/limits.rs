//! Each limit exactly at and one past its boundary, and failing as soon as
//! it is passed rather than at the end of what is too long.

use http::StatusCode;
use wharf_transport::Codec;

use super::{decode_with, get, one, refused_with, request};
use crate::tests::buf;
use crate::{HttpLimits, HttpServerCodec};

/// A GET whose request line is `len` bytes long (without `\r\n`).
fn line_of(len: usize) -> Vec<u8> {
    let target = format!("/{}", "a".repeat(len - "GET / HTTP/1.1".len()));
    request(&format!("GET {target} HTTP/1.1"), "Host: a\r\n", b"")
}

/// A GET whose header block (from after the request line to the end of
/// the empty line) is `len` bytes long.
fn header_block_of(len: usize) -> Vec<u8> {
    let fixed = "Host: a\r\n".len() + "X: \r\n".len() + "\r\n".len();
    get(&format!("X: {}\r\n", "v".repeat(len - fixed)), b"")
}

#[test]
fn a_request_line_of_exactly_the_limit_passes_and_one_more_byte_is_414() {
    let limits = HttpLimits::default();
    let r = one(&line_of(limits.max_request_line));
    assert_eq!(
        r.path().len(),
        limits.max_request_line - "GET  HTTP/1.1".len()
    );
    let error = refused_with(limits, &line_of(limits.max_request_line + 1));
    assert_eq!(error.status, StatusCode::URI_TOO_LONG);
}

#[test]
fn a_long_request_line_fails_before_its_end_arrives() {
    let limits = HttpLimits::default();
    let mut codec = HttpServerCodec::new();
    let mut out = Vec::new();
    let mut input = buf(&line_of(limits.max_request_line + 1)[..limits.max_request_line]);
    codec.decode(&mut input, &mut out).unwrap();
    assert!(out.is_empty(), "exactly the limit, no line end yet: waits");
    // A `\r` may be the start of the line ending: still waits.
    input.extend_from_slice(b"\r");
    codec.decode(&mut input, &mut out).unwrap();
    assert!(out.is_empty());
    input.extend_from_slice(b"x");
    codec.decode(&mut input, &mut out).unwrap();
    assert_eq!(
        out.pop().unwrap().unwrap_err().status,
        StatusCode::URI_TOO_LONG
    );
    assert!(input.is_empty(), "nothing kept after the error");
}

#[test]
fn a_header_block_of_exactly_the_limit_passes_and_one_more_byte_is_431() {
    let limits = HttpLimits::default();
    let r = one(&header_block_of(limits.max_header_size));
    assert_eq!(r.headers.len(), 2);
    let error = refused_with(limits, &header_block_of(limits.max_header_size + 1));
    assert_eq!(error.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

#[test]
fn a_long_header_block_fails_before_its_end_arrives() {
    let limits = HttpLimits::default();
    let mut data = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
    let header_start = "GET / HTTP/1.1\r\n".len();
    data.resize(header_start + limits.max_header_size, b'v');
    let mut codec = HttpServerCodec::new();
    let mut out = Vec::new();
    let mut input = buf(&data);
    codec.decode(&mut input, &mut out).unwrap();
    assert!(out.is_empty());
    input.extend_from_slice(b"v");
    codec.decode(&mut input, &mut out).unwrap();
    assert_eq!(
        out.pop().unwrap().unwrap_err().status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
}

#[test]
fn many_short_fields_count_against_the_block_size_too() {
    let limits = HttpLimits {
        max_headers: 10_000,
        ..HttpLimits::default()
    };
    let fields = "a: b\r\n".repeat(2000);
    let error = refused_with(limits, &get(&fields, b""));
    assert_eq!(error.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

#[test]
fn the_field_count_limit() {
    let limits = HttpLimits::default();
    // `Host` is one of them.
    let fields = |n: usize| (1..n).map(|i| format!("X-{i}: v\r\n")).collect::<String>();
    let r = one(&get(&fields(limits.max_headers), b""));
    assert_eq!(r.headers.len(), limits.max_headers);
    let error = refused_with(limits, &get(&fields(limits.max_headers + 1), b""));
    assert_eq!(error.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    // More slots than fit on the stack.
    let limits = HttpLimits {
        max_headers: 300,
        max_header_size: 64 << 10,
        ..HttpLimits::default()
    };
    let out = decode_with(limits, &get(&fields(300), b""));
    assert_eq!(out[0].as_ref().unwrap().headers.len(), 300);
    let out = decode_with(limits, &get(&fields(301), b""));
    assert_eq!(
        out[0].as_ref().unwrap_err().status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
}

#[test]
fn a_body_of_exactly_the_limit_passes_and_one_more_byte_is_413() {
    let limits = HttpLimits {
        max_body: 64,
        ..HttpLimits::default()
    };
    let body = [b'b'; 65];
    let fixed = |n: usize| get(&format!("Content-Length: {n}\r\n"), &body[..n]);
    let out = decode_with(limits, &fixed(64));
    assert_eq!(out[0].as_ref().unwrap().body.len(), 64);
    let error = refused_with(limits, &fixed(65));
    assert_eq!(error.status, StatusCode::PAYLOAD_TOO_LARGE);

    let chunked = |n: usize| {
        let mut data = get("Transfer-Encoding: chunked\r\n", b"");
        data.extend_from_slice(format!("20\r\n{}\r\n", "c".repeat(32)).as_bytes());
        data.extend_from_slice(
            format!("{:x}\r\n{}\r\n0\r\n\r\n", n - 32, "c".repeat(n - 32)).as_bytes(),
        );
        data
    };
    let out = decode_with(limits, &chunked(64));
    assert_eq!(out[0].as_ref().unwrap().body.len(), 64);
    let error = refused_with(limits, &chunked(65));
    assert_eq!(error.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[test]
fn the_default_body_limit_is_one_mebibyte() {
    let body = vec![b'x'; 1 << 20];
    let data = get(&format!("Content-Length: {}\r\n", body.len()), &body);
    let out = super::feed(&mut HttpServerCodec::new(), data.chunks(64 << 10));
    assert_eq!(out[0].as_ref().unwrap().body.len(), 1 << 20);
    assert_eq!(HttpServerCodec::new().limits().max_body, 1 << 20);
}

#[test]
fn a_chunked_body_over_the_limit_fails_at_the_size_line() {
    let limits = HttpLimits {
        max_body: 64,
        ..HttpLimits::default()
    };
    let mut codec = HttpServerCodec::with_limits(limits);
    let mut out = Vec::new();
    let mut input = buf(&get("Transfer-Encoding: chunked\r\n", b"41\r\n"));
    codec.decode(&mut input, &mut out).unwrap();
    assert_eq!(
        out.pop().unwrap().unwrap_err().status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[test]
fn tiny_limits_still_decode_what_fits() {
    let limits = HttpLimits {
        max_request_line: "GET / HTTP/1.1".len(),
        max_header_size: "Host: a\r\n\r\n".len(),
        max_headers: 1,
        max_body: 0,
    };
    let out = decode_with(limits, &get("", b""));
    assert!(out[0].is_ok(), "{out:?}");
    let error = refused_with(limits, &get("Content-Length: 1\r\n", b"x"));
    assert_eq!(error.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}
