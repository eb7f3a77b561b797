//! The standard traits of [`ByteBuf`]: slices, comparison, `bytes`'
//! `Buf` and `BufMut`, `io::Read` and `io::Write`.

use std::fmt;
use std::io::{self, IoSlice};
use std::ops::{Deref, DerefMut};
use std::slice;

use bytes::buf::UninitSlice;
use bytes::{Buf, BufMut};

use super::ByteBuf;
use crate::allocator::MAX_CAPACITY;

impl Default for ByteBuf {
    fn default() -> ByteBuf {
        ByteBuf::new()
    }
}

impl Deref for ByteBuf {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: `read..write` lies inside this view and is initialized;
        // for an empty view the pointer is non-null and aligned for `u8`,
        // which is all a zero-length slice needs.
        unsafe { slice::from_raw_parts(self.as_ptr(), self.len()) }
    }
}

impl DerefMut for ByteBuf {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`, and `&mut self` makes the access exclusive.
        unsafe { slice::from_raw_parts_mut(self.as_ptr().cast_mut(), self.len()) }
    }
}

impl AsRef<[u8]> for ByteBuf {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl AsMut<[u8]> for ByteBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        self
    }
}

impl PartialEq for ByteBuf {
    fn eq(&self, other: &ByteBuf) -> bool {
        self[..] == other[..]
    }
}

impl Eq for ByteBuf {}

impl PartialEq<[u8]> for ByteBuf {
    fn eq(&self, other: &[u8]) -> bool {
        self[..] == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for ByteBuf {
    fn eq(&self, other: &[u8; N]) -> bool {
        self[..] == other[..]
    }
}

impl fmt::Debug for ByteBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteBuf")
            .field("read", &self.read)
            .field("write", &self.write)
            .field("cap", &self.cap)
            .field("owner", &self.owner)
            .finish()
    }
}

impl Buf for ByteBuf {
    #[inline]
    fn remaining(&self) -> usize {
        self.len()
    }

    #[inline]
    fn chunk(&self) -> &[u8] {
        self
    }

    #[inline]
    fn advance(&mut self, cnt: usize) {
        self.skip(cnt);
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        if self.is_empty() || dst.is_empty() {
            return 0;
        }
        dst[0] = IoSlice::new(self);
        1
    }
}

// SAFETY: `chunk_mut` returns only this view's writable bytes, and
// `advance_mut` refuses to move the writer index past the capacity, so the
// readable bytes are always initialized memory of this view.
unsafe impl BufMut for ByteBuf {
    #[inline]
    fn remaining_mut(&self) -> usize {
        MAX_CAPACITY - self.writer_index()
    }

    #[inline]
    unsafe fn advance_mut(&mut self, cnt: usize) {
        self.commit(cnt);
    }

    #[inline]
    fn chunk_mut(&mut self) -> &mut UninitSlice {
        if self.writable_bytes() == 0 {
            self.reserve(64);
        }
        UninitSlice::new(self.spare_mut())
    }

    #[inline]
    fn put_slice(&mut self, src: &[u8]) {
        self.extend_from_slice(src);
    }

    #[inline]
    fn put_bytes(&mut self, val: u8, cnt: usize) {
        self.fill_bytes(val, cnt);
    }
}

impl io::Write for ByteBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.try_reserve(buf.len())?;
        self.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Read for ByteBuf {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        let n = dst.len().min(self.len());
        dst[..n].copy_from_slice(&self[..n]);
        self.skip(n);
        Ok(n)
    }
}
