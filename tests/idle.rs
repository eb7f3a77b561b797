//! Idle detection (`ServerBootstrap::idle`): reader idle fires when the
//! client sends nothing and not while it keeps sending, a handler that
//! closes on it disconnects an idle client, writer idle fires while the
//! server writes nothing even though it reads, and all idle is held off by
//! writes as well as by reads.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{Config, EventLog, buf_of, connect, read_exact_n, read_until_closed};
use wharf::buf::ByteBuf;
use wharf::{Context, Handler, IdleConfig, IdleState, Pipeline, Server, UserEvent};

const WAIT: Duration = Duration::from_secs(5);

/// Records idle events with the time they came; optionally echoes, closes
/// on reader idle, or writes a byte every 30 ms for a while.
#[derive(Clone)]
struct IdleWatcher {
    log: EventLog,
    times: std::sync::Arc<std::sync::Mutex<Vec<(IdleState, Instant)>>>,
    echo: bool,
    close_on_reader_idle: bool,
    /// Writes a byte every 30 ms this many times, starting when active.
    ticks: u32,
}

impl IdleWatcher {
    fn new() -> IdleWatcher {
        IdleWatcher {
            log: EventLog::new(),
            times: Default::default(),
            echo: false,
            close_on_reader_idle: false,
            ticks: 0,
        }
    }

    fn first(&self, state: IdleState) -> Option<Instant> {
        self.times
            .lock()
            .unwrap()
            .iter()
            .find(|(s, _)| *s == state)
            .map(|(_, t)| *t)
    }
}

impl Handler for IdleWatcher {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        if self.ticks > 0 {
            ctx.schedule(Duration::from_millis(30), 0);
        }
    }

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
        if self.echo {
            ctx.write(msg);
        }
    }

    fn on_read_complete(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        ctx.flush();
    }

    fn on_user_event(&mut self, ctx: &mut Context<'_, ByteBuf>, event: UserEvent) {
        match event {
            UserEvent::Idle(state) => {
                self.times.lock().unwrap().push((state, Instant::now()));
                self.log.push(format!("{state:?}"));
                if state == IdleState::ReaderIdle && self.close_on_reader_idle {
                    ctx.close();
                }
            }
            UserEvent::Timer(n) => {
                let buf = buf_of(ctx.allocator(), b".");
                ctx.write_and_flush(buf);
                self.log.push("tick");
                if n + 1 < u64::from(self.ticks) {
                    ctx.schedule(Duration::from_millis(30), n + 1);
                } else {
                    self.log.push("ticks-done");
                }
            }
            _ => {}
        }
    }

    fn on_inactive(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        self.log.push("inactive");
    }
}

fn serve(config: Config, idle: IdleConfig, watcher: &IdleWatcher) -> Server {
    let w = watcher.clone();
    config
        .server()
        .idle(idle)
        .child_handler(move || Pipeline::bytes(w.clone()))
        .bind("127.0.0.1:0")
        .expect("bind")
}

const MS100: Option<Duration> = Some(Duration::from_millis(100));
const MS150: Option<Duration> = Some(Duration::from_millis(150));

/// Sends a byte every 30 ms for `total`; returns how many it sent.
fn keep_sending(client: &mut std::net::TcpStream, total: Duration) -> usize {
    let until = Instant::now() + total;
    let mut sent = 0;
    while Instant::now() < until {
        client.write_all(b"k").expect("send");
        sent += 1;
        std::thread::sleep(Duration::from_millis(30));
    }
    sent
}

#[test]
fn reader_idle_fires_when_the_client_sends_nothing() {
    common::for_each(Config::all(), |config| {
        let watcher = IdleWatcher::new();
        let idle = IdleConfig {
            reader: MS100,
            ..Default::default()
        };
        let server = serve(config, idle, &watcher);
        let connected = Instant::now();
        let client = connect(server.local_addr());
        // It fires again for every further timeout.
        common::wait_until(WAIT, "two reader-idle events", || {
            watcher.log.count("ReaderIdle") >= 2
        });
        let first = watcher
            .first(IdleState::ReaderIdle)
            .expect("a reader-idle event");
        assert!(
            first.duration_since(connected) >= Duration::from_millis(100),
            "{config}: reader idle after only {:?}",
            first.duration_since(connected)
        );
        let times = watcher.times.lock().unwrap().clone();
        assert!(
            times[1].1.duration_since(times[0].1) >= Duration::from_millis(90),
            "{config}: reader idle again after only {:?}",
            times[1].1.duration_since(times[0].1)
        );
        assert_eq!(
            watcher.log.count("WriterIdle") + watcher.log.count("AllIdle"),
            0,
            "{config}: idle events that were not configured"
        );
        drop(client);
        common::wait_for_no_connections(&server);
    });
}

