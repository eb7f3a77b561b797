//! Client side: a group of event loops, and `Bootstrap` to connect.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::bootstrap::channel_settings;
use crate::bootstrap::options::SocketOptions;
use crate::channel::codec::Codec;
use crate::channel::config::{ChannelConfig, Trigger};
use crate::channel::handle::ChannelHandle;
use crate::channel::handler::Handler;
use crate::channel::init::ChannelInit;
use crate::channel::pipeline::{Pipeline, factory};
use crate::channel::shared::ChannelShared;
use crate::reactor::connector::Remote;
use crate::reactor::handle::EventLoopHandle;
use crate::reactor::loop_thread::{LoopThread, on_an_event_loop, shut_down_loops};
use crate::stats::LoopStats;
use crate::tls::TlsClient;
use crate::tls::session::TlsSetup;

struct GroupInner {
    loops: Mutex<Vec<LoopThread>>,
    handles: Vec<EventLoopHandle>,
    next: AtomicUsize,
    trigger: Trigger,
    live: Arc<AtomicUsize>,
}

impl Drop for GroupInner {
    fn drop(&mut self) {
        let loops = self.loops.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = shut_down_loops([loops, &mut []], Duration::ZERO, Duration::from_secs(1));
    }
}

/// A set of event loops for client connections (Netty's `EventLoopGroup`).
///
/// Cheap to clone; the loops stop when the last clone drops, or at
/// [`shutdown_gracefully`](Self::shutdown_gracefully).
#[derive(Clone)]
pub struct EventLoopGroup {
    inner: Arc<GroupInner>,
}

impl fmt::Debug for EventLoopGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoopGroup")
            .field("loops", &self.inner.handles.len())
            .field("trigger", &self.inner.trigger)
            .finish()
    }
}

impl EventLoopGroup {
    /// Starts `loops` event loop threads (at least one).
    pub fn new(loops: usize, trigger: Trigger) -> io::Result<EventLoopGroup> {
        let mut threads = Vec::new();
        for i in 0..loops.max(1) {
            threads.push(LoopThread::start(i, trigger, format!("wharf-client-{i}"))?);
        }
        let handles = threads.iter().map(|l| l.handle.clone()).collect();
        Ok(EventLoopGroup {
            inner: Arc::new(GroupInner {
                loops: Mutex::new(threads),
                handles,
                next: AtomicUsize::new(0),
                trigger,
                live: Arc::new(AtomicUsize::new(0)),
            }),
        })
    }

    /// The next loop, round robin.
    pub fn next(&self) -> EventLoopHandle {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed);
        self.inner.handles[i % self.inner.handles.len()].clone()
    }

    /// Every loop of the group.
    pub fn event_loops(&self) -> &[EventLoopHandle] {
        &self.inner.handles
    }

    /// The trigger of the group's loops.
    pub fn trigger(&self) -> Trigger {
        self.inner.trigger
    }

    /// The counters of all the group's loops, added up.
    pub fn stats(&self) -> LoopStats {
        let all: Vec<LoopStats> = self.inner.handles.iter().map(|l| l.stats()).collect();
        LoopStats::sum(&all)
    }

    /// Open connections made through the group.
    pub fn connections(&self) -> usize {
        self.inner.live.load(Ordering::Acquire)
    }

    /// Shuts the loops down as [`Server::shutdown_gracefully`](crate::Server::shutdown_gracefully)
    /// does, and waits for them.
    pub fn shutdown_gracefully(&self, quiet: Duration, timeout: Duration) -> io::Result<()> {
        let mut loops = self.inner.loops.lock().unwrap_or_else(|e| e.into_inner());
        shut_down_loops([&mut loops, &mut []], quiet, timeout)
    }
}

