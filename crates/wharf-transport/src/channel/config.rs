//! Per-channel settings, with Netty's defaults.

use std::io;
use std::time::Duration;

use wharf_buf::Allocator;

use crate::file_region::TransferStrategy;

/// How readiness is reported: both are real epoll modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Trigger {
    /// `EPOLLET`, through mio. A readable socket is read until a short read
    /// (Linux queues a new edge for each arrival after it) or until it would
    /// block, but at most [`ChannelConfig::max_messages_per_read`] times per
    /// event; a socket that used up its budget is served again on the next
    /// loop iteration without waiting for a new edge (none would come).
    /// Sockets are registered once, for reading and writing.
    #[default]
    Edge,
    /// Without `EPOLLET`, on mio's epoll instance. A read stops at the first
    /// short read or at the budget; the kernel reports the socket again
    /// while data remains. `EPOLLOUT` is asked for only while output waits,
    /// which costs an `epoll_ctl` each time that starts and stops.
    Level,
}

impl Trigger {
    /// `edge` or `level`.
    pub fn name(&self) -> &'static str {
        match self {
            Trigger::Edge => "edge",
            Trigger::Level => "level",
        }
    }
}

impl std::str::FromStr for Trigger {
    type Err = String;

    /// `edge` or `level`.
    fn from_str(s: &str) -> Result<Trigger, String> {
        match s {
            "edge" => Ok(Trigger::Edge),
            "level" => Ok(Trigger::Level),
            other => Err(format!("unknown trigger {other:?}: expected edge or level")),
        }
    }
}

/// The outbound queue's water marks (Netty's `WriteBufferWaterMark`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaterMark {
    /// Below this many queued bytes a channel becomes writable again.
    pub low: usize,
    /// Above this many queued bytes a channel becomes unwritable.
    pub high: usize,
}

impl Default for WaterMark {
    fn default() -> WaterMark {
        WaterMark {
            low: 32 * 1024,
            high: 64 * 1024,
        }
    }
}

/// Bounds of the adaptive receive size (Netty's
/// `AdaptiveRecvByteBufAllocator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvSize {
    /// Smallest read buffer.
    pub min: usize,
    /// First read buffer.
    pub initial: usize,
    /// Largest read buffer.
    pub max: usize,
}

impl Default for RecvSize {
    fn default() -> RecvSize {
        RecvSize {
            min: 64,
            initial: 2048,
            max: 64 * 1024,
        }
    }
}

/// Idle timeouts that fire [`UserEvent::Idle`](crate::UserEvent::Idle)
/// (Netty's `IdleStateHandler`). `None` disables one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdleConfig {
    /// Fires [`IdleState::ReaderIdle`](crate::IdleState::ReaderIdle) when
    /// nothing was read for this long.
    pub reader: Option<Duration>,
    /// Fires [`IdleState::WriterIdle`](crate::IdleState::WriterIdle) when
    /// nothing was written for this long.
    pub writer: Option<Duration>,
    /// Fires [`IdleState::AllIdle`](crate::IdleState::AllIdle) when neither
    /// happened for this long.
    pub all: Option<Duration>,
}

impl IdleConfig {
    /// Whether any timeout is set.
    pub fn is_enabled(&self) -> bool {
        self.reader.is_some() || self.writer.is_some() || self.all.is_some()
    }
}

/// How a lingering close is bounded (nginx's `lingering_close`, RFC 9112
/// §9.6): after the last response is sent and the write side shut down,
/// input is read and thrown away until the peer ends its side, for at most
/// `timeout` and `max_bytes`, so that the peer reads the response instead
/// of a reset caused by data it sent that was never read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lingering {
    /// Longest the connection lingers.
    pub timeout: Duration,
    /// Most input it reads and discards while lingering.
    pub max_bytes: usize,
}

impl Default for Lingering {
    fn default() -> Lingering {
        Lingering {
            timeout: Duration::from_secs(5),
            max_bytes: 64 << 10,
        }
    }
}

