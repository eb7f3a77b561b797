//! Relaying between two channels: what one reads, the other writes, both
//! ways, with `splice(2)` through a pooled pipe once a direction carries
//! bulk data (zero copy), and with pooled buffers below that.
//!
//! A proxy, a gateway, a tunnel: once the two connections are paired, the
//! handlers have nothing to add, and every byte through user space is a
//! waste. [`Relay::link`] pairs two channels of the same event loop. From
//! then on the loop moves the bytes itself, without the pipelines:
//!
//! * **Zero copy for bulk.** A direction starts by copying through pooled
//!   buffers (a `read`, then the other side's gathering write); once a read
//!   brings at least [`RelayConfig::splice_threshold`] bytes it switches to
//!   `splice` (socket → pipe → socket), and back after a run of small
//!   reads. Small splices cost more than the copy they save (HAProxy saw
//!   it below ~4 KiB; wharf's measurement, up to 16 KiB, is in the
//!   README). Pipes come from a
//!   bounded pool per loop ([`RelayConfig::max_pipes`], sized with
//!   `F_SETPIPE_SZ`); when the pool or the descriptors run out, the
//!   direction copies instead. Nothing fails for want of a pipe.
//! * **Backpressure both ways.** Bytes read from one side are queued on the
//!   other and count against its water marks; while that side is not
//!   writable, the first is not read. A slow reader on either end holds at
//!   most a pipe (or a read buffer) plus its high water mark.
//! * **Half-close.** The end of one side's input shuts the other's output
//!   once what was queued before it is sent; the other direction goes on.
//!   When both directions have ended, both channels close.
//! * **Resets.** A side that fails (reset, error, timeout) resets the
//!   other; a side closed gracefully (its handler, a server shutdown)
//!   closes the other gracefully, after what it has queued is sent.
//!
//! Handlers of linked channels get no more reads; they still hear errors
//! and `on_inactive`. Link channels that have read nothing yet (bootstrap
//! them with `auto_read(false)`): what a pipeline already read is not
//! relayed. Both channels must be on the same loop (connect the second
//! from the first's loop: [`Bootstrap::on_loop`](crate::Bootstrap::on_loop)).
//! The ready-made [`handlers::TcpProxy`](crate::handlers::TcpProxy) does
//! all of this for a TCP proxy.
//!
//! Threading: a [`Relay`] is `Clone + Send + Sync`; the relaying itself
//! runs on the channels' loop.

mod link;
mod pipes;
mod pump;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub(crate) use link::RelayLink;
pub use pipes::SplicedBytes;
pub(crate) use pipes::{PipeLease, PipeShelf};

use crate::channel::handle::ChannelHandle;

/// When a relay splices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpliceMode {
    /// Copy small reads, splice once a direction moves bulk data (see
    /// [`RelayConfig::splice_threshold`]).
    #[default]
    Auto,
    /// Always splice (while pipes are to be had).
    Always,
    /// Never splice: read into pooled buffers and write them.
    Never,
}

/// How a [`Relay`] moves bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// When to splice (default [`SpliceMode::Auto`]).
    pub splice: SpliceMode,
    /// With `Auto`, a direction splices after a read of at least this many
    /// bytes, and copies again after reads of less than an eighth of it
    /// (default 32 KiB: below it, splicing cost the proxy as much CPU as
    /// copying or more; see the README's relay table).
    pub splice_threshold: usize,
    /// Bytes asked for each pipe (`F_SETPIPE_SZ`; the kernel may grant
    /// less to a process past its pipe quota). At least 4 KiB (default
    /// 256 KiB).
    pub pipe_size: usize,
    /// Pipes one event loop keeps at most, in transit or idle; beyond,
    /// relays copy (default 512: 1024 descriptors).
    pub max_pipes: usize,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            splice: SpliceMode::Auto,
            splice_threshold: 32 << 10,
            pipe_size: 256 << 10,
            max_pipes: 512,
        }
    }
}

impl RelayConfig {
    /// Refuses settings that cannot work, naming the option.
    pub fn validate(&self) -> io::Result<()> {
        let invalid = |what: &str| {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                what.to_string(),
            ))
        };
        if self.pipe_size < 4096 || self.pipe_size > 1 << 30 {
            return invalid("pipe_size: between 4 KiB and 1 GiB");
        }
        if self.splice_threshold == 0 {
            return invalid("splice_threshold: at least one byte");
        }
        if self.max_pipes == 0 && self.splice == SpliceMode::Always {
            return invalid("max_pipes: SpliceMode::Always needs at least one pipe");
        }
        Ok(())
    }
}

/// What relays did, counted as they go.
#[derive(Debug, Default)]
pub(crate) struct RelayCounters {
    pub links: AtomicU64,
    pub spliced_bytes: AtomicU64,
    pub splices: AtomicU64,
    pub copied_bytes: AtomicU64,
    pub copies: AtomicU64,
    pub pipe_shortages: AtomicU64,
    pub half_closes: AtomicU64,
    pub resets: AtomicU64,
}

