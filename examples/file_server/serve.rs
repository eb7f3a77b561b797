//! Start-up and shutdown: the flags, the server they describe, and the
//! signals that stop it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use wharf::transport::sys::signal::{block_termination_signals, wait_for_termination};
use wharf::{ServerBootstrap, TransferStrategy};

use crate::handler::{Settings, bootstrap};
use crate::paths::Root;
use crate::reactor_args::ReactorArgs;

/// wharf static file server (HTTP/1.1: GET, HEAD, Range, conditional
/// requests, directory listings).
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    /// Directory to serve.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[command(flatten)]
    reactor: ReactorArgs,
    /// How file bytes reach the socket: auto, sendfile, splice, mmap or copy.
    #[arg(long, default_value = "auto")]
    transfer: TransferStrategy,
    /// Send files of at least this many bytes with O_DIRECT reads on a
    /// blocking-I/O pool, bypassing the page cache (0: off).
    #[arg(long, default_value_t = 0)]
    directio: u64,
    /// Print one access-log line per response.
    #[arg(long)]
    log: bool,
    /// Seconds a client may take to send a request head.
    #[arg(long, default_value_t = 10.0)]
    header_timeout: f64,
    /// Seconds an idle kept-alive connection stays open.
    #[arg(long, default_value_t = 60.0)]
    keepalive_timeout: f64,
    /// Connections served at once; more are answered 503 and closed.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
}

/// Runs the server the flags describe until Ctrl-C or `SIGTERM`.
pub fn main(args: Args) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("file_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn seconds(value: f64, what: &str) -> std::io::Result<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("--{what} must be a number of seconds"),
        )
    })
}

fn run(args: Args) -> std::io::Result<()> {
    block_termination_signals()?;
    let root = Root::open(&args.root).map_err(|e| {
        std::io::Error::new(e.kind(), format!("--root {}: {e}", args.root.display()))
    })?;
    let root_path = root.path().to_path_buf();
    let mode = args.reactor.mode()?;
    let trigger = args.reactor.trigger;
    let transfer = args.transfer;
    let settings = Arc::new(Settings {
        transfer,
        directio: args.directio,
        header_timeout: seconds(args.header_timeout, "header-timeout")?,
        keepalive_timeout: seconds(args.keepalive_timeout, "keepalive-timeout")?,
        max_connections: args.max_connections.max(1),
        log: args.log,
        ..Settings::new(root)
    });
    // Raise the descriptor limit toward what the connection limit needs.
    let _ = wharf::transport::sys::limits::raise_fd_limit(args.max_connections as u64 + 256);
    let base = ServerBootstrap::new().mode(mode).trigger(trigger);
    let mut server = bootstrap(base, &settings).bind(args.addr)?;
    println!(
        "serving {} at http://{}/ (mode={}, trigger={}, transfer={}, directio={})",
        root_path.display(),
        server.local_addr(),
        mode.name(),
        args.reactor.trigger_name(),
        transfer.name(),
        if args.directio == 0 {
            "off".to_string()
        } else {
            format!("{} bytes", args.directio)
        },
    );
    wait_for_termination()?;
    server.shutdown_gracefully(Duration::from_millis(500), Duration::from_secs(10))
}
