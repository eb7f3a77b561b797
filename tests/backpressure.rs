//! Backpressure: a server streams 64 MiB to a client that reads slowly,
//! writing only while the channel is writable. Every byte arrives in order,
//! and the bytes queued at the server never exceed the high water mark plus
//! one message. In every mode × trigger × allocator (in the worker-pool
//! mode the handler writes from a worker thread).

mod common;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Config, EventLog, connect};
use wharf::buf::ByteBuf;
use wharf::codec::LineCodec;
use wharf::{ChannelHandle, Context, Handler, Pipeline};

const TOTAL: usize = 64 << 20;
const CHUNK: usize = 64 << 10;
const PERIOD: usize = 251;
const HIGH: usize = 64 << 10;
const LOW: usize = 32 << 10;

/// The byte at stream offset `i` is `i % 251`; this holds one period more
/// than `len`, so any window of `len` bytes is a slice of it.
fn pattern_source(len: usize) -> Vec<u8> {
    (0..len + PERIOD).map(|i| (i % PERIOD) as u8).collect()
}

struct Streamer {
    source: Arc<Vec<u8>>,
    sent: usize,
    max_pending: Arc<AtomicUsize>,
}

impl Streamer {
    fn pump(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        while self.sent < TOTAL && ctx.is_writable() {
            let len = CHUNK.min(TOTAL - self.sent);
            let start = self.sent % PERIOD;
            let mut buf = ctx.allocator().buffer(len);
            buf.extend_from_slice(&self.source[start..start + len]);
            ctx.write(buf);
            self.sent += len;
            self.max_pending
                .fetch_max(ctx.pending_outbound_bytes(), Ordering::Relaxed);
            ctx.flush();
        }
        if self.sent == TOTAL {
            ctx.close();
        }
    }
}

impl Handler for Streamer {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        self.pump(ctx);
    }

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {}

    fn on_writability_changed(&mut self, ctx: &mut Context<'_, ByteBuf>, writable: bool) {
        if writable {
            self.pump(ctx);
        }
    }
}

#[test]
fn a_slow_reader_gets_every_byte_and_the_queue_stays_bounded() {
    let source = Arc::new(pattern_source(CHUNK));
    common::for_each(Config::all(), |config| {
        let max_pending = Arc::new(AtomicUsize::new(0));
        let (s, m) = (Arc::clone(&source), Arc::clone(&max_pending));
        let server = config
            .server()
            .water_mark(LOW, HIGH)
            .child_handler(move || {
                Pipeline::bytes(Streamer {
                    source: Arc::clone(&s),
                    sent: 0,
                    max_pending: Arc::clone(&m),
                })
            })
            .bind("127.0.0.1:0")
            .expect("bind");
        let mut client = connect(server.local_addr());
        let check = pattern_source(8 << 10);
        let mut buf = vec![0u8; 8 << 10];
        let mut received = 0;
        let started = Instant::now();
        loop {
            let n = client.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            let start = received % PERIOD;
            assert!(
                buf[..n] == check[start..start + n],
                "{config}: wrong bytes at offset {received}"
            );
            received += n;
            // A slow reader: a pause every 256 KiB.
            if received % (256 << 10) < n {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{config}: too slow"
            );
        }
        assert_eq!(received, TOTAL, "{config}: bytes received");
        let max = max_pending.load(Ordering::Relaxed);
        // One message past the high mark, plus its entry overhead.
        assert!(
            max <= HIGH + CHUNK + 64,
            "{config}: {max} bytes queued, more than {HIGH} + one {CHUNK}-byte message"
        );
        assert!(
            max > HIGH,
            "{config}: the queue never reached the high water mark ({max})"
        );
    });
}

/// Turns reading off after the first line, and hands out its handle.
struct Pauser {
    log: EventLog,
    handles: crossbeam_channel::Sender<ChannelHandle<ByteBuf>>,
}

impl Handler for Pauser {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
        let first = self.log.count("line ") == 0;
        self.log
            .push(format!("line {}", String::from_utf8_lossy(&msg)));
        if first {
            ctx.set_auto_read(false);
            let _ = self.handles.send(ctx.handle());
        }
    }
}

/// A server of `LineCodec` lines whose handler, made by `make`, records in
/// the returned log and sends its channel's handle to the returned receiver.
fn line_server<H>(
    config: Config,
    make: fn(EventLog, crossbeam_channel::Sender<ChannelHandle<ByteBuf>>) -> H,
) -> (
    wharf::Server,
    EventLog,
    crossbeam_channel::Receiver<ChannelHandle<ByteBuf>>,
)
where
    H: Handler<In = ByteBuf, Out = ByteBuf>,
{
    let log = EventLog::new();
    let (tx, rx) = crossbeam_channel::bounded(1);
    let server_log = log.clone();
    let server = config
        .server()
        .child_handler(move || {
            Pipeline::new(LineCodec::new(64), make(server_log.clone(), tx.clone()))
        })
        .bind("127.0.0.1:0")
        .expect("bind");
    (server, log, rx)
}

