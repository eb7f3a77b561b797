//! Echo over TLS 1.3, wharf against tokio-rustls, side by side: for each
//! message size, every server in turn for a few alternating rounds; the
//! medians of messages/s and of the server's CPU time per message, and
//! the ratios to tokio-rustls.
//!
//! ```text
//! cargo run --release --example compare_tls -- --rounds 5 --duration 5
//! ```
//!
//! The servers run in this process on loopback with the same certificate
//! (made on the spot), rustls version and ring provider; the load comes
//! from rustls clients on plain `mio` sockets on this thread (no wharf
//! code on the client side), one message in flight per connection.

#[path = "../benches/support/certs.rs"]
mod certs;
#[path = "../benches/support/tls_load.rs"]
mod tls_load;
#[path = "../benches/support/tls_servers.rs"]
mod tls_servers;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tls_servers::{TlsSetup, TlsTarget, tls_server_cpu_time};

/// wharf's TLS echo against tokio-rustls: a markdown table of medians.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Seconds to measure each server in each round.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Alternating rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    conns: usize,
    /// Message sizes in bytes.
    #[arg(long, value_delimiter = ',', default_value = "64,4096")]
    sizes: Vec<usize>,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> ExitCode {
    let args = Args::parse();
    let setup = TlsSetup::new();
    let duration = Duration::from_secs_f64(args.duration);
    // (size, name) -> [(msg/s, cpu µs/msg)]
    let mut results: BTreeMap<(usize, String), Vec<(f64, f64)>> = BTreeMap::new();
    for round in 1..=args.rounds {
        for &size in &args.sizes {
            for target in TlsTarget::all() {
                let server = target.start(&setup);
                let mut driver = match tls_load::TlsDriver::connect(
                    server.addr(),
                    args.conns,
                    size,
                    setup.client.clone(),
                ) {
                    Ok(driver) => driver,
                    Err(e) => {
                        eprintln!("{}: connecting: {e}", target.name());
                        return ExitCode::FAILURE;
                    }
                };
                // Warm up (thread caches, the page of each buffer), then measure.
                let _ = driver.run_for(Duration::from_millis(300));
                let cpu_before = tls_server_cpu_time();
                let started = std::time::Instant::now();
                let messages = match driver.run_for(duration) {
                    Ok(n) => n,
                    Err(e) => {
                        eprintln!("{}: {e}", target.name());
                        return ExitCode::FAILURE;
                    }
                };
                let secs = started.elapsed().as_secs_f64();
                let cpu = tls_server_cpu_time().saturating_sub(cpu_before);
                drop(driver);
                server.stop();
                let rate = messages as f64 / secs;
                let cpu_per = cpu.as_secs_f64() * 1e6 / messages.max(1) as f64;
                eprintln!(
                    "round {round} {size:>5} B {:<18} {rate:>9.0} msg/s {cpu_per:>6.2} µs CPU/msg",
                    target.name()
                );
                results
                    .entry((size, target.name()))
                    .or_default()
                    .push((rate, cpu_per));
            }
        }
    }
    println!(
        "\nTLS 1.3 echo, {} connections, one message in flight each, {} rounds of {} s, medians\n",
        args.conns, args.rounds, args.duration
    );
    println!("| size | server | msg/s | ratio to tokio-rustls | server CPU µs/msg | CPU ratio |");
    println!("|---|---|---|---|---|---|");
    for &size in &args.sizes {
        let medians = |name: &str| {
            let runs = &results[&(size, name.to_string())];
            let mut rates: Vec<f64> = runs.iter().map(|r| r.0).collect();
            let mut cpus: Vec<f64> = runs.iter().map(|r| r.1).collect();
            (median(&mut rates), median(&mut cpus))
        };
        let (peer_rate, peer_cpu) = medians("tokio-rustls");
        for target in TlsTarget::all() {
            let (rate, cpu) = medians(&target.name());
            println!(
                "| {size} B | {} | {rate:.0} | {:.2}× | {cpu:.2} | {:.2}× |",
                target.name(),
                rate / peer_rate,
                cpu / peer_cpu
            );
        }
    }
    ExitCode::SUCCESS
}
