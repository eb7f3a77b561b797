//! Every way a request is refused, and the status it is refused with.

use http::{Method, StatusCode, Version};

use super::{decode, get, one, refused, request};
use crate::{HttpError, HttpResponse};

const BAD: StatusCode = StatusCode::BAD_REQUEST;

#[test]
fn bad_syntax_is_400() {
    let cases: [&[u8]; 14] = [
        b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
        b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / FTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1x\r\nHost: a\r\n\r\n",
        b"GET /\r\n\r\n",
        b"\x00GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\rHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nBad(Name): x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n: empty name\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n",
    ];
    for data in cases {
        assert_eq!(refused(data), BAD, "{:?}", String::from_utf8_lossy(data));
    }
}

#[test]
fn unknown_methods_are_501() {
    for line in [
        "BREW / HTTP/1.1",
        "get / HTTP/1.1",
        "PROPFIND / HTTP/1.1",
        "GETS / HTTP/1.1",
    ] {
        assert_eq!(
            refused(&request(line, "Host: a\r\n", b"")),
            StatusCode::NOT_IMPLEMENTED,
            "{line}"
        );
    }
}

#[test]
fn other_http_versions_are_505() {
    for line in [
        "GET / HTTP/2.0",
        "GET / HTTP/0.9",
        "GET / HTTP/3",
        "GET / HTTP/10.0",
        "GET / HTTP/2.1",
    ] {
        assert_eq!(
            refused(&request(line, "Host: a\r\n", b"")),
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            "{line}"
        );
    }
}

/// RFC 9110 §2.5: a request with a higher minor version of a major
/// version the server supports is handled as the highest minor version it
/// supports. So HTTP/1.2 to 1.9 are HTTP/1.1 requests, not 505 (issue 9,
/// point 6), with all that implies: persistent by default, and a `Host`
/// field required.
#[test]
fn higher_minor_versions_of_http_1_are_http_1_1() {
    for minor in 2..=9 {
        let line = format!("GET /x?y HTTP/1.{minor}");
        let r = one(&request(&line, "Host: a\r\n", b""));
        assert_eq!(r.version, Version::HTTP_11, "{line}");
        assert_eq!(
            (r.method, r.uri.to_string()),
            (Method::GET, "/x?y".to_string())
        );
        assert!(r.keep_alive, "{line}");
        let r = one(&request(&line, "Host: a\r\nConnection: close\r\n", b""));
        assert!(!r.keep_alive, "{line} with Connection: close");
        assert_eq!(
            refused(&request(&line, "", b"")),
            BAD,
            "{line} without Host"
        );
    }
    // With a body, and pipelined behind another request.
    let mut data = request(
        "POST / HTTP/1.2",
        "Host: a\r\nContent-Length: 3\r\n",
        b"abc",
    );
    data.extend_from_slice(&request("GET /2 HTTP/1.9", "Host: a\r\n", b""));
    let decoded = decode(&data);
    assert_eq!(decoded.len(), 2, "{decoded:?}");
    let first = decoded[0].as_ref().expect("the POST");
    assert_eq!(&first.body[..], b"abc");
    assert_eq!(decoded[1].as_ref().expect("the GET").uri.path(), "/2");
}

#[test]
fn http_1_1_needs_exactly_one_valid_host() {
    assert_eq!(refused(b"GET / HTTP/1.1\r\n\r\n"), BAD);
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
        BAD
    );
    assert_eq!(
        refused(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"),
        BAD
    );
    for host in [
        "a b",
        "user@example.com",
        "example.com:80x",
        "[::1",
        "[]",
        "a%zz",
        "a%2",
        "[::1]x",
    ] {
        let data = request("GET / HTTP/1.1", &format!("Host: {host}\r\n"), b"");
        assert_eq!(refused(&data), BAD, "{host}");
    }
    for host in [
        "",
        "example.com",
        "example.com:8080",
        "[::1]:80",
        "127.0.0.1",
        "xn--bcher-kva.example:443",
        "a%20b",
        "example.com:",
    ] {
        let data = request("GET / HTTP/1.1", &format!("Host: {host}\r\n"), b"");
        assert!(super::one(&data).keep_alive, "{host}");
    }
}

#[test]
fn malformed_content_lengths_are_400() {
    for value in [
        "abc",
        "-1",
        "+1",
        "1 2",
        "0x10",
        "1.0",
        "",
        "5,",
        "5, 6",
        "99999999999999999999",
        "18446744073709551616",
    ] {
        let data = get(&format!("Content-Length: {value}\r\n"), b"");
        assert_eq!(refused(&data), BAD, "Content-Length: {value:?}");
    }
    let data = get("Content-Length: 1\r\nContent-Length: 2\r\n", b"xy");
    assert_eq!(refused(&data), BAD);
}

#[test]
fn identical_repeated_content_lengths_are_one() {
    for fields in [
        "Content-Length: 3\r\nContent-Length: 3\r\n",
        "Content-Length: 3, 3\r\n",
        "Content-Length: 003\r\n",
    ] {
        let r = super::one(&get(fields, b"abc"));
        assert_eq!(&r.body[..], b"abc", "{fields}");
    }
}

#[test]
fn a_content_length_over_the_limit_is_413_before_the_body_arrives() {
    let data = get(&format!("Content-Length: {}\r\n", (1 << 20) + 1), b"");
    assert_eq!(refused(&data), StatusCode::PAYLOAD_TOO_LARGE);
    let data = get("Content-Length: 18446744073709551615\r\n", b"");
    assert_eq!(refused(&data), StatusCode::PAYLOAD_TOO_LARGE);
}

#[test]
fn transfer_codings_other_than_a_final_chunked_are_refused() {
    let cases = [
        ("gzip", BAD),
        ("identity", BAD),
        ("chunked, gzip", BAD),
        ("chunked, identity", BAD),
        ("chunked, chunked", BAD),
        ("chunked;q=1", BAD),
        ("", BAD),
        (",", BAD),
        ("gzip, chunked", StatusCode::NOT_IMPLEMENTED),
        ("identity, chunked", StatusCode::NOT_IMPLEMENTED),
    ];
    for (value, status) in cases {
        let data = get(&format!("Transfer-Encoding: {value}\r\n"), b"0\r\n\r\n");
        assert_eq!(refused(&data), status, "Transfer-Encoding: {value:?}");
    }
    for value in [
        "chunked",
        "Chunked",
        "CHUNKED",
        " chunked ",
        "chunked, ",
        ", chunked",
    ] {
        let data = get(
            &format!("Transfer-Encoding: {value}\r\n"),
            b"1\r\nx\r\n0\r\n\r\n",
        );
        assert_eq!(&super::one(&data).body[..], b"x", "{value:?}");
    }
}

#[test]
fn errors_describe_themselves_without_echoing_the_request() {
    let error = super::refused_with(
        crate::HttpLimits::default(),
        b"BREW /<script> HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert_eq!(
        error.to_string(),
        "501 Not Implemented: unknown request method"
    );
    let response = HttpResponse::from_error(&error);
    assert_eq!(response.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(response.headers["connection"], "close");
    let HttpError { reason, .. } = error;
    assert!(!reason.contains("script"));
}
