//! The file server example as a process of its own (issue 9): what only a
//! whole process shows. Each test starts this binary again as the file
//! server (see [`child`]), with the example's own `main` code, and talks
//! to it over loopback sockets.
//!
//! * [`signals`]: a second Ctrl-C (or `SIGTERM`) during the graceful
//!   shutdown exits at once; a shutdown that had to cut responses exits
//!   non-zero and says how many; a clean one exits 0.
//! * [`descriptors`]: under a low descriptor limit (`ulimit -n 256`), 300
//!   clients all get an answer, 200 or 503 with a close; a file that cannot
//!   be opened for `EMFILE` is 503 with a close.
//! * [`memory`]: resident memory before, with and after 10 000 kept-alive
//!   connections, three rounds; back near the start within seconds.
//!
//! A binary without libtest's harness (`harness = false`): the server role
//! must block `SIGINT` and `SIGTERM` before any thread starts, which a test
//! run by libtest, on a thread of its harness, cannot. Tests run one after
//! another; arguments that do not start with `-` filter them by name.

// The example's modules, at the crate root as in the example. Their unit
// tests run in the `file_server` test binary: here they are compiled (a
// crate without harness is still built with `cfg(test)`) but not run.
#[path = "../../examples/file_server/access_log.rs"]
#[allow(dead_code, unused_imports)]
mod access_log;
#[path = "../../examples/file_server/budget.rs"]
#[allow(dead_code, unused_imports)]
mod budget;
#[path = "../../examples/file_server/cache.rs"]
#[allow(dead_code, unused_imports)]
mod cache;
#[path = "../../examples/file_server/conditional.rs"]
#[allow(dead_code, unused_imports)]
mod conditional;
#[path = "../../examples/file_server/deadline.rs"]
#[allow(dead_code, unused_imports)]
mod deadline;
#[path = "../../examples/file_server/handler.rs"]
#[allow(dead_code, unused_imports)]
mod handler;
#[path = "../../examples/file_server/listing.rs"]
#[allow(dead_code, unused_imports)]
mod listing;
#[path = "../../examples/file_server/mapped.rs"]
#[allow(dead_code, unused_imports)]
mod mapped;
#[path = "../../examples/common/metrics_args.rs"]
#[allow(dead_code, unused_imports)]
mod metrics_args;
#[path = "../../examples/file_server/opener.rs"]
#[allow(dead_code, unused_imports)]
mod opener;
#[path = "../../examples/file_server/paths.rs"]
#[allow(dead_code, unused_imports)]
mod paths;
#[path = "../../examples/file_server/range.rs"]
#[allow(dead_code, unused_imports)]
mod range;
#[path = "../../examples/common/reactor_args.rs"]
#[allow(dead_code, unused_imports)]
mod reactor_args;
#[path = "../../examples/file_server/registry.rs"]
#[allow(dead_code, unused_imports)]
mod registry;
#[path = "../../examples/file_server/respond.rs"]
#[allow(dead_code, unused_imports)]
mod respond;
#[path = "../../examples/file_server/serve.rs"]
#[allow(dead_code, unused_imports)]
mod serve;
#[path = "../../examples/file_server/settings.rs"]
#[allow(dead_code, unused_imports)]
mod settings;
#[path = "../../examples/common/tls_args.rs"]
#[allow(dead_code, unused_imports)]
mod tls_args;
#[path = "../../examples/file_server/upload.rs"]
#[allow(dead_code, unused_imports)]
mod upload;

#[path = "../file_server/client.rs"]
#[allow(dead_code)]
mod client;
#[path = "../common/mod.rs"]
mod common;
#[path = "../file_server/site.rs"]
#[allow(dead_code)] // `Spec` runs servers in-process; these run processes.
mod site;

mod child;
mod descriptors;
mod memory;
mod metrics;
mod signals;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::time::Instant;

/// Every test of this binary.
const TESTS: &[(&str, fn())] = &[
    (
        "signals::a_clean_shutdown_exits_zero",
        signals::a_clean_shutdown_exits_zero,
    ),
    (
        "signals::a_second_signal_exits_at_once",
        signals::a_second_signal_exits_at_once,
    ),
    (
        "signals::a_shutdown_that_cuts_responses_exits_non_zero_and_says_how_many",
        signals::a_shutdown_that_cuts_responses_exits_non_zero_and_says_how_many,
    ),
    (
        "descriptors::three_hundred_clients_with_256_descriptors_all_get_an_answer",
        descriptors::three_hundred_clients_with_256_descriptors_all_get_an_answer,
    ),
    (
        "descriptors::a_file_that_cannot_be_opened_for_emfile_is_503_and_a_close",
        descriptors::a_file_that_cannot_be_opened_for_emfile_is_503_and_a_close,
    ),
    (
        "metrics::metrics_are_served_on_a_second_listener",
        metrics::metrics_are_served_on_a_second_listener,
    ),
    (
        "memory::memory_returns_after_ten_thousand_connections_leave",
        memory::memory_returns_after_ten_thousand_connections_leave,
    ),
];

/// libtest's options that take a value: skipped with it.
const WITH_VALUE: [&str; 6] = [
    "--test-threads",
    "--skip",
    "--color",
    "--format",
    "--logfile",
    "-Z",
];

fn main() -> ExitCode {
    if let Some(code) = child::serve_if_child() {
        return code;
    }
    if let Some(code) = memory::clients_if_child() {
        return code;
    }
    let mut filters = Vec::new();
    let mut skips = Vec::new();
    let mut list = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--list" {
            list = true;
        } else if arg == "--skip" {
            skips.extend(args.next());
        } else if WITH_VALUE.contains(&arg.as_str()) {
            let _ = args.next();
        } else if !arg.starts_with('-') {
            filters.push(arg);
        }
    }
    let chosen: Vec<_> = TESTS
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .filter(|(name, _)| !skips.iter().any(|s| name.contains(s.as_str())))
        .collect();
    if list {
        for (name, _) in &chosen {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    println!("\nrunning {} tests", chosen.len());
    let started = Instant::now();
    let mut failed = Vec::new();
    for (name, test) in &chosen {
        let one = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(test));
        let verdict = if outcome.is_ok() { "ok" } else { "FAILED" };
        println!("test {name} ... {verdict} ({:.1?})", one.elapsed());
        if outcome.is_err() {
            failed.push(*name);
        }
    }
    let passed = chosen.len() - failed.len();
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {} failed; finished in {:.2?}\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        started.elapsed()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(101)
    }
}
