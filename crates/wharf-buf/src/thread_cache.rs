//! Per-thread caches of free blocks, and the return queues between threads.
//!
//! Each thread that uses a pool gets a [`ThreadCache`] for it: a bounded
//! stack of free blocks per size class, touched only by that thread, so the
//! common allocation and free take no lock and no locked instruction.
//!
//! A block remembers the [`ThreadSlot`] of the thread that allocated it. A
//! block freed on another thread is pushed onto that slot's lock-free return
//! queue; the owner drains the queue on its next allocation. When the owner
//! thread exits, its cache is flushed to the arena and the slot is marked
//! unowned: a late free then drains the queue to the arena itself, so
//! nothing is leaked. Slots are recycled by later threads. loom checks
//! this hand-over under every interleaving (`loom_tests`, `--cfg loom`).
//!
//! Caches are bounded per class and trimmed: every `trim_interval`
//! allocations, each bin gives back the blocks it did not need since the
//! last trim (its low-water mark), as Netty's `PoolThreadCache` does.

use std::cell::{Cell, RefCell};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use crate::memory::Owner;
use crate::metrics::{LocalCounters, bump, bump_shared};
use crate::pool::PoolShared;
use crate::size_class::{class_size, is_small};
use crate::sync::{AtomicBool, Ordering, SegQueue, fence};

/// A block on its way back to its owner.
#[derive(Debug)]
pub(crate) struct Returned {
    pub ptr: NonNull<u8>,
    pub class: u8,
}

// SAFETY: a `Returned` is the sole handle to a free block of pool memory;
// moving it to another thread moves that ownership, and the memory itself
// (an anonymous mapping) is not tied to any thread.
unsafe impl Send for Returned {}

/// The alignment of a [`ThreadSlot`]: a pooled block's owner word keeps
/// the block's size class in the low bits of the slot's address (see
/// `memory`), seven bits above the three of the tag.
pub(crate) const SLOT_ALIGN: usize = 1024;

/// The part of a thread's cache that other threads see: its return queue,
/// whether a thread owns it, and its counters. Slots live as long as the
/// pool and are reused by later threads.
#[derive(Debug)]
#[repr(align(1024))]
pub(crate) struct ThreadSlot {
    /// The pool this slot belongs to.
    pub pool: &'static PoolShared,
    /// Many producers and, at times, two consumers: a late free that
    /// finds the slot unowned drains it while the slot's next owner may
    /// drain it too (`loom_tests`, model (c)).
    returns: SegQueue<Returned>,
    owned: AtomicBool,
    /// Written only by the thread that owns the slot.
    pub counters: LocalCounters,
}

const _: () = assert!(std::mem::align_of::<ThreadSlot>() == SLOT_ALIGN);

impl ThreadSlot {
    pub(crate) fn new(pool: &'static PoolShared) -> ThreadSlot {
        ThreadSlot {
            pool,
            returns: SegQueue::new(),
            owned: AtomicBool::new(false),
            counters: LocalCounters::new(pool.classes),
        }
    }

    /// A free on a thread whose cache is gone: count centrally, free to
    /// the arena.
    #[cold]
    fn free_without_cache(&self, class: usize, ptr: NonNull<u8>) {
        let pool = self.pool;
        let orphan = pool.orphan_slot();
        bump_shared(&orphan.counters.class_frees[class], 1);
        pool.lock_arena().free(class, ptr, &pool.stats);
    }

    /// Blocks waiting in the return queue.
    pub(crate) fn pending_returns(&self) -> usize {
        self.returns.len()
    }

    /// Sends a block back to the slot's owner. If no thread owns the slot,
    /// drains the queue to the arena so the block is not stranded.
    fn send_back(&self, block: Returned) {
        self.returns.push(block);
        // Pairs with the fence in `ThreadCache::drop`: either the exiting
        // owner sees our block when it drains, or we see `owned == false`.
        fence(Ordering::SeqCst);
        if !self.owned.load(Ordering::SeqCst) {
            self.drain_to_arena();
        }
    }

