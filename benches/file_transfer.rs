//! File transfer strategies, both ways. Sending: a wharf server sends a
//! file region to a loopback reader with `sendfile`, `splice`, `mmap` +
//! `write`, `pread` + `write`, and `O_DIRECT` reads on the blocking pool.
//! Receiving: a loopback writer uploads to a wharf server that stores the
//! bytes in a file with `Context::receive_file`, spliced (socket → pipe →
//! file) or copied (`read` + `pwrite`). Regions of 64 KiB, 1 MiB and
//! 64 MiB.
//!
//! Criterion measures throughput; then a table is printed from a separate
//! measured pass: throughput, system calls, server CPU time (user + sys)
//! and context switches per GiB, next to the copies each method makes.
//!
//! ```text
//! cargo bench --bench file_transfer             # about 2 minutes
//! cargo bench --bench file_transfer -- sendfile # one strategy
//! ```

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use wharf::buf::ByteBuf;
use wharf::transport::sys::limits::threads_usage;
use wharf::{
    Codec, CodecError, Context, Encoded, FileReceive, FileRegion, Handler, OutboundMessage,
    Pipeline, RawMessages, Server, ServerBootstrap, TransferStrategy, UserEvent,
};

const SIZES: [(u64, &str); 3] = [(64 << 10, "64KiB"), (1 << 20, "1MiB"), (64 << 20, "64MiB")];
const THREADS: &str = "ftsrv";

/// How the server sends: a strategy, or direct I/O.
#[derive(Debug, Clone, Copy)]
enum Method {
    Strategy(TransferStrategy),
    Direct,
}

const METHODS: [Method; 5] = [
    Method::Strategy(TransferStrategy::Sendfile),
    Method::Strategy(TransferStrategy::Splice),
    Method::Strategy(TransferStrategy::MmapWrite),
    Method::Strategy(TransferStrategy::ReadWrite),
    Method::Direct,
];

impl Method {
    fn name(&self) -> &'static str {
        match self {
            Method::Strategy(s) => s.name(),
            Method::Direct => "directio",
        }
    }

    /// Copies through the CPU per byte, as documented for each method.
    fn copies(&self) -> &'static str {
        match self {
            Method::Strategy(TransferStrategy::Sendfile) => "0-1",
            Method::Strategy(TransferStrategy::Splice) => "0",
            Method::Strategy(TransferStrategy::MmapWrite) => "1",
            Method::Strategy(_) => "2",
            Method::Direct => "1 (+DMA)",
        }
    }
}

/// Answers every byte it reads with the whole region.
struct Sender {
    file: Arc<File>,
    len: u64,
    method: Method,
}

impl Handler for Sender {
    type In = ByteBuf;
    type Out = OutboundMessage;

    fn on_read(&mut self, ctx: &mut Context<'_, OutboundMessage>, msg: ByteBuf) {
        for _ in 0..msg.len() {
            let region = FileRegion::new(Arc::clone(&self.file), 0, self.len);
            let region = match self.method {
                Method::Strategy(s) => region.with_strategy(s),
                Method::Direct => region.direct_io(true),
            };
            ctx.write(region.into());
        }
        ctx.flush();
    }
}

struct Setup {
    server: Server,
    client: TcpStream,
    buf: Vec<u8>,
    len: u64,
}

impl Setup {
    fn new(file: &Arc<File>, len: u64, method: Method) -> Setup {
        let f = Arc::clone(file);
        let server = ServerBootstrap::new()
            .thread_name(THREADS)
            .child_handler(move || {
                Pipeline::new(
                    RawMessages,
                    Sender {
                        file: Arc::clone(&f),
                        len,
                        method,
                    },
                )
            })
            .bind("127.0.0.1:0")
            .expect("bind");
        let client = TcpStream::connect(server.local_addr()).expect("connect");
        client.set_nodelay(true).expect("nodelay");
        Setup {
            server,
            client,
            buf: vec![0; 1 << 20],
            len,
        }
    }

    /// Asks for the region and reads all of it.
    fn fetch(&mut self) {
        fetch(&mut self.client, &mut self.buf, self.len);
    }
}

