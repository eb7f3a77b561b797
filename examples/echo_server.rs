//! An echo server: every byte a client sends comes back. No framing, so
//! `nc 127.0.0.1 7007` works.
//!
//! ```text
//! cargo run --release --example echo_server -- --mode multi --trigger level
//! ```
//!
//! It prints one line saying where it listens and how it is wired, then
//! stays quiet; Ctrl-C or SIGTERM shuts it down gracefully.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use wharf::buf::Allocator;
use wharf::transport::handlers::Echo;
use wharf::transport::sys::signal::{block_termination_signals, wait_for_termination};
use wharf::{Pipeline, ReactorMode, ServerBootstrap, Trigger};

/// wharf echo server: sends back every byte it receives (raw bytes, no
/// framing; try `nc 127.0.0.1 7007`).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7007")]
    addr: SocketAddr,
    /// Reactor mode: one loop; one loop plus workers; main loop plus
    /// sub-reactors (plus workers); independent SO_REUSEPORT loops.
    #[arg(long, default_value = "single", value_parser = ["single", "pool", "multi", "reuseport"])]
    mode: String,
    /// Edge- or level-triggered epoll (edge or level).
    #[arg(long, default_value = "edge")]
    trigger: Trigger,
    /// Sub-reactors (multi) or reactors (reuseport) [default: CPU count].
    #[arg(long)]
    reactors: Option<usize>,
    /// Worker threads running the handler [default: CPU count for pool, 0 for multi].
    #[arg(long)]
    workers: Option<usize>,
    /// Use heap buffers instead of the pooled direct-buffer allocator.
    #[arg(long)]
    unpooled: bool,
}

fn main() -> ExitCode {
    wharf::logging::init();
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> std::io::Result<()> {
    // Before any thread starts, so that every thread inherits the mask and
    // the signals wait for `wait_for_termination` below.
    block_termination_signals()?;
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let reactors = args.reactors.unwrap_or(cpus);
    let workers = args
        .workers
        .unwrap_or(if args.mode == "pool" { cpus } else { 0 });
    let mode = ReactorMode::from_name(&args.mode, reactors, workers)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let trigger = args.trigger;
    let allocator = if args.unpooled {
        Allocator::unpooled()
    } else {
        Allocator::pooled()
    };
    let mut server = ServerBootstrap::new()
        .mode(mode)
        .trigger(trigger)
        .allocator(allocator)
        .child_handler(|| Pipeline::bytes(Echo))
        .bind(args.addr)?;
    println!(
        "listening on {} (mode={}, trigger={}, reactors={}, workers={})",
        server.local_addr(),
        mode.name(),
        if trigger == Trigger::Edge {
            "edge"
        } else {
            "level"
        },
        mode.io_loops(),
        mode.workers(),
    );
    wait_for_termination()?;
    server.shutdown_gracefully(Duration::from_millis(500), Duration::from_secs(5))
}
