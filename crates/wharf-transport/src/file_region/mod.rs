//! Zero-copy file transfer: a [`FileRegion`] goes through a channel's
//! outbound queue like any message, and is sent from the file to the socket
//! with the [`TransferStrategy`] the channel (or the region) chooses.
//!
//! | strategy | CPU copies | syscalls per chunk | when |
//! |---|---|---|---|
//! | [`ReadWrite`](TransferStrategy::ReadWrite) | 2 | 2 (`pread`, `write`) | fallback, or when bytes must be changed |
//! | [`MmapWrite`](TransferStrategy::MmapWrite) | 1 | 1 (`write`, plus `mmap` per window) | when sendfile is refused |
//! | [`Sendfile`](TransferStrategy::Sendfile) | 0–1 | 1 | default for plain sockets |
//! | [`Splice`](TransferStrategy::Splice) | 0 | 2 (file → pipe → socket) | file → socket, socket → socket |
//!
//! [`Auto`](TransferStrategy::Auto) is Java's `transferTo`: sendfile, and if
//! the kernel refuses (`EINVAL`, `ENOSYS`, `EOPNOTSUPP`), mmap + write, and
//! if the file cannot be mapped, read + write. A small region (at most
//! 16 KiB) right behind buffers, a response head and a small file, is read
//! with one `pread` and leaves with the buffers in one `writev`: on
//! loopback that costs less than a `sendmsg` with `MSG_MORE` for the head
//! and a `sendfile` for the file.
//!
//! A region remembers how far it got and resumes after the socket would
//! block, with either trigger. Regions over 2 GiB are sent in several calls
//! (sendfile moves at most `0x7ffff000` bytes a call). A zero-length region
//! completes at once (netty#2964); a region longer than its file, or a file
//! truncated during the transfer, fails with a clear error that closes the
//! connection instead of spinning (netty#8868); a non-zero start offset is
//! honoured exactly (netty#2764).
//!
//! **Direct I/O.** A region marked with [`FileRegion::direct_io`] is read
//! with `O_DIRECT` into page-aligned pooled buffers on a small blocking-I/O
//! pool, and written to the socket from the loop: a huge download then does
//! not evict the hot small files from the page cache, and the loop never
//! waits on the disk (nginx's `directio` with `aio threads`). Where the file
//! system refuses `O_DIRECT`, the pool reads through the page cache instead.

mod direct;
mod file_map;
mod read;
mod steps;

use std::fmt;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wharf_buf::{Allocator, ByteBuf};

use crate::channel::env::ChannelMsg;
use crate::channel::shared::{ChannelExtras, ChannelShared};
use crate::channel::socket::Socket;
use crate::sys::file::{MapWindow, Pipe};
use direct::DirectState;
pub use file_map::FileMap;
pub(crate) use read::Inline;

/// How a [`FileRegion`] moves its bytes to the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TransferStrategy {
    /// `sendfile`, falling back to `MmapWrite`, then `ReadWrite`; a region
    /// of at most 16 KiB right behind buffers is read and written with them.
    #[default]
    Auto,
    /// `sendfile(2)`: no copy through user space.
    Sendfile,
    /// `splice(2)` from the file into a pipe and from the pipe into the
    /// socket. The pipe belongs to the event loop and is reused; a region
    /// that leaves bytes in it keeps it until they are sent.
    Splice,
    /// The file mapped in windows (so huge files are not mapped whole) and
    /// written with `write(2)`: one copy.
    MmapWrite,
    /// `pread` into a pooled buffer and `write`: two copies, the baseline.
    ReadWrite,
}

impl TransferStrategy {
    /// Every concrete strategy, in [`TransferStats`] order.
    pub const CONCRETE: [TransferStrategy; 4] = [
        TransferStrategy::Sendfile,
        TransferStrategy::Splice,
        TransferStrategy::MmapWrite,
        TransferStrategy::ReadWrite,
    ];

