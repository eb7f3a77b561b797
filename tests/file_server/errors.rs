//! Requests the server refuses: each gets its status and, when the codec
//! refused it, a close; the server never crashes and serves on.

use crate::client::Client;
use crate::site::{Site, Spec};

#[test]
fn bad_requests_get_their_status_and_a_close() {
    let site = Site::new("errors");
    site.write("a.txt", b"still here");
    let running = Spec::new(&site.root).start();
    let addr = running.server.local_addr();
    let long_line = format!(
        "GET /{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "a".repeat(9 << 10)
    );
    let long_header = format!(
        "GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "b".repeat(9 << 10)
    );
    let many_headers = format!(
        "GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n{}\r\n",
        (0..150)
            .map(|i| format!("X-{i}: y\r\n"))
            .collect::<String>()
    );
    let cases: [(&str, &[u8], u16); 14] = [
        ("request line over 8 KiB", long_line.as_bytes(), 414),
        ("header block over 8 KiB", long_header.as_bytes(), 431),
        ("150 header fields", many_headers.as_bytes(), 431),
        (
            "garbage",
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
            400,
        ),
        ("garbage text", b"hello there\r\n\r\n", 400),
        (
            "unknown method",
            b"BREW / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            501,
        ),
        (
            "HTTP/2.0",
            b"GET / HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n",
            505,
        ),
        (
            "HTTP/3.0",
            b"GET / HTTP/3.0\r\nHost: 127.0.0.1\r\n\r\n",
            505,
        ),
        ("missing Host", b"GET /a.txt HTTP/1.1\r\n\r\n", 400),
        (
            "two Hosts",
            b"GET /a.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            400,
        ),
        (
            "Content-Length and Transfer-Encoding",
            b"POST /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\
              Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            "conflicting Content-Length",
            b"POST /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\
              Content-Length: 6\r\n\r\nhello!",
            400,
        ),
        (
            "body over the limit",
            b"POST /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2000000\r\n\r\n",
            413,
        ),
        (
            "unknown transfer coding",
            b"POST /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            501,
        ),
    ];
    for (what, bytes, status) in cases {
        let mut client = Client::connect(addr);
        client.send(bytes);
        let response = client
            .response(false)
            .unwrap_or_else(|e| panic!("{what}: no response: {e}"));
        assert_eq!(response.status, status, "{what}: {response:?}");
        assert!(response.connection_has("close"), "{what}: {response:?}");
        client.expect_closed();
        // The server serves the next connection.
        let mut next = Client::connect(addr);
        assert_eq!(next.get("/a.txt").body, b"still here", "after {what}");
    }
}

/// RFC 9110 §2.5 (issue 9, point 6): HTTP/1.2 is a later minor version of
/// HTTP/1, handled as HTTP/1.1, the highest this server supports; only
/// other major versions are 505.
#[test]
fn a_later_minor_version_of_http_1_is_served_as_http_1_1() {
    let site = Site::new("http-1-2");
    site.write("a.txt", b"served");
    let running = Spec::new(&site.root).start();
    let mut client = running.client();
    for version in ["1.2", "1.9", "1.2"] {
        client.send(format!("GET /a.txt HTTP/{version}\r\nHost: 127.0.0.1\r\n\r\n").as_bytes());
        let response = client
            .response(false)
            .unwrap_or_else(|e| panic!("HTTP/{version}: no response: {e}"));
        assert_eq!(response.status, 200, "HTTP/{version}: {response:?}");
        assert_eq!(response.version, "HTTP/1.1");
        assert_eq!(response.body, b"served");
        // Kept alive, as an HTTP/1.1 request is.
        assert!(!response.connection_has("close"), "{response:?}");
    }
    client.send(b"GET /a.txt HTTP/1.2\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let response = client.response(false).expect("the last response");
    assert!(response.status == 200 && response.connection_has("close"));
    client.expect_closed();
}

#[test]
fn other_methods_get_405_with_allow_and_the_connection_serves_on() {
    let site = Site::new("methods");
    site.write("a.txt", b"fine");
    let running = Spec::new(&site.root).start();
    let mut client = running.client();
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        // With a body, which the codec consumes whole.
        client.send(
            format!(
                "{method} /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello"
            )
            .as_bytes(),
        );
        let response = client.response(false).expect("the 405");
        assert_eq!(response.status, 405, "{method}: {response:?}");
        assert_eq!(response.header("allow"), Some("GET, HEAD"), "{method}");
        // The body did not leak into the next request.
        assert_eq!(client.get("/a.txt").body, b"fine", "after {method}");
    }
    // A chunked body too.
    client.send(
        b"POST /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(client.response(false).expect("the 405").status, 405);
    assert_eq!(client.get("/a.txt").body, b"fine");
}