    fn drain_to_arena(&self) {
        let pool = self.pool;
        if self.returns.is_empty() {
            return;
        }
        let mut arena = pool.lock_arena();
        while let Some(r) = self.returns.pop() {
            arena.free(r.class as usize, r.ptr, &pool.stats);
        }
    }
}

/// A stack of free blocks of one class, with what the hot path needs of
/// the class next to it: its size and its counters. One cache line each.
#[derive(Debug)]
#[repr(align(64))]
struct Bin {
    blocks: Vec<NonNull<u8>>,
    /// Most blocks kept.
    limit: u32,
    /// The fewest blocks the bin held since the last trim.
    low_water: u32,
    /// The class size: a buffer's capacity.
    size: u32,
    /// The slot's counters of this class.
    allocations: &'static AtomicU64,
    frees: &'static AtomicU64,
}

/// One thread's cache for one pool. Lives in thread-local storage.
#[derive(Debug)]
pub(crate) struct ThreadCache {
    pool: &'static PoolShared,
    slot: &'static ThreadSlot,
    /// One bin per cached class; larger classes bypass the cache.
    bins: Box<[Bin]>,
    /// Allocations left until the next trim.
    until_trim: u32,
}

impl ThreadCache {
    fn new(pool: &'static PoolShared) -> ThreadCache {
        let slot = pool.acquire_slot();
        slot.owned.store(true, Ordering::SeqCst);
        let counters = &slot.counters;
        ThreadCache {
            pool,
            slot,
            bins: pool
                .bin_limits
                .iter()
                .enumerate()
                .map(|(class, &limit)| Bin {
                    blocks: Vec::new(),
                    limit: limit as u32,
                    low_water: 0,
                    size: class_size(class) as u32,
                    allocations: &counters.class_allocations[class],
                    frees: &counters.class_frees[class],
                })
                .collect(),
            until_trim: pool.config.trim_interval.max(1),
        }
    }

    /// A cached block of `class`, if the bin has one and no returns are
    /// waiting (they go first: the most recently returned block is the one
    /// most likely still in the CPU cache).
    #[inline]
    fn pop(&mut self, class: usize) -> Option<(NonNull<u8>, usize, Owner)> {
        if !self.slot.returns.is_empty() {
            return None;
        }
        self.pop_unchecked(class)
    }

    /// `pop` without looking at the return queue.
    #[inline]
    fn pop_unchecked(&mut self, class: usize) -> Option<(NonNull<u8>, usize, Owner)> {
        let bin = self.bins.get_mut(class)?;
        let ptr = bin.blocks.pop()?;
        bin.low_water = bin.low_water.min(bin.blocks.len() as u32);
        bump(bin.allocations, 1);
        let size = bin.size as usize;
        self.tick();
        Some((ptr, size, Owner::pooled(self.slot, class)))
    }

    /// A block of `class` when `pop` has none: drains the returns, then
    /// takes from the arena (a batch, for a cached class). `None` only if
    /// the OS refuses to map a new chunk.
    pub(crate) fn alloc_slow(&mut self, class: usize) -> Option<(NonNull<u8>, usize, Owner)> {
        if !self.slot.returns.is_empty() {
            self.drain_returns();
            if let Some(hit) = self.pop_unchecked(class) {
                return Some(hit);
            }
        }
        let ptr = if class < self.bins.len() {
            self.refill(class)?
        } else {
            alloc_from_arena(self.pool, class)?
        };
        let counters = &self.slot.counters;
        bump(&counters.class_allocations[class], 1);
        bump(&counters.cache_misses, 1);
        self.tick();
        Some((ptr, class_size(class), Owner::pooled(self.slot, class)))
    }

    /// Counts an allocation towards the next trim.
    #[inline]
    fn tick(&mut self) {
        self.until_trim -= 1;
        if self.until_trim == 0 {
            self.trim();
        }
    }