/// Asks `client`'s server for its region of `len` bytes and reads all of it.
fn fetch(client: &mut TcpStream, buf: &mut [u8], len: u64) {
    client.write_all(b"g").expect("request");
    let mut left = len as usize;
    while left > 0 {
        let want = left.min(buf.len());
        let n = client.read(&mut buf[..want]).expect("read");
        assert!(n > 0, "server closed");
        left -= n;
    }
}

/// The receive direction's protocol: an 8-byte big-endian length, then
/// that many bytes, which the codec leaves to the handler (it claims them).
#[derive(Default)]
struct Uploads {
    /// Bytes of the announced upload not yet taken around the codec.
    claimed: u64,
}

impl Codec for Uploads {
    type In = u64;
    type Out = ByteBuf;

    fn decode(&mut self, input: &mut ByteBuf, out: &mut Vec<u64>) -> Result<(), CodecError> {
        if self.claimed > 0 || input.len() < 8 {
            return Ok(());
        }
        let len = u64::from_be_bytes(input[..8].try_into().expect("8 bytes"));
        input.skip(8);
        self.claimed = len;
        out.push(len);
        Ok(())
    }

    fn encode(&mut self, msg: ByteBuf, out: &mut Encoded) -> Result<(), CodecError> {
        out.push(msg);
        Ok(())
    }

    fn input_claimed(&self) -> bool {
        self.claimed > 0
    }

    fn input_taken(&mut self, n: u64) {
        self.claimed -= n;
    }
}

/// Stores each upload in its file (overwriting the last), then answers
/// one byte.
struct Receiver {
    file: Option<File>,
    splice: bool,
}

impl Handler for Receiver {
    type In = u64;
    type Out = ByteBuf;

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, len: u64) {
        let file = self.file.take().expect("one upload at a time");
        ctx.receive_file(FileReceive::new(file, 0, len).splice(self.splice));
    }

    fn on_user_event(&mut self, ctx: &mut Context<'_, ByteBuf>, event: UserEvent) {
        if let UserEvent::Received(received) = event {
            received.result.expect("stored");
            self.file = received.file;
            let mut ack = ctx.allocator().buffer(1);
            ack.extend_from_slice(b"k");
            ctx.write_and_flush(ack);
        }
    }
}

/// The client side of the receive direction: sends uploads of `len`.
struct Uploader {
    client: TcpStream,
    chunk: Vec<u8>,
    len: u64,
}

impl Uploader {
    /// A server that receives uploads of `len` into a file (spliced or
    /// copied), and a client connected to it.
    fn start(len: u64, splice: bool) -> (Server, Uploader) {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("file_receive-{len}"));
        let server = ServerBootstrap::new()
            .thread_name(THREADS)
            .child_handler(move || {
                let file = File::options()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
                    .expect("upload file");
                Pipeline::new(
                    Uploads::default(),
                    Receiver {
                        file: Some(file),
                        splice,
                    },
                )
            })
            .bind("127.0.0.1:0")
            .expect("bind");
        let client = TcpStream::connect(server.local_addr()).expect("connect");
        client.set_nodelay(true).expect("nodelay");
        let uploader = Uploader {
            client,
            chunk: (0..1 << 20).map(|i| (i % 251) as u8).collect(),
            len,
        };
        (server, uploader)
    }

    /// Sends one upload and waits for its answer.
    fn send(&mut self) {
        self.client
            .write_all(&self.len.to_be_bytes())
            .expect("header");
        let mut left = self.len as usize;
        while left > 0 {
            let n = left.min(self.chunk.len());
            self.client.write_all(&self.chunk[..n]).expect("body");
            left -= n;
        }
        let mut ack = [0u8; 1];
        self.client.read_exact(&mut ack).expect("answer");
    }
}

/// How the receive direction stores: spliced, or copied.
const RECEIVES: [(&str, &str, bool); 2] = [("splice", "0", true), ("read+write", "2", false)];

fn file_of(len: u64) -> (PathBuf, Arc<File>) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("file_transfer-{len}"));
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(len) {
        let mut f = File::create(&path).expect("create");
        let block: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let mut left = len as usize;
        while left > 0 {
            let n = left.min(block.len());
            f.write_all(&block[..n]).expect("write");
            left -= n;
        }
    }
    let file = File::open(&path).expect("open");
    (path, Arc::new(file))
}

