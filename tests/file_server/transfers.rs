//! Files on the wire: byte-identical for every transfer strategy, trigger
//! and reactor mode, at offsets past 4 GiB, and cut short (without a
//! spinning loop) when the file shrinks under the transfer.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use wharf::{TransferStrategy, Trigger};

use crate::client::{Client, Response, first_difference};
use crate::common::{self, Config};
use crate::site::{Site, Spec, data};

/// How a server sends its files: a transfer strategy, or direct I/O.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Send {
    pub label: &'static str,
    pub strategy: TransferStrategy,
    pub directio: u64,
}

pub(crate) const SENDS: [Send; 6] = [
    Send {
        label: "auto",
        strategy: TransferStrategy::Auto,
        directio: 0,
    },
    Send {
        label: "sendfile",
        strategy: TransferStrategy::Sendfile,
        directio: 0,
    },
    Send {
        label: "splice",
        strategy: TransferStrategy::Splice,
        directio: 0,
    },
    Send {
        label: "mmap",
        strategy: TransferStrategy::MmapWrite,
        directio: 0,
    },
    Send {
        label: "copy",
        strategy: TransferStrategy::ReadWrite,
        directio: 0,
    },
    Send {
        label: "direct",
        strategy: TransferStrategy::Auto,
        // Every non-empty file.
        directio: 1,
    },
];

impl Send {
    pub fn spec(self, site: &Site) -> Spec {
        Spec::new(&site.root)
            .transfer(self.strategy)
            .directio(self.directio)
    }

    /// Whether file bytes are copied out of the page cache before they go
    /// to the socket (not sendfile or splice, which pass pages by reference).
    fn copies(self) -> bool {
        self.directio > 0
            || matches!(
                self.strategy,
                TransferStrategy::MmapWrite | TransferStrategy::ReadWrite
            )
    }

    /// The strategy whose counters must account for every file byte.
    fn counted_as(self) -> Option<TransferStrategy> {
        match (self.strategy, self.directio) {
            // Direct-I/O reads count as ReadWrite.
            (_, 1..) => Some(TransferStrategy::ReadWrite),
            // Auto may fall back: any concrete strategy may have sent.
            (TransferStrategy::Auto, _) => None,
            (s, _) => Some(s),
        }
    }
}

/// A served file: its name, bytes and expected Content-Type.
pub(crate) struct Served {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub mime: &'static str,
}

/// Asserts a complete 200 with `file`'s bytes, length and type.
pub(crate) fn assert_file(what: &str, response: &Response, file: &Served) {
    assert_eq!(response.status, 200, "{what} {}: {response:?}", file.name);
    assert_eq!(
        response.content_length(),
        Some(file.bytes.len() as u64),
        "{what} {}",
        file.name
    );
    let mime = response.header("content-type").unwrap_or_default();
    assert!(
        mime.starts_with(file.mime),
        "{what} {}: Content-Type {mime:?}, want {}",
        file.name,
        file.mime
    );
    assert!(
        response.body == file.bytes,
        "{what} {}: {} bytes of {}, first difference at {:?}",
        file.name,
        response.body.len(),
        file.bytes.len(),
        first_difference(&response.body, &file.bytes)
    );
}

/// Writes the files of `names_sizes_mimes` (different bytes each).
pub(crate) fn files(site: &Site, spec: &[(&'static str, usize, &'static str)]) -> Vec<Served> {
    spec.iter()
        .enumerate()
        .map(|(i, &(name, len, mime))| {
            let bytes = data(100 + i as u64, len);
            site.write(name, &bytes);
            Served { name, bytes, mime }
        })
        .collect()
}

#[test]
fn every_strategy_and_trigger_serves_files_byte_identical() {
    let site = Site::new("strategies");
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
            let what = format!("{}/{trigger:?}", send.label);
            let running = send.spec(&site).trigger(trigger).start();
            // One kept-alive connection for every size.
            let mut client = running.client();
            for file in &files {
                let response = client.get(&format!("/{}", file.name));
                assert_file(&what, &response, file);
            }
            if let Some(strategy) = send.counted_as() {
                let stats = running.server.event_loops()[0].transfer_stats();
                assert_eq!(stats.bytes_by(strategy), total, "{what}: {stats:?}");
            }
        }
    }
}

#[test]
fn every_reactor_mode_serves_sequential_and_concurrent_clients() {
    let site = Site::new("modes");
    let files = files(
        &site,
        &[
            ("a.txt", 100, "text/plain"),
            ("page.html", 4 << 10, "text/html"),
            ("mib.bin", 1 << 20, "application/octet-stream"),
        ],
    );
    common::for_each(Config::all(), |config| {
        let what = config.to_string();
        let running = Spec::new(&site.root).config(config).start();
        let mut client = running.client();
        for file in &files {
            assert_file(&what, &client.get(&format!("/{}", file.name)), file);
        }
        drop(client);
        // 8 connections × 4 requests at once.
        std::thread::scope(|s| {
            for c in 0..8 {
                let (running, files, what) = (&running, &files, &what);
                s.spawn(move || {
                    let mut client = running.client();
                    for r in 0..4 {
                        let file = &files[(c + r) % files.len()];
                        assert_file(what, &client.get(&format!("/{}", file.name)), file);
                    }
                });
            }
        });
    });
}

