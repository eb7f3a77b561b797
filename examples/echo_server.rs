//! An echo server: every byte a client sends comes back. No framing, so
//! `nc 127.0.0.1 7007` works.
//!
//! ```text
//! cargo run --release --example echo_server -- --mode multi --trigger level
//! cargo run --release --example echo_server -- --tls-cert cert.pem --tls-key key.pem
//! ```
//!
//! It prints one line saying where it listens and how it is wired, then
//! stays quiet; Ctrl-C or SIGTERM shuts it down gracefully. `--unix PATH`
//! listens on a Unix-domain socket instead (`nc -U PATH`), in any mode but
//! reuseport.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use wharf::Pipeline;
use wharf::buf::Allocator;
use wharf::signal::{block_termination_signals, wait_for_termination};
use wharf::transport::handlers::Echo;

#[path = "common/metrics_args.rs"]
mod metrics_args;
#[path = "common/reactor_args.rs"]
mod reactor_args;
#[path = "common/tls_args.rs"]
mod tls_args;
use metrics_args::MetricsArgs;
use reactor_args::ReactorArgs;
use tls_args::TlsArgs;

/// wharf echo server: sends back every byte it receives (raw bytes, no
/// framing; try `nc 127.0.0.1 7007`).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7007")]
    addr: SocketAddr,
    /// Listen on a Unix-domain stream socket at this path instead of
    /// `--addr` (a stale socket file is replaced; the file is removed at
    /// exit).
    #[arg(long)]
    unix: Option<PathBuf>,
    #[command(flatten)]
    reactor: ReactorArgs,
    #[command(flatten)]
    tls: TlsArgs,
    /// Use heap buffers instead of the pooled direct-buffer allocator.
    #[arg(long)]
    unpooled: bool,
    #[command(flatten)]
    metrics: MetricsArgs,
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
    let mode = args.reactor.mode();
    let allocator = if args.unpooled {
        Allocator::unpooled()
    } else {
        Allocator::pooled()
    };
    let tls = args.tls.server(&[])?;
    let mut bootstrap = args.reactor.bootstrap().allocator(allocator);
    if let Some(tls) = &tls {
        bootstrap = bootstrap.tls(tls.clone());
    }
    let bootstrap = bootstrap.child_handler(|| Pipeline::bytes(Echo));
    let mut server = match &args.unix {
        Some(path) => bootstrap.bind_unix(path)?,
        None => bootstrap.bind(args.addr)?,
    };
    let place = match server.unix_path() {
        Some(path) => format!("unix:{}", path.display()),
        None => server.local_addr().to_string(),
    };
    println!(
        "listening on {place}{} (mode={mode}, trigger={})",
        if tls.is_some() { " with TLS" } else { "" },
        args.reactor.trigger_name(),
    );
    let exporter = args.metrics.serve(&server)?;
    wait_for_termination()?;
    server.shutdown_gracefully(Duration::from_millis(500), Duration::from_secs(5))?;
    exporter.stop()
}