fn benches(c: &mut Criterion) {
    for (len, label) in SIZES {
        let (_, file) = file_of(len);
        let mut group = c.benchmark_group(format!("transfer/{label}"));
        group.throughput(Throughput::Bytes(len));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(300));
        group.measurement_time(Duration::from_secs(2));
        for method in METHODS {
            let mut setup = Setup::new(&file, len, method);
            group.bench_function(method.name(), |b| b.iter(|| setup.fetch()));
        }
        group.finish();
        let mut group = c.benchmark_group(format!("receive/{label}"));
        group.throughput(Throughput::Bytes(len));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(300));
        group.measurement_time(Duration::from_secs(2));
        for (name, _, splice) in RECEIVES {
            let (_server, mut upload) = Uploader::start(len, splice);
            group.bench_function(name, |b| b.iter(|| upload.send()));
        }
        group.finish();
    }
}

/// One row of the table: `run` repeated for about a second (and at least
/// 256 MiB). System calls are the loop's `epoll_wait`s and socket reads
/// plus what `extra` counts (cumulative) for the direction.
fn row(
    (direction, name, copies): (&str, &str, &str),
    label: &str,
    len: u64,
    server: &Server,
    extra: impl Fn(&Server) -> u64,
    mut run: impl FnMut(),
) {
    run();
    let before = server.stats();
    let extra_before = extra(server);
    let (cpu0, sw0) = server_usage();
    let started = Instant::now();
    let mut bytes = 0u64;
    while started.elapsed() < Duration::from_secs(1) || bytes < 256 << 20 {
        run();
        bytes += len;
    }
    let secs = started.elapsed().as_secs_f64();
    let (cpu1, sw1) = server_usage();
    let period = server.stats().since(&before);
    let syscalls = period.polls + period.reads + extra(server) - extra_before;
    let gib = bytes as f64 / (1u64 << 30) as f64;
    println!(
        "| {direction} | {name} | {copies} | {label} | {:.2} | {:.0} | {:.0} | {:.0} |",
        gib / secs,
        syscalls as f64 / gib,
        (cpu1 - cpu0).as_secs_f64() * 1e3 / gib,
        (sw1 - sw0) as f64 / gib,
    );
}

/// CPU time and context switches of the server's threads, including the
/// blocking-I/O pool that direct I/O reads on.
fn server_usage() -> (Duration, u64) {
    let (cpu, switches) = threads_usage(THREADS);
    let (pool_cpu, pool_switches) = threads_usage("wharf-blocking");
    (cpu + pool_cpu, switches + pool_switches)
}

/// The measured table: each method and size, both ways, for about a
/// second each.
fn table() {
    println!(
        "\n| direction | method | CPU copies | region | GiB/s | syscalls/GiB | server CPU ms/GiB | ctx switches/GiB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (len, label) in SIZES {
        let (_, file) = file_of(len);
        for method in METHODS {
            let Setup {
                server,
                mut client,
                mut buf,
                len,
            } = Setup::new(&file, len, method);
            let transfer_calls = |server: &Server| {
                server.event_loops()[0]
                    .transfer_stats()
                    .syscalls
                    .iter()
                    .sum()
            };
            row(
                ("send", method.name(), method.copies()),
                label,
                len,
                &server,
                transfer_calls,
                || fetch(&mut client, &mut buf, len),
            );
        }
        for (name, copies, splice) in RECEIVES {
            let (server, mut upload) = Uploader::start(len, splice);
            let receive_calls = |server: &Server| {
                let s = server.stats();
                s.receive_splices + s.receive_writes + s.writes
            };
            row(
                ("receive", name, copies),
                label,
                len,
                &server,
                receive_calls,
                || upload.send(),
            );
        }
    }
    println!(
        "\nsyscalls: epoll_wait and socket reads (or splices from the socket), plus, sending, the transfer calls \
         (sendfile, splice, write, pread, mmap) and, receiving, the splices from the pipe into the file, the pwrites \
         and the one-byte answers. Direct-I/O reads run on the blocking pool, whose CPU is included."
    );
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
    if !std::env::args().any(|a| a == "--list" || a == "--test") {
        table();
    }
}
