//! A region's bytes read into memory: for a channel that must transform
//! them before the socket sees them (TLS), where none of the zero-copy
//! strategies can apply, so every strategy becomes `pread` into the
//! caller's buffer (or, with direct I/O, the chunks the blocking pool
//! read), bounded by that buffer, any file size; and for a small region
//! behind buffers, read whole so that it leaves with them in one `writev`.

use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;

use wharf_buf::ByteBuf;

use super::{FileRegion, Step, TransferCx, TransferStrategy};
use crate::channel::outbound::INLINE_REGION_MAX;

impl FileRegion {
    /// Reads the region's next bytes into `dst` (as many as fit and the
    /// file gives in one call) and counts them as sent; `Pending` while a
    /// direct-I/O chunk is still being read. A file shorter than the
    /// region fails with a clear error.
    pub(crate) fn read_into(&mut self, dst: &mut [u8], cx: &TransferCx<'_>) -> io::Result<Step> {
        let want = self.remaining().min(dst.len() as u64) as usize;
        if want == 0 {
            return Ok(Step::Sent(0));
        }
        if self.pending.is_none() && self.direct_io && !self.next_direct_chunk(cx)? {
            return Ok(Step::Pending);
        }
        if let Some(pending) = &mut self.pending {
            let n = pending.len().min(want);
            dst[..n].copy_from_slice(&pending[..n]);
            pending.skip(n);
            if pending.is_empty() {
                self.pending = None;
            }
            return Ok(self.sent(n, TransferStrategy::ReadWrite, 0, cx));
        }
        let n = self.file.read_at(&mut dst[..want], self.cursor())?;
        if n == 0 {
            return Err(self.truncated());
        }
        Ok(self.sent(n, TransferStrategy::ReadWrite, 1, cx))
    }

    /// The rest of the region, to join the buffers in front of it in one
    /// `writev`: when it is small (at most [`INLINE_REGION_MAX`] bytes),
    /// its strategy is `Auto` and it has not started. From its
    /// [`FileMap`](super::FileMap) when that holds it; else read into a
    /// pooled buffer when one `pread` gives all of it (counted as sent by
    /// `ReadWrite` when read: a write that then fails does not take the
    /// count back). `None` leaves the region to its own strategy, which
    /// also reports a file shorter than the region.
    pub(crate) fn inline(&self, cx: &TransferCx<'_>) -> Option<Inline<'_>> {
        let eligible = self.strategy(cx.default) == TransferStrategy::Auto
            && !self.direct_io
            && self.pending.is_none()
            && self.transferred == 0;
        let want = usize::try_from(self.remaining()).ok()?;
        if !eligible || want == 0 || want as u64 > INLINE_REGION_MAX {
            return None;
        }
        if let Some(slice) = self
            .file_map
            .as_ref()
            .and_then(|map| map.io_slice(self.cursor(), want))
        {
            return Some(Inline::Mapped(slice));
        }
        let mut buf = cx.allocator.try_buffer(want).ok()?;
        let n = self
            .file
            .read_at(&mut buf.spare_mut()[..want], self.cursor())
            .ok()?;
        if n != want {
            return None;
        }
        buf.commit(n);
        cx.loop_stats.add(TransferStrategy::ReadWrite, n, 1);
        cx.channel_stats.add(TransferStrategy::ReadWrite, n, 1);
        Some(Inline::Read(buf))
    }

    /// Counts `n` bytes sent from the region's map by a `writev` of the
    /// queue's (as `MmapWrite`, with no system call of its own).
    pub(crate) fn sent_from_map(&mut self, n: usize, cx: &TransferCx<'_>) {
        self.sent(n, TransferStrategy::MmapWrite, 0, cx);
    }
}

/// A small region's bytes, ready to join a `writev`.
pub(crate) enum Inline<'a> {
    /// Read into memory: the region becomes this buffer in the queue.
    Read(ByteBuf),
    /// Its pages in the region's map: the kernel copies them, and the
    /// region counts what was sent. Never dereferenced (see
    /// `FileMap::io_slice`).
    Mapped(IoSlice<'a>),
}
