//! File transfer strategies, both ways. Sending: a wharf server sends a
//! file region to a loopback reader with `sendfile`, `splice`, `mmap` +
//! `write`, `pread` + `write`, and `O_DIRECT` reads on the blocking pool;
//! next to them the loopback `sendfile` limit, a plain thread that
//! answers with blocking `sendfile` calls and no framework (issue 12 §6).
//! Receiving: a loopback writer uploads to a wharf server that stores the
//! bytes in a file with `Context::receive_file`, spliced (socket → pipe →
//! file) or copied (`read` + `pwrite`). Regions of 64 KiB, 1 MiB and
//! 64 MiB.
//!
//! Criterion measures throughput; then a table is printed from a separate
//! measured pass: throughput and its ratio to the limit's in the same
//! pass, system calls, server and client CPU time (user + sys) and context
//! switches per GiB, next to the copies each method makes. A last pass
//! sends 64 MiB with the file's pages dropped from the page cache
//! (`posix_fadvise(DONTNEED)`) before each fetch.
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
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
use wharf::buf::ByteBuf;
use wharf::transport::sys::limits::threads_usage;
use wharf::{
    Codec, CodecError, Context, Encoded, FileReceive, FileRegion, Handler, OutboundMessage,
    Pipeline, RawMessages, Server, ServerBootstrap, TransferStrategy, UserEvent,
};

#[path = "support/sendfile_limit.rs"]
mod sendfile_limit;
use sendfile_limit::SendfileLimit;

const SIZES: [(u64, &str); 3] = [(64 << 10, "64KiB"), (1 << 20, "1MiB"), (64 << 20, "64MiB")];
const THREADS: &str = "ftsrv";
/// The table's thread, the client of every row.
const CLIENT: &str = "ftclient";

/// How the server sends: a strategy, direct I/O, or not wharf at all.
#[derive(Debug, Clone, Copy)]
enum Method {
    /// The loopback `sendfile` limit.
    Limit,
    Strategy(TransferStrategy),
    Direct,
}

/// The limit first: the table divides by its rate.
const METHODS: [Method; 6] = [
    Method::Limit,
    Method::Strategy(TransferStrategy::Sendfile),
    Method::Strategy(TransferStrategy::Splice),
    Method::Strategy(TransferStrategy::MmapWrite),
    Method::Strategy(TransferStrategy::ReadWrite),
    Method::Direct,
];

impl Method {
    fn name(&self) -> &'static str {
        match self {
            Method::Limit => "sendfile-limit",
            Method::Strategy(s) => s.name(),
            Method::Direct => "directio",
        }
    }

    /// Copies through the CPU per byte, as documented for each method.
    fn copies(&self) -> &'static str {
        match self {
            Method::Limit | Method::Strategy(TransferStrategy::Sendfile) => "0-1",
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
                Method::Limit => unreachable!("the limit sends without wharf"),
            };
            ctx.write(region.into());
        }
        ctx.flush();
    }
}

/// What sends the regions.
enum Sending {
    Wharf(Server),
    Limit(SendfileLimit),
}

impl Sending {
    /// The sending side's counters so far.
    fn usage(&self) -> Usage {
        match self {
            Sending::Wharf(server) => {
                let transfers = server
                    .event_loops()
                    .iter()
                    .map(|l| l.transfer_stats().syscalls.iter().sum::<u64>())
                    .sum();
                Usage::of(server, transfers)
            }
            Sending::Limit(limit) => {
                let (cpu, switches) = threads_usage(sendfile_limit::THREAD);
                Usage {
                    cpu,
                    switches,
                    syscalls: limit.syscalls(),
                }
            }
        }
    }
}

struct Setup {
    sending: Sending,
    client: TcpStream,
    buf: Vec<u8>,
    len: u64,
}