    /// Takes back a block of `class` that `owner` allocated, when the fast
    /// path of [`free_pooled`] could not: a full bin, an uncached class, a
    /// block that another thread owns, or this thread's cache of another
    /// pool in the fast slot.
    fn free(&mut self, class: usize, ptr: NonNull<u8>, owner: &'static ThreadSlot) {
        bump(&self.slot.counters.class_frees[class], 1);
        if class >= self.bins.len() {
            self.pool.lock_arena().free(class, ptr, &self.pool.stats);
        } else if std::ptr::eq(owner, self.slot) {
            self.cache(class, ptr);
        } else {
            bump(&self.slot.counters.cross_thread_returns, 1);
            let class = class as u8;
            owner.send_back(Returned { ptr, class });
        }
    }

    /// Keeps a free block, spilling half the bin to the arena if it is full.
    #[inline]
    fn cache(&mut self, class: usize, ptr: NonNull<u8>) {
        let bin = &mut self.bins[class];
        if bin.blocks.len() < bin.limit as usize {
            bin.blocks.push(ptr);
            return;
        }
        let mut arena = self.pool.lock_arena();
        arena.free(class, ptr, &self.pool.stats);
        let keep = bin.limit as usize / 2;
        for ptr in bin.blocks.drain(keep..) {
            arena.free(class, ptr, &self.pool.stats);
        }
        bin.low_water = bin.low_water.min(bin.blocks.len() as u32);
    }

    /// Gives every cached block and every pending return back to the arena.
    pub(crate) fn flush(&mut self) {
        let pool = self.pool;
        let mut arena = pool.lock_arena();
        while let Some(r) = self.slot.returns.pop() {
            arena.free(r.class as usize, r.ptr, &pool.stats);
        }
        for (class, bin) in self.bins.iter_mut().enumerate() {
            for ptr in bin.blocks.drain(..) {
                arena.free(class, ptr, &pool.stats);
            }
            bin.low_water = 0;
        }
        arena.release_empty_chunks_now(&pool.stats);
    }

    fn refill(&mut self, class: usize) -> Option<NonNull<u8>> {
        let pool = self.pool;
        let bin = &mut self.bins[class];
        if !is_small(class) {
            return alloc_from_arena(pool, class);
        }
        let batch = (bin.limit as usize / 2).max(1);
        pool.lock_arena()
            .alloc_small(class, batch, &mut bin.blocks, &pool.stats)
            .ok()?;
        let ptr = bin.blocks.pop();
        bin.low_water = bin.low_water.min(bin.blocks.len() as u32);
        ptr
    }

    fn drain_returns(&mut self) {
        while let Some(r) = self.slot.returns.pop() {
            self.cache(r.class as usize, r.ptr);
        }
    }

    /// Gives back, per class, the blocks unused since the last trim.
    #[cold]
    fn trim(&mut self) {
        self.until_trim = self.pool.config.trim_interval.max(1);
        let pool = self.pool;
        let mut arena = pool.lock_arena();
        for (class, bin) in self.bins.iter_mut().enumerate() {
            let idle = (bin.low_water as usize).min(bin.blocks.len());
            let keep = bin.blocks.len() - idle;
            for ptr in bin.blocks.drain(keep..) {
                arena.free(class, ptr, &pool.stats);
            }
            bin.low_water = bin.blocks.len() as u32;
        }
        arena.release_empty_chunks(&pool.stats);
        drop(arena);
        // Freed huge mappings past their decay go too, even on a thread
        // that never allocates a huge buffer again (or never idles).
        pool.huge_cache.trim(pool, pool.config.empty_chunk_decay);
    }
}

