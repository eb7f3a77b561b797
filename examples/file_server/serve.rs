//! Start-up and shutdown: the flags, the server they describe, and the
//! signals that stop it.
//!
//! The first Ctrl-C or `SIGTERM` starts a graceful shutdown: the listeners
//! close, idle connections close, responses in progress may finish until
//! `--shutdown-timeout`, and what is left then is cut. A second signal
//! exits at once (128 + its number, as a shell reports a process a signal
//! killed), and the kernel closes every socket. A shutdown that had to cut
//! responses exits 1 and says how many (issue 9, point 7). Guarded by
//! tests/file_server_process/signals.rs.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use wharf::signal::{block_termination_signals, wait_for_termination};
use wharf::{ReactorMode, TransferStrategy};

use crate::budget::Budget;
use crate::metrics_args::MetricsArgs;
use crate::opener::{OpenPool, opens_may_block};
use crate::paths::Root;
use crate::reactor_args::ReactorArgs;
use crate::settings::{DEFAULT_OPEN_FILE_CACHE, Settings, bootstrap};
use crate::tls_args::TlsArgs;

/// wharf static file server (HTTP/1.1: GET, HEAD, Range, conditional
/// requests, directory listings; PUT uploads with --upload).
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
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
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
    /// List and serve dotfiles (.git, .env, ...); by default they are not
    /// listed and are answered 404.
    #[arg(long)]
    show_hidden: bool,
    /// Store `PUT` request bodies under the root (201 new, 204 replaced),
    /// received straight into the file; without it PUT is answered 405.
    #[arg(long)]
    upload: bool,
    /// The largest upload accepted, in bytes; larger ones are answered 413
    /// before any byte is written.
    #[arg(long, default_value_t = 1 << 30)]
    max_upload: u64,
    /// Seconds a client may take to send a request head (and an upload may
    /// go without any of its body arriving).
    #[arg(long, default_value_t = 10.0)]
    header_timeout: f64,
    /// Seconds an idle kept-alive connection stays open.
    #[arg(long, default_value_t = 60.0)]
    keepalive_timeout: f64,
    /// Seconds a response may go without the client taking any of it
    /// before the connection is reset (kept alive or not).
    #[arg(long, default_value_t = 10.0)]
    close_timeout: f64,
    /// Connections served at once; more are answered 503 and closed. Capped
    /// to what the descriptor limit allows (start-up says so).
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Seconds a graceful shutdown (Ctrl-C or SIGTERM) waits for responses
    /// in progress before it cuts them.
    #[arg(long, default_value_t = 10.0)]
    shutdown_timeout: f64,
    /// Where files are opened: on a pool of threads of their own (on), on
    /// the event loops (off), or on the pool when the root is on a network
    /// or FUSE file system or has one mounted beneath it (auto).
    #[arg(long, default_value = "auto", value_parser = ["auto", "on", "off"])]
    open_pool: String,
    /// Files each thread that answers requests keeps open, with their
    /// response heads encoded, checked with one stat per request (0: off).
    /// Capped to what the descriptor limit allows (start-up says so).
    #[arg(long, default_value_t = DEFAULT_OPEN_FILE_CACHE)]
    open_file_cache: usize,
}

