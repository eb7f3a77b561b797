//! The unpooled allocator: every buffer is a fresh, zeroed heap allocation.
//!
//! It exists so that every test and bench can run the same code over pooled
//! and unpooled memory (Netty's testsuite does the same), and as the
//! baseline the pool has to beat.

use std::alloc::{self, Layout};
use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::memory::Owner;
use crate::metrics::AllocatorMetrics;

/// Alignments up to 2^31 are supported.
const ALIGNMENTS: usize = 32;

/// The counters of one unpooled allocator, and its per-alignment kinds.
pub(crate) struct UnpooledShared {
    allocations: AtomicU64,
    frees: AtomicU64,
    bytes_allocated: AtomicU64,
    bytes_freed: AtomicU64,
    kinds: [OnceLock<&'static HeapKind>; ALIGNMENTS],
}

/// Heap allocations of one alignment from one unpooled allocator: what a
/// unique heap-backed buffer's owner word points to.
#[derive(Debug)]
pub(crate) struct HeapKind {
    pub shared: &'static UnpooledShared,
    align: usize,
}

impl HeapKind {
    /// Returns an allocation to the heap.
    ///
    /// # Safety
    ///
    /// `ptr` and `len` must describe an allocation of this kind made by
    /// [`UnpooledAllocator::alloc`], not yet freed and not referred to after
    /// this call.
    pub(crate) unsafe fn free(&self, ptr: NonNull<u8>, len: usize) {
        self.shared.frees.fetch_add(1, Release);
        self.shared.bytes_freed.fetch_add(len as u64, Release);
        // SAFETY: `alloc` made a layout from this size and alignment, so it
        // is valid, and it is the layout the memory was allocated with.
        let layout = unsafe { Layout::from_size_align_unchecked(len, self.align) };
        // SAFETY: by the contract above, `ptr` was allocated with `layout`
        // by the global allocator and is freed only here.
        unsafe { alloc::dealloc(ptr.as_ptr(), layout) };
    }
}

/// Heap-backed buffers behind the same API as [`PooledAllocator`](crate::PooledAllocator).
///
/// A cheap `Copy` handle; `Send + Sync`. Like a pool, an unpooled allocator
/// lives for the rest of the program (it is only a set of counters).
#[derive(Clone, Copy)]
pub struct UnpooledAllocator {
    shared: &'static UnpooledShared,
}

impl PartialEq for UnpooledAllocator {
    /// The same set of counters.
    fn eq(&self, other: &UnpooledAllocator) -> bool {
        std::ptr::eq(self.shared, other.shared)
    }
}

impl Eq for UnpooledAllocator {}

impl fmt::Debug for UnpooledAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnpooledAllocator").finish_non_exhaustive()
    }
}

impl fmt::Debug for UnpooledShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnpooledShared").finish_non_exhaustive()
    }
}

impl Default for UnpooledAllocator {
    fn default() -> UnpooledAllocator {
        UnpooledAllocator::new()
    }
}

impl UnpooledAllocator {
    /// A new unpooled allocator with counters of its own.
    pub fn new() -> UnpooledAllocator {
        let shared = Box::leak(Box::new(UnpooledShared {
            allocations: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            bytes_allocated: AtomicU64::new(0),
            bytes_freed: AtomicU64::new(0),
            kinds: [const { OnceLock::new() }; ALIGNMENTS],
        }));
        UnpooledAllocator { shared }
    }

    /// The process-wide unpooled allocator.
    pub fn global() -> UnpooledAllocator {
        static GLOBAL: OnceLock<UnpooledAllocator> = OnceLock::new();
        *GLOBAL.get_or_init(UnpooledAllocator::new)
    }

    pub(crate) fn from_shared(shared: &'static UnpooledShared) -> UnpooledAllocator {
        UnpooledAllocator { shared }
    }

    /// The kind for allocations aligned to `align` (a power of two below
    /// 2^32).
    pub(crate) fn kind(&self, align: usize) -> &'static HeapKind {
        debug_assert!(align.is_power_of_two() && align.trailing_zeros() < ALIGNMENTS as u32);
        let shared = self.shared;
        shared.kinds[align.trailing_zeros() as usize]
            .get_or_init(|| Box::leak(Box::new(HeapKind { shared, align })))
    }

    /// `size` zeroed bytes (`size > 0`) aligned to `align`: address,
    /// length, and the owner that gives them back.
    #[inline]
    pub(crate) fn alloc(
        &self,
        size: usize,
        align: usize,
    ) -> io::Result<(NonNull<u8>, usize, Owner)> {
        let align = align.max(1);
        if !align.is_power_of_two() || align.trailing_zeros() >= ALIGNMENTS as u32 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "alignment must be a power of two below 2^32",
            ));
        }
        let layout = Layout::from_size_align(size, align)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: `layout` has a non-zero size (callers never ask for 0
        // bytes) and a valid power-of-two alignment, checked above.
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr)
            .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "heap allocation failed"))?;
        self.shared.allocations.fetch_add(1, Relaxed);
        self.shared.bytes_allocated.fetch_add(size as u64, Relaxed);
        Ok((ptr, size, Owner::heap(self.kind(align))))
    }

    /// A snapshot of this allocator's counters.
    pub fn metrics(&self) -> AllocatorMetrics {
        let s = self.shared;
        // Frees before allocations, so a free is never seen without its
        // allocation (see `LocalCounters::add_frees_to`).
        let frees = s.frees.load(Acquire);
        let bytes_freed = s.bytes_freed.load(Acquire);
        let in_use = s.bytes_allocated.load(Relaxed).saturating_sub(bytes_freed);
        AllocatorMetrics {
            allocations: s.allocations.load(Relaxed),
            frees,
            bytes_in_use: in_use,
            bytes_mapped: in_use,
            ..AllocatorMetrics::default()
        }
    }
}
