//! Uploads refused (issue 11 §2), and nothing is created or modified: no
//! length (411), over `--max-upload` (413, answered after the head,
//! without the body), a directory or a missing parent (409), dotfiles
//! (404), and every path that would leave the root, however encoded or
//! symlinked (403/404); with uploads off, 405. `Expect: 100-continue`
//! gets its interim 100 only when the upload is accepted. (The uploads
//! that are stored are in `uploads.rs`, with the helpers used here.)

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::client::request;
use crate::common::{self, Config, Rng, for_each_parallel};
use crate::site::{Site, Spec, data};
use crate::uploads::{
    PAYLOAD, PROMPTLY, SECRET, assert_holds, assert_same, assert_stored, dir_name, names_in, put,
    put_head, send, send_uneven, tree,
};

/// Sends `PUT target` with [`PAYLOAD`] on a new connection: the status.
fn put_status(running: &crate::site::Running, target: &str) -> u16 {
    let mut client = running.client();
    client.read_timeout(PROMPTLY);
    let mut bytes = format!(
        "PUT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
        PAYLOAD.len()
    )
    .into_bytes();
    bytes.extend_from_slice(PAYLOAD);
    send(&mut client, &bytes);
    client
        .response(false)
        .unwrap_or_else(|e| panic!("PUT {target}: no response: {e}"))
        .status
}

/// Nothing outside the root is ever created or modified, whatever the
/// encoding, and a directory symlinked out of the root is refused (403 or
/// 404). A symlink to a file outside may be refused or replaced by the
/// upload (the rename replaces the link, not what it points to), but what
/// it points to never changes and a dangling one never creates its target.
#[test]
fn an_upload_never_creates_or_modifies_anything_outside_the_root() {
    let site = Site::new("upload-traversal");
    std::fs::write(site.dir.join("secret"), SECRET).expect("the secret");
    std::fs::create_dir_all(site.dir.join("outside")).expect("outside dir");
    std::fs::write(site.dir.join("outside/secret"), SECRET).expect("the secret");
    site.write("sub/a.txt", b"inside");
    let link = |to: PathBuf, at: &str| {
        std::os::unix::fs::symlink(to, site.root.join(at)).expect("a symlink out")
    };
    link(site.dir.join("outside"), "escape-dir");
    link(site.dir.join("secret"), "escape");
    link(site.dir.join("outside/made-by-link"), "dangling");
    let running = Spec::new(&site.root).upload(true).start();
    let before = tree(&site.dir);
    let outside_abs = site.dir.join("outside/new.txt");
    let absolute = outside_abs.display().to_string();
    let double_slashed = format!("/{absolute}");
    let absolute_form = format!("http://127.0.0.1{absolute}");
    let attempts: Vec<(&str, &[u16])> = vec![
        ("/../secret", &[400, 403, 404]),
        ("/../outside/new.txt", &[400, 403, 404]),
        ("/%2e%2e/secret", &[400, 403, 404]),
        ("/%2E%2E/outside/new.txt", &[400, 403, 404]),
        ("/..%2fsecret", &[400, 403, 404]),
        ("/..%2Foutside%2Fnew.txt", &[400, 403, 404]),
        ("/%2e%2e%2fsecret", &[400, 403, 404]),
        ("/%2e%2e%5csecret", &[400, 403, 404]),
        ("/sub/../../secret", &[400, 403, 404]),
        ("/sub/%2e%2e/%2e%2e/outside/new.txt", &[400, 403, 404]),
        ("/./../secret", &[400, 403, 404]),
        ("//../secret", &[400, 403, 404]),
        ("/..\\secret", &[400, 403, 404]),
        ("/sub\\..\\..\\secret", &[400, 403, 404]),
        ("/secret%00", &[400, 403, 404]),
        ("/sub/a.txt%00/../../../secret", &[400, 403, 404]),
        ("http://127.0.0.1/../secret", &[400, 403, 404]),
        ("http://127.0.0.1/%2e%2e/outside/new.txt", &[400, 403, 404]),
        // Literal names that are no directory here: a missing parent.
        ("/%252e%252e/secret", &[400, 403, 404, 409]),
        ("/%c0%ae%c0%ae/secret", &[400, 403, 404, 409]),
        ("/..;/secret", &[400, 403, 404, 409]),
        // Absolute-looking: names under the root, whose parents are missing.
        (&absolute, &[400, 403, 404, 409]),
        (&double_slashed, &[400, 403, 404, 409]),
        (&absolute_form, &[400, 403, 404, 409]),
        // Through the directory symlinked out of the root.
        ("/escape-dir/secret", &[403, 404]),
        ("/escape-dir/new.txt", &[403, 404]),
        ("http://127.0.0.1/escape-dir/new.txt", &[403, 404]),
    ];
    for (target, allowed) in attempts {
        let status = put_status(&running, target);
        assert!(
            allowed.contains(&status),
            "PUT {target}: {status}, want one of {allowed:?}"
        );
        assert!(tree(&site.dir) == before, "PUT {target} changed the files");
    }
    // The symlinks to files: refused, or the link itself replaced.
    let outside_before: BTreeMap<_, _> = tree(&site.dir)
        .into_iter()
        .filter(|(path, _)| !path.starts_with(&site.root))
        .collect();
    for (target, link) in [
        ("/escape", "escape"),
        ("/dangling", "dangling"),
        ("/escape-dir", "escape-dir"),
    ] {
        let status = put_status(&running, target);
        assert!(
            matches!(status, 201 | 204 | 403 | 404 | 409),
            "PUT {target}: {status}"
        );
        let at = site.root.join(link);
        let meta = std::fs::symlink_metadata(&at).expect("lstat");
        if matches!(status, 201 | 204) {
            assert!(meta.is_file(), "PUT {target}: {status} but {meta:?}");
            assert_holds(&at, PAYLOAD, &format!("PUT {target}"));
        } else {
            assert!(meta.is_symlink(), "PUT {target}: {status} but {meta:?}");
        }
    }
    common::wait_for_no_connections(&running.server);
    let outside_after: BTreeMap<_, _> = tree(&site.dir)
        .into_iter()
        .filter(|(path, _)| !path.starts_with(&site.root))
        .collect();
    assert!(
        outside_after == outside_before,
        "a file outside the root changed: {:?}",
        outside_after.keys().collect::<Vec<_>>()
    );
    // The server still stores what is inside.
    assert_eq!(put_status(&running, "/sub/b.txt"), 201);
    assert_holds(&site.root.join("sub/b.txt"), PAYLOAD, "PUT /sub/b.txt");
}