    /// A short name: `auto`, `sendfile`, `splice`, `mmap`, `copy`.
    pub fn name(&self) -> &'static str {
        match self {
            TransferStrategy::Auto => "auto",
            TransferStrategy::Sendfile => "sendfile",
            TransferStrategy::Splice => "splice",
            TransferStrategy::MmapWrite => "mmap",
            TransferStrategy::ReadWrite => "copy",
        }
    }

    fn index(&self) -> usize {
        match self {
            TransferStrategy::Auto | TransferStrategy::Sendfile => 0,
            TransferStrategy::Splice => 1,
            TransferStrategy::MmapWrite => 2,
            TransferStrategy::ReadWrite => 3,
        }
    }
}

impl std::str::FromStr for TransferStrategy {
    type Err = String;

    /// `auto`, `sendfile`, `splice`, `mmap` or `copy`.
    fn from_str(s: &str) -> Result<TransferStrategy, String> {
        match s {
            "auto" => Ok(TransferStrategy::Auto),
            "sendfile" => Ok(TransferStrategy::Sendfile),
            "splice" => Ok(TransferStrategy::Splice),
            "mmap" => Ok(TransferStrategy::MmapWrite),
            "copy" => Ok(TransferStrategy::ReadWrite),
            other => Err(format!(
                "unknown transfer strategy {other:?}: expected auto, sendfile, splice, mmap or copy"
            )),
        }
    }
}

/// Bytes and system calls per strategy (direct-I/O reads count as
/// `ReadWrite`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Bytes sent, indexed as [`TransferStrategy::CONCRETE`].
    pub bytes: [u64; 4],
    /// System calls made, indexed the same way.
    pub syscalls: [u64; 4],
}

impl TransferStats {
    /// Bytes sent with `strategy`.
    pub fn bytes_by(&self, strategy: TransferStrategy) -> u64 {
        self.bytes[strategy.index()]
    }

    /// System calls made for `strategy`.
    pub fn syscalls_by(&self, strategy: TransferStrategy) -> u64 {
        self.syscalls[strategy.index()]
    }
}

/// Counters behind [`TransferStats`], written by one loop thread.
#[derive(Debug, Default)]
pub(crate) struct TransferCounters {
    bytes: [AtomicU64; 4],
    syscalls: [AtomicU64; 4],
}

