//! Backpressure by default (issue 8 §2, point 1): a peer that pipelines
//! requests and never reads must not make a channel queue replies without
//! bound. (Reported: a handler that answered each pipelined request with a
//! 1 MiB value pushed the server's RSS to 1.48 GB in 4 s.)
//!
//! The handler here is the naive one: it answers every line with a large
//! buffer and flushes, and never turns reading off itself. The channel must
//! stop reading while it is unwritable and resume below the low water
//! mark, so the bytes queued stay under the high water mark (64 KiB by
//! default) plus one reply plus its per-message overhead:
//!
//! * a client pipelines for 4 s and never reads: every mode × trigger ×
//!   allocator (the worker-pool modes included, where the handler runs on a
//!   worker), side by side; a handler stops replying once its queue passes
//!   64 MiB, so the current unbounded behaviour fails fast without putting
//!   the machine at risk;
//! * a client sends 16 requests in one segment and reads only later: the
//!   queue stays bounded, and once the client reads, reading resumes and
//!   every request is answered;
//! * the same holds for a client channel (`Bootstrap`) whose peer pipelines;
//! * new API: `backpressure(false)` opts out (the channel keeps reading
//!   while unwritable).
//!
//! Both ends use small socket buffers, so the kernel takes little of the
//! replies and the queue shows what the channel holds.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Config;
use wharf::buf::ByteBuf;
use wharf::codec::LineCodec;
use wharf::{Bootstrap, Context, EventLoopGroup, Handler, Pipeline, SocketOption, Trigger};

/// The default high water mark.
const HIGH: usize = 64 << 10;
/// The largest reply.
const REPLY: usize = 1 << 20;
/// The per-message overhead the queue counts, with room to spare.
const OVERHEAD: usize = 1 << 10;
/// How long a client pipelines.
const PIPELINING: Duration = Duration::from_secs(4);
/// Socket buffers of both ends.
const SOCKET_BUFFER: usize = 16 << 10;

static REPLY_BYTES: [u8; REPLY] = [b'v'; REPLY];

#[derive(Default)]
struct Seen {
    /// The most bytes queued after any write.
    max_pending: AtomicUsize,
    replies: AtomicU64,
    /// The queue passed the handler's cap; it stopped replying.
    overflow: AtomicBool,
}

impl Seen {
    /// A copy of the counters now: the handler may still be running.
    fn frozen(&self) -> Seen {
        let (overflow, max, replies) = self.snapshot();
        Seen {
            max_pending: AtomicUsize::new(max),
            replies: AtomicU64::new(replies),
            overflow: AtomicBool::new(overflow),
        }
    }

    /// One snapshot: the handler may still be running.
    fn snapshot(&self) -> (bool, usize, u64) {
        (
            self.overflow.load(Ordering::SeqCst),
            self.max_pending.load(Ordering::SeqCst),
            self.replies.load(Ordering::SeqCst),
        )
    }
}

/// Answers every line with `reply` bytes, flushing each; no backpressure
/// of its own. Stops replying once more than `cap` bytes are queued.
struct BigValues {
    reply: usize,
    cap: usize,
    seen: Arc<Seen>,
}

impl BigValues {
    /// The pipeline: lines as long as a reply, so the codec encodes what it
    /// could decode.
    fn pipeline(reply: usize, cap: usize, seen: &Arc<Seen>) -> Pipeline<LineCodec, BigValues> {
        Pipeline::new(
            LineCodec::new(2 * REPLY),
            BigValues {
                reply,
                cap,
                seen: Arc::clone(seen),
            },
        )
    }
}

impl Handler for BigValues {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, _request: ByteBuf) {
        if self.seen.overflow.load(Ordering::SeqCst) {
            return;
        }
        // Counted before it is sent: the client may read a reply before
        // this call returns.
        self.seen.replies.fetch_add(1, Ordering::SeqCst);
        let mut value = ctx.allocator().buffer(self.reply);
        value.extend_from_slice(&REPLY_BYTES[..self.reply]);
        ctx.write(value);
        ctx.flush();
        let pending = ctx.pending_outbound_bytes();
        self.seen.max_pending.fetch_max(pending, Ordering::SeqCst);
        if pending > self.cap {
            self.seen.overflow.store(true, Ordering::SeqCst);
        }
    }
}

