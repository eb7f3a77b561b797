//! A client connect never blocks an event loop (issue 8 §2, point 6).
//!
//! * `Bootstrap::connect` blocks its caller until the connection is up.
//!   Called on an event-loop thread it must fail at once with
//!   `ErrorKind::WouldBlock` (before the fix, a handler that connected on
//!   its own group's loop waited for itself forever).
//! * New API: a relay server connects to its backend from the handler's own
//!   loop with `Bootstrap::on_loop(ctx.event_loop())` and
//!   `connect_then(addr, pipeline, on_done)`, which returns at once and
//!   reports on the loop. Against a refusing backend the client's
//!   connection is closed promptly; against one that cannot complete the
//!   connect (a full accept queue) it is closed at the connect timeout;
//!   against an echo backend the bytes come back exactly; and while one
//!   connect is pending, the same loop relays for other clients. In every
//!   mode × trigger × allocator, side by side.

mod common;

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Config;
use crossbeam_channel::{Sender, bounded};
use wharf::buf::ByteBuf;
use wharf::transport::handlers::Echo;
use wharf::{Bootstrap, Context, EventLoopGroup, Handler, Pipeline, ReactorMode, Trigger};

/// A wharf echo server (single reactor) to connect to.
fn echo_backend() -> wharf::Server {
    Config {
        mode: ReactorMode::Single,
        trigger: Trigger::Edge,
        pooled: true,
    }
    .server()
    .child_handler(|| Pipeline::bytes(Echo))
    .bind("127.0.0.1:0")
    .expect("bind the echo backend")
}

/// A listener with a backlog of zero whose accept queue has been filled:
/// the kernel drops further SYNs, so a connect to it can only time out.
/// Returns the listener and the connections that filled it.
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

/// A client handler that, once active, connects again through a bootstrap
/// on the group it runs on, and reports what that connect returned.
struct ConnectsAgain {
    /// Taken in `on_active`, so the handler holds no group afterwards.
    group: Arc<Mutex<Option<EventLoopGroup>>>,
    target: SocketAddr,
    report: Sender<std::io::Result<()>>,
}

impl Handler for ConnectsAgain {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        let group = self.group.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(group) = group {
            let result = Bootstrap::new(&group)
                .connect_timeout(Duration::from_secs(1))
                .connect(self.target, Pipeline::bytes(Echo));
            let _ = self.report.send(result.map(|handle| handle.close()));
        }
    }

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {}
}

/// Connects on a one-loop group whose handler connects again on the same
/// group in `on_active`; returns what went wrong, if anything.
fn connect_within_on_active(trigger: Trigger, target: SocketAddr) -> Option<String> {
    let group = EventLoopGroup::new(1, trigger).expect("a one-loop group");
    let (report, reported) = bounded(1);
    let (outer_tx, outer) = bounded(1);
    let handler_group = Arc::new(Mutex::new(Some(group.clone())));
    let outer_group = group.clone();
    std::thread::spawn(move || {
        let result = Bootstrap::new(&outer_group).connect(
            target,
            Pipeline::bytes(ConnectsAgain {
                group: handler_group,
                target,
                report,
            }),
        );
        let _ = outer_tx.send(result.map(|handle| handle.close()));
    });
    // The watchdog: a deadlocked loop never reports.
    match reported.recv_timeout(Duration::from_secs(3)) {
        Ok(Err(e)) if e.kind() == ErrorKind::WouldBlock => {}
        Ok(other) => {
            return Some(format!(
                "{trigger:?}: Bootstrap::connect on the group's own loop thread returned \
                 {other:?}, not an error of kind WouldBlock"
            ));
        }
        Err(_) => {
            // The loop is stuck for good: joining it would hang the test.
            std::mem::forget(group);
            return Some(format!(
                "{trigger:?}: Bootstrap::connect called in on_active on the group's only \
                 loop has not returned after 3 s: the loop waits for itself (deadlock)"
            ));
        }
    }
    match outer.recv_timeout(Duration::from_secs(3)) {
        Ok(Ok(())) => None,
        other => Some(format!("{trigger:?}: the outer connect: {other:?}")),
    }
}

