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
//! if the file cannot be mapped, read + write.
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

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mio::net::TcpStream;
use wharf_buf::{Allocator, ByteBuf};

use crate::channel::shared::ChannelId;
use crate::reactor::handle::EventLoopHandle;
use crate::sys::file::{MapWindow, Pipe, file_len, page_size, reopen_direct, sendfile};

/// How a [`FileRegion`] moves its bytes to the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TransferStrategy {
    /// `sendfile`, falling back to `MmapWrite`, then `ReadWrite`.
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
    fn add(&self, strategy: TransferStrategy, bytes: usize, syscalls: u64) {
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

/// Where a region is in its channel, for a direct-I/O read to wake it.
#[derive(Debug, Clone)]
pub(crate) struct Waker {
    pub event_loop: EventLoopHandle,
    pub token: usize,
    pub channel: ChannelId,
}

/// What a region needs from its channel and loop for one step.
pub(crate) struct TransferCx<'a> {
    pub default: TransferStrategy,
    pub allocator: Allocator,
    /// The loop's spare pipe for `Splice`.
    pub pipe: &'a mut Option<Pipe>,
    pub loop_stats: &'a TransferCounters,
    pub channel_stats: &'a TransferCounters,
    pub max_bytes: usize,
    pub waker: Waker,
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
        socket: &TcpStream,
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
            Err(e) if self.may_fall_back(strategy, &e) => {
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

    /// Whether `Auto` may try the next strategy after `error`.
    fn may_fall_back(&self, strategy: TransferStrategy, error: &io::Error) -> bool {
        let auto = self.strategy.unwrap_or(TransferStrategy::Auto) == TransferStrategy::Auto;
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

    fn sendfile_step(&mut self, socket: &TcpStream, cx: &TransferCx<'_>) -> io::Result<Step> {
        let mut offset = i64::try_from(self.cursor())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset beyond i64"))?;
        match sendfile(
            socket.as_fd(),
            self.file.as_fd(),
            &mut offset,
            self.want(cx),
        ) {
            Ok(0) => Err(self.truncated()),
            Ok(n) => Ok(self.sent(n, TransferStrategy::Sendfile, 1, cx)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                cx.channel_stats.add(TransferStrategy::Sendfile, 0, 1);
                cx.loop_stats.add(TransferStrategy::Sendfile, 0, 1);
                Ok(Step::WouldBlock)
            }
            Err(e) => Err(e),
        }
    }

    fn splice_step(&mut self, socket: &TcpStream, cx: &mut TransferCx<'_>) -> io::Result<Step> {
        let strategy = TransferStrategy::Splice;
        // Bytes left in the pipe by an earlier step go first.
        if let Some((pipe, in_pipe)) = self.pipe.take() {
            let more = self.remaining() > in_pipe as u64;
            return match pipe.drain_to(socket.as_fd(), in_pipe, more) {
                Ok(n) => {
                    self.keep_or_return_pipe(pipe, in_pipe - n, cx);
                    Ok(self.sent(n, strategy, 1, cx))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.pipe = Some((pipe, in_pipe));
                    Ok(Step::WouldBlock)
                }
                Err(e) => Err(e),
            };
        }
        let pipe = match cx.pipe.take() {
            Some(pipe) => pipe,
            None => Pipe::new()?,
        };
        let mut offset = i64::try_from(self.cursor())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset beyond i64"))?;
        let filled = match pipe.fill_from(self.file.as_fd(), &mut offset, self.want(cx)) {
            Ok(0) => {
                *cx.pipe = Some(pipe);
                return Err(self.truncated());
            }
            Ok(n) => n,
            Err(e) => {
                *cx.pipe = Some(pipe);
                return Err(e);
            }
        };
        let more = self.remaining() > filled as u64;
        match pipe.drain_to(socket.as_fd(), filled, more) {
            Ok(n) => {
                self.keep_or_return_pipe(pipe, filled - n, cx);
                Ok(self.sent(n, strategy, 2, cx))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // The bytes wait in the pipe, which this region keeps.
                self.pipe = Some((pipe, filled));
                cx.loop_stats.add(strategy, 0, 2);
                cx.channel_stats.add(strategy, 0, 2);
                Ok(Step::WouldBlock)
            }
            Err(e) => Err(e),
        }
    }

    /// Keeps a pipe that still holds bytes; gives an empty one back to the
    /// loop for the next region.
    fn keep_or_return_pipe(&mut self, pipe: Pipe, left: usize, cx: &mut TransferCx<'_>) {
        if left > 0 {
            self.pipe = Some((pipe, left));
        } else if cx.pipe.is_none() {
            *cx.pipe = Some(pipe);
        }
    }

    fn mmap_step(&mut self, socket: &TcpStream, cx: &TransferCx<'_>) -> io::Result<Step> {
        let strategy = TransferStrategy::MmapWrite;
        let pos = self.cursor();
        let mut syscalls = 1;
        if !self.map.as_ref().is_some_and(|m| m.covers(pos)) {
            self.map = None;
            // Never map past the end of the file: a short file fails here,
            // cleanly, instead of faulting later.
            let len = file_len(&self.file)?;
            if pos >= len {
                return Err(self.truncated());
            }
            let start = pos - pos % page_size();
            let end = (self.position + self.count).min(len).min(start + WINDOW);
            self.map = Some(MapWindow::map(&self.file, start, (end - start) as usize)?);
            syscalls += 1;
        }
        let Some(map) = &self.map else {
            return Err(io::Error::other("file window not mapped"));
        };
        match map.write_to(socket.as_fd(), pos, self.want(cx)) {
            Ok(0) => Err(self.truncated()),
            Ok(n) => Ok(self.sent(n, strategy, syscalls, cx)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Step::WouldBlock),
            // The file shrank under the mapping.
            Err(e) if e.raw_os_error() == Some(libc::EFAULT) => Err(self.truncated()),
            Err(e) => Err(e),
        }
    }

    fn read_write_step(&mut self, socket: &TcpStream, cx: &TransferCx<'_>) -> io::Result<Step> {
        let want = self.want(cx).min(CHUNK);
        let mut buf = cx.allocator.try_buffer(want)?;
        let n = self
            .file
            .read_at(&mut buf.spare_mut()[..want], self.cursor())?;
        if n == 0 {
            return Err(self.truncated());
        }
        buf.commit(n);
        cx.loop_stats.add(TransferStrategy::ReadWrite, 0, 1);
        cx.channel_stats.add(TransferStrategy::ReadWrite, 0, 1);
        self.pending = Some(buf);
        self.send_pending(socket, cx)
    }

    /// Writes bytes already read from the file.
    fn send_pending(&mut self, socket: &TcpStream, cx: &TransferCx<'_>) -> io::Result<Step> {
        let Some(buf) = &mut self.pending else {
            return Ok(Step::Sent(0));
        };
        let mut socket = socket;
        match socket.write(buf) {
            Ok(n) => {
                buf.skip(n);
                if buf.is_empty() {
                    self.pending = None;
                }
                Ok(self.sent(n, TransferStrategy::ReadWrite, 1, cx))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Step::WouldBlock),
            Err(e) => Err(e),
        }
    }

    /// Direct I/O: take the next chunk the pool has read, or ask for more.
    fn direct_step(&mut self, socket: &TcpStream, cx: &TransferCx<'_>) -> io::Result<Step> {
        let state = self
            .direct
            .get_or_insert_with(|| {
                Arc::new(Mutex::new(DirectState {
                    next: self.position + self.transferred,
                    end: self.position + self.count,
                    ready: BTreeMap::new(),
                    in_flight: 0,
                    error: None,
                    direct: None,
                    parked: false,
                }))
            })
            .clone();
        let mut guard = state.lock().unwrap_or_else(|e| e.into_inner());
        // The chunk that starts at the next unsent byte (reads may finish
        // out of order on the pool's threads).
        if let Some(buf) = guard.ready.remove(&self.cursor()) {
            drop(guard);
            self.pending = Some(buf);
            cx.loop_stats.add(TransferStrategy::ReadWrite, 0, 1);
            cx.channel_stats.add(TransferStrategy::ReadWrite, 0, 1);
            self.read_ahead(&state, cx);
            return self.send_pending(socket, cx);
        }
        if let Some(error) = guard.error.take() {
            return Err(error);
        }
        guard.parked = true;
        drop(guard);
        self.read_ahead(&state, cx);
        Ok(Step::Pending)
    }

    /// Keeps up to `READ_AHEAD` chunks being read.
    fn read_ahead(&self, state: &Arc<Mutex<DirectState>>, cx: &TransferCx<'_>) {
        let mut guard = state.lock().unwrap_or_else(|e| e.into_inner());
        while guard.in_flight + guard.ready.len() < READ_AHEAD
            && guard.next < guard.end
            && guard.error.is_none()
        {
            let offset = guard.next;
            let len = (guard.end - offset).min(CHUNK as u64) as usize;
            guard.next += len as u64;
            guard.in_flight += 1;
            let job = ReadJob {
                file: Arc::clone(&self.file),
                state: Arc::clone(state),
                offset,
                len,
                allocator: cx.allocator,
                waker: cx.waker.clone(),
            };
            crate::blocking::spawn(move || job.run());
        }
    }
}

/// Shared between a region and its reads on the blocking pool.
#[derive(Debug)]
struct DirectState {
    /// Next file offset to request.
    next: u64,
    end: u64,
    /// Chunks read, by file offset.
    ready: BTreeMap<u64, ByteBuf>,
    in_flight: usize,
    error: Option<io::Error>,
    /// The `O_DIRECT` descriptor, once opened (`Some(None)`: refused).
    direct: Option<Option<Arc<File>>>,
    /// The region waits for a chunk: wake the channel when one arrives.
    parked: bool,
}

/// One chunk to read on the blocking pool.
struct ReadJob {
    file: Arc<File>,
    state: Arc<Mutex<DirectState>>,
    offset: u64,
    len: usize,
    allocator: Allocator,
    waker: Waker,
}

impl ReadJob {
    fn run(self) {
        let result = self.read();
        let wake = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.in_flight -= 1;
            match result {
                Ok(buf) => {
                    state.ready.insert(self.offset, buf);
                }
                Err(e) => state.error = Some(e),
            }
            std::mem::take(&mut state.parked)
        };
        if wake {
            let Waker {
                event_loop,
                token,
                channel,
            } = self.waker;
            event_loop.submit(Box::new(move |el| el.file_data_ready(token, channel)));
        }
    }

    /// Reads `len` bytes at `offset`: with `O_DIRECT` when the file system
    /// allows it (aligned offset, length and buffer), else through the page
    /// cache.
    fn read(&self) -> io::Result<ByteBuf> {
        let direct = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state
                .direct
                .get_or_insert_with(|| reopen_direct(&self.file).ok().map(Arc::new))
                .clone()
        };
        if let Some(direct) = direct {
            match read_direct(&direct, self.offset, self.len, self.allocator) {
                Ok(buf) => return Ok(buf),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    // Refused after all (an odd file system): buffered from now on.
                    self.state.lock().unwrap_or_else(|e| e.into_inner()).direct = Some(None);
                }
                Err(e) => return Err(e),
            }
        }
        let mut buf = self.allocator.try_buffer(self.len)?;
        let mut got = 0;
        while got < self.len {
            let n = self.file.read_at(
                &mut buf.spare_mut()[..self.len - got],
                self.offset + got as u64,
            )?;
            if n == 0 {
                return Err(truncated_at(self.offset + got as u64));
            }
            buf.commit(n);
            got += n;
        }
        Ok(buf)
    }
}