/// A client with a small receive buffer (set before connecting, so the
/// window is small from the start).
fn connect_with_small_window(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("client socket");
    socket
        .set_recv_buffer_size(SOCKET_BUFFER)
        .expect("SO_RCVBUF");
    socket.connect(&addr.into()).expect("connect to the server");
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream
}

/// Writes pipelined requests to `peer` for `PIPELINING` or until `stop`
/// says so, never reading; returns the requests sent.
fn pipeline_requests(peer: &mut TcpStream, stop: &AtomicBool) -> usize {
    // Short write timeouts: once the other side stops reading, the writes
    // block, and the loop must still see the clock.
    peer.set_write_timeout(Some(Duration::from_millis(50)))
        .expect("write timeout");
    let requests = "GET k\r\n".repeat(256);
    let started = Instant::now();
    let mut sent = 0usize;
    while started.elapsed() < PIPELINING && !stop.load(Ordering::SeqCst) {
        match peer.write(requests.as_bytes()) {
            Ok(n) => sent += n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => panic!("the pipelining peer's write failed: {e}"),
        }
    }
    sent / 7
}

/// Checks the bound on what was queued.
fn assert_bounded(what: &str, seen: &Seen, reply: usize, cap: usize, requests: usize) {
    let (overflow, max, replies) = seen.snapshot();
    assert!(
        !overflow,
        "{what}: more than {cap} bytes were queued ({max} after {replies} replies to \
         {requests} requests): no backpressure"
    );
    assert!(
        max <= HIGH + reply + OVERHEAD,
        "{what}: up to {max} bytes were queued, more than the {HIGH}-byte high water mark \
         plus one {reply}-byte reply ({replies} replies to {requests} requests)"
    );
    assert!(
        max > HIGH,
        "{what}: the queue never passed the high water mark ({max} bytes after {replies} \
         replies to {requests} requests): the test did not load the channel"
    );
}

#[test]
fn a_client_that_never_reads_cannot_grow_the_servers_queue() {
    const CAP: usize = 64 << 20;
    common::concurrent::for_each_concurrently(Config::all(), |config| {
        let seen = Arc::new(Seen::default());
        let server_seen = Arc::clone(&seen);
        let server = config
            .server()
            .option(SocketOption::SendBuffer(SOCKET_BUFFER))
            .child_handler(move || BigValues::pipeline(REPLY, CAP, &server_seen))
            .bind("127.0.0.1:0")
            .expect("bind");
        let mut client = connect_with_small_window(server.local_addr());
        let requests = pipeline_requests(&mut client, &seen.overflow);
        let snapshot = seen.frozen();
        // A reset (unread replies) ends the connection at once.
        drop(client);
        common::wait_for_no_connections(&server);
        assert_bounded(&config.to_string(), &snapshot, REPLY, CAP, requests);
    });
}

