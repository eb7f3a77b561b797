//! A small stderr logger for programs that have not picked one.
//!
//! wharf reports through the `log` facade, the one every Rust logger reads
//! (`env_logger`, `tracing` through `tracing-log`, ...), with structured
//! fields: `channel` (a connection's id), `event_loop`, `peer`,
//! `listener`, `error`, `backoff_ms`, `limit`, `refused`. The records are
//! accept back-offs, the connection limit, handler panics (`error`,
//! `warn`, `info`) and each channel opened and closed (`trace`, so a
//! connection's records can be followed by its `channel` field).
//!
//! It stays on `log` rather than `tracing`: a library should not choose
//! its users' subscriber, and a span per connection would cost an entry
//! and an enter/exit per callback on the hot path whether anyone listens
//! or not; a disabled `log` record costs one load of the level. The
//! `channel` field gives what a span's field would.
//!
//! [`init`] installs a logger that prints records to stderr, fields after
//! the message (`warn wharf_transport::reactor::acceptor: accept on ...
//! failed ... listener=Some(127.0.0.1:8080) backoff_ms=1000`), at the level
//! named by the `WHARF_LOG` environment variable (`error`, `warn`, `info`,
//! `debug`, `trace`; default `warn`). A program with its own logger does
//! not call it.

use std::io::Write;

use log::kv::{Key, Value, VisitSource};
use log::{Level, LevelFilter, Log, Metadata, Record};

/// Appends ` key=value` for each field of a record.
struct Fields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        use std::fmt::Write as _;
        let _ = write!(self.0, " {key}={value}");
        Ok(())
    }
}

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
        let mut fields = String::new();
        let _ = record.key_values().visit(&mut Fields(&mut fields));
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "{level} {}: {}{fields}",
            record.target(),
            record.args()
        );
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
