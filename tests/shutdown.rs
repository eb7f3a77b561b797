//! Graceful shutdown: replies in flight are completed and sent before the
//! connections close, the call returns once everything is closed (not at its
//! time limit), no server thread outlives it, the time limit closes
//! connections that cannot drain, `Server::wait` carries out a request made
//! through a `ShutdownHandle`, and listeners close as soon as the shutdown
//! starts while open connections are still served.

mod common;

use std::io::{ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Config, EventLog, buf_of, connect, pattern, read_exact_n, read_until_closed};
use crossbeam_channel::{Sender, bounded};
use wharf::buf::ByteBuf;
use wharf::transport::handlers::Echo;
use wharf::{ChannelHandle, Context, Handler, Pipeline, ReactorMode, UserEvent};

const WAIT: Duration = Duration::from_secs(5);
const REPLY: usize = 256 << 10;

/// Answers a request 200 ms later: with a timer on the loop, or by working
/// (sleeping) on the worker thread in the worker-pool mode.
struct SlowReply {
    on_worker: bool,
    log: EventLog,
}

impl SlowReply {
    fn reply(&self, ctx: &mut Context<'_, ByteBuf>) {
        let buf = buf_of(ctx.allocator(), &pattern(21, REPLY));
        ctx.write_and_flush(buf);
        self.log.push("replied");
    }
}

impl Handler for SlowReply {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {
        self.log.push("request");
        if self.on_worker {
            std::thread::sleep(Duration::from_millis(200));
            self.reply(ctx);
        } else {
            ctx.schedule(Duration::from_millis(200), 1);
        }
    }

    fn on_user_event(&mut self, ctx: &mut Context<'_, ByteBuf>, event: UserEvent) {
        if let UserEvent::Timer(1) = event {
            self.reply(ctx);
        }
    }

    fn on_inactive(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        self.log.push("inactive");
    }
}

#[test]
fn graceful_shutdown_completes_replies_in_flight() {
    common::for_each(Config::all(), |config| {
        let log = EventLog::new();
        let l = log.clone();
        let on_worker = matches!(config.mode, ReactorMode::WorkerPool { .. });
        let mut server = config
            .server()
            .child_handler(move || {
                Pipeline::bytes(SlowReply {
                    on_worker,
                    log: l.clone(),
                })
            })
            .bind("127.0.0.1:0")
            .expect("bind");
        let mut client = connect(server.local_addr());
        client.write_all(b"request").expect("send the request");
        log.wait_for(WAIT, "request");
        let (tx, rx) = bounded(1);
        let shutter = std::thread::spawn(move || {
            let started = Instant::now();
            // A pending timer does not hold the quiet period (an idle
            // keep-alive timer must not keep a server up): the quiet period
            // is longer than the 200 ms the reply takes.
            let result =
                server.shutdown_gracefully(Duration::from_millis(400), Duration::from_secs(5));
            tx.send((result, started.elapsed())).unwrap();
        });
        let (data, end) = read_until_closed(&mut client);
        assert!(
            end.is_ok(),
            "{config}: the stream ended with {end:?} after {} bytes",
            data.len()
        );
        assert_eq!(
            data.len(),
            REPLY,
            "{config}: reply bytes before end of stream"
        );
        assert!(data == pattern(21, REPLY), "{config}: the reply differs");
        let (result, took) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the shutdown returned");
        shutter.join().expect("shutdown thread");
        assert!(result.is_ok(), "{config}: shutdown_gracefully: {result:?}");
        assert_eq!(
            log.snapshot(),
            vec!["request", "replied", "inactive"],
            "{config}: handler events"
        );
        // 200 ms of work, 400 ms of quiet: nothing is open long before the
        // 5 s limit, and the call should return then.
        assert!(
            took < Duration::from_secs(2),
            "{config}: shutdown_gracefully took {took:?} though everything was closed after about 600 ms"
        );
    });
}

