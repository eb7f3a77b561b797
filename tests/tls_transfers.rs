//! Large and file-backed writes over TLS, in every reactor mode × trigger
//! × allocator, against a rustls client that does not go through wharf:
//! 64 MiB to a reader that starts late (the water marks flip, writability
//! returns, the bytes queued stay within the high water mark plus one
//! message); `FileRegion`s of every transfer strategy between buffers at
//! odd offsets (each read into records, not `sendfile`d); a `ChunkedFile`
//! transformed by its handler. Every byte arrives in order, and the stream
//! ends with `close_notify`.

mod common;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::tls::{self, Pki};
use common::{Config, pattern};
use wharf::buf::ByteBuf;
use wharf::{
    ChannelError, ChunkedFile, Context, FileRegion, Handler, OutboundMessage, Pipeline,
    RawMessages, SocketOption, TransferStrategy,
};

const WAIT: Duration = Duration::from_secs(20);
const HIGH: usize = 64 << 10;
const LOW: usize = 32 << 10;
/// The chunked file's server's send buffer: a fixed size (the kernel
/// does not grow it), so the 4 MiB file cannot all fit in the kernel's
/// buffers before the client reads, and the channel must turn unwritable.
/// (64 MiB cannot fit with any buffer sizes.)
const SOCKET_BUFFER: usize = 256 << 10;

/// What a server's handler reports.
#[derive(Default)]
struct Report {
    max_pending: AtomicUsize,
    unwritable: AtomicUsize,
    writable: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

impl Report {
    fn pending(&self, bytes: usize) {
        self.max_pending.fetch_max(bytes, Ordering::SeqCst);
    }

    fn writability(&self, writable: bool) {
        let counter = if writable {
            &self.writable
        } else {
            &self.unwritable
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }

    fn error(&self, error: &ChannelError) {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(error.to_string());
    }

    fn errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

const STREAM_TOTAL: usize = 64 << 20;
const STREAM_CHUNK: usize = 64 << 10;
const PERIOD: usize = 251;

/// The byte at stream offset `i` is `i % 251`; one period more than
/// `len`, so any window of `len` bytes is a slice of it.
fn periodic(len: usize) -> Vec<u8> {
    (0..len + PERIOD).map(|i| (i % PERIOD) as u8).collect()
}

/// Writes 64 MiB in 64 KiB messages while the channel is writable, then
/// closes.
struct Streamer {
    source: Arc<Vec<u8>>,
    sent: usize,
    report: Arc<Report>,
}

impl Streamer {
    fn pump(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        while self.sent < STREAM_TOTAL && ctx.is_writable() {
            let len = STREAM_CHUNK.min(STREAM_TOTAL - self.sent);
            let start = self.sent % PERIOD;
            let mut buf = ctx.allocator().buffer(len);
            buf.extend_from_slice(&self.source[start..start + len]);
            ctx.write(buf);
            self.sent += len;
            self.report.pending(ctx.pending_outbound_bytes());
            ctx.flush();
        }
        if self.sent == STREAM_TOTAL {
            ctx.close();
        }
    }
}

impl Handler for Streamer {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        self.pump(ctx);
    }

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {}

    fn on_writability_changed(&mut self, ctx: &mut Context<'_, ByteBuf>, writable: bool) {
        self.report.writability(writable);
        if writable {
            self.pump(ctx);
        }
    }

    fn on_error(&mut self, ctx: &mut Context<'_, ByteBuf>, error: &ChannelError) {
        self.report.error(error);
        ctx.close();
    }
}

/// 64 MiB over TLS to a client that reads only once the server's channel
/// has turned unwritable: every byte arrives in order, the water marks
/// flip and writability returns, and the plaintext queued at the server
/// (what waits to be sealed plus what sealed records waiting for the
/// socket carry) never exceeds the high water mark plus one message.
#[test]
fn sixty_four_mib_to_a_late_reader_within_the_water_marks() {
    let pki = Pki::new("transfer-stream", &["stream.test"]);
    let client = pki.rustls_client();
    let source = Arc::new(periodic(STREAM_CHUNK));
    let check = periodic(64 << 10);
    common::for_each(Config::all(), |config| {
        let report = Arc::new(Report::default());
        let (s, r) = (Arc::clone(&source), Arc::clone(&report));
        let server = config
            .server()
            .tls(pki.server("stream.test"))
            .water_mark(LOW, HIGH)
            .child_handler(move || {
                Pipeline::bytes(Streamer {
                    source: Arc::clone(&s),
                    sent: 0,
                    report: Arc::clone(&r),
                })
            })
            .bind("127.0.0.1:0")
            .expect("bind");
        let mut stream =
            tls::connect(server.local_addr(), client.clone(), "stream.test").expect("TLS");
        common::wait_until(WAIT, "the server's channel to turn unwritable", || {
            report.unwritable.load(Ordering::SeqCst) > 0
        });
        let mut buf = vec![0u8; 64 << 10];
        let mut received = 0;
        loop {
            let n = stream
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("{config}: read after {received} bytes: {e}"));
            if n == 0 {
                break;
            }
            let start = received % PERIOD;
            assert!(
                buf[..n] == check[start..start + n],
                "{config}: wrong bytes at offset {received}"
            );
            received += n;
        }
        assert_eq!(received, STREAM_TOTAL, "{config}: bytes received");
        let max = report.max_pending.load(Ordering::SeqCst);
        assert!(
            max <= HIGH + STREAM_CHUNK + 64,
            "{config}: {max} bytes queued, more than {HIGH} + one {STREAM_CHUNK}-byte message"
        );
        assert!(
            max > HIGH,
            "{config}: the queue never passed the high mark ({max})"
        );
        assert!(
            report.writable.load(Ordering::SeqCst) > 0,
            "{config}: writability never returned"
        );
        assert!(
            report.errors().is_empty(),
            "{config}: {:?}",
            report.errors()
        );
        common::wait_for_no_connections(&server);
    });
}

/// How a region is sent.
#[derive(Clone, Copy, Debug)]
enum Send {
    Strategy(TransferStrategy),
    Direct,
}

const SENDS: [Send; 6] = [
    Send::Strategy(TransferStrategy::Sendfile),
    Send::Strategy(TransferStrategy::Splice),
    Send::Strategy(TransferStrategy::MmapWrite),
    Send::Strategy(TransferStrategy::ReadWrite),
    Send::Strategy(TransferStrategy::Auto),
    Send::Direct,
];

/// One piece of what the server sends.
#[derive(Clone, Copy, Debug)]
enum Piece {
    Bytes(usize),
    File(u64, u64),
}

/// Buffers and regions at offsets that do not line up with records,
/// pages or the file's end.
const PIECES: [Piece; 7] = [
    Piece::Bytes(3),
    Piece::File(7, 40_000),
    Piece::Bytes((16 << 10) + 1),
    Piece::File(100_000, 1 << 20),
    Piece::File(0, 0),
    Piece::Bytes(1),
    Piece::File((2 << 20) - 5, 5),
];

/// Sends [`PIECES`] on activation, then closes.
struct RegionSender {
    file: Arc<File>,
    send: Send,
    report: Arc<Report>,
}

impl Handler for RegionSender {
    type In = ByteBuf;
    type Out = OutboundMessage;

