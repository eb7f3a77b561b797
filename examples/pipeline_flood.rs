//! What a client that pipelines requests and never reads the answers does
//! to a server's memory, with backpressure on (wharf's default) and off.
//!
//! ```text
//! cargo run --release --example pipeline_flood -- --seconds 4 --reply-kib 1024
//! ```
//!
//! A line server answers every request line with a reply of `--reply-kib`
//! KiB and flushes, without pacing itself. A client on loopback sends
//! request lines as fast as the server takes them, for `--seconds`, and
//! never reads. The table shows the process's peak resident memory above
//! its start (the client holds almost nothing: what it does not read waits
//! in kernel socket buffers), the peak of the server's queued bytes, and
//! the replies the handler wrote. With backpressure off the queue (and the
//! memory) grows with every request; with it on, the channel stops reading
//! above the high water mark and holds the rest of the batch.

#[path = "common/reactor_args.rs"]
mod reactor_args;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use reactor_args::ReactorArgs;
use wharf::buf::ByteBuf;
use wharf::codec::LineCodec;
use wharf::transport::sys::limits::resident_bytes;
use wharf::{Context, Handler, Pipeline};

/// Pipelined requests against a server that is never read from.
#[derive(Debug, Parser)]
struct Args {
    /// How long the client sends.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Size of each reply in KiB.
    #[arg(long, default_value_t = 1024)]
    reply_kib: usize,
    /// The server closes the connection once it has queued this many MiB
    /// (a safety cap for the run without backpressure).
    #[arg(long, default_value_t = 2048)]
    cap_mib: usize,
    #[command(flatten)]
    reactor: ReactorArgs,
}

/// Answers every line with the same large reply, and records the most it
/// ever had queued. Past the cap it closes the connection, so that a run
/// without backpressure cannot take the machine's memory.
struct Replier {
    reply: Arc<Vec<u8>>,
    peak: Arc<AtomicUsize>,
    replies: Arc<AtomicUsize>,
    cap: usize,
}

impl Handler for Replier {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, _line: ByteBuf) {
        if ctx.pending_outbound_bytes() >= self.cap {
            ctx.close();
            return;
        }
        let mut buf = ctx.allocator().buffer(self.reply.len());
        buf.extend_from_slice(&self.reply);
        ctx.write_and_flush(buf);
        self.replies.fetch_add(1, Ordering::Relaxed);
        self.peak
            .fetch_max(ctx.pending_outbound_bytes(), Ordering::Relaxed);
    }
}

/// What one run measured.
struct Outcome {
    peak_rss: u64,
    peak_queued: usize,
    replies: usize,
    /// How long the run lasted (shorter than asked if the cap was hit).
    lasted: Duration,
}

/// One run with backpressure on or off.
fn run(args: &Args, backpressure: bool) -> std::io::Result<Outcome> {
    let peak = Arc::new(AtomicUsize::new(0));
    let replies = Arc::new(AtomicUsize::new(0));
    let reply = Arc::new(vec![b'x'; args.reply_kib << 10]);
    let (p, r) = (Arc::clone(&peak), Arc::clone(&replies));
    let cap = args.cap_mib << 20;
    let mut server = args
        .reactor
        .bootstrap()
        .backpressure(backpressure)
        .child_handler(move || {
            let handler = Replier {
                reply: Arc::clone(&reply),
                peak: Arc::clone(&p),
                replies: Arc::clone(&r),
                cap,
            };
            // Requests are short; the limit also bounds the replies' lines.
            Pipeline::new(LineCodec::new(16 << 20), handler)
        })
        .bind("127.0.0.1:0")?;
    let before = resident_bytes()?;
    let mut client = TcpStream::connect(server.local_addr())?;
    client.set_write_timeout(Some(Duration::from_millis(100)))?;
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let batch = b"GET\r\n".repeat(1024);
            // Stops when told, or when the server stops taking requests
            // and the write times out over and over.
            while !stop.load(Ordering::Relaxed) {
                let _ = client.write_all(&batch);
            }
            client
        })
    };
    let started = Instant::now();
    let mut peak_rss = 0;
    while started.elapsed().as_secs_f64() < args.seconds && peak.load(Ordering::Relaxed) < cap {
        peak_rss = peak_rss.max(resident_bytes()?.saturating_sub(before));
        std::thread::sleep(Duration::from_millis(20));
    }
    let lasted = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let client = sender.join().expect("the sender thread");
    drop(client);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5))?;
    Ok(Outcome {
        peak_rss,
        peak_queued: peak.load(Ordering::Relaxed),
        replies: replies.load(Ordering::Relaxed),
        lasted,
    })
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    println!(
        "pipeline_flood: {} s, {} KiB replies, mode {} ({}), client never reads",
        args.seconds,
        args.reply_kib,
        args.reactor.mode(),
        args.reactor.trigger_name()
    );
    println!("| backpressure | peak RSS growth | peak queued | replies written | run |");
    println!("|---|---|---|---|---|");
    let mib = |n: f64| n / (1 << 20) as f64;
    for backpressure in [false, true] {
        let o = run(&args, backpressure)?;
        let capped = o.peak_queued >= args.cap_mib << 20;
        println!(
            "| {} | {:.1} MiB | {:.1} MiB | {} | {:.2} s{} |",
            if backpressure { "on (default)" } else { "off" },
            mib(o.peak_rss as f64),
            mib(o.peak_queued as f64),
            o.replies,
            o.lasted.as_secs_f64(),
            if capped { " (stopped at the cap)" } else { "" },
        );
    }
    Ok(())
}