#[test]
fn shutdown_returns_once_the_last_connection_is_closed() {
    common::for_each(Config::all(), |config| {
        let mut server = config
            .server()
            .child_handler(|| Pipeline::bytes(Echo))
            .bind("127.0.0.1:0")
            .expect("bind");
        let mut client = connect(server.local_addr());
        client.write_all(b"ping").expect("send");
        assert_eq!(read_exact_n(&mut client, 4), b"ping", "{config}: echo");
        // An idle connection: with no quiet period it is closed at once.
        let started = Instant::now();
        let result = server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(3));
        let took = started.elapsed();
        assert!(result.is_ok(), "{config}: shutdown_gracefully: {result:?}");
        let (data, end) = read_until_closed(&mut client);
        assert!(
            end.is_ok() && data.is_empty(),
            "{config}: {data:?} then {end:?}"
        );
        assert!(
            took < Duration::from_secs(1),
            "{config}: shutting down one idle connection took {took:?} (the limit was 3 s)"
        );
    });
}

#[test]
fn no_server_thread_outlives_the_shutdown() {
    // A prefix of its own: other tests of this binary run at the same time.
    const PREFIX: &str = "wharf-thr";
    common::for_each(Config::all(), |config| {
        assert_eq!(
            common::threads_named(PREFIX),
            0,
            "{config}: threads before bind"
        );
        let mut server = config
            .server()
            .thread_name(PREFIX)
            .child_handler(|| Pipeline::bytes(Echo))
            .bind("127.0.0.1:0")
            .expect("bind");
        let expected = match config.mode {
            ReactorMode::Single => 1,
            ReactorMode::WorkerPool { workers } => 1 + workers,
            ReactorMode::MultiReactor {
                sub_reactors,
                workers,
            } => 1 + sub_reactors + workers,
            ReactorMode::Reuseport { reactors } => reactors,
        };
        // A new thread names itself once it runs.
        common::wait_until(WAIT, "the server's threads to start", || {
            common::threads_named(PREFIX) >= expected
        });
        assert_eq!(
            common::threads_named(PREFIX),
            expected,
            "{config}: threads while running"
        );
        // Connections open at the shutdown, in every loop of the server.
        let mut clients: Vec<TcpStream> = (0..4).map(|_| connect(server.local_addr())).collect();
        for (i, c) in clients.iter_mut().enumerate() {
            let msg = pattern(i as u64, 1000);
            c.write_all(&msg).expect("send");
            assert!(read_exact_n(c, 1000) == msg, "{config}: echo");
        }
        let result = server.shutdown_gracefully(Duration::ZERO, Duration::from_millis(500));
        assert!(result.is_ok(), "{config}: shutdown_gracefully: {result:?}");
        // A joined thread can linger in /proc for a moment.
        common::wait_until(
            Duration::from_secs(2),
            "the server's threads to end",
            || common::threads_named(PREFIX) == 0,
        );
        drop(clients);
    });
}

/// Streams as long as the channel is writable, and hands its handle out.
struct Firehose {
    handles: Sender<ChannelHandle<ByteBuf>>,
    chunk: Vec<u8>,
}

impl Firehose {
    fn pump(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        // Bounded per call; the next writability event continues.
        for _ in 0..64 {
            if !ctx.is_writable() {
                break;
            }
            let buf = buf_of(ctx.allocator(), &self.chunk);
            ctx.write(buf);
        }
        ctx.flush();
    }
}

