//! Model checks of the cross-thread paths of the pool (issue 8): a block
//! freed on a thread other than its owner's, through the owner's return
//! stack, while the owner allocates, exits, or its slot is taken over.
//!
//! These run the real code: `Owner::release`, the thread caches in loom's
//! thread-locals (so a model thread's end runs the caches' destructors, the
//! hand-over, like a real thread's exit), the return stack (`returns`: one
//! loom atomic word, with the blocks' links in loom cells so that a link
//! read without the push's release is a causality violation), and the
//! arena behind its lock. A block that never reaches the arena keeps its
//! chunk mapped (`bytes_mapped` stays above zero, as the pools here unmap
//! an empty chunk at once); a block given back twice trips the arena's
//! double-free assertion.
//!
//! loom's `join` returns before the thread's thread-locals are dropped
//! (std's waits for them). (a) and (b) let loom drop them at the thread's
//! end, as a real exit does, and wait for the exits on the slots' lock;
//! (c) and (d), with more threads, end theirs with `exit_thread` (the
//! caches' destructors, run early) so that `join` is enough and no
//! spin-wait multiplies the interleavings.
//!
//! The protocol changed in issue 14 (a `SegQueue`, an owned flag and two
//! `SeqCst` fences became one word that is a stack or closed; see
//! `returns`). Each of these deliberate breaks of it was run and seen to
//! fail: (b), (c) and (d) when a push publishes with a relaxed exchange,
//! when the owner's take or its closing swap is relaxed (causality
//! violations), when the exit takes the chain and closes the stack in two
//! steps instead of one swap, when the exit drops the chain it closed
//! instead of freeing it, when a free refused by a closed stack drops the
//! block instead of freeing it to the arena, or when the exit takes the
//! chain without closing the stack; those and the stack's own model when
//! a push ignores a closed stack; all four when a new owner does not open
//! its slot. (a) and the stack's own model do not see the relaxed
//! orderings at their bounds; the three models with an exit do.
//!
//! `RUSTFLAGS="--cfg loom" cargo test -p wharf-buf --lib --target-dir
//! target/loom loom`; `LOOM_MAX_PREEMPTIONS=n` explores deeper than the
//! default bound.

use std::ptr::NonNull;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use loom::thread;

use crate::local::exit_thread;
use crate::memory::Owner;
use crate::pool::{PoolConfig, PooledAllocator};

/// Every interleaving with up to `preemptions` preemptions (loom's advice:
/// most bugs need no more than three), so that each model finishes in
/// seconds. `LOOM_MAX_PREEMPTIONS` overrides the bound.
fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound.get_or_insert(preemptions);
    builder.check(f);
}

/// A pool as small as the models need: 64 KiB chunks, unmapped as soon as
/// they are empty, and bins of four 64-byte blocks (refilled two at a time).
fn pool() -> PooledAllocator {
    PooledAllocator::new(PoolConfig {
        chunk_size: 64 << 10,
        retained_chunks: 0,
        empty_chunk_decay: Duration::ZERO,
        cache_bytes_per_class: 4 * SIZE,
        ..PoolConfig::default()
    })
}

const SIZE: usize = 64;

/// A block held as a buffer holds it; dropping it is a buffer's drop
/// (`Owner::release`), on whatever thread drops it.
struct Block {
    ptr: NonNull<u8>,
    len: usize,
    owner: Owner,
}

// SAFETY: the block is the sole handle to its memory, as a `ByteBuf` is,
// and the memory has no thread affinity.
unsafe impl Send for Block {}

impl Block {
    fn alloc(pool: PooledAllocator) -> Block {
        let (ptr, len, owner) = pool.alloc(SIZE, 1).expect("a 64 KiB mapping");
        Block { ptr, len, owner }
    }