/// A block of `class` from this thread's cache for `pool`: the hot path
/// of an allocation, a thread-local load and a pop. `None` sends the
/// caller to the slow path ([`with_cache`] and [`ThreadCache::alloc_slow`]):
/// another pool's cache in the fast slot, no cache yet, an empty bin,
/// pending returns, or an uncached class.
#[inline]
pub(crate) fn alloc_cached(
    pool: &'static PoolShared,
    class: usize,
) -> Option<(NonNull<u8>, usize, Owner)> {
    let fast = FAST.get();
    if !std::ptr::eq(fast.pool, pool) {
        return None;
    }
    // SAFETY: as in `with_cache`: `FAST` names a live cache of this thread
    // whenever its pool is not null, and nothing else borrows it now.
    let cache = unsafe { &mut *fast.cache };
    cache.pop(class)
}

/// Frees a block of `class` at `ptr` that was allocated through `owner`,
/// on whatever thread calls this. The hot path: the block is this
/// thread's own and its bin has room.
#[inline]
pub(crate) fn free_pooled(owner: &'static ThreadSlot, class: usize, ptr: NonNull<u8>) {
    let fast = FAST.get();
    if std::ptr::eq(fast.slot, owner) {
        // SAFETY: as in `with_cache`: a non-null slot in `FAST` comes with
        // a live cache of this thread, and nothing else borrows it now.
        let cache = unsafe { &mut *fast.cache };
        if let Some(bin) = cache.bins.get_mut(class)
            && bin.blocks.len() < bin.limit as usize
        {
            bin.blocks.push(ptr);
            bump(bin.frees, 1);
            return;
        }
    }
    free_slow(owner, class, ptr);
}

/// The rest of [`free_pooled`]. Out of line, so a buffer's drop stays
/// small enough to inline.
#[inline(never)]
fn free_slow(owner: &'static ThreadSlot, class: usize, ptr: NonNull<u8>) {
    if with_cache(owner.pool, |cache| cache.free(class, ptr, owner)).is_none() {
        owner.free_without_cache(class, ptr);
    }
}

/// One block of `class` straight from the arena.
pub(crate) fn alloc_from_arena(pool: &PoolShared, class: usize) -> Option<NonNull<u8>> {
    let mut arena = pool.lock_arena();
    if is_small(class) {
        let mut one = Vec::with_capacity(1);
        arena.alloc_small(class, 1, &mut one, &pool.stats).ok()?;
        one.pop()
    } else {
        arena.alloc_run(class, &pool.stats).ok()
    }
}

impl Drop for ThreadCache {
    fn drop(&mut self) {
        // A loom model that failed has its threads' thread-locals dropped
        // after loom stopped, while the panic unwinds: touching loom's
        // primitives then would abort the whole test binary.
        #[cfg(loom)]
        if std::thread::panicking() {
            return;
        }
        let me: *mut ThreadCache = self;
        // Forget the fast path before this cache goes away. `FAST` has no
        // destructor, so it is still there while thread-locals are torn down.
        let _ = FAST.try_with(|fast| {
            if fast.get().cache == me {
                fast.set(Fast::NONE);
            }
        });
        self.flush();
        self.slot.owned.store(false, Ordering::SeqCst);
        // Pairs with the fence in `ThreadSlot::send_back`.
        fence(Ordering::SeqCst);
        self.slot.drain_to_arena();
        self.pool.release_slot(self.slot);
    }
}

/// The cache this thread used last: its pool, its slot and its address.
#[derive(Clone, Copy)]
struct Fast {
    pool: *const PoolShared,
    slot: *const ThreadSlot,
    cache: *mut ThreadCache,
}

impl Fast {
    const NONE: Fast = Fast {
        pool: std::ptr::null(),
        slot: std::ptr::null(),
        cache: std::ptr::null_mut(),
    };
}

#[cfg(not(loom))]
thread_local! {
    /// Owns this thread's caches, indexed by pool id. Boxed, so a cache's
    /// address never changes while it lives.
    static CACHES: RefCell<Vec<Option<Box<ThreadCache>>>> = const { RefCell::new(Vec::new()) };

    /// The cache used last, so the common case is one thread-local load
    /// away from its bins. No destructor: readable at any time.
    static FAST: Cell<Fast> = const { Cell::new(Fast::NONE) };
}