#[test]
fn reading_resumes_below_the_low_water_mark_and_every_request_is_answered() {
    const SMALLER: usize = 256 << 10;
    const REQUESTS: usize = 16;
    const CAP: usize = 64 << 20;
    common::concurrent::for_each_concurrently(Config::all(), |config| {
        let seen = Arc::new(Seen::default());
        let server_seen = Arc::clone(&seen);
        let server = config
            .server()
            .option(SocketOption::SendBuffer(SOCKET_BUFFER))
            .child_handler(move || BigValues::pipeline(SMALLER, CAP, &server_seen))
            .bind("127.0.0.1:0")
            .expect("bind");
        let mut client = connect_with_small_window(server.local_addr());
        // All requests in one segment: the channel decodes them from one
        // read, and must hold those it cannot answer yet.
        let requests = "GET k\r\n".repeat(REQUESTS);
        client
            .write_all(requests.as_bytes())
            .expect("send the requests");
        // Not reading yet: wait until the server has answered as far as it
        // may (one reply past the high water mark, with backpressure).
        common::wait_until(Duration::from_secs(5), "a first reply", || {
            seen.replies.load(Ordering::SeqCst) > 0
        });
        let (_, max_before_reading, _) = seen.snapshot();
        // Now read everything: reading resumes, every request is answered.
        let expected = REQUESTS * (SMALLER + 2);
        let mut answers = vec![0u8; expected];
        let read = client.read_exact(&mut answers);
        let (overflow, max, replies) = seen.snapshot();
        drop(client);
        common::wait_for_no_connections(&server);
        assert!(
            read.is_ok() && replies == REQUESTS as u64,
            "{config}: {replies} of {REQUESTS} requests answered, reading the answers: \
             {read:?}"
        );
        assert!(
            !overflow && max <= HIGH + SMALLER + OVERHEAD,
            "{config}: up to {max} bytes were queued ({max_before_reading} before the client \
             read anything), more than the {HIGH}-byte high water mark plus one \
             {SMALLER}-byte reply"
        );
    });
}

/// A client channel whose peer pipelines requests and never reads.
fn client_channel_pipelined(trigger: Trigger) {
    const CAP: usize = 16 << 20;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the peer");
    let group = EventLoopGroup::new(1, trigger).expect("client group");
    let seen = Arc::new(Seen::default());
    let _channel = Bootstrap::new(&group)
        .option(SocketOption::SendBuffer(SOCKET_BUFFER))
        .connect(
            listener.local_addr().expect("address"),
            BigValues::pipeline(REPLY, CAP, &seen),
        )
        .expect("connect");
    let (peer, _) = listener.accept().expect("accept the client");
    let socket = socket2::Socket::from(peer);
    socket
        .set_recv_buffer_size(SOCKET_BUFFER)
        .expect("SO_RCVBUF");
    let mut peer: TcpStream = socket.into();
    let requests = pipeline_requests(&mut peer, &seen.overflow);
    let snapshot = seen.frozen();
    drop(peer);
    common::wait_until(
        Duration::from_secs(5),
        "the client channel to close",
        || group.connections() == 0,
    );
    assert_bounded(
        &format!("client channel, {trigger:?}"),
        &snapshot,
        REPLY,
        CAP,
        requests,
    );
}

#[test]
fn a_client_channel_has_backpressure_by_default() {
    let failures: Vec<String> = std::thread::scope(|scope| {
        let running: Vec<_> = [Trigger::Edge, Trigger::Level]
            .map(|trigger| scope.spawn(move || client_channel_pipelined(trigger)))
            .into_iter()
            .collect();
        running
            .into_iter()
            .filter_map(|t| t.join().err())
            .map(|panic| common::concurrent::panic_message(&*panic))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The opt-out (new API).
mod new_api {
    use super::*;

    #[test]
    fn backpressure_false_keeps_reading_while_unwritable() {
        const CAP: usize = 8 << 20;
        common::concurrent::for_each_concurrently(Config::all(), |config| {
            let seen = Arc::new(Seen::default());
            let server_seen = Arc::clone(&seen);
            let server = config
                .server()
                .backpressure(false)
                .option(SocketOption::SendBuffer(SOCKET_BUFFER))
                .child_handler(move || BigValues::pipeline(REPLY, CAP, &server_seen))
                .bind("127.0.0.1:0")
                .expect("bind");
            let mut client = connect_with_small_window(server.local_addr());
            let _ = pipeline_requests(&mut client, &seen.overflow);
            let (overflow, max, replies) = seen.snapshot();
            drop(client);
            common::wait_for_no_connections(&server);
            assert!(
                overflow,
                "{config}: with backpressure(false) the server queued at most {max} bytes \
                 ({replies} replies): it stopped reading by itself"
            );
        });
    }
}