/// An existing directory (409), a missing parent (409: no directory is
/// made), a file where a directory should be (404 or 409), dotfiles and
/// dot-directories (404, as for GET while hidden files are not shown):
/// refused, and nothing changes.
#[test]
fn a_directory_a_missing_parent_or_a_dotfile_is_refused_and_nothing_changes() {
    let site = Site::new("upload-refused-paths");
    site.write("a.txt", b"a file");
    site.write("sub/b.txt", b"b file");
    site.mkdir("a/.git");
    site.mkdir("empty");
    let running = Spec::new(&site.root).upload(true).start();
    let before = tree(&site.root);
    let attempts: [(&str, &[u16]); 18] = [
        ("/sub", &[409]),
        ("/sub/", &[409]),
        ("/empty", &[409]),
        ("/", &[409]),
        ("/nope/x.txt", &[409]),
        ("/nope/deeper/x.txt", &[409]),
        ("/sub/nope/x.txt", &[409]),
        ("/a.txt/x", &[404, 409]),
        ("/a.txt/", &[400, 404, 409]),
        ("/sub/b.txt/", &[400, 404, 409]),
        ("/.env", &[404]),
        ("/.htaccess", &[404]),
        ("/sub/.env", &[404]),
        ("/a/.git/config", &[404]),
        ("/a/.git", &[404]),
        ("/.hidden/x.txt", &[404]),
        ("/%2eenv", &[404]),
        ("/sub/%2Egit/x", &[404]),
    ];
    for (target, allowed) in attempts {
        let status = put_status(&running, target);
        assert!(
            allowed.contains(&status),
            "PUT {target}: {status}, want one of {allowed:?}"
        );
        assert!(tree(&site.root) == before, "PUT {target} changed the files");
    }
    common::wait_for_no_connections(&running.server);
    assert!(tree(&site.root) == before, "the files changed");
}