// Under loom, loom's thread-locals, dropped when a model thread ends, so
// a thread's exit (the caches' destructors) is part of every interleaving.
#[cfg(loom)]
loom::thread_local! {
    static CACHES: RefCell<Vec<Option<Box<ThreadCache>>>> = RefCell::new(Vec::new());
    static FAST: Cell<Fast> = Cell::new(Fast::NONE);
}

/// `LocalKey<Cell<_>>::get` and `set`, which loom's key lacks. `std`'s
/// `FAST` is never destroyed; loom drops every thread-local at a thread's
/// end, so a destroyed `FAST` reads as `Fast::NONE`, as std's reads once
/// the caches' destructor has reset it.
#[cfg(loom)]
trait FastKey {
    fn get(&'static self) -> Fast;
    fn set(&'static self, fast: Fast);
}

#[cfg(loom)]
impl FastKey for loom::thread::LocalKey<Cell<Fast>> {
    fn get(&'static self) -> Fast {
        self.try_with(Cell::get).unwrap_or(Fast::NONE)
    }

    fn set(&'static self, fast: Fast) {
        let _ = self.try_with(|cell| cell.set(fast));
    }
}

/// Does to this thread's caches what the thread's exit does, now. loom's
/// `join` returns before the thread's thread-locals are dropped (std's
/// waits for them), so a model thread that ends with this can be joined
/// after its hand-over, without a spin-wait that multiplies the
/// interleavings. Each destructor resets `FAST` as at a real exit, so
/// `with_cache`'s safety argument holds; a later use of a pool makes a new
/// cache.
#[cfg(all(test, loom))]
pub(crate) fn exit_thread() {
    let caches = CACHES.with(|caches| std::mem::take(&mut *caches.borrow_mut()));
    drop(caches);
}

/// Runs `f` with this thread's cache for `pool`, creating it on first use.
/// Returns `None` when the thread's caches are gone (the thread is
/// exiting); the caller then takes the slow path.
///
/// `f` must not allocate or free pool memory (it cannot re-enter this
/// function): every caller passes a closure over `ThreadCache` methods,
/// which only touch the cache, the slot and the arena.
#[inline]
pub(crate) fn with_cache<R>(
    pool: &'static PoolShared,
    f: impl FnOnce(&mut ThreadCache) -> R,
) -> Option<R> {
    let fast = FAST.get();
    if std::ptr::eq(fast.pool, pool) {
        // SAFETY: `fast.cache` points into a box owned by this thread's
        // `CACHES`. Boxes are never removed from it; they are only dropped
        // when the thread exits, and `ThreadCache::drop` resets `FAST`
        // first, so the pointer is valid. `FAST` is thread-local and `f`
        // cannot re-enter `with_cache` (see above), and the slow path
        // releases its `RefCell` borrow before calling `f`, so this is the
        // only reference to the cache while `f` runs.
        return Some(f(unsafe { &mut *fast.cache }));
    }
    with_cache_slow(pool, f)
}

/// `with_cache` when the fast path holds another pool (or none yet).
#[inline(never)]
fn with_cache_slow<R>(
    pool: &'static PoolShared,
    f: impl FnOnce(&mut ThreadCache) -> R,
) -> Option<R> {
    let cache = CACHES
        .try_with(|caches| {
            let mut caches = caches.try_borrow_mut().ok()?;
            if caches.len() <= pool.id {
                caches.resize_with(pool.id + 1, || None);
            }
            let cache = caches[pool.id].get_or_insert_with(|| Box::new(ThreadCache::new(pool)));
            Some((cache.slot, &mut **cache as *mut ThreadCache))
        })
        .ok()
        .flatten()?;
    let (slot, cache) = cache;
    FAST.set(Fast { pool, slot, cache });
    // SAFETY: as in `with_cache`: the box is alive (we just looked it up,
    // and only thread exit drops it), the `RefCell` borrow has ended, and
    // `f` cannot re-enter.
    Some(f(unsafe { &mut *cache }))
}
