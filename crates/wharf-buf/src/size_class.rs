//! Size classes: how a requested capacity is rounded before it is pooled.
//!
//! The spacing is jemalloc's: multiples of 16 bytes up to 64, then four
//! classes per doubling (`2^k + i * 2^(k-2)`, `i = 1..=4`):
//!
//! ```text
//! 16 32 48 64 | 80 96 112 128 | 160 192 224 256 | 320 … 512 | … | 3 MiB 3.5 MiB 4 MiB
//! ```
//!
//! Classes fall in three kinds:
//!
//! * **small** (16 B ..= 14 KiB, 35 classes): carved from *slabs*, runs of
//!   pages split into equal blocks. Each class picks the slab length (1 to 28
//!   pages) that leaves at most 1/16 of the slab unused, with at least eight
//!   blocks a slab;
//! * **normal** (16 KiB ..= chunk size): a run of whole pages inside a chunk.
//!   From 16 KiB on every class is a multiple of the 4 KiB page, so a run has
//!   no tail waste;
//! * **huge** (above the chunk size): a mapping of its own, unmapped on free.
//!
//! Worst-case internal waste: a request of `2^k + 1` bytes (k ≥ 6) gets the
//! class `2^k + 2^(k-2)`, so at most 20 % of a class is unused; below 64
//! bytes the 16-byte quantum bounds the waste to 15 bytes. Slab tails add at
//! most 1/16 (6.25 %) for small classes. Huge requests are rounded up to a
//! whole page only.
//!
//! Every block is aligned to the largest power of two that divides its class
//! size (capped at the 4 KiB page), because slabs and runs start on page
//! boundaries. [`aligned_class`] uses that to serve aligned requests.

/// The pool's page: the unit that chunks are divided into. Chunks are
/// mapped by the OS on page boundaries, so a pool page is also 4 KiB aligned.
pub(crate) const PAGE: usize = 4096;

/// Largest small class; larger classes are runs of pages.
pub(crate) const MAX_SMALL: usize = 14 * 1024;

/// Smallest class and the spacing of classes up to 64 bytes.
const QUANTUM: usize = 16;

/// Sizes up to this are classed by a table lookup (every class up to it
/// is a multiple of 16 bytes, so one entry per 16 bytes is exact).
const TABLE_MAX: usize = 16 * 1024;

/// `class_of` for sizes up to [`TABLE_MAX`], indexed by `(size - 1) / 16`:
/// one load on the allocation hot path instead of a dozen instructions of
/// bit arithmetic (1 KiB of table, hot in the L1 cache of a thread that
/// allocates).
static CLASS_TABLE: [u8; TABLE_MAX / QUANTUM] = {
    let mut table = [0; TABLE_MAX / QUANTUM];
    let mut i = 0;
    while i < table.len() {
        table[i] = class_by_arithmetic((i + 1) * QUANTUM) as u8;
        i += 1;
    }
    table
};

/// The index of the smallest class that holds `size` bytes (`size >= 1`).
#[inline(always)]
pub(crate) fn class_of(size: usize) -> usize {
    debug_assert!(size > 0);
    if size <= TABLE_MAX {
        return CLASS_TABLE[(size - 1) / QUANTUM] as usize;
    }
    class_by_arithmetic(size)
}

/// `class_of` from the spacing's definition.
const fn class_by_arithmetic(size: usize) -> usize {
    if size <= 64 {
        return size.div_ceil(QUANTUM) - 1;
    }
    // 2^k < size <= 2^(k+1)
    let k = usize::BITS as usize - 1 - (size - 1).leading_zeros() as usize;
    let step_shift = k - 2;
    let i = (size - (1 << k) + (1 << step_shift) - 1) >> step_shift; // 1..=4
    4 + (k - 6) * 4 + (i - 1)
}

/// The size in bytes of class `index`.
#[inline]
pub(crate) fn class_size(index: usize) -> usize {
    if index < 4 {
        return (index + 1) * QUANTUM;
    }
    let k = 6 + (index - 4) / 4;
    let i = (index - 4) % 4 + 1;
    (1 << k) + (i << (k - 2))
}

/// Whether class `index` is carved from slabs (as opposed to a page run).
#[inline]
pub(crate) fn is_small(index: usize) -> bool {
    class_size(index) <= MAX_SMALL
}

/// The smallest class of at least `size` bytes whose blocks are all aligned
/// to `align` (a power of two no larger than [`PAGE`]).
pub(crate) fn aligned_class(size: usize, align: usize) -> usize {
    debug_assert!(align.is_power_of_two() && align <= PAGE);
    let mut index = class_of(size.max(1));
    while !class_size(index).is_multiple_of(align) {
        index += 1;
    }
    index
}

