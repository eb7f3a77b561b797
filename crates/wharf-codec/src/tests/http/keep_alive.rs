//! Whether the connection persists: HTTP/1.0 and HTTP/1.1 against every
//! shape of `Connection` field, and the response helper that answers it.

use http::header::CONNECTION;
use http::{StatusCode, Version};

use super::{one, request};
use crate::HttpResponse;

#[test]
fn the_truth_table() {
    // (Connection fields, HTTP/1.0 keeps alive, HTTP/1.1 keeps alive)
    let table: [(&[&str], bool, bool); 14] = [
        (&[], false, true),
        (&["close"], false, false),
        (&["Close"], false, false),
        (&["CLOSE"], false, false),
        (&["keep-alive"], true, true),
        (&["Keep-Alive"], true, true),
        (&["upgrade, close"], false, false),
        (&["keep-alive, close"], false, false),
        (&["close, keep-alive"], false, false),
        (&["te, keep-alive"], true, true),
        (&["  keep-alive  ,te"], true, true),
        (&["keep-alive", "close"], false, false),
        (&["foo"], false, true),
        (&["closed, keep-alives"], false, true),
    ];
    for (fields, keep_10, keep_11) in table {
        let fields: String = fields
            .iter()
            .map(|v| format!("Connection: {v}\r\n"))
            .collect();
        for (version, expected) in [("1.0", keep_10), ("1.1", keep_11)] {
            let line = format!("GET / HTTP/{version}");
            let r = one(&request(&line, &format!("Host: a\r\n{fields}"), b""));
            assert_eq!(r.keep_alive, expected, "HTTP/{version} with {fields:?}");
        }
    }
}

#[test]
fn a_chunked_http_1_0_request_never_keeps_alive() {
    let r = one(&request(
        "POST / HTTP/1.0",
        "Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n",
        b"1\r\nx\r\n0\r\n\r\n",
    ));
    assert_eq!(&r.body[..], b"x");
    assert!(!r.keep_alive);
}

#[test]
fn responses_say_what_the_request_asked() {
    let answer = |line: &str, fields: &str| {
        let r = one(&request(line, &format!("Host: a\r\n{fields}"), b""));
        HttpResponse::new(StatusCode::OK)
            .keep_alive_for(&r)
            .headers
            .get(CONNECTION)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(answer("GET / HTTP/1.1", ""), None);
    assert_eq!(
        answer("GET / HTTP/1.1", "Connection: close\r\n").as_deref(),
        Some("close")
    );
    assert_eq!(answer("GET / HTTP/1.0", "").as_deref(), Some("close"));
    assert_eq!(
        answer("GET / HTTP/1.0", "Connection: keep-alive\r\n").as_deref(),
        Some("keep-alive")
    );
    let r = one(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.version, Version::HTTP_10);
}
