//! Memory goes back to the OS: after a burst is freed and the thread cache
//! trimmed (explicitly, after frees on another thread, or by the periodic
//! trim), chunks beyond the retained count are unmapped; per-class and
//! cache hit/miss metrics follow the allocations.

use std::thread;
use std::time::Duration;

use bytes::BufMut;
use wharf_buf::{Allocator, AllocatorMetrics, ByteBuf, PoolConfig, PooledAllocator};

const KIB: usize = 1024;
const CHUNK: usize = 256 * KIB;
const RETAINED: usize = 1;

fn fresh_pool() -> PooledAllocator {
    PooledAllocator::new(PoolConfig {
        chunk_size: CHUNK,
        retained_chunks: RETAINED,
        ..PoolConfig::default()
    })
}

/// A burst that spreads over many chunks: page runs of two normal classes
/// and slabs of a small one, all written to.
fn burst(alloc: Allocator) -> Vec<ByteBuf> {
    let mut bufs = Vec::new();
    for i in 0..48usize {
        let len = if i.is_multiple_of(2) {
            64 * KIB
        } else {
            48 * KIB
        };
        bufs.push(alloc.buffer(len));
    }
    for _ in 0..1500 {
        bufs.push(alloc.buffer(1000));
    }
    for (i, buf) in bufs.iter_mut().enumerate() {
        let cap = buf.capacity();
        buf.put_bytes(i as u8, cap);
    }
    bufs
}

fn class(m: &AllocatorMetrics, size: usize) -> usize {
    m.classes
        .iter()
        .position(|c| c.size == size)
        .unwrap_or_else(|| panic!("no class of {size} bytes"))
}

#[test]
fn burst_then_trim_unmaps_down_to_the_retained_chunks() {
    let pool = fresh_pool();
    let alloc = Allocator::from(pool);
    let bufs = burst(alloc);
    let peak = pool.metrics();
    assert!(peak.chunks_mapped >= 8, "{peak:?}");
    assert_eq!(peak.bytes_mapped, peak.chunks_mapped * CHUNK as u64);
    assert_eq!(peak.huge_live, 0);
    let in_use: u64 = bufs.iter().map(|b| b.capacity() as u64).sum();
    assert_eq!(peak.bytes_in_use, in_use);

    drop(bufs);
    assert_eq!(pool.metrics().bytes_in_use, 0);
    pool.trim_thread_cache();
    let after = pool.metrics();
    assert_eq!(after.chunks_mapped, RETAINED as u64, "{after:?}");
    assert_eq!(after.bytes_mapped, (RETAINED * CHUNK) as u64, "{after:?}");
    assert_eq!(
        after.chunks_unmapped - peak.chunks_unmapped,
        peak.chunks_mapped - after.chunks_mapped,
        "every chunk that went away was counted as unmapped"
    );
    assert!(after.classes.iter().all(|c| c.live == 0));

    // The retained chunk serves the next burst's first blocks.
    let again = alloc.buffer(64 * KIB);
    assert_eq!(pool.metrics().chunks_mapped, RETAINED as u64);
    drop(again);
}

/// Frees on another thread wait in the owner's return queue until the
/// owner allocates again.
#[test]
fn remote_frees_come_back_on_the_owners_next_allocation() {
    let pool = fresh_pool();
    let alloc = Allocator::from(pool);
    let bufs = burst(alloc);
    let count = bufs.len() as u64;
    let peak = pool.metrics();
    assert!(peak.chunks_mapped >= 8, "{peak:?}");

    thread::spawn(move || drop(bufs))
        .join()
        .expect("freeing thread panicked");
    let m = pool.metrics();
    assert_eq!(m.bytes_in_use, 0, "{m:?}");
    assert_eq!(m.cross_thread_returns, count, "{m:?}");
    assert_eq!(m.pending_returns, count, "{m:?}");
    assert_eq!(
        m.chunks_mapped, peak.chunks_mapped,
        "queued blocks keep their chunks"
    );

    let one = alloc.buffer(100);
    let m = pool.metrics();
    assert_eq!(
        m.pending_returns, 0,
        "the allocation drained the queue: {m:?}"
    );
    drop(one);
    pool.trim_thread_cache();
    let m = pool.metrics();
    assert_eq!(m.chunks_mapped, RETAINED as u64, "{m:?}");
    assert_eq!(m.bytes_mapped, (RETAINED * CHUNK) as u64, "{m:?}");
    // (The allocation may have mapped a chunk of its own, hence `>=`.)
    assert!(m.chunks_unmapped - peak.chunks_unmapped >= peak.chunks_mapped - RETAINED as u64);
}

