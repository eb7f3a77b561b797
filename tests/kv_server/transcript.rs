//! A scripted session, error cases included, compared with Redis 7.
//!
//! `transcript/session.redis` holds one command a line, in `redis-cli`'s
//! syntax (Redis's `sdssplitargs` quoting). What Redis 7 answered to it is
//! checked in, so the comparison needs no Redis:
//!
//! * `redis7.resp`: every reply, byte for byte, as sent on the wire;
//! * `redis7-cli.txt`: what `redis-cli --no-raw` printed for the script.
//!
//! `WHARF_RECORD_REDIS=1` (see `scripts/record_kv_transcript.sh`) records
//! both again from a `redis-server` started on a free port. The reply test
//! always runs; the `redis-cli` test runs when `redis-cli` is installed and
//! says it skipped otherwise.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use wharf::codec::resp::split_args;
use wharf::{ReactorMode, Trigger};

use crate::client::{Client, reply_len, request};
use crate::common::{self, Config};
use crate::server;
use crate::store::Store;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kv_server/transcript")
}

/// The script's commands, as `redis-cli` splits them.
fn script() -> Vec<Vec<Vec<u8>>> {
    let text = std::fs::read(dir().join("session.redis")).expect("the script");
    text.split(|&b| b == b'\n')
        .filter_map(split_args)
        .filter(|args| !args.is_empty())
        .collect()
}

/// Runs the script against `addr`, one command at a time: the replies.
fn run_script(addr: SocketAddr) -> Vec<Vec<u8>> {
    let mut client = Client::connect(addr);
    script()
        .iter()
        .map(|args| {
            let args: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
            client.send(&request(&args));
            client.reply().expect("a reply")
        })
        .collect()
}

/// Whether `program` can be run.
fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A redis-server of its own on a free port, stopped on drop.
struct Redis {
    child: Child,
    addr: SocketAddr,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        common::wait_until(Duration::from_secs(10), "redis-server to listen", || {
            TcpStream::connect(addr).is_ok()
        });
        Redis { child, addr }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `redis-cli --no-raw` prints for the script against `addr`.
fn redis_cli(addr: SocketAddr) -> Vec<u8> {
    let mut child = Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &addr.port().to_string(),
            "--no-raw",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start redis-cli");
    let script = std::fs::read(dir().join("session.redis")).expect("the script");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&script)
        .expect("feed redis-cli");
    let output = child.wait_with_output().expect("redis-cli's output");
    assert!(output.status.success(), "redis-cli failed: {output:?}");
    output.stdout
}

/// A server in the simplest configuration.
fn start() -> (wharf::Server, SocketAddr) {
    let config = Config {
        mode: ReactorMode::Single,
        trigger: Trigger::Edge,
        pooled: true,
    };
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = server::bind(config.server(), addr, Arc::new(Store::new(4))).expect("bind");
    let addr = server.local_addr();
    (server, addr)
}

/// Records Redis's answers when asked to (and Redis is there).
fn record_if_asked() {
    if std::env::var_os("WHARF_RECORD_REDIS").is_none() {
        return;
    }
    assert!(installed("redis-server"), "recording needs redis-server");
    let redis = Redis::start();
    let replies = run_script(redis.addr).concat();
    std::fs::write(dir().join("redis7.resp"), replies).expect("write redis7.resp");
    if installed("redis-cli") {
        std::fs::write(dir().join("redis7-cli.txt"), redis_cli(redis.addr))
            .expect("write redis7-cli.txt");
    }
    eprintln!("recorded Redis's answers in {}", dir().display());
}

#[test]
fn every_reply_is_the_one_redis_sent() {
    record_if_asked();
    let recorded = std::fs::read(dir().join("redis7.resp")).expect("redis7.resp");
    let mut expected = Vec::new();
    let mut rest = &recorded[..];
    while !rest.is_empty() {
        let n = reply_len(rest).expect("a whole reply in the recording");
        expected.push(&rest[..n]);
        rest = &rest[n..];
    }
    let (server, addr) = start();
    let got = run_script(addr);
    let script = script();
    assert_eq!(got.len(), expected.len(), "replies vs recorded replies");
    for ((command, got), expected) in script.iter().zip(&got).zip(&expected) {
        assert_eq!(
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(expected),
            "after {:?}",
            command
                .iter()
                .map(|a| String::from_utf8_lossy(a))
                .collect::<Vec<_>>()
        );
    }
    common::wait_for_no_connections(&server);
}

#[test]
fn redis_cli_prints_what_it_printed_for_redis() {
    if !installed("redis-cli") {
        eprintln!("redis-cli is not installed: skipping the redis-cli comparison");
        return;
    }
    record_if_asked();
    let expected = std::fs::read(dir().join("redis7-cli.txt")).expect("redis7-cli.txt");
    let (server, addr) = start();
    let got = redis_cli(addr);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected)
    );
    common::wait_for_no_connections(&server);
}
