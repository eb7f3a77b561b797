//! The file server over HTTPS (issue 10): the same site, byte for byte,
//! through the TLS layer. Every transfer strategy falls back to reading
//! the file into the record batches there (sendfile cannot pass through
//! user-space encryption), so each is counted as `copy`; ranges, HEAD,
//! conditional requests, listings and keep-alive behave as over HTTP, in
//! every reactor mode × trigger.

use std::sync::OnceLock;

use wharf::{TransferStrategy, Trigger};

use crate::client::first_difference;
use crate::common::tls::Pki;
use crate::common::{self, Config};
use crate::site::{Site, Spec};
use crate::transfers::{SENDS, assert_file, files};

/// One certificate for every test here (generating keys is not free).
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| Pki::new("file-server", &["files.test"]))
}

fn https(spec: Spec) -> Spec {
    let pki = pki();
    spec.tls(pki.server("files.test"), pki.rustls_client())
}

#[test]
fn https_serves_files_byte_identical_with_every_strategy() {
    let site = Site::new("https-strategies");
    let files = files(
        &site,
        &[
            ("zero.txt", 0, "text/plain"),
            ("one.json", 1, "application/json"),
            ("page.html", 4 << 10, "text/html"),
            ("image.png", 1 << 20, "image/png"),
            ("big.bin", 64 << 20, "application/octet-stream"),
        ],
    );
    let total: u64 = files.iter().map(|f| f.bytes.len() as u64).sum();
    for trigger in [Trigger::Edge, Trigger::Level] {
        for send in SENDS {
            let what = format!("https {}/{trigger:?}", send.label);
            let running = https(send.spec(&site).trigger(trigger)).start();
            let mut client = running.client();
            for file in &files {
                assert_file(&what, &client.get(&format!("/{}", file.name)), file);
            }
            // Every byte went through the copy path into the records.
            let stats = running.server.event_loops()[0].transfer_stats();
            assert_eq!(
                stats.bytes_by(TransferStrategy::ReadWrite),
                total,
                "{what}: {stats:?}"
            );
            for zero_copy in [TransferStrategy::Sendfile, TransferStrategy::Splice] {
                assert_eq!(stats.bytes_by(zero_copy), 0, "{what}: {stats:?}");
            }
        }
    }
}

#[test]
fn https_in_every_reactor_mode_ranges_head_conditionals_and_listings() {
    let site = Site::new("https-modes");
    let files = files(
        &site,
        &[
            ("a.txt", 100, "text/plain"),
            ("page.html", 4 << 10, "text/html"),
            ("mib.bin", 1 << 20, "application/octet-stream"),
        ],
    );
    site.mkdir("dir");
    site.write("dir/b.txt", b"bee");
    let mib = &files[2].bytes;
    common::for_each(Config::all(), |config| {
        let what = format!("https {config}");
        let running = https(Spec::new(&site.root).config(config)).start();
        let mut client = running.client();
        for file in &files {
            assert_file(&what, &client.get(&format!("/{}", file.name)), file);
        }
        // A range in the middle, and a suffix.
        let part = client.get_with("/mib.bin", &[("Range", "bytes=1000-70999")]);
        assert_eq!(part.status, 206, "{what}: {part:?}");
        assert!(
            part.body[..] == mib[1000..71000],
            "{what}: range differs at {:?}",
            first_difference(&part.body, &mib[1000..71000])
        );
        let tail = client.get_with("/mib.bin", &[("Range", "bytes=-10")]);
        assert_eq!((tail.status, &tail.body[..]), (206, &mib[mib.len() - 10..]));
        // HEAD: the headers of GET, no body (the next response on the same
        // connection parses, so none was sent).
        let head = client.head_with("/mib.bin", &[]);
        assert_eq!(head.content_length(), Some(mib.len() as u64), "{what}");
        // Conditional: the ETag just served gives 304.
        let etag = head.header("etag").expect("an ETag").to_string();
        let not_modified = client.get_with("/mib.bin", &[("If-None-Match", &etag)]);
        assert_eq!(not_modified.status, 304, "{what}: {not_modified:?}");
        // A listing, with its escaped relative links.
        let listing = client.get("/dir/");
        assert_eq!(listing.status, 200, "{what}");
        assert!(
            listing.text().contains("href=\"./b.txt\""),
            "{what}: {}",
            listing.text()
        );
        drop(client);
        // 6 connections × 3 requests at once.
        std::thread::scope(|s| {
            for c in 0..6 {
                let (running, files, what) = (&running, &files, &what);
                s.spawn(move || {
                    let mut client = running.client();
                    for r in 0..3 {
                        let file = &files[(c + r) % files.len()];
                        assert_file(what, &client.get(&format!("/{}", file.name)), file);
                    }
                });
            }
        });
        running.wait_open(0);
    });
}

#[test]
fn https_closes_with_close_notify_after_connection_close() {
    let site = Site::new("https-close");
    site.write("a.txt", b"hello");
    let running = https(Spec::new(&site.root)).start();
    let mut client = running.client();
    let response = client.get_with("/a.txt", &[("Connection", "close")]);
    assert_eq!((response.status, &response.body[..]), (200, &b"hello"[..]));
    // rustls reports a close without close_notify as UnexpectedEof: an
    // orderly end here means the server sent it.
    let (rest, end) = client.read_until_closed();
    assert!(rest.is_empty(), "bytes after the response: {rest:?}");
    end.expect("an orderly end of the TLS stream (close_notify)");
}

/// Uploads over HTTPS (issue 11 §2) arrive byte for byte: the decrypted
/// body is copied into the file (a splice cannot decrypt), while over
/// plain HTTP the same upload is spliced from the socket into the file.
#[test]
fn uploads_are_copied_over_https_and_spliced_over_http() {
    let site = Site::new("https-uploads");
    let body = crate::site::data(77, 8 << 20);
    for tls in [false, true] {
        for trigger in [Trigger::Edge, Trigger::Level] {
            let what = format!("tls={tls}/{trigger:?}");
            let spec = Spec::new(&site.root).upload(true).trigger(trigger);
            let running = if tls { https(spec) } else { spec }.start();
            let mut client = running.client();
            let target = format!("/upload-{tls}-{trigger:?}.bin");
            let mut bytes = crate::client::request(
                "PUT",
                &target,
                &[("Content-Length", &body.len().to_string())],
            );
            bytes.extend_from_slice(&body[..1000]);
            client.try_send(&bytes).expect("head");
            client.try_send(&body[1000..]).expect("body");
            let response = client.response(false).expect("a response");
            assert_eq!(response.status, 201, "{what}: {response:?}");
            let stored = std::fs::read(site.root.join(&target[1..])).expect("stored");
            assert!(
                stored == body,
                "{what}: the stored file differs from byte {:?}",
                first_difference(&stored, &body)
            );
            let stats = running.server.stats();
            assert_eq!(stats.received_bytes, body.len() as u64, "{what}: {stats:?}");
            if tls {
                assert_eq!(stats.receive_splices, 0, "{what}: spliced over TLS");
                assert!(stats.receive_writes > 0, "{what}: {stats:?}");
            } else {
                assert!(
                    stats.receive_splices > 0,
                    "{what}: never spliced: {stats:?}"
                );
            }
        }
    }
}