/// Over `max_upload`: 413 as soon as the head arrives (the client sends no
/// body byte and waits a bounded time), then the connection closes and
/// nothing is created; exactly `max_upload` is accepted. The default limit
/// is 1 GiB. In every mode × trigger.
#[test]
fn an_upload_over_the_limit_is_413_before_its_body_and_creates_nothing() {
    let site = Site::new("upload-413");
    for_each_parallel(Config::all(), |config| {
        let name = dir_name(config);
        let dir = site.mkdir(&name);
        let running = Spec::new(&site.root)
            .config(config)
            .upload(true)
            .max_upload(1000)
            .start();
        let limit = running.settings.max_upload;
        for (len, early) in [(limit + 1, 0), (1 << 40, 0), (limit + 1, 100)] {
            let what = format!("{config}: {len} bytes announced, {early} sent");
            let mut client = running.client();
            client.read_timeout(PROMPTLY);
            let mut bytes = put_head(&format!("/{name}/big.bin"), len, &[]);
            bytes.extend_from_slice(&data(1, early));
            send(&mut client, &bytes);
            let response = client
                .response(false)
                .unwrap_or_else(|e| panic!("{what}: no 413 before the body: {e}"));
            assert_eq!(response.status, 413, "{what}: {response:?}");
            client.expect_closed();
            assert_eq!(names_in(&dir), Vec::<String>::new(), "{what}");
        }
        let body = data(2, 1000);
        let mut client = running.client();
        let response = put(&mut client, &format!("/{name}/limit.bin"), &body);
        assert_stored(&response, 201, &format!("{config}: exactly the limit"));
        assert_holds(&dir.join("limit.bin"), &body, &format!("{config}: limit"));
        drop(client);
        common::wait_for_no_connections(&running.server);
        assert_eq!(names_in(&dir), ["limit.bin"], "{config}");
    });
    // The default: 1 GiB.
    let running = Spec::new(&site.root).upload(true).start();
    assert_eq!(running.settings.max_upload, 1 << 30);
    let mut client = running.client();
    client.read_timeout(PROMPTLY);
    send(&mut client, &put_head("/huge.bin", (1 << 30) + 1, &[]));
    let response = client.response(false).expect("a 413 before the body");
    assert_eq!(response.status, 413, "1 GiB + 1: {response:?}");
    client.expect_closed();
    assert!(!site.root.join("huge.bin").exists());
}

