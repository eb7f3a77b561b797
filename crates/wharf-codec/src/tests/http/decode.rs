//! Well-formed requests: the head's parts, bodies on any method, pipelining,
//! request-target forms, reads cut anywhere, end of input.

use http::header::{CONTENT_TYPE, HOST};
use http::{Method, StatusCode, Version};
use wharf_buf::ByteBuf;
use wharf_transport::Codec;

use super::{decode, feed, get, one, refused, request};
use crate::tests::{buf, inside};
use crate::{HttpLimits, HttpServerCodec};

#[test]
fn a_get_and_its_parts() {
    let r = one(b"GET /a/b?x=1&y HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
    assert_eq!(r.method, Method::GET);
    assert_eq!(r.path(), "/a/b");
    assert_eq!(r.query(), Some("x=1&y"));
    assert_eq!(r.version, Version::HTTP_11);
    assert_eq!(r.header_str(HOST), Some("example.com"));
    assert_eq!(r.header_str("accept"), Some("*/*"));
    assert_eq!(r.headers.len(), 2);
    assert!(r.body.is_empty());
    assert!(r.trailers.is_empty());
    assert!(r.keep_alive);
    assert!(!r.is_head());
}

#[test]
fn every_standard_method_is_accepted() {
    for method in [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH",
    ] {
        let r = one(&request(
            &format!("{method} / HTTP/1.1"),
            "Host: a\r\n",
            b"",
        ));
        assert_eq!(r.method.as_str(), method);
    }
    let r = one(&request(
        "CONNECT example.com:443 HTTP/1.1",
        "Host: example.com:443\r\n",
        b"",
    ));
    assert_eq!(r.method, Method::CONNECT);
}

#[test]
fn repeated_fields_keep_their_order_and_names_are_lower_case() {
    let r = one(&get(
        "X-Tag: one\r\nx-tag: two\r\nContent-Type: text/plain\r\n",
        b"",
    ));
    let tags: Vec<_> = r.headers.get_all("x-tag").iter().collect();
    assert_eq!(tags, ["one", "two"]);
    assert!(
        r.headers
            .keys()
            .all(|k| k.as_str() == k.as_str().to_lowercase())
    );
    assert_eq!(r.header_str(CONTENT_TYPE), Some("text/plain"));
}

#[test]
fn whitespace_around_field_values_is_not_part_of_them() {
    let r = one(&get("X-A:  \t padded \t \r\nX-B:\r\n", b""));
    assert_eq!(r.header_str("x-a"), Some("padded"));
    assert_eq!(r.header_str("x-b"), Some(""));
}

#[test]
fn a_content_length_body_shares_the_memory_it_was_read_into() {
    let data = get("Content-Length: 5\r\n", b"hello");
    let mut input = buf(&data);
    let (start, len) = (input.as_ptr(), input.len());
    let mut out = Vec::new();
    HttpServerCodec::new().decode(&mut input, &mut out).unwrap();
    let r = out.pop().unwrap().unwrap();
    assert_eq!(&r.body[..], b"hello");
    assert!(inside(&r.body, start, len), "the body was copied");
    assert!(input.is_empty());
}

#[test]
fn bodies_on_get_and_head_are_consumed_so_the_next_request_starts_right() {
    for method in ["GET", "HEAD", "DELETE", "OPTIONS"] {
        let mut data = request(
            &format!("{method} / HTTP/1.1"),
            "Host: a\r\nContent-Length: 19\r\n",
            b"GET /not-a-request ",
        );
        data.extend_from_slice(&get("", b""));
        let out = decode(&data);
        assert_eq!(out.len(), 2, "{method}: {out:?}");
        let first = out[0].as_ref().unwrap();
        assert_eq!(&first.body[..], b"GET /not-a-request ");
        assert_eq!(out[1].as_ref().unwrap().path(), "/");
    }
    let r = one(&request(
        "HEAD / HTTP/1.1",
        "Host: a\r\nTransfer-Encoding: chunked\r\n",
        b"3\r\nabc\r\n0\r\n\r\n",
    ));
    assert!(r.is_head());
    assert_eq!(&r.body[..], b"abc");
}

/// Three requests of each framing, back to back.
fn pipeline() -> Vec<u8> {
    let mut data = Vec::new();
    data.extend_from_slice(&request("GET /1 HTTP/1.1", "Host: a\r\n", b""));
    data.extend_from_slice(&request(
        "POST /2 HTTP/1.1",
        "Host: a\r\nContent-Length: 7\r\n",
        b"payload",
    ));
    data.extend_from_slice(&request(
        "PUT /3 HTTP/1.1",
        "Host: a\r\nTransfer-Encoding: chunked\r\n",
        b"4;x=y\r\nchun\r\n3\r\nked\r\n0\r\nT: v\r\n\r\n",
    ));
    data.extend_from_slice(&request("DELETE /4 HTTP/1.0", "", b""));
    data
}

#[test]
fn pipelined_requests_in_one_read_come_out_in_order() {
    let out = decode(&pipeline());
    let summary: Vec<_> = out
        .iter()
        .map(|r| {
            let r = r.as_ref().unwrap();
            (r.method.as_str(), r.path(), r.body.to_vec(), r.keep_alive)
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("GET", "/1", b"".to_vec(), true),
            ("POST", "/2", b"payload".to_vec(), true),
            ("PUT", "/3", b"chunked".to_vec(), true),
            ("DELETE", "/4", b"".to_vec(), false),
        ]
    );
    assert_eq!(out[2].as_ref().unwrap().trailers["t"], "v");
}

#[test]
fn a_pipeline_cut_at_any_byte_decodes_the_same() {
    let data = pipeline();
    let whole = feed(&mut HttpServerCodec::new(), [&data[..]]);
    for cut in 0..=data.len() {
        let (a, b) = data.split_at(cut);
        let split = feed(&mut HttpServerCodec::new(), [a, b]);
        assert_eq!(split, whole, "cut at {cut}");
    }
}

#[test]
fn nothing_is_delivered_until_the_body_is_complete() {
    let mut codec = HttpServerCodec::new();
    let mut input = buf(&get("Content-Length: 10\r\n", b"01234"));
    let mut out = Vec::new();
    codec.decode(&mut input, &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(&input[..], b"01234", "the head is consumed, the body waits");
    input.extend_from_slice(b"56789GET");
    codec.decode(&mut input, &mut out).unwrap();
    assert_eq!(&out.pop().unwrap().unwrap().body[..], b"0123456789");
    assert_eq!(&input[..], b"GET");
}

#[test]
fn empty_lines_before_a_request_are_ignored() {
    let mut data = b"\r\n\r\n\n".to_vec();
    data.extend_from_slice(&get("Content-Length: 1\r\n", b"x"));
    data.extend_from_slice(b"\r\n");
    data.extend_from_slice(&get("", b""));
    let out = decode(&data);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(Result::is_ok));
}

#[test]
fn request_lines_and_fields_may_end_with_a_bare_newline() {
    let r = one(b"GET /lf HTTP/1.1\nHost: a\nX: y\n\n");
    assert_eq!(r.path(), "/lf");
    assert_eq!(r.header_str("x"), Some("y"));
}

#[test]
fn request_target_forms() {
    let r = one(&request(
        "GET http://example.com/p?q HTTP/1.1",
        "Host: example.com\r\n",
        b"",
    ));
    assert_eq!(r.uri.scheme_str(), Some("http"));
    assert_eq!(r.uri.host(), Some("example.com"));
    assert_eq!((r.path(), r.query()), ("/p", Some("q")));

    let r = one(&request("OPTIONS * HTTP/1.1", "Host: a\r\n", b""));
    assert_eq!(r.path(), "*");

    let r = one(&request(
        "CONNECT example.com:443 HTTP/1.1",
        "Host: example.com:443\r\n",
        b"",
    ));
    assert_eq!(
        r.uri.authority().map(|a| a.as_str()),
        Some("example.com:443")
    );
    assert_eq!(r.path(), "");

    let bad = [
        "GET * HTTP/1.1",
        "CONNECT / HTTP/1.1",
        "CONNECT http://example.com/ HTTP/1.1",
        "CONNECT example.com HTTP/1.1",
        "CONNECT user@example.com:443 HTTP/1.1",
        "GET example.com:80 HTTP/1.1",
        "GET example.com HTTP/1.1",
        "GET /a#fragment HTTP/1.1",
        "GET http:/x HTTP/1.1",
        "OPTIONS ** HTTP/1.1",
    ];
    for line in bad {
        assert_eq!(
            refused(&request(line, "Host: a\r\n", b"")),
            StatusCode::BAD_REQUEST,
            "{line}"
        );
    }
}

#[test]
fn http_1_0_needs_no_host() {
    let r = one(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.version, Version::HTTP_10);
    assert!(!r.keep_alive);
}

#[test]
fn an_unfinished_request_at_end_of_input_is_dropped_quietly() {
    for partial in [
        &b"GE"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"\r\n",
    ] {
        let mut data = get("", b"");
        data.extend_from_slice(partial);
        let out = decode(&data);
        assert_eq!(out.len(), 1, "{:?}", String::from_utf8_lossy(partial));
        assert!(out[0].is_ok());
    }
}

#[test]
fn after_an_error_nothing_more_is_decoded_and_input_is_dropped() {
    let mut codec = HttpServerCodec::new();
    let mut data = get("", b"");
    data.extend_from_slice(b"BREW / HTTP/1.1\r\nHost: a\r\n\r\n");
    data.extend_from_slice(&get("", b""));
    let mut input = buf(&data);
    let mut out = Vec::new();
    codec.decode(&mut input, &mut out).unwrap();
    assert_eq!(out.len(), 2);
    assert!(out[0].is_ok());
    assert_eq!(
        out[1].as_ref().unwrap_err().status,
        StatusCode::NOT_IMPLEMENTED
    );
    assert!(input.is_empty());
    out.clear();
    let mut more = buf(&get("", b""));
    codec.decode(&mut more, &mut out).unwrap();
    codec.decode_eof(&mut more, &mut out).unwrap();
    assert!(out.is_empty() && more.is_empty());
}

#[test]
fn a_zero_length_body_is_an_empty_buffer() {
    let r = one(&get("Content-Length: 0\r\n", b""));
    assert_eq!(r.body, ByteBuf::new());
    let limits = HttpLimits {
        max_body: 0,
        ..HttpLimits::default()
    };
    let out = super::decode_with(limits, &get("Content-Length: 0\r\n", b""));
    assert!(out[0].is_ok());
}
