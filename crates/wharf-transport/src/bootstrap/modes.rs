//! The four reactor modes, side by side: which listening sockets a server
//! binds, which event loops it starts, and where accepted connections go.
//! They are wirings of the same parts (loops, acceptors, the worker pool);
//! the channel code does not know which one it runs in.
//!
//! | mode | listeners | loops | accepted connections go to |
//! |---|---|---|---|
//! | `Single` | 1 | 1 | the accepting loop |
//! | `WorkerPool` | 1 | 1 (+ worker threads) | the accepting loop; handlers on workers |
//! | `MultiReactor` | 1 | 1 main + N subs | a sub-reactor, round robin or least loaded |
//! | `Reuseport` | N (`SO_REUSEPORT`) | N | the loop whose listener the kernel chose |
//!
//! A Unix-domain listener ([`bind_unix`](crate::ServerBootstrap::bind_unix))
//! wires the same way in the first three modes; `Reuseport` is refused for
//! it, as Unix-domain sockets have no `SO_REUSEPORT`.
//!
//! Listeners are bound before any thread starts, so an address in use
//! fails the bind with nothing to undo; a loop that did start and then has
//! to be given up is stopped and joined when its `LoopThread` drops.
//!
//! Loops are numbered so that the I/O loops are `0..io_loops()` in every
//! mode ([`EventLoopHandle::id`](crate::EventLoopHandle::id)): the index a
//! per-loop shard is picked by
//! ([`ServerBootstrap::child_handler_on_loop`](crate::ServerBootstrap::child_handler_on_loop)).
//! The multi-reactor's main loop, which only accepts, comes after them.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::bootstrap::options::SocketOptions;
use crate::bootstrap::unix::{SocketFile, bind_unix, check_unix_config};
use crate::bootstrap::{Balance, ReactorMode};
use crate::channel::config::Trigger;
use crate::channel::init::ChannelInit;
use crate::reactor::acceptor::AcceptorTarget;
use crate::reactor::listener::Listener;
use crate::reactor::loop_thread::LoopThread;

/// The loops of a running server.
#[derive(Debug)]
pub(crate) struct Wiring {
    /// Loops with listeners: shut down first, so no connection is accepted
    /// after the loops it would go to have stopped.
    pub acceptors: Vec<LoopThread>,
    /// Sub-reactors of the multi-reactor mode: shut down after.
    pub io_loops: Vec<LoopThread>,
}

/// Where a server listens.
#[derive(Debug)]
pub(crate) enum Bound {
    /// A TCP address (port 0 resolved).
    Tcp(SocketAddr),
    /// A Unix-domain socket file, removed when the server ends.
    Unix(SocketFile),
}

/// Binds the Unix-domain listener at `path` (every mode but reuseport: one
/// listener, as `Single`, `WorkerPool` and `MultiReactor` have).
pub(crate) fn bind_unix_listener(
    mode: ReactorMode,
    path: &std::path::Path,
    options: &SocketOptions,
) -> io::Result<(Vec<Listener>, Bound)> {
    check_unix_config(mode, options)?;
    let (listener, file) = bind_unix(path, options)?;
    Ok((vec![listener], Bound::Unix(file)))
}

/// Binds the listening sockets `mode` needs; returns them and the address
/// they listen on (port 0 resolved).
pub(crate) fn bind_listeners(
    mode: ReactorMode,
    addr: SocketAddr,
    options: &SocketOptions,
) -> io::Result<(Vec<Listener>, Bound)> {
    let (count, reuse_port) = match mode {
        ReactorMode::Single | ReactorMode::WorkerPool { .. } => (1, false),
        ReactorMode::MultiReactor { .. } => (1, false),
        ReactorMode::Reuseport { reactors } => (reactors, true),
    };
    let mut listeners = Vec::with_capacity(count);
    let mut local = addr;
    for _ in 0..count {
        // The first one resolves port 0; the others join it.
        let listener = options.bind_listener(local, reuse_port)?;
        local = listener.local_addr()?;
        listeners.push(Listener::Tcp(listener));
    }
    Ok((listeners, Bound::Tcp(local)))
}

/// Starts the loops of `mode` and gives each listener to its loop.
pub(crate) fn wire(
    mode: ReactorMode,
    trigger: Trigger,
    balance: Balance,
    listeners: Vec<Listener>,
    init: Arc<ChannelInit>,
    name: &str,
    timing: u32,
) -> io::Result<Wiring> {
    let spawn = |i: usize| LoopThread::start_timed(i, trigger, format!("{name}-loop-{i}"), timing);
    let mut wiring = Wiring {
        acceptors: Vec::new(),
        io_loops: Vec::new(),
    };
    match mode {
        // One loop accepts and serves (the worker pool, if any, is in
        // `init`: the handlers run there).
        ReactorMode::Single | ReactorMode::WorkerPool { .. } => {
            wiring.acceptors.push(spawn(0)?);
        }
        // Sub-reactors serve; a main loop accepts and hands off.
        ReactorMode::MultiReactor { sub_reactors, .. } => {
            for i in 0..sub_reactors {
                wiring.io_loops.push(spawn(i)?);
            }
            wiring.acceptors.push(spawn(sub_reactors)?);
        }
        // Independent loops, each accepting on its own listener.
        ReactorMode::Reuseport { reactors } => {
            for i in 0..reactors {
                wiring.acceptors.push(spawn(i)?);
            }
        }
    }
    for (acceptor, listener) in wiring.acceptors.iter().zip(listeners) {
        let target = if wiring.io_loops.is_empty() {
            AcceptorTarget::Local
        } else {
            AcceptorTarget::Subs {
                loops: wiring.io_loops.iter().map(|l| l.handle.clone()).collect(),
                balance,
                next: 0,
            }
        };
        listen(acceptor, listener, target, Arc::clone(&init))?;
    }
    Ok(wiring)
}

/// Has a loop register a listener, and waits for the outcome.
fn listen(
    lt: &LoopThread,
    listener: Listener,
    target: AcceptorTarget,
    init: Arc<ChannelInit>,
) -> io::Result<()> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    lt.handle.run_on_loop(move |el| {
        let _ = tx.send(el.register_listener(listener, target, init).map(|_| ()));
    });
    rx.recv()
        .map_err(|_| io::Error::other("the event loop stopped before registering the listener"))?
}