/// How a channel reads, writes and closes.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// Where read buffers and encoded buffers come from.
    pub allocator: Allocator,
    /// Reads per readiness event, for fairness between sockets (Netty: 16).
    pub max_messages_per_read: usize,
    /// Gathering writes per flush before yielding to other sockets
    /// (Netty's write spin count: 16).
    pub write_spin_count: usize,
    /// Bytes one `writev` is offered at most (it always takes at least one
    /// entry whole).
    pub max_bytes_per_write: usize,
    /// Write coalescing: a write of at most this many bytes (a buffer, not
    /// a file region) is copied into the last unflushed buffer of the
    /// outbound queue instead of becoming an entry of its own, so that many
    /// small replies between two flushes leave as a few iovecs (default
    /// 512; 0 turns it off). Larger writes are queued without a copy.
    pub coalesce_writes: usize,
    /// When the channel becomes unwritable and writable again.
    pub water_mark: WaterMark,
    /// Bounds of the adaptive read size.
    pub recv_size: RecvSize,
    /// Whether the channel reads as soon as it is active.
    pub auto_read: bool,
    /// Backpressure (default on): while the channel is unwritable (its
    /// outbound queue above the high water mark) it reads nothing more, and
    /// messages already decoded wait; reading resumes below the low mark.
    /// A peer that sends requests without reading the answers then cannot
    /// grow the server's memory. Turn it off for handlers that pace their
    /// reading themselves with [`Context::set_auto_read`](crate::Context::set_auto_read).
    pub backpressure: bool,
    /// When the peer shuts down its output: `false` (default) closes the
    /// channel once everything read was delivered; `true` fires
    /// [`Handler::on_input_shutdown`](crate::Handler::on_input_shutdown) and
    /// keeps the channel open for writing.
    pub allow_half_closure: bool,
    /// Idle timeouts.
    pub idle: IdleConfig,
    /// How long a closing channel may go without the socket taking any of
    /// what it still has queued before it is closed anyway (a slow reader
    /// that keeps reading is not cut off).
    pub close_timeout: Duration,
    /// How long an open channel may go with output waiting and the socket
    /// taking none of it before the channel is failed and reset (Netty's
    /// `WriteTimeoutHandler`, counted from the last progress): a peer that
    /// stops reading in the middle of a response then cannot hold the
    /// connection, and what it was sent, for ever. `None` (the default)
    /// waits as long as the peer does; a closing channel is bounded by the
    /// close timeout either way.
    pub write_timeout: Option<Duration>,
    /// How file regions are sent unless they choose themselves.
    pub transfer: TransferStrategy,
    /// Whether (and for how long) a channel that closes while its peer is
    /// still sending keeps reading and discarding, so that the peer reads
    /// the last response instead of a reset. `None` closes at once.
    pub lingering: Option<Lingering>,
}

impl Default for ChannelConfig {
    fn default() -> ChannelConfig {
        ChannelConfig {
            allocator: Allocator::default(),
            max_messages_per_read: 16,
            write_spin_count: 16,
            max_bytes_per_write: 4 << 20,
            coalesce_writes: 512,
            water_mark: WaterMark::default(),
            recv_size: RecvSize::default(),
            auto_read: true,
            backpressure: true,
            allow_half_closure: false,
            idle: IdleConfig::default(),
            close_timeout: Duration::from_secs(10),
            write_timeout: None,
            transfer: TransferStrategy::Auto,
            lingering: Some(Lingering::default()),
        }
    }
}

impl ChannelConfig {
    /// Checks that the settings can work: the water marks in order, the
    /// read, write and spin budgets above zero, the receive sizes in
    /// order. Bootstraps call it when they bind or connect; the error is
    /// `InvalidInput` and names the option.
    ///
    /// ```
    /// use wharf_transport::{ChannelConfig, WaterMark};
    ///
    /// let upside_down = ChannelConfig {
    ///     water_mark: WaterMark { low: 64 << 10, high: 32 << 10 },
    ///     ..ChannelConfig::default()
    /// };
    /// let error = upside_down.validate().unwrap_err();
    /// assert!(error.to_string().contains("water_mark"));
    /// assert!(ChannelConfig::default().validate().is_ok());
    /// ```
    pub fn validate(&self) -> io::Result<()> {
        let refuse = |option: &str, why: String| {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{option}: {why}"),
            ))
        };
        let WaterMark { low, high } = self.water_mark;
        if low > high {
            return refuse(
                "water_mark",
                format!("the low mark ({low} bytes) is above the high mark ({high} bytes)"),
            );
        }
        for (option, value) in [
            ("max_messages_per_read", self.max_messages_per_read),
            ("write_spin_count", self.write_spin_count),
            ("max_bytes_per_write", self.max_bytes_per_write),
        ] {
            if value == 0 {
                return refuse(option, "must be at least 1".to_string());
            }
        }
        let RecvSize { min, initial, max } = self.recv_size;
        if min == 0 || min > max || initial < min || initial > max {
            return refuse(
                "recv_size",
                format!(
                    "needs 0 < min <= initial <= max (min {min}, initial {initial}, max {max})"
                ),
            );
        }
        Ok(())
    }
}