/// Without a `Content-Length` (chunked, or no framing at all): 411, nothing
/// created. With uploads off (the default): 405 with `Allow`, the file
/// untouched, and the connection serves on.
#[test]
fn an_upload_without_a_length_is_411_and_with_uploads_off_405() {
    let site = Site::new("upload-411-405");
    site.write("a.txt", b"original");
    let running = Spec::new(&site.root).upload(true).start();
    let cases: [(&str, &[u8]); 3] = [
        (
            "chunked",
            b"PUT /new.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n\
              3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "chunked, over an existing file",
            b"PUT /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n\
              3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "no framing at all",
            b"PUT /new.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        ),
    ];
    for (what, bytes) in cases {
        let mut client = running.client();
        client.read_timeout(PROMPTLY);
        send(&mut client, bytes);
        let response = client
            .response(false)
            .unwrap_or_else(|e| panic!("{what}: no response: {e}"));
        assert_eq!(response.status, 411, "{what}: {response:?}");
        assert_eq!(names_in(&site.root), ["a.txt"], "{what}");
        assert_holds(&site.root.join("a.txt"), b"original", what);
    }
    common::wait_for_no_connections(&running.server);
    drop(running);

    let running = Spec::new(&site.root).start();
    assert!(!running.settings.upload, "uploads are off by default");
    let mut client = running.client();
    for target in ["/a.txt", "/new.txt"] {
        let response = put(&mut client, target, b"replaced");
        assert_eq!(response.status, 405, "upload off, {target}: {response:?}");
        assert!(response.header("allow").is_some(), "{response:?}");
        // The body did not leak into the next request.
        assert_eq!(client.get("/a.txt").body, b"original", "after {target}");
    }
    assert_eq!(names_in(&site.root), ["a.txt"]);
}

/// `Expect: 100-continue`: an accepted upload gets `100 Continue` while the
/// client still holds the body back, then 201 or 204 after it; a refused
/// one gets only its final status, without the body. A client that sends
/// the body at once gets the final status (after a 100 or not).
#[test]
fn expect_100_continue_is_answered_before_the_body_only_when_accepted() {
    let site = Site::new("upload-expect");
    for_each_parallel(Config::all(), |config| {
        let name = dir_name(config);
        let dir = site.mkdir(&name);
        site.mkdir(&format!("{name}/d"));
        let running = Spec::new(&site.root)
            .config(config)
            .upload(true)
            .max_upload(100_000)
            .start();
        let mut client = running.client();
        client.read_timeout(PROMPTLY);
        let target = format!("/{name}/e.bin");
        let mut rng = Rng::new(100);
        for (i, (expect, status)) in [("100-continue", 201), ("100-Continue", 204)]
            .into_iter()
            .enumerate()
        {
            let what = format!("{config}: Expect: {expect}");
            let body = data(40 + i as u64, 65_537 + i);
            send(
                &mut client,
                &put_head(&target, body.len() as u64, &[("Expect", expect)]),
            );
            let interim = client
                .response(false)
                .unwrap_or_else(|e| panic!("{what}: no 100 before the body: {e}"));
            assert_eq!(interim.status, 100, "{what}: {interim:?}");
            assert_eq!(interim.header("content-length"), None, "{what}");
            send_uneven(&mut client, &body, &mut rng);
            let response = client.response(false).expect("the final response");
            assert_stored(&response, status, &what);
            assert_holds(&dir.join("e.bin"), &body, &what);
        }
        // The body sent at once, without waiting for the 100.
        let body = data(42, 5000);
        let mut bytes = put_head(&target, body.len() as u64, &[("Expect", "100-continue")]);
        bytes.extend_from_slice(&body);
        send(&mut client, &bytes);
        let mut response = client.response(false).expect("a response");
        if response.status == 100 {
            response = client.response(false).expect("the final response");
        }
        assert_stored(&response, 204, &format!("{config}: the body at once"));
        assert_holds(&dir.join("e.bin"), &body, &format!("{config}: at once"));
        let got = client.get(&target);
        assert_same(&got.body, &body, &format!("{config}: GET after"));
        drop(client);

        let refusals: [(String, Vec<u8>, &[u16]); 6] = [
            (
                "over the limit".into(),
                put_head(&format!("/{name}/big.bin"), 100_001, &[]),
                &[413],
            ),
            (
                "a directory".into(),
                put_head(&format!("/{name}/d"), 10, &[]),
                &[409],
            ),
            (
                "a missing parent".into(),
                put_head(&format!("/{name}/nope/x.bin"), 10, &[]),
                &[409],
            ),
            (
                "a dotfile".into(),
                put_head(&format!("/{name}/.env"), 10, &[]),
                &[404],
            ),
            (
                "outside".into(),
                put_head("/../x.bin", 10, &[]),
                &[400, 403, 404],
            ),
            (
                "chunked".into(),
                request(
                    "PUT",
                    &format!("/{name}/chunked.bin"),
                    &[("Transfer-Encoding", "chunked")],
                ),
                &[411],
            ),
        ];
        for (what, head, allowed) in refusals {
            let what = format!("{config}: {what}");
            // The head alone, with the Expect field before its end.
            let head = String::from_utf8(head).expect("a text head");
            let head = head.replacen("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n", 1);
            let mut client = running.client();
            client.read_timeout(PROMPTLY);
            send(&mut client, head.as_bytes());
            let response = client
                .response(false)
                .unwrap_or_else(|e| panic!("{what}: no final status without the body: {e}"));
            assert!(
                allowed.contains(&response.status),
                "{what}: {response:?}, want one of {allowed:?}"
            );
        }
        common::wait_for_no_connections(&running.server);
        assert_eq!(names_in(&dir), ["d", "e.bin"], "{config}");
        assert_eq!(names_in(&dir.join("d")), Vec::<String>::new(), "{config}");
    });
}
