//! Paths: nothing outside the root is ever served, whatever the encoding
//! or symlink; directories redirect, show their index or an escaped
//! listing.

use crate::client::Client;
use crate::site::{Site, Spec};

const SECRET: &[u8] = b"TOP-SECRET-a7f3c9";

#[test]
fn traversal_attempts_never_return_a_file_outside_the_root() {
    let site = Site::new("traversal");
    std::fs::write(site.dir.join("secret"), SECRET).expect("the secret");
    std::fs::create_dir_all(site.dir.join("outside")).expect("outside dir");
    std::fs::write(site.dir.join("outside/secret"), SECRET).expect("the secret");
    site.write("sub/a.txt", b"inside");
    site.write("index.html", b"<h1>home</h1>");
    std::os::unix::fs::symlink(site.dir.join("secret"), site.root.join("escape"))
        .expect("symlink out");
    std::os::unix::fs::symlink(site.dir.join("outside"), site.root.join("escape-dir"))
        .expect("symlink out");
    std::os::unix::fs::symlink(site.root.join("sub/a.txt"), site.root.join("inside-link"))
        .expect("symlink in");
    let running = Spec::new(&site.root).start();
    let addr = running.server.local_addr();

    // A symlink that stays inside is followed.
    let mut client = running.client();
    let response = client.get("/inside-link");
    assert!(response.status == 200 && response.body == b"inside");

    let attempts = [
        "/../secret",
        "/%2e%2e/secret",
        "/%2E%2E/secret",
        "/..%2fsecret",
        "/..%2Fsecret",
        "/%2e%2e%2fsecret",
        "/%2e%2e%5csecret",
        "/%252e%252e/secret",
        "/%252e%252e%252fsecret",
        "/sub/../../secret",
        "/sub/%2e%2e/%2e%2e/secret",
        "/./../secret",
        "//../secret",
        "/secret%00",
        "/sub/a.txt%00/../../../secret",
        "/escape",
        "/escape-dir/secret",
        "/escape-dir/",
        "/..\\secret",
        "/\\..\\secret",
        "/sub\\..\\..\\secret",
        "/%c0%ae%c0%ae/secret",
        "/..;/secret",
    ];
    for target in attempts {
        let mut client = Client::connect(addr);
        client.send(format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes());
        check_refused(target, &mut client);
    }
    for target in [
        "http://127.0.0.1/../secret",
        "http://127.0.0.1/%2e%2e/secret",
        "http://127.0.0.1/escape",
    ] {
        let mut client = Client::connect(addr);
        client.send(format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes());
        check_refused(target, &mut client);
    }
    // The server still serves.
    let mut client = Client::connect(addr);
    assert_eq!(client.get("/sub/a.txt").body, b"inside");
}

/// Reads everything the server sends for one attempt: a 400, 403 or 404
/// and never the secret.
fn check_refused(target: &str, client: &mut Client) {
    let response = client
        .response(false)
        .unwrap_or_else(|e| panic!("{target}: no response: {e}"));
    assert!(
        matches!(response.status, 400 | 403 | 404),
        "{target}: {} {:?}",
        response.status,
        response.text()
    );
    assert!(
        !contains(&response.body, SECRET),
        "{target}: the secret was served"
    );
    // Nothing else follows on the wire either.
    let _ =
        client.try_send(b"GET /sub/a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let (rest, _) = client.read_until_closed();
    assert!(!contains(&rest, SECRET), "{target}: the secret was served");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn directories_redirect_index_or_list_with_escaped_names() {
    let site = Site::new("dirs");
    site.write("with-index/index.html", b"<p>the index</p>");
    site.write("listed/<script>&\"x'.txt", b"12345");
    site.write("listed/plain.txt", b"p");
    site.mkdir("listed/sub dir");
    let running = Spec::new(&site.root).start();
    let mut client = running.client();

    // Without the trailing slash: 301 to the slashed path.
    for (target, location) in [
        ("/with-index", "/with-index/"),
        ("/listed", "/listed/"),
        ("/listed/sub%20dir", "/listed/sub%20dir/"),
    ] {
        let response = client.get(target);
        assert_eq!(response.status, 301, "{target}: {response:?}");
        assert_eq!(response.header("location"), Some(location), "{target}");
    }

    // With index.html: the index.
    let response = client.get("/with-index/");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"<p>the index</p>");
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );

    // Without: a listing, names escaped.
    let response = client.get("/listed/");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = response.text();
    assert!(
        page.contains("&lt;script&gt;&amp;&quot;x&#39;.txt"),
        "{page}"
    );
    assert!(
        page.contains("href=\"./%3Cscript%3E%26%22x%27.txt\""),
        "{page}"
    );
    assert!(!page.contains("<script>"), "an unescaped name: {page}");
    assert!(page.contains("plain.txt"));
    assert!(page.contains("href=\"./sub%20dir/\""), "{page}");
    // The link works.
    let response = client.get("/listed/%3Cscript%3E%26%22x%27.txt");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"12345"[..])
    );
}

/// A redirect to the slashed path must stay on this site: a target that
/// starts with `//` would make `Location` a network-path reference to
/// another host.
#[test]
fn a_directory_redirect_never_points_to_another_host() {
    let site = Site::new("redirect");
    site.mkdir("d");
    let running = Spec::new(&site.root).start();
    for target in ["//evil.example/..", "//evil.example/%2e%2e", "///d", "//d"] {
        let mut client = running.client();
        let response = client.get(target);
        if let Some(location) = response.header("location") {
            assert!(
                location.starts_with('/') && !location.starts_with("//"),
                "{target}: {} redirects to {location:?}, another host",
                response.status
            );
        }
    }
}

