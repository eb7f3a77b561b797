//! File regions through a channel: every transfer strategy (and direct
//! I/O) × trigger sends files of 0 B to 64 MiB byte-identical; offsets are
//! exact, also past 2 GiB and 4 GiB in a sparse file; regions keep their
//! place between buffers; a zero-length region completes at once; a region
//! longer than its file, or a file truncated during the transfer, closes
//! that connection with an error while the server keeps serving others and
//! no loop spins.

mod common;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{connect, pattern};
use wharf::buf::ByteBuf;
use wharf::{
    ChannelError, Context, FileMap, FileRegion, Handler, OutboundMessage, Pipeline, RawMessages,
    ServerBootstrap, TransferStrategy, Trigger,
};

/// How a test server sends its file.
#[derive(Clone, Copy, Debug)]
enum Send {
    Strategy(TransferStrategy),
    Direct,
    /// `Auto`, with the file mapped once when the server starts (a
    /// `FileMap` shared by every connection's regions).
    Mapped,
}

const SENDS: [Send; 7] = [
    Send::Strategy(TransferStrategy::Sendfile),
    Send::Strategy(TransferStrategy::Splice),
    Send::Strategy(TransferStrategy::MmapWrite),
    Send::Strategy(TransferStrategy::ReadWrite),
    Send::Strategy(TransferStrategy::Auto),
    Send::Direct,
    Send::Mapped,
];

impl Send {
    fn region(
        self,
        file: &Arc<File>,
        map: Option<&Arc<FileMap>>,
        position: u64,
        count: u64,
    ) -> FileRegion {
        let region = FileRegion::new(Arc::clone(file), position, count);
        match (self, map) {
            (Send::Strategy(s), _) => region.with_strategy(s),
            (Send::Direct, _) => region.direct_io(true),
            (Send::Mapped, Some(map)) => map.region(position, count),
            (Send::Mapped, None) => region,
        }
    }
}

/// One piece of what the server sends on each connection.
#[derive(Clone)]
enum Piece {
    Bytes(Vec<u8>),
    File(u64, u64),
}