fn truncated_at(offset: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("file ended at offset {offset} during a direct-I/O read"),
    )
}

/// Alignment of `O_DIRECT` offsets, lengths and buffers: 4 KiB covers the
/// logical block size of the usual devices (512 B or 4 KiB).
const DIRECT_ALIGN: u64 = 4096;

/// Reads `len` bytes at `offset` with `O_DIRECT`: the request is widened
/// to whole aligned blocks, into an aligned pooled buffer, and trimmed.
fn read_direct(file: &File, offset: u64, len: usize, allocator: Allocator) -> io::Result<ByteBuf> {
    let page = DIRECT_ALIGN;
    let start = offset - offset % page;
    let end = (offset + len as u64).div_ceil(page) * page;
    let span = (end - start) as usize;
    let mut buf = allocator.try_alloc_aligned(span, page as usize)?;
    let mut got = 0;
    while got < span {
        let n = file.read_at(&mut buf.spare_mut()[..span - got], start + got as u64)?;
        if n == 0 {
            break;
        }
        buf.commit(n);
        got += n;
        if n % page as usize != 0 {
            // A short read ends at the end of the file.
            break;
        }
    }
    let skip = (offset - start) as usize;
    if got < skip + len {
        return Err(truncated_at(start + got as u64));
    }
    buf.skip(skip);
    buf.truncate(len);
    Ok(buf)
}
