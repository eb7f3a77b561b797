//! Connections: pipelined requests answered in order (and none after a
//! `Connection: close`), keep-alive in HTTP/1.1 and HTTP/1.0, half-closing
//! clients, clients that pipeline without reading, and the connection
//! limit.

use crate::client::{Client, Closed, request};
use crate::common::Config;
use crate::site::{Site, Spec, data, descriptors_on};

/// A method, a target and extra header lines.
type Call<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

#[test]
fn pipelined_requests_are_answered_complete_and_in_order() {
    let site = Site::new("pipeline");
    let running = Spec::new(&site.root).start();
    pipelined_round(&site, &running);
}

/// With opens on a pool (as for a root on a network file system), every
/// answer is prepared off the handler's thread and comes back to it: still
/// one at a time, in order, in every mode × trigger.
#[test]
fn pipelined_requests_are_answered_in_order_with_opens_on_a_pool() {
    let site = Site::new("pipeline-pool");
    let configs = Config::all().into_iter().filter(|c| c.pooled).collect();
    crate::common::for_each(configs, |config| {
        let running = Spec::new(&site.root).config(config).open_pool(true).start();
        pipelined_round(&site, &running);
    });
}

fn pipelined_round(site: &Site, running: &crate::site::Running) {
    let a = data(10, 300);
    let big = data(11, 1 << 20);
    site.write("a.txt", &a);
    site.write("big.bin", &big);
    let mut client = running.client();
    let requests: [Call; 8] = [
        ("GET", "/a.txt", &[]),
        ("HEAD", "/big.bin", &[]),
        ("GET", "/missing", &[]),
        ("GET", "/big.bin", &[]),
        ("HEAD", "/a.txt", &[]),
        ("GET", "/a.txt", &[("Range", "bytes=5-9")]),
        ("POST", "/a.txt", &[("Content-Length", "3")]),
        ("GET", "/a.txt", &[]),
    ];
    let mut all = Vec::new();
    for (method, target, extra) in requests {
        all.extend_from_slice(&request(method, target, extra));
        if method == "POST" {
            all.extend_from_slice(b"abc");
        }
    }
    // All of them in one write.
    client.send(&all);
    let mut got = Vec::new();
    for (method, target, _) in requests {
        let response = client
            .response(method == "HEAD")
            .unwrap_or_else(|e| panic!("{method} {target}: {e}"));
        got.push(response);
    }
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 404, 200, 200, 206, 405, 200]);
    assert!(got[0].body == a);
    assert_eq!(got[1].content_length(), Some(big.len() as u64));
    assert!(got[1].body.is_empty());
    assert_eq!(got[2].body, b"not found\n");
    assert!(got[3].body == big, "the 1 MiB body in the middle");
    assert_eq!(got[4].content_length(), Some(a.len() as u64));
    assert!(got[5].body[..] == a[5..10]);
    assert!(got[7].body == a);
    // And the connection is still good.
    assert!(client.get("/a.txt").body == a);
}

