//! Compares wharf's reactor modes and triggers, a tokio echo server and
//! a hand-written `mio` loop (the floor),
//! on the same echo workload in one run, and prints a markdown table and
//! writes an SVG chart.
//!
//! ```text
//! cargo run --release --example compare_modes -- --duration 5
//! cargo run --release --example compare_modes -- --size 4096 --conns 256 --workload hash
//! ```
//!
//! Each server runs in this process on loopback, in turn; the load comes
//! from a plain `mio` client on this thread (no wharf code on the client
//! side). For each: messages/s, MB/s, round-trip p50/p99/p99.9, the
//! server's CPU time per message (from its threads' `/proc` counters) and,
//! for wharf, `epoll_wait` calls per message, reads per readiness event and
//! `epoll_ctl` calls per message.

#[path = "../benches/support/load.rs"]
mod load;
#[path = "../benches/support/mio_floor.rs"]
mod mio_floor;
#[path = "../benches/support/servers.rs"]
mod servers;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use plotters::prelude::*;
use servers::{Target, Workload};

/// Reactor modes × triggers (and tokio, and the hand-written `mio` floor)
/// on one echo workload: a table and an SVG chart.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Seconds to measure each server.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    conns: usize,
    /// Load client threads, each driving its share of the connections
    /// (they compete with the server for the same cores).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// What the handler does with each message.
    #[arg(long, value_enum, default_value_t = WorkloadArg::Echo)]
    workload: WorkloadArg,
    /// Hash rounds per byte for `--workload hash`.
    #[arg(long, default_value_t = 20)]
    rounds: u32,
    /// Only servers whose name contains one of these, comma-separated
    /// (e.g. `multi`, `edge`, `single-edge,tokio,mio-floor`).
    #[arg(long)]
    only: Option<String>,
    /// Where to write the SVG chart.
    #[arg(long, default_value = "target/compare_modes.svg")]
    chart: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum WorkloadArg {
    Echo,
    Hash,
}

/// One server's results.
struct Row {
    name: String,
    messages_per_sec: f64,
    mb_per_sec: f64,
    p50: u64,
    p99: u64,
    p999: u64,
    cpu_us_per_msg: f64,
    polls_per_msg: Option<f64>,
    reads_per_event: Option<f64>,
    ctl_per_msg: Option<f64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare_modes: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> std::io::Result<()> {
    let workload = match args.workload {
        WorkloadArg::Echo => Workload::Echo,
        WorkloadArg::Hash => Workload::Hash {
            rounds: args.rounds,
        },
    };
    let duration = Duration::try_from_secs_f64(args.duration).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "--duration must be seconds",
        )
    })?;
    let targets: Vec<Target> = Target::all()
        .into_iter()
        .filter(|t| {
            args.only
                .as_ref()
                .is_none_or(|f| f.split(',').any(|f| t.name().contains(f.trim())))
        })
        .collect();
    eprintln!(
        "{} servers x {:.1} s: {} connections, {}-byte messages, workload {:?}",
        targets.len(),
        args.duration,
        args.conns,
        args.size,
        workload
    );
    let mut rows = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        eprint!("[{}/{}] {:<16}", i + 1, targets.len(), target.name());
        let _ = std::io::stderr().flush();
        rows.push(measure(*target, workload, args, duration)?);
        let row = rows.last().expect("just pushed");
        eprintln!(
            " {:>10.0} msg/s  p99 {:>6} us",
            row.messages_per_sec, row.p99
        );
    }
    print_table(args, workload, &rows);
    chart(&args.chart, args, &rows)?;
    eprintln!("chart written to {}", args.chart.display());
    Ok(())
}

