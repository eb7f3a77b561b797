//! Chunked bodies: sizes, extensions, trailers, reads cut anywhere, and
//! every way the framing can be wrong.

use http::StatusCode;
use wharf_transport::Codec;

use super::{decode, decode_with, feed, get, one, refused, refused_with};
use crate::tests::{buf, inside};
use crate::{HttpLimits, HttpServerCodec};

/// A chunked GET with `body` as its encoded body.
fn chunked(body: &str) -> Vec<u8> {
    get("Transfer-Encoding: chunked\r\n", body.as_bytes())
}

#[test]
fn chunks_are_joined() {
    let r = one(&chunked("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
    assert_eq!(&r.body[..], b"hello world");
    assert!(r.trailers.is_empty());
    let r = one(&chunked("A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n"));
    assert_eq!(r.body.len(), 20);
    let r = one(&chunked("0\r\n\r\n"));
    assert!(r.body.is_empty());
    let r = one(&chunked("0000\r\n\r\n"));
    assert!(r.body.is_empty());
}

#[test]
fn extensions_are_skipped() {
    let r = one(&chunked(
        "5;name=value\r\nhello\r\n1 ; quoted=\"a;b\"\r\n!\r\n0;last\r\n\r\n",
    ));
    assert_eq!(&r.body[..], b"hello!");
}

#[test]
fn trailers_are_kept_apart_from_the_header_fields() {
    let r = one(&chunked(
        "3\r\nabc\r\n0\r\nX-Checksum: 42\r\nX-More: a\r\n\r\n",
    ));
    assert_eq!(&r.body[..], b"abc");
    assert_eq!(r.trailers["x-checksum"], "42");
    assert_eq!(r.trailers["x-more"], "a");
    assert!(!r.headers.contains_key("x-checksum"));
}

#[test]
fn a_first_chunk_that_arrives_whole_is_not_copied() {
    let data = chunked("5\r\nhello\r\n0\r\n\r\n");
    let mut input = buf(&data);
    let (start, len) = (input.as_ptr(), input.len());
    let mut out = Vec::new();
    HttpServerCodec::new().decode(&mut input, &mut out).unwrap();
    let r = out.pop().unwrap().unwrap();
    assert!(inside(&r.body, start, len));
}

#[test]
fn a_chunked_body_cut_at_any_byte_decodes_the_same() {
    let mut data = chunked("3;e=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n");
    data.extend_from_slice(&get("", b""));
    let whole = feed(&mut HttpServerCodec::new(), [&data[..]]);
    assert_eq!(whole.len(), 2);
    assert_eq!(&whole[0].as_ref().unwrap().body[..], b"abc0123456789abcdef");
    for cut in 0..=data.len() {
        let (a, b) = data.split_at(cut);
        assert_eq!(
            feed(&mut HttpServerCodec::new(), [a, b]),
            whole,
            "cut at {cut}"
        );
    }
    decode(&data);
}

#[test]
fn malformed_sizes_are_400() {
    for body in [
        "\r\n\r\n",
        ";ext\r\nabc\r\n0\r\n\r\n",
        "g\r\n",
        "-1\r\n",
        " 5\r\nhello\r\n0\r\n\r\n",
        "0x5\r\nhello\r\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",
        "5;ext\nhello\r\n0\r\n\r\n",
        "5\rhello\r\n0\r\n\r\n",
        "5 5\r\nhello\r\n0\r\n\r\n",
        "10000000000000000\r\n",
        "+5\r\nhello\r\n0\r\n\r\n",
    ] {
        assert_eq!(refused(&chunked(body)), StatusCode::BAD_REQUEST, "{body:?}");
    }
}

#[test]
fn data_must_end_with_crlf() {
    for body in [
        "5\r\nhelloX\r\n0\r\n\r\n",
        "5\r\nhello\n0\r\n\r\n",
        "5\r\nhello\rX0\r\n\r\n",
        "5\r\nhello world\r\n0\r\n\r\n",
    ] {
        let out = decode(&chunked(body));
        let last = out.last().unwrap();
        assert_eq!(
            last.as_ref().unwrap_err().status,
            StatusCode::BAD_REQUEST,
            "{body:?}: {out:?}"
        );
    }
}

#[test]
fn the_largest_sizes_are_413_not_an_overflow() {
    for size in ["ffffffffffffffff", "FFFFFFFFFFFFFFF", "100001"] {
        let body = format!("{size}\r\n");
        assert_eq!(
            refused(&chunked(&body)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "{size}"
        );
    }
}

#[test]
fn a_size_line_is_bounded() {
    let limits = HttpLimits::default();
    let ext = |len: usize| format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(len - 2));
    let r = one(&chunked(&ext(limits.max_header_size)));
    assert_eq!(&r.body[..], b"x");
    let error = refused_with(limits, &chunked(&ext(limits.max_header_size + 1)));
    assert_eq!(error.status, StatusCode::BAD_REQUEST);
}

#[test]
fn trailers_are_bounded_and_parsed_like_fields() {
    let limits = HttpLimits::default();
    let section = |len: usize| format!("0\r\nT: {}\r\n\r\n", "v".repeat(len - "T: \r\n\r\n".len()));
    let r = one(&chunked(&section(limits.max_header_size)));
    assert_eq!(r.trailers.len(), 1);
    let error = refused_with(limits, &chunked(&section(limits.max_header_size + 1)));
    assert_eq!(error.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    let many = (0..=limits.max_headers)
        .map(|i| format!("T{i}: v\r\n"))
        .collect::<String>();
    let error = refused_with(limits, &chunked(&format!("0\r\n{many}\r\n")));
    assert_eq!(error.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    for section in [
        "0\r\nNo colon\r\n\r\n",
        "0\r\n folded\r\n\r\n",
        "0\r\nT: a\rb\r\n\r\n",
    ] {
        assert_eq!(
            refused(&chunked(section)),
            StatusCode::BAD_REQUEST,
            "{section:?}"
        );
    }
}

#[test]
fn a_request_after_a_chunked_one_starts_at_the_right_byte() {
    let mut data = chunked("2\r\nab\r\n0\r\n\r\n");
    data.extend_from_slice(b"POST /next HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\ncd");
    let out = decode(&data);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].as_ref().unwrap().path(), "/next");
    assert_eq!(&out[1].as_ref().unwrap().body[..], b"cd");
}

#[test]
fn many_small_chunks_byte_by_byte() {
    let body: String = (0..200)
        .map(|i| format!("1;i={i}\r\n{}\r\n", i % 10))
        .collect();
    let data = chunked(&format!("{body}0\r\n\r\n"));
    let limits = HttpLimits::default();
    let out = decode_with(limits, &data);
    let expected: Vec<u8> = (0..200).map(|i| b'0' + (i % 10) as u8).collect();
    assert_eq!(&out[0].as_ref().unwrap().body[..], &expected[..]);
}