#[test]
fn ranges_past_4_gib_of_a_sparse_file_for_every_strategy() {
    let site = Site::new("sparse");
    let path = site.root.join("huge.bin");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .expect("sparse file");
    let len = (5u64 << 30) + 4096;
    file.set_len(len).expect("set_len");
    let marks = [(2u64 << 30) - 10, (4u64 << 30) - 20, len - 50];
    for (i, &at) in marks.iter().enumerate() {
        file.write_all_at(&data(i as u64, 40), at).expect("mark");
    }
    let expect = |first: u64, last: u64| {
        let mut buf = vec![0u8; (last - first + 1) as usize];
        file.read_exact_at(&mut buf, first).expect("read back");
        buf
    };
    let ranges = [
        // Straddling 4 GiB, with its marker.
        ((4u64 << 30) - 1000, (4u64 << 30) + 999),
        // Straddling 2 GiB.
        ((2u64 << 30) - 100, (2u64 << 30) + 99),
        // The end, with its marker.
        (len - 4000, len - 1),
    ];
    for (send, trigger) in SENDS
        .into_iter()
        .flat_map(|send| [(send, Trigger::Edge), (send, Trigger::Level)])
    {
        let running = send.spec(&site).trigger(trigger).start();
        let mut client = running.client();
        let head = client.head_with("/huge.bin", &[]);
        assert_eq!(
            head.content_length(),
            Some(len),
            "{} {trigger:?}",
            send.label
        );
        let mut check = |range: String, first: u64, last: u64| {
            let response = client.get_with("/huge.bin", &[("Range", &range)]);
            let what = format!("{} {trigger:?} {range}", send.label);
            assert_eq!(response.status, 206, "{what}: {response:?}");
            assert_eq!(
                response.header("content-range"),
                Some(format!("bytes {first}-{last}/{len}").as_str()),
                "{what}"
            );
            assert_eq!(response.content_length(), Some(last - first + 1), "{what}");
            let want = expect(first, last);
            assert!(
                response.body == want,
                "{what}: first difference at {:?}",
                first_difference(&response.body, &want)
            );
        };
        for &(first, last) in &ranges {
            check(format!("bytes={first}-{last}"), first, last);
        }
        check("bytes=-100".to_string(), len - 100, len - 1);
        check(format!("bytes={}-", len - 60), len - 60, len - 1);
    }
}

#[test]
fn a_file_truncated_during_a_transfer_ends_only_that_response() {
    let site = Site::new("truncate");
    let small = data(7, 1000);
    site.write("small.txt", &small);
    let victim = data(6, 32 << 20);
    for send in SENDS {
        let path = site.write("victim.bin", &victim);
        let running = send.spec(&site).name("fs-trunc").start();
        let mut client = running.client();
        client.send(&crate::client::request("GET", "/victim.bin", &[]));
        let head = client.response_head().expect("the head");
        assert_eq!(head.status, 200, "{}", send.label);
        assert_eq!(head.content_length(), Some(victim.len() as u64));
        let first = client.body_bytes(1 << 20).expect("the first MiB");
        assert!(first[..] == victim[..1 << 20], "{}", send.label);
        // Shrink the file under the transfer.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(1 << 20))
            .expect("truncate");
        // Another connection is served meanwhile.
        let mut other = running.client();
        let response = other.get("/small.txt");
        assert!(
            response.status == 200 && response.body == small,
            "{}",
            send.label
        );
        drop(other);
        // The cut-off response ends early: never all of it, never a hang.
        let (rest, end) = client.read_until_closed();
        let total = first.len() + rest.len();
        assert!(
            total < victim.len(),
            "{}: all {total} bytes arrived despite the truncation ({end:?})",
            send.label
        );
        // What did arrive is the file's old bytes, in order, where the
        // strategy copies them. Zero-copy strategies (sendfile, splice) hand
        // the socket page-cache pages, not copies: the truncation zeroes the
        // tail of the (large) folio that straddles the new end, and bytes
        // already "sent" from it arrive as zeros. The reset tells the client
        // the body is incomplete either way.
        if send.copies() {
            assert!(
                rest[..] == victim[1 << 20..total],
                "{}: wrong bytes after the first MiB, first difference at {:?}",
                send.label,
                first_difference(&rest, &victim[1 << 20..total])
            );
        }
        drop(client);
        running.wait_open(0);
        // Idle after the failure: the loop must not spin (measured on this
        // server's own threads; other tests run in parallel).
        assert!(
            common::threads_named("fs-trunc") > 0,
            "no thread to measure"
        );
        let (cpu_before, started) = (common::threads_cpu_time("fs-trunc"), Instant::now());
        std::thread::sleep(Duration::from_millis(300));
        let cpu = common::threads_cpu_time("fs-trunc") - cpu_before;
        assert!(
            cpu < Duration::from_millis(100),
            "{}: {cpu:?} of CPU in {:?} while idle: a loop spins",
            send.label,
            started.elapsed()
        );
        // And it serves new connections afterwards.
        let mut after = Client::connect(running.server.local_addr());
        let response = after.get("/small.txt");
        assert!(
            response.status == 200 && response.body == small,
            "{}",
            send.label
        );
        drop(after);
        drop(running);
        std::fs::remove_file(&path).expect("remove the victim");
    }
}
