//! What an allocator costs, in numbers any thread can read.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// A snapshot of an allocator's counters, from
/// [`Allocator::metrics`](crate::Allocator::metrics).
///
/// Counts are summed over every thread that used the allocator. "Bytes" of
/// a pooled buffer are its class size (its capacity), not the bytes
/// written into it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllocatorMetrics {
    /// Chunks mapped now.
    pub chunks_mapped: u64,
    /// Chunks unmapped since the allocator was made.
    pub chunks_unmapped: u64,
    /// Bytes mapped now: chunks plus huge allocations (or, unpooled, heap
    /// bytes allocated now).
    pub bytes_mapped: u64,
    /// Bytes held by live buffers.
    pub bytes_in_use: u64,
    /// Buffer memory allocations since the start (growth counts again).
    pub allocations: u64,
    /// Buffer memory frees since the start.
    pub frees: u64,
    /// Huge allocations (above the chunk size) alive now.
    pub huge_live: u64,
    /// Allocations served from a thread cache.
    pub cache_hits: u64,
    /// Allocations that had to go to the shared arena.
    pub cache_misses: u64,
    /// Blocks freed on a thread other than their owner's, sent back through
    /// the owner's return stack.
    pub cross_thread_returns: u64,
    /// Blocks waiting on return stacks for their owner to take them in.
    pub pending_returns: u64,
    /// Thread caches alive now.
    pub thread_caches: u64,
    /// Per size class; empty for the unpooled allocator.
    pub classes: Vec<ClassMetrics>,
}

/// Counters of one size class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassMetrics {
    /// The class size in bytes.
    pub size: usize,
    /// Allocations of this class since the start.
    pub allocations: u64,
    /// Blocks of this class held by live buffers now.
    pub live: u64,
}

/// Counters written by one thread at a time and read by any: the writer
/// adds with a plain load and store, which costs no locked instruction.
///
/// The hot path bumps one counter per allocation and one per free (of the
/// block's class); totals, bytes and cache hits are derived when read.
#[derive(Debug)]
pub(crate) struct LocalCounters {
    /// Allocations that went to the arena (cache misses and uncached classes).
    pub cache_misses: AtomicU64,
    pub cross_thread_returns: AtomicU64,
    /// Returned blocks taken off this slot's return stack by its owner, or
    /// given to the arena by this thread because their owner had gone.
    pub returns_taken: AtomicU64,
    pub class_allocations: Box<[AtomicU64]>,
    pub class_frees: Box<[AtomicU64]>,
}

impl LocalCounters {
    pub(crate) fn new(classes: usize) -> LocalCounters {
        let zeros = || (0..classes).map(|_| AtomicU64::new(0)).collect();
        LocalCounters {
            cache_misses: AtomicU64::new(0),
            cross_thread_returns: AtomicU64::new(0),
            returns_taken: AtomicU64::new(0),
            class_allocations: zeros(),
            class_frees: zeros(),
        }
    }

    /// Adds the frees to `metrics` (whose `classes` are already sized).
    ///
    /// A snapshot reads the frees of every thread before any allocation
    /// count: a block freed on one thread was allocated, earlier, on
    /// another, and the acquire loads here (paired with the release stores
    /// of [`bump`]) make sure that allocation is seen too. Reading the other
    /// way round could count a free without its allocation and wrap the
    /// totals below zero.
    /// Returns the blocks taken back, which are read in this phase too:
    /// a block is counted as sent (`cross_thread_returns`, read with the
    /// allocations) before it is pushed, so before it can be taken.
    pub(crate) fn add_frees_to(&self, metrics: &mut AllocatorMetrics) -> u64 {
        for (i, class) in metrics.classes.iter_mut().enumerate() {
            let frees = self.class_frees[i].load(Acquire);
            metrics.frees += frees;
            class.live = class.live.wrapping_sub(frees);
            metrics.bytes_in_use = metrics
                .bytes_in_use
                .wrapping_sub(frees.wrapping_mul(class.size as u64));
        }
        self.returns_taken.load(Acquire)
    }

    /// Adds the allocations and the other counters to `metrics`; call after
    /// [`add_frees_to`](Self::add_frees_to) on every thread's counters.
    pub(crate) fn add_allocations_to(&self, metrics: &mut AllocatorMetrics) {
        let misses = self.cache_misses.load(Acquire);
        let mut allocations = 0u64;
        for (i, class) in metrics.classes.iter_mut().enumerate() {
            let allocs = self.class_allocations[i].load(Acquire);
            allocations += allocs;
            class.allocations += allocs;
            class.live = class.live.wrapping_add(allocs);
            metrics.bytes_in_use = metrics
                .bytes_in_use
                .wrapping_add(allocs.wrapping_mul(class.size as u64));
        }
        metrics.allocations += allocations;
        metrics.cache_misses += misses;
        metrics.cache_hits += allocations.saturating_sub(misses);
        metrics.cross_thread_returns += self.cross_thread_returns.load(Acquire);
    }
}

/// Adds `n` to a counter that only the calling thread writes. The release
/// store costs nothing extra on x86 (a plain `mov`) and lets a reader that
/// sees the new value also see what this thread did before.
#[inline]
pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Release);
}

/// Adds `n` to a counter that several threads may write.
#[inline]
pub(crate) fn bump_shared(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Release);
}
