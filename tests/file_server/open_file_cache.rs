//! The open-file cache (issue 12 §3): a file served once is served again
//! from its cached descriptor and pre-encoded head, and never stale. A
//! file changed (another size), rewritten at the same size, replaced (a
//! rename over it), truncated or deleted, and a symlink swapped to another
//! file or out of the root, are each answered as the normal open would,
//! on the same kept-alive connection (so on the thread whose cache holds
//! the file), GET and HEAD, in every mode × trigger; with the open pool
//! too. An upload (a rename into place) is seen by the next GET. A cache
//! of 2 files evicts and closes what it evicts, a stopped server's caches
//! close their descriptors, and a cache of 0 is off.

use std::path::Path;
use std::time::Duration;

use wharf::TransferStrategy;

use crate::cache;
use crate::client::{Client, Response};
use crate::common::{Config, for_each_parallel, wait_until};
use crate::site::{Running, Site, Spec, data, descriptors_on, mappings_of};
use crate::uploads::put;

fn configs() -> Vec<Config> {
    Config::all().into_iter().filter(|c| c.pooled).collect()
}

/// `GET target` (and `HEAD`) must answer `want` in full, with its length.
fn expect_body(client: &mut Client, target: &str, want: &[u8], what: &str) -> Response {
    let response = client.get(target);
    assert_eq!(response.status, 200, "{what}: GET {target}: {response:?}");
    assert_eq!(
        response.content_length(),
        Some(want.len() as u64),
        "{what}: GET {target}"
    );
    assert!(response.body == want, "{what}: GET {target}: other bytes");
    let head = client.head_with(target, &[]);
    assert_eq!(head.status, 200, "{what}: HEAD {target}");
    assert_eq!(
        head.content_length(),
        Some(want.len() as u64),
        "{what}: HEAD"
    );
    assert_eq!(head.header("etag"), response.header("etag"), "{what}: HEAD");
    response
}

/// Serves `target` twice on `client`: the second must come from the cache.
fn cache_it(running: &Running, client: &mut Client, target: &str, want: &[u8], what: &str) {
    expect_body(client, target, want, what);
    let before = cache::hits(&running.settings.root);
    expect_body(client, target, want, what);
    let hits = cache::hits(&running.settings.root) - before;
    assert_eq!(
        hits, 2,
        "{what}: GET and HEAD of {target} were not cache hits"
    );
}

/// Replaces `path` by a rename over it (a new inode), as an upload does.
fn replace(path: &Path, contents: &[u8]) {
    let temp = path.with_extension("new");
    std::fs::write(&temp, contents).expect("write the replacement");
    std::fs::rename(&temp, path).expect("rename over");
}

