//! A failed bind leaks nothing (issue 8 §2, point 9): when `bind` fails
//! with `EADDRINUSE`, the loop threads it already started must end and
//! their descriptors (epoll, waker) be closed (before the fix, such a loop
//! stayed in `epoll_wait` for good).
//!
//! 1 000 binds to a port a plain listener holds, spread over every mode ×
//! trigger × allocator; afterwards the process has as many threads
//! (`/proc/self/task`) and open descriptors (`/proc/self/fd`) as before.
//!
//! A test binary of its own, with this one test: it counts the process's
//! threads and descriptors, which other tests running in parallel would
//! change.

mod common;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::Config;
use wharf::Pipeline;
use wharf::transport::handlers::Echo;

const BINDS: usize = 1_000;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

fn descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

#[test]
fn a_thousand_failed_binds_leave_no_thread_or_descriptor_behind() {
    let occupied = std::net::TcpListener::bind("127.0.0.1:0").expect("occupy a port");
    let addr = occupied.local_addr().expect("address");
    let configs = Config::all();

    // Once in every configuration with a port of its own, so that whatever
    // is set up once per process (the global pool, say) is there before
    // counting.
    for config in &configs {
        let server = config
            .server()
            .child_handler(|| Pipeline::bytes(Echo))
            .bind("127.0.0.1:0")
            .expect("bind a free port");
        drop(server);
    }
    // A joined thread can still be listed for a moment while the kernel
    // reaps it: count once the warm-up servers' threads are all gone.
    common::wait_until(
        Duration::from_secs(5),
        "the warm-up servers' threads to be gone",
        || common::threads_named("wharf-test") == 0,
    );
    let (threads_before, fds_before) = (threads(), descriptors());

    // What each configuration's binds left behind, counted right after
    // each bind (threads a failed bind stopped properly are joined by then).
    let mut left = vec![(0isize, 0isize); configs.len()];
    let mut binds = 0;
    while binds < BINDS {
        for (i, config) in configs.iter().enumerate() {
            let (t0, f0) = (threads() as isize, descriptors() as isize);
            let result = config
                .server()
                .child_handler(|| Pipeline::bytes(Echo))
                .bind(addr);
            match result {
                Err(e) if e.kind() == ErrorKind::AddrInUse => {}
                Err(e) => panic!(
                    "{config}: bind #{binds} to a taken port failed with {e} (not \
                     AddrInUse); {} threads and {} descriptors now, {threads_before} and \
                     {fds_before} before",
                    threads(),
                    descriptors()
                ),
                Ok(server) => panic!(
                    "{config}: bind #{binds} to a port held by another listener succeeded \
                     ({:?})",
                    server.local_addr()
                ),
            }
            left[i].0 += threads() as isize - t0;
            left[i].1 += descriptors() as isize - f0;
            binds += 1;
        }
    }

    // Threads may take a moment to end after their loop stops.
    let deadline = Instant::now() + Duration::from_secs(2);
    let (mut threads_after, mut fds_after) = (threads(), descriptors());
    while (threads_after, fds_after) != (threads_before, fds_before) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        (threads_after, fds_after) = (threads(), descriptors());
    }
    let by_config: Vec<String> = configs
        .iter()
        .zip(&left)
        .filter(|&(_, &(t, f))| t != 0 || f != 0)
        .map(|(config, (t, f))| format!("{config}: {t} threads, {f} descriptors"))
        .collect();
    assert!(
        threads_after == threads_before && fds_after == fds_before,
        "after {binds} failed binds the process has {threads_after} threads (before: \
         {threads_before}) and {fds_after} open descriptors (before: {fds_before}): \
         {} threads and {} descriptors leaked; by configuration ({} binds each, counted \
         right after each bind, so give or take a thread still ending): {}",
        threads_after as isize - threads_before as isize,
        fds_after as isize - fds_before as isize,
        BINDS / configs.len(),
        by_config.join("; ")
    );
}
