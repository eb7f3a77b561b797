//! Direct I/O for a [`FileRegion`]: chunks read with `O_DIRECT` on the
//! blocking-I/O pool into aligned pooled buffers, a few ahead of the
//! socket, and sent from the loop.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use wharf_buf::{Allocator, ByteBuf};

use super::{CHUNK, ChannelAddr, FileRegion, READ_AHEAD, Step, TransferCx, TransferStrategy};
use crate::channel::socket::Socket;
use crate::sys::file::reopen_direct;

impl FileRegion {
    /// Direct I/O: take the next chunk the pool has read, or ask for more.
    pub(super) fn direct_step(&mut self, socket: &Socket, cx: &TransferCx<'_>) -> io::Result<Step> {
        if self.next_direct_chunk(cx)? {
            self.send_pending(socket, cx)
        } else {
            Ok(Step::Pending)
        }
    }

    /// Moves the chunk that starts at the next unsent byte into
    /// `pending`, if the pool has read it (`true`); otherwise asks for it
    /// and returns `false` (the channel is woken when it arrives).
    pub(super) fn next_direct_chunk(&mut self, cx: &TransferCx<'_>) -> io::Result<bool> {
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
            return Ok(true);
        }
        if let Some(error) = guard.error.take() {
            return Err(error);
        }
        guard.parked = true;
        drop(guard);
        self.read_ahead(&state, cx);
        Ok(false)
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
                waker: ChannelAddr::of(cx.channel),
            };
            crate::blocking::spawn(move || job.run());
        }
    }
}

/// Shared between a region and its reads on the blocking pool.
#[derive(Debug)]
pub(super) struct DirectState {
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
    waker: ChannelAddr,
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
            self.waker.wake();
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
