//! `ByteBuf`: a growable byte buffer with reader and writer indices over
//! pooled or heap memory.

mod traits;

use std::io;
use std::ptr::{self, NonNull};
use std::slice;

use crate::allocator::Allocator;
use crate::allocator::MAX_CAPACITY;
use crate::frozen::FrozenBuf;
use crate::memory::Owner;

/// A byte buffer with a reader index and a writer index, as Netty's
/// `ByteBuf`:
///
/// ```text
/// +-------------------+------------------+------------------+
/// | discarded bytes   |  readable bytes  |  writable bytes  |
/// +-------------------+------------------+------------------+
/// 0        <=    reader_index   <=   writer_index   <=   capacity
/// ```
///
/// * It dereferences to the readable bytes (`&buf[..]`).
/// * Writing ([`BufMut`](bytes::BufMut), [`io::Write`], [`extend_from_slice`](Self::extend_from_slice))
///   appends at the writer index and grows the buffer when needed: first by
///   moving the readable bytes to the front, then by moving to memory of a
///   larger size class.
/// * Reading ([`Buf`](bytes::Buf), [`io::Read`]) consumes from the reader index.
/// * [`split_to`](Self::split_to) and [`freeze`](Self::freeze) share the
///   memory by reference count instead of copying; a frozen buffer turns
///   into [`bytes::Bytes`] without a copy.
///
/// Memory goes back to its allocator when the last view of it drops, on
/// whatever thread that happens.
///
/// Threading: `Send` and `Sync`. A buffer is a plain value with one owner;
/// views made by `split_to` are independent values.
///
/// ```
/// use wharf_buf::Allocator;
/// use bytes::{Buf, BufMut};
///
/// let mut buf = Allocator::default().buffer(16);
/// buf.put_slice(b"GET / HTTP/1.1\r\n");
/// let line = buf.split_to(5);          // shares memory, no copy
/// assert_eq!(&line[..], b"GET /");
/// assert_eq!(buf.get_u8(), b' ');
/// assert_eq!(&buf[..], b"HTTP/1.1\r\n");
/// ```
pub struct ByteBuf {
    /// First byte of this view. Dangling while the owner is empty.
    ptr: NonNull<u8>,
    cap: u32,
    read: u32,
    write: u32,
    /// With a unique owner, `ptr` and `cap` are the allocation itself.
    owner: Owner,
}

// SAFETY: a `ByteBuf` is the only handle to the bytes `ptr..ptr + cap` (views
// never overlap), so moving it to another thread moves that exclusive
// access; `owner` is `Send` (see `Owner`).
unsafe impl Send for ByteBuf {}
// SAFETY: `&ByteBuf` only reads the view's bytes; writing needs `&mut`.
unsafe impl Sync for ByteBuf {}

/// Casts an index that fits by construction (every index is at most the
/// capacity, itself at most `MAX_CAPACITY`).
#[inline]
fn idx(n: usize) -> u32 {
    debug_assert!(n <= u32::MAX as usize);
    n as u32
}

impl ByteBuf {
    /// An empty buffer that allocates from the default allocator when first
    /// written to.
    pub fn new() -> ByteBuf {
        ByteBuf::empty(Allocator::default())
    }

    /// A buffer of capacity 0 that grows from `alloc`.
    pub(crate) fn empty(alloc: Allocator) -> ByteBuf {
        ByteBuf {
            ptr: NonNull::dangling(),
            cap: 0,
            read: 0,
            write: 0,
            owner: Owner::empty(alloc),
        }
    }

    /// An empty buffer over a fresh allocation of `cap` bytes.
    #[inline(always)]
    pub(crate) fn from_raw(ptr: NonNull<u8>, cap: usize, owner: Owner) -> ByteBuf {
        ByteBuf {
            ptr,
            cap: idx(cap),
            read: 0,
            write: 0,
            owner,
        }
    }