/// Lines decoded from one read are held, not delivered, once the handler
/// turns reading off in the middle of them; turning it back on (here from
/// a handle on another thread) delivers them in order, then reads on.
#[test]
fn turning_reading_off_holds_the_messages_already_decoded() {
    common::for_each(Config::all(), |config| {
        let (server, log, rx) = line_server(config, |log, handles| Pauser { log, handles });
        let mut client = connect(server.local_addr());
        let batch: String = (0..10).map(|i| format!("{i}\r\n")).collect();
        common::write_all(&mut client, batch.as_bytes());
        let handle = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the first line");
        // The window in which the other nine must not be delivered.
        let quiet = Instant::now() + Duration::from_millis(100);
        while Instant::now() < quiet {
            assert_eq!(
                log.count("line "),
                1,
                "{config}: delivered with reading off"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        handle.set_auto_read(true);
        common::write_all(&mut client, b"10\r\n11\r\n");
        common::wait_until(Duration::from_secs(5), "all twelve lines", || {
            log.count("line ") == 12
        });
        let expected: Vec<String> = (0..12).map(|i| format!("line {i}")).collect();
        assert_eq!(log.snapshot(), expected, "{config}: order");
    });
}

/// Writes `total` bytes of the pattern at once, then closes.
struct WriteAndClose {
    total: usize,
}

impl Handler for WriteAndClose {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        let source = pattern_source(CHUNK);
        let mut sent = 0;
        while sent < self.total {
            let len = CHUNK.min(self.total - sent);
            let start = sent % PERIOD;
            ctx.write(common::buf_of(ctx.allocator(), &source[start..start + len]));
            sent += len;
        }
        ctx.flush();
        ctx.close();
    }

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {}
}

/// The close timeout counts time without progress: a closing channel whose
/// peer keeps reading, slowly, for several timeouts gets all of its data;
/// a peer that stops reading is cut off about one timeout later.
#[test]
fn the_close_timeout_spares_slow_readers_and_cuts_off_stalled_ones() {
    // Long enough that a reader thread kept off the CPU for a while on a
    // busy 2-core machine still counts as reading.
    const TIMEOUT: Duration = Duration::from_millis(500);
    const TOTAL: usize = 8 << 20;
    common::for_each(Config::all(), |config| {
        let server = config
            .server()
            .close_timeout(TIMEOUT)
            .child_handler(|| Pipeline::bytes(WriteAndClose { total: TOTAL }))
            .bind("127.0.0.1:0")
            .expect("bind");

        // Slow but steady: about 1 s for the whole, pausing 10 ms per 64 KiB.
        let mut client = connect(server.local_addr());
        let check = pattern_source(CHUNK);
        let mut buf = vec![0u8; CHUNK];
        let (mut received, started) = (0, Instant::now());
        loop {
            let want = CHUNK - received % CHUNK;
            let n = client
                .read(&mut buf[..want])
                .expect("a slow reader is not reset");
            if n == 0 {
                break;
            }
            let start = received % PERIOD;
            assert!(buf[..n] == check[start..start + n], "{config}: bytes");
            received += n;
            if received % CHUNK == 0 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        assert_eq!(received, TOTAL, "{config}: a slow reader got everything");
        assert!(
            started.elapsed() > TIMEOUT * 2,
            "{config}: the reader was not slower than the timeout"
        );

        // Stalled: reads a little, then nothing; the server gives up.
        let mut client = connect(server.local_addr());
        client.read_exact(&mut buf).expect("the first bytes");
        let stalled = Instant::now();
        common::wait_until(
            Duration::from_secs(5),
            "the stalled channel to close",
            || server.connections() == 0,
        );
        let waited = stalled.elapsed();
        assert!(
            waited >= TIMEOUT - Duration::from_millis(50),
            "{config}: closed after {waited:?}, before the {TIMEOUT:?} timeout"
        );
        let (_, end) = common::read_until_closed(&mut client);
        assert!(end.is_err(), "{config}: a cut-off stream ends in a reset");
    });
}

/// Takes one line per "more" event: reading goes off after every line and
/// back on when a user event asks for the next one.
struct OneAtATime {
    log: EventLog,
    handles: crossbeam_channel::Sender<ChannelHandle<ByteBuf>>,
}

impl Handler for OneAtATime {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        let _ = self.handles.send(ctx.handle());
    }

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
        self.log
            .push(format!("line {}", String::from_utf8_lossy(&msg)));
        ctx.set_auto_read(false);
    }

    fn on_user_event(&mut self, ctx: &mut Context<'_, ByteBuf>, _event: wharf::UserEvent) {
        ctx.set_auto_read(true);
    }
}

/// A handler that turns reading on and, within the message that arrives,
/// off again gets exactly one message per cycle, also in the worker-pool
/// modes, where both changes travel to the loop and back.
#[test]
fn reading_turned_off_by_the_handler_within_a_batch_lets_exactly_one_through() {
    common::for_each(Config::all(), |config| {
        let (server, log, rx) = line_server(config, |log, handles| OneAtATime { log, handles });
        let mut client = connect(server.local_addr());
        let handle = rx.recv_timeout(Duration::from_secs(5)).expect("active");
        let batch: String = (0..8).map(|i| format!("{i}\r\n")).collect();
        common::write_all(&mut client, batch.as_bytes());
        for delivered in 1..=4 {
            if delivered > 1 {
                handle.fire_user_event(Box::new(()));
            }
            common::wait_until(Duration::from_secs(5), "the next line", || {
                log.count("line ") >= delivered
            });
            // The window in which no second line may slip through.
            let quiet = Instant::now() + Duration::from_millis(50);
            while Instant::now() < quiet {
                assert_eq!(
                    log.count("line "),
                    delivered,
                    "{config}: more than one line per resume: {:?}",
                    log.snapshot()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
}