/// Connects client channels: on an [`EventLoopGroup`] of their own, or on
/// a server's loop ([`on_loop`](Self::on_loop)).
///
/// Two ways to connect. [`connect_then`](Self::connect_then) never blocks:
/// it returns at once and tells a callback, on the loop, how the connect
/// went; it is what a handler uses (a proxy connecting to its backend for
/// each client it accepts). [`connect`](Self::connect) blocks its caller
/// until the connection is up; it is for plain threads, and refuses to run
/// on an event-loop thread, where waiting would stall every channel of the
/// loop (or, on the loop it connects from, wait for itself forever).
///
/// ```no_run
/// use wharf_transport::{Bootstrap, Context, EventLoopGroup, Handler, Pipeline, Trigger};
/// use wharf_transport::buf::ByteBuf;
///
/// struct Printer;
///
/// impl Handler for Printer {
///     type In = ByteBuf;
///     type Out = ByteBuf;
///     fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
///         println!("{} bytes", msg.len());
///     }
/// }
///
/// let group = EventLoopGroup::new(1, Trigger::Edge)?;
/// let channel = Bootstrap::new(&group)
///     .connect("127.0.0.1:7007".parse().unwrap(), Pipeline::bytes(Printer))?;
/// let mut hello = channel_allocator().buffer(5);
/// # fn channel_allocator() -> wharf_transport::buf::Allocator { Default::default() }
/// hello.extend_from_slice(b"hello");
/// channel.write_and_flush(hello);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// From a handler, on its own loop:
///
/// ```no_run
/// use wharf_transport::{Bootstrap, ChannelHandle, Context, Handler, Pipeline};
/// use wharf_transport::buf::ByteBuf;
///
/// /// Sends what the backend says to the client.
/// struct Backend(ChannelHandle<ByteBuf>);
///
/// impl Handler for Backend {
///     type In = ByteBuf;
///     type Out = ByteBuf;
///     fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
///         self.0.write_and_flush(msg);
///     }
///     fn on_inactive(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
///         self.0.close();
///     }
/// }
///
/// /// Connects to the backend for each client; closes the client if that fails.
/// struct Client;
///
/// impl Handler for Client {
///     type In = ByteBuf;
///     type Out = ByteBuf;
///     fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
///         let client = ctx.handle();
///         let backend = Pipeline::bytes(Backend(client.clone()));
///         Bootstrap::on_loop(ctx.event_loop()).connect_then(
///             "127.0.0.1:6379".parse().unwrap(),
///             backend,
///             move |outcome| {
///                 if outcome.is_err() {
///                     client.close();
///                 }
///             },
///         );
///     }
///     fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {}
/// }
/// ```
pub struct Bootstrap {
    target: Target,
    options: SocketOptions,
    config: ChannelConfig,
    connect_timeout: Duration,
    tls: Option<TlsClient>,
}

/// Where a bootstrap's connects run.
#[derive(Debug, Clone)]
enum Target {
    /// The loops of a client group, in turn.
    Group(EventLoopGroup),
    /// One loop (a server's), with its own count of open connections.
    Loop(EventLoopHandle, Arc<AtomicUsize>),
}