/// How a small class is laid out in a slab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlabShape {
    /// Pages in one slab.
    pub pages: usize,
    /// Blocks carved from one slab.
    pub blocks: usize,
}

/// The slab shape of small class `index` in chunks of `chunk_pages` pages:
/// the fewest pages that give at least eight blocks and waste at most 1/16
/// of the slab; failing that (only for chunks under 128 KiB), the least
/// wasteful slab that fits in a chunk.
pub(crate) fn slab_shape(index: usize, chunk_pages: usize) -> SlabShape {
    let size = class_size(index);
    debug_assert!(size <= MAX_SMALL && size <= chunk_pages * PAGE);
    let mut best = SlabShape {
        pages: chunk_pages,
        blocks: chunk_pages * PAGE / size,
    };
    let mut best_waste = chunk_pages * PAGE - best.blocks * size;
    for pages in 1..=chunk_pages.min(32) {
        let bytes = pages * PAGE;
        let blocks = bytes / size;
        if blocks == 0 {
            continue;
        }
        let waste = bytes - blocks * size;
        if blocks >= 8 && waste * 16 <= bytes {
            return SlabShape { pages, blocks };
        }
        // Compare waste fractions: waste / bytes < best_waste / best_bytes.
        if waste * best.pages * PAGE < best_waste * bytes {
            best = SlabShape { pages, blocks };
            best_waste = waste;
        }
    }
    best
}

/// Pages in a run of normal class `index`.
#[inline]
pub(crate) fn run_pages(index: usize) -> usize {
    let size = class_size(index);
    debug_assert!(size > MAX_SMALL && size.is_multiple_of(PAGE));
    size / PAGE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_classes_follow_the_quantum_then_four_per_doubling() {
        let sizes: Vec<usize> = (0..14).map(class_size).collect();
        assert_eq!(
            sizes,
            [
                16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384
            ]
        );
        assert_eq!(class_size(class_of(4 << 20)), 4 << 20);
        assert_eq!(class_of(4 << 20), 67);
    }

    #[test]
    fn the_table_agrees_with_the_arithmetic() {
        for size in 1..=TABLE_MAX + 64 {
            assert_eq!(class_of(size), class_by_arithmetic(size), "size {size}");
        }
    }

    #[test]
    fn class_of_is_the_smallest_class_that_fits() {
        for size in 1..=(1 << 16) {
            let c = class_of(size);
            assert!(class_size(c) >= size, "size {size} class {c}");
            if c > 0 {
                assert!(class_size(c - 1) < size, "size {size} class {c}");
            }
        }
        for shift in 17..=30 {
            for size in [(1usize << shift) - 1, 1 << shift, (1 << shift) + 1] {
                let c = class_of(size);
                assert!(class_size(c) >= size && class_size(c - 1) < size);
            }
        }
    }

    #[test]
    fn waste_is_bounded_as_documented() {
        for size in 65..=(1 << 20) {
            let class = class_size(class_of(size));
            assert!((class - size) * 5 <= class, "size {size} class {class}");
        }
    }

    #[test]
    fn normal_classes_are_whole_pages() {
        let mut index = class_of(MAX_SMALL + 1);
        assert_eq!(class_size(index), 16 * 1024);
        while class_size(index) <= 1 << 26 {
            assert_eq!(class_size(index) % PAGE, 0);
            assert!(!is_small(index));
            index += 1;
        }
    }

    #[test]
    fn slabs_waste_at_most_a_sixteenth() {
        let mut index = 0;
        while is_small(index) {
            let shape = slab_shape(index, 1024);
            let bytes = shape.pages * PAGE;
            assert!(shape.blocks >= 8, "class {}", class_size(index));
            assert!(shape.blocks * class_size(index) <= bytes);
            assert!((bytes - shape.blocks * class_size(index)) * 16 <= bytes);
            assert!(shape.blocks <= u16::MAX as usize);
            index += 1;
        }
        assert_eq!(index, 35);
    }

    #[test]
    fn slabs_fit_in_the_smallest_chunk() {
        let chunk_pages = 16;
        let mut index = 0;
        while is_small(index) {
            let shape = slab_shape(index, chunk_pages);
            assert!(shape.pages <= chunk_pages, "class {}", class_size(index));
            assert!(shape.blocks >= 1);
            assert!(shape.blocks * class_size(index) <= shape.pages * PAGE);
            index += 1;
        }
        assert_eq!(slab_shape(class_of(14336), chunk_pages).blocks, 2);
    }

    #[test]
    fn aligned_classes_are_multiples_of_the_alignment() {
        assert_eq!(class_size(aligned_class(1, PAGE)), 4096);
        assert_eq!(class_size(aligned_class(4097, PAGE)), 8192);
        assert_eq!(class_size(aligned_class(5000, 512)), 5120);
        assert_eq!(class_size(aligned_class(100, 64)), 128);
    }
}