    fn on_active(&mut self, ctx: &mut Context<'_, OutboundMessage>) {
        for (i, piece) in PIECES.iter().enumerate() {
            match *piece {
                Piece::Bytes(len) => {
                    let data = pattern(i as u64, len);
                    ctx.write(common::buf_of(ctx.allocator(), &data).into());
                }
                Piece::File(position, count) => {
                    let region = FileRegion::new(Arc::clone(&self.file), position, count);
                    let region = match self.send {
                        Send::Strategy(s) => region.with_strategy(s),
                        Send::Direct => region.direct_io(true),
                    };
                    ctx.write(region.into());
                }
            }
        }
        ctx.flush();
        ctx.close();
    }

    fn on_read(&mut self, _ctx: &mut Context<'_, OutboundMessage>, _msg: ByteBuf) {}

    fn on_error(&mut self, ctx: &mut Context<'_, OutboundMessage>, error: &ChannelError) {
        self.report.error(error);
        ctx.close();
    }
}

/// A file in the test's temporary directory.
struct TempFile {
    path: PathBuf,
    file: Arc<File>,
}

impl TempFile {
    fn new(name: &str, data: &[u8]) -> TempFile {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("tls-{name}-{}", std::process::id()));
        std::fs::write(&path, data).expect("write the file");
        let file = Arc::new(File::open(&path).expect("open the file"));
        TempFile { path, file }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Every transfer strategy (and direct I/O) sends regions between
/// buffers over TLS byte for byte, in order, and the stream ends with
/// `close_notify`.
#[test]
fn file_regions_of_every_strategy_arrive_byte_exact() {
    let pki = Pki::new("transfer-region", &["region.test"]);
    let client = pki.rustls_client();
    let data = pattern(77, 2 << 20);
    let temp = TempFile::new("region", &data);
    let mut expected = Vec::new();
    for (i, piece) in PIECES.iter().enumerate() {
        match *piece {
            Piece::Bytes(len) => expected.extend_from_slice(&pattern(i as u64, len)),
            Piece::File(position, count) => {
                expected.extend_from_slice(&data[position as usize..(position + count) as usize])
            }
        }
    }
    common::for_each(Config::all(), |config| {
        for send in SENDS {
            let report = Arc::new(Report::default());
            let (f, r) = (Arc::clone(&temp.file), Arc::clone(&report));
            let server = config
                .server()
                .tls(pki.server("region.test"))
                .child_handler(move || {
                    Pipeline::new(
                        RawMessages,
                        RegionSender {
                            file: Arc::clone(&f),
                            send,
                            report: Arc::clone(&r),
                        },
                    )
                })
                .bind("127.0.0.1:0")
                .expect("bind");
            let mut stream =
                tls::connect(server.local_addr(), client.clone(), "region.test").expect("TLS");
            let mut got = Vec::new();
            // rustls reads a clean end only after close_notify.
            stream
                .read_to_end(&mut got)
                .unwrap_or_else(|e| panic!("{config}: {send:?}: after {} bytes: {e}", got.len()));
            assert_eq!(got.len(), expected.len(), "{config}: {send:?}: length");
            assert!(got == expected, "{config}: {send:?}: the bytes differ");
            assert!(
                report.errors().is_empty(),
                "{config}: {send:?}: {:?}",
                report.errors()
            );
            common::wait_for_no_connections(&server);
        }
    });
}

const CHUNK: usize = 16 << 10;
const KEY: u8 = 0x5a;

/// Sends its chunked file XORed with `KEY` while writable, then closes.
struct Scrambler {
    file: ChunkedFile,
    report: Arc<Report>,
}

impl Scrambler {
    fn pump(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        let result = self.file.write_while_writable(ctx, |mut chunk| {
            chunk.iter_mut().for_each(|b| *b ^= KEY);
            chunk
        });
        self.report.pending(ctx.pending_outbound_bytes());
        match result {
            Ok(true) => ctx.close(),
            Ok(false) => {}
            Err(e) => {
                self.report
                    .errors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(e.to_string());
                ctx.close();
            }
        }
    }
}

impl Handler for Scrambler {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        self.pump(ctx);
    }

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {}

