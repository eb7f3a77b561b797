//! The allocator handle that the rest of wharf passes around: pooled or
//! unpooled, chosen at run time, with one API.

use std::io;
use std::ptr::NonNull;

use crate::byte_buf::ByteBuf;
use crate::memory::Owner;
use crate::metrics::AllocatorMetrics;
use crate::pool::PooledAllocator;
use crate::size_class::PAGE;

/// The largest capacity of a [`ByteBuf`]: indices are 32-bit, as Netty's
/// are, which keeps a buffer at four words. Larger data belongs in files
/// and file regions.
pub const MAX_CAPACITY: usize = u32::MAX as usize & !(PAGE - 1);
use crate::unpooled::UnpooledAllocator;

/// Where buffers come from: the pooled direct-memory allocator or plain
/// heap allocations.
///
/// `Copy`, `Send` and `Sync`: keep one in a config struct and hand it to
/// every thread. The default is [`PooledAllocator::global`].
///
/// ```
/// use wharf_buf::Allocator;
/// use bytes::BufMut;
///
/// let alloc = Allocator::default();
/// let mut buf = alloc.buffer(64);
/// buf.put_slice(b"hello");
/// assert_eq!(&buf[..], b"hello");
/// assert!(buf.capacity() >= 64);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    /// Pooled, thread-cached, memory-mapped chunks.
    Pooled(PooledAllocator),
    /// One zeroed heap allocation per buffer.
    Unpooled(UnpooledAllocator),
}

impl Default for Allocator {
    fn default() -> Allocator {
        Allocator::pooled()
    }
}

impl From<PooledAllocator> for Allocator {
    fn from(pool: PooledAllocator) -> Allocator {
        Allocator::Pooled(pool)
    }
}

impl From<UnpooledAllocator> for Allocator {
    fn from(heap: UnpooledAllocator) -> Allocator {
        Allocator::Unpooled(heap)
    }
}

impl Allocator {
    /// The process-wide pool.
    pub fn pooled() -> Allocator {
        Allocator::Pooled(PooledAllocator::global())
    }

    /// The process-wide unpooled allocator.
    pub fn unpooled() -> Allocator {
        Allocator::Unpooled(UnpooledAllocator::global())
    }

    /// Whether buffers come from a pool.
    pub fn is_pooled(&self) -> bool {
        matches!(self, Allocator::Pooled(_))
    }

    /// An empty buffer with at least `capacity` bytes of room.
    ///
    /// # Panics
    ///
    /// If the OS refuses the memory, as `Vec::with_capacity` does; use
    /// [`try_buffer`](Self::try_buffer) to handle that.
    #[inline(always)]
    pub fn buffer(&self, capacity: usize) -> ByteBuf {
        // The hot path, a pop from this thread's cache, inline; the rest
        // (and the panic's formatting) out of line, so that the caller
        // keeps no stack frame for it. Always inline: a buffer built in an
        // out-of-line callee comes back through memory, written a field
        // at a time and read back 16 bytes at a time, a store-forwarding
        // stall that cost more than the allocation (seen in the
        // cross-thread bench, where LLVM had not inlined it). For the same
        // reason the two paths meet on the buffer's parts, not on a
        // buffer: the slow path's result comes back through memory, and a
        // buffer made on both sides would make the fast path write its
        // buffer to that memory too (four stores, and five loads to move it
        // on, per allocation).
        let fast = match self {
            Allocator::Pooled(pool) => pool.cached_block(capacity),
            Allocator::Unpooled(_) => None,
        };
        let (ptr, cap, owner) = match fast {
            Some(block) => block,
            None => self.buffer_slow(capacity),
        };
        ByteBuf::from_raw(ptr, cap, owner)
    }

    /// The parts of a buffer of `capacity` bytes (a capacity of 0 is an
    /// empty buffer that grows from this allocator), when this thread's
    /// cache has no block at hand.
    ///
    /// By value, not `&self`: a reference would make every caller store
    /// the handle on its stack (two stores) on the fast path as well.
    #[inline(never)]
    fn buffer_slow(self, capacity: usize) -> (NonNull<u8>, usize, Owner) {
        if capacity == 0 {
            return (NonNull::dangling(), 0, Owner::empty(self));
        }
        self.raw(capacity, 1)
            .unwrap_or_else(|e| panic!("allocating a {capacity}-byte buffer: {e}"))
    }

    /// An empty buffer with at least `capacity` bytes of room, or the error
    /// the OS gave.
    #[inline]
    pub fn try_buffer(&self, capacity: usize) -> io::Result<ByteBuf> {
        self.try_aligned(capacity, 1)
    }

    /// An empty buffer of at least `capacity` bytes whose first byte is
    /// aligned to `align`, for `O_DIRECT` reads and the like.
    ///
    /// Alignment holds for this allocation; a buffer that later grows moves
    /// to memory with the default alignment.
    ///
    /// # Panics
    ///
    /// If `align` is not a power of two, if it exceeds 4096 on a pooled
    /// allocator (chunks guarantee page alignment and no more), or if the
    /// OS refuses the memory.
    pub fn alloc_aligned(&self, capacity: usize, align: usize) -> ByteBuf {
        assert!(
            align.is_power_of_two(),
            "alignment {align} is not a power of two"
        );
        assert!(
            !self.is_pooled() || align <= PAGE,
            "a pool aligns to at most {PAGE} bytes, not {align}"
        );
        self.try_aligned(capacity, align)
            .unwrap_or_else(|e| panic!("allocating a {capacity}-byte buffer: {e}"))
    }

    /// As [`alloc_aligned`](Self::alloc_aligned), returning an error
    /// instead of panicking.
    pub fn try_alloc_aligned(&self, capacity: usize, align: usize) -> io::Result<ByteBuf> {
        if !align.is_power_of_two() || (self.is_pooled() && align > PAGE) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("alignment {align} is not a power of two this allocator supports"),
            ));
        }
        self.try_aligned(capacity, align)
    }

    #[inline]
    fn try_aligned(&self, capacity: usize, align: usize) -> io::Result<ByteBuf> {
        if capacity == 0 {
            return Ok(ByteBuf::empty(*self));
        }
        let (ptr, cap, owner) = self.raw(capacity, align)?;
        Ok(ByteBuf::from_raw(ptr, cap, owner))
    }

    /// Raw memory for a buffer: its address, its length (at least
    /// `capacity > 0`, at most [`MAX_CAPACITY`]) and the owner that gives
    /// it back.
    #[inline]
    pub(crate) fn raw(
        &self,
        capacity: usize,
        align: usize,
    ) -> io::Result<(NonNull<u8>, usize, Owner)> {
        debug_assert!(capacity > 0);
        if capacity > MAX_CAPACITY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a buffer holds at most {MAX_CAPACITY} bytes, not {capacity}"),
            ));
        }
        match self {
            Allocator::Pooled(pool) => pool.alloc(capacity, align),
            Allocator::Unpooled(heap) => heap.alloc(capacity, align),
        }
    }

    /// A snapshot of the allocator's counters.
    pub fn metrics(&self) -> AllocatorMetrics {
        match self {
            Allocator::Pooled(pool) => pool.metrics(),
            Allocator::Unpooled(heap) => heap.metrics(),
        }
    }

    /// For a pool, gives this thread's cached blocks back to the arena (see
    /// [`PooledAllocator::trim_thread_cache`]); nothing for the heap.
    pub fn trim_thread_cache(&self) {
        if let Allocator::Pooled(pool) = self {
            pool.trim_thread_cache();
        }
    }
}