    fn addr(&self) -> usize {
        self.ptr.as_ptr().addr()
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` are the allocation the owner came with,
        // released once, and no reference into it outlives the block.
        unsafe { self.owner.release(self.ptr, self.len) };
    }
}

/// Waits until every thread cache of `pool` is torn down. loom's `join`
/// returns before the thread's thread-locals are dropped (std's waits), so
/// the models wait on the slots' lock instead, which each exit takes last.
fn wait_for_exits(pool: PooledAllocator) {
    while pool.shared().caches_alive() > 0 {
        thread::yield_now();
    }
}

/// Every block is back in the arena: the chunk was emptied, and unmapped.
fn assert_all_in_arena(pool: PooledAllocator) {
    let bytes = pool.shared().stats.bytes_mapped.load(Relaxed);
    assert_eq!(bytes, 0, "a block never reached the arena");
    assert_eq!(pool.metrics().pending_returns, 0);
}

/// (a) The owner allocates while another thread frees one of its blocks:
/// the block comes back to the owner exactly once, either on the
/// allocation that races the free or on the next one (returns are taken
/// in before the bin is popped, so a returned block is the next one
/// handed out).
#[test]
fn a_block_freed_elsewhere_reaches_its_live_owner_exactly_once() {
    model(3, || {
        let pool = pool();
        let owner = thread::spawn(move || {
            let x = Block::alloc(pool);
            let addr = x.addr();
            let freer = thread::spawn(move || drop(x));
            let y = Block::alloc(pool);
            freer.join().unwrap();
            let z = Block::alloc(pool);
            let reused = [&y, &z].iter().filter(|b| b.addr() == addr).count();
            assert_eq!(reused, 1, "the freed block came back {reused} times");
        });
        owner.join().unwrap();
        wait_for_exits(pool);
        assert_all_in_arena(pool);
    });
}

/// (b) The owner exits while another thread frees its block: the push
/// comes before the exit's close (and the exiting owner frees the block
/// with the chain it closed) or after it (and the freer, refused, frees
/// it to the arena itself). Either way it reaches the arena, once.
#[test]
fn a_block_freed_while_its_owner_exits_reaches_the_arena_once() {
    model(3, || {
        let pool = pool();
        let owner = thread::spawn(move || {
            let x = Block::alloc(pool);
            // The owner ends (its cache's destructor runs) while x is freed.
            thread::spawn(move || drop(x))
        });
        let freer = owner.join().unwrap();
        freer.join().unwrap();
        wait_for_exits(pool);
        assert_all_in_arena(pool);
    });
}

/// (c) The owner has exited and a new thread takes over its slot while a
/// late free of the old owner's block is in flight: the block reaches the
/// arena once: refused by the closed stack and freed by the freer, or
/// pushed once the new owner opened the slot and taken in by its
/// allocation or its exit (or, if the freer took the slot itself, through
/// the freer's cache).
#[test]
fn a_late_free_racing_the_slots_next_owner_reaches_the_arena_once() {
    model(3, || {
        let pool = pool();
        let owner = thread::spawn(move || {
            let x = Block::alloc(pool);
            let freer = thread::spawn(move || {
                drop(x);
                exit_thread();
            });
            exit_thread();
            freer
        });
        let freer = owner.join().unwrap();
        let newcomer = thread::spawn(move || {
            drop(Block::alloc(pool));
            exit_thread();
        });
        freer.join().unwrap();
        newcomer.join().unwrap();
        assert_all_in_arena(pool);
    });
}

/// (d) Two threads free the owner's blocks while it exits: the stack has
/// two producers, and each block reaches the arena once, whichever of the
/// three threads frees it there. Four threads: two preemptions (about 1,100
/// interleavings; three take 20,000 and half a minute).
#[test]
fn two_frees_racing_their_owners_exit_reach_the_arena_once() {
    model(2, || {
        let pool = pool();
        let owner = thread::spawn(move || {
            let freers = [Block::alloc(pool), Block::alloc(pool)].map(|x| {
                thread::spawn(move || {
                    drop(x);
                    exit_thread();
                })
            });
            exit_thread();
            freers
        });
        for freer in owner.join().unwrap() {
            freer.join().unwrap();
        }
        assert_all_in_arena(pool);
    });
}
