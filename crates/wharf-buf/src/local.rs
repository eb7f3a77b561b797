//! This thread's caches: where they live (thread-local storage) and the
//! fast slot that names the one used last, with the hot paths that go
//! through it.
//!
//! `FAST` holds the pool, the slot and the address of the cache this
//! thread used last. It is a `const`-initialised `Cell` of raw pointers
//! with no destructor: reading it is one load from the thread's TLS block
//! (no lazy-initialisation check, no registration), and it stays readable
//! while the thread's other thread-locals are torn down. An allocation
//! compares its pool with `FAST`'s, a free compares the block's owner slot
//! with `FAST`'s; anything else goes through [`with_cache`], which finds
//! or creates the cache in `CACHES` and points `FAST` at it.

use std::cell::{Cell, RefCell};
use std::ptr::NonNull;

use crate::memory::Owner;
use crate::pool::PoolShared;
use crate::thread_cache::{ThreadCache, ThreadSlot};

/// A block of `class` from this thread's cache for `pool`: the hot path
/// of an allocation, a thread-local load and a pop. `None` sends the
/// caller to the slow path ([`with_cache`] and `ThreadCache::alloc_slow`):
/// another pool's cache in the fast slot, no cache yet, an empty bin,
/// pending returns, or an uncached class.
#[inline(always)]
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
        if cache.push_own(class, ptr) {
            return;
        }
    }
    free_slow(owner, class, ptr);
}

/// The rest of [`free_pooled`]. Out of line, so a buffer's drop stays
/// small enough to inline. A block another thread owns, freed on a thread
/// whose fast slot holds a cache of the same pool, is the common case
/// here (a buffer handed to a worker): it goes to `ThreadCache::free`
/// without the detour through [`with_cache`].
#[inline(never)]
fn free_slow(owner: &'static ThreadSlot, class: usize, ptr: NonNull<u8>) {
    let fast = FAST.get();
    if std::ptr::eq(fast.pool, owner.pool) {
        // SAFETY: as in `with_cache`: a non-null pool in `FAST` comes with
        // a live cache of this thread, and nothing else borrows it now.
        let cache = unsafe { &mut *fast.cache };
        cache.free(class, ptr, owner);
    } else {
        free_elsewhere(owner, class, ptr);
    }
}

/// `free_slow` on a thread whose fast slot holds another pool, or none.
#[cold]
fn free_elsewhere(owner: &'static ThreadSlot, class: usize, ptr: NonNull<u8>) {
    if with_cache(owner.pool, |cache| cache.free(class, ptr, owner)).is_none() {
        owner.free_without_cache(class, ptr);
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
            Some((cache.slot(), &mut **cache as *mut ThreadCache))
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

/// Forgets the fast slot if it names `cache`, which is going away.
/// `FAST` has no destructor, so it is still there while thread-locals are
/// torn down.
pub(crate) fn forget_fast(cache: *mut ThreadCache) {
    let _ = FAST.try_with(|fast| {
        if fast.get().cache == cache {
            fast.set(Fast::NONE);
        }
    });
}
