//! Who owns the memory under a buffer, packed in one word.
//!
//! Every buffer view carries an [`Owner`]: a pointer to a `'static` or boxed
//! descriptor with a 3-bit tag in its low bits (all descriptors are at
//! least 8-byte aligned). It says whether the view owns its allocation alone
//! (and where to give it back), shares it with other views through a
//! reference count, or has no memory yet (and which allocator to grow from).
//! One word keeps `ByteBuf` at 32 bytes, so moving buffers through a
//! pipeline stays cheap, and the unique case needs no reference count.
//!
//! A unique view's own pointer and capacity are the allocation's address
//! and length. A pooled block's owner word also carries its size class
//! (slots are aligned so that it fits under the tag), so a free needs no
//! size-class arithmetic. The
//! first `split_to` or `freeze` moves the allocation into a
//! reference-counted [`SharedMemory`]; the last view to drop gives the
//! memory back. Views never overlap, so each may write its own spare
//! capacity.

use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering, fence};

use crate::allocator::Allocator;
use crate::huge::HugeBlock;
use crate::local::free_pooled;
use crate::pool::{PoolShared, PooledAllocator};
use crate::thread_cache::{SLOT_ALIGN, ThreadSlot};
use crate::unpooled::{HeapKind, UnpooledAllocator};

const TAG_BITS: usize = 3;
const TAG_MASK: usize = (1 << TAG_BITS) - 1;

/// Unique pooled block; points to the allocating thread's `ThreadSlot`,
/// with the block's size class in the bits between the tag and the slot's
/// alignment.
const POOLED: usize = 0;
/// Where a pooled block's class sits in the owner word.
const CLASS_SHIFT: usize = TAG_BITS;
/// A pooled owner's slot address: the word without tag and class.
const SLOT_MASK: usize = !(SLOT_ALIGN - 1);
/// Shared memory; points to a leaked `SharedMemory` box.
const SHARED: usize = 1;
/// Unique huge mapping; points to a leaked `HugeBlock` box.
const HUGE: usize = 2;
/// Unique heap allocation; points to the `HeapKind` of its alignment.
const HEAP: usize = 3;
/// No memory, grows from a pool; points to its `PoolShared`.
const EMPTY_POOL: usize = 4;
/// No memory, grows from the heap; points to a `HeapKind` of alignment 1.
const EMPTY_HEAP: usize = 5;

/// An allocation shared by several views.
pub(crate) struct SharedMemory {
    refs: AtomicUsize,
    base: NonNull<u8>,
    len: usize,
    /// The unique owner the allocation had before it was shared.
    owner: Owner,
}

/// The owner word of a buffer view. Not `Clone`: every copy would be a
/// claim on the memory. The view that holds it must hand it to
/// [`Owner::release`] exactly once.
pub(crate) struct Owner(NonNull<u8>);

// SAFETY: every descriptor an owner points to is either `'static` and
// thread-safe (`ThreadSlot`, `PoolShared`, `HeapKind` use atomics and locks)
// or owned by the holder (`HugeBlock`) or counted atomically
// (`SharedMemory`); memory of every kind may be released on any thread.
unsafe impl Send for Owner {}
// SAFETY: `&Owner` only reads descriptors that are immutable or atomic.
unsafe impl Sync for Owner {}