impl TransferCounters {
    pub(crate) fn add(&self, strategy: TransferStrategy, bytes: usize, syscalls: u64) {
        let i = strategy.index();
        self.bytes[i].fetch_add(bytes as u64, Ordering::Relaxed);
        self.syscalls[i].fetch_add(syscalls, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> TransferStats {
        let load = |a: &[AtomicU64; 4]| std::array::from_fn(|i| a[i].load(Ordering::Relaxed));
        TransferStats {
            bytes: load(&self.bytes),
            syscalls: load(&self.syscalls),
        }
    }
}

/// What one transfer step did.
#[derive(Debug)]
pub(crate) enum Step {
    /// Bytes the socket took.
    Sent(usize),
    /// The socket would block.
    WouldBlock,
    /// Waiting for the blocking pool to read more of the file.
    Pending,
}

/// The channel a region is sent on, for a direct-I/O read to wake it.
#[derive(Debug, Clone)]
pub(crate) struct ChannelAddr(Arc<ChannelShared>);

impl ChannelAddr {
    /// The channel `shared` describes.
    pub(crate) fn of(shared: &Arc<ChannelShared>) -> ChannelAddr {
        ChannelAddr(Arc::clone(shared))
    }

    /// Tells the channel that file data it waits for is ready.
    fn wake(&self) {
        self.0.post(ChannelMsg::FileReady);
    }
}

/// What a region needs from its channel and loop for one step.
pub(crate) struct TransferCx<'a> {
    pub default: TransferStrategy,
    pub allocator: Allocator,
    /// The loop's spare pipe for `Splice`.
    pub pipe: &'a mut Option<Pipe>,
    pub loop_stats: &'a TransferCounters,
    pub channel_stats: &'a ChannelExtras,
    pub max_bytes: usize,
    /// The channel, for a read on the blocking pool to wake (borrowed:
    /// a step that needs no such read costs no reference count).
    pub channel: &'a Arc<ChannelShared>,
}

/// Chunk read by `ReadWrite` and direct I/O.
const CHUNK: usize = 256 << 10;
/// Mapping window of `MmapWrite`.
const WINDOW: u64 = 4 << 20;
/// Direct-I/O chunks read ahead of the socket.
const READ_AHEAD: usize = 2;

/// A range of a file to send on a channel.
///
/// Write it with [`Context::write`](crate::Context::write) through a codec
/// that passes it on (it becomes an [`OutboundMessage::File`](crate::OutboundMessage::File)):
/// it is sent after the buffers written before it and before those written
/// after it.
///
/// ```no_run
/// use wharf_transport::{FileRegion, TransferStrategy};
///
/// let region = FileRegion::open("index.html")?.with_strategy(TransferStrategy::Sendfile);
/// assert_eq!(region.position(), 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct FileRegion {
    file: Arc<File>,
    position: u64,
    count: u64,
    transferred: u64,
    strategy: Option<TransferStrategy>,
    direct_io: bool,
    /// The strategy `Auto` settled on.
    resolved: Option<TransferStrategy>,
    /// A pipe holding bytes read from the file but not yet sent.
    pipe: Option<(Pipe, usize)>,
    map: Option<MapWindow>,
    /// The whole file, mapped once (see [`FileMap::region`]).
    file_map: Option<Arc<FileMap>>,
    /// Bytes read (by `ReadWrite` or direct I/O) but not yet sent.
    pending: Option<ByteBuf>,
    direct: Option<Arc<Mutex<DirectState>>>,
}

impl fmt::Debug for FileRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileRegion")
            .field("position", &self.position)
            .field("count", &self.count)
            .field("transferred", &self.transferred)
            .field("strategy", &self.strategy)
            .field("direct_io", &self.direct_io)
            .finish_non_exhaustive()
    }
}

impl FileRegion {
    /// `count` bytes of `file` from `position`. The file is shared: many
    /// regions (and threads) may send the same open file.
    pub fn new(file: impl Into<Arc<File>>, position: u64, count: u64) -> FileRegion {
        FileRegion {
            file: file.into(),
            position,
            count,
            transferred: 0,
            strategy: None,
            direct_io: false,
            resolved: None,
            pipe: None,
            map: None,
            file_map: None,
            pending: None,
            direct: None,
        }
    }