/// A snapshot of a [`Relay`]'s counters, over every pair it linked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Pairs linked.
    pub links: u64,
    /// Bytes moved with `splice` (socket → pipe).
    pub spliced_bytes: u64,
    /// `splice` calls from a socket into a pipe.
    pub splices: u64,
    /// Bytes moved by copying through pooled buffers.
    pub copied_bytes: u64,
    /// Reads into pooled buffers.
    pub copies: u64,
    /// Reads that copied because no pipe was to be had.
    pub pipe_shortages: u64,
    /// Ends of input passed on as a half-close of the other side.
    pub half_closes: u64,
    /// Failures passed on as a reset of the other side.
    pub resets: u64,
}

/// The configuration and counters every link of one relay shares.
#[derive(Debug)]
pub(crate) struct RelayShared {
    pub config: RelayConfig,
    pub counters: RelayCounters,
}

/// Pairs channels so that each one's input becomes the other's output (see
/// the module docs).
///
/// ```no_run
/// use wharf_transport::{ChannelHandle, Relay, RelayConfig};
/// use wharf_transport::buf::ByteBuf;
///
/// fn pair(relay: &Relay, client: &ChannelHandle<ByteBuf>, upstream: &ChannelHandle<ByteBuf>) {
///     if let Err(e) = relay.link(client, upstream) {
///         eprintln!("cannot relay: {e}");
///         client.close();
///         upstream.close();
///     }
/// }
///
/// let relay = Relay::new(RelayConfig::default())?;
/// println!("{:?}", relay.stats());
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Threading: `Clone + Send + Sync`; clones share their counters.
#[derive(Clone)]
pub struct Relay {
    shared: Arc<RelayShared>,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay with `config`, refused (`InvalidInput`, naming the option)
    /// if it cannot work.
    pub fn new(config: RelayConfig) -> io::Result<Relay> {
        config.validate()?;
        Ok(Relay {
            shared: Arc::new(RelayShared {
                config,
                counters: RelayCounters::default(),
            }),
        })
    }

    /// Links `a` and `b`: from now on what one reads the other writes. The
    /// link is made on their loop, right after the call; if either channel
    /// has closed by then (a relayed channel reads nothing before the link,
    /// so it ended in an error), the other is reset. Fails at once
    /// (`InvalidInput`) when they are the same channel, on different loops
    /// or TLS channels (their sockets carry ciphertext; a TLS channel whose
    /// handshake is still under way is closed with its partner on the
    /// loop), and when their loop has stopped.
    pub fn link<A: Send + 'static, B: Send + 'static>(
        &self,
        a: &ChannelHandle<A>,
        b: &ChannelHandle<B>,
    ) -> io::Result<()> {
        let (a, b) = (Arc::clone(a.shared()), Arc::clone(b.shared()));
        if a.id == b.id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "relay: a channel cannot be linked to itself",
            ));
        }
        if a.tls().is_some() || b.tls().is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "relay: a TLS channel cannot be relayed (its socket carries ciphertext)",
            ));
        }
        if !Arc::ptr_eq(&a.event_loop.shared, &b.event_loop.shared) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "relay: both channels must be on the same event loop (connect the second \
                 with Bootstrap::on_loop from the first's loop)",
            ));
        }
        let shared = Arc::clone(&self.shared);
        let event_loop = a.event_loop.clone();
        if event_loop.run_on_loop(move |el| el.relay_link(&a, &b, shared)) {
            Ok(())
        } else {
            Err(io::Error::other(
                "relay: the channels' event loop has stopped",
            ))
        }
    }

    /// Resets `channel` (`SO_LINGER` 0), as the relay resets one side when
    /// the other fails, for a side whose partner failed before the two
    /// could be linked (a proxy's upstream that reset as its connect
    /// completed). Counted in [`RelayStats::resets`]. Nothing happens if
    /// the channel has closed or its loop has stopped.
    pub(crate) fn reset<A: Send + 'static>(&self, channel: &ChannelHandle<A>) {
        let shared = Arc::clone(channel.shared());
        let relay = Arc::clone(&self.shared);
        let event_loop = shared.event_loop.clone();
        event_loop.run_on_loop(move |el| el.relay_reset(&shared, &relay));
    }

    /// The configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.shared.config
    }

    /// What the relay's links did so far.
    pub fn stats(&self) -> RelayStats {
        let c = &self.shared.counters;
        RelayStats {
            links: c.links.load(Relaxed),
            spliced_bytes: c.spliced_bytes.load(Relaxed),
            splices: c.splices.load(Relaxed),
            copied_bytes: c.copied_bytes.load(Relaxed),
            copies: c.copies.load(Relaxed),
            pipe_shortages: c.pipe_shortages.load(Relaxed),
            half_closes: c.half_closes.load(Relaxed),
            resets: c.resets.load(Relaxed),
        }
    }
}
