//! A chunk: one large mapping divided into pages, and which pages are taken.
//!
//! The arena asks a chunk for runs of contiguous pages (first fit over a
//! bitmap) and gives them back; it frees the mapping when every page is free.
//! Chunks are only touched under the arena lock.

use std::io;
use std::ptr::NonNull;

use crate::size_class::PAGE;
use crate::sys::Mapping;

/// Marks a page that holds no slab.
pub(crate) const NO_SLAB: u32 = u32::MAX;

/// One mapped chunk and its page bitmap.
#[derive(Debug)]
pub(crate) struct Chunk {
    mapping: Mapping,
    /// The mapping's first byte; block pointers are derived from it.
    base: NonNull<u8>,
    pages: usize,
    free_pages: usize,
    /// Bit set = page in use; the bits past the last page are set, so a
    /// whole word can be tested at once.
    used: Vec<u64>,
    /// For every page: the key of the slab whose blocks live there, or `NO_SLAB`.
    slab_of_page: Vec<u32>,
}

impl Chunk {
    /// Maps a chunk of `bytes` (a multiple of [`PAGE`]).
    pub(crate) fn map(bytes: usize) -> io::Result<Chunk> {
        debug_assert!(bytes.is_multiple_of(PAGE) && bytes > 0);
        let mut mapping = Mapping::anonymous(bytes)?;
        let base = mapping.base();
        let pages = bytes / PAGE;
        let mut used = vec![0; pages.div_ceil(64)];
        if !pages.is_multiple_of(64) {
            *used.last_mut().expect("a chunk has pages") = u64::MAX << (pages % 64);
        }
        Ok(Chunk {
            mapping,
            base,
            pages,
            free_pages: pages,
            used,
            slab_of_page: vec![NO_SLAB; pages],
        })
    }

    /// Address of the first byte.
    pub(crate) fn base(&self) -> usize {
        self.base.as_ptr().addr()
    }

