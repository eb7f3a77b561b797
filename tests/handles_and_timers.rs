//! Reaching a channel and a loop from other threads: `ChannelHandle`
//! writes arrive in each writing thread's order, a closed channel's handle
//! says so and drops what it is given, user events reach the handler on its
//! own thread; `EventLoopHandle` timers fire in deadline order, can be
//! cancelled, repeat at a fixed rate, and `execute` runs on the loop; a
//! handler's own timers arrive in order, can be cancelled, and never fire
//! into a channel that closed.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use common::{Config, EventLog, buf_of, connect, read_exact_n, read_until_closed};
use crossbeam_channel::{Receiver, Sender, bounded};
use wharf::buf::ByteBuf;
use wharf::{ChannelHandle, Context, Handler, Pipeline, Server, UserEvent};

const WAIT: Duration = Duration::from_secs(5);

/// Hands its channel's handle out when active; records user events with
/// the thread they ran on.
struct HandsOut {
    handles: Sender<ChannelHandle<ByteBuf>>,
    threads: Arc<Mutex<Vec<(String, ThreadId)>>>,
    log: EventLog,
}

impl HandsOut {
    fn on_thread(&self, what: String) {
        self.threads
            .lock()
            .unwrap()
            .push((what, std::thread::current().id()));
    }
}

impl Handler for HandsOut {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        self.on_thread("active".into());
        self.handles
            .send(ctx.handle())
            .expect("hand the handle out");
    }

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {}

    fn on_user_event(&mut self, _ctx: &mut Context<'_, ByteBuf>, event: UserEvent) {
        match event {
            UserEvent::Custom(any) => match any.downcast::<u32>() {
                Ok(n) => {
                    self.log.push(format!("custom:{n}"));
                    self.on_thread(format!("custom:{n}"));
                }
                Err(_) => self.log.push("custom:?"),
            },
            other => self.log.push(format!("{other:?}")),
        }
    }

    fn on_inactive(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        self.log.push("inactive");
    }
}

struct HandleServer {
    server: Server,
    handles: Receiver<ChannelHandle<ByteBuf>>,
    threads: Arc<Mutex<Vec<(String, ThreadId)>>>,
    log: EventLog,
}

fn handle_server(config: Config) -> HandleServer {
    let (tx, rx) = bounded(16);
    let threads: Arc<Mutex<Vec<(String, ThreadId)>>> = Arc::default();
    let log = EventLog::new();
    let (t, l) = (Arc::clone(&threads), log.clone());
    let server = config
        .server()
        .child_handler(move || {
            Pipeline::bytes(HandsOut {
                handles: tx.clone(),
                threads: Arc::clone(&t),
                log: l.clone(),
            })
        })
        .bind("127.0.0.1:0")
        .expect("bind");
    HandleServer {
        server,
        handles: rx,
        threads,
        log,
    }
}

#[test]
fn handle_writes_from_another_thread_arrive_in_order() {
    const COUNT: u64 = 10_000;
    common::for_each(Config::all(), |config| {
        let s = handle_server(config);
        let mut client = connect(s.server.local_addr());
        let handle = s.handles.recv_timeout(WAIT).expect("the channel's handle");
        let allocator = config.allocator();
        let writer = std::thread::spawn(move || {
            for i in 0..COUNT {
                let buf = buf_of(allocator, &i.to_be_bytes());
                if i % 97 == 0 {
                    handle.write_and_flush(buf);
                } else {
                    handle.write(buf);
                }
            }
            handle.flush();
        });
        let data = read_exact_n(&mut client, COUNT as usize * 8);
        writer.join().expect("writer thread");
        for (i, chunk) in data.chunks(8).enumerate() {
            let n = u64::from_be_bytes(chunk.try_into().unwrap());
            assert_eq!(n, i as u64, "{config}: message {i} out of order");
        }
        drop(client);
        common::wait_for_no_connections(&s.server);
    });
}

