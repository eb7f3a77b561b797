//! A proxy in a few lines: each accepted connection is connected to an
//! upstream from its own event loop (non-blocking) and then relayed, both
//! ways, with splice once it moves bulk data ([`Relay`]).
//!
//! The upstream is connected with [`Bootstrap::on_loop`], so both
//! channels live on the accepting connection's loop and the relay needs no
//! hand-off between threads. A connect that fails (refused, timed out,
//! unreachable) closes the client's connection, is counted
//! ([`ProxyStats::upstream_failures`]), and is logged once per outage: the
//! first failure after a success (or at start) is logged, the ones that
//! follow are only counted, until a connect succeeds again. An upstream
//! that accepts and resets before the connect is seen to complete is
//! counted the same way, but resets the client, as the relay passes on
//! every reset: an orderly end would tell the client that nothing was
//! cut.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use wharf_buf::ByteBuf;

use crate::bootstrap::client::Bootstrap;
use crate::bootstrap::server::ServerBootstrap;
use crate::channel::handle::ChannelHandle;
use crate::channel::pipeline::Pipeline;
use crate::relay::{Relay, RelayStats};
use crate::{ChannelConfig, ChannelError, Context, Handler, WaterMark};

/// Where the proxy connects.
#[derive(Debug, Clone)]
enum Upstream {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// What a [`TcpProxy`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Client connections that asked for an upstream.
    pub connections: u64,
    /// Upstream connects that failed (each closed its client, or reset it
    /// when the upstream had accepted and then reset the connection).
    pub upstream_failures: u64,
    /// The relay's counters.
    pub relay: RelayStats,
}

struct ProxyShared {
    upstream: Upstream,
    relay: Relay,
    connect_timeout: Duration,
    water_mark: WaterMark,
    coalesce_writes: usize,
    connections: AtomicU64,
    failures: AtomicU64,
    /// The last connect failed: further failures are counted, not logged.
    failing: AtomicBool,
}

/// A proxy to one upstream (see the module docs): give
/// [`serve`](Self::serve) a server bootstrap, and every connection it
/// accepts is relayed.
///
/// ```no_run
/// use wharf_transport::{Relay, RelayConfig, ServerBootstrap};
/// use wharf_transport::handlers::TcpProxy;
///
/// let proxy = TcpProxy::new("127.0.0.1:8080".parse().unwrap(), Relay::new(RelayConfig::default())?);
/// let server = proxy.serve(ServerBootstrap::new()).bind("127.0.0.1:8000")?;
/// println!("proxying {} -> 127.0.0.1:8080", server.local_addr());
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Threading: `Clone + Send + Sync`; clones share the counters.
#[derive(Clone)]
pub struct TcpProxy {
    shared: Arc<ProxyShared>,
}

impl fmt::Debug for TcpProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpProxy")
            .field("upstream", &self.shared.upstream)
            .field("relay", &self.shared.relay)
            .finish_non_exhaustive()
    }
}

impl TcpProxy {
    /// A proxy to the TCP address `upstream`, relaying with `relay`.
    pub fn new(upstream: SocketAddr, relay: Relay) -> TcpProxy {
        TcpProxy::to(Upstream::Tcp(upstream), relay)
    }

    /// A proxy to the Unix-domain stream socket at `path`.
    pub fn to_unix(path: impl Into<PathBuf>, relay: Relay) -> TcpProxy {
        TcpProxy::to(Upstream::Unix(path.into()), relay)
    }

    fn to(upstream: Upstream, relay: Relay) -> TcpProxy {
        TcpProxy {
            shared: Arc::new(ProxyShared {
                upstream,
                relay,
                connect_timeout: Duration::from_secs(10),
                water_mark: WaterMark::default(),
                coalesce_writes: ChannelConfig::default().coalesce_writes,
                connections: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                failing: AtomicBool::new(false),
            }),
        }
    }

    /// How long an upstream connect may take (default 10 s). Call before
    /// the proxy is shared.
    pub fn connect_timeout(mut self, timeout: Duration) -> TcpProxy {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.connect_timeout = timeout;
        }
        self
    }

    /// The water marks of the upstream channels (default 32 / 64 KiB);
    /// [`serve`](Self::serve) gives the client channels the same. They
    /// bound the bytes in flight per direction beyond a pipe. Call before
    /// the proxy is shared.
    pub fn water_mark(mut self, low: usize, high: usize) -> TcpProxy {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.water_mark = WaterMark { low, high };
        }
        self
    }

    /// The write coalescing of the upstream channels (default 512 bytes;
    /// 0 turns it off; see
    /// [`ChannelConfig::coalesce_writes`](crate::ChannelConfig::coalesce_writes));
    /// [`serve`](Self::serve) gives the client channels the same. Call
    /// before the proxy is shared.
    pub fn coalesce_writes(mut self, max_bytes: usize) -> TcpProxy {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.coalesce_writes = max_bytes;
        }
        self
    }

    /// `bootstrap` serving this proxy: channels that read nothing until
    /// they are relayed (`auto_read(false)`), with the proxy's water marks
    /// and write coalescing, and a [`ProxyHandler`] each.
    pub fn serve(&self, bootstrap: ServerBootstrap) -> ServerBootstrap {
        let proxy = self.clone();
        let WaterMark { low, high } = self.shared.water_mark;
        bootstrap
            .auto_read(false)
            .water_mark(low, high)
            .coalesce_writes(self.shared.coalesce_writes)
            .child_handler(move || Pipeline::bytes(proxy.handler()))
    }

    /// The handler for one client connection (of a bootstrap with
    /// `auto_read(false)`; [`serve`](Self::serve) sets it up).
    pub fn handler(&self) -> ProxyHandler {
        ProxyHandler {
            shared: Arc::clone(&self.shared),
            warned: false,
        }
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            connections: self.shared.connections.load(Ordering::Relaxed),
            upstream_failures: self.shared.failures.load(Ordering::Relaxed),
            relay: self.shared.relay.stats(),
        }
    }
}