#[test]
fn remote_frees_come_back_on_the_owners_trim() {
    let pool = fresh_pool();
    let alloc = Allocator::from(pool);
    let bufs = burst(alloc);
    let count = bufs.len() as u64;
    thread::spawn(move || drop(bufs))
        .join()
        .expect("freeing thread panicked");
    assert_eq!(pool.metrics().pending_returns, count);
    pool.trim_thread_cache();
    let m = pool.metrics();
    assert_eq!(m.pending_returns, 0, "{m:?}");
    assert_eq!(m.chunks_mapped, RETAINED as u64, "{m:?}");
    assert_eq!(m.bytes_mapped, (RETAINED * CHUNK) as u64, "{m:?}");
}

#[test]
fn class_metrics_follow_live_blocks() {
    let pool = fresh_pool();
    let alloc = Allocator::from(pool);
    let m0 = pool.metrics();
    assert_eq!(
        m0.classes.last().map(|c| c.size),
        Some(CHUNK),
        "classes end at the chunk size"
    );
    let (k1024, k2048, k112, k224, k64k) = (
        class(&m0, 1024),
        class(&m0, 2048),
        class(&m0, 112),
        class(&m0, 224),
        class(&m0, 64 * KIB),
    );

    let mut a: Vec<ByteBuf> = (0..3).map(|_| alloc.buffer(1000)).collect();
    let b = alloc.buffer(2000);
    let m = pool.metrics();
    assert_eq!(
        (m.classes[k1024].live, m.classes[k1024].allocations),
        (3, 3)
    );
    assert_eq!(
        (m.classes[k2048].live, m.classes[k2048].allocations),
        (1, 1)
    );
    assert_eq!(m.allocations, 4);
    assert_eq!(m.bytes_in_use, 3 * 1024 + 2048);

    drop(a.pop());
    let m = pool.metrics();
    assert_eq!(
        (m.classes[k1024].live, m.classes[k1024].allocations),
        (2, 3)
    );
    assert_eq!(m.frees, 1);

    // Growth moves a buffer to a larger class (at least twice the old
    // capacity: 224 bytes): the old block is freed.
    let mut grown = alloc.buffer(100);
    assert_eq!(grown.capacity(), 112);
    grown.put_bytes(7, 200);
    assert_eq!(grown.capacity(), 224);
    let m = pool.metrics();
    assert_eq!((m.classes[k112].live, m.classes[k112].allocations), (0, 1));
    assert_eq!((m.classes[k224].live, m.classes[k224].allocations), (1, 1));

    // A page-run class, allocated and freed twice.
    for _ in 0..2 {
        drop(alloc.buffer(60 * KIB));
    }
    let m = pool.metrics();
    assert_eq!((m.classes[k64k].live, m.classes[k64k].allocations), (0, 2));

    // Huge buffers have no class.
    let huge = alloc.buffer(CHUNK + 1);
    let m2 = pool.metrics();
    assert_eq!(m2.classes, m.classes);
    assert_eq!(m2.huge_live, 1);
    drop((a, b, grown, huge));
    let m = pool.metrics();
    assert!(m.classes.iter().all(|c| c.live == 0), "{:?}", m.classes);
    assert_eq!(m.bytes_in_use, 0);
}

#[test]
fn cache_hits_and_misses() {
    let pool = fresh_pool();
    let alloc = Allocator::from(pool);
    let m = pool.metrics();
    assert_eq!((m.cache_hits, m.cache_misses), (0, 0));

    // A page-run class: the first allocation goes to the arena, the second
    // after a free comes from the cache.
    let first = alloc.buffer(64 * KIB);
    let first_ptr = first.as_ptr();
    let m = pool.metrics();
    assert_eq!((m.cache_hits, m.cache_misses), (0, 1));
    drop(first);
    let second = alloc.buffer(64 * KIB);
    let m = pool.metrics();
    assert_eq!((m.cache_hits, m.cache_misses), (1, 1));
    assert_eq!(second.as_ptr(), first_ptr, "the cached block is reused");

    // A small class: a miss refills a batch, so the next one hits even
    // without a free in between.
    let s1 = alloc.buffer(100);
    let s2 = alloc.buffer(100);
    let m = pool.metrics();
    assert_eq!((m.cache_hits, m.cache_misses), (2, 2));
    drop((s1, s2));
    for _ in 0..10 {
        drop(alloc.buffer(100));
    }
    let m = pool.metrics();
    assert_eq!((m.cache_hits, m.cache_misses), (12, 2));
    assert_eq!(m.cache_hits + m.cache_misses, m.allocations);
    drop(second);
}

