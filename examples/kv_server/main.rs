//! An in-memory key-value server that speaks the Redis protocol, on
//! wharf: `redis-cli`, client libraries and `redis-benchmark` talk to it
//! as they talk to Redis.
//!
//! ```text
//! cargo run --release --example kv_server                  # 127.0.0.1:6379
//! cargo run --release --example kv_server -- --addr 127.0.0.1:7379 --mode multi
//! redis-cli -p 7379 set greeting hello
//! ```
//!
//! PING, ECHO, GET, SET (EX, PX, EXAT, PXAT, NX, XX, KEEPTTL, GET), DEL,
//! EXISTS, INCR, DECR, INCRBY, DECRBY, MGET, MSET, EXPIRE (NX, XX, GT,
//! LT), TTL, DBSIZE, FLUSHALL, QUIT and COMMAND, with Redis's replies and
//! Redis's errors. The store is sharded and shared by every event loop;
//! keys expire lazily and through a sweep every 100 ms. A framework
//! example, not a Redis: strings only, no persistence, no replication, one
//! database. Ctrl-C or SIGTERM shuts it down gracefully.

mod commands;
#[path = "../common/metrics_args.rs"]
mod metrics_args;
#[path = "../common/reactor_args.rs"]
mod reactor_args;
mod server;
mod store;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use metrics_args::MetricsArgs;
use reactor_args::ReactorArgs;
use store::Store;
use wharf::signal::{block_termination_signals, wait_for_termination};

/// wharf key-value server: a Redis-protocol (RESP2) in-memory store.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6379")]
    addr: SocketAddr,
    #[command(flatten)]
    reactor: ReactorArgs,
    /// Shards of the store (each one lock).
    #[arg(long, default_value_t = 64)]
    shards: usize,
    #[command(flatten)]
    metrics: MetricsArgs,
}

fn main() -> ExitCode {
    wharf::logging::init();
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> std::io::Result<()> {
    // Before any thread starts, so that every thread inherits the mask.
    block_termination_signals()?;
    let mode = args.reactor.mode();
    let store = Arc::new(Store::new(args.shards));
    let bootstrap = args.reactor.bootstrap();
    let mut server = server::bind(bootstrap, args.addr, store)?;
    println!(
        "listening on {} (mode={mode}, trigger={}, shards={})",
        server.local_addr(),
        args.reactor.trigger_name(),
        args.shards.max(1),
    );
    let exporter = args.metrics.serve(&server)?;
    wait_for_termination()?;
    server.shutdown_gracefully(Duration::from_millis(500), Duration::from_secs(5))?;
    exporter.stop()
}
