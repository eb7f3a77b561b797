//! A zero-copy TCP proxy: every connection accepted on `--listen` is
//! connected to `--upstream` from its own event loop and relayed both ways,
//! with `splice(2)` once it moves bulk data and pooled buffers below that
//! (`wharf::transport::handlers::TcpProxy`, on `wharf::transport::Relay`).
//!
//! ```text
//! cargo run --release --example tcp_proxy -- --listen 127.0.0.1:8000 --upstream 127.0.0.1:8080
//! cargo run --release --example tcp_proxy -- --listen 127.0.0.1:8000 --upstream 127.0.0.1:8080 \
//!     --mode reuseport:2 --splice never
//! ```
//!
//! It prints where it listens, then stays quiet; Ctrl-C or SIGTERM shuts it
//! down gracefully and prints what it relayed.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use wharf::transport::handlers::TcpProxy;
use wharf::transport::sys::signal::{block_termination_signals, wait_for_termination};
use wharf::{Relay, RelayConfig, SpliceMode};

#[path = "common/reactor_args.rs"]
mod reactor_args;
use reactor_args::ReactorArgs;

/// wharf TCP proxy: relays every connection to an upstream, zero copy for
/// bulk data.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Address to connect each client to.
    #[arg(long)]
    upstream: SocketAddr,
    #[command(flatten)]
    reactor: ReactorArgs,
    /// When to splice: auto (bulk data only), always, never (copy).
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    splice: String,
    /// With auto: splice after a read of at least this many bytes.
    #[arg(long, default_value_t = RelayConfig::default().splice_threshold)]
    splice_threshold: usize,
    /// Bytes asked for each pipe (F_SETPIPE_SZ).
    #[arg(long, default_value_t = RelayConfig::default().pipe_size)]
    pipe_size: usize,
    /// Pipes per event loop at most (beyond, connections copy).
    #[arg(long, default_value_t = RelayConfig::default().max_pipes)]
    max_pipes: usize,
    /// Seconds an upstream connect may take.
    #[arg(long, default_value_t = 5.0)]
    connect_timeout: f64,
    /// Outbound high water mark per connection, in bytes (the low one is
    /// half of it): what each direction may hold beyond a pipe.
    #[arg(long, default_value_t = 64 << 10)]
    high_water_mark: usize,
}

fn main() -> ExitCode {
    wharf::logging::init();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcp_proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> std::io::Result<()> {
    block_termination_signals()?;
    let mode = args.reactor.mode();
    let splice = match args.splice.as_str() {
        "always" => SpliceMode::Always,
        "never" => SpliceMode::Never,
        _ => SpliceMode::Auto,
    };
    let relay = Relay::new(RelayConfig {
        splice,
        splice_threshold: args.splice_threshold,
        pipe_size: args.pipe_size,
        max_pipes: args.max_pipes,
    })?;
    let connect_timeout = Duration::try_from_secs_f64(args.connect_timeout).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "--connect-timeout must be a number of seconds",
        )
    })?;
    let high = args.high_water_mark.max(2);
    let proxy = TcpProxy::new(args.upstream, relay)
        .connect_timeout(connect_timeout)
        .water_mark(high / 2, high)
        .coalesce_writes(args.reactor.coalesce_writes);
    let base = args.reactor.bootstrap().thread_name("tcp-proxy");
    let mut server = proxy.serve(base).bind(args.listen)?;
    println!(
        "proxying {} -> {} (mode={mode}, trigger={}, splice={})",
        server.local_addr(),
        args.upstream,
        args.reactor.trigger_name(),
        args.splice,
    );
    let signal = wait_for_termination()?;
    println!("{signal}: shutting down");
    server.shutdown_gracefully(Duration::from_millis(200), Duration::from_secs(5))?;
    let stats = proxy.stats();
    println!(
        "connections {}, upstream failures {}, spliced {} bytes in {} splices, copied {} bytes \
         in {} reads, pipe shortages {}",
        stats.connections,
        stats.upstream_failures,
        stats.relay.spliced_bytes,
        stats.relay.splices,
        stats.relay.copied_bytes,
        stats.relay.copies,
        stats.relay.pipe_shortages,
    );
    Ok(())
}