#[test]
fn a_changed_replaced_truncated_or_deleted_file_is_never_served_stale() {
    let site = Site::new("ofc-stale");
    for_each_parallel(configs(), |config| {
        let what = config.to_string();
        let dir = format!("{}", config).replace('/', "-");
        let file = |name: &str| format!("{dir}/{name}");
        let running = Spec::new(&site.root).config(config).start();
        let mut client = running.client();

        // Changed: longer, then rewritten in place at the same size.
        let changed = site.write(&file("changed.bin"), &data(1, 1000));
        cache_it(
            &running,
            &mut client,
            &format!("/{}", file("changed.bin")),
            &data(1, 1000),
            &what,
        );
        let old = client.get(&format!("/{}", file("changed.bin")));
        std::fs::write(&changed, data(2, 1500)).expect("change");
        let new = expect_body(
            &mut client,
            &format!("/{}", file("changed.bin")),
            &data(2, 1500),
            &what,
        );
        assert_ne!(old.header("etag"), new.header("etag"), "{what}: a new ETag");
        std::fs::write(&changed, data(3, 1500)).expect("rewrite");
        expect_body(
            &mut client,
            &format!("/{}", file("changed.bin")),
            &data(3, 1500),
            &what,
        );

        // Replaced: a rename over it.
        let replaced = site.write(&file("replaced.bin"), &data(4, 700));
        cache_it(
            &running,
            &mut client,
            &format!("/{}", file("replaced.bin")),
            &data(4, 700),
            &what,
        );
        replace(&replaced, &data(5, 700));
        expect_body(
            &mut client,
            &format!("/{}", file("replaced.bin")),
            &data(5, 700),
            &what,
        );

        // Truncated.
        let truncated = site.write(&file("truncated.bin"), &data(6, 64 << 10));
        cache_it(
            &running,
            &mut client,
            &format!("/{}", file("truncated.bin")),
            &data(6, 64 << 10),
            &what,
        );
        std::fs::OpenOptions::new()
            .write(true)
            .open(&truncated)
            .and_then(|f| f.set_len(100))
            .expect("truncate");
        expect_body(
            &mut client,
            &format!("/{}", file("truncated.bin")),
            &data(6, 100),
            &what,
        );

        // Deleted.
        let deleted = site.write(&file("deleted.bin"), &data(7, 10));
        cache_it(
            &running,
            &mut client,
            &format!("/{}", file("deleted.bin")),
            &data(7, 10),
            &what,
        );
        std::fs::remove_file(&deleted).expect("delete");
        let gone = client.get(&format!("/{}", file("deleted.bin")));
        assert_eq!(gone.status, 404, "{what}: a deleted file: {gone:?}");
        let gone = client.head_with(&format!("/{}", file("deleted.bin")), &[]);
        assert_eq!(gone.status, 404, "{what}: HEAD of a deleted file");

        // A directory's index.html, cached as such.
        site.write(&file("index.html"), b"<p>index</p>");
        cache_it(
            &running,
            &mut client,
            &format!("/{dir}/"),
            b"<p>index</p>",
            &what,
        );
        std::fs::remove_file(site.root.join(file("index.html"))).expect("delete the index");
        let listing = client.get(&format!("/{dir}/"));
        assert_eq!(listing.status, 200, "{what}: the listing");
        assert!(
            listing.text().contains("changed.bin"),
            "{what}: {listing:?}"
        );
    });
}

#[test]
fn a_swapped_symlink_is_followed_to_its_new_target_never_out_of_the_root() {
    let site = Site::new("ofc-symlink");
    std::fs::write(site.dir.join("secret"), b"secret").expect("the secret");
    for_each_parallel(configs(), |config| {
        let what = config.to_string();
        let dir = format!("{}", config).replace('/', "-");
        site.write(&format!("{dir}/a.txt"), b"aaa");
        site.write(&format!("{dir}/b.txt"), b"bbbbbb");
        let link = site.root.join(format!("{dir}/link"));
        let swap = |to: &Path| {
            let temp = site.root.join(format!("{dir}/link.new"));
            std::os::unix::fs::symlink(to, &temp).expect("a new link");
            std::fs::rename(&temp, &link).expect("swap the link");
        };
        swap(Path::new("a.txt"));
        let running = Spec::new(&site.root).config(config).start();
        let mut client = running.client();
        let target = format!("/{dir}/link");
        cache_it(&running, &mut client, &target, b"aaa", &what);
        swap(Path::new("b.txt"));
        expect_body(&mut client, &target, b"bbbbbb", &what);
        // Out of the root, relative and absolute: refused, as without a
        // cache.
        swap(Path::new("../../secret"));
        let out = client.get(&target);
        assert_eq!(out.status, 403, "{what}: a link out of the root: {out:?}");
        swap(Path::new("a.txt"));
        cache_it(&running, &mut client, &target, b"aaa", &what);
        swap(&site.dir.join("secret"));
        let out = client.get(&target);
        assert_eq!(out.status, 403, "{what}: an absolute link out: {out:?}");
    });
}

#[test]
fn an_upload_is_seen_by_the_next_get_in_every_mode_and_trigger() {
    let site = Site::new("ofc-upload");
    for_each_parallel(configs(), |config| {
        let what = config.to_string();
        let target = format!("/{}.bin", config.to_string().replace('/', "-"));
        let running = Spec::new(&site.root).config(config).upload(true).start();
        let mut client = running.client();
        for (round, len) in [(1, 1000), (2, 1000), (3, 10), (4, 5000)] {
            let body = data(round, len);
            let stored = put(&mut client, &target, &body);
            assert!(matches!(stored.status, 201 | 204), "{what}: {stored:?}");
            cache_it(&running, &mut client, &target, &body, &what);
        }
    });
}

