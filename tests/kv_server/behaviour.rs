//! The server's behaviour over loopback, in every reactor mode × trigger ×
//! allocator, side by side.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{Client, request};
use crate::common::{self, Config};
use crate::server;
use crate::store::Store;

/// A server of `config` over a store of 4 shards (so that the sweep
/// visits every shard within 400 ms).
fn start(config: Config) -> (wharf::Server, SocketAddr) {
    let store = Arc::new(Store::new(4));
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = server::bind(config.server(), addr, store).expect("bind");
    let addr = server.local_addr();
    (server, addr)
}

#[test]
fn every_mode_serves_commands_pipelines_quits_and_refuses() {
    common::concurrent::for_each_concurrently(Config::all(), |config| {
        let (server, addr) = start(config);
        commands_and_replies(addr);
        pipelined_commands_are_answered_in_order(addr);
        quit_answers_then_closes_and_runs_nothing_after(addr);
        a_protocol_error_is_answered_then_closed(addr);
        expired_keys_are_swept_without_being_read(addr);
        common::wait_for_no_connections(&server);
    });
}

fn commands_and_replies(addr: SocketAddr) {
    let mut c = Client::connect(addr);
    assert_eq!(c.call(&["PING"]), "+PONG\r\n");
    assert_eq!(c.call(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(c.call(&["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(c.call(&["INCR", "n"]), ":1\r\n");
    assert_eq!(c.call(&["INCRBY", "n", "41"]), ":42\r\n");
    assert_eq!(
        c.call(&["MGET", "k", "nope", "n"]),
        "*3\r\n$1\r\nv\r\n$-1\r\n$2\r\n42\r\n"
    );
    assert_eq!(c.call(&["DEL", "k", "n", "nope"]), ":2\r\n");
    assert_eq!(
        c.call(&["GET"]),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    // Inline commands, as typed into telnet.
    c.send(b"SET inline \"a b\"\r\nGET inline\r\n");
    assert_eq!(c.reply().unwrap(), b"+OK\r\n");
    assert_eq!(c.reply().unwrap(), b"$3\r\na b\r\n");
    // A value larger than the copy limit and than one read.
    let big = vec![b'x'; 300_000];
    c.send(&request(&[b"SET", b"big", &big]));
    assert_eq!(c.reply().unwrap(), b"+OK\r\n");
    c.send(&request(&[b"GET", b"big"]));
    let reply = c.reply().unwrap();
    assert_eq!(&reply[..10], b"$300000\r\nx");
    assert_eq!(reply.len(), 300_000 + 11);
    assert_eq!(c.call(&["FLUSHALL"]), "+OK\r\n");
}

fn pipelined_commands_are_answered_in_order(addr: SocketAddr) {
    let mut c = Client::connect(addr);
    let mut batch = Vec::new();
    for i in 0..1000 {
        batch.extend_from_slice(&request(&[b"INCR", b"seq"]));
        if i % 10 == 0 {
            batch.extend_from_slice(format!("ECHO {i}\r\n").as_bytes());
        }
    }
    c.send(&batch);
    for i in 0..1000 {
        assert_eq!(c.reply().unwrap(), format!(":{}\r\n", i + 1).into_bytes());
        if i % 10 == 0 {
            let echo = format!("${}\r\n{i}\r\n", i.to_string().len());
            assert_eq!(c.reply().unwrap(), echo.into_bytes());
        }
    }
    assert_eq!(c.call(&["DEL", "seq"]), ":1\r\n");
}

fn quit_answers_then_closes_and_runs_nothing_after(addr: SocketAddr) {
    let mut c = Client::connect(addr);
    let mut batch = request(&[b"SET", b"q", b"before"]);
    batch.extend_from_slice(&request(&[b"QUIT"]));
    batch.extend_from_slice(&request(&[b"SET", b"q", b"after"]));
    batch.extend_from_slice(b"PING\r\n");
    c.send(&batch);
    assert_eq!(c.rest(), b"+OK\r\n+OK\r\n");
    let mut check = Client::connect(addr);
    assert_eq!(check.call(&["GET", "q"]), "$6\r\nbefore\r\n");
    assert_eq!(check.call(&["DEL", "q"]), ":1\r\n");
}

fn a_protocol_error_is_answered_then_closed(addr: SocketAddr) {
    for (data, reply) in [
        (
            &b"PING\r\n*1\r\n$x\r\n"[..],
            &b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"[..],
        ),
        (
            b"*a\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\nx\r\n",
            b"-ERR Protocol error: expected '$', got 'x'\r\n",
        ),
        (
            b"ECHO \"a\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ] {
        let mut c = Client::connect(addr);
        c.send(data);
        assert_eq!(
            String::from_utf8_lossy(&c.rest()),
            String::from_utf8_lossy(reply)
        );
    }
    // A line that never ends: refused at 64 KiB, answered, closed.
    let mut c = Client::connect(addr);
    c.send(&vec![b'a'; (64 << 10) + 100]);
    assert_eq!(c.rest(), b"-ERR Protocol error: too big inline request\r\n");
}

fn expired_keys_are_swept_without_being_read(addr: SocketAddr) {
    let mut c = Client::connect(addr);
    assert_eq!(c.call(&["SET", "e1", "v", "PX", "20"]), "+OK\r\n");
    assert_eq!(c.call(&["MSET", "e2", "v", "e3", "v"]), "+OK\r\n");
    assert_eq!(c.call(&["EXPIRE", "e2", "0"]), ":1\r\n");
    assert!(
        c.call(&["PEXPIRE", "e3", "20"])
            .starts_with("-ERR unknown command")
    );
    assert_eq!(c.call(&["SET", "e3", "v", "PX", "20"]), "+OK\r\n");
    // DBSIZE counts keys not yet removed: it drops once the sweep ran.
    common::wait_until(
        Duration::from_secs(5),
        "the sweep to remove e1 and e3",
        || c.call(&["DBSIZE"]) == ":0\r\n",
    );
}