#[test]
fn uncached_classes_always_miss() {
    let pool = PooledAllocator::new(PoolConfig {
        chunk_size: CHUNK,
        max_cached_size: 16 * KIB,
        ..PoolConfig::default()
    });
    let alloc = Allocator::from(pool);
    for _ in 0..3 {
        drop(alloc.buffer(64 * KIB));
    }
    let m = pool.metrics();
    assert_eq!((m.cache_hits, m.cache_misses), (0, 3));
    // With nothing cached, the freed run went straight back to the arena.
    assert_eq!(m.bytes_in_use, 0);
    drop(alloc.buffer(16 * KIB));
    drop(alloc.buffer(16 * KIB));
    let m = pool.metrics();
    assert_eq!((m.cache_hits, m.cache_misses), (1, 4));
}

/// The periodic trim gives back what a class stopped using, with no
/// explicit trim: after a burst of one class, allocating another class
/// `trim_interval` times twice over returns the idle class's blocks, and
/// their chunks are unmapped.
#[test]
fn periodic_trim_returns_an_idle_classes_blocks() {
    let pool = PooledAllocator::new(PoolConfig {
        chunk_size: CHUNK,
        retained_chunks: 0,
        empty_chunk_decay: Duration::ZERO,
        trim_interval: 64,
        ..PoolConfig::default()
    });
    let alloc = Allocator::from(pool);
    let burst: Vec<ByteBuf> = (0..32).map(|_| alloc.buffer(64 * KIB)).collect();
    assert!(pool.metrics().chunks_mapped >= 8);
    drop(burst);
    let idle = pool.metrics();
    // The cache keeps 14 of the 32 blocks (a bin holds up to 1 MiB and
    // spills half when full): at least four chunks' worth.
    assert!(idle.bytes_mapped >= 4 * CHUNK as u64, "{idle:?}");

    for i in 0..3 * 64 {
        let mut buf = alloc.buffer(100);
        buf.put_u8(i as u8);
    }
    let m = pool.metrics();
    assert!(m.bytes_mapped < idle.bytes_mapped, "{m:?}");
    assert!(
        m.bytes_mapped <= CHUNK as u64,
        "only the small class's chunk is left: {m:?}"
    );
    assert_eq!(m.bytes_in_use, 0);
    assert!(m.chunks_unmapped - idle.chunks_unmapped >= idle.chunks_mapped - m.chunks_mapped);
}

/// Chunks beyond the retained count that empty stay mapped for
/// `empty_chunk_decay` (so a burst right after a burst does not map them
/// again), unless the decay is zero; an explicit trim does not wait.
#[test]
fn empty_chunks_wait_out_the_decay_unless_trimmed() {
    for (decay, unmapped_at_once) in [(Duration::from_secs(3600), false), (Duration::ZERO, true)] {
        let pool = PooledAllocator::new(PoolConfig {
            chunk_size: CHUNK,
            retained_chunks: 0,
            empty_chunk_decay: decay,
            // Nothing cached: every free goes straight to the arena.
            max_cached_size: 0,
            ..PoolConfig::default()
        });
        let alloc = Allocator::from(pool);
        // A whole-chunk class: one chunk per buffer.
        let bufs: Vec<ByteBuf> = (0..8).map(|_| alloc.buffer(CHUNK)).collect();
        assert_eq!(pool.metrics().chunks_mapped, 8);
        drop(bufs);
        let m = pool.metrics();
        assert_eq!(m.bytes_in_use, 0);
        if unmapped_at_once {
            assert_eq!(m.chunks_mapped, 0, "{m:?}");
        } else {
            assert_eq!(m.chunks_mapped, 8, "unmapped before the decay: {m:?}");
            // Reused rather than mapped again.
            drop(alloc.buffer(CHUNK));
            assert_eq!(pool.metrics().chunks_unmapped, 0);
            assert_eq!(pool.metrics().chunks_mapped, 8);
        }
        pool.trim_thread_cache();
        let m = pool.metrics();
        assert_eq!(m.chunks_mapped, 0, "{m:?}");
        assert_eq!(m.bytes_mapped, 0, "{m:?}");
        assert_eq!(m.chunks_unmapped, 8);
    }
}
