//! Worker-pool queues are bounded (issue 8 §2, point 2), in the modes with
//! workers (pool, multi-reactor with workers) × trigger × allocator:
//!
//! * a saturated worker pauses reading on its connections' loop: while a
//!   handler is stuck (here: its first `on_read` waits at a gate the test
//!   holds), the loop must stop reading that connection after a bounded
//!   amount, instead of reading everything the peer sends into the
//!   worker's unbounded queue; once the handler moves on, every line
//!   arrives, in order;
//! * `set_auto_read(false)` called on a worker takes effect on the loop
//!   before its next read: a handler that turns reading off and then, still
//!   inside `on_read`, waits, must not have the next message read for it
//!   while it waits.
//!
//! The configurations run side by side.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Config;
use common::concurrent::{Gate, OpenOnDrop, for_each_concurrently};
use crossbeam_channel::{Sender, bounded};
use wharf::buf::ByteBuf;
use wharf::codec::LineCodec;
use wharf::{Context, Handler, Pipeline};

/// The configurations whose handlers run on worker threads.
fn worker_configs() -> Vec<Config> {
    Config::all()
        .into_iter()
        .filter(|c| c.mode.workers() > 0)
        .collect()
}

/// Lines of this many bytes, `\r\n` included.
const LINE: usize = 64;
/// What the client sends: 8 MiB of lines.
const TOTAL: usize = 8 << 20;
const LINES: usize = TOTAL / LINE;
/// The most the loop may read for a connection whose handler is stuck.
const READ_BOUND: u64 = 1 << 20;
/// How long a stuck handler is watched.
const WINDOW: Duration = Duration::from_millis(500);
/// A handler never waits at a gate longer than this.
const GATE_LIMIT: Duration = Duration::from_secs(20);

/// Line `i`: its number, padded to `LINE` bytes.
fn line(i: usize) -> String {
    format!("{i:010} {}\r\n", "x".repeat(LINE - 13))
}

/// Waits at the gate in its first `on_read`, then checks that the lines
/// come in order.
struct Stuck {
    gate: Gate,
    entered: Sender<()>,
    received: Arc<AtomicUsize>,
    disorder: Arc<Mutex<Option<String>>>,
}

impl Handler for Stuck {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
        let n = self.received.load(Ordering::Relaxed);
        if n == 0 {
            let _ = self.entered.send(());
            self.gate.wait(GATE_LIMIT);
        }
        let number = std::str::from_utf8(&msg[..10])
            .ok()
            .and_then(|s| s.parse::<usize>().ok());
        if number != Some(n) {
            let mut disorder = self.disorder.lock().unwrap_or_else(|e| e.into_inner());
            disorder.get_or_insert_with(|| {
                format!(
                    "line #{n} was {:?}",
                    String::from_utf8_lossy(&msg[..msg.len().min(16)])
                )
            });
        }
        self.received.store(n + 1, Ordering::Relaxed);
    }
}

#[test]
fn a_saturated_worker_pauses_reading_on_the_loop() {
    for_each_concurrently(worker_configs(), |config| {
        let gate = Gate::new();
        let (entered_tx, entered) = bounded(1);
        let received = Arc::new(AtomicUsize::new(0));
        let disorder = Arc::new(Mutex::new(None));
        let (g, r, d) = (gate.clone(), Arc::clone(&received), Arc::clone(&disorder));
        let server = config
            .server()
            .child_handler(move || {
                Pipeline::new(
                    LineCodec::new(2 * LINE),
                    Stuck {
                        gate: g.clone(),
                        entered: entered_tx.clone(),
                        received: Arc::clone(&r),
                        disorder: Arc::clone(&d),
                    },
                )
            })
            .bind("127.0.0.1:0")
            .expect("bind");
        // Dropped before the server: a failing test still lets the worker go.
        let _release = OpenOnDrop(gate.clone());
        let client = common::connect(server.local_addr());
        let mut writer_end = client.try_clone().expect("clone the client");
        // The whole payload from another thread: with the fix its writes
        // block until the handler moves on.
        let writer = std::thread::spawn(move || {
            let mut data = Vec::with_capacity(TOTAL);
            for i in 0..LINES {
                data.extend_from_slice(line(i).as_bytes());
            }
            writer_end.write_all(&data)
        });
        entered
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("{config}: the first line never reached the handler"));

        // The handler is stuck: the loop must stop reading at a bound.
        let stuck = Instant::now();
        let mut read = server.stats().bytes_read;
        while stuck.elapsed() < WINDOW && read < TOTAL as u64 {
            std::thread::sleep(Duration::from_millis(10));
            read = server.stats().bytes_read;
        }
        assert!(
            read <= READ_BOUND,
            "{config}: the loop read {read} of the {TOTAL} bytes sent within {:?} while the \
             handler was stuck in its first on_read (bound {READ_BOUND}): the worker's queue \
             takes everything",
            stuck.elapsed()
        );

        // The handler moves on: every line arrives, in order.
        gate.open();
        common::wait_until(Duration::from_secs(30), "every line", || {
            received.load(Ordering::Relaxed) == LINES
        });
        writer
            .join()
            .expect("the writer thread")
            .unwrap_or_else(|e| panic!("{config}: the client's write failed: {e}"));
        let disorder = disorder.lock().unwrap_or_else(|e| e.into_inner()).take();
        assert!(disorder.is_none(), "{config}: out of order: {disorder:?}");
        let _ = client.shutdown(std::net::Shutdown::Both);
        common::wait_for_no_connections(&server);
    });
}

/// Turns reading off in `on_read` of the first message and then, still in
/// `on_read`, waits at the gate; records what it is given.
struct OffThenWait {
    gate: Gate,
    entered: Sender<()>,
    log: common::EventLog,
}

impl Handler for OffThenWait {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
        self.log
            .push(format!("read {}", String::from_utf8_lossy(&msg)));
        if self.log.count("read ") == 1 {
            ctx.set_auto_read(false);
            let _ = self.entered.send(());
            self.gate.wait(GATE_LIMIT);
        }
    }
}

#[test]
fn set_auto_read_false_on_a_worker_stops_the_next_read() {
    for_each_concurrently(worker_configs(), |config| {
        let gate = Gate::new();
        let (entered_tx, entered) = bounded(1);
        let log = common::EventLog::new();
        let (g, l) = (gate.clone(), log.clone());
        let server = config
            .server()
            .child_handler(move || {
                Pipeline::new(
                    LineCodec::new(64),
                    OffThenWait {
                        gate: g.clone(),
                        entered: entered_tx.clone(),
                        log: l.clone(),
                    },
                )
            })
            .bind("127.0.0.1:0")
            .expect("bind");
        let _release = OpenOnDrop(gate.clone());
        let mut client = common::connect(server.local_addr());
        common::write_all(&mut client, b"one\r\n");
        entered
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("{config}: the first line never reached the handler"));
        // Reading is off, as far as the handler knows: the next line must
        // stay in the socket.
        let before = server.stats().bytes_read;
        common::write_all(&mut client, b"two\r\n");
        let window = Instant::now();
        let mut read = before;
        while window.elapsed() < Duration::from_millis(200) && read == before {
            std::thread::sleep(Duration::from_millis(5));
            read = server.stats().bytes_read;
        }
        assert!(
            read == before,
            "{config}: the loop read {} more bytes (the second line) {:?} after the handler \
             had turned reading off and while it was still in on_read",
            read - before,
            window.elapsed()
        );
        gate.open();
        drop(client);
        assert_eq!(log.snapshot(), vec!["read one"], "{config}: lines handled");
    });
}
