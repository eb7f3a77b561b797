//! File transfer strategies: a wharf server sends a file region to a
//! loopback reader with `sendfile`, `splice`, `mmap` + `write`,
//! `pread` + `write`, and `O_DIRECT` reads on the blocking pool, for
//! regions of 64 KiB, 1 MiB and 64 MiB.
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
    Context, FileRegion, Handler, OutboundMessage, Pipeline, RawMessages, Server, ServerBootstrap,
    TransferStrategy,
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
        self.client.write_all(b"g").expect("request");
        let mut left = self.len as usize;
        while left > 0 {
            let want = left.min(self.buf.len());
            let n = self.client.read(&mut self.buf[..want]).expect("read");
            assert!(n > 0, "server closed");
            left -= n;
        }
    }
}

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
    }
}

/// CPU time and context switches of the server's threads, including the
/// blocking-I/O pool that direct I/O reads on.
fn server_usage() -> (Duration, u64) {
    let (cpu, switches) = threads_usage(THREADS);
    let (pool_cpu, pool_switches) = threads_usage("wharf-blocking");
    (cpu + pool_cpu, switches + pool_switches)
}

/// The measured table: each method and size for about a second.
fn table() {
    println!(
        "\n| method | CPU copies | region | GiB/s | syscalls/GiB | server CPU ms/GiB | ctx switches/GiB |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (len, label) in SIZES {
        let (_, file) = file_of(len);
        for method in METHODS {
            let mut setup = Setup::new(&file, len, method);
            setup.fetch();
            let before = setup.server.event_loops()[0].transfer_stats();
            let loop_before = setup.server.stats();
            let (cpu0, sw0) = server_usage();
            let started = Instant::now();
            let mut bytes = 0u64;
            while started.elapsed() < Duration::from_secs(1) || bytes < 256 << 20 {
                setup.fetch();
                bytes += len;
            }
            let secs = started.elapsed().as_secs_f64();
            let (cpu1, sw1) = server_usage();
            let after = setup.server.event_loops()[0].transfer_stats();
            let loop_after = setup.server.stats().since(&loop_before);
            let syscalls: u64 = (0..4)
                .map(|i| after.syscalls[i] - before.syscalls[i])
                .sum::<u64>()
                + loop_after.polls
                + loop_after.reads;
            let gib = bytes as f64 / (1u64 << 30) as f64;
            println!(
                "| {} | {} | {label} | {:.2} | {:.0} | {:.0} | {:.0} |",
                method.name(),
                method.copies(),
                gib / secs,
                syscalls as f64 / gib,
                (cpu1 - cpu0).as_secs_f64() * 1e3 / gib,
                (sw1 - sw0) as f64 / gib,
            );
        }
    }
    println!(
        "\nsyscalls count transfer calls (sendfile, splice, write, pread, mmap) plus epoll_wait and request reads; \
         direct-I/O reads run on the blocking pool, whose CPU is included."
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
