//! The client side: a `Bootstrap` on an `EventLoopGroup` (edge and level)
//! connects to a wharf echo server, writes through the returned
//! `ChannelHandle` and reads the echo in its handler; a connect to a closed
//! port fails quickly; a connect that cannot complete (the listener's
//! accept queue is full) gives up at the connect timeout without hanging
//! the loop; `EventLoopGroup::shutdown_gracefully` closes the group's
//! channels and ends its loops.

mod common;

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{Config, buf_of, pattern};
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use wharf::buf::ByteBuf;
use wharf::transport::handlers::Echo;
use wharf::{
    Bootstrap, ChannelError, Context, EventLoopGroup, Handler, Pipeline, ReactorMode, Server,
    Trigger,
};

const WAIT: Duration = Duration::from_secs(5);

/// The tests count the group's threads by name: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a client handler saw.
#[derive(Debug)]
enum Seen {
    Active,
    Bytes(Vec<u8>),
    /// Read through `Debug`, in failure messages.
    #[allow(dead_code)]
    Error(String),
    Inactive,
}

/// Reports everything through a channel.
struct Reporter {
    tx: Sender<Seen>,
}

impl Handler for Reporter {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        let _ = self.tx.send(Seen::Active);
    }

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
        let _ = self.tx.send(Seen::Bytes(msg.to_vec()));
    }

    fn on_error(&mut self, ctx: &mut Context<'_, ByteBuf>, error: &ChannelError) {
        let _ = self.tx.send(Seen::Error(error.to_string()));
        ctx.close();
    }

    fn on_inactive(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        let _ = self.tx.send(Seen::Inactive);
    }
}

fn echo_server() -> Server {
    Config {
        mode: ReactorMode::Single,
        trigger: Trigger::Edge,
        pooled: true,
    }
    .server()
    .child_handler(|| Pipeline::bytes(Echo))
    .bind("127.0.0.1:0")
    .expect("bind")
}

/// Collects `len` echoed bytes from the reporter.
fn collect(rx: &Receiver<Seen>, len: usize, trigger: Trigger) -> Vec<u8> {
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    while got.len() < len {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Seen::Bytes(b)) => got.extend_from_slice(&b),
            Ok(other) => panic!("{trigger:?}: {other:?} after {} of {len} bytes", got.len()),
            Err(_) => panic!("{trigger:?}: timed out after {} of {len} bytes", got.len()),
        }
    }
    got
}

const TRIGGERS: [Trigger; 2] = [Trigger::Edge, Trigger::Level];

#[test]
fn a_client_channel_writes_and_reads_the_echo() {
    let _serial = serial();
    let server = echo_server();
    for trigger in TRIGGERS {
        let group = EventLoopGroup::new(2, trigger).expect("event loop group");
        assert_eq!(group.trigger(), trigger);
        let (tx, rx) = unbounded();
        let handle = Bootstrap::new(&group)
            .connect(server.local_addr(), Pipeline::bytes(Reporter { tx }))
            .expect("connect");
        // `connect` returns after on_active.
        assert!(
            matches!(rx.try_recv(), Ok(Seen::Active)),
            "{trigger:?}: no on_active"
        );
        assert!(handle.is_active(), "{trigger:?}: the channel is not active");
        assert_eq!(
            handle.peer_addr(),
            Some(server.local_addr()),
            "{trigger:?}: peer"
        );
        assert_eq!(
            group.connections(),
            1,
            "{trigger:?}: the group's connections"
        );
        let allocator = wharf::buf::Allocator::default();
        handle.write_and_flush(buf_of(allocator, b"hello"));
        assert_eq!(collect(&rx, 5, trigger), b"hello", "{trigger:?}: echo");
        // A larger payload, in many writes.
        let data = pattern(31, 512 << 10);
        for chunk in data.chunks(8 << 10) {
            handle.write(buf_of(allocator, chunk));
        }
        handle.flush();
        assert!(
            collect(&rx, data.len(), trigger) == data,
            "{trigger:?}: echo differs"
        );
        handle.close();
        match rx.recv_timeout(WAIT) {
            Ok(Seen::Inactive) => {}
            other => panic!("{trigger:?}: expected inactive, got {other:?}"),
        }
        assert!(
            !handle.is_active(),
            "{trigger:?}: still active after inactive"
        );
        common::wait_until(WAIT, "the group's connection count", || {
            group.connections() == 0
        });
        common::wait_for_no_connections(&server);
    }
}

/// A port with nothing listening on it.
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    addr
}

#[test]
fn a_connect_to_a_closed_port_is_refused_quickly() {
    let _serial = serial();
    for trigger in TRIGGERS {
        let group = EventLoopGroup::new(1, trigger).expect("event loop group");
        let (tx, rx) = unbounded();
        let started = Instant::now();
        let result =
            Bootstrap::new(&group).connect(closed_port(), Pipeline::bytes(Reporter { tx }));
        let took = started.elapsed();
        match result {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
            other => panic!("{trigger:?}: expected ConnectionRefused, got {other:?}"),
        }
        assert!(
            took < Duration::from_secs(1),
            "{trigger:?}: refused after {took:?}"
        );
        assert!(
            rx.try_recv().is_err(),
            "{trigger:?}: the handler was called"
        );
        assert_eq!(group.connections(), 0, "{trigger:?}: connections");
    }
}