    /// Bytes the buffer can hold without growing.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.cap as usize
    }

    /// Readable bytes: `writer_index - reader_index`.
    #[inline]
    pub fn len(&self) -> usize {
        (self.write - self.read) as usize
    }

    /// Whether there is nothing to read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.write == self.read
    }

    /// Where the next read starts.
    #[inline]
    pub fn reader_index(&self) -> usize {
        self.read as usize
    }

    /// Where the next write starts.
    #[inline]
    pub fn writer_index(&self) -> usize {
        self.write as usize
    }

    /// Bytes that can be written without growing.
    #[inline]
    pub fn writable_bytes(&self) -> usize {
        (self.cap - self.write) as usize
    }

    /// The allocator this buffer grows from.
    pub fn allocator(&self) -> Allocator {
        self.owner.allocator()
    }

    /// Whether no other view shares this buffer's memory.
    pub fn is_unique(&self) -> bool {
        self.owner.is_unique()
    }

    /// Address of the first readable byte (for alignment checks and FFI).
    #[inline]
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr().wrapping_add(self.reader_index())
    }

    /// Forgets all content: both indices go to 0.
    #[inline]
    pub fn clear(&mut self) {
        self.read = 0;
        self.write = 0;
    }

    /// Keeps only the first `len` readable bytes (no effect if there are
    /// fewer).
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.write = self.read + idx(len);
        }
    }

    /// Consumes `n` readable bytes without looking at them.
    ///
    /// # Panics
    ///
    /// If fewer than `n` bytes are readable.
    #[inline]
    pub fn skip(&mut self, n: usize) {
        assert!(
            n <= self.len(),
            "skip({n}) past the {} readable bytes",
            self.len()
        );
        self.read += idx(n);
        if self.read == self.write {
            // Nothing left to read: start over at the front for free.
            self.read = 0;
            self.write = 0;
        }
    }

    /// Makes room for at least `additional` more bytes.
    ///
    /// # Panics
    ///
    /// If the OS refuses the memory, or the buffer would exceed
    /// [`MAX_CAPACITY`](crate::MAX_CAPACITY); see
    /// [`try_reserve`](Self::try_reserve).
    #[inline]
    pub fn reserve(&mut self, additional: usize) {
        if self.writable_bytes() < additional {
            self.grow_or_panic(additional);
        }
    }

    #[cold]
    fn grow_or_panic(&mut self, additional: usize) {
        if let Err(e) = self.grow(additional) {
            panic!("growing a buffer by {additional} bytes: {e}");
        }
    }

    /// Makes room for at least `additional` more bytes: moves the readable
    /// bytes to the front if that is enough, else moves them to a larger
    /// allocation of at least twice the capacity (or exactly what is
    /// needed, if that is more), so filling a buffer of any size copies
    /// each byte a bounded number of times.
    #[inline]
    pub fn try_reserve(&mut self, additional: usize) -> io::Result<()> {
        if self.writable_bytes() >= additional {
            return Ok(());
        }
        self.grow(additional)
    }

    /// The slow path of `try_reserve`: compact or move to a larger block.
    fn grow(&mut self, additional: usize) -> io::Result<()> {
        let len = self.len();
        let needed = len
            .checked_add(additional)
            .filter(|&n| n <= MAX_CAPACITY)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!("a buffer holds at most {MAX_CAPACITY} bytes"),
                )
            })?;
        if needed <= self.capacity() {
            self.discard_read_bytes();
            return Ok(());
        }
        // Geometric growth: appending in small pieces moves the bytes
        // O(log n) times (fixed steps made filling a 400 MB frame copy it
        // about a hundred times). An explicit reservation of more than
        // double is taken exactly: a codec that knows the frame's length
        // gets one allocation of that size.
        let target = needed
            .max(self.capacity().saturating_mul(2))
            .clamp(64, MAX_CAPACITY);
        if self.read == 0
            && let Some(block) = self.owner.huge_block_mut()
        {
            // A mapping of its own, held by this view alone, filled from
            // its start: the kernel moves its pages to a larger range;
            // nothing is copied. (With bytes consumed at the front, moving
            // to a new block compacts them away instead.)
            // SAFETY: a huge owner is unique (shared views have a shared
            // owner), so this view is the only one, and it takes the new
            // base below before touching the bytes again.
            if let Ok(Some((base, cap))) = unsafe { block.grow(target) } {
                self.ptr = base;
                self.cap = idx(cap.min(MAX_CAPACITY));
                return Ok(());
            }
        }
        let (ptr, cap, owner) = self.owner.allocator().raw(target, 1)?;
        // SAFETY: the source is this view's readable bytes, in bounds; the
        // destination is a fresh allocation of `cap >= needed > len` bytes,
        // so the two cannot overlap.
        unsafe { ptr::copy_nonoverlapping(self.as_ptr(), ptr.as_ptr(), len) };
        let mut grown = ByteBuf::from_raw(ptr, cap, owner);
        grown.write = idx(len);
        // Dropping the old view gives its memory back.
        drop(std::mem::replace(self, grown));
        Ok(())
    }

    /// Moves the readable bytes to the front, making the discarded space
    /// writable (Netty's `discardReadBytes`).
    pub fn discard_read_bytes(&mut self) {
        if self.read == 0 {
            return;
        }
        let len = self.len();
        // SAFETY: both ranges lie inside this view (read + len == write <=
        // cap); `ptr::copy` allows them to overlap.
        unsafe { ptr::copy(self.as_ptr(), self.ptr.as_ptr(), len) };
        self.read = 0;
        self.write = idx(len);
    }

    /// Appends `src`, growing if needed.
    #[inline]
    pub fn extend_from_slice(&mut self, src: &[u8]) {
        self.reserve(src.len());
        // SAFETY: `reserve` left at least `src.len()` writable bytes at
        // the writer index, inside this view (see `spare_mut`); `src` is a
        // shared borrow, so it cannot be this view's spare capacity, which
        // `&mut self` holds.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), self.spare_ptr(), src.len()) };
        self.write += idx(src.len());
    }

    /// Appends `cnt` copies of `val`, growing if needed: one capacity
    /// check and a `memset` (the `BufMut::put_bytes` of this type).
    #[inline]
    pub(crate) fn fill_bytes(&mut self, val: u8, cnt: usize) {
        self.reserve(cnt);
        // SAFETY: `reserve` left at least `cnt` writable bytes at the
        // writer index, inside this view (see `spare_mut`).
        unsafe { self.spare_ptr().write_bytes(val, cnt) };
        self.write += idx(cnt);
    }

    /// The address of the writer index: the first writable byte, or one
    /// past the view's end (dangling while the owner is empty). Writing
    /// through it is up to the caller, within `writable_bytes()`.
    #[inline]
    fn spare_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr().wrapping_add(self.writer_index())
    }

    /// The writable bytes, to fill before calling [`commit`](Self::commit).
    /// Their content is whatever the memory held before (initialized, not
    /// necessarily zero).
    #[inline]
    pub fn spare_mut(&mut self) -> &mut [u8] {
        let spare = self.writable_bytes();
        if spare == 0 {
            return &mut [];
        }
        // SAFETY: `write..cap` lies inside this view, which no other view
        // overlaps; the memory is initialized (mappings and heap blocks
        // start zeroed and are only ever written with initialized bytes);
        // `&mut self` rules out any other borrow for the slice's lifetime.
        unsafe { slice::from_raw_parts_mut(self.ptr.as_ptr().add(self.writer_index()), spare) }
    }

    /// Marks `n` bytes written into [`spare_mut`](Self::spare_mut) as
    /// readable.
    ///
    /// # Panics
    ///
    /// If `n` exceeds the writable bytes.
    #[inline]
    pub fn commit(&mut self, n: usize) {
        assert!(
            n <= self.writable_bytes(),
            "commit({n}) past the {} writable bytes",
            self.writable_bytes()
        );
        self.write += idx(n);
    }

    /// Splits off the first `n` readable bytes as a new buffer that shares
    /// this one's memory. Afterwards `self` starts just after them.
    ///
    /// The new buffer has no spare capacity (writing to it allocates);
    /// `self` keeps its writable bytes.
    ///
    /// # Panics
    ///
    /// If fewer than `n` bytes are readable.
    pub fn split_to(&mut self, n: usize) -> ByteBuf {
        assert!(
            n <= self.len(),
            "split_to({n}) past the {} readable bytes",
            self.len()
        );
        if n == 0 {
            return ByteBuf::empty(self.allocator());
        }
        let owner = self.owner.share(self.ptr, self.capacity());
        let cut = self.read + idx(n);
        // SAFETY: `read` and `cut` are at most `write <= cap`, inside this
        // view's allocation (n > 0, so the view has memory).
        let (head, tail) = unsafe {
            (
                self.ptr.add(self.reader_index()),
                self.ptr.add(cut as usize),
            )
        };
        self.ptr = tail;
        self.cap -= cut;
        self.write -= cut;
        self.read = 0;
        ByteBuf {
            ptr: head,
            cap: idx(n),
            read: 0,
            write: idx(n),
            owner,
        }
    }

    /// Splits off all readable bytes (`split_to(len())`).
    pub fn split(&mut self) -> ByteBuf {
        self.split_to(self.len())
    }

    /// Turns the readable bytes into an immutable, cheaply cloneable
    /// [`FrozenBuf`] without copying.
    pub fn freeze(mut self) -> FrozenBuf {
        if self.is_empty() {
            return FrozenBuf::empty();
        }
        let owner = self.owner.share(self.ptr, self.capacity());
        // SAFETY: `read < write <= cap`: inside this view's allocation.
        let ptr = unsafe { self.ptr.add(self.reader_index()) };
        // SAFETY: `owner` is a counted claim that keeps the memory alive;
        // `ptr..ptr + len` is initialized and no longer reachable for
        // writing once `self` drops at the end of this function.
        unsafe { FrozenBuf::from_parts(ptr, self.len(), owner) }
    }

    /// A deep copy of the readable bytes in a new buffer from the same
    /// allocator (Netty's `copy()`).
    pub fn copy(&self) -> ByteBuf {
        let mut copy = self.allocator().buffer(self.len());
        copy.extend_from_slice(self);
        copy
    }
}

impl Drop for ByteBuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: a unique view's pointer and capacity are its whole
        // allocation (see the field docs); no borrow of the buffer can
        // outlive `&mut self`, and the owner is never used again.
        unsafe { self.owner.release(self.ptr, self.capacity()) };
    }
}