fn measure(
    target: Target,
    workload: Workload,
    args: &Args,
    duration: Duration,
) -> std::io::Result<Row> {
    let server = target.start(workload);
    let threads = args.client_threads.clamp(1, args.conns.max(1));
    let mut drivers = (0..threads)
        .map(|i| {
            let conns = args.conns / threads + usize::from(i < args.conns % threads);
            load::Driver::connect(server.addr(), conns, args.size)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    // Warm up (connections, caches, the pool), then measure.
    drive(&mut drivers, Duration::from_millis(500), false)?;
    let stats_before = server.stats();
    let cpu_before = servers::server_cpu_time();
    let started = Instant::now();
    let (messages, latencies) = drive(&mut drivers, duration, true)?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = servers::server_cpu_time() - cpu_before;
    let stats = match (server.stats(), stats_before) {
        (Some(after), Some(before)) => Some(after.since(&before)),
        _ => None,
    };
    drop(drivers);
    server.stop();
    let per_msg = |n: u64| n as f64 / messages.max(1) as f64;
    Ok(Row {
        name: target.name(),
        messages_per_sec: messages as f64 / elapsed,
        mb_per_sec: (messages as f64 * args.size as f64) / elapsed / 1e6,
        p50: latencies.value_at_quantile(0.50),
        p99: latencies.value_at_quantile(0.99),
        p999: latencies.value_at_quantile(0.999),
        cpu_us_per_msg: cpu.as_secs_f64() * 1e6 / messages.max(1) as f64,
        polls_per_msg: stats.map(|s| per_msg(s.polls)),
        reads_per_event: stats.map(|s| s.reads as f64 / s.events.max(1) as f64),
        ctl_per_msg: stats.map(|s| per_msg(s.epoll_ctl)),
    })
}

/// Runs every driver for `duration`, each on a thread of its own: the
/// round trips completed and their latencies.
fn drive(
    drivers: &mut [load::Driver],
    duration: Duration,
    report: bool,
) -> std::io::Result<(u64, load::Latencies)> {
    let results = std::thread::scope(|scope| {
        let running: Vec<_> = drivers
            .iter_mut()
            .enumerate()
            .map(|(i, driver)| {
                scope.spawn(move || {
                    let mut latencies = load::latencies();
                    let progress = |_| {
                        if report && i == 0 {
                            eprint!(".");
                        }
                    };
                    driver
                        .run_for(duration, Some(&mut latencies), progress)
                        .map(|n| (n, latencies))
                })
            })
            .collect();
        running
            .into_iter()
            .map(|t| t.join().expect("a load thread panicked"))
            .collect::<Vec<_>>()
    });
    let mut total = 0;
    let mut all = load::latencies();
    for result in results {
        let (n, latencies) = result?;
        total += n;
        all.add(&latencies).expect("same bounds");
    }
    Ok((total, all))
}

fn print_table(args: &Args, workload: Workload, rows: &[Row]) {
    let tokio = rows
        .iter()
        .find(|r| r.name == "tokio")
        .map(|r| r.messages_per_sec);
    let floor = rows
        .iter()
        .find(|r| r.name == "mio-floor")
        .map(|r| r.cpu_us_per_msg);
    println!(
        "\n{} connections, {}-byte messages, one in flight each, {:?}, {:.0} s per server, {} load client thread(s)\n",
        args.conns, args.size, workload, args.duration, args.client_threads
    );
    println!(
        "| server | msg/s | vs tokio | MB/s | p50 µs | p99 µs | p99.9 µs | server CPU µs/msg | CPU vs floor | epoll_wait/msg | reads/event | epoll_ctl/msg |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for r in rows {
        let ratio = tokio.map_or("-".to_string(), |t| {
            format!("{:.2}x", r.messages_per_sec / t)
        });
        let vs_floor = floor.map_or("-".to_string(), |f| format!("{:.2}x", r.cpu_us_per_msg / f));
        println!(
            "| {} | {:.0} | {} | {:.2} | {} | {} | {} | {:.2} | {} | {} | {} | {} |",
            r.name,
            r.messages_per_sec,
            ratio,
            r.mb_per_sec,
            r.p50,
            r.p99,
            r.p999,
            r.cpu_us_per_msg,
            vs_floor,
            opt(r.polls_per_msg),
            opt(r.reads_per_event),
            opt(r.ctl_per_msg),
        );
    }
}

/// Two panels: throughput and p99 latency per server.
fn chart(path: &PathBuf, args: &Args, rows: &[Row]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let plot = || -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(350);
        let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
        let caption = format!("{} conns, {} B messages", args.conns, args.size);
        draw_bars(
            &top,
            &format!("throughput (msg/s), {caption}"),
            &names,
            &rows.iter().map(|r| r.messages_per_sec).collect::<Vec<_>>(),
            &BLUE,
        )?;
        draw_bars(
            &bottom,
            "p99 round trip (µs)",
            &names,
            &rows.iter().map(|r| r.p99 as f64).collect::<Vec<_>>(),
            &RED,
        )?;
        root.present()?;
        Ok(())
    };
    plot().map_err(|e| std::io::Error::other(e.to_string()))
}

fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    names: &[String],
    values: &[f64],
    color: &RGBColor,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let max = values.iter().cloned().fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(0..names.len(), 0.0..max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len())
        .x_label_formatter(&|i| names.get(*i).cloned().unwrap_or_default())
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    chart.draw_series(values.iter().enumerate().map(|(i, v)| {
        let mut bar = Rectangle::new([(i, 0.0), (i + 1, *v)], color.mix(0.7).filled());
        bar.set_margin(0, 0, 6, 6);
        bar
    }))?;
    Ok(())
}