#[test]
fn handle_writes_from_two_threads_keep_each_threads_order() {
    const PER_THREAD: u64 = 5_000;
    common::for_each(Config::all(), |config| {
        let s = handle_server(config);
        let mut client = connect(s.server.local_addr());
        let handle = s.handles.recv_timeout(WAIT).expect("the channel's handle");
        let allocator = config.allocator();
        let writers: Vec<_> = (0..2u64)
            .map(|t| {
                let handle = handle.clone();
                std::thread::spawn(move || {
                    for i in 0..PER_THREAD {
                        let buf = buf_of(allocator, &((t << 32) | i).to_be_bytes());
                        if i % 50 == 0 {
                            handle.write_and_flush(buf);
                        } else {
                            handle.write(buf);
                        }
                    }
                    handle.flush();
                })
            })
            .collect();
        let data = read_exact_n(&mut client, 2 * PER_THREAD as usize * 8);
        for w in writers {
            w.join().expect("writer thread");
        }
        let mut next = [0u64; 2];
        for chunk in data.chunks(8) {
            let n = u64::from_be_bytes(chunk.try_into().unwrap());
            let (t, i) = ((n >> 32) as usize, n & 0xffff_ffff);
            assert!(t < 2, "{config}: a message from no thread: {n:#x}");
            assert_eq!(i, next[t], "{config}: thread {t}'s messages out of order");
            next[t] += 1;
        }
        assert_eq!(next, [PER_THREAD; 2], "{config}: messages per thread");
        drop(client);
        common::wait_for_no_connections(&s.server);
    });
}

#[test]
fn a_closed_channels_handle_is_inactive_and_drops_what_it_is_given() {
    common::for_each(Config::all(), |config| {
        let s = handle_server(config);
        let mut client = connect(s.server.local_addr());
        let handle = s.handles.recv_timeout(WAIT).expect("the channel's handle");
        assert!(handle.is_active(), "{config}: a fresh channel is active");
        // A user event reaches the handler, on the handler's thread.
        handle.fire_user_event(Box::new(7u32));
        s.log.wait_for(WAIT, "custom:7");
        {
            let threads = s.threads.lock().unwrap();
            let active = threads
                .iter()
                .find(|(w, _)| w == "active")
                .expect("active")
                .1;
            let custom = threads
                .iter()
                .find(|(w, _)| w == "custom:7")
                .expect("custom")
                .1;
            assert_eq!(
                custom, active,
                "{config}: the event ran on another thread than on_active"
            );
            assert_ne!(
                custom,
                std::thread::current().id(),
                "{config}: ran on the firing thread"
            );
        }
        // Closed through the handle: the client sees end of stream.
        handle.close();
        let (data, end) = read_until_closed(&mut client);
        assert!(
            end.is_ok() && data.is_empty(),
            "{config}: {data:?} then {end:?}"
        );
        common::wait_until(WAIT, "the handle to turn inactive", || !handle.is_active());
        s.log.wait_for(WAIT, "inactive");
        // Whatever comes now is dropped, without a panic anywhere.
        let allocator = config.allocator();
        for i in 0..100u32 {
            handle.write(buf_of(allocator, &i.to_be_bytes()));
        }
        handle.write_and_flush(buf_of(allocator, b"late"));
        handle.flush();
        handle.fire_user_event(Box::new(8u32));
        handle.shutdown_output();
        handle.set_auto_read(false);
        handle.close();
        // The loop ran everything posted before this task.
        let (tx, rx) = bounded(1);
        assert!(
            handle.event_loop().execute(move || tx.send(()).unwrap()),
            "{config}: the loop is running"
        );
        rx.recv_timeout(WAIT)
            .expect("the loop ran the barrier task");
        assert_eq!(
            handle.pending_outbound_bytes(),
            0,
            "{config}: estimates of dropped writes were not released"
        );
        assert!(!handle.is_active(), "{config}: active again?");
        assert_eq!(
            s.log.snapshot(),
            vec!["custom:7", "inactive"],
            "{config}: handler events"
        );
        assert_eq!(s.server.connections(), 0, "{config}: open connections");
    });
}

/// A loop of the server, and a marker that records into `order`.
fn recorder(order: &Arc<Mutex<Vec<u32>>>, n: u32) -> impl FnOnce() + Send + 'static {
    let order = Arc::clone(order);
    move || order.lock().unwrap().push(n)
}

