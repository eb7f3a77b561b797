//! Large buffers grow in linear time (issue 8 §2, point 3a): a `ByteBuf`
//! filled from empty in 64 KiB appends up to 256 MiB must move to new
//! memory a logarithmic number of times (geometric growth), not once every
//! 4 MiB (fixed steps past 4 MiB make filling a buffer quadratic: 70
//! allocations and about 8 GiB copied for 256 MiB).
//!
//! Counted two ways, on allocators of the test's own: the buffer's address
//! changing, and the allocator's allocation count. The test stops as soon
//! as the bound is passed, so the quadratic case fails quickly.

use wharf_buf::{Allocator, PoolConfig, PooledAllocator, UnpooledAllocator};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
const SLICE: usize = 64 * KIB;
const TOTAL: usize = 256 * MIB;
/// Doubling from 64 KiB to 256 MiB takes 13 allocations, a growth factor
/// of 1.5 about 18; fixed 4 MiB steps past 4 MiB take 70.
const MAX_ALLOCATIONS: u64 = 24;

/// Fills a buffer from `alloc` to `TOTAL` in `SLICE` appends; fails once
/// it has been allocated more than `MAX_ALLOCATIONS` times.
fn fill(alloc: Allocator, name: &str) {
    let slice: Vec<u8> = (0..SLICE).map(|i| (i % 251) as u8).collect();
    let allocations_before = alloc.metrics().allocations;
    let mut buf = alloc.buffer(0);
    let mut moves = 0u64;
    let mut address = buf.as_ptr();
    let mut capacities = Vec::new();
    while buf.len() < TOTAL {
        buf.extend_from_slice(&slice);
        if buf.as_ptr() != address {
            address = buf.as_ptr();
            moves += 1;
            capacities.push(buf.capacity() / KIB);
        }
        let allocations = alloc.metrics().allocations - allocations_before;
        assert!(
            moves <= MAX_ALLOCATIONS && allocations <= MAX_ALLOCATIONS,
            "{name}: growing a buffer to {} MiB of {TOTAL_MIB} MiB took {moves} moves to new \
             memory and {allocations} allocations (bound {MAX_ALLOCATIONS} for the whole \
             256 MiB); capacities in KiB: {capacities:?}",
            buf.len() / MIB,
            TOTAL_MIB = TOTAL / MIB,
        );
    }
    assert_eq!(buf.len(), TOTAL, "{name}: length");
    for offset in [0, SLICE - 1, TOTAL / 2 + 7, TOTAL - 1] {
        assert_eq!(
            buf[offset],
            ((offset % SLICE) % 251) as u8,
            "{name}: byte {offset}"
        );
    }
    eprintln!("{name}: {moves} allocations to reach {} MiB", TOTAL / MIB);
}

#[test]
fn growing_to_256_mib_reallocates_a_logarithmic_number_of_times_pooled() {
    fill(
        Allocator::from(PooledAllocator::new(PoolConfig::default())),
        "pooled",
    );
}

#[test]
fn growing_to_256_mib_reallocates_a_logarithmic_number_of_times_unpooled() {
    fill(Allocator::from(UnpooledAllocator::new()), "unpooled");
}