impl Handler for Firehose {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        self.handles.send(ctx.handle()).unwrap();
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
fn the_time_limit_closes_connections_that_cannot_drain() {
    common::for_each(Config::all(), |config| {
        let (tx, rx) = bounded(4);
        let mut server = config
            .server()
            .child_handler(move || {
                Pipeline::bytes(Firehose {
                    handles: tx.clone(),
                    chunk: vec![b'x'; 16 << 10],
                })
            })
            .bind("127.0.0.1:0")
            .expect("bind");
        // A client that never reads.
        let mut client = connect(server.local_addr());
        let handle = rx.recv_timeout(WAIT).expect("the channel's handle");
        // Backed up: the channel is unwritable, data is queued, and the
        // socket has taken nothing for a while (the kernel's buffers are
        // full). The queue may sit anywhere above the low water mark.
        let mut last = (u64::MAX, Instant::now());
        common::wait_until(WAIT, "the server's queue to back up", || {
            let written = server.stats().bytes_written;
            if written != last.0 {
                last = (written, Instant::now());
            }
            !handle.is_writable()
                && handle.pending_outbound_bytes() > 0
                && last.1.elapsed() >= Duration::from_millis(100)
        });
        let started = Instant::now();
        let result = server.shutdown_gracefully(Duration::ZERO, Duration::from_millis(500));
        let took = started.elapsed();
        assert!(result.is_ok(), "{config}: shutdown_gracefully: {result:?}");
        assert!(
            took < Duration::from_secs(3),
            "{config}: shutdown took {took:?} with a 500 ms limit"
        );
        assert!(
            took >= Duration::from_millis(500),
            "{config}: shutdown gave up on the queued data after only {took:?}"
        );
        assert!(!handle.is_active(), "{config}: the channel is still active");
        // The client gets what the kernel had buffered, then the end.
        let (_, end) = read_until_closed(&mut client);
        match end {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("{config}: the stream did not end: {e}"),
        }
    });
}

#[test]
fn wait_returns_after_a_shutdown_request_from_another_thread() {
    common::for_each(Config::all(), |config| {
        let mut server = config
            .server()
            .child_handler(|| Pipeline::bytes(Echo))
            .bind("127.0.0.1:0")
            .expect("bind");
        let addr = server.local_addr();
        let shutdown = server.shutdown_handle();
        let (tx, rx) = bounded(1);
        let waiter = std::thread::spawn(move || {
            tx.send(server.wait()).unwrap();
        });
        // Served while `wait` blocks; `wait` has not returned.
        let mut client = connect(addr);
        client.write_all(b"ping").expect("send");
        assert_eq!(read_exact_n(&mut client, 4), b"ping", "{config}: echo");
        assert!(
            rx.try_recv().is_err(),
            "{config}: wait returned before any request"
        );
        client.shutdown(Shutdown::Write).expect("half-close");
        let (_, end) = read_until_closed(&mut client);
        assert!(end.is_ok(), "{config}: {end:?}");
        shutdown.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
        let result = rx.recv_timeout(WAIT).expect("wait returned");
        waiter.join().expect("waiting thread");
        assert!(result.is_ok(), "{config}: wait: {result:?}");
        assert_refused(config, addr);
    });
}

/// Whether a connect to `addr` is refused (or reset at once).
fn refused(addr: SocketAddr) -> bool {
    match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
        Err(_) => true,
        Ok(mut s) => {
            // Accepted by the kernel into a listener's backlog as it closed:
            // a reset shows up on the first read.
            let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
            let mut byte = [0u8; 1];
            matches!(
                std::io::Read::read(&mut s, &mut byte),
                Err(e) if e.kind() == ErrorKind::ConnectionReset
            )
        }
    }
}

fn assert_refused(config: Config, addr: SocketAddr) {
    match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
        other => panic!("{config}: a connect after the shutdown: {other:?}"),
    }
}

#[test]
fn listeners_close_at_once_while_open_connections_are_still_served() {
    common::for_each(Config::all(), |config| {
        let mut server = config
            .server()
            .child_handler(|| Pipeline::bytes(Echo))
            .bind("127.0.0.1:0")
            .expect("bind");
        let addr = server.local_addr();
        let mut a = connect(addr);
        a.write_all(b"before").expect("send");
        assert_eq!(
            read_exact_n(&mut a, 6),
            b"before",
            "{config}: echo before the shutdown"
        );
        let (tx, rx) = bounded(1);
        let shutter = std::thread::spawn(move || {
            // The limit is kept short: the call currently runs to it (see
            // shutdown_returns_once_the_last_connection_is_closed).
            tx.send(
                server.shutdown_gracefully(Duration::from_millis(500), Duration::from_millis(1500)),
            )
            .unwrap();
        });
        // Every listener is gone (each probe may reach another one).
        common::wait_until(Duration::from_secs(1), "connects to be refused", || {
            (0..8).all(|_| refused(addr))
        });
        // The open connection is still served.
        for round in 0..5u64 {
            let msg = pattern(round, 500);
            a.write_all(&msg).expect("send during the quiet period");
            assert!(
                read_exact_n(&mut a, 500) == msg,
                "{config}: echo during the quiet period"
            );
        }
        assert!(
            rx.try_recv().is_err(),
            "{config}: the shutdown ended with a connection in use"
        );
        // Once quiet, it is closed.
        let (data, end) = read_until_closed(&mut a);
        assert!(
            end.is_ok() && data.is_empty(),
            "{config}: {data:?} then {end:?}"
        );
        let result = rx.recv_timeout(WAIT).expect("the shutdown returned");
        shutter.join().expect("shutdown thread");
        assert!(result.is_ok(), "{config}: shutdown_gracefully: {result:?}");
    });
}