fn echo_server(config: Config) -> Server {
    config
        .server()
        .child_handler(|| Pipeline::bytes(wharf::transport::handlers::Echo))
        .bind("127.0.0.1:0")
        .expect("bind")
}

#[test]
fn loop_timers_fire_in_deadline_order() {
    common::for_each(Config::all(), |config| {
        let server = echo_server(config);
        for el in server.event_loops() {
            let order = Arc::new(Mutex::new(Vec::new()));
            for ms in [50, 10, 30] {
                el.schedule(Duration::from_millis(ms as u64), recorder(&order, ms));
            }
            common::wait_until(WAIT, "three timers", || order.lock().unwrap().len() == 3);
            assert_eq!(
                *order.lock().unwrap(),
                vec![10, 30, 50],
                "{config}: firing order"
            );
        }
    });
}

#[test]
fn a_cancelled_loop_timer_does_not_fire() {
    common::for_each(Config::all(), |config| {
        let server = echo_server(config);
        let el = &server.event_loops()[0];
        let order = Arc::new(Mutex::new(Vec::new()));
        let cancelled = el.schedule(Duration::from_millis(100), recorder(&order, 1));
        let fired = el.schedule(Duration::from_millis(20), recorder(&order, 2));
        el.cancel(cancelled);
        // The marker: due well after the cancelled one.
        el.schedule(Duration::from_millis(200), recorder(&order, 3));
        common::wait_until(WAIT, "the marker timer", || {
            order.lock().unwrap().contains(&3)
        });
        assert_eq!(
            *order.lock().unwrap(),
            vec![2, 3],
            "{config}: timers that fired"
        );
        // Cancelling a timer that already fired is harmless.
        el.cancel(fired);
        el.cancel(cancelled);
        let (tx, rx) = bounded(1);
        el.execute(move || tx.send(()).unwrap());
        rx.recv_timeout(WAIT).expect("the loop still runs tasks");
    });
}

#[test]
fn a_fixed_rate_timer_repeats_until_cancelled() {
    common::for_each(Config::all(), |config| {
        let server = echo_server(config);
        let el = &server.event_loops()[0];
        let runs = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&runs);
        let id = el
            .schedule_at_fixed_rate(
                Duration::from_millis(5),
                Duration::from_millis(10),
                move || {
                    r.fetch_add(1, Ordering::SeqCst);
                },
            )
            .expect("a period above zero");
        common::wait_until(WAIT, "five runs", || runs.load(Ordering::SeqCst) >= 5);
        el.cancel(id);
        // Runs after the cancel, in order: what it reads is final.
        let (tx, rx) = bounded(1);
        let r = Arc::clone(&runs);
        el.execute(move || tx.send(r.load(Ordering::SeqCst)).unwrap());
        let at_cancel = rx.recv_timeout(WAIT).expect("the count at the cancel");
        // Five more periods pass.
        let (tx, rx) = bounded(1);
        el.schedule(Duration::from_millis(50), move || tx.send(()).unwrap());
        rx.recv_timeout(WAIT).expect("the marker timer");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            at_cancel,
            "{config}: the timer ran after it was cancelled"
        );
    });
}

#[test]
fn execute_runs_on_the_loop_thread() {
    common::for_each(Config::all(), |config| {
        let server = echo_server(config);
        for el in server.event_loops() {
            assert!(
                !el.in_event_loop(),
                "{config}: the test thread is not a loop"
            );
            let (tx, rx) = bounded(1);
            let inside = el.clone();
            assert!(el.execute(move || {
                let name = std::thread::current().name().map(str::to_owned);
                tx.send((inside.in_event_loop(), name)).unwrap();
            }));
            let (on_loop, name) = rx.recv_timeout(WAIT).expect("the task ran");
            assert!(on_loop, "{config}: in_event_loop() is false inside execute");
            let name = name.unwrap_or_default();
            assert!(
                name.starts_with("wharf-test-loop"),
                "{config}: the task ran on thread {name:?}"
            );
        }
    });
}

/// Schedules timers when active and records the ones that fire.
struct TimerUser {
    /// (delay in ms, token, cancel it at once)
    plan: Vec<(u64, u64, bool)>,
    handles: Option<Sender<ChannelHandle<ByteBuf>>>,
    log: EventLog,
}

