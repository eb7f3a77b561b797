//! Logging through the `log` facade with structured fields (issue 13 §4):
//! a logger of the program's own sees each record's fields, not only its
//! text: the channel a trace record is about, the limit and the count of
//! a connection-limit warning. In every mode × trigger.

mod common;

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use common::{Config, connect, for_each, wait_until};
use log::kv::{Key, Value, VisitSource};
use wharf::{Pipeline, RawBytes};

/// One record: its level, its message, its fields as `key=value`.
#[derive(Debug, Clone)]
struct Seen {
    level: log::Level,
    message: String,
    fields: Vec<String>,
}

static RECORDS: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

struct Capture;

struct Fields<'a>(&'a mut Vec<String>);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        self.0.push(format!("{key}={value}"));
        Ok(())
    }
}

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("wharf")
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut fields = Vec::new();
        let _ = record.key_values().visit(&mut Fields(&mut fields));
        RECORDS.lock().unwrap().push(Seen {
            level: record.level(),
            message: record.args().to_string(),
            fields,
        });
    }

    fn flush(&self) {}
}

fn records() -> Vec<Seen> {
    RECORDS.lock().unwrap().clone()
}

#[test]
fn records_carry_structured_fields() {
    log::set_logger(&Capture).expect("the test's logger");
    log::set_max_level(log::LevelFilter::Trace);
    for_each(Config::all(), |config| {
        RECORDS.lock().unwrap().clear();
        let server = config
            .server()
            .max_connections(1)
            .child_handler(|| Pipeline::new(RawBytes, wharf::transport::handlers::Echo))
            .bind("127.0.0.1:0")
            .expect("bind");
        let first = connect(server.local_addr());
        wait_until(Duration::from_secs(20), "the first channel opened", || {
            records().iter().any(|r| r.message.ends_with(" opened"))
        });
        let mut second = connect(server.local_addr());
        assert_eq!(second.read(&mut [0; 1]).expect("closed at once"), 0);
        drop(first);
        wait_until(Duration::from_secs(20), "the first channel closed", || {
            records().iter().any(|r| r.message.ends_with(" closed"))
        });
        let all = records();
        let opened = all.iter().find(|r| r.message.ends_with(" opened")).unwrap();
        assert_eq!(opened.level, log::Level::Trace);
        let channel = opened
            .fields
            .iter()
            .find(|f| f.starts_with("channel="))
            .unwrap_or_else(|| panic!("{config}: no channel field in {opened:?}"));
        assert!(
            opened.fields.iter().any(|f| f.starts_with("peer=")),
            "{opened:?}"
        );
        let closed = all.iter().find(|r| r.message.ends_with(" closed")).unwrap();
        assert!(
            closed.fields.contains(channel),
            "{config}: {closed:?} is {channel}"
        );
        let limit = all
            .iter()
            .find(|r| r.message.starts_with("connection limit"))
            .unwrap_or_else(|| panic!("{config}: no limit warning in {all:#?}"));
        assert_eq!(limit.level, log::Level::Warn);
        assert!(
            limit.fields.contains(&"limit=Some(1)".to_string()),
            "{limit:?}"
        );
        assert!(limit.fields.contains(&"refused=1".to_string()), "{limit:?}");
        common::wait_for_no_connections(&server);
    });
}
