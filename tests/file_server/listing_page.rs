//! Directory listings as a person expects them (issue 13 §5): names with
//! human-readable sizes and modification times, directories first, a link
//! to the parent, sorting by name, size or time from the query string, a
//! page styled inline with no external asset; dotfiles (`.git`, `.env`)
//! left out of listings and answered 404 unless the server shows hidden
//! files. In every reactor mode × trigger.

use std::fs::File;
use std::time::{Duration, SystemTime};

use crate::common::{Config, for_each_parallel};
use crate::site::{Site, Spec};

/// The names linked from a listing, in order (without the parent link and
/// the column heads).
fn names(page: &str) -> Vec<String> {
    page.split("<td class=\"name\"><a href=\"")
        .skip(1)
        .filter_map(|rest| {
            let text = rest.split_once("\">")?.1;
            Some(text.split_once("</a>")?.0.to_string())
        })
        .filter(|name| name != "../")
        .collect()
}

fn site() -> Site {
    let site = Site::new("listing-page");
    site.write("top/a.txt", b"12345");
    site.write("top/Z.bin", &[7; 2048]);
    site.write("top/c.log", &vec![1; 3 << 19]);
    site.mkdir("top/b-dir");
    site.mkdir("top/A-dir");
    site.write("top/.env", b"SECRET=1");
    site.write("top/.git/config", b"[core]");
    // Modification times a day apart, in an order that is none of the
    // others: c.log oldest, then Z.bin, then a.txt.
    let day = Duration::from_secs(86_400);
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    for (name, age) in [("c.log", 3), ("Z.bin", 2), ("a.txt", 1)] {
        let file = File::options()
            .write(true)
            .open(site.root.join("top").join(name))
            .expect("open to set the time");
        file.set_modified(base - day * age).expect("set the time");
    }
    site
}

#[test]
fn a_listing_shows_sizes_times_directories_first_and_sorts_on_request() {
    let site = site();
    for_each_parallel(Config::all(), |config| {
        let running = Spec::new(&site.root).config(config).start();
        let mut client = running.client();
        let page = client.get("/top/").text();
        assert_eq!(
            names(&page),
            ["A-dir/", "b-dir/", "a.txt", "c.log", "Z.bin"],
            "{config}: directories first, then names regardless of case"
        );
        assert!(
            page.contains("<a href=\"../\">../</a>"),
            "{config}: the parent"
        );
        assert!(page.contains("title=\"5 bytes\">5 B<"), "{page}");
        assert!(page.contains("title=\"2048 bytes\">2.0 KiB<"), "{page}");
        assert!(page.contains("title=\"1572864 bytes\">1.5 MiB<"), "{page}");
        assert!(
            page.contains("<td>2026-09-19 "),
            "{config}: a.txt's time: {page}"
        );
        assert!(
            page.contains("<style>") && !page.contains("<link"),
            "inline CSS"
        );
        assert!(
            !page.contains("src=") && !page.contains("http"),
            "no external asset"
        );
        for (query, expected) in [
            ("sort=size", ["A-dir/", "b-dir/", "a.txt", "Z.bin", "c.log"]),
            (
                "sort=size&order=desc",
                ["b-dir/", "A-dir/", "c.log", "Z.bin", "a.txt"],
            ),
            (
                "sort=time&order=asc",
                ["A-dir/", "b-dir/", "c.log", "Z.bin", "a.txt"],
            ),
            (
                "sort=name&order=desc",
                ["b-dir/", "A-dir/", "Z.bin", "c.log", "a.txt"],
            ),
            (
                "sort=nonsense",
                ["A-dir/", "b-dir/", "a.txt", "c.log", "Z.bin"],
            ),
        ] {
            let page = client.get(&format!("/top/?{query}")).text();
            let mut got = names(&page);
            if query.starts_with("sort=time") {
                // The directories' own times are the test's; keep them first.
                got[..2].sort();
            }
            assert_eq!(got, expected, "{config}: ?{query}");
        }
        // The column heads link to the other orders.
        let page = client.get("/top/?sort=size").text();
        assert!(
            page.contains("href=\"./?sort=size&amp;order=desc\">Size ▲</a>"),
            "{page}"
        );
        assert!(
            page.contains("href=\"./?sort=name&amp;order=asc\">Name</a>"),
            "{page}"
        );
    });
}

#[test]
fn dotfiles_are_hidden_and_404_by_default() {
    let site = site();
    for_each_parallel(Config::all(), |config| {
        let hidden = Spec::new(&site.root).config(config).start();
        let mut client = hidden.client();
        let page = client.get("/top/").text();
        assert!(
            !page.contains(".env") && !page.contains(".git"),
            "{config}: {page}"
        );
        for target in [
            "/top/.env",
            "/top/.git/config",
            "/top/.git/",
            "/top/.git",
            "/top/%2eenv",
            "/top/b-dir/../.env",
        ] {
            assert_eq!(client.get(target).status, 404, "{config}: {target}");
        }
        let shown = Spec::new(&site.root)
            .config(config)
            .show_hidden(true)
            .start();
        let mut client = shown.client();
        let page = client.get("/top/").text();
        assert!(page.contains("href=\"./.env\"") && page.contains("href=\"./.git/\""));
        assert_eq!(client.get("/top/.env").body, b"SECRET=1", "{config}");
        assert_eq!(client.get("/top/.git/config").body, b"[core]", "{config}");
    });
}