impl Handler for TimerUser {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        for &(ms, token, cancel) in &self.plan {
            let id = ctx.schedule(Duration::from_millis(ms), token);
            if cancel {
                ctx.cancel_timer(id);
            }
        }
        if let Some(tx) = &self.handles {
            tx.send(ctx.handle()).expect("hand the handle out");
        }
    }

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {}

    fn on_user_event(&mut self, _ctx: &mut Context<'_, ByteBuf>, event: UserEvent) {
        match event {
            UserEvent::Timer(token) => self.log.push(format!("timer:{token}")),
            other => self.log.push(format!("{other:?}")),
        }
    }

    fn on_inactive(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        self.log.push("inactive");
    }
}

#[test]
fn handler_timers_arrive_in_order_and_cancelled_ones_do_not() {
    common::for_each(Config::all(), |config| {
        let log = EventLog::new();
        let l = log.clone();
        let server = config
            .server()
            .child_handler(move || {
                Pipeline::bytes(TimerUser {
                    plan: vec![
                        (50, 3, false),
                        (10, 1, false),
                        (20, 99, true),
                        (30, 2, false),
                        (80, 4, false),
                    ],
                    handles: None,
                    log: l.clone(),
                })
            })
            .bind("127.0.0.1:0")
            .expect("bind");
        let client = connect(server.local_addr());
        log.wait_for(WAIT, "timer:4");
        assert_eq!(
            log.snapshot(),
            vec!["timer:1", "timer:2", "timer:3", "timer:4"],
            "{config}: timer events"
        );
        drop(client);
        common::wait_for_no_connections(&server);
    });
}

#[test]
fn a_closed_channels_timer_never_fires() {
    common::for_each(Config::all(), |config| {
        let made = Arc::new(AtomicUsize::new(0));
        let logs: Arc<Mutex<Vec<EventLog>>> = Arc::default();
        let (tx, rx) = bounded(4);
        let (m, ls) = (Arc::clone(&made), Arc::clone(&logs));
        let server = config
            .server()
            .child_handler(move || {
                let log = EventLog::new();
                ls.lock().unwrap().push(log.clone());
                // Only the first connection schedules a timer.
                let plan = if m.fetch_add(1, Ordering::SeqCst) == 0 {
                    vec![(100, 7, false)]
                } else {
                    Vec::new()
                };
                Pipeline::bytes(TimerUser {
                    plan,
                    handles: Some(tx.clone()),
                    log,
                })
            })
            .bind("127.0.0.1:0")
            .expect("bind");
        let first = connect(server.local_addr());
        let handle = rx.recv_timeout(WAIT).expect("the first handle");
        drop(first);
        common::wait_until(WAIT, "the first channel to close", || !handle.is_active());
        let first_log = logs.lock().unwrap()[0].clone();
        first_log.wait_for(WAIT, "inactive");
        // A second connection, likely in the same slot of the loop.
        let second = connect(server.local_addr());
        let second_handle = rx.recv_timeout(WAIT).expect("the second handle");
        // Well past the first channel's timer, on the same loop.
        let (done_tx, done_rx) = bounded(1);
        handle
            .event_loop()
            .schedule(Duration::from_millis(200), move || {
                done_tx.send(()).unwrap()
            });
        done_rx.recv_timeout(WAIT).expect("the marker timer");
        // A worker may still hold an event posted just before the marker.
        let (tx2, rx2) = bounded(1);
        second_handle.fire_user_event(Box::new(0u32));
        second_handle
            .event_loop()
            .execute(move || tx2.send(()).unwrap());
        rx2.recv_timeout(WAIT).expect("barrier");
        let second_log = logs.lock().unwrap()[1].clone();
        second_log.wait_for(WAIT, "Custom");
        assert_eq!(
            first_log.snapshot(),
            vec!["inactive"],
            "{config}: the first channel's events"
        );
        assert_eq!(
            second_log.count("timer"),
            0,
            "{config}: the first channel's timer fired into the second: {:?}",
            second_log.snapshot()
        );
        drop(second);
        common::wait_for_no_connections(&server);
    });
}