/// What an owner word stands for, decoded.
pub(crate) enum OwnerKind<'a> {
    Pooled(&'static ThreadSlot),
    Shared(&'a SharedMemory),
    Huge(&'a HugeBlock),
    Heap(&'static HeapKind),
    EmptyPool(&'static PoolShared),
    EmptyHeap(&'static HeapKind),
}

impl Owner {
    fn tagged<T>(ptr: *const T, tag: usize) -> Owner {
        debug_assert_eq!(ptr.addr() & TAG_MASK, 0, "descriptor not 8-byte aligned");
        let ptr = ptr.cast::<u8>().cast_mut().map_addr(|addr| addr | tag);
        Owner(NonNull::new(ptr).expect("descriptors are never at address 0"))
    }

    fn tag(&self) -> usize {
        self.0.as_ptr().addr() & TAG_MASK
    }

    /// The descriptor pointer without its tag.
    fn untagged<T>(&self) -> *mut T {
        self.0.as_ptr().map_addr(|addr| addr & !TAG_MASK).cast()
    }

    /// A unique pooled block of size class `class`, allocated through
    /// `slot`.
    #[inline(always)]
    pub(crate) fn pooled(slot: &'static ThreadSlot, class: usize) -> Owner {
        debug_assert!(
            class < SLOT_ALIGN >> CLASS_SHIFT,
            "class {class} fits the word"
        );
        let ptr = std::ptr::from_ref(slot).cast::<u8>().cast_mut();
        let ptr = ptr.map_addr(|addr| addr | class << CLASS_SHIFT | POOLED);
        Owner(NonNull::new(ptr).expect("a slot is never at address 0"))
    }

    /// A pooled owner's slot and class.
    #[inline]
    fn pooled_parts(&self) -> (&'static ThreadSlot, usize) {
        let word = self.0.as_ptr();
        let class = (word.addr() & !SLOT_MASK) >> CLASS_SHIFT;
        // SAFETY: a pooled owner was made by `Owner::pooled` from a
        // `'static` slot, whose address is the word without tag and class.
        let slot = unsafe { &*word.map_addr(|addr| addr & SLOT_MASK).cast::<ThreadSlot>() };
        (slot, class)
    }

    /// A unique huge mapping.
    pub(crate) fn huge(block: Box<HugeBlock>) -> Owner {
        Owner::tagged(Box::into_raw(block), HUGE)
    }

    /// A unique heap allocation of `kind`'s alignment.
    pub(crate) fn heap(kind: &'static HeapKind) -> Owner {
        Owner::tagged(kind, HEAP)
    }

    /// No memory; grows from `alloc`.
    pub(crate) fn empty(alloc: Allocator) -> Owner {
        match alloc {
            Allocator::Pooled(pool) => Owner::tagged(pool.shared(), EMPTY_POOL),
            Allocator::Unpooled(heap) => Owner::tagged(heap.kind(1), EMPTY_HEAP),
        }
    }

    /// The huge block this owner holds uniquely, to grow it in place.
    pub(crate) fn huge_block_mut(&mut self) -> Option<&mut HugeBlock> {
        if self.tag() != HUGE {
            return None;
        }
        // SAFETY: a huge owner is the unique holder of the box it was made
        // from (`Owner::huge`), alive until it is released; `&mut self`
        // makes this access exclusive.
        Some(unsafe { &mut *self.untagged::<HugeBlock>() })
    }

    /// Decodes the word.
    #[inline]
    pub(crate) fn kind(&self) -> OwnerKind<'_> {
        // SAFETY: in every arm the untagged pointer is the one this owner
        // was made from with this tag. `'static` descriptors live for the
        // program; a huge block or shared memory lives at least as long as
        // this owner, which holds it (uniquely, or by one counted reference).
        unsafe {
            match self.tag() {
                POOLED => OwnerKind::Pooled(self.pooled_parts().0),
                SHARED => OwnerKind::Shared(&*self.untagged::<SharedMemory>()),
                HUGE => OwnerKind::Huge(&*self.untagged::<HugeBlock>()),
                HEAP => OwnerKind::Heap(&*self.untagged::<HeapKind>()),
                EMPTY_POOL => OwnerKind::EmptyPool(&*self.untagged::<PoolShared>()),
                _ => OwnerKind::EmptyHeap(&*self.untagged::<HeapKind>()),
            }
        }
    }

    /// The allocator the memory came from (or grows from).
    pub(crate) fn allocator(&self) -> Allocator {
        match self.kind() {
            OwnerKind::Pooled(slot) => PooledAllocator::from_shared(slot.pool).into(),
            OwnerKind::Shared(shared) => shared.owner.allocator(),
            OwnerKind::Huge(huge) => PooledAllocator::from_shared(huge.pool).into(),
            OwnerKind::Heap(kind) | OwnerKind::EmptyHeap(kind) => {
                UnpooledAllocator::from_shared(kind.shared).into()
            }
            OwnerKind::EmptyPool(pool) => PooledAllocator::from_shared(pool).into(),
        }
    }

    /// Whether no other view shares the memory.
    pub(crate) fn is_unique(&self) -> bool {
        match self.kind() {
            OwnerKind::Shared(shared) => shared.refs.load(Ordering::Acquire) == 1,
            _ => true,
        }
    }

    /// Another claim on the same memory, for a new view. A unique owner is
    /// first turned into a shared one; `base` and `len` must then be the
    /// view's pointer and capacity (its whole allocation). An empty owner
    /// is returned as an empty owner of the same allocator.
    pub(crate) fn share(&mut self, base: NonNull<u8>, len: usize) -> Owner {
        match self.tag() {
            SHARED => self.clone_shared(),
            EMPTY_POOL | EMPTY_HEAP => Owner(self.0),
            _ => {
                let unique = Owner(self.0);
                let boxed = Box::new(SharedMemory {
                    refs: AtomicUsize::new(2),
                    base,
                    len,
                    owner: unique,
                });
                let shared = Owner::tagged(Box::into_raw(boxed), SHARED);
                self.0 = shared.0;
                shared
            }
        }
    }

    /// Another claim on shared (or empty) memory. Frozen buffers, whose
    /// owner is never unique, clone through this.
    pub(crate) fn clone_shared(&self) -> Owner {
        match self.kind() {
            OwnerKind::Shared(shared) => {
                // As in `Arc::clone`: a new reference needs no ordering.
                shared.refs.fetch_add(1, Ordering::Relaxed);
                Owner(self.0)
            }
            OwnerKind::EmptyPool(_) | OwnerKind::EmptyHeap(_) => Owner(self.0),
            _ => unreachable!("unique memory cannot be cloned by reference"),
        }
    }

    /// Gives up this claim: a unique allocation goes back to its allocator,
    /// a shared one when its last claim is released.
    ///
    /// # Safety
    ///
    /// For a unique owner, `base` and `len` must be the allocation's
    /// address and length (the view's pointer and capacity). No reference
    /// into the memory may outlive the call, and each owner is released
    /// once.
    #[inline]
    pub(crate) unsafe fn release(&self, base: NonNull<u8>, len: usize) {
        if self.tag() == POOLED {
            let (slot, class) = self.pooled_parts();
            debug_assert_eq!(len, crate::size_class::class_size(class));
            free_pooled(slot, class, base);
        } else {
            // SAFETY: forwarded contract; the copy of the word is consumed
            // by the call and `self` is not released again.
            unsafe { Owner(self.0).release_other(base, len) };
        }
    }

    /// `release` for everything but a unique pooled block: kept out of
    /// line so that dropping a buffer stays small enough to inline. It
    /// takes the owner word by value, so a buffer's address does not escape
    /// and its fields can live in registers.
    ///
    /// # Safety
    ///
    /// As for [`release`](Self::release).
    #[inline(never)]
    unsafe fn release_other(self, base: NonNull<u8>, len: usize) {
        match self.tag() {
            // SAFETY: forwarded contract; the pointer is this owner's box.
            SHARED => unsafe { release_shared(self.untagged()) },
            // SAFETY: the box was leaked by `Owner::huge` and is reclaimed
            // only here, once, by the contract above.
            HUGE => drop(unsafe { Box::from_raw(self.untagged::<HugeBlock>()) }),
            HEAP => {
                // SAFETY: see `kind`.
                let kind = unsafe { &*self.untagged::<HeapKind>() };
                // SAFETY: forwarded contract: `base`/`len` are a live heap
                // allocation of this kind's alignment, released once.
                unsafe { kind.free(base, len) };
            }
            _ => {}
        }
    }
}

/// Drops one reference to shared memory, releasing it with the last.
///
/// # Safety
///
/// `shared` must be a `SharedMemory` leaked by `Owner::share`, and the
/// caller must hold (and give up) one counted reference to it.
unsafe fn release_shared(shared: *mut SharedMemory) {
    // SAFETY: we hold a reference, so the box is alive.
    let refs = unsafe { &(*shared).refs };
    // As in `Arc::drop`: release our writes, and acquire the other views'
    // writes before the memory is reused.
    if refs.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    fence(Ordering::Acquire);
    // SAFETY: the count reached zero, so ours was the last reference:
    // nobody else can reach the box.
    let shared = unsafe { Box::from_raw(shared) };
    // SAFETY: `base` and `len` are the allocation the unique owner was
    // shared from; no view of it is left, and the box is gone after this.
    unsafe { shared.owner.release(shared.base, shared.len) };
}

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.kind() {
            OwnerKind::Pooled(_) => "Pooled",
            OwnerKind::Shared(_) => "Shared",
            OwnerKind::Huge(_) => "Huge",
            OwnerKind::Heap(_) => "Heap",
            OwnerKind::EmptyPool(_) | OwnerKind::EmptyHeap(_) => "Empty",
        };
        f.write_str(name)
    }
}