impl ProxyShared {
    /// `bootstrap` with the upstream channels' settings.
    fn upstream_settings(&self, bootstrap: Bootstrap) -> Bootstrap {
        let WaterMark { low, high } = self.water_mark;
        bootstrap
            .auto_read(false)
            .water_mark(low, high)
            .coalesce_writes(self.coalesce_writes)
            .connect_timeout(self.connect_timeout)
    }

    /// Connects `client` to the upstream from `ctx`'s loop, then links.
    fn connect(self: &Arc<Self>, ctx: &Context<'_, ByteBuf>) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        let client = ctx.handle();
        let bootstrap = self.upstream_settings(Bootstrap::on_loop(ctx.event_loop()));
        let shared = Arc::clone(self);
        let done = move |outcome: io::Result<ChannelHandle<ByteBuf>>| match outcome {
            Ok(upstream) => shared.connected(&client, &upstream),
            Err(e) => shared.failed(&client, &e),
        };
        let pipeline = Pipeline::bytes(UpstreamEnd);
        match &self.upstream {
            Upstream::Tcp(addr) => bootstrap.connect_then(*addr, pipeline, done),
            Upstream::Unix(path) => bootstrap.connect_unix_then(path, pipeline, done),
        }
    }

    fn connected(&self, client: &ChannelHandle<ByteBuf>, upstream: &ChannelHandle<ByteBuf>) {
        if self.failing.swap(false, Ordering::Relaxed) {
            log::info!("proxy: connecting to {:?} again", self.upstream);
        }
        if let Err(e) = self.relay.link(client, upstream) {
            log::error!("proxy: cannot relay: {e}");
            client.close();
            upstream.close();
        }
    }

    fn failed(&self, client: &ChannelHandle<ByteBuf>, error: &io::Error) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if !self.failing.swap(true, Ordering::Relaxed) {
            log::warn!(
                "proxy: connecting to {:?} failed: {error} (ending the client; further \
                 failures are counted, not logged, until a connect succeeds)",
                self.upstream
            );
        }
        match error.kind() {
            // The upstream accepted and then reset before the connect was
            // seen to complete: the client hears a reset, as it would had
            // the reset come a moment later, through the relay.
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                self.relay.reset(client)
            }
            // Refused, unreachable, timed out: nothing was said, so the
            // client is closed (issue 11).
            _ => client.close(),
        }
    }
}

/// The handler of one proxied client connection: connects the upstream
/// when the connection is active, then relays. It reads nothing itself.
pub struct ProxyHandler {
    shared: Arc<ProxyShared>,
    warned: bool,
}

impl fmt::Debug for ProxyHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyHandler")
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

impl Handler for ProxyHandler {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        self.shared.connect(ctx);
    }

    /// Only a bootstrap with reading on gets here: those bytes were taken
    /// from the socket before the relay could have them, so the connection
    /// cannot be relayed faithfully and is closed.
    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {
        if !std::mem::replace(&mut self.warned, true) {
            log::error!(
                "proxy: channel {} read bytes before its relay started (serve proxies with \
                 TcpProxy::serve, or auto_read(false)); closing it",
                ctx.id()
            );
        }
        ctx.close();
    }
}

/// The upstream side's handler: the relay does everything.
struct UpstreamEnd;

impl Handler for UpstreamEnd {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {}

    fn on_error(&mut self, ctx: &mut Context<'_, ByteBuf>, error: &ChannelError) {
        log::debug!("proxy: upstream channel {}: {error}", ctx.id());
        ctx.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::RelayConfig;
    use crate::{EventLoopGroup, Trigger};

    fn proxy() -> TcpProxy {
        let relay = Relay::new(RelayConfig::default()).expect("relay");
        TcpProxy::new("127.0.0.1:9".parse().expect("address"), relay)
    }

    /// Both sides of a relayed connection coalesce as the proxy says: the
    /// client channels through `serve`, the upstream ones through the
    /// connect's bootstrap.
    #[test]
    fn coalescing_reaches_both_sides() {
        let group = EventLoopGroup::new(1, Trigger::Edge).expect("group");
        for max in [0, 100] {
            let proxy = proxy().coalesce_writes(max);
            let served = proxy.serve(ServerBootstrap::new());
            assert_eq!(served.settings().coalesce_writes, max);
            let upstream = proxy.shared.upstream_settings(Bootstrap::new(&group));
            assert_eq!(upstream.settings().coalesce_writes, max);
        }
        let default = proxy().shared.upstream_settings(Bootstrap::new(&group));
        assert_eq!(
            default.settings().coalesce_writes,
            ChannelConfig::default().coalesce_writes
        );
    }
}