/// Sends its pieces on activation, then closes; counts errors.
struct Sender {
    file: Arc<File>,
    map: Option<Arc<FileMap>>,
    send: Send,
    pieces: Vec<Piece>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Handler for Sender {
    type In = ByteBuf;
    type Out = OutboundMessage;

    fn on_active(&mut self, ctx: &mut Context<'_, OutboundMessage>) {
        for piece in &self.pieces {
            match piece {
                Piece::Bytes(b) => {
                    let mut buf = ctx.allocator().buffer(b.len());
                    buf.extend_from_slice(b);
                    ctx.write(buf.into());
                }
                Piece::File(position, count) => {
                    ctx.write(
                        self.send
                            .region(&self.file, self.map.as_ref(), *position, *count)
                            .into(),
                    );
                }
            }
        }
        ctx.flush();
        ctx.close();
    }

    fn on_read(&mut self, _ctx: &mut Context<'_, OutboundMessage>, _msg: ByteBuf) {}

    fn on_error(&mut self, ctx: &mut Context<'_, OutboundMessage>, error: &ChannelError) {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(error.to_string());
        ctx.close();
    }
}

struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("file_region-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Fixture { dir }
    }

    fn file(&self, name: &str, contents: &[u8]) -> (PathBuf, Arc<File>) {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).expect("write test file");
        let file = File::open(&path).expect("open test file");
        (path, Arc::new(file))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn serve(
    trigger: Trigger,
    file: &Arc<File>,
    send: Send,
    pieces: Vec<Piece>,
) -> (wharf::Server, Arc<Mutex<Vec<String>>>) {
    serve_named("wharf-test", trigger, file, send, pieces)
}

fn serve_named(
    name: &str,
    trigger: Trigger,
    file: &Arc<File>,
    send: Send,
    pieces: Vec<Piece>,
) -> (wharf::Server, Arc<Mutex<Vec<String>>>) {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let (f, e) = (Arc::clone(file), Arc::clone(&errors));
    // An empty file cannot be mapped: its regions go without a map.
    let map = matches!(send, Send::Mapped)
        .then(|| FileMap::new(Arc::clone(file)).ok().map(Arc::new))
        .flatten();
    let server = ServerBootstrap::new()
        .trigger(trigger)
        .thread_name(name)
        .child_handler(move || {
            Pipeline::new(
                RawMessages,
                Sender {
                    file: Arc::clone(&f),
                    map: map.clone(),
                    send,
                    pieces: pieces.clone(),
                    errors: Arc::clone(&e),
                },
            )
        })
        .bind("127.0.0.1:0")
        .expect("bind");
    (server, errors)
}

fn fetch(server: &wharf::Server) -> Vec<u8> {
    let mut client = connect(server.local_addr());
    let mut got = Vec::new();
    client.read_to_end(&mut got).expect("read to end");
    got
}

/// What arrives before the server's failed transfer ends the connection:
/// it must end with a reset, so that the cut is visible to the client.
fn fetch_cut_off(server: &wharf::Server) -> Vec<u8> {
    let mut client = connect(server.local_addr());
    let (got, end) = common::read_until_closed(&mut client);
    let error = end.expect_err("a transfer cut short must end in a reset, not a clean close");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}");
    got
}

#[test]
fn every_strategy_and_trigger_sends_files_byte_identical() {
    let fx = Fixture::new("sizes");
    let big = pattern(64, 64 << 20);
    let sizes = [0usize, 1, 4096, 1 << 20, 64 << 20];
    let files: Vec<_> = sizes
        .iter()
        .map(|&n| (n, fx.file(&format!("f{n}"), &big[..n]).1))
        .collect();
    for trigger in [Trigger::Edge, Trigger::Level] {
        for send in SENDS {
            for (size, file) in &files {
                let (server, errors) =
                    serve(trigger, file, send, vec![Piece::File(0, *size as u64)]);
                let got = fetch(&server);
                assert!(
                    got.len() == *size && got[..] == big[..*size],
                    "{send:?}/{trigger:?}/{size} B: got {} bytes, first difference at {:?}",
                    got.len(),
                    got.iter().zip(&big).position(|(a, b)| a != b)
                );
                assert!(errors.lock().expect("errors").is_empty(), "{errors:?}");
                let stats = server.event_loops()[0].transfer_stats();
                // A concrete strategy sends every byte itself.
                let concrete = match send {
                    Send::Strategy(TransferStrategy::Auto) | Send::Direct | Send::Mapped => None,
                    Send::Strategy(s) => Some(s),
                };
                if let Some(s) = concrete {
                    assert_eq!(stats.bytes_by(s), *size as u64, "{send:?}: {stats:?}");
                }
            }
        }
    }
}

#[test]
fn offsets_and_order_between_buffers_are_exact() {
    let fx = Fixture::new("offsets");
    let data = pattern(9, 3 << 20);
    let (_, file) = fx.file("data", &data);
    for send in SENDS {
        let pieces = vec![
            Piece::Bytes(b"head:".to_vec()),
            Piece::File(12_345, 1 << 20),
            Piece::Bytes(b":mid:".to_vec()),
            // A zero-length region completes at once (netty#2964).
            Piece::File(99, 0),
            Piece::File(1, 4095),
            Piece::Bytes(b":tail".to_vec()),
        ];
        let (server, errors) = serve(Trigger::Edge, &file, send, pieces);
        let got = fetch(&server);
        let mut want = b"head:".to_vec();
        want.extend_from_slice(&data[12_345..12_345 + (1 << 20)]);
        want.extend_from_slice(b":mid:");
        want.extend_from_slice(&data[1..4096]);
        want.extend_from_slice(b":tail");
        assert!(
            got == want,
            "{send:?}: {} bytes vs {}",
            got.len(),
            want.len()
        );
        assert!(errors.lock().expect("errors").is_empty(), "{errors:?}");
    }
}

/// Waits (bounded) until the server's loop has seen its connection close,
/// so that the counters read next are final.
fn wait_closed(server: &wharf::Server) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats().connections_closed < 1 {
        assert!(Instant::now() < deadline, "the connection never closed");
        std::thread::yield_now();
    }
}