/// A listener with a backlog of zero whose accept queue has been filled:
/// the kernel drops further SYNs, so a connect can only time out. Returns
/// the listener and the connections that filled it.
fn full_listener() -> (socket2::Socket, SocketAddr, Vec<TcpStream>) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .expect("bind");
    socket.listen(0).expect("listen");
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(e) if e.kind() == ErrorKind::TimedOut => return (socket, addr, fillers),
            Err(e) => panic!("filling the accept queue: {e}"),
        }
    }
    panic!("the accept queue of a backlog-0 listener took 8 connections without filling up");
}

#[test]
fn a_connect_that_cannot_complete_gives_up_at_the_timeout() {
    let _serial = serial();
    let (_listener, addr, _fillers) = full_listener();
    let server = echo_server();
    for trigger in TRIGGERS {
        let group = EventLoopGroup::new(1, trigger).expect("event loop group");
        let (tx, rx) = unbounded();
        let timeout = Duration::from_millis(300);
        let started = Instant::now();
        let result = Bootstrap::new(&group)
            .connect_timeout(timeout)
            .connect(addr, Pipeline::bytes(Reporter { tx }));
        let took = started.elapsed();
        assert!(
            took < timeout + Duration::from_millis(700),
            "{trigger:?}: connect returned after {took:?} with a {timeout:?} timeout"
        );
        match result {
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::TimedOut, "{trigger:?}: {e}");
                assert!(
                    took >= timeout,
                    "{trigger:?}: timed out after only {took:?}"
                );
                assert!(
                    rx.try_recv().is_err(),
                    "{trigger:?}: the handler was called"
                );
            }
            // A SYN retransmitted into a freed slot: allowed, if in time.
            Ok(handle) => {
                eprintln!("{trigger:?}: the connect completed after {took:?} ({handle:?})")
            }
        }
        // The loop is still healthy.
        let (tx, rx) = unbounded();
        let handle = Bootstrap::new(&group)
            .connect(server.local_addr(), Pipeline::bytes(Reporter { tx }))
            .expect("connect after the timeout");
        handle.write_and_flush(buf_of(wharf::buf::Allocator::default(), b"still"));
        let _active = rx.recv_timeout(WAIT).expect("on_active");
        assert_eq!(collect(&rx, 5, trigger), b"still", "{trigger:?}: echo");
        handle.close();
        common::wait_until(WAIT, "the group's connection count", || {
            group.connections() == 0
        });
    }
}

#[test]
fn shutting_a_group_down_closes_its_channels_and_ends_its_loops() {
    let _serial = serial();
    let server = echo_server();
    for trigger in TRIGGERS {
        assert_eq!(
            common::threads_named("wharf-client"),
            0,
            "{trigger:?}: threads before"
        );
        let group = EventLoopGroup::new(2, trigger).expect("event loop group");
        // A new thread names itself once it runs.
        common::wait_until(WAIT, "the group's two threads", || {
            common::threads_named("wharf-client") == 2
        });
        let (tx, rx) = unbounded();
        let handle = Bootstrap::new(&group)
            .connect(server.local_addr(), Pipeline::bytes(Reporter { tx }))
            .expect("connect");
        handle.write_and_flush(buf_of(wharf::buf::Allocator::default(), b"hi"));
        let _active = rx.recv_timeout(WAIT).expect("on_active");
        assert_eq!(collect(&rx, 2, trigger), b"hi", "{trigger:?}: echo");
        let started = Instant::now();
        let result = group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
        let took = started.elapsed();
        assert!(
            result.is_ok(),
            "{trigger:?}: shutdown_gracefully: {result:?}"
        );
        // The open channel was closed, its handler told.
        assert!(
            !handle.is_active(),
            "{trigger:?}: the channel is still active"
        );
        match rx.recv_timeout(WAIT) {
            Ok(Seen::Inactive) => {}
            other => panic!("{trigger:?}: expected inactive, got {other:?}"),
        }
        common::wait_for_no_connections(&server);
        // The loops have ended: they take no more work, nor connections.
        for el in group.event_loops() {
            assert!(
                !el.execute(|| {}),
                "{trigger:?}: loop {} still takes tasks",
                el.id()
            );
        }
        let (tx, _rx) = bounded(8);
        let late =
            Bootstrap::new(&group).connect(server.local_addr(), Pipeline::bytes(Reporter { tx }));
        assert!(
            late.is_err(),
            "{trigger:?}: a connect on a stopped group: {late:?}"
        );
        common::wait_until(Duration::from_secs(2), "the group's threads to end", || {
            common::threads_named("wharf-client") == 0
        });
        drop(group);
        // One idle channel, no quiet period: nothing to wait for.
        assert!(
            took < Duration::from_secs(1),
            "{trigger:?}: the group took {took:?} to close one idle channel (the limit was 2 s)"
        );
    }
}