    /// Length in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.mapping.len()
    }

    /// Whether `addr` lies inside this chunk.
    pub(crate) fn contains(&self, addr: usize) -> bool {
        addr >= self.base() && addr < self.base() + self.pages * PAGE
    }

    /// Whether no page is in use.
    pub(crate) fn is_empty(&self) -> bool {
        self.free_pages == self.pages
    }

    /// Pages not in use.
    pub(crate) fn free_pages(&self) -> usize {
        self.free_pages
    }

    /// Takes the first run of `n` free pages and returns its address.
    pub(crate) fn alloc_run(&mut self, n: usize) -> Option<NonNull<u8>> {
        if n == 0 || n > self.free_pages {
            return None;
        }
        let first = self.find_run(n)?;
        self.set_range(first, n, true);
        self.free_pages -= n;
        // Derived from the mapping's pointer (not cast from an integer), so
        // the block keeps the mapping's provenance.
        NonNull::new(self.base.as_ptr().wrapping_add(first * PAGE))
    }

    /// Gives back the run of `n` pages starting at `addr`.
    pub(crate) fn free_run(&mut self, addr: usize, n: usize) {
        let first = self.page_index(addr);
        debug_assert!(self.range_is(first, n, true), "double free of a page run");
        self.set_range(first, n, false);
        self.free_pages += n;
    }

    /// Page number of `addr` within the chunk.
    pub(crate) fn page_index(&self, addr: usize) -> usize {
        debug_assert!(self.contains(addr));
        (addr - self.base()) / PAGE
    }

    /// Records that the `pages` pages from `addr` hold the blocks of slab `key`.
    pub(crate) fn set_slab(&mut self, addr: usize, pages: usize, key: u32) {
        let first = self.page_index(addr);
        self.slab_of_page[first..first + pages].fill(key);
    }

    /// The slab whose blocks include `addr`, if any.
    pub(crate) fn slab_at(&self, addr: usize) -> Option<u32> {
        let key = self.slab_of_page[self.page_index(addr)];
        (key != NO_SLAB).then_some(key)
    }

    /// Forgets the slab of `pages` pages starting at `addr`.
    pub(crate) fn clear_slab(&mut self, addr: usize, pages: usize) {
        let first = self.page_index(addr);
        self.slab_of_page[first..first + pages].fill(NO_SLAB);
    }

    fn is_used(&self, page: usize) -> bool {
        self.used[page / 64] & (1 << (page % 64)) != 0
    }

    fn range_is(&self, first: usize, n: usize, used: bool) -> bool {
        (first..first + n).all(|p| self.is_used(p) == used)
    }

    /// Marks pages `first..first + n` used or free, a word at a time.
    fn set_range(&mut self, first: usize, n: usize, used: bool) {
        let end = first + n;
        let mut page = first;
        while page < end {
            let bit = page % 64;
            let bits = (64 - bit).min(end - page);
            let mask = (u64::MAX >> (64 - bits)) << bit;
            if used {
                self.used[page / 64] |= mask;
            } else {
                self.used[page / 64] &= !mask;
            }
            page += bits;
        }
    }

    /// First fit: the lowest page that starts `n` free pages. Whole words
    /// free or used are passed at once (a 1 MiB run is four words).
    fn find_run(&self, n: usize) -> Option<usize> {
        let mut run_start = 0;
        let mut run_len = 0;
        for (w, &word) in self.used.iter().enumerate() {
            if word == 0 {
                if run_len == 0 {
                    run_start = w * 64;
                }
                run_len += 64;
            } else if word == u64::MAX {
                run_len = 0;
            } else {
                let mut bits = word;
                for bit in 0..64 {
                    if bits & 1 != 0 {
                        run_len = 0;
                    } else {
                        if run_len == 0 {
                            run_start = w * 64 + bit;
                        }
                        run_len += 1;
                        if run_len >= n {
                            return Some(run_start);
                        }
                    }
                    bits >>= 1;
                }
            }
            if run_len >= n {
                return Some(run_start);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_first_fit_and_reusable() {
        let mut chunk = Chunk::map(64 * PAGE).expect("map");
        let base = chunk.base();
        let a = chunk.alloc_run(3).expect("a").as_ptr() as usize;
        let b = chunk.alloc_run(70 - 64 + 10).expect("b").as_ptr() as usize;
        assert_eq!(a, base);
        assert_eq!(b, base + 3 * PAGE);
        assert_eq!(chunk.free_pages(), 64 - 3 - 16);
        chunk.free_run(a, 3);
        let c = chunk.alloc_run(2).expect("c").as_ptr() as usize;
        assert_eq!(c, base);
        assert!(chunk.alloc_run(64).is_none());
        chunk.free_run(b, 16);
        chunk.free_run(c, 2);
        assert!(chunk.is_empty());
        assert_eq!(chunk.alloc_run(64).map(|p| p.as_ptr() as usize), Some(base));
    }

    #[test]
    fn long_runs_span_words_and_small_chunks_end_at_their_last_page() {
        let mut chunk = Chunk::map(1024 * PAGE).expect("map");
        let base = chunk.base();
        let page = |ptr: NonNull<u8>| (ptr.as_ptr() as usize - base) / PAGE;
        let a = chunk.alloc_run(3).expect("a");
        let b = chunk.alloc_run(256).expect("b");
        assert_eq!((page(a), page(b)), (0, 3));
        chunk.free_run(a.as_ptr() as usize, 3);
        let c = chunk.alloc_run(64).expect("c");
        assert_eq!(page(c), 259, "the three free pages at 0 are too few");
        assert_eq!(chunk.alloc_run(2).map(page), Some(0));
        // 702 pages are free: page 2 and the 701 from 323 on.
        assert!(chunk.alloc_run(702).is_none(), "page 2 is not contiguous");
        assert_eq!(chunk.alloc_run(701).map(page), Some(323));
        chunk.free_run(b.as_ptr() as usize, 256);
        assert_eq!(
            chunk.alloc_run(256).map(page),
            Some(2),
            "page 2 joins the run"
        );

        let mut small = Chunk::map(16 * PAGE).expect("map");
        assert!(small.alloc_run(17).is_none());
        let all = small.alloc_run(16).expect("all");
        assert!(small.alloc_run(1).is_none());
        small.free_run(all.as_ptr() as usize, 16);
        assert!(small.is_empty());
    }

    #[test]
    fn slabs_are_found_from_any_of_their_pages() {
        let mut chunk = Chunk::map(16 * PAGE).expect("map");
        let slab = chunk.alloc_run(4).expect("slab").as_ptr() as usize;
        chunk.set_slab(slab, 4, 7);
        assert_eq!(chunk.slab_at(slab + 3 * PAGE + 100), Some(7));
        assert_eq!(chunk.slab_at(slab), Some(7));
        assert_eq!(chunk.slab_at(slab + 4 * PAGE), None);
        chunk.clear_slab(slab, 4);
        assert_eq!(chunk.slab_at(slab + PAGE), None);
    }
}
