//! `ServerBootstrap` and the running `Server`.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::bootstrap::modes::{self, Bound, Wiring};
use crate::bootstrap::options::SocketOptions;
use crate::bootstrap::{Balance, ReactorMode, channel_settings};
use crate::channel::codec::Codec;
use crate::channel::config::{ChannelConfig, Trigger};
use crate::channel::handler::Handler;
use crate::channel::init::ChannelInit;
use crate::channel::pipeline::{Pipeline, PipelineFactory, factory};
use crate::reactor::handle::EventLoopHandle;
use crate::reactor::listener::Listener;
use crate::reactor::loop_thread::{LoopThread, shut_down_loops};
use crate::stats::LoopStats;
use crate::tls::TlsServer;
use crate::tls::session::TlsSetup;
use crate::worker::WorkerPool;

/// Configures and starts a server.
///
/// ```no_run
/// use wharf_transport::{Context, Handler, Pipeline, ReactorMode, ServerBootstrap, Trigger};
/// use wharf_transport::buf::ByteBuf;
///
/// struct Echo;
///
/// impl Handler for Echo {
///     type In = ByteBuf;
///     type Out = ByteBuf;
///     fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
///         ctx.write(msg);
///     }
///     fn on_read_complete(&mut self, ctx: &mut Context<'_, ByteBuf>) {
///         ctx.flush();
///     }
/// }
///
/// let mut server = ServerBootstrap::new()
///     .mode(ReactorMode::MultiReactor { sub_reactors: 2, workers: 0 })
///     .trigger(Trigger::Edge)
///     .child_handler(|| Pipeline::bytes(Echo))
///     .bind("127.0.0.1:7000")?;
/// println!("listening on {}", server.local_addr());
/// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(5))?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ServerBootstrap {
    mode: ReactorMode,
    trigger: Trigger,
    balance: Balance,
    options: SocketOptions,
    config: ChannelConfig,
    factory: Option<PipelineFactory>,
    max_connections: Option<usize>,
    accept_backoff: Duration,
    name: String,
    tls: Option<TlsServer>,
}

impl fmt::Debug for ServerBootstrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBootstrap")
            .field("mode", &self.mode)
            .field("trigger", &self.trigger)
            .field("options", &self.options)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for ServerBootstrap {
    fn default() -> Self {
        ServerBootstrap::new()
    }
}

impl ServerBootstrap {
    /// A single-reactor, edge-triggered server with Netty's defaults.
    pub fn new() -> ServerBootstrap {
        ServerBootstrap {
            mode: ReactorMode::Single,
            trigger: Trigger::Edge,
            balance: Balance::RoundRobin,
            options: SocketOptions::default(),
            config: ChannelConfig::default(),
            factory: None,
            max_connections: None,
            accept_backoff: Duration::from_secs(1),
            name: "wharf".to_string(),
            tls: None,
        }
    }

    /// How threads are wired (default [`ReactorMode::Single`]).
    pub fn mode(mut self, mode: ReactorMode) -> Self {
        self.mode = mode;
        self
    }

