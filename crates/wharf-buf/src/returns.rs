//! The return stack: blocks freed on other threads, on their way back to
//! the thread that owns them.
//!
//! A lock-free stack linked through the free blocks themselves (the first
//! two words of a block say where the next one is and what class it is;
//! every block is at least 16 bytes, 16-byte aligned), so a cross-thread
//! free writes into memory it already has and allocates nothing. Its state
//! is one word, `head`:
//!
//! * the top block, or null when the stack is empty;
//! * [`CLOSED`] while no thread owns the slot: a push is refused, and the
//!   freer gives the block to the arena itself.
//!
//! The protocol:
//!
//! * **push** (any thread): write the block's link to the current top,
//!   then compare-and-swap `head` from that top to the block (release, so
//!   whoever takes the block sees its link).
//! * **take** (the owner): swap `head` for null (acquire) and walk the
//!   chain. Only the owner takes, and it takes the whole chain at once, so
//!   no node is ever popped alone and there is no ABA problem.
//! * **close** (the owner, as it exits): swap `head` for `CLOSED` and free
//!   the chain. Pushing and closing touch the same word, so every push is
//!   ordered before the close (and its block is in the chain the owner
//!   frees) or after it (and is refused): no fence, no flag, no block left
//!   behind.
//! * **open** (the slot's next owner): store null.
//!
//! This replaced a `crossbeam` `SegQueue` with an owned flag and a pair of
//! `SeqCst` fences: a push is now one compare-and-swap instead of a
//! claim, a write, a publish and a full fence, and the owner's "anything
//! returned?" is one load of one word instead of two padded cache lines.
//!
//! Under `--cfg loom` the links live in loom cells beside the blocks
//! instead of in them, so that a link read without the push's release
//! (or the take's acquire) is a causality violation loom reports; the
//! stack's own code is the same.

use std::fmt;
use std::ptr::{self, NonNull};

use crate::sync::{AtomicPtr, Ordering};

/// `head` of a stack that refuses pushes: never a block's address (blocks
/// are 16-byte aligned).
fn closed() -> *mut u8 {
    ptr::without_provenance_mut(1)
}

/// What a block on the stack holds in its first two words.
#[derive(Clone, Copy)]
#[repr(C)]
struct Link {
    next: *mut u8,
    class: usize,
}

/// The blocks sent back to one slot's owner.
pub(crate) struct ReturnStack {
    head: AtomicPtr<u8>,
    #[cfg(loom)]
    links: loom_links::Links,
}

impl fmt::Debug for ReturnStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReturnStack").finish_non_exhaustive()
    }
}

impl ReturnStack {
    /// A closed stack: slots are opened by the thread that takes them.
    pub(crate) fn new() -> ReturnStack {
        ReturnStack {
            head: AtomicPtr::new(closed()),
            #[cfg(loom)]
            links: loom_links::Links::default(),
        }
    }

    /// Hands the block of `class` at `ptr` to the owner. `Err` gives it
    /// back when no thread owns the slot: the caller frees it to the arena.
    ///
    /// # Safety
    ///
    /// The block is free, at least 16 bytes and 16-byte aligned, and the
    /// caller gives up all access to it.
    #[inline]
    pub(crate) unsafe fn push(&self, ptr: NonNull<u8>, class: usize) -> Result<(), NonNull<u8>> {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            if head == closed() {
                return Err(ptr);
            }
            // SAFETY: forwarded contract: the block is ours to write until
            // the exchange below publishes it.
            unsafe { self.write_link(ptr, Link { next: head, class }) };
            match self.head.compare_exchange_weak(
                head,
                ptr.as_ptr(),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => head = now,
            }
        }
    }

    /// Whether nothing waits (a hint, for the owner's hot path).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.load(Ordering::Relaxed).is_null()
    }

    /// Takes every block waiting. Owner only.
    pub(crate) fn take(&self) -> Chain<'_> {
        if self.is_empty() {
            return Chain::empty(self);
        }
        let head = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        debug_assert!(
            head != closed(),
            "only the owner takes, and it owns the slot"
        );
        Chain {
            stack: self,
            next: head,
        }
    }

    /// Refuses pushes from now on and takes every block waiting: the owner
    /// thread is leaving.
    pub(crate) fn close(&self) -> Chain<'_> {
        let head = self.head.swap(closed(), Ordering::Acquire);
        debug_assert!(head != closed(), "a slot is closed once per owner");
        Chain {
            stack: self,
            next: head,
        }
    }

    /// Accepts pushes again: a new owner took the slot.
    pub(crate) fn open(&self) {
        let was = self.head.swap(ptr::null_mut(), Ordering::Relaxed);
        debug_assert!(was == closed(), "a slot is opened once per owner");
    }

    /// # Safety
    ///
    /// As for [`push`](Self::push).
    #[cfg(not(loom))]
    unsafe fn write_link(&self, block: NonNull<u8>, link: Link) {
        // SAFETY: forwarded contract: room and alignment for two words.
        unsafe { block.cast::<Link>().write(link) };
    }

    /// # Safety
    ///
    /// `block` is in a chain this thread took.
    #[cfg(not(loom))]
    unsafe fn read_link(&self, block: NonNull<u8>) -> Link {
        // SAFETY: its pusher wrote the link before the release exchange
        // that the taker's acquire swap synchronizes with (later pushes
        // are read-modify-writes, so they continue its release sequence).
        unsafe { block.cast::<Link>().read() }
    }

    #[cfg(loom)]
    unsafe fn write_link(&self, block: NonNull<u8>, link: Link) {
        self.links.write(block, link);
    }

    #[cfg(loom)]
    unsafe fn read_link(&self, block: NonNull<u8>) -> Link {
        self.links.read(block)
    }
}

