//! A load generator for echo servers, built on wharf's client `Bootstrap`.
//!
//! ```text
//! cargo run --release --example echo_server &
//! cargo run --release --example echo_client -- --conns 50 --size 64 --pipeline 4 --duration 10
//! cargo run --release --example echo_client -- --tls --ca ca.pem --server-name localhost
//! ```
//!
//! Each connection keeps `--pipeline` messages of `--size` bytes in flight,
//! checks every echoed byte against what it sent, and records each
//! message's round-trip time. A progress line is printed every second and a
//! summary at the end: messages/s, MB/s, latency percentiles, errors. The
//! run stops by itself after `--duration` seconds.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use wharf::buf::ByteBuf;
use wharf::tls::TlsClient;
use wharf::{
    Bootstrap, ChannelError, ChannelHandle, Context, EventLoopGroup, Handler, Pipeline, Trigger,
};

/// wharf echo load client: keeps messages in flight on many connections,
/// verifies every echoed byte, reports throughput and latency.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Echo server address.
    #[arg(long, default_value = "127.0.0.1:7007")]
    addr: SocketAddr,
    /// Concurrent connections.
    #[arg(long, default_value_t = 50)]
    conns: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Messages in flight per connection.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Client event loop threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Edge- or level-triggered epoll for the client.
    #[arg(long, value_enum, default_value_t = TriggerArg::Edge)]
    trigger: TriggerArg,
    /// Speak TLS (with --ca, or --insecure).
    #[arg(long)]
    tls: bool,
    /// PEM file of the CA that signed the server's certificate.
    #[arg(long, requires = "tls", value_name = "PATH")]
    ca: Option<std::path::PathBuf>,
    /// Accept any server certificate (a self-signed test server).
    #[arg(long, requires = "tls", conflicts_with = "ca")]
    insecure: bool,
    /// The server's name, checked against its certificate and sent as SNI.
    #[arg(long, requires = "tls", default_value = "localhost")]
    server_name: String,
}

/// The TLS settings the flags ask for, if any.
fn tls_client(args: &Args) -> std::io::Result<Option<TlsClient>> {
    if !args.tls {
        return Ok(None);
    }
    let builder = match (&args.ca, args.insecure) {
        (Some(ca), _) => TlsClient::builder().ca_file(ca)?,
        (None, true) => TlsClient::builder().insecure_accept_any_certificate(true),
        (None, false) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "--tls needs --ca PATH or --insecure",
            ));
        }
    };
    builder.build(&args.server_name).map(Some)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TriggerArg {
    Edge,
    Level,
}

/// The byte at offset `o` of connection `c`'s stream is
/// `source[(o + c) % PERIOD]`: cheap to produce and to check by slices,
/// and a lost, duplicated or reordered chunk shows.
const PERIOD: usize = 251;

/// Counters shared by all connections.
#[derive(Default)]
struct Totals {
    messages: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    open: AtomicU64,
}

struct Load {
    conn: usize,
    size: usize,
    pipeline: usize,
    source: Arc<Vec<u8>>,
    running: Arc<AtomicBool>,
    totals: Arc<Totals>,
    histogram: Arc<Mutex<Histogram<u64>>>,
    local: Histogram<u64>,
    sent: u64,
    received: u64,
    in_flight: std::collections::VecDeque<Instant>,
}

impl Load {
    fn send(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        let start = (self.sent as usize * self.size + self.conn) % PERIOD;
        let mut buf = ctx.allocator().buffer(self.size);
        let mut left = self.size;
        let mut at = start;
        while left > 0 {
            let n = left.min(self.source.len() - at);
            buf.extend_from_slice(&self.source[at..at + n]);
            left -= n;
            at = 0;
        }
        ctx.write(buf);
        self.sent += 1;
        self.in_flight.push_back(Instant::now());
    }

    fn fail(&mut self, ctx: &mut Context<'_, ByteBuf>, why: &str) {
        self.totals.errors.fetch_add(1, Ordering::Relaxed);
        eprintln!("connection {}: {why}", self.conn);
        ctx.close();
    }
}

impl Handler for Load {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        self.totals.open.fetch_add(1, Ordering::Relaxed);
        for _ in 0..self.pipeline {
            self.send(ctx);
        }
        ctx.flush();
    }

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
        let mut data = &msg[..];
        let size = self.size as u64;
        while !data.is_empty() {
            // Check up to the end of the current message.
            let offset = self.received;
            let in_message = (size - offset % size) as usize;
            let n = data.len().min(in_message);
            let mut at = (offset as usize + self.conn) % PERIOD;
            let mut chunk = &data[..n];
            while !chunk.is_empty() {
                let m = chunk.len().min(self.source.len() - at);
                if chunk[..m] != self.source[at..at + m] {
                    self.fail(
                        ctx,
                        &format!("wrong bytes at stream offset {}", self.received),
                    );
                    return;
                }
                chunk = &chunk[m..];
                at = 0;
            }
            data = &data[n..];
            self.received += n as u64;
            self.totals.bytes.fetch_add(n as u64, Ordering::Relaxed);
            if self.received.is_multiple_of(size) {
                let Some(sent_at) = self.in_flight.pop_front() else {
                    self.fail(ctx, "more bytes echoed than sent");
                    return;
                };
                let micros = sent_at.elapsed().as_micros() as u64;
                let _ = self.local.record(micros.max(1));
                self.totals.messages.fetch_add(1, Ordering::Relaxed);
                if self.running.load(Ordering::Relaxed) {
                    self.send(ctx);
                }
            }
        }
        if self.in_flight.is_empty() && !self.running.load(Ordering::Relaxed) {
            ctx.close();
        }
    }

    fn on_read_complete(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        ctx.flush();
    }

    fn on_error(&mut self, ctx: &mut Context<'_, ByteBuf>, error: &ChannelError) {
        self.fail(ctx, &error.to_string());
    }

    fn on_inactive(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        self.totals.open.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut all) = self.histogram.lock() {
            let _ = all.add(&self.local);
        }
    }
}

