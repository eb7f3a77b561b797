//! Running configurations side by side, and a gate a handler can wait on.
//!
//! Some behaviour tests need seconds per configuration (a window in which
//! something must not happen, a timeout that must pass); run one after the
//! other, twenty of them would take minutes. These helpers run them in
//! threads and report every configuration that failed, not only the first.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::Config;

/// The message of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}

/// Runs `test` in every configuration at once, one thread each, and fails
/// with the list of the configurations that failed and why.
pub fn for_each_concurrently(configs: Vec<Config>, test: impl Fn(Config) + Sync) {
    let total = configs.len();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let test = &test;
        let running: Vec<_> = configs
            .into_iter()
            .map(|config| {
                let thread = std::thread::Builder::new()
                    .name(config.to_string())
                    .spawn_scoped(scope, move || {
                        std::panic::catch_unwind(AssertUnwindSafe(|| test(config)))
                    })
                    .expect("spawn a configuration's thread");
                (config, thread)
            })
            .collect();
        running
            .into_iter()
            .filter_map(|(config, thread)| match thread.join() {
                Ok(Ok(())) => None,
                Ok(Err(panic)) | Err(panic) => Some(labelled(config, &*panic)),
            })
            .collect()
    });
    report(failures, total);
}

/// Runs `test` in every configuration, one after the other, and fails with
/// the list of every configuration that failed and why (where
/// [`for_each`](super::for_each) stops at the first).
pub fn for_each_reporting_all(configs: Vec<Config>, test: impl Fn(Config)) {
    let total = configs.len();
    let failures: Vec<String> = configs
        .into_iter()
        .filter_map(|config| {
            std::panic::catch_unwind(AssertUnwindSafe(|| test(config)))
                .err()
                .map(|panic| labelled(config, &*panic))
        })
        .collect();
    report(failures, total);
}

/// A failure's message, starting with its configuration (once).
fn labelled(config: Config, panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic_message(panic);
    let label = config.to_string();
    if message.starts_with(&label) {
        message
    } else {
        format!("{label}: {message}")
    }
}

/// Fails with the list of failures, if there is any.
fn report(failures: Vec<String>, total: usize) {
    if !failures.is_empty() {
        panic!(
            "{} of {total} configurations failed:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
}

/// A gate that handlers wait at until the test opens it. A waiter gives up
/// after its own limit, so a test that fails before opening the gate never
/// leaves a loop or worker thread blocked for good.
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Lets every waiter through, now and later.
    pub fn open(&self) {
        let (open, changed) = &*self.0;
        *open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        changed.notify_all();
    }

    /// Waits until the gate opens, or `limit` passes; returns whether it
    /// opened.
    pub fn wait(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let (open, changed) = &*self.0;
        let mut is_open = open.lock().unwrap_or_else(|e| e.into_inner());
        while !*is_open {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            is_open = changed
                .wait_timeout(is_open, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

/// Opens the gate when dropped: a test that panics while holding it still
/// releases the threads waiting at it.
#[derive(Debug)]
pub struct OpenOnDrop(pub Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}