    /// Edge- or level-triggered epoll (default edge).
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }

    /// How a main loop spreads connections over sub-reactors (default
    /// round robin).
    pub fn balance(mut self, balance: Balance) -> Self {
        self.balance = balance;
        self
    }

    /// Connections beyond `max` are closed as soon as they are accepted
    /// (default: no limit; running out of descriptors then pauses
    /// accepting, see [`accept_backoff`](Self::accept_backoff)). The limit
    /// is capped to what the process's descriptor limit leaves after a
    /// reserve for the loops and for files, and `bind` logs when it caps
    /// ([`Server::max_connections`] tells the limit in force): a server
    /// that accepted until no descriptor was left could not open a file to
    /// answer anyone.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = Some(max);
        self
    }

    /// How long accepting pauses after running out of descriptors
    /// (default 1 s, as Netty).
    pub fn accept_backoff(mut self, backoff: Duration) -> Self {
        self.accept_backoff = backoff;
        self
    }

    /// Serves TLS on every connection (default: plain TCP): the handshake
    /// runs before the handler's `on_active`, and the same pipeline runs
    /// over the decrypted stream (see [`tls`](crate::tls)).
    pub fn tls(mut self, tls: TlsServer) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The prefix of the server's thread names (default `wharf`).
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    channel_settings!();

    /// Makes the pipeline of each accepted connection.
    pub fn child_handler<C, H, F>(mut self, make: F) -> Self
    where
        C: Codec,
        H: Handler<In = C::In, Out = C::Out>,
        F: Fn() -> Pipeline<C, H> + Send + Sync + 'static,
    {
        self.factory = Some(factory(make));
        self
    }

    /// Binds and starts serving. Port 0 picks a free port
    /// ([`Server::local_addr`] tells which).
    ///
    /// Configuration that cannot work is refused here, before anything
    /// starts, with an `InvalidInput` error that names the option; an
    /// address in use fails before any thread is started.
    pub fn bind(self, addr: impl ToSocketAddrs) -> io::Result<Server> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"))?;
        self.check()?;
        let (listeners, bound) = modes::bind_listeners(self.mode, addr, &self.options)?;
        self.start(listeners, bound)
    }

    /// Binds a Unix-domain stream socket at `path` and starts serving, in
    /// any mode but [`ReactorMode::Reuseport`] (refused with an
    /// `InvalidInput` error naming the mode: Unix-domain sockets have no
    /// `SO_REUSEPORT`). Channels are the same as over TCP, less the TCP
    /// options (`TcpNoDelay` is not applied) and the addresses
    /// (`peer_addr` is `None`).
    ///
    /// A socket file left at `path` by a server that is gone (nothing
    /// accepts on it) is replaced; one a running server listens on is not
    /// (`AddrInUse`), nor is anything at `path` that is not a socket
    /// (`AlreadyExists`). The server removes its socket file when it ends.
    ///
    /// ```no_run
    /// use wharf_transport::{Pipeline, ReactorMode, ServerBootstrap};
    /// use wharf_transport::handlers::Echo;
    ///
    /// let server = ServerBootstrap::new()
    ///     .mode(ReactorMode::MultiReactor { sub_reactors: 2, workers: 0 })
    ///     .child_handler(|| Pipeline::bytes(Echo))
    ///     .bind_unix("/tmp/echo.sock")?;
    /// assert_eq!(server.unix_path(), Some(std::path::Path::new("/tmp/echo.sock")));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_unix(self, path: impl AsRef<Path>) -> io::Result<Server> {
        self.check()?;
        let (listeners, bound) =
            modes::bind_unix_listener(self.mode, path.as_ref(), &self.options)?;
        self.start(listeners, bound)
    }

    /// Refuses settings that cannot work, naming the option.
    fn check(&self) -> io::Result<()> {
        if self.factory.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no child_handler was set",
            ));
        }
        if self.mode.io_loops() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "mode: a reactor mode needs at least one I/O loop",
            ));
        }
        self.config.validate()?;
        if matches!(self.mode, ReactorMode::WorkerPool { workers: 0 }) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "mode: the worker-pool mode needs at least one worker",
            ));
        }
        Ok(())
    }

    /// Starts the loops (and workers) of the mode on `listeners`.
    fn start(self, listeners: Vec<Listener>, bound: Bound) -> io::Result<Server> {
        let factory = self.factory.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no child_handler was set")
        })?;
        let loops = self.mode.io_loops()
            + usize::from(matches!(self.mode, ReactorMode::MultiReactor { .. }));
        let max_connections = fit_to_descriptors(self.max_connections, loops);
        let workers = match self.mode.workers() {
            0 => None,
            n => Some(WorkerPool::start(
                n,
                &format!("{}-worker", self.name),
                self.config.allocator,
            )?),
        };
        let live = Arc::new(AtomicUsize::new(0));
        let init = Arc::new(ChannelInit {
            factory,
            config: Arc::new(self.config),
            options: self.options,
            workers: workers.clone(),
            live: Arc::clone(&live),
            max_connections,
            accept_backoff: self.accept_backoff,
            tls: self.tls.map(TlsSetup::Server),
        });
        let wired = modes::wire(
            self.mode,
            self.trigger,
            self.balance,
            listeners,
            init,
            &self.name,
        );
        let Wiring {
            acceptors,
            io_loops,
        } = match wired {
            Ok(wiring) => wiring,
            Err(e) => {
                if let Some(workers) = workers {
                    workers.shutdown();
                }
                return Err(e);
            }
        };
        Ok(Server {
            max_connections,
            bound,
            mode: self.mode,
            trigger: self.trigger,
            acceptors,
            io_loops,
            workers,
            live,
            control: Arc::new(Control::default()),
            done: false,
        })
    }
}

#[derive(Default)]
struct Control {
    request: Mutex<Option<(Duration, Duration)>>,
    requested: Condvar,
}

/// Descriptors kept for what is not a connection: each loop's epoll and
/// waker (and the level-triggered duplicate), the splice pipes, files the
/// handlers open, logs.
const RESERVED_DESCRIPTORS: usize = 64;