fn main() -> ExitCode {
    wharf::logging::init();
    let args = Args::parse();
    match run(&args) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(2),
        Err(e) => {
            eprintln!("echo_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> std::io::Result<u64> {
    if args.size == 0 || args.conns == 0 || args.pipeline == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "--size, --conns and --pipeline must be at least 1",
        ));
    }
    let trigger = match args.trigger {
        TriggerArg::Edge => Trigger::Edge,
        TriggerArg::Level => Trigger::Level,
    };
    let group = EventLoopGroup::new(args.threads, trigger)?;
    let mut bootstrap = Bootstrap::new(&group).connect_timeout(Duration::from_secs(5));
    if let Some(tls) = tls_client(args)? {
        bootstrap = bootstrap.tls(tls);
    }
    let source = Arc::new(
        (0..2 * PERIOD)
            .map(|i| (i % PERIOD) as u8)
            .collect::<Vec<u8>>(),
    );
    let running = Arc::new(AtomicBool::new(true));
    let totals = Arc::new(Totals::default());
    let histogram = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(std::io::Error::other)?,
    ));
    println!(
        "{} {}connections to {}, {}-byte messages, {} in flight each, for {} s",
        args.conns,
        if args.tls { "TLS " } else { "" },
        args.addr,
        args.size,
        args.pipeline,
        args.duration
    );
    let mut channels: Vec<ChannelHandle<ByteBuf>> = Vec::with_capacity(args.conns);
    for conn in 0..args.conns {
        let handler = Load {
            conn,
            size: args.size,
            pipeline: args.pipeline,
            source: Arc::clone(&source),
            running: Arc::clone(&running),
            totals: Arc::clone(&totals),
            histogram: Arc::clone(&histogram),
            local: Histogram::new_with_bounds(1, 60_000_000, 3).map_err(std::io::Error::other)?,
            sent: 0,
            received: 0,
            in_flight: Default::default(),
        };
        channels.push(bootstrap.connect(args.addr, Pipeline::bytes(handler))?);
    }
    let started = Instant::now();
    let duration = Duration::from_secs_f64(args.duration.max(0.0));
    let mut last = (started, 0u64, 0u64);
    while started.elapsed() < duration {
        let next = last.0 + Duration::from_secs(1);
        std::thread::sleep(
            next.saturating_duration_since(Instant::now())
                .min(duration.saturating_sub(started.elapsed())),
        );
        let now = Instant::now();
        let messages = totals.messages.load(Ordering::Relaxed);
        let bytes = totals.bytes.load(Ordering::Relaxed);
        let secs = now.duration_since(last.0).as_secs_f64().max(1e-9);
        println!(
            "[{:5.1}s] {:>10.0} msg/s {:>9.2} MB/s  open {:>5}  errors {}",
            now.duration_since(started).as_secs_f64(),
            (messages - last.1) as f64 / secs,
            (bytes - last.2) as f64 / secs / 1e6,
            totals.open.load(Ordering::Relaxed),
            totals.errors.load(Ordering::Relaxed),
        );
        last = (now, messages, bytes);
    }
    let elapsed = started.elapsed();
    let messages = totals.messages.load(Ordering::Relaxed);
    let bytes = totals.bytes.load(Ordering::Relaxed);
    // Stop sending; connections close once their last echo is in.
    running.store(false, Ordering::Relaxed);
    let drain_deadline = Instant::now() + Duration::from_secs(5);
    while totals.open.load(Ordering::Relaxed) > 0 && Instant::now() < drain_deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for channel in &channels {
        channel.close();
    }
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2))?;
    let errors = totals.errors.load(Ordering::Relaxed);
    let secs = elapsed.as_secs_f64().max(1e-9);
    let h = histogram
        .lock()
        .map_err(|_| std::io::Error::other("histogram lock poisoned"))?;
    println!("--- summary ---");
    println!(
        "messages : {messages} in {secs:.2} s = {:.0} msg/s",
        messages as f64 / secs
    );
    println!(
        "bytes    : {:.2} MB/s echoed (each byte verified)",
        bytes as f64 / secs / 1e6
    );
    println!(
        "latency  : p50 {} us, p99 {} us, p99.9 {} us, max {} us",
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
    println!("errors   : {errors}");
    Ok(errors)
}