    /// The whole file at `path`.
    pub fn open(path: impl AsRef<Path>) -> io::Result<FileRegion> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(FileRegion::new(file, 0, len))
    }

    /// Sends with `strategy` instead of the channel's default.
    pub fn with_strategy(mut self, strategy: TransferStrategy) -> FileRegion {
        self.strategy = Some(strategy);
        self
    }

    /// Sends a small region from `map` (see [`FileMap::region`], which
    /// alone attaches a map, so that it is always the region's file's).
    pub(crate) fn with_map(mut self, map: Arc<FileMap>) -> FileRegion {
        self.file_map = Some(map);
        self
    }

    /// Reads the file with `O_DIRECT` on the blocking-I/O pool instead of
    /// through the page cache (see the module docs).
    pub fn direct_io(mut self, on: bool) -> FileRegion {
        self.direct_io = on;
        self
    }

    /// Where the region starts in the file.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// How many bytes the region covers.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Bytes sent so far.
    pub fn transferred(&self) -> u64 {
        self.transferred
    }

    /// Bytes left to send.
    pub fn remaining(&self) -> u64 {
        self.count - self.transferred
    }

    /// The strategy for this step.
    fn strategy(&self, default: TransferStrategy) -> TransferStrategy {
        self.resolved.or(self.strategy).unwrap_or(default)
    }

    /// Where the next unread byte of the file is.
    fn cursor(&self) -> u64 {
        self.position + self.transferred
    }

    fn truncated(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "file ended at offset {} before the region's end at {}",
                self.cursor(),
                self.position + self.count
            ),
        )
    }

    fn sent(
        &mut self,
        n: usize,
        strategy: TransferStrategy,
        syscalls: u64,
        cx: &TransferCx<'_>,
    ) -> Step {
        self.transferred += n as u64;
        cx.loop_stats.add(strategy, n, syscalls);
        cx.channel_stats.add(strategy, n, syscalls);
        Step::Sent(n)
    }

    /// Sends one chunk to `socket`.
    pub(crate) fn transfer(
        &mut self,
        socket: &Socket,
        cx: &mut TransferCx<'_>,
    ) -> io::Result<Step> {
        if self.remaining() == 0 {
            return Ok(Step::Sent(0));
        }
        if self.pending.is_some() {
            return self.send_pending(socket, cx);
        }
        if self.direct_io {
            return self.direct_step(socket, cx);
        }
        let strategy = self.strategy(cx.default);
        let step = match strategy {
            TransferStrategy::Auto | TransferStrategy::Sendfile => self.sendfile_step(socket, cx),
            TransferStrategy::Splice => self.splice_step(socket, cx),
            TransferStrategy::MmapWrite => self.mmap_step(socket, cx),
            TransferStrategy::ReadWrite => self.read_write_step(socket, cx),
        };
        match step {
            Err(e) if self.may_fall_back(strategy, cx.default, &e) => {
                let next = match strategy {
                    TransferStrategy::Auto | TransferStrategy::Sendfile => {
                        TransferStrategy::MmapWrite
                    }
                    _ => TransferStrategy::ReadWrite,
                };
                log::debug!(
                    "{} refused ({e}); falling back to {}",
                    strategy.name(),
                    next.name()
                );
                self.resolved = Some(next);
                self.transfer(socket, cx)
            }
            other => other,
        }
    }

    /// Whether `Auto` may try the next strategy after `error`. A strategy
    /// chosen explicitly, by the region or as the channel's default, is
    /// honoured: it fails rather than silently becoming another.
    fn may_fall_back(
        &self,
        strategy: TransferStrategy,
        channel_default: TransferStrategy,
        error: &io::Error,
    ) -> bool {
        let auto = self.strategy.unwrap_or(channel_default) == TransferStrategy::Auto;
        let refused = matches!(
            error.raw_os_error(),
            Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | libc::ENODEV | libc::EACCES)
        );
        auto && refused
            && matches!(
                strategy,
                TransferStrategy::Auto | TransferStrategy::Sendfile | TransferStrategy::MmapWrite
            )
    }

    fn want(&self, cx: &TransferCx<'_>) -> usize {
        self.remaining().min(cx.max_bytes.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region() -> FileRegion {
        let file = File::open("/proc/self/exe").expect("a file to hold");
        FileRegion::new(file, 0, 1)
    }

    #[test]
    fn only_auto_falls_back_from_a_refused_strategy() {
        let refused = io::Error::from_raw_os_error(libc::EINVAL);
        let sendfile = TransferStrategy::Sendfile;
        let auto = TransferStrategy::Auto;
        // Auto by default: sendfile refused, mmap next.
        assert!(region().may_fall_back(sendfile, auto, &refused));
        // Sendfile as the channel's default, or the region's own: honoured.
        assert!(!region().may_fall_back(sendfile, sendfile, &refused));
        assert!(
            !region()
                .with_strategy(sendfile)
                .may_fall_back(sendfile, auto, &refused)
        );
        // A region that asks for Auto on a Sendfile channel may fall back.
        assert!(
            region()
                .with_strategy(auto)
                .may_fall_back(sendfile, sendfile, &refused)
        );
        // Other errors never fall back.
        let reset = io::Error::from_raw_os_error(libc::ECONNRESET);
        assert!(!region().may_fall_back(sendfile, auto, &reset));
    }
}
