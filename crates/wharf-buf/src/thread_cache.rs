//! Per-thread caches of free blocks, and the fast paths into them.
//!
//! Each thread that uses a pool gets a [`ThreadCache`] for it: a bounded
//! stack of free blocks per size class, touched only by that thread, so the
//! common allocation and free take no lock and no locked instruction.
//!
//! A block remembers the [`ThreadSlot`] of the thread that allocated it (and
//! its size class, in the same word). A block freed on another thread is
//! pushed onto that slot's lock-free return stack (`returns`); the owner
//! takes the stack in on its next allocation. When the owner thread exits,
//! its cache is flushed to the arena and the stack is closed: a late free
//! is refused and frees the block to the arena itself, so nothing is
//! leaked. Slots are recycled by later threads. loom checks this hand-over
//! under every interleaving (`loom_tests`, `--cfg loom`).
//!
//! The hot path is a load of the thread-local [`Fast`] (the pool, slot and
//! cache this thread used last; no destructor, so no lazy initialisation
//! check), a compare, and a pop or a push on the bin of the class, which
//! also holds the class size and the class's two counters.
//!
//! Caches are bounded per class and trimmed: every `trim_interval`
//! allocations, each bin gives back the blocks it did not need since the
//! last trim (its low-water mark), as Netty's `PoolThreadCache` does.

use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use crate::arena::Arena;
use crate::local::forget_fast;
use crate::memory::Owner;
use crate::metrics::{LocalCounters, bump, bump_shared};
use crate::pool::PoolShared;
use crate::returns::{Chain, ReturnStack};
use crate::size_class::{class_size, is_small};

/// The alignment of a [`ThreadSlot`]: a pooled block's owner word keeps
/// the block's size class in the low bits of the slot's address (see
/// `memory`), seven bits above the three of the tag.
pub(crate) const SLOT_ALIGN: usize = 1024;

/// The part of a thread's cache that other threads see: its return stack
/// (closed while no thread owns the slot) and its counters. Slots live as long as the
/// pool and are reused by later threads.
#[derive(Debug)]
#[repr(align(1024))]
pub(crate) struct ThreadSlot {
    /// The pool this slot belongs to.
    pub pool: &'static PoolShared,
    /// Many producers, one consumer: the owner.
    returns: ReturnStack,
    /// Written only by the thread that owns the slot.
    pub counters: LocalCounters,
}

const _: () = assert!(std::mem::align_of::<ThreadSlot>() == SLOT_ALIGN);

impl ThreadSlot {
    pub(crate) fn new(pool: &'static PoolShared) -> ThreadSlot {
        ThreadSlot {
            pool,
            returns: ReturnStack::new(),
            counters: LocalCounters::new(pool.classes),
        }
    }