#[test]
fn a_blocking_connect_on_a_loop_thread_is_an_error_not_a_deadlock() {
    let backend = echo_backend();
    let target = backend.local_addr();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let running: Vec<_> = [Trigger::Edge, Trigger::Level]
            .map(|trigger| scope.spawn(move || connect_within_on_active(trigger, target)))
            .into_iter()
            .collect();
        running
            .into_iter()
            .filter_map(|t| t.join().expect("a trigger's thread"))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The relay with the new, non-blocking connect from the handler's loop.
mod new_api {
    use std::collections::HashMap;
    use std::io::{Read, Write};
    use std::time::Instant;

    use super::*;
    use common::{pattern, read_until_closed};
    use wharf::{ChannelHandle, UserEvent};

    /// Which backend each client gets, by the client's port.
    type Plans = Arc<Mutex<HashMap<u16, SocketAddr>>>;

    const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

    /// The client's side of the relay: connects to the backend planned for
    /// this client, holds what the client sends until the backend is up,
    /// then forwards.
    struct Front {
        plans: Plans,
        backend: Option<ChannelHandle<ByteBuf>>,
        held: Vec<ByteBuf>,
    }

    impl Handler for Front {
        type In = ByteBuf;
        type Out = ByteBuf;

        fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
            let port = ctx.peer_addr().map(|a| a.port()).unwrap_or(0);
            let planned = self
                .plans
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&port)
                .copied();
            let Some(backend_addr) = planned else {
                ctx.close();
                return;
            };
            let front = ctx.handle();
            let back = Back {
                front: front.clone(),
            };
            Bootstrap::on_loop(ctx.event_loop())
                .connect_timeout(CONNECT_TIMEOUT)
                .connect_then(
                    backend_addr,
                    Pipeline::bytes(back),
                    move |result| match result {
                        Ok(backend) if front.is_active() => {
                            front.fire_user_event(Box::new(backend))
                        }
                        Ok(backend) => backend.close(),
                        Err(_) => front.close(),
                    },
                );
        }

        fn on_user_event(&mut self, _ctx: &mut Context<'_, ByteBuf>, event: UserEvent) {
            if let UserEvent::Custom(event) = event
                && let Ok(backend) = event.downcast::<ChannelHandle<ByteBuf>>()
            {
                for msg in self.held.drain(..) {
                    backend.write(msg);
                }
                backend.flush();
                self.backend = Some(*backend);
            }
        }

        fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
            match &self.backend {
                Some(backend) => backend.write_and_flush(msg),
                None => self.held.push(msg),
            }
        }

        fn on_inactive(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
            if let Some(backend) = self.backend.take() {
                backend.close();
            }
        }
    }

    /// The backend's side: sends what the backend answers to the client.
    struct Back {
        front: ChannelHandle<ByteBuf>,
    }

    impl Handler for Back {
        type In = ByteBuf;
        type Out = ByteBuf;

        fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
            self.front.write_and_flush(msg);
        }

        fn on_inactive(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
            self.front.close();
        }
    }

    /// Connects a client whose port is planned to get `backend`.
    fn client_for(relay: SocketAddr, plans: &Plans, backend: SocketAddr) -> TcpStream {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("client socket");
        socket
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .expect("bind the client");
        let port = socket.local_addr().unwrap().as_socket().unwrap().port();
        plans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(port, backend);
        socket.connect(&relay.into()).expect("connect to the relay");
        let stream: TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        stream
    }

    /// Whether the peer has closed `stream` (end of stream or reset),
    /// without waiting.
    fn is_closed(stream: &TcpStream) -> bool {
        stream.set_nonblocking(true).expect("non-blocking");
        let mut byte = [0u8; 1];
        let closed = match stream.peek(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != ErrorKind::WouldBlock,
        };
        stream.set_nonblocking(false).expect("blocking");
        closed
    }

    #[test]
    fn a_relay_connects_from_its_own_loop_without_blocking_it() {
        let echo = echo_backend();
        let (_listener, black_hole, _fillers) = full_listener();
        let refusing = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("address")
            // Dropped: nothing listens there any more.
        };
        common::concurrent::for_each_concurrently(Config::all(), |config| {
            let plans: Plans = Arc::default();
            let server_plans = Arc::clone(&plans);
            let relay = config
                .server()
                .child_handler(move || {
                    Pipeline::bytes(Front {
                        plans: Arc::clone(&server_plans),
                        backend: None,
                        held: Vec::new(),
                    })
                })
                .bind("127.0.0.1:0")
                .expect("bind the relay");
            let addr = relay.local_addr();

            // A connect that cannot complete is pending...
            let mut stuck = client_for(addr, &plans, black_hole);
            let stuck_since = Instant::now();

            // ...while the loop relays for others, byte for byte.
            let mut relayed = client_for(addr, &plans, echo.local_addr());
            let payload = pattern(config.trigger as u64, 256 << 10);
            relayed.write_all(&payload).expect("send through the relay");
            let mut back = vec![0u8; payload.len()];
            relayed
                .read_exact(&mut back)
                .unwrap_or_else(|e| panic!("{config}: reading the echo through the relay: {e}"));
            assert!(back == payload, "{config}: the relayed echo differs");
            assert!(
                !is_closed(&stuck),
                "{config}: the pending connect ended before the echo was relayed \
                 ({:?} after it started)",
                stuck_since.elapsed()
            );
            drop(relayed);

            // A refused connect closes the client promptly.
            let mut refused = client_for(addr, &plans, refusing);
            let refused_since = Instant::now();
            let (data, _) = read_until_closed(&mut refused);
            let took = refused_since.elapsed();
            assert!(
                data.is_empty() && took < Duration::from_secs(1),
                "{config}: a refused backend connect closed the client after {took:?} \
                 ({} bytes)",
                data.len()
            );

            // The pending one gives up at its timeout.
            let (data, _) = read_until_closed(&mut stuck);
            let took = stuck_since.elapsed();
            assert!(
                data.is_empty()
                    && took >= CONNECT_TIMEOUT - Duration::from_millis(50)
                    && took < CONNECT_TIMEOUT + Duration::from_millis(1500),
                "{config}: a backend connect that cannot complete closed the client after \
                 {took:?} (connect timeout {CONNECT_TIMEOUT:?}, {} bytes)",
                data.len()
            );
            common::wait_for_no_connections(&relay);
        });
    }
}