#[test]
fn keep_alive_and_close_in_http_1_1_and_1_0() {
    let site = Site::new("keepalive");
    let a = data(12, 64);
    site.write("a.txt", &a);
    let running = Spec::new(&site.root).start();
    let addr = running.server.local_addr();

    // HTTP/1.1 keeps the connection by default.
    let mut client = running.client();
    for _ in 0..3 {
        let response = client.get("/a.txt");
        assert_eq!(response.status, 200);
        assert!(!response.connection_has("close"), "{response:?}");
    }
    // Until the client says close: then the server closes after the response.
    let response = client.get_with("/a.txt", &[("Connection", "close")]);
    assert!(response.status == 200 && response.body == a);
    assert!(response.connection_has("close"), "{response:?}");
    assert_eq!(client.expect_closed(), Closed::Eof);

    // HTTP/1.0 without keep-alive: one response, then the close.
    let mut client = Client::connect(addr);
    client.send(b"GET /a.txt HTTP/1.0\r\n\r\n");
    let response = client.response(false).expect("HTTP/1.0 response");
    assert!(response.status == 200 && response.body == a);
    // RFC 9110 §6.2: the server's own version.
    assert_eq!(response.version, "HTTP/1.1");
    assert!(response.connection_has("close"), "{response:?}");
    assert_eq!(client.expect_closed(), Closed::Eof);

    // HTTP/1.0 with keep-alive: said so, and the connection serves on.
    let mut client = Client::connect(addr);
    for _ in 0..2 {
        client.send(b"GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let response = client.response(false).expect("HTTP/1.0 keep-alive");
        assert!(response.status == 200 && response.body == a);
        assert!(response.connection_has("keep-alive"), "{response:?}");
    }
    client.send(b"HEAD /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let response = client.response(true).expect("HTTP/1.0 HEAD");
    assert_eq!(response.content_length(), Some(a.len() as u64));
    drop(client);
    crate::common::wait_for_no_connections(&running.server);
}

/// RFC 9112 §9.6: after the response to a request with `close`, the
/// server closes; it does not answer requests pipelined behind it.
#[test]
fn nothing_is_answered_after_a_request_that_closes() {
    let site = Site::new("close-pipeline");
    site.write("a.txt", b"first");
    site.write("b.txt", b"second");
    let running = Spec::new(&site.root).start();
    let mut client = running.client();
    let mut both = request("GET", "/a.txt", &[("Connection", "close")]);
    both.extend_from_slice(&request("GET", "/b.txt", &[]));
    client.send(&both);
    let response = client.response(false).expect("the first response");
    assert_eq!(response.body, b"first");
    assert!(response.connection_has("close"));
    let (rest, _) = client.read_until_closed();
    assert!(
        rest.is_empty(),
        "answered a request after `Connection: close`: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

#[test]
fn a_client_that_half_closes_after_its_request_gets_the_whole_response() {
    let site = Site::new("half-close");
    let big = data(14, 1 << 20);
    site.write("big.bin", &big);
    let running = Spec::new(&site.root).start();
    let mut client = running.client();
    client.send(&request("GET", "/big.bin", &[]));
    client
        .stream()
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let response = client.response(false).expect("the response");
    assert!(response.status == 200 && response.body == big);
    client.expect_closed();
}

#[test]
fn connections_over_the_limit_get_503_and_a_close() {
    let site = Site::new("limit");
    site.write("a.txt", b"hello");
    let running = Spec::new(&site.root).max_connections(2).start();
    let mut first = running.client();
    let mut second = running.client();
    assert_eq!(first.get("/a.txt").status, 200);
    assert_eq!(second.get("/a.txt").status, 200);
    running.wait_open(2);

    // A third, before it sends anything.
    let mut third = running.client();
    let response = third.response(false).expect("the 503");
    assert_eq!(response.status, 503, "{response:?}");
    assert!(response.connection_has("close"));
    assert_eq!(response.header("retry-after"), Some("1"));
    third.expect_closed();
    // A client closes at the end of the stream; the server then does too
    // (until then it drains the input: see `linger` in the handler).
    drop(third);
    // A fourth that sends its request at once gets the same.
    let mut fourth = running.client();
    fourth.send(&request("GET", "/a.txt", &[]));
    let response = fourth.response(false).expect("the 503");
    assert_eq!(response.status, 503, "{response:?}");
    fourth.expect_closed();
    drop(fourth);
    // The two that were in are still served.
    assert_eq!(first.get("/a.txt").status, 200);

    // One leaves: a new one is served.
    drop(second);
    running.wait_open(1);
    let mut fifth = running.client();
    let response = fifth.get("/a.txt");
    assert!(response.status == 200 && response.body == b"hello");
    assert_eq!(first.get("/a.txt").status, 200);
}

/// A client that pipelines requests and never reads is a slow client: the
/// server must not take on its requests without bound (here: one open
/// descriptor and one queued response per request).
#[test]
fn a_client_that_pipelines_without_reading_holds_bounded_resources() {
    let site = Site::new("no-reader");
    let path = site.write("quarter.bin", &data(13, 256 << 10));
    // Without the open-file cache, the descriptors counted are the
    // responses' (with it, they all share one).
    let running = Spec::new(&site.root).open_file_cache(0).start();
    let mut client = running.client();
    let one = request("GET", "/quarter.bin", &[]);
    let count = 300;
    let all: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * count)
        .collect();
    client.send(&all);
    // Watch the descriptors the server opens for them: a bounded server
    // stays under the bound for the whole window (it stops reading when
    // its output backs up); an unbounded one opens one per request at once.
    let bound = 64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut most = 0;
    while most <= bound && std::time::Instant::now() < deadline {
        most = most.max(descriptors_on(&path));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        most <= bound,
        "{most} descriptors open on one file for one connection that does not read"
    );
}

/// RFC 9112 §9.6: a server that closes right after a response while the
/// client's next requests sit unread in its socket makes the kernel reset
/// the connection, and the reset can destroy the response before the
/// client reads it. So a connection closed after a response is half-closed
/// first and its input drained until the client closes (a lingering
/// close). Here the client pipelines 256 KiB of requests behind one with
/// `Connection: close`, and only then reads. In every mode × trigger.
#[test]
fn a_response_before_a_close_survives_unread_pipelined_requests() {
    let site = Site::new("lingering-close");
    let a = data(15, 8 << 20);
    site.write("a.bin", &a);
    let configs = Config::all().into_iter().filter(|c| c.pooled).collect();
    crate::common::for_each(configs, |config| {
        let what = config.to_string();
        let running = Spec::new(&site.root).config(config).start();
        let mut client = running.client();
        let mut all = request("GET", "/a.bin", &[("Connection", "close")]);
        let more = request("GET", "/a.bin", &[]);
        while all.len() < 256 << 10 {
            all.extend_from_slice(&more);
        }
        client.send(&all);
        let response = client
            .response(false)
            .unwrap_or_else(|e| panic!("{what}: the response before the close was lost: {e}"));
        assert_eq!(response.status, 200, "{what}");
        assert!(response.body == a, "{what}: the body");
        assert!(response.connection_has("close"), "{what}");
        assert_eq!(
            client.expect_closed(),
            Closed::Eof,
            "{what}: a reset, not a close"
        );
    });
}
