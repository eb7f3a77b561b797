//! A small stderr logger for programs that have not picked one.
//!
//! wharf reports through the `log` facade (accept back-offs, handler
//! panics). [`init`] installs a logger that prints those records to stderr,
//! at the level named by the `WHARF_LOG` environment variable (`error`,
//! `warn`, `info`, `debug`, `trace`; default `warn`). A program with its own
//! logger does not call it.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    level: LevelFilter,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{level} {}: {}", record.target(), record.args());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Installs the stderr logger (once; later calls do nothing).
pub fn init() {
    let level = std::env::var("WHARF_LOG")
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::Warn);
    let logger = Box::leak(Box::new(StderrLogger { level }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}