/// What a strategy must have moved: bytes and system calls, where checked.
type Moved = (TransferStrategy, Option<u64>, Option<u64>);

#[test]
fn a_small_region_behind_buffers_leaves_with_them_in_one_write() {
    let fx = Fixture::new("inline");
    let data = pattern(5, 64 << 10);
    let (_, file) = fx.file("data", &data);
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: ...\r\n\r\n".to_vec();
    for trigger in [Trigger::Edge, Trigger::Level] {
        for (len, send) in [
            (1024, Send::Strategy(TransferStrategy::Auto)),
            (16 << 10, Send::Strategy(TransferStrategy::Auto)),
            // Over 16 KiB, or a strategy asked for: the file is not read.
            ((16 << 10) + 1, Send::Strategy(TransferStrategy::Auto)),
            (1024, Send::Strategy(TransferStrategy::Sendfile)),
            (1024, Send::Mapped),
            (16 << 10, Send::Mapped),
        ] {
            let what = format!("{trigger:?}/{send:?}/{len} B");
            let pieces = vec![Piece::Bytes(head.clone()), Piece::File(7, len)];
            let (server, errors) = serve(trigger, &file, send, pieces);
            let got = fetch(&server);
            wait_closed(&server);
            let mut want = head.clone();
            want.extend_from_slice(&data[7..7 + len as usize]);
            assert!(got == want, "{what}: {} bytes vs {}", got.len(), want.len());
            assert!(errors.lock().expect("errors").is_empty(), "{errors:?}");
            let stats = server.stats();
            let transfers = server.event_loops()[0].transfer_stats();
            let inlined = len <= 16 << 10 && matches!(send, Send::Strategy(TransferStrategy::Auto));
            use TransferStrategy::{MmapWrite, ReadWrite, Sendfile};
            // Whether head and file left in one writev, and what each
            // strategy moved: (strategy, bytes if checked, calls if checked).
            let (one_write, moved): (bool, Vec<Moved>) = if matches!(send, Send::Mapped) {
                // The file from its map: no system call to read it.
                let none = Some(0);
                (
                    true,
                    vec![
                        (MmapWrite, Some(len), none),
                        (ReadWrite, None, none),
                        (Sendfile, None, none),
                    ],
                )
            } else if inlined {
                // One pread.
                (
                    true,
                    vec![(ReadWrite, Some(len), Some(1)), (Sendfile, None, Some(0))],
                )
            } else {
                (
                    false,
                    vec![(Sendfile, Some(len), None), (ReadWrite, Some(0), None)],
                )
            };
            if one_write {
                assert_eq!(stats.writes, 1, "{what}: {stats:?}");
            }
            for (strategy, bytes, calls) in moved {
                if let Some(bytes) = bytes {
                    assert_eq!(transfers.bytes_by(strategy), bytes, "{what}: {strategy:?}");
                }
                if let Some(calls) = calls {
                    assert_eq!(
                        transfers.syscalls_by(strategy),
                        calls,
                        "{what}: {strategy:?}"
                    );
                }
            }
        }
    }
}

