//! `FrozenBuf`: immutable bytes of a buffer, shared by reference count, or
//! `'static` bytes that need no count at all.

use std::fmt;
use std::io::IoSlice;
use std::ops::{Bound, Deref, RangeBounds};
use std::ptr::NonNull;
use std::slice;

use bytes::{Buf, Bytes};

use crate::memory::Owner;

/// Read-only bytes that many owners can share, made by
/// [`ByteBuf::freeze`](crate::ByteBuf::freeze), or borrowed from a
/// `'static` constant by [`from_static`](Self::from_static).
///
/// `Clone` and [`slice`](Self::slice) add a reference instead of copying
/// (static bytes have no reference count: cloning them copies two words).
/// [`Bytes::from`] wraps it without a copy, so pooled memory can flow into
/// code that speaks `bytes`. The memory returns to its allocator when the
/// last clone (or `Bytes`) drops, on whatever thread.
///
/// Threading: `Send` and `Sync`.
///
/// ```
/// use wharf_buf::Allocator;
/// use bytes::{BufMut, Bytes};
///
/// let mut buf = Allocator::default().buffer(32);
/// buf.put_slice(b"shared bytes");
/// let frozen = buf.freeze();
/// let word = frozen.slice(0..6);
/// let bytes = Bytes::from(frozen.clone());
/// assert_eq!(&word[..], b"shared");
/// assert_eq!(bytes, &b"shared bytes"[..]);
/// ```
pub struct FrozenBuf {
    ptr: NonNull<u8>,
    len: usize,
    /// A counted claim on shared memory; `None` when empty or when the
    /// bytes are `'static`.
    owner: Option<Owner>,
}

// SAFETY: the bytes are never written while any `FrozenBuf` refers to them,
// and the reference count is atomic (see `Owner`).
unsafe impl Send for FrozenBuf {}
// SAFETY: as for `Send`: shared access is read-only.
unsafe impl Sync for FrozenBuf {}

impl FrozenBuf {
    /// No bytes.
    pub fn empty() -> FrozenBuf {
        FrozenBuf {
            ptr: NonNull::dangling(),
            len: 0,
            owner: None,
        }
    }

    /// `bytes` as they are, without copying, allocating or counting: a
    /// constant such as `b"+OK\r\n"` costs no pooled memory and no
    /// reference-count traffic however often it is cloned and sent.
    ///
    /// ```
    /// use wharf_buf::FrozenBuf;
    ///
    /// const CRLF: &[u8] = b"\r\n";
    /// let crlf = FrozenBuf::from_static(CRLF);
    /// assert_eq!(&crlf[..], CRLF);
    /// assert_eq!(crlf.as_ptr(), CRLF.as_ptr()); // the constant itself
    /// ```
    pub const fn from_static(bytes: &'static [u8]) -> FrozenBuf {
        // A slice's pointer is never null (for an empty slice it is
        // dangling but aligned, which is all `Deref` needs).
        let ptr = match NonNull::new(bytes.as_ptr().cast_mut()) {
            Some(ptr) => ptr,
            None => NonNull::dangling(),
        };
        FrozenBuf {
            ptr,
            len: bytes.len(),
            owner: None,
        }
    }

    /// Whether the bytes are `'static` (or there are none): no memory is
    /// counted or given back for them.
    pub fn is_static(&self) -> bool {
        self.owner.is_none()
    }

    /// # Safety
    ///
    /// `owner` must be a shared (counted) claim that keeps `ptr..ptr + len`
    /// alive; those bytes must be initialized and never be written again
    /// through any other handle.
    pub(crate) unsafe fn from_parts(ptr: NonNull<u8>, len: usize, owner: Owner) -> FrozenBuf {
        FrozenBuf {
            ptr,
            len,
            owner: Some(owner),
        }
    }

    /// Number of bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A view of `range` sharing the same memory.
    ///
    /// # Panics
    ///
    /// If the range is out of bounds or decreasing.
    pub fn slice(&self, range: impl RangeBounds<usize>) -> FrozenBuf {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e + 1,
            Bound::Excluded(&e) => e,
            Bound::Unbounded => self.len,
        };
        assert!(
            start <= end && end <= self.len,
            "slice {start}..{end} out of bounds of {} bytes",
            self.len
        );
        if start == end {
            return FrozenBuf::empty();
        }
        // SAFETY: `start < end <= len`: inside the frozen bytes.
        let ptr = unsafe { self.ptr.add(start) };
        FrozenBuf {
            ptr,
            len: end - start,
            owner: self.owner.as_ref().map(Owner::clone_shared),
        }
    }
}

impl Drop for FrozenBuf {
    fn drop(&mut self) {
        if let Some(owner) = &self.owner {
            // SAFETY: the owner is a shared claim (never unique), so the
            // address and length are not used; it is released once, here.
            unsafe { owner.release(self.ptr, self.len) };
        }
    }
}

impl Clone for FrozenBuf {
    fn clone(&self) -> FrozenBuf {
        FrozenBuf {
            ptr: self.ptr,
            len: self.len,
            owner: self.owner.as_ref().map(Owner::clone_shared),
        }
    }
}

impl Deref for FrozenBuf {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: `owner` keeps `ptr..ptr + len` alive and initialized,
        // and nobody writes it (see `from_parts`); without an owner the
        // bytes are a `'static` slice (see `from_static`), or there are
        // none: for `len == 0` the pointer is non-null and aligned, which
        // is all that needs.
        unsafe { slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl AsRef<[u8]> for FrozenBuf {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl PartialEq for FrozenBuf {
    fn eq(&self, other: &FrozenBuf) -> bool {
        self[..] == other[..]
    }
}

impl Eq for FrozenBuf {}

impl PartialEq<[u8]> for FrozenBuf {
    fn eq(&self, other: &[u8]) -> bool {
        self[..] == *other
    }
}

impl fmt::Debug for FrozenBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrozenBuf").field("len", &self.len).finish()
    }
}

impl From<&'static [u8]> for FrozenBuf {
    /// [`FrozenBuf::from_static`].
    fn from(bytes: &'static [u8]) -> FrozenBuf {
        FrozenBuf::from_static(bytes)
    }
}

impl From<FrozenBuf> for Bytes {
    /// Wraps the frozen memory without copying it.
    fn from(frozen: FrozenBuf) -> Bytes {
        Bytes::from_owner(frozen)
    }
}

impl Buf for FrozenBuf {
    #[inline]
    fn remaining(&self) -> usize {
        self.len
    }

    #[inline]
    fn chunk(&self) -> &[u8] {
        self
    }

    fn advance(&mut self, cnt: usize) {
        assert!(
            cnt <= self.len,
            "advance({cnt}) past the {} bytes",
            self.len
        );
        // SAFETY: `cnt <= len`: at most one past the end of the bytes.
        self.ptr = unsafe { self.ptr.add(cnt) };
        self.len -= cnt;
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        if self.is_empty() || dst.is_empty() {
            return 0;
        }
        dst[0] = IoSlice::new(self);
        1
    }
}