/// Runs the server the flags describe until Ctrl-C or `SIGTERM`.
pub fn main(args: Args) -> ExitCode {
    match run(args) {
        Ok(Stopped { cut: 0, .. }) => ExitCode::SUCCESS,
        Ok(Stopped { cut, timeout }) => {
            eprintln!(
                "file_server: the shutdown timeout ({timeout:?}) cut {cut} {} still in progress",
                if cut == 1 { "response" } else { "responses" }
            );
            ExitCode::FAILURE
        }
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

/// The open pool `--open-pool` asks for, and a line that says where files
/// are opened and why.
fn open_pool(flag: &str, root: &Path) -> std::io::Result<(Option<OpenPool>, String, usize)> {
    let why = match flag {
        "on" => Some("--open-pool on".to_string()),
        "off" => None,
        _ => opens_may_block(root),
    };
    let Some(why) = why else {
        return Ok((None, "files are opened on the event loops".to_string(), 0));
    };
    let threads = 2 * std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = OpenPool::start(threads)?;
    let line = format!("files are opened on a pool of {threads} threads ({why})");
    Ok((Some(pool), line, threads))
}

/// How a graceful shutdown ended.
struct Stopped {
    /// Connections its deadline cut.
    cut: u64,
    /// How long it waited.
    timeout: Duration,
}

/// What a shell reports for a process killed by `signal`: 128 + its number.
fn killed_by(signal: &str) -> i32 {
    128 + if signal == "SIGINT" {
        libc::SIGINT
    } else {
        libc::SIGTERM
    }
}

/// Waits for a second signal on a thread of its own, and exits at once
/// when it comes.
fn exit_on_second_signal(settings: Arc<Settings>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("file-server-signal".to_string())
        .spawn(move || {
            if let Ok(signal) = wait_for_termination() {
                let open = settings.connections.open();
                eprintln!(
                    "file_server: {signal} again: exiting now, {open} open {} cut",
                    if open == 1 {
                        "connection"
                    } else {
                        "connections"
                    }
                );
                std::process::exit(killed_by(signal));
            }
        })?;
    Ok(())
}

fn run(args: Args) -> std::io::Result<Stopped> {
    block_termination_signals()?;
    let root = Root::open(&args.root).map_err(|e| {
        std::io::Error::new(e.kind(), format!("--root {}: {e}", args.root.display()))
    })?;
    let root_path = root.path().to_path_buf();
    let mode = args.reactor.mode();
    let transfer = args.transfer;
    let (open_pool, opens, pool_threads) = open_pool(&args.open_pool, &root_path)?;
    let shutdown_timeout = seconds(args.shutdown_timeout, "shutdown-timeout")?;
    // The main loop of the multi-reactor mode, besides its I/O loops.
    let loops = mode.io_loops() + usize::from(matches!(mode, ReactorMode::MultiReactor { .. }));
    // Each thread that answers requests has an open-file cache of its own.
    let answering = (mode.io_loops() + mode.workers() + pool_threads).max(1);
    let wanted = (args.open_file_cache * answering) as u64;
    let budget = Budget::for_process(args.max_connections.max(1), wanted, loops)?;
    let open_file_cache = usize::try_from(budget.cached).unwrap_or(usize::MAX) / answering;
    let settings = Arc::new(Settings {
        transfer,
        directio: args.directio,
        header_timeout: seconds(args.header_timeout, "header-timeout")?,
        keepalive_timeout: seconds(args.keepalive_timeout, "keepalive-timeout")?,
        close_timeout: seconds(args.close_timeout, "close-timeout")?,
        max_connections: budget.connections,
        log: args.log,
        show_hidden: args.show_hidden,
        open_pool,
        tls: args.tls.server(&["http/1.1"])?,
        upload: args.upload,
        max_upload: args.max_upload,
        open_file_cache,
        ..Settings::new(root)
    });
    let base = args.reactor.bootstrap();
    let mut server = bootstrap(base, &settings).bind(args.addr)?;
    println!(
        "serving {} at {}://{}/ (mode={mode}, trigger={}, transfer={}, directio={})",
        root_path.display(),
        if settings.tls.is_some() {
            "https"
        } else {
            "http"
        },
        server.local_addr(),
        args.reactor.trigger_name(),
        transfer.name(),
        if args.directio == 0 {
            "off".to_string()
        } else {
            format!("{} bytes", args.directio)
        },
    );
    println!("{opens}");
    if args.upload {
        println!(
            "uploads: PUT stores files under the root, at most {} bytes each",
            args.max_upload
        );
    }
    println!("{budget}");
    if open_file_cache == 0 {
        println!("open-file cache: off");
    } else {
        println!(
            "open-file cache: at most {open_file_cache} files per thread, {answering} {}",
            if answering == 1 { "thread" } else { "threads" }
        );
    }
    let exporter = args.metrics.serve(&server)?;
    let signal = wait_for_termination()?;
    println!(
        "{signal}: shutting down gracefully (at most {shutdown_timeout:?}; {signal} again exits now)"
    );
    exit_on_second_signal(Arc::clone(&settings))?;
    settings.connections.begin_shutdown();
    server.shutdown_gracefully(Duration::from_millis(500), shutdown_timeout)?;
    exporter.stop()?;
    Ok(Stopped {
        cut: server.stats().shutdown_aborts,
        timeout: shutdown_timeout,
    })
}
