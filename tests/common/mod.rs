//! Shared by the behaviour tests: every configuration a test runs in
//! (reactor mode × trigger × allocator), waits with deadlines, loopback
//! clients that do not go through wharf's own code, and payload patterns.

#![allow(dead_code)]

pub mod concurrent;
pub mod driver;
pub mod stream;
pub mod tls;
pub mod transport;
pub mod upstream;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{Duration, Instant};

use wharf::buf::Allocator;
use wharf::{Balance, ReactorMode, Server, ServerBootstrap, Trigger};

/// One configuration a behaviour test runs in.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub mode: ReactorMode,
    pub trigger: Trigger,
    pub pooled: bool,
}

/// The reactor modes every test covers (the multi-reactor with workers
/// also balances by least connections).
pub const MODES: [ReactorMode; 5] = [
    ReactorMode::Single,
    ReactorMode::WorkerPool { workers: 2 },
    ReactorMode::MultiReactor {
        sub_reactors: 2,
        workers: 0,
    },
    ReactorMode::MultiReactor {
        sub_reactors: 2,
        workers: 2,
    },
    ReactorMode::Reuseport { reactors: 2 },
];

impl Config {
    /// Every mode × trigger × allocator: 20 configurations.
    pub fn all() -> Vec<Config> {
        let mut all = Vec::new();
        for mode in MODES {
            for trigger in [Trigger::Edge, Trigger::Level] {
                for pooled in [true, false] {
                    all.push(Config {
                        mode,
                        trigger,
                        pooled,
                    });
                }
            }
        }
        all
    }

    pub fn allocator(&self) -> Allocator {
        if self.pooled {
            Allocator::pooled()
        } else {
            Allocator::unpooled()
        }
    }

    /// A server bootstrap in this configuration.
    pub fn server(&self) -> ServerBootstrap {
        let balance = match self.mode {
            ReactorMode::MultiReactor { workers, .. } if workers > 0 => Balance::LeastConnections,
            _ => Balance::RoundRobin,
        };
        ServerBootstrap::new()
            .mode(self.mode)
            .balance(balance)
            .trigger(self.trigger)
            .allocator(self.allocator())
            .thread_name("wharf-test")
    }
}

impl std::fmt::Display for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{:?}/{}",
            match self.mode {
                ReactorMode::MultiReactor { workers, .. } if workers > 0 => "multi+workers",
                mode => mode.name(),
            },
            self.trigger,
            if self.pooled { "pooled" } else { "unpooled" }
        )
    }
}

/// Runs `test` in each configuration, saying which one failed.
pub fn for_each(configs: Vec<Config>, test: impl Fn(Config)) {
    for config in configs {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| test(config))) {
            eprintln!("failed in configuration {config}");
            resume_unwind(panic);
        }
    }
}

/// Runs `test` in each configuration at once, one thread each (for tests
/// that mostly wait), saying which one failed.
pub fn for_each_parallel(configs: Vec<Config>, test: impl Fn(Config) + Sync) {
    let test = &test;
    std::thread::scope(|s| {
        let runs: Vec<_> = configs
            .into_iter()
            .map(|config| (config, s.spawn(move || test(config))))
            .collect();
        let mut failed = None;
        for (config, run) in runs {
            if let Err(panic) = run.join() {
                eprintln!("failed in configuration {config}");
                failed.get_or_insert(panic);
            }
        }
        if let Some(panic) = failed {
            resume_unwind(panic);
        }
    });
}

/// Polls `condition` until it holds; panics after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_micros(100);
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// A blocking loopback client with a read and write timeout.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the test server");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .expect("write timeout");
    stream
}

/// Reads until `n` bytes arrived (panics on timeout or early end).
pub fn read_exact_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream
        .read_exact(&mut buf)
        .expect("read the expected bytes");
    buf
}

/// Reads until end of stream.
pub fn read_to_end(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf)?;
    Ok(buf)
}

/// Writes everything.
pub fn write_all(stream: &mut TcpStream, data: &[u8]) {
    stream.write_all(data).expect("write to the test server");
}

/// `len` bytes of a pattern that differs per `seed` and never repeats with
/// a short period, so a lost, duplicated or reordered chunk shows.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// SplitMix64: small, seedable, good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

/// Threads of this process whose name starts with `prefix`.
pub fn threads_named(prefix: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// What a test handler saw, in order, shared with the test thread.
#[derive(Debug, Clone, Default)]
pub struct EventLog(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl EventLog {
    pub fn new() -> EventLog {
        EventLog::default()
    }

    /// Records one event.
    pub fn push(&self, event: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.into());
    }

    /// Everything recorded so far.
    pub fn snapshot(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Events that start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.snapshot()
            .iter()
            .filter(|e| e.starts_with(prefix))
            .count()
    }

    /// Waits until an event that starts with `prefix` was recorded.
    pub fn wait_for(&self, limit: Duration, prefix: &str) {
        let deadline = Instant::now() + limit;
        while self.count(prefix) == 0 {
            assert!(
                Instant::now() < deadline,
                "timed out after {limit:?} waiting for an event {prefix:?}; log: {:?}",
                self.snapshot()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Reads until the stream ends: the bytes read, and `Ok` for an orderly
/// end of stream or the error that ended it (a reset, a timeout).
pub fn read_until_closed(stream: &mut impl Read) -> (Vec<u8>, io::Result<()>) {
    let mut data = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (data, Ok(())),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (data, Err(e)),
        }
    }
}

/// A buffer from `allocator` holding `data`.
pub fn buf_of(allocator: Allocator, data: &[u8]) -> wharf::buf::ByteBuf {
    let mut buf = allocator.buffer(data.len().max(1));
    buf.extend_from_slice(data);
    buf
}

/// Waits until the server has no open connection. Tests call it before
/// dropping a server whose clients have gone, so that the drop does not
/// depend on how fast the server noticed.
pub fn wait_for_no_connections(server: &Server) {
    wait_until(
        Duration::from_secs(5),
        "the server to close its connections",
        || server.connections() == 0,
    );
}

/// CPU time (user + system) of this process's threads named `prefix…`.
pub fn threads_cpu_time(prefix: &str) -> Duration {
    wharf::transport::sys::limits::threads_usage(prefix).0
}
