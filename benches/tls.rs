//! Echo over TLS 1.3: wharf's TLS layer in three reactor modes against
//! tokio-rustls on tokio's runtime (two worker threads), messages of 64 B
//! and 4 KiB, 16 connections with one message in flight each. The client
//! is rustls on plain `mio` sockets on the bench thread (no wharf code);
//! handshakes happen before measuring.
//!
//! ```text
//! cargo bench --bench tls
//! WHARF_BENCH_SECS=10 cargo bench --bench tls -- 4KiB
//! ```
//!
//! For CPU per message side by side, alternating rounds, use
//! `cargo run --release --example compare_tls`.

#[path = "support/certs.rs"]
mod certs;
#[path = "support/tls_load.rs"]
mod tls_load;
#[path = "support/tls_servers.rs"]
mod tls_servers;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tls_servers::{TlsSetup, TlsTarget};

fn measurement_time() -> Duration {
    let secs = std::env::var("WHARF_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

fn echo(c: &mut Criterion) {
    let setup = TlsSetup::new();
    for (size, label) in [(64, "64B"), (4096, "4KiB")] {
        let mut group = c.benchmark_group(format!("tls-echo/{label}/16c"));
        group.measurement_time(measurement_time());
        group.warm_up_time(Duration::from_millis(500));
        group.sample_size(10);
        group.throughput(Throughput::Elements(1));
        for target in TlsTarget::all() {
            let server = target.start(&setup);
            let mut driver =
                tls_load::TlsDriver::connect(server.addr(), 16, size, setup.client.clone())
                    .unwrap_or_else(|e| panic!("{}: connecting: {e}", target.name()));
            group.bench_function(target.name(), |b| {
                b.iter_custom(|iters| {
                    driver
                        .run_messages(iters)
                        .unwrap_or_else(|e| panic!("{}: {e}", target.name()))
                })
            });
            drop(driver);
            server.stop();
        }
        group.finish();
    }
}

criterion_group!(benches, echo);
criterion_main!(benches);
