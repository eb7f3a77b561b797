//! What a request asks for: `Range` (206, 416, `If-Range`), HEAD (the
//! headers of GET without the body), and conditional requests (304).

use std::time::Duration;

use crate::client::{Client, Response};
use crate::site::{Site, Spec, data};

/// Asserts a 206 with bytes `first..=last` of `file`.
fn assert_part(what: &str, response: &Response, file: &[u8], first: usize, last: usize) {
    assert_eq!(response.status, 206, "{what}: {response:?}");
    assert_eq!(
        response.header("content-range"),
        Some(format!("bytes {first}-{last}/{}", file.len()).as_str()),
        "{what}"
    );
    assert_eq!(
        response.content_length(),
        Some((last - first + 1) as u64),
        "{what}"
    );
    assert!(
        response.body[..] == file[first..=last],
        "{what}: wrong bytes"
    );
}

/// Asserts a 200 with all of `file` and no `Content-Range`.
fn assert_full(what: &str, response: &Response, file: &[u8]) {
    assert_eq!(response.status, 200, "{what}: {response:?}");
    assert_eq!(response.header("content-range"), None, "{what}");
    assert!(response.body == file, "{what}: wrong bytes");
}

/// Asserts a 416 naming the length.
fn assert_unsatisfiable(what: &str, response: &Response, len: usize) {
    assert_eq!(response.status, 416, "{what}: {response:?}");
    assert_eq!(
        response.header("content-range"),
        Some(format!("bytes */{len}").as_str()),
        "{what}"
    );
}

#[test]
fn ranges_are_answered_206_200_or_416() {
    let site = Site::new("ranges");
    let file = data(3, 1000);
    site.write("r.bin", &file);
    site.write("empty.txt", b"");
    let running = Spec::new(&site.root).start();
    // Every answer here keeps the connection: one client for all.
    let mut client = running.client();
    let mut get = |range: &str| client.get_with("/r.bin", &[("Range", range)]);
    for (range, first, last) in [
        ("bytes=10-19", 10, 19),
        ("bytes=990-", 990, 999),
        ("bytes=-10", 990, 999),
        // A suffix longer than the file: all of it.
        ("bytes=-5000", 0, 999),
        // An end beyond the file is clamped.
        ("bytes=900-5000", 900, 999),
        ("bytes=5-5", 5, 5),
        ("bytes=0-0", 0, 0),
        ("bytes=999-999", 999, 999),
        ("bytes=0-", 0, 999),
    ] {
        let response = get(range);
        assert_part(range, &response, &file, first, last);
        assert_eq!(response.header("accept-ranges"), Some("bytes"), "{range}");
        assert!(response.header("etag").is_some(), "{range}");
    }
    // Several ranges, other units and bad syntax: the whole file.
    for range in [
        "bytes=0-1,5-6",
        "bytes=abc",
        "bytes=5-2",
        "items=0-1",
        "bytes=-",
        "bytes 0-1",
    ] {
        assert_full(range, &get(range), &file);
    }
    for range in ["bytes=1000-", "bytes=5000-6000", "bytes=-0"] {
        assert_unsatisfiable(range, &get(range), file.len());
    }
    // If-Range: the current tag keeps the range, another tag or a weak
    // one gets the whole file.
    let etag = client
        .get("/r.bin")
        .header("etag")
        .expect("ETag")
        .to_string();
    let response = client.get_with("/r.bin", &[("Range", "bytes=1-3"), ("If-Range", &etag)]);
    assert_part("If-Range current", &response, &file, 1, 3);
    let response = client.get_with(
        "/r.bin",
        &[("Range", "bytes=1-3"), ("If-Range", "\"stale-tag\"")],
    );
    assert_full("If-Range stale", &response, &file);
    let weak = format!("W/{etag}");
    let response = client.get_with("/r.bin", &[("Range", "bytes=1-3"), ("If-Range", &weak)]);
    assert_full("If-Range weak", &response, &file);
    // A range on an empty file is never satisfiable.
    for range in ["bytes=0-", "bytes=-1", "bytes=0-0"] {
        let response = client.get_with("/empty.txt", &[("Range", range)]);
        assert_unsatisfiable(range, &response, 0);
    }
    // HEAD with a range: the 206's headers.
    let response = client.head_with("/r.bin", &[("Range", "bytes=10-19")]);
    assert_eq!(response.status, 206);
    assert_eq!(response.content_length(), Some(10));
    assert_eq!(response.header("content-range"), Some("bytes 10-19/1000"));
    // Still in step after all of that.
    assert_full("last", &client.get("/r.bin"), &file);
}

/// The header fields that describe the representation (not `Date`).
fn describing(response: &Response) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = response
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    fields.sort();
    fields
}