/// Many buffers ahead of a small region: the region joins them in the
/// same write only while the iovec array has room, and the stream is
/// exact either way (63, 64 and 65 buffers: the stack array of 64 iovecs
/// full, or spilled to the heap).
#[test]
fn a_small_region_behind_many_buffers_keeps_the_stream_exact() {
    let fx = Fixture::new("many");
    let data = pattern(21, 8 << 10);
    let (_, file) = fx.file("data", &data);
    for buffers in [63usize, 64, 65] {
        for send in [Send::Strategy(TransferStrategy::Auto), Send::Mapped] {
            // Over the 512-byte gathering limit: each buffer its own entry.
            let mut pieces: Vec<Piece> = (0..buffers)
                .map(|i| Piece::Bytes(pattern(i as u64, 600)))
                .collect();
            pieces.push(Piece::File(3, 1000));
            let want: Vec<u8> = (0..buffers)
                .flat_map(|i| pattern(i as u64, 600))
                .chain(data[3..1003].iter().copied())
                .collect();
            let (server, errors) = serve(Trigger::Edge, &file, send, pieces);
            let got = fetch(&server);
            assert!(
                got == want,
                "{buffers} buffers, {send:?}: {} bytes vs {}, first difference at {:?}",
                got.len(),
                want.len(),
                got.iter().zip(&want).position(|(a, b)| a != b)
            );
            assert!(errors.lock().expect("errors").is_empty(), "{errors:?}");
        }
    }
}

/// A file mapped once is sent as it is now: rewritten in place, the next
/// response carries the new bytes. Shrunk under its map, the kernel's copy
/// from the vanished pages fails: that response is cut off with a reset,
/// the process gets no SIGBUS, and once the file is whole again the next
/// connection is served.
#[test]
fn a_mapped_file_is_sent_as_it_is_now_and_a_shrunk_one_cuts_off_cleanly() {
    let fx = Fixture::new("mapped");
    let (a, b) = (pattern(11, 4096), pattern(12, 4096));
    let (path, file) = fx.file("page", &a);
    let writer = OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("writable");
    let head = b"head:".to_vec();
    for trigger in [Trigger::Edge, Trigger::Level] {
        writer.write_all_at(&a, 0).expect("restore");
        let pieces = vec![Piece::Bytes(head.clone()), Piece::File(0, 4096)];
        let (server, errors) = serve(trigger, &file, Send::Mapped, pieces);
        let with = |body: &[u8]| [&head[..], body].concat();
        assert!(
            fetch(&server) == with(&a),
            "{trigger:?}: the file as mapped"
        );
        writer.write_all_at(&b, 0).expect("rewrite in place");
        assert!(
            fetch(&server) == with(&b),
            "{trigger:?}: not the bytes now in the file"
        );
        assert!(errors.lock().expect("errors").is_empty(), "{errors:?}");

        writer.set_len(0).expect("truncate");
        let cut = fetch_cut_off(&server);
        assert!(
            cut.len() < head.len() + 4096,
            "{trigger:?}: {} bytes",
            cut.len()
        );
        common::wait_until(Duration::from_secs(5), "the error", || {
            !errors.lock().expect("errors").is_empty()
        });

        writer.write_all_at(&a, 0).expect("whole again");
        assert!(fetch(&server) == with(&a), "{trigger:?}: served again");
    }
}

#[test]
fn offsets_past_2_and_4_gib_in_a_sparse_file() {
    let fx = Fixture::new("sparse");
    let path = fx.dir.join("sparse");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .expect("sparse file");
    let len = (5u64 << 30) + 4096;
    file.set_len(len).expect("set_len");
    let marks = [(2u64 << 30) - 10, (4u64 << 30) + 123, len - 50];
    for (i, &at) in marks.iter().enumerate() {
        file.write_all_at(&pattern(i as u64, 40), at).expect("mark");
    }
    let file = Arc::new(file);
    let expect = |position: u64, count: u64| {
        let mut buf = vec![0u8; count as usize];
        file.read_exact_at(&mut buf, position).expect("read back");
        buf
    };
    let ranges = [
        ((2u64 << 30) - 1000, 8192u64),
        ((4u64 << 30) + 100, 64 << 10),
        (len - 4000, 4000),
    ];
    for send in SENDS {
        for &(position, count) in &ranges {
            let (server, errors) = serve(
                Trigger::Level,
                &file,
                send,
                vec![Piece::File(position, count)],
            );
            let got = fetch(&server);
            assert!(
                got == expect(position, count),
                "{send:?} at {position}: {} bytes",
                got.len()
            );
            assert!(errors.lock().expect("errors").is_empty(), "{errors:?}");
        }
    }
}

