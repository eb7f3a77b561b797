//! The pooled direct-buffer allocator: its configuration, its shared state,
//! and the paths a block takes from the arena to a buffer and back.

use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Duration;

use crate::arena::{Arena, ArenaStats};
use crate::huge::{HugeBlock, HugeCache};
use crate::local::{alloc_cached, with_cache};
use crate::memory::Owner;
use crate::metrics::{AllocatorMetrics, ClassMetrics, bump_shared};
use crate::size_class::{PAGE, aligned_class, class_of, class_size, is_small};
use crate::sync::{Mutex, MutexGuard};
use crate::thread_cache::{ThreadSlot, alloc_from_arena};

/// Settings of a [`PooledAllocator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Bytes in one chunk, the unit mapped from the OS: a power of two from
    /// 64 KiB to 1 GiB. Requests above it get a mapping of their own.
    /// Default 4 MiB.
    pub chunk_size: usize,
    /// Empty chunks kept mapped for reuse. Default 2.
    pub retained_chunks: usize,
    /// How long a chunk beyond the retained ones stays mapped after it
    /// empties, in case it is needed again (an explicit trim does not wait).
    /// `Duration::ZERO` unmaps at once. Default 1 s.
    pub empty_chunk_decay: Duration,
    /// Classes up to this size are kept in thread caches; larger blocks go
    /// back to the arena at once. Default 1 MiB.
    pub max_cached_size: usize,
    /// Bytes a thread cache may hold per class (at least one block, at most
    /// 512). Default 1 MiB.
    pub cache_bytes_per_class: usize,
    /// A thread cache trims the blocks it did not need after this many
    /// allocations. Default 8192 (Netty's `freeSweepAllocationThreshold`).
    pub trim_interval: u32,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig {
            chunk_size: 4 << 20,
            retained_chunks: 2,
            empty_chunk_decay: Duration::from_secs(1),
            max_cached_size: 1 << 20,
            cache_bytes_per_class: 1 << 20,
            trim_interval: 8192,
        }
    }
}

/// The state of one pool, shared by every thread that uses it. Pools live
/// for the rest of the program (their memory does not: see
/// [`PoolConfig::retained_chunks`]), so buffers refer to them with a plain
/// `&'static` reference and pay no reference count.
pub(crate) struct PoolShared {
    pub id: usize,
    pub config: PoolConfig,
    /// Classes up to the chunk size.
    pub classes: usize,
    /// Most blocks a thread cache keeps, per cached class.
    pub bin_limits: Box<[usize]>,
    arena: Mutex<Arena>,
    pub stats: ArenaStats,
    pub huge_allocations: AtomicU64,
    pub huge_live: AtomicU64,
    pub huge_bytes: AtomicU64,
    /// Freed huge mappings kept for reuse.
    pub huge_cache: HugeCache,
    slots: Mutex<Slots>,
    /// The slot of allocations made without a thread cache (by exiting
    /// threads): never owned, written by several threads.
    orphan: OnceLock<&'static ThreadSlot>,
    live_caches: AtomicUsize,
}

#[derive(Default)]
struct Slots {
    all: Vec<&'static ThreadSlot>,
    free: Vec<&'static ThreadSlot>,
}