#[test]
fn with_the_open_pool_files_are_never_stale_either() {
    let site = Site::new("ofc-pool");
    let path = site.write("f.bin", &data(1, 100));
    let running = Spec::new(&site.root).open_pool(true).start();
    let mut client = running.client();
    for round in 2..6 {
        expect_body(
            &mut client,
            "/f.bin",
            &data(round - 1, 100 * (round as usize - 1)),
            "pool",
        );
        expect_body(
            &mut client,
            "/f.bin",
            &data(round - 1, 100 * (round as usize - 1)),
            "pool",
        );
        replace(&path, &data(round, 100 * round as usize));
    }
    std::fs::remove_file(&path).expect("delete");
    assert_eq!(client.get("/f.bin").status, 404);
}

#[test]
fn a_full_cache_evicts_and_an_empty_one_is_off() {
    let site = Site::new("ofc-evict");
    for i in 0..4 {
        site.write(&format!("{i}.txt"), &data(i, 10 + i as usize));
    }
    let running = Spec::new(&site.root).open_file_cache(2).start();
    let mut client = running.client();
    for _ in 0..3 {
        for i in 0..4 {
            expect_body(
                &mut client,
                &format!("/{i}.txt"),
                &data(i, 10 + i as usize),
                "2 files",
            );
        }
    }
    // Evicted entries closed their descriptors: at most 2 stay open.
    let open = || -> usize {
        (0..4)
            .map(|i| descriptors_on(&site.root.join(format!("{i}.txt"))))
            .sum()
    };
    wait_until(
        Duration::from_secs(5),
        "at most 2 cached descriptors",
        || open() <= 2,
    );
    let off = Spec::new(&site.root).open_file_cache(0).start();
    let mut client = off.client();
    for i in 0..4 {
        expect_body(
            &mut client,
            &format!("/{i}.txt"),
            &data(i, 10 + i as usize),
            "off",
        );
        expect_body(
            &mut client,
            &format!("/{i}.txt"),
            &data(i, 10 + i as usize),
            "off",
        );
    }
    assert_eq!(
        cache::hits(&off.settings.root),
        0,
        "a cache of 0 files is off"
    );
    // The server with a cache of 2 stopped: its loop's cache closed.
    drop(client);
    drop(off);
    drop(running);
    wait_until(Duration::from_secs(5), "no descriptor left open", || {
        open() == 0
    });
}

/// A small cached file goes out from its mapping with its head (no read
/// of the file, see examples/file_server/mapped.rs), a larger one with
/// `sendfile`; the mappings go when the server's caches do.
#[test]
fn small_cached_files_are_sent_from_a_mapping_released_with_the_cache() {
    let site = Site::new("ofc-mapped");
    let (small, large) = (data(1, 1000), data(2, (16 << 10) + 1));
    site.write("small.bin", &small);
    site.write("large.bin", &large);
    for_each_parallel(configs(), |config| {
        let what = config.to_string();
        let running = Spec::new(&site.root).config(config).start();
        let mapped = || -> u64 {
            let loops = running.server.event_loops();
            loops
                .iter()
                .map(|l| l.transfer_stats().bytes_by(TransferStrategy::MmapWrite))
                .sum()
        };
        let mut client = running.client();
        cache_it(&running, &mut client, "/small.bin", &small, &what);
        let before = mapped();
        assert_eq!(client.get("/small.bin").body, small, "{what}");
        // The loop counts after its write returns, maybe after the client
        // has the response: wait for the count.
        wait_until(
            Duration::from_secs(5),
            "the response sent from its mapping",
            || mapped() - before == 1000,
        );
        cache_it(&running, &mut client, "/large.bin", &large, &what);
        let before = mapped();
        assert_eq!(client.get("/large.bin").body, large, "{what}");
        // Counted by then too: a small file's response behind it was.
        assert_eq!(client.get("/small.bin").body, small, "{what}");
        wait_until(Duration::from_secs(5), "the small file's count", || {
            mapped() - before == 1000
        });
        assert_eq!(
            mapped() - before,
            1000,
            "{what}: a file over 16 KiB was sent from a mapping"
        );
    });
    // Every server stopped: no mapping of the files is left.
    wait_until(Duration::from_secs(5), "no mapping left", || {
        mappings_of(&site.root.join("small.bin")) == 0
    });
}