/// Blocks taken off a stack: an iterator of `(block, class)`.
pub(crate) struct Chain<'a> {
    stack: &'a ReturnStack,
    next: *mut u8,
}

impl<'a> Chain<'a> {
    fn empty(stack: &'a ReturnStack) -> Chain<'a> {
        Chain {
            stack,
            next: ptr::null_mut(),
        }
    }
}

impl Iterator for Chain<'_> {
    type Item = (NonNull<u8>, usize);

    fn next(&mut self) -> Option<(NonNull<u8>, usize)> {
        let block = NonNull::new(self.next)?;
        // SAFETY: the block is in a chain this thread took, and its link is
        // read before the block is handed on.
        let link = unsafe { self.stack.read_link(block) };
        self.next = link.next;
        Some((block, link.class))
    }
}

#[cfg(loom)]
mod loom_links {
    //! Links in loom cells, one per block address: loom then checks that
    //! every read of a link happens after its write.

    use std::ptr::NonNull;
    use std::sync::{Arc, Mutex};

    use loom::cell::UnsafeCell;

    use super::Link;

    /// A block's link in a loom cell, shared by the threads that push
    /// and take the block.
    struct LinkCell(UnsafeCell<Link>);

    // SAFETY: loom checks every access to the cell for a data race, which
    // is what the models are for; the pointer in a link is only followed
    // by the thread that took the chain.
    unsafe impl Send for LinkCell {}
    // SAFETY: see `Send`.
    unsafe impl Sync for LinkCell {}

    type Cell = Arc<LinkCell>;

    /// Not a loom mutex: the lock must add no ordering of its own, and it
    /// is never held across a loom operation (loom runs every model
    /// thread on one OS thread, so it could not wait for it).
    #[derive(Default)]
    pub(super) struct Links {
        cells: Mutex<Vec<(usize, Cell)>>,
    }

    impl Links {
        fn cell(&self, block: NonNull<u8>) -> Cell {
            let addr = block.as_ptr().addr();
            let find = |cells: &Vec<(usize, Cell)>| {
                cells
                    .iter()
                    .find(|(a, _)| *a == addr)
                    .map(|(_, c)| c.clone())
            };
            if let Some(cell) = find(&self.cells.lock().unwrap()) {
                return cell;
            }
            let fresh = Arc::new(LinkCell(UnsafeCell::new(Link {
                next: std::ptr::null_mut(),
                class: 0,
            })));
            let mut cells = self.cells.lock().unwrap();
            if let Some(cell) = find(&cells) {
                return cell;
            }
            cells.push((addr, fresh.clone()));
            fresh
        }

        pub(super) fn write(&self, block: NonNull<u8>, link: Link) {
            // SAFETY: loom checks the access (that is the point).
            self.cell(block).0.with_mut(|p| unsafe { *p = link });
        }

        pub(super) fn read(&self, block: NonNull<u8>) -> Link {
            // SAFETY: loom checks the access.
            self.cell(block).0.with(|p| unsafe { *p })
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! The stack alone: what the models of the hand-over rely on.

    use std::ptr::{self, NonNull};

    use loom::sync::Arc;
    use loom::thread;

    use super::ReturnStack;

    /// A block address for the model (under loom, links are kept beside
    /// the blocks, so these are never dereferenced).
    fn block(n: usize) -> NonNull<u8> {
        NonNull::new(ptr::without_provenance_mut(16 * n)).expect("not null")
    }

    /// Two threads push while the owner takes: every block comes out
    /// exactly once, with its class; once closed, a push is refused.
    #[test]
    fn each_block_is_taken_once_with_its_class_and_a_closed_stack_refuses() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound.get_or_insert(3);
        builder.check(|| {
            let stack = Arc::new(ReturnStack::new());
            stack.open();
            let pushers: Vec<_> = [1usize, 2]
                .into_iter()
                .map(|n| {
                    let stack = stack.clone();
                    // SAFETY: a model address, never dereferenced.
                    thread::spawn(move || unsafe { stack.push(block(n), n + 10) }.unwrap())
                })
                .collect();
            let mut seen: Vec<_> = stack.take().collect();
            for p in pushers {
                p.join().unwrap();
            }
            seen.extend(stack.close());
            seen.sort_unstable();
            assert_eq!(seen, [(block(1), 11), (block(2), 12)]);
            // SAFETY: as above.
            assert_eq!(unsafe { stack.push(block(3), 13) }, Err(block(3)));
        });
    }
}