impl Setup {
    fn new(file: &Arc<File>, len: u64, method: Method) -> Setup {
        let (sending, client) = match method {
            Method::Limit => {
                let (limit, client) = SendfileLimit::connect(Arc::clone(file), len);
                (Sending::Limit(limit), client)
            }
            _ => {
                let server = serve(file, len, method);
                let client = TcpStream::connect(server.local_addr()).expect("connect");
                client.set_nodelay(true).expect("nodelay");
                (Sending::Wharf(server), client)
            }
        };
        Setup {
            sending,
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

/// A wharf server that sends `file`'s first `len` bytes with `method`.
fn serve(file: &Arc<File>, len: u64, method: Method) -> Server {
    let f = Arc::clone(file);
    ServerBootstrap::new()
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
        .expect("bind")
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

/// Cumulative CPU time, context switches and system calls of one side.
#[derive(Debug, Clone, Copy)]
struct Usage {
    cpu: Duration,
    switches: u64,
    syscalls: u64,
}

impl Usage {
    /// A wharf server's: its loops' `epoll_wait`s and socket reads plus
    /// `extra` (cumulative), and the CPU of its threads including the
    /// blocking-I/O pool that direct I/O reads on.
    fn of(server: &Server, extra: u64) -> Usage {
        let stats = server.stats();
        let (cpu, switches) = threads_usage(THREADS);
        let (pool_cpu, pool_switches) = threads_usage("wharf-blocking");
        Usage {
            cpu: cpu + pool_cpu,
            switches: switches + pool_switches,
            syscalls: stats.polls + stats.reads + extra,
        }
    }
}

/// One row's figures, per GiB moved.
struct Figures {
    gib_per_sec: f64,
    syscalls: f64,
    server_ms: f64,
    client_ms: f64,
    switches: f64,
}

/// Repeats `run` for about a second (and at least 256 MiB) and measures
/// it. `cold` runs before each `run`, outside the clock and the client's
/// CPU.
fn measure(
    len: u64,
    usage: impl Fn() -> Usage,
    mut cold: Option<&mut dyn FnMut()>,
    mut run: impl FnMut(),
) -> Figures {
    run();
    let before = usage();
    let (client_before, _) = threads_usage(CLIENT);
    let mut cold_cpu = Duration::ZERO;
    let mut elapsed = Duration::ZERO;
    let mut bytes = 0u64;
    while elapsed < Duration::from_secs(1) || bytes < 256 << 20 {
        if let Some(cold) = cold.as_mut() {
            let (cpu0, _) = threads_usage(CLIENT);
            cold();
            cold_cpu += threads_usage(CLIENT).0 - cpu0;
        }
        let started = Instant::now();
        run();
        elapsed += started.elapsed();
        bytes += len;
    }
    let after = usage();
    let (client_after, _) = threads_usage(CLIENT);
    let gib = bytes as f64 / (1u64 << 30) as f64;
    let client = client_after.saturating_sub(client_before + cold_cpu);
    Figures {
        gib_per_sec: gib / elapsed.as_secs_f64(),
        syscalls: (after.syscalls - before.syscalls) as f64 / gib,
        server_ms: (after.cpu - before.cpu).as_secs_f64() * 1e3 / gib,
        client_ms: client.as_secs_f64() * 1e3 / gib,
        switches: (after.switches - before.switches) as f64 / gib,
    }
}

/// Prints a row; `limit` is the limit's rate for the size, if the row is
/// compared with it.
fn print_row(
    (direction, name, copies): (&str, &str, &str),
    label: &str,
    f: &Figures,
    limit: Option<f64>,
) {
    let vs = limit.map_or("—".to_string(), |l| format!("{:.2}", f.gib_per_sec / l));
    println!(
        "| {direction} | {name} | {copies} | {label} | {:.2} | {vs} | {:.0} | {:.0} | {:.0} | {:.0} |",
        f.gib_per_sec, f.syscalls, f.server_ms, f.client_ms, f.switches,
    );
}

fn print_header() {
    println!(
        "\n| direction | method | CPU copies | region | GiB/s | vs limit | syscalls/GiB | server CPU ms/GiB | client CPU ms/GiB | ctx switches/GiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
}

/// The send rows of one size; `cold` drops the file from the page cache
/// before each fetch. The limit runs before the first method and again
/// after each, so that a method's ratio is to the limit's runs on either
/// side of it (this machine drifts within a pass); its own row is the
/// median of those runs.
fn send_rows(file: &Arc<File>, len: u64, label: &str, cold: bool) {
    let run = |method: Method| {
        let mut setup = Setup::new(file, len, method);
        let mut drop_pages = || {
            posix_fadvise(
                file.as_ref(),
                0,
                len as i64,
                PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            )
            .expect("fadvise");
        };
        let cold: Option<&mut dyn FnMut()> = if cold { Some(&mut drop_pages) } else { None };
        let sending = &setup.sending;
        let usage = || sending.usage();
        let (client, buf) = (&mut setup.client, &mut setup.buf);
        measure(len, usage, cold, || fetch(client, buf, len))
    };
    let mut limits = vec![run(Method::Limit)];
    let mut rows = Vec::new();
    for method in METHODS.into_iter().filter(|m| !matches!(m, Method::Limit)) {
        let figures = run(method);
        limits.push(run(Method::Limit));
        let around = limits[limits.len() - 2..]
            .iter()
            .map(|l| l.gib_per_sec)
            .sum::<f64>()
            / 2.0;
        rows.push((method, figures, around));
    }
    limits.sort_by(|a, b| a.gib_per_sec.total_cmp(&b.gib_per_sec));
    let limit = &limits[limits.len() / 2];
    let row = |method: Method| ("send", method.name(), method.copies());
    print_row(row(Method::Limit), label, limit, Some(limit.gib_per_sec));
    for (method, figures, around) in rows {
        print_row(row(method), label, &figures, Some(around));
    }
}

/// The measured table: each method and size, both ways, for about a
/// second each; then 64 MiB sent from a cold page cache.
fn table() {
    print_header();
    for (len, label) in SIZES {
        let (_, file) = file_of(len);
        send_rows(&file, len, label, false);
        for (name, copies, splice) in RECEIVES {
            let (server, mut upload) = Uploader::start(len, splice);
            let usage = || {
                let s = server.stats();
                Usage::of(&server, s.receive_splices + s.receive_writes + s.writes)
            };
            let figures = measure(len, usage, None, || upload.send());
            print_row(("receive", name, copies), label, &figures, None);
        }
    }
    println!(
        "\nsyscalls: epoll_wait and socket reads (or splices from the socket), plus, sending, the transfer calls \
         (sendfile, splice, write, pread, mmap) and, receiving, the splices from the pipe into the file, the pwrites \
         and the one-byte answers; the limit's are its request reads and sendfiles. Direct-I/O reads run on the \
         blocking pool, whose CPU is included. vs limit: the rate over the mean of the sendfile limit's runs just before \
         and after it (the limit's row: the median of its runs). \
         client: the reader of a send, the writer of a receive."
    );
    let (len, label) = SIZES[2];
    println!(
        "\nCold page cache: posix_fadvise(DONTNEED) on the file before each fetch (outside the clock)."
    );
    print_header();
    let (_, file) = file_of(len);
    send_rows(&file, len, label, true);
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
    if !std::env::args().any(|a| a == "--list" || a == "--test") {
        thread::Builder::new()
            .name(CLIENT.into())
            .spawn(table)
            .expect("spawn")
            .join()
            .expect("table");
    }
}