    fn on_writability_changed(&mut self, ctx: &mut Context<'_, ByteBuf>, writable: bool) {
        self.report.writability(writable);
        if writable {
            self.pump(ctx);
        }
    }

    fn on_error(&mut self, ctx: &mut Context<'_, ByteBuf>, error: &ChannelError) {
        self.report.error(error);
        ctx.close();
    }
}

/// A `ChunkedFile` (4 MiB in 16 KiB chunks, each transformed by the
/// handler) over TLS to a client that reads only once the channel has
/// turned unwritable: every transformed byte in order, a clean
/// `close_notify` end, and the queue within the high water mark plus one
/// chunk.
#[test]
fn a_chunked_file_arrives_transformed_within_the_water_marks() {
    let pki = Pki::new("transfer-chunked", &["chunked.test"]);
    let client = pki.rustls_client();
    let data = pattern(21, 4 << 20);
    let temp = TempFile::new("chunked", &data);
    common::for_each(Config::all(), |config| {
        let report = Arc::new(Report::default());
        let (f, r) = (Arc::clone(&temp.file), Arc::clone(&report));
        let count = data.len() as u64;
        let server = config
            .server()
            .tls(pki.server("chunked.test"))
            .water_mark(LOW, HIGH)
            .option(SocketOption::SendBuffer(SOCKET_BUFFER))
            .child_handler(move || {
                Pipeline::bytes(Scrambler {
                    file: ChunkedFile::new(Arc::clone(&f), 0, count).with_chunk_size(CHUNK),
                    report: Arc::clone(&r),
                })
            })
            .bind("127.0.0.1:0")
            .expect("bind");
        let mut stream =
            tls::connect(server.local_addr(), client.clone(), "chunked.test").expect("TLS");
        common::wait_until(WAIT, "the server's channel to turn unwritable", || {
            report.unwritable.load(Ordering::SeqCst) > 0
        });
        let mut got = Vec::with_capacity(data.len());
        stream
            .read_to_end(&mut got)
            .unwrap_or_else(|e| panic!("{config}: after {} bytes: {e}", got.len()));
        assert_eq!(got.len(), data.len(), "{config}: length");
        assert!(
            got.iter().zip(&data).all(|(g, d)| *g == d ^ KEY),
            "{config}: the transformed bytes differ"
        );
        let max = report.max_pending.load(Ordering::SeqCst);
        assert!(
            max <= HIGH + CHUNK + 64,
            "{config}: {max} bytes queued, more than {HIGH} + one {CHUNK}-byte chunk"
        );
        assert!(
            report.errors().is_empty(),
            "{config}: {:?}",
            report.errors()
        );
        common::wait_for_no_connections(&server);
    });
}
