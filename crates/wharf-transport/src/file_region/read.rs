//! A region's bytes read into memory, for a channel that must transform
//! them before the socket sees them (TLS): none of the zero-copy
//! strategies can apply there, so every strategy becomes `pread` into the
//! caller's buffer (or, with direct I/O, the chunks the blocking pool
//! read), bounded by that buffer, any file size.

use std::io;
use std::os::unix::fs::FileExt;

use super::{FileRegion, Step, TransferCx, TransferStrategy};

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
}
