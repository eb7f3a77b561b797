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

use common::{Config, connect};
use wharf::buf::ByteBuf;
use wharf::{Context, Handler, Pipeline};

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
