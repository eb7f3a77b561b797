//! `ServerBootstrap`: how a server is configured and started (the running
//! [`Server`] it returns is in `running.rs`).

use std::fmt;
use std::io;
use std::net::ToSocketAddrs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use crate::bootstrap::descriptors::fit_to_descriptors;
use crate::bootstrap::modes::{self, Bound, Wiring};
use crate::bootstrap::options::SocketOptions;
use crate::bootstrap::running::Server;
use crate::bootstrap::shutdown::Control;
use crate::bootstrap::{Balance, ReactorMode, channel_settings};
use crate::channel::codec::Codec;
use crate::channel::config::{ChannelConfig, Trigger};
use crate::channel::handler::Handler;
use crate::channel::init::ChannelInit;
use crate::channel::pipeline::{Pipeline, PipelineFactory, factory, factory_on_loop};
use crate::reactor::listener::Listener;
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
    handler_timing: u32,
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
            handler_timing: crate::metrics::HANDLER_TIMING_SAMPLE,
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

    /// Times one pipeline callback in `every` for the handler-time
    /// histograms of [`Server::metrics`] (default
    /// [`HANDLER_TIMING_SAMPLE`](crate::metrics::HANDLER_TIMING_SAMPLE); 1
    /// times every callback, at the cost of two clock reads each; 0 none).
    pub fn handler_timing(mut self, every: u32) -> Self {
        self.handler_timing = every;
        self
    }

    channel_settings!();

    /// Makes the pipeline of each accepted connection. Called on the event
    /// loop the connection is registered on, once per connection.
    pub fn child_handler<C, H, F>(mut self, make: F) -> Self
    where
        C: Codec,
        H: Handler<In = C::In, Out = C::Out>,
        F: Fn() -> Pipeline<C, H> + Send + Sync + 'static,
    {
        self.factory = Some(factory(make));
        self
    }

    /// As [`child_handler`](Self::child_handler), telling `make` which
    /// event loop the connection is registered on: its
    /// [`EventLoopHandle::id`](crate::EventLoopHandle::id), in `0..mode.io_loops()` in every mode. State
    /// sharded per loop (a cache, a pool of backend connections, a
    /// counter) is then picked once per connection, for the codec as well
    /// as the handler, with no `thread_local!` and no lock when the
    /// handlers run on their loop.
    ///
    /// (A handler can also learn it at
    /// [`on_active`](crate::Handler::on_active) from
    /// [`Context::event_loop`](crate::Context::event_loop), but it must
    /// then hold its shard as an `Option` until then, and a codec has no
    /// context at all.) In the worker-pool modes the handlers run on
    /// worker threads, not on the loop: shards shared with them need their
    /// own synchronisation.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use wharf_transport::{Context, Handler, Pipeline, ReactorMode, ServerBootstrap};
    /// use wharf_transport::buf::ByteBuf;
    ///
    /// /// Counts the bytes of its loop's connections in that loop's shard.
    /// struct Count(Arc<AtomicU64>);
    ///
    /// impl Handler for Count {
    ///     type In = ByteBuf;
    ///     type Out = ByteBuf;
    ///     fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
    ///         self.0.fetch_add(msg.len() as u64, Ordering::Relaxed);
    ///     }
    /// }
    ///
    /// let mode = ReactorMode::Reuseport { reactors: 2 };
    /// let shards: Arc<Vec<Arc<AtomicU64>>> =
    ///     Arc::new((0..mode.io_loops()).map(|_| Arc::default()).collect());
    /// let per_loop = Arc::clone(&shards);
    /// let _server = ServerBootstrap::new()
    ///     .mode(mode)
    ///     .child_handler_on_loop(move |index| Pipeline::bytes(Count(Arc::clone(&per_loop[index]))))
    ///     .bind("127.0.0.1:0")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn child_handler_on_loop<C, H, F>(mut self, make: F) -> Self
    where
        C: Codec,
        H: Handler<In = C::In, Out = C::Out>,
        F: Fn(usize) -> Pipeline<C, H> + Send + Sync + 'static,
    {
        self.factory = Some(factory_on_loop(make));
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
                self.handler_timing,
            )?),
        };
        let live = Arc::new(AtomicUsize::new(0));
        let allocator = self.config.allocator;
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
            self.handler_timing,
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
            allocator,
            control: Arc::new(Control::default()),
            done: false,
        })
    }
}