#[test]
fn a_region_longer_than_its_file_closes_with_an_error() {
    let fx = Fixture::new("short");
    let data = pattern(5, 1000);
    let (_, file) = fx.file("short", &data);
    for send in SENDS {
        let (server, errors) = serve(Trigger::Edge, &file, send, vec![Piece::File(0, 5000)]);
        let got = fetch_cut_off(&server);
        assert!(
            got.len() <= 1000 && got[..] == data[..got.len()],
            "{send:?}: {} bytes",
            got.len()
        );
        common::wait_until(Duration::from_secs(5), "the error", || {
            !errors.lock().expect("errors").is_empty()
        });
        let first = errors.lock().expect("errors")[0].clone();
        assert!(first.contains("file ended"), "{send:?}: {first}");
        // The server goes on serving.
        let again = fetch_cut_off(&server);
        assert!(again.len() <= 1000, "{send:?}");
    }
}

#[test]
fn a_file_truncated_during_the_transfer_closes_only_that_connection() {
    let fx = Fixture::new("truncate");
    let data = pattern(6, 32 << 20);
    for send in SENDS {
        let (path, file) = fx.file("victim", &data);
        let (server, errors) = serve_named(
            "wharf-trunc",
            Trigger::Edge,
            &file,
            send,
            vec![Piece::File(0, data.len() as u64)],
        );
        let mut client = connect(server.local_addr());
        let mut got = vec![0u8; 1 << 20];
        client.read_exact(&mut got).expect("first MiB");
        // Shrink the file under the transfer.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(2 << 20))
            .expect("truncate");
        // Ends early, with a reset (never a clean end, never a hang).
        let (rest, end) = common::read_until_closed(&mut client);
        let end = end.expect_err("a cut-off transfer must end in a reset");
        assert_eq!(
            end.kind(),
            std::io::ErrorKind::ConnectionReset,
            "{send:?}: {end}"
        );
        let total = got.len() + rest.len();
        assert!(
            total < data.len(),
            "{send:?}: all {total} bytes arrived despite the truncation"
        );
        common::wait_until(Duration::from_secs(5), "the error", || {
            !errors.lock().expect("errors").is_empty()
        });
        // After the failure the server is idle: its loop must not burn CPU
        // (measured on its own threads; other tests run in parallel).
        assert!(
            common::threads_named("wharf-trunc") > 0,
            "the server's threads are found by name"
        );
        let (cpu_before, started) = (common::threads_cpu_time("wharf-trunc"), Instant::now());
        std::thread::sleep(Duration::from_millis(300));
        let cpu = common::threads_cpu_time("wharf-trunc") - cpu_before;
        assert!(
            cpu < Duration::from_millis(100),
            "{send:?}: {cpu:?} of CPU in {:?} while idle: a loop spins",
            started.elapsed()
        );
        // Another connection is served (the file is 2 MiB now, shorter than
        // the region, so it is cut off too).
        let again = fetch_cut_off(&server);
        assert!(again.len() <= 2 << 20, "{send:?}");
        drop(server);
        std::fs::remove_file(&path).expect("remove");
    }
}

#[test]
fn direct_io_reads_do_not_block_other_connections() {
    let fx = Fixture::new("direct");
    let data = pattern(8, 16 << 20);
    let (_, file) = fx.file("big", &data);
    let served = Arc::new(AtomicUsize::new(0));
    let (server, errors) = serve(
        Trigger::Edge,
        &file,
        Send::Direct,
        vec![Piece::File(0, data.len() as u64)],
    );
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let got = fetch(&server);
                assert!(got == data, "direct I/O: {} bytes", got.len());
                served.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    assert_eq!(served.load(Ordering::Relaxed), 4);
    assert!(errors.lock().expect("errors").is_empty(), "{errors:?}");
    let _ = std::io::stdout().flush();
}