/// Issue 9, point 5: a file is not a directory, so a path that names it
/// with a trailing slash (however the slash comes about) names nothing:
/// 404, as nginx answers, never the file.
#[test]
fn a_file_is_not_served_under_a_trailing_slash() {
    let site = Site::new("trailing-slash");
    site.write("a.txt", b"hi\n");
    site.write("sub/b.txt", b"b\n");
    let running = Spec::new(&site.root).start();
    let mut client = running.client();
    for target in [
        "/a.txt/",
        "/a.txt//",
        "/a.txt/.",
        "/a.txt/%2e",
        "/a.txt/x/..",
        "/sub/b.txt/",
        "/sub/../a.txt/",
    ] {
        let response = client.get(target);
        assert_eq!(response.status, 404, "GET {target}: {response:?}");
        assert_eq!(response.body, b"not found\n", "GET {target}");
        let response = client.head_with(target, &[]);
        assert_eq!(response.status, 404, "HEAD {target}: {response:?}");
    }
    // Without the slash, the files; directories still list.
    assert_eq!(client.get("/a.txt").body, b"hi\n");
    assert_eq!(client.get("/sub/b.txt").body, b"b\n");
    assert_eq!(client.get("/sub/").status, 200);
    assert_eq!(client.get("/sub/.").status, 200);
}

/// The links and names of a listing page: `(href, text)` of every anchor.
fn anchors(page: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = page;
    while let Some(at) = rest.find("<a href=\"") {
        rest = &rest[at + 9..];
        let end = rest.find('"').expect("the end of an href");
        let href = rest[..end].to_string();
        rest = &rest[end..];
        let text_start = rest.find('>').expect("the end of an <a> tag") + 1;
        let text_end = rest.find("</a>").expect("</a>");
        found.push((href, rest[text_start..text_end].to_string()));
        rest = &rest[text_end..];
    }
    found
}

/// Issue 9, point 2: a listing must not turn a file's name into a link
/// elsewhere (`javascript:…`, `http:…`) or into markup. Every link is
/// relative (`./name`, percent-encoded) and leads to the file it names;
/// every name shown is escaped.
#[test]
fn listing_links_are_relative_and_names_escaped_whatever_the_name() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let site = Site::new("hostile-names");
    let dir = site.mkdir("listed");
    let names: Vec<&[u8]> = vec![
        b"javascript:alert(document.domain)",
        b"http:evil.example",
        b"//evil.example",
        b"<img src=x onerror=alert(1)>",
        b"quote\"d",
        b"it's",
        b"a&amp;b",
        b"100%",
        b"%2e%2e",
        b"h#sh",
        b"wh?t",
        b"sp ace",
        b"new\nline",
        b"tab\tand\rreturn",
        b"bad\xff\xfeutf8",
        b"caf\xc3\xa9",
    ];
    for (i, name) in names.iter().enumerate() {
        if name.contains(&b'/') {
            continue; // not a file name; a link to it cannot be made
        }
        std::fs::write(dir.join(OsStr::from_bytes(name)), format!("file {i}"))
            .unwrap_or_else(|e| panic!("create {:?}: {e}", String::from_utf8_lossy(name)));
    }
    std::fs::create_dir(dir.join("d:ir")).expect("a directory with a colon");
    let running = Spec::new(&site.root).start();
    let mut client = running.client();
    let response = client.get("/listed/");
    assert_eq!(response.status, 200);
    let page = response.text();
    for raw in ["<img", "onerror=alert(1)>", "quote\"d", "it's", "a&amp;b<"] {
        assert!(!page.contains(raw), "{raw:?} unescaped in {page}");
    }
    // The column heads sort the page (issue 13 §5): fixed links, not names.
    let (heads, anchors): (Vec<_>, Vec<_>) = anchors(&page)
        .into_iter()
        .partition(|(href, _)| href.starts_with("./?sort="));
    let heads: Vec<&str> = heads.iter().map(|(href, _)| href.as_str()).collect();
    assert_eq!(
        heads,
        [
            "./?sort=name&amp;order=desc",
            "./?sort=size&amp;order=asc",
            "./?sort=time&amp;order=asc"
        ],
        "{page}"
    );
    // `../`, the directory and every file.
    assert_eq!(anchors.len(), names.len() - 1 + 2, "{page}");
    for (href, text) in &anchors {
        assert!(
            href == "../" || href.starts_with("./"),
            "a link that is not plainly relative: {href:?} ({text:?})"
        );
        assert!(
            href.bytes()
                .all(|b| b.is_ascii_graphic() && !b"\"'<>\\`#?".contains(&b)),
            "an unencoded character in {href:?}"
        );
        assert!(
            !text.contains(['<', '>', '"', '\'', '\n', '\r', '\t']),
            "a name shown unescaped: {text:?}"
        );
        if href == "../" {
            continue;
        }
        // Every link leads to what it names.
        let target = format!("/listed/{}", &href[2..]);
        let got = client.get(&target);
        if href.ends_with('/') {
            assert_eq!(got.status, 200, "{target}: {text:?}");
            continue;
        }
        let i = names
            .iter()
            .position(|n| {
                String::from_utf8_lossy(n).replace(['\n', '\r', '\t'], "\u{fffd}")
                    == html_unescape(text)
            })
            .unwrap_or_else(|| panic!("a name not in the directory: {text:?}"));
        assert_eq!(
            (got.status, got.text()),
            (200, format!("file {i}")),
            "{target} ({text:?})"
        );
    }
}

/// Undoes the escapes a listing uses.
fn html_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}
