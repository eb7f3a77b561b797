//! `max_connections` counts connections still being handed to a
//! sub-reactor (issue 8 §2, point 11c).
//!
//! In the multi-reactor mode the main loop accepts and hands each
//! connection to a sub-reactor, which counts it only when it registers it.
//! While the sub-reactors are busy (here: every handler's `on_active`
//! waits at a gate the test holds), hand-offs queue up uncounted, and the
//! limit lets through every connection that arrives meanwhile. With a
//! limit of 4, two connections holding both sub-reactors and 16 more
//! arriving, at most 4 may ever be open once the gate opens: the others
//! are closed on accept. Tracked both as the server's own count and as the
//! handlers' `on_active` minus `on_inactive`. Multi-reactor (two
//! sub-reactors, handlers on them) × trigger.

mod common;

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Config;
use common::concurrent::{Gate, OpenOnDrop};
use wharf::buf::ByteBuf;
use wharf::{Context, Handler, Pipeline, ReactorMode, Trigger};

const LIMIT: usize = 4;
/// Connections that hold the two sub-reactors.
const HOLDERS: usize = 2;
/// Connections that arrive while they are held.
const LATER: usize = 16;

#[derive(Default)]
struct Counts {
    entered: AtomicUsize,
    open: AtomicUsize,
    max_open: AtomicUsize,
}

/// Counts itself open, then waits at the gate in `on_active`.
struct Held {
    gate: Gate,
    counts: Arc<Counts>,
}

impl Handler for Held {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        let open = self.counts.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.counts.max_open.fetch_max(open, Ordering::SeqCst);
        self.counts.entered.fetch_add(1, Ordering::SeqCst);
        self.gate.wait(Duration::from_secs(20));
    }

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {}

    fn on_inactive(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        self.counts.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether the server has closed `stream` (end of stream or reset), without
/// waiting.
fn is_closed(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).expect("non-blocking");
    let mut byte = [0u8; 1];
    let closed = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).expect("blocking");
    closed
}

#[test]
fn connections_handed_off_but_not_yet_registered_count_against_the_limit() {
    let configs: Vec<Config> = [Trigger::Edge, Trigger::Level]
        .into_iter()
        .map(|trigger| Config {
            mode: ReactorMode::MultiReactor {
                sub_reactors: 2,
                workers: 0,
            },
            trigger,
            pooled: true,
        })
        .collect();
    common::concurrent::for_each_concurrently(configs, |config| {
        let gate = Gate::new();
        let counts = Arc::new(Counts::default());
        let (g, c) = (gate.clone(), Arc::clone(&counts));
        let server = config
            .server()
            .max_connections(LIMIT)
            .child_handler(move || {
                Pipeline::bytes(Held {
                    gate: g.clone(),
                    counts: Arc::clone(&c),
                })
            })
            .bind("127.0.0.1:0")
            .expect("bind");
        let _release = OpenOnDrop(gate.clone());
        let addr = server.local_addr();
        let mut max_counted = 0;

        // Two connections hold both sub-reactors in on_active.
        let mut clients: Vec<TcpStream> = (0..HOLDERS).map(|_| common::connect(addr)).collect();
        common::wait_until(Duration::from_secs(5), "both sub-reactors held", || {
            counts.entered.load(Ordering::SeqCst) == HOLDERS
        });
        // More arrive; the main loop accepts them all and hands them off.
        clients.extend((0..LATER).map(|_| common::connect(addr)));
        common::wait_until(Duration::from_secs(5), "every connection accepted", || {
            max_counted = max_counted.max(server.connections());
            server.stats().accepts == (HOLDERS + LATER) as u64
        });

        // Let them through, and wait until each client is either served by
        // a handler or closed by the server.
        gate.open();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            max_counted = max_counted.max(server.connections());
            let closed = clients.iter().filter(|c| is_closed(c)).count();
            let entered = counts.entered.load(Ordering::SeqCst);
            if closed + entered >= HOLDERS + LATER || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let max_open = counts.max_open.load(Ordering::SeqCst);
        let entered = counts.entered.load(Ordering::SeqCst);
        drop(clients);
        common::wait_for_no_connections(&server);
        assert!(
            max_open <= LIMIT && max_counted <= LIMIT,
            "{config}: with max_connections({LIMIT}), up to {max_open} connections were open \
             at once by the handlers' count and {max_counted} by Server::connections() \
             ({entered} handlers became active for {} connections accepted)",
            HOLDERS + LATER
        );
    });
}