    /// A free on a thread whose cache is gone: count centrally, free to
    /// the arena.
    #[cold]
    pub(crate) fn free_without_cache(&self, class: usize, ptr: NonNull<u8>) {
        let pool = self.pool;
        let orphan = pool.orphan_slot();
        bump_shared(&orphan.counters.class_frees[class], 1);
        pool.lock_arena().free(class, ptr, &pool.stats);
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
    /// `limit` once `blocks` has the capacity for `limit` blocks, else 0:
    /// below it, [`ThreadCache::push_own`] writes without a capacity check.
    room: u32,
    /// The fewest blocks the bin held since the last trim.
    low_water: u32,
    /// The class size: a buffer's capacity.
    size: u32,
    /// The slot's counters of this class.
    allocations: &'static AtomicU64,
    frees: &'static AtomicU64,
}

impl Bin {
    /// Gives `blocks` the capacity for `limit` blocks, once, so that the
    /// hot path of a free can push without a capacity check (`room`).
    /// Called when the bin is first filled from the arena or first keeps a
    /// freed block, not at creation: a thread reserves room only for the
    /// classes it uses.
    #[inline]
    fn make_room(&mut self) {
        if self.room == 0 {
            let free = (self.limit as usize).saturating_sub(self.blocks.len());
            self.blocks.reserve_exact(free);
            self.room = self.limit;
        }
    }
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
    pub(crate) fn new(pool: &'static PoolShared) -> ThreadCache {
        let slot = pool.acquire_slot();
        slot.returns.open();
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
                    room: 0,
                    low_water: 0,
                    size: class_size(class) as u32,
                    allocations: &counters.class_allocations[class],
                    frees: &counters.class_frees[class],
                })
                .collect(),
            until_trim: pool.config.trim_interval.max(1),
        }
    }

    /// This cache's slot.
    pub(crate) fn slot(&self) -> &'static ThreadSlot {
        self.slot
    }

    /// A cached block of `class`, if the bin has one and no returns are
    /// waiting (they go first: the most recently returned block is the one
    /// most likely still in the CPU cache).
    #[inline(always)]
    pub(crate) fn pop(&mut self, class: usize) -> Option<(NonNull<u8>, usize, Owner)> {
        if !self.slot.returns.is_empty() {
            return None;
        }
        self.pop_unchecked(class)
    }

    /// `pop` without looking at the return stack.
    #[inline(always)]
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
            self.take_returns();
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
    #[inline(always)]
    fn tick(&mut self) {
        self.until_trim -= 1;
        if self.until_trim == 0 {
            self.trim();
        }
    }

    /// Takes back a block of `class` that `owner` allocated, when the fast
    /// path of `local::free_pooled` could not: mostly a block that another
    /// thread owns, sent back to it; else a full bin or an uncached class.
    #[inline]
    pub(crate) fn free(&mut self, class: usize, ptr: NonNull<u8>, owner: &'static ThreadSlot) {
        if !std::ptr::eq(owner, self.slot)
            && let Some(bin) = self.bins.get(class)
        {
            bump(bin.frees, 1);
            // Counted before it is pushed, so a snapshot never sees it
            // taken back and not sent.
            bump(&self.slot.counters.cross_thread_returns, 1);
            // SAFETY: the block is free (its buffer is gone) and this thread
            // gives it up; pooled blocks are at least 16 bytes, at 16-byte
            // boundaries (class sizes are multiples of 16 from page-aligned
            // slabs and runs).
            if let Err(ptr) = unsafe { owner.returns.push(ptr, class) } {
                self.free_refused(class, ptr);
            }
        } else {
            self.free_uncommon(class, ptr, owner);
        }
    }

    /// A block sent back to a slot that no thread owns: to the arena.
    #[cold]
    fn free_refused(&mut self, class: usize, ptr: NonNull<u8>) {
        bump(&self.slot.counters.returns_taken, 1);
        self.pool.lock_arena().free(class, ptr, &self.pool.stats);
    }

    /// `free` of an uncached class (to the arena, whoever owns the block)
    /// or of this thread's own block when its bin is full.
    #[inline(never)]
    fn free_uncommon(&mut self, class: usize, ptr: NonNull<u8>, owner: &'static ThreadSlot) {
        bump(&self.slot.counters.class_frees[class], 1);
        if class >= self.bins.len() {
            self.pool.lock_arena().free(class, ptr, &self.pool.stats);
        } else {
            debug_assert!(std::ptr::eq(owner, self.slot));
            self.cache(class, ptr);
        }
    }

    /// Keeps a block this thread owns if its bin has room: the hot path of
    /// a free. `false` sends the caller to [`free`](Self::free).
    #[inline]
    pub(crate) fn push_own(&mut self, class: usize, ptr: NonNull<u8>) -> bool {
        if let Some(bin) = self.bins.get_mut(class) {
            let len = bin.blocks.len();
            if len < bin.room as usize {
                // SAFETY: `room` is non-zero only once `blocks` has the
                // capacity for `room` blocks (`Bin::make_room`), and a
                // `Vec`'s capacity never shrinks here (it is only pushed,
                // popped and drained), so `len < room <= capacity`.
                unsafe {
                    bin.blocks.as_mut_ptr().add(len).write(ptr);
                    bin.blocks.set_len(len + 1);
                }
                bump(bin.frees, 1);
                return true;
            }
        }
        false
    }

    /// Keeps a free block, spilling half the bin to the arena if it is full.
    #[inline]
    fn cache(&mut self, class: usize, ptr: NonNull<u8>) {
        let bin = &mut self.bins[class];
        bin.make_room();
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
        self.free_chain(self.slot.returns.take(), &mut arena);
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
        bin.make_room();
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

    /// Takes in the blocks other threads sent back: into their bins while
    /// there is room, the rest to the arena under one lock.
    fn take_returns(&mut self) {
        let pool = self.pool;
        let mut arena = None;
        let mut taken = 0;
        for (ptr, class) in self.slot.returns.take() {
            taken += 1;
            if let Some(bin) = self.bins.get_mut(class)
                && bin.blocks.len() < bin.limit as usize
            {
                bin.blocks.push(ptr);
            } else {
                let arena = arena.get_or_insert_with(|| pool.lock_arena());
                arena.free(class, ptr, &pool.stats);
            }
        }
        bump(&self.slot.counters.returns_taken, taken);
    }

    /// Frees a chain of returned blocks to the arena.
    fn free_chain(&self, chain: Chain<'_>, arena: &mut Arena) {
        let mut taken = 0;
        for (ptr, class) in chain {
            taken += 1;
            arena.free(class, ptr, &self.pool.stats);
        }
        bump(&self.slot.counters.returns_taken, taken);
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
        // Forget the fast path before this cache goes away.
        forget_fast(self);
        self.flush();
        // From here on, frees of this thread's blocks go to the arena
        // directly; those pushed until now are in the chain.
        let chain = self.slot.returns.close();
        self.free_chain(chain, &mut self.pool.lock_arena());
        self.pool.release_slot(self.slot);
    }
}
