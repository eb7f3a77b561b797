//! The framework's own metrics (issue 13 §4), in every mode × trigger ×
//! allocator over loopback: what the counters say after a known exchange
//! (connections opened, closed and refused, messages decoded, bytes both
//! ways), that the histograms record, that the gauges come back to zero,
//! and that backpressure is counted when a peer stops reading.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{Config, connect, for_each_parallel, wait_until};
use wharf::buf::ByteBuf;
use wharf::codec::LineCodec;
use wharf::{Context, Handler, Pipeline, ReactorMode, Server, SocketOption};

const LIMIT: Duration = Duration::from_secs(20);

/// Sends every line back.
struct EchoLines;

impl Handler for EchoLines {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, line: ByteBuf) {
        ctx.write(line);
    }

    fn on_read_complete(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        ctx.flush();
    }
}

/// Answers every line with `size` bytes.
struct Big(usize);

impl Handler for Big {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, _line: ByteBuf) {
        let mut reply = ctx.allocator().buffer(self.0);
        bytes::BufMut::put_bytes(&mut reply, b'x', self.0 - 2);
        ctx.write_and_flush(reply);
    }
}

/// Event loops a mode runs (with the multi-reactor's main loop).
fn loops(mode: ReactorMode) -> usize {
    mode.io_loops() + usize::from(matches!(mode, ReactorMode::MultiReactor { .. }))
}

fn closed(server: &Server) -> u64 {
    server.metrics().total().stats.connections_closed
}

#[test]
fn counters_histograms_and_gauges_follow_a_known_exchange() {
    for_each_parallel(Config::all(), |config| {
        let server = config
            .server()
            .handler_timing(1)
            .child_handler(|| Pipeline::new(LineCodec::new(1024), EchoLines))
            .bind("127.0.0.1:0")
            .expect("bind");
        let (clients, lines) = (3u64, 10u64);
        let mut sent = 0;
        for c in 0..clients {
            let mut stream = connect(server.local_addr());
            let batch: String = (0..lines).map(|i| format!("line {c} {i}\r\n")).collect();
            stream.write_all(batch.as_bytes()).expect("send");
            let mut echoed = vec![0; batch.len()];
            stream.read_exact(&mut echoed).expect("the echo");
            assert_eq!(echoed, batch.as_bytes());
            sent += batch.len() as u64;
        }
        wait_until(LIMIT, "every connection closed", || {
            closed(&server) == clients && server.connections() == 0
        });
        let m = server.metrics();
        assert_eq!(m.mode, config.mode);
        assert_eq!(m.trigger, config.trigger);
        assert_eq!(m.connections, 0);
        assert_eq!(m.loops.len(), loops(config.mode));
        assert_eq!(m.workers.len(), config.mode.workers());
        let t = m.total();
        assert_eq!(t.id, None);
        assert_eq!(t.stats.accepts, clients);
        assert_eq!(t.stats.connections_opened, clients);
        assert_eq!(t.stats.connections_refused, 0);
        assert_eq!(t.stats.messages_decoded, clients * lines);
        assert_eq!(t.stats.bytes_read, sent);
        assert_eq!(t.stats.bytes_written, sent);
        assert_eq!(t.connections, 0);
        assert_eq!(t.outbound_queued, 0, "every queued byte was sent");
        // One histogram entry per poll and per iteration (a snapshot may
        // fall between a poll's count and its histogram's, one per loop).
        let slack = m.loops.len() as u64;
        assert!(t.events_per_poll.count() + slack >= t.stats.polls, "{t:?}");
        assert!(t.events_per_poll.sum() + slack * 1024 >= t.stats.events);
        assert!(t.loop_lag.count() + slack >= t.stats.polls);
        assert!(t.loop_lag.count() > 0);
        if config.mode.workers() == 0 {
            assert!(t.handler_time.count() >= clients * 2, "{t:?}");
        } else {
            assert!(m.worker_handler_time().count() > 0);
            assert!(m.workers.iter().map(|w| w.tasks).sum::<u64>() >= clients * 2);
        }
        let ids: std::collections::BTreeSet<_> = m.loops.iter().map(|l| l.id).collect();
        assert_eq!(ids.len(), m.loops.len(), "one entry per loop");
        // A handle taken from another thread sees the same.
        let handle = server.metrics_handle();
        let seen = std::thread::spawn(move || handle.snapshot().total().stats.messages_decoded)
            .join()
            .expect("the snapshot thread");
        assert_eq!(seen, clients * lines);
    });
}

#[test]
fn connections_over_the_limit_are_counted_as_refused() {
    for_each_parallel(Config::all(), |config| {
        let server = config
            .server()
            .max_connections(1)
            .child_handler(|| Pipeline::new(LineCodec::new(1024), EchoLines))
            .bind("127.0.0.1:0")
            .expect("bind");
        let _first = connect(server.local_addr());
        wait_until(LIMIT, "the first connection", || server.connections() == 1);
        let mut second = connect(server.local_addr());
        let mut buf = [0u8; 16];
        assert_eq!(second.read(&mut buf).expect("an orderly close"), 0);
        wait_until(LIMIT, "the refusal counted", || {
            let t = server.metrics().total();
            // The first one is registered on its loop after it is
            // admitted (a hand-off to a sub-reactor takes a moment).
            t.stats.connections_refused == 1 && t.stats.connections_opened == 1
        });
        let t = server.metrics().total();
        assert_eq!(t.stats.accepts, 2);
        assert_eq!(t.stats.connections_opened, 1);
        assert_eq!(t.connections, 1);
    });
}

/// A client that reads only when told, with a small receive window.
fn small_window(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("client socket");
    socket.set_recv_buffer_size(16 << 10).expect("SO_RCVBUF");
    socket.connect(&addr.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(LIMIT)).expect("timeout");
    stream
}

#[test]
fn a_reader_that_stops_shows_as_queued_bytes_flips_and_a_pause() {
    const REPLY: usize = 1 << 20;
    for_each_parallel(Config::all(), |config| {
        let server = config
            .server()
            .option(SocketOption::SendBuffer(16 << 10))
            .child_handler(|| Pipeline::new(LineCodec::new(REPLY), Big(REPLY)))
            .bind("127.0.0.1:0")
            .expect("bind");
        let mut client = small_window(server.local_addr());
        client.write_all(b"go\r\n").expect("request");
        wait_until(LIMIT, "the reply to back up", || {
            let t = server.metrics().total();
            t.outbound_queued > 64 << 10
                && t.stats.writability_flips >= 1
                && t.stats.backpressure_pauses >= 1
        });
        let mut reply = vec![0; REPLY];
        client.read_exact(&mut reply).expect("the whole reply");
        assert!(reply[..REPLY - 2].iter().all(|&b| b == b'x'));
        wait_until(
            LIMIT,
            "the queue to drain and the flag to flip back",
            || {
                let t = server.metrics().total();
                t.outbound_queued == 0 && t.stats.writability_flips >= 2
            },
        );
        let t = server.metrics().total();
        assert_eq!(t.stats.writability_flips % 2, 0, "{:?}", t.stats);
        assert_eq!(t.stats.backpressure_pauses, t.stats.writability_flips / 2);
    });
}