impl fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bootstrap")
            .field("target", &self.target)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl Bootstrap {
    /// Connects on `group`'s loops, in turn, with Netty's defaults.
    pub fn new(group: &EventLoopGroup) -> Bootstrap {
        Bootstrap::with_target(Target::Group(group.clone()))
    }

    /// Connects on `event_loop`: typically a server's own loop, from a
    /// handler (`ctx.event_loop()`), so that the new channel lives on the
    /// same thread as the one that asked for it (a proxy's two sides share
    /// a loop, and relaying between them takes no hand-off).
    pub fn on_loop(event_loop: &EventLoopHandle) -> Bootstrap {
        Bootstrap::with_target(Target::Loop(event_loop.clone(), Arc::default()))
    }

    fn with_target(target: Target) -> Bootstrap {
        Bootstrap {
            target,
            options: SocketOptions::default(),
            config: ChannelConfig::default(),
            connect_timeout: Duration::from_secs(10),
            tls: None,
        }
    }

    /// How long a connect may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Speaks TLS on every connection (default: plain TCP): the connect
    /// counts as done, and the handler becomes active, once the handshake
    /// is; a handshake that fails fails the connect with its reason.
    pub fn tls(mut self, tls: TlsClient) -> Self {
        self.tls = Some(tls);
        self
    }

    channel_settings!();

    /// Starts connecting to `addr` with `pipeline` and returns at once.
    /// `on_done` runs on the loop the connect runs on, once: with a handle
    /// to the channel when it is up (its handler's `on_active` has run), or
    /// with the error (refused, unreachable, timed out, a setting that
    /// cannot work, the loop stopped).
    pub fn connect_then<C, H>(
        &self,
        addr: SocketAddr,
        pipeline: Pipeline<C, H>,
        on_done: impl FnOnce(io::Result<ChannelHandle<C::Out>>) + Send + 'static,
    ) where
        C: Codec,
        H: Handler<In = C::In, Out = C::Out>,
    {
        self.start(Remote::Tcp(addr), pipeline, on_done);
    }

    /// [`connect_then`](Self::connect_then) to the Unix-domain stream
    /// socket at `path`. A listener whose backlog is full refuses at once
    /// (`ConnectionRefused`): Unix-domain connects do not wait for room.
    pub fn connect_unix_then<C, H>(
        &self,
        path: impl AsRef<Path>,
        pipeline: Pipeline<C, H>,
        on_done: impl FnOnce(io::Result<ChannelHandle<C::Out>>) + Send + 'static,
    ) where
        C: Codec,
        H: Handler<In = C::In, Out = C::Out>,
    {
        self.start(Remote::Unix(path.as_ref().to_path_buf()), pipeline, on_done);
    }

    /// Starts a connect to `remote`; see [`connect_then`](Self::connect_then).
    fn start<C, H>(
        &self,
        remote: Remote,
        pipeline: Pipeline<C, H>,
        on_done: impl FnOnce(io::Result<ChannelHandle<C::Out>>) + Send + 'static,
    ) where
        C: Codec,
        H: Handler<In = C::In, Out = C::Out>,
    {
        let (event_loop, live) = match &self.target {
            Target::Group(group) => (group.next(), Arc::clone(&group.inner.live)),
            Target::Loop(event_loop, live) => (event_loop.clone(), Arc::clone(live)),
        };
        let typed = move |outcome: io::Result<Arc<ChannelShared>>| {
            on_done(outcome.map(|shared| ChannelHandle::new(shared, C::message_size)));
        };
        if let Err(e) = self.config.validate() {
            event_loop.run_on_loop(move |_| typed(Err(e)));
            return;
        }
        let once = Mutex::new(Some(pipeline));
        let init = Arc::new(ChannelInit {
            factory: factory(move || {
                once.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .expect("a client channel's pipeline is made once")
            }),
            config: Arc::new(self.config.clone()),
            options: self.options.clone(),
            workers: None,
            live,
            max_connections: None,
            accept_backoff: Duration::from_secs(1),
            tls: self.tls.clone().map(TlsSetup::Client),
        });
        let timeout = self.connect_timeout;
        // If the loop has stopped, the closure is dropped unrun: the
        // caller of `connect` then hears of it from its channel's end.
        event_loop.run_on_loop(move |el| el.start_connect(remote, init, timeout, Box::new(typed)));
    }

    /// Connects to `addr` with `pipeline`; blocks until the connection is
    /// established (and the handler's `on_active` has been called) or has
    /// failed or timed out. On an event-loop thread it fails at once with
    /// `WouldBlock` (use [`connect_then`](Self::connect_then) there).
    pub fn connect<C, H>(
        &self,
        addr: SocketAddr,
        pipeline: Pipeline<C, H>,
    ) -> io::Result<ChannelHandle<C::Out>>
    where
        C: Codec,
        H: Handler<In = C::In, Out = C::Out>,
    {
        self.connect_blocking(Remote::Tcp(addr), pipeline)
    }

    /// [`connect`](Self::connect) to the Unix-domain stream socket at
    /// `path`.
    pub fn connect_unix<C, H>(
        &self,
        path: impl AsRef<Path>,
        pipeline: Pipeline<C, H>,
    ) -> io::Result<ChannelHandle<C::Out>>
    where
        C: Codec,
        H: Handler<In = C::In, Out = C::Out>,
    {
        self.connect_blocking(Remote::Unix(path.as_ref().to_path_buf()), pipeline)
    }

    fn connect_blocking<C, H>(
        &self,
        remote: Remote,
        pipeline: Pipeline<C, H>,
    ) -> io::Result<ChannelHandle<C::Out>>
    where
        C: Codec,
        H: Handler<In = C::In, Out = C::Out>,
    {
        if on_an_event_loop() {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "Bootstrap::connect would block an event loop thread (and every channel on \
                 it); use connect_then there",
            ));
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.start(remote, pipeline, move |outcome| {
            let _ = tx.send(outcome);
        });
        rx.recv()
            .map_err(|_| io::Error::other("the event loop stopped while connecting"))?
    }
}
