//! The servers the comparisons run: wharf in each reactor mode × trigger,
//! a tokio echo server as the Rust peer, and a hand-written `mio` loop as
//! the floor, all on loopback in-process, with a workload: plain echo, or
//! echo after some CPU work per byte.

#![allow(dead_code)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wharf::buf::{Allocator, ByteBuf};
use wharf::{Context, Handler, Pipeline, ReactorMode, Server, ServerBootstrap, Trigger};

use crate::mio_floor::MioFloor;

/// What the server does with each read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Send it back.
    Echo,
    /// Hash it `rounds` times (FNV-1a over every byte), then send it back:
    /// CPU work in the handler, where a worker pool can help.
    Hash { rounds: u32 },
}

/// FNV-1a over `data`, `rounds` times.
pub fn work(data: &[u8], rounds: u32) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for _ in 0..rounds {
        for &b in data {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    black_box(h)
}

/// A server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Wharf {
        mode: ReactorMode,
        trigger: Trigger,
        pooled: bool,
    },
    /// tokio's multi-threaded runtime with this many worker threads.
    Tokio { threads: usize },
    /// The hand-written single-thread `mio` loop (the floor).
    Floor,
}

impl Target {
    /// Every wharf mode × trigger with two I/O threads (or workers), and
    /// tokio with two worker threads.
    pub fn all() -> Vec<Target> {
        let mut all = Vec::new();
        for mode in modes() {
            for trigger in [Trigger::Edge, Trigger::Level] {
                all.push(Target::Wharf {
                    mode,
                    trigger,
                    pooled: true,
                });
            }
        }
        all.push(Target::Tokio { threads: 2 });
        all.push(Target::Floor);
        all
    }

    /// A short name: `single-edge`, `multi-level`, `tokio`, …
    pub fn name(&self) -> String {
        match self {
            Target::Wharf {
                mode,
                trigger,
                pooled,
            } => format!(
                "{}-{}{}",
                mode_label(*mode),
                if *trigger == Trigger::Edge {
                    "edge"
                } else {
                    "level"
                },
                if *pooled { "" } else { "-unpooled" }
            ),
            Target::Tokio { .. } => "tokio".to_string(),
            Target::Floor => "mio-floor".to_string(),
        }
    }

    /// Starts the server on a free loopback port.
    pub fn start(&self, workload: Workload) -> Running {
        match *self {
            Target::Wharf {
                mode,
                trigger,
                pooled,
            } => {
                let allocator = if pooled {
                    Allocator::pooled()
                } else {
                    Allocator::unpooled()
                };
                let server = ServerBootstrap::new()
                    .mode(mode)
                    .trigger(trigger)
                    .allocator(allocator)
                    .handler_timing(handler_timing())
                    .thread_name(THREADS)
                    .child_handler(move || Pipeline::bytes(Worker { workload }))
                    .bind("127.0.0.1:0")
                    .expect("bind the wharf server");
                Running::Wharf(server)
            }
            Target::Tokio { threads } => Running::Tokio(TokioEcho::start(threads, workload)),
            Target::Floor => Running::Floor(MioFloor::start(workload)),
        }
    }
}

/// How many pipeline callbacks the wharf servers time for their
/// handler-time histogram: one in `WHARF_HANDLER_TIMING` (the metrics'
/// cost measurement sets 1 for all, 0 for none), else the default.
fn handler_timing() -> u32 {
    std::env::var("WHARF_HANDLER_TIMING")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(wharf::transport::metrics::HANDLER_TIMING_SAMPLE)
}

/// A mode with its thread counts: `single`, `pool2`, `multi2`, `multi1+2w`,
/// `reuseport2`.
pub fn mode_label(mode: ReactorMode) -> String {
    match mode {
        ReactorMode::Single => "single".to_string(),
        ReactorMode::WorkerPool { workers } => format!("pool{workers}"),
        ReactorMode::MultiReactor {
            sub_reactors,
            workers: 0,
        } => format!("multi{sub_reactors}"),
        ReactorMode::MultiReactor {
            sub_reactors,
            workers,
        } => format!("multi{sub_reactors}+{workers}w"),
        ReactorMode::Reuseport { reactors } => format!("reuseport{reactors}"),
    }
}

/// The reactor modes compared, each with two threads doing the work.
pub fn modes() -> [ReactorMode; 4] {
    [
        ReactorMode::Single,
        ReactorMode::WorkerPool { workers: 2 },
        ReactorMode::MultiReactor {
            sub_reactors: 2,
            workers: 0,
        },
        ReactorMode::Reuseport { reactors: 2 },
    ]
}

/// Thread-name prefix of every server thread (to measure their CPU time).
pub const THREADS: &str = "srv";

/// The wharf handler: the workload, then echo.
struct Worker {
    workload: Workload,
}

impl Handler for Worker {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
        if let Workload::Hash { rounds } = self.workload {
            work(&msg, rounds);
        }
        ctx.write(msg);
    }

    fn on_read_complete(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        ctx.flush();
    }
}

/// A running server.
pub enum Running {
    Wharf(Server),
    Tokio(TokioEcho),
    Floor(MioFloor),
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        match self {
            Running::Wharf(s) => s.local_addr(),
            Running::Tokio(t) => t.addr,
            Running::Floor(f) => f.addr,
        }
    }

    /// wharf's loop counters, if it is wharf.
    pub fn stats(&self) -> Option<wharf::LoopStats> {
        match self {
            Running::Wharf(s) => Some(s.stats()),
            Running::Tokio(_) | Running::Floor(_) => None,
        }
    }

    /// Stops the server.
    pub fn stop(self) {
        match self {
            Running::Wharf(mut s) => {
                let _ = s.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
            }
            Running::Tokio(t) => drop(t),
            Running::Floor(f) => drop(f),
        }
    }
}

/// The tokio echo server: the canonical read / write_all loop per
/// connection on a multi-threaded runtime.
pub struct TokioEcho {
    pub addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TokioEcho {
    fn start(threads: usize, workload: Workload) -> TokioEcho {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(THREADS)
            .enable_io()
            .build()
            .expect("tokio runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the tokio server");
        let addr = listener.local_addr().expect("address");
        runtime.spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let _ = socket.set_nodelay(true);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        let n = match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if let Workload::Hash { rounds } = workload {
                            work(&buf[..n], rounds);
                        }
                        if socket.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        TokioEcho {
            addr,
            runtime: Some(runtime),
        }
    }
}

impl Drop for TokioEcho {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// CPU time (user + system) of the server threads.
pub fn server_cpu_time() -> Duration {
    wharf::transport::sys::limits::threads_usage(THREADS).0
}