impl fmt::Debug for PoolShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolShared")
            .field("id", &self.id)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PoolShared {
    pub(crate) fn lock_arena(&self) -> MutexGuard<'_, Arena> {
        // The arena's invariants hold between its calls, none of which can
        // panic half-way on valid input, so a poisoned lock is still usable.
        self.arena.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_slot(&'static self, slots: &mut Slots) -> &'static ThreadSlot {
        let slot: &'static ThreadSlot = Box::leak(Box::new(ThreadSlot::new(self)));
        slots.all.push(slot);
        slot
    }

    /// A slot for a new thread cache: a recycled one, or a new one.
    pub(crate) fn acquire_slot(&'static self) -> &'static ThreadSlot {
        self.live_caches.fetch_add(1, Relaxed);
        let mut slots = self.lock_slots();
        match slots.free.pop() {
            Some(slot) => slot,
            None => self.new_slot(&mut slots),
        }
    }

    /// Puts the slot of an exited thread up for reuse.
    pub(crate) fn release_slot(&self, slot: &'static ThreadSlot) {
        self.live_caches.fetch_sub(1, Relaxed);
        self.lock_slots().free.push(slot);
    }

    /// Thread caches not yet torn down, counted under the slots' lock, so
    /// a count of zero is ordered after every cache's exit (its hand-over
    /// included), which `live_caches` is not.
    #[cfg(all(test, loom))]
    pub(crate) fn caches_alive(&self) -> usize {
        let slots = self.lock_slots();
        let orphan = usize::from(self.orphan.get().is_some());
        slots.all.len() - slots.free.len() - orphan
    }

    /// The slot that stands for "no thread cache".
    pub(crate) fn orphan_slot(&'static self) -> &'static ThreadSlot {
        self.orphan
            .get_or_init(|| self.new_slot(&mut self.lock_slots()))
    }
}

/// The pooled, thread-local-cached, direct-memory allocator.
///
/// A cheap `Copy` handle to a pool. Memory comes from anonymous mappings
/// (outside the Rust heap) in chunks of [`PoolConfig::chunk_size`]; see the
/// [crate docs](crate) for size classes, caches and how memory goes back to
/// the OS.
///
/// Threading: a handle is `Send + Sync` and may be used from any number of
/// threads; each thread allocates from its own cache. A pool is never freed:
/// make pools at start-up (most programs need only
/// [`PooledAllocator::global`]), not per connection.
#[derive(Clone, Copy)]
pub struct PooledAllocator {
    shared: &'static PoolShared,
}

impl PartialEq for PooledAllocator {
    /// The same pool.
    fn eq(&self, other: &PooledAllocator) -> bool {
        std::ptr::eq(self.shared, other.shared)
    }
}

impl Eq for PooledAllocator {}

impl fmt::Debug for PooledAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledAllocator")
            .field("id", &self.shared.id)
            .field("config", &self.shared.config)
            .finish()
    }
}

static NEXT_POOL_ID: AtomicUsize = AtomicUsize::new(0);

impl PooledAllocator {
    /// The process-wide pool with the default [`PoolConfig`].
    pub fn global() -> PooledAllocator {
        static GLOBAL: OnceLock<PooledAllocator> = OnceLock::new();
        *GLOBAL.get_or_init(|| PooledAllocator::new(PoolConfig::default()))
    }

    /// A new pool.
    ///
    /// # Panics
    ///
    /// If `chunk_size` is not a power of two from 64 KiB to 1 GiB.
    pub fn new(config: PoolConfig) -> PooledAllocator {
        assert!(
            config.chunk_size.is_power_of_two()
                && (64 << 10..=1 << 30).contains(&config.chunk_size),
            "chunk_size must be a power of two from 64 KiB to 1 GiB, not {}",
            config.chunk_size
        );
        let classes = class_of(config.chunk_size) + 1;
        let cached_classes = if config.max_cached_size == 0 {
            0
        } else {
            (class_of(config.max_cached_size.min(config.chunk_size)) + 1).min(classes)
        };
        let bin_limits = (0..cached_classes)
            .map(|c| (config.cache_bytes_per_class / class_size(c)).clamp(1, 512))
            .collect();
        let small_classes = (0..classes).take_while(|&c| is_small(c)).count();
        let shared = Box::leak(Box::new(PoolShared {
            id: NEXT_POOL_ID.fetch_add(1, Relaxed),
            arena: Mutex::new(Arena::new(
                config.chunk_size,
                config.retained_chunks,
                config.empty_chunk_decay,
                small_classes,
            )),
            config,
            classes,
            bin_limits,
            stats: ArenaStats::default(),
            huge_allocations: AtomicU64::new(0),
            huge_live: AtomicU64::new(0),
            huge_bytes: AtomicU64::new(0),
            huge_cache: HugeCache::default(),
            slots: Mutex::new(Slots::default()),
            orphan: OnceLock::new(),
            live_caches: AtomicUsize::new(0),
        }));
        PooledAllocator { shared }
    }

    pub(crate) fn from_shared(shared: &'static PoolShared) -> PooledAllocator {
        PooledAllocator { shared }
    }

    pub(crate) fn shared(&self) -> &'static PoolShared {
        self.shared
    }

    /// The configuration this pool was made with.
    pub fn config(&self) -> &PoolConfig {
        &self.shared.config
    }

    /// Memory for at least `size` bytes (`size > 0`): its address, its
    /// length and the owner that gives it back. It is aligned to the largest power of
    /// two dividing its length (up to 4 KiB), and to `align` (at most 4 KiB).
    #[inline]
    pub(crate) fn alloc(
        &self,
        size: usize,
        align: usize,
    ) -> io::Result<(NonNull<u8>, usize, Owner)> {
        let class = if align > 1 {
            aligned_class(size, align)
        } else {
            class_of(size)
        };
        match alloc_cached(self.shared, class) {
            Some(block) => Ok(block),
            None => self.alloc_slow(size, class),
        }
    }

    /// A block for a buffer of `capacity` bytes from this thread's
    /// cache, if it has one at hand: the hot path of
    /// [`Allocator::buffer`]. `None` for a capacity of 0.
    #[inline(always)]
    pub(crate) fn cached_block(&self, capacity: usize) -> Option<(NonNull<u8>, usize, Owner)> {
        if capacity == 0 {
            return None;
        }
        alloc_cached(self.shared, class_of(capacity))
    }

    /// `alloc` when this thread's cache has no block at hand: a huge
    /// request, an uncached class, an empty bin, returns to take in, a
    /// thread that uses another pool or has no cache (yet, or any more).
    #[inline(never)]
    fn alloc_slow(&self, size: usize, class: usize) -> io::Result<(NonNull<u8>, usize, Owner)> {
        let pool = self.shared;
        if size > pool.config.chunk_size || class >= pool.classes {
            return self.alloc_huge(size);
        }
        match with_cache(pool, |cache| cache.alloc_slow(class)) {
            Some(Some(block)) => Ok(block),
            Some(None) => Err(out_of_memory()),
            None => {
                // No thread cache (the thread is exiting): straight from the arena.
                let slot = pool.orphan_slot();
                bump_shared(&slot.counters.class_allocations[class], 1);
                bump_shared(&slot.counters.cache_misses, 1);
                let ptr = alloc_from_arena(pool, class).ok_or_else(out_of_memory)?;
                Ok((ptr, class_size(class), Owner::pooled(slot, class)))
            }
        }
    }

    #[cold]
    fn alloc_huge(&self, size: usize) -> io::Result<(NonNull<u8>, usize, Owner)> {
        let pool = self.shared;
        let len = size.next_multiple_of(PAGE);
        let mut mapping = pool.huge_cache.take(len, pool)?;
        let (ptr, len) = (mapping.base(), mapping.len());
        Ok((
            ptr,
            len,
            Owner::huge(Box::new(HugeBlock::new(mapping, pool))),
        ))
    }

    /// Gives back the calling thread's cached blocks and pending returns to
    /// the shared arena, and unmaps every empty chunk beyond
    /// [`PoolConfig::retained_chunks`] and every freed huge mapping kept
    /// for reuse, without waiting for the decay. Event loops call this when
    /// idle.
    pub fn trim_thread_cache(&self) {
        with_cache(self.shared, |cache| cache.flush());
        self.shared.huge_cache.trim(self.shared, Duration::ZERO);
    }

    /// Changes how many empty chunks stay mapped; unmaps any beyond it now.
    pub fn set_retained_chunks(&self, retained: usize) {
        let pool = self.shared;
        pool.lock_arena().set_retain_chunks(retained, &pool.stats);
    }

    /// A snapshot of the pool's counters, summed over all threads.
    pub fn metrics(&self) -> AllocatorMetrics {
        let pool = self.shared;
        let mut m = AllocatorMetrics {
            classes: (0..pool.classes)
                .map(|c| ClassMetrics {
                    size: class_size(c),
                    ..ClassMetrics::default()
                })
                .collect(),
            ..AllocatorMetrics::default()
        };
        let slots = pool.lock_slots();
        let mut returns_taken = 0;
        for slot in slots.all.iter() {
            returns_taken += slot.counters.add_frees_to(&mut m);
        }
        for slot in slots.all.iter() {
            slot.counters.add_allocations_to(&mut m);
        }
        drop(slots);
        m.pending_returns = m.cross_thread_returns.saturating_sub(returns_taken);
        // Unmapped before mapped, for the same reason as frees before
        // allocations; the arena updates both under its lock.
        m.chunks_unmapped = pool.stats.chunks_unmapped.load(Acquire);
        let mapped = pool.stats.chunks_mapped.load(Acquire);
        m.chunks_mapped = mapped.saturating_sub(m.chunks_unmapped);
        m.bytes_mapped = pool.stats.bytes_mapped.load(Relaxed);
        m.huge_live = pool.huge_live.load(Relaxed);
        let huge_allocations = pool.huge_allocations.load(Relaxed);
        m.allocations += huge_allocations;
        m.cache_misses += huge_allocations;
        m.frees += huge_allocations - m.huge_live;
        m.bytes_in_use = m.bytes_in_use.wrapping_add(pool.huge_bytes.load(Relaxed));
        m.thread_caches = pool.live_caches.load(Relaxed) as u64;
        m
    }
}

fn out_of_memory() -> io::Error {
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        "the OS refused to map a new pool chunk",
    )
}