/// `asked` capped to what the soft descriptor limit leaves after the
/// reserve and the descriptors open now; logged when it caps.
fn fit_to_descriptors(asked: Option<usize>, loops: usize) -> Option<usize> {
    let max = asked?;
    let Ok((soft, _)) = crate::sys::limits::fd_limits() else {
        return asked;
    };
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    let open = crate::sys::limits::open_descriptors().unwrap_or(0);
    let reserve = RESERVED_DESCRIPTORS + 4 * loops;
    let room = soft.saturating_sub(open + reserve).max(1);
    if max <= room {
        return Some(max);
    }
    log::info!(
        "max_connections: {room} (asked for {max}): the descriptor limit of {soft} leaves \
         that many after {open} open and {reserve} kept for the loops and for files"
    );
    Some(room)
}

/// Asks a running server to shut down, from any thread (a signal handler
/// thread, a test); [`Server::wait`] carries it out.
#[derive(Clone)]
pub struct ShutdownHandle {
    control: Arc<Control>,
}

impl fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownHandle").finish_non_exhaustive()
    }
}

impl ShutdownHandle {
    /// Requests a graceful shutdown (see [`Server::shutdown_gracefully`]);
    /// returns at once.
    pub fn shutdown_gracefully(&self, quiet: Duration, timeout: Duration) {
        let mut request = self
            .control
            .request
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        request.get_or_insert((quiet, timeout));
        self.control.requested.notify_all();
    }
}

/// A running server.
///
/// Dropping it shuts it down with no quiet period and a 2 s limit; use
/// [`shutdown_gracefully`](Self::shutdown_gracefully) to choose.
///
/// Threading: `Send`; the server's own threads do the work, and the handle
/// methods can be called from any one thread that owns it.
pub struct Server {
    bound: Bound,
    max_connections: Option<usize>,
    mode: ReactorMode,
    trigger: Trigger,
    /// Loops with listeners: shut down first.
    acceptors: Vec<LoopThread>,
    /// Sub-reactors of the multi-reactor mode.
    io_loops: Vec<LoopThread>,
    workers: Option<Arc<WorkerPool>>,
    live: Arc<AtomicUsize>,
    control: Arc<Control>,
    done: bool,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("bound", &self.bound)
            .field("mode", &self.mode)
            .field("trigger", &self.trigger)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// The address the server listens on. A server bound with
    /// [`bind_unix`](ServerBootstrap::bind_unix) has none: it says
    /// `0.0.0.0:0` (see [`unix_path`](Self::unix_path)).
    pub fn local_addr(&self) -> SocketAddr {
        match &self.bound {
            Bound::Tcp(addr) => *addr,
            Bound::Unix(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }

    /// The path of the Unix-domain socket the server listens on (`None`
    /// for TCP).
    pub fn unix_path(&self) -> Option<&Path> {
        match &self.bound {
            Bound::Tcp(_) => None,
            Bound::Unix(file) => Some(file.path()),
        }
    }

    /// The connection limit in force: the one asked for, capped to what
    /// the descriptor limit allows (`None`: none was asked for).
    pub fn max_connections(&self) -> Option<usize> {
        self.max_connections
    }

    /// The reactor mode.
    pub fn mode(&self) -> ReactorMode {
        self.mode
    }

    /// The trigger.
    pub fn trigger(&self) -> Trigger {
        self.trigger
    }

    /// Handles to every event loop of the server (acceptors first).
    pub fn event_loops(&self) -> Vec<EventLoopHandle> {
        self.acceptors
            .iter()
            .chain(&self.io_loops)
            .map(|l| l.handle.clone())
            .collect()
    }

    /// The counters of all the server's loops, added up.
    pub fn stats(&self) -> LoopStats {
        let all: Vec<LoopStats> = self.event_loops().iter().map(|l| l.stats()).collect();
        LoopStats::sum(&all)
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// A handle to request a shutdown from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            control: Arc::clone(&self.control),
        }
    }

    /// Shuts down: listeners close at once; open connections are served
    /// until nothing has happened for `quiet` (no I/O, no task, no handler
    /// work in flight), then closed after what they have queued is sent;
    /// whatever is still open after `timeout` is closed at once. Returns when
    /// every thread of the server has ended. Netty's defaults are 2 s and
    /// 15 s.
    pub fn shutdown_gracefully(&mut self, quiet: Duration, timeout: Duration) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let result = shut_down_loops([&mut self.acceptors, &mut self.io_loops], quiet, timeout);
        if let Some(workers) = self.workers.take() {
            workers.shutdown();
        }
        result
    }

    /// Blocks until a [`ShutdownHandle`] requests a shutdown, then carries
    /// it out.
    pub fn wait(&mut self) -> io::Result<()> {
        let (quiet, timeout) = {
            let mut request = self
                .control
                .request
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(r) = *request {
                    break r;
                }
                request = self
                    .control
                    .requested
                    .wait(request)
                    .unwrap_or_else(|e| e.into_inner());
            }
        };
        self.shutdown_gracefully(quiet, timeout)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
    }
}
