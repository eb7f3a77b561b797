//! A static HTTP/1.1 file server on wharf.
//!
//! ```text
//! cargo run --release --example file_server                # serves . at http://127.0.0.1:8080
//! cargo run --release --example file_server -- --root /srv/www --mode multi --transfer splice
//! ```
//!
//! GET and HEAD, keep-alive and pipelining, `Range` (206/416),
//! `If-None-Match`/`If-Modified-Since` (304), `index.html` or an HTML
//! listing for directories, MIME types from the extension, safe paths
//! (nothing outside `--root` is ever served), header and keep-alive
//! timeouts, a connection limit. Files go out with the chosen transfer
//! strategy (sendfile by default); `--directio` sends large files with
//! `O_DIRECT` reads off the event loop. Ctrl-C or SIGTERM shuts it down
//! gracefully.

mod access_log;
mod conditional;
mod handler;
mod listing;
mod paths;
mod range;
#[path = "../common/reactor_args.rs"]
mod reactor_args;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use clap::Parser;
use handler::{FileServer, Settings};
use paths::Root;
use reactor_args::ReactorArgs;
use wharf::codec::HttpServerCodec;
use wharf::transport::sys::signal::{block_termination_signals, wait_for_termination};
use wharf::{Pipeline, ServerBootstrap, TransferStrategy};

/// wharf static file server (HTTP/1.1: GET, HEAD, Range, conditional
/// requests, directory listings).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
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

fn main() -> ExitCode {
    wharf::logging::init();
    let args = Args::parse();
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
        root,
        transfer,
        directio: args.directio,
        header_timeout: seconds(args.header_timeout, "header-timeout")?,
        keepalive_timeout: seconds(args.keepalive_timeout, "keepalive-timeout")?,
        max_connections: args.max_connections.max(1),
        log: args.log,
        open: AtomicUsize::new(0),
    });
    // Raise the descriptor limit toward what the connection limit needs.
    let _ = wharf::transport::sys::limits::raise_fd_limit(args.max_connections as u64 + 256);
    let shared = Arc::clone(&settings);
    let mut server = ServerBootstrap::new()
        .mode(mode)
        .trigger(trigger)
        .child_handler(move || {
            Pipeline::new(HttpServerCodec::new(), FileServer::new(Arc::clone(&shared)))
        })
        .bind(args.addr)?;
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