#[test]
fn closing_on_reader_idle_disconnects_an_idle_client() {
    common::for_each(Config::all(), |config| {
        let mut watcher = IdleWatcher::new();
        watcher.close_on_reader_idle = true;
        let idle = IdleConfig {
            reader: MS100,
            ..Default::default()
        };
        let server = serve(config, idle, &watcher);
        let connected = Instant::now();
        let mut client = connect(server.local_addr());
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("read timeout");
        let (data, end) = read_until_closed(&mut client);
        let took = connected.elapsed();
        assert!(
            end.is_ok() && data.is_empty(),
            "{config}: {data:?} then {end:?} after {took:?}"
        );
        assert!(
            took >= Duration::from_millis(100),
            "{config}: closed after only {took:?}"
        );
        watcher.log.wait_for(WAIT, "inactive");
        assert_eq!(
            watcher.log.snapshot(),
            vec!["ReaderIdle", "inactive"],
            "{config}: events"
        );
        common::wait_for_no_connections(&server);
    });
}

#[test]
fn a_client_that_keeps_sending_is_not_disconnected() {
    common::for_each(Config::all(), |config| {
        let mut watcher = IdleWatcher::new();
        watcher.close_on_reader_idle = true;
        watcher.echo = true;
        let idle = IdleConfig {
            reader: MS100,
            ..Default::default()
        };
        let server = serve(config, idle, &watcher);
        let mut client = connect(server.local_addr());
        let sent = keep_sending(&mut client, Duration::from_millis(400));
        // Still open: the echo of everything sent, then of a last ping.
        client.write_all(b"ping").expect("send the ping");
        let echoed = read_exact_n(&mut client, sent + 4);
        let mut expected = vec![b'k'; sent];
        expected.extend_from_slice(b"ping");
        assert_eq!(echoed, expected, "{config}: echo");
        assert_eq!(
            watcher.log.count("ReaderIdle"),
            0,
            "{config}: reader idle fired while the client was sending: {:?}",
            watcher.log.snapshot()
        );
        drop(client);
        common::wait_for_no_connections(&server);
    });
}

#[test]
fn writer_idle_fires_while_the_server_only_reads() {
    common::for_each(Config::all(), |config| {
        let watcher = IdleWatcher::new();
        let idle = IdleConfig {
            reader: MS150,
            writer: MS100,
            all: None,
        };
        let server = serve(config, idle, &watcher);
        let connected = Instant::now();
        let mut client = connect(server.local_addr());
        keep_sending(&mut client, Duration::from_millis(400));
        let events = watcher.log.snapshot();
        assert!(
            watcher.log.count("WriterIdle") >= 1,
            "{config}: no writer idle in 400 ms without writes: {events:?}"
        );
        let first = watcher.first(IdleState::WriterIdle).expect("writer idle");
        assert!(
            first.duration_since(connected) >= Duration::from_millis(100),
            "{config}: writer idle after only {:?}",
            first.duration_since(connected)
        );
        assert_eq!(
            watcher.log.count("ReaderIdle"),
            0,
            "{config}: reader idle while the client was sending: {events:?}"
        );
        drop(client);
        common::wait_for_no_connections(&server);
    });
}

#[test]
fn all_idle_is_held_off_by_writes_and_fires_after_them() {
    const TICKS: u32 = 12;
    common::for_each(Config::all(), |config| {
        let mut watcher = IdleWatcher::new();
        watcher.ticks = TICKS;
        let idle = IdleConfig {
            reader: None,
            writer: None,
            all: MS150,
        };
        let server = serve(config, idle, &watcher);
        let mut client = connect(server.local_addr());
        // The server writes every 30 ms for about 360 ms; the client sends
        // nothing. All idle comes only after the last write.
        watcher.log.wait_for(WAIT, "AllIdle");
        let events = watcher.log.snapshot();
        let done = events.iter().position(|e| e == "ticks-done");
        let idle_at = events.iter().position(|e| e == "AllIdle");
        assert!(
            matches!((done, idle_at), (Some(d), Some(i)) if d < i),
            "{config}: all idle while the server was writing: {events:?}"
        );
        let ticks = read_exact_n(&mut client, TICKS as usize);
        assert!(ticks.iter().all(|&b| b == b'.'), "{config}: ticks differ");
        drop(client);
        common::wait_for_no_connections(&server);
    });
}

#[test]
fn all_idle_is_held_off_by_reads() {
    common::for_each(Config::all(), |config| {
        let watcher = IdleWatcher::new();
        let idle = IdleConfig {
            reader: None,
            writer: None,
            all: MS150,
        };
        let server = serve(config, idle, &watcher);
        let mut client = connect(server.local_addr());
        keep_sending(&mut client, Duration::from_millis(400));
        assert_eq!(
            watcher.log.count("AllIdle"),
            0,
            "{config}: all idle while the client was sending: {:?}",
            watcher.log.snapshot()
        );
        let stopped = Instant::now();
        watcher.log.wait_for(WAIT, "AllIdle");
        let at = watcher.first(IdleState::AllIdle).expect("all idle");
        assert!(
            at.duration_since(stopped) >= Duration::from_millis(100),
            "{config}: all idle {:?} after the last send",
            at.duration_since(stopped)
        );
        drop(client);
        common::wait_for_no_connections(&server);
    });
}