#[test]
fn head_has_the_headers_of_get_and_no_body() {
    let site = Site::new("head");
    let file = data(4, 1 << 20);
    site.write("mib.bin", &file);
    site.write("empty.txt", b"");
    site.write("dir/x.txt", b"x");
    let running = Spec::new(&site.root).start();
    let mut client = running.client();
    for (path, len) in [("/mib.bin", file.len()), ("/empty.txt", 0), ("/dir/", 0)] {
        let head = client.head_with(path, &[]);
        assert_eq!(head.status, 200, "{path}: {head:?}");
        // The next request on the same connection parses: no stray body.
        let get = client.get(path);
        assert_eq!(get.status, 200, "{path}");
        assert_eq!(describing(&head), describing(&get), "{path}");
        assert_eq!(head.content_length(), Some(get.body.len() as u64), "{path}");
        if len > 0 {
            assert_eq!(get.body.len(), len, "{path}");
        }
    }
    // HEAD as the last of a pipeline, then GET: still in step.
    client.send(&crate::client::request("HEAD", "/mib.bin", &[]));
    client.send(&crate::client::request("GET", "/empty.txt", &[]));
    let head = client.response(true).expect("HEAD");
    assert_eq!(head.content_length(), Some(file.len() as u64));
    let get = client.response(false).expect("GET");
    assert_eq!((get.status, get.body.len()), (200, 0));
}

/// RFC 9110 §9.3.2: no response to HEAD carries content, whatever its
/// status; a body would be read as the start of the next response.
#[test]
fn head_answers_without_a_body_whatever_the_status() {
    let site = Site::new("head-errors");
    site.write("a.txt", b"abc");
    site.mkdir("dir");
    let running = Spec::new(&site.root).start();
    let mut with_body = Vec::new();
    for (target, extra, status) in [
        ("/a.txt", &[][..], 200),
        ("/missing", &[][..], 404),
        ("/dir", &[][..], 301),
        ("/../a.txt", &[][..], 403),
        ("/a.txt", &[("Range", "bytes=10-")][..], 416),
    ] {
        let mut client = running.client();
        // HEAD, then GET pipelined behind it.
        client.send(&crate::client::request("HEAD", target, extra));
        client.send(&crate::client::request("GET", "/a.txt", &[]));
        let head = client.response(true).expect("the HEAD response");
        assert_eq!(head.status, status, "HEAD {target}");
        match client.response(false) {
            Ok(next) => assert_eq!((next.status, next.body.as_slice()), (200, &b"abc"[..])),
            Err(e) => with_body.push(format!("HEAD {target} → {status}: {e}")),
        }
    }
    assert!(
        with_body.is_empty(),
        "answered HEAD with a body:\n{}",
        with_body.join("\n")
    );
}

#[test]
fn conditional_requests_get_304() {
    let site = Site::new("conditional");
    let file = data(5, 5000);
    site.write("c.txt", &file);
    let running = Spec::new(&site.root).start();
    let mut client = running.client();
    let first = client.get("/c.txt");
    let etag = first.header("etag").expect("ETag").to_string();
    let modified = first
        .header("last-modified")
        .expect("Last-Modified")
        .to_string();
    let when = httpdate::parse_http_date(&modified).expect("an HTTP date");
    let earlier = httpdate::fmt_http_date(when - Duration::from_secs(86_400));
    let listed = format!("\"nope\", {etag}");
    let weak = format!("W/{etag}");
    let not_modified: &[&[(&str, &str)]] = &[
        &[("If-None-Match", &etag)],
        &[("If-None-Match", &listed)],
        &[("If-None-Match", &weak)],
        &[("If-None-Match", "*")],
        &[("If-Modified-Since", &modified)],
        // If-None-Match wins over If-Modified-Since.
        &[("If-None-Match", &etag), ("If-Modified-Since", &earlier)],
    ];
    for headers in not_modified {
        for method in ["GET", "HEAD"] {
            let response = client.call(method, "/c.txt", headers);
            assert_eq!(response.status, 304, "{method} {headers:?}: {response:?}");
            assert_eq!(response.header("etag"), Some(etag.as_str()), "{headers:?}");
            // The next response parses: nothing was sent after the head.
            assert_eq!(client.head_with("/c.txt", &[]).status, 200, "{headers:?}");
        }
    }
    let modified_since: &[&[(&str, &str)]] = &[
        &[("If-None-Match", "\"nope\"")],
        &[("If-Modified-Since", &earlier)],
        &[("If-Modified-Since", "not a date")],
        // If-None-Match wins, even when the date would match.
        &[
            ("If-None-Match", "\"nope\""),
            ("If-Modified-Since", &modified),
        ],
    ];
    for headers in modified_since {
        let response = client.get_with("/c.txt", headers);
        assert_eq!(response.status, 200, "{headers:?}: {response:?}");
        assert!(response.body == file, "{headers:?}");
    }
    // Raw bytes: a 304 ends with its head.
    let mut raw = Client::connect(running.server.local_addr());
    raw.send(&crate::client::request(
        "GET",
        "/c.txt",
        &[("If-None-Match", &etag), ("Connection", "close")],
    ));
    let (bytes, _) = raw.read_until_closed();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.starts_with("HTTP/1.1 304 ") && text.ends_with("\r\n\r\n"),
        "{text:?}"
    );
}
