//! Reactor modes × triggers, and tokio, on an echo request/response
//! workload over loopback: messages of 64 B and 4 KiB, with 4 and 256
//! connections, one message in flight on each. Then a handler that does
//! CPU work per byte (where a worker pool should pay), and pooled against
//! unpooled buffers.
//!
//! The server runs in-process on its own threads; the client is a plain
//! `mio` driver on the bench thread that shares no code with wharf.
//!
//! ```text
//! cargo bench --bench reactor_modes                 # everything, about 4 minutes
//! cargo bench --bench reactor_modes -- multi        # one mode
//! cargo bench --bench reactor_modes -- 'echo/64B/4c'
//! WHARF_BENCH_SECS=10 cargo bench --bench reactor_modes   # measure longer
//! ```
//!
//! Reports with plots land in `target/criterion/report/index.html`.

#[path = "support/load.rs"]
mod load;
#[path = "support/mio_floor.rs"]
mod mio_floor;
#[path = "support/servers.rs"]
mod servers;

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use servers::{Target, Workload};
use wharf::{ReactorMode, Trigger};

fn measurement_time() -> Duration {
    let secs = std::env::var("WHARF_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.measurement_time(measurement_time());
    group.warm_up_time(Duration::from_millis(500));
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    group
}

/// Benchmarks `target` under `workload`: each iteration is one message
/// echoed, so criterion reports messages per second.
fn bench_target(
    group: &mut BenchmarkGroup<'_, WallTime>,
    target: Target,
    workload: Workload,
    conns: usize,
    size: usize,
) {
    let server = target.start(workload);
    let mut driver = match load::Driver::connect(server.addr(), conns, size) {
        Ok(driver) => driver,
        Err(e) => panic!("{}: connecting {conns} clients: {e}", target.name()),
    };
    group.bench_function(target.name(), |b| {
        b.iter_custom(|iters| {
            driver
                .run_messages(iters, None)
                .unwrap_or_else(|e| panic!("{}: {e}", target.name()))
        })
    });
    drop(driver);
    server.stop();
}

fn echo(c: &mut Criterion) {
    for size in [64, 4096] {
        for conns in [4, 256] {
            let name = format!("echo/{}/{conns}c", size_label(size));
            let mut group = group(c, &name);
            for target in Target::all() {
                bench_target(&mut group, target, Workload::Echo, conns, size);
            }
            group.finish();
        }
    }
}

fn cpu_work(c: &mut Criterion) {
    // About 100 µs of hashing per 4 KiB message.
    let workload = Workload::Hash { rounds: 20 };
    let mut group = group(c, "cpu/4KiB/16c");
    let mut targets: Vec<Target> = servers::modes()
        .into_iter()
        .map(|mode| Target::Wharf {
            mode,
            trigger: Trigger::Edge,
            pooled: true,
        })
        .collect();
    targets.push(Target::Wharf {
        mode: ReactorMode::MultiReactor {
            sub_reactors: 1,
            workers: 2,
        },
        trigger: Trigger::Edge,
        pooled: true,
    });
    targets.push(Target::Tokio { threads: 2 });
    for target in targets {
        bench_target(&mut group, target, workload, 16, 4096);
    }
    group.finish();
}

fn allocators(c: &mut Criterion) {
    for size in [64, 4096] {
        let mut group = group(c, &format!("alloc/{}/64c", size_label(size)));
        for mode in [
            ReactorMode::Single,
            ReactorMode::MultiReactor {
                sub_reactors: 2,
                workers: 0,
            },
        ] {
            for pooled in [true, false] {
                let target = Target::Wharf {
                    mode,
                    trigger: Trigger::Edge,
                    pooled,
                };
                bench_target(&mut group, target, Workload::Echo, 64, size);
            }
        }
        group.finish();
    }
}

fn size_label(size: usize) -> String {
    if size >= 1024 {
        format!("{}KiB", size / 1024)
    } else {
        format!("{size}B")
    }
}

criterion_group!(benches, echo, cpu_work, allocators);
criterion_main!(benches);
