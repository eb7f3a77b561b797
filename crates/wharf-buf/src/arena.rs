//! The shared part of a pool: chunks, the slabs carved from them, and the
//! policy that gives empty chunks back to the OS.
//!
//! Thread caches come here, under one lock, only when they run dry or
//! overflow, and always for batches of blocks, so the lock is off the hot
//! path.
//!
//! Empty chunks are kept up to the configured retained count; beyond it
//! they are unmapped once they have stayed empty for the decay time
//! (jemalloc's "decay"), or at once on an explicit trim. Memory that never
//! shrinks is what Netty users reported in netty#9381 and netty#16827; the
//! decay keeps a burst of frees followed by a burst of allocations (buffers
//! in flight between threads) from mapping and faulting in the same chunk
//! again and again.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::chunk::Chunk;
use crate::size_class::{PAGE, SlabShape, class_size, is_small, run_pages, slab_shape};

/// Counters the arena keeps for metrics; readable without its lock.
#[derive(Debug, Default)]
pub(crate) struct ArenaStats {
    pub chunks_mapped: AtomicU64,
    pub chunks_unmapped: AtomicU64,
    pub bytes_mapped: AtomicU64,
}

/// One slab: a run of pages split into equal blocks of one small class.
#[derive(Debug)]
struct SlabState {
    /// First byte of the slab, derived from its chunk's mapping.
    base: NonNull<u8>,
    class: usize,
    shape: SlabShape,
    /// Indices of the blocks that are free.
    free: Vec<u16>,
    /// Position in the class's partial list while the slab has free blocks.
    partial_at: Option<usize>,
}

/// Chunks, slabs and the free lists between them. Not thread safe by
/// itself: the pool keeps it behind a mutex.
#[derive(Debug)]
pub(crate) struct Arena {
    chunk_bytes: usize,
    retain_chunks: usize,
    decay: Duration,
    chunks: Slab<Chunk>,
    /// When each empty chunk became empty, by chunk key.
    empty_since: Vec<Option<Instant>>,
    /// Chunk keys sorted by base address, to find the chunk of a block.
    by_addr: Vec<(usize, usize)>,
    empty_chunks: usize,
    slabs: Slab<SlabState>,
    /// For each small class, the slabs that have free blocks.
    partial: Vec<Vec<usize>>,
}

// SAFETY: the raw pointers in an arena (chunk bases, slab bases) point into
// mappings the arena owns; mappings have no thread affinity, and the pool
// only reaches the arena through a mutex, one thread at a time.
unsafe impl Send for Arena {}

impl Arena {
    /// An arena of `chunk_bytes` chunks that keeps up to `retain_chunks`
    /// empty chunks mapped, and unmaps the others after `decay`.
    pub(crate) fn new(
        chunk_bytes: usize,
        retain_chunks: usize,
        decay: Duration,
        small_classes: usize,
    ) -> Arena {
        Arena {
            chunk_bytes,
            retain_chunks,
            decay,
            chunks: Slab::new(),
            empty_since: Vec::new(),
            by_addr: Vec::new(),
            empty_chunks: 0,
            slabs: Slab::new(),
            partial: (0..small_classes).map(|_| Vec::new()).collect(),
        }
    }

    /// Changes how many empty chunks are kept, unmapping any beyond it.
    pub(crate) fn set_retain_chunks(&mut self, retain: usize, stats: &ArenaStats) {
        self.retain_chunks = retain;
        self.release_empty_chunks_now(stats);
    }

    /// Appends up to `want` blocks of small class `class` to `out`.
    pub(crate) fn alloc_small(
        &mut self,
        class: usize,
        want: usize,
        out: &mut Vec<NonNull<u8>>,
        stats: &ArenaStats,
    ) -> io::Result<()> {
        debug_assert!(is_small(class));
        let size = class_size(class);
        let target = out.len() + want;
        while out.len() < target {
            let key = match self.partial[class].last() {
                Some(&key) => key,
                None => self.new_slab(class, stats)?,
            };
            let slab = &mut self.slabs[key];
            while out.len() < target {
                let Some(index) = slab.free.pop() else { break };
                let block = slab.base.as_ptr().wrapping_add(index as usize * size);
                out.push(NonNull::new(block).expect("blocks lie inside a mapping"));
            }
            if slab.free.is_empty() {
                self.unlist_partial(key);
            }
        }
        Ok(())
    }

    /// One run of pages for normal class `class`.
    pub(crate) fn alloc_run(
        &mut self,
        class: usize,
        stats: &ArenaStats,
    ) -> io::Result<NonNull<u8>> {
        self.take_pages(run_pages(class), stats)
    }

    /// Gives back a block of class `class` at `ptr`.
    pub(crate) fn free(&mut self, class: usize, ptr: NonNull<u8>, stats: &ArenaStats) {
        let addr = ptr.as_ptr().addr();
        let chunk_key = self.chunk_of(addr);
        if is_small(class) {
            let slab_key = self.chunks[chunk_key]
                .slab_at(addr)
                .expect("freed small block outside any slab") as usize;
            let slab = &mut self.slabs[slab_key];
            debug_assert_eq!(slab.class, class, "block freed with the wrong class");
            let index = (addr - slab.base.as_ptr().addr()) / class_size(class);
            debug_assert!(!slab.free.contains(&(index as u16)), "double free");
            slab.free.push(index as u16);
            if slab.free.len() == slab.shape.blocks {
                self.release_slab(slab_key, chunk_key, stats);
            } else if slab.partial_at.is_none() {
                let list = &mut self.partial[class];
                slab.partial_at = Some(list.len());
                list.push(slab_key);
            }
        } else {
            self.chunks[chunk_key].free_run(addr, run_pages(class));
            self.note_if_empty(chunk_key, stats);
        }
    }

    fn new_slab(&mut self, class: usize, stats: &ArenaStats) -> io::Result<usize> {
        let shape = slab_shape(class, self.chunk_bytes / PAGE);
        let base = self.take_pages(shape.pages, stats)?;
        let key = self.slabs.insert(SlabState {
            base,
            class,
            shape,
            // Pop order hands out the lowest addresses first.
            free: (0..shape.blocks as u16).rev().collect(),
            partial_at: Some(self.partial[class].len()),
        });
        self.partial[class].push(key);
        let addr = base.as_ptr().addr();
        let chunk_key = self.chunk_of(addr);
        self.chunks[chunk_key].set_slab(addr, shape.pages, key as u32);
        Ok(key)
    }

    fn release_slab(&mut self, slab_key: usize, chunk_key: usize, stats: &ArenaStats) {
        self.unlist_partial(slab_key);
        let slab = self.slabs.remove(slab_key);
        let chunk = &mut self.chunks[chunk_key];
        let addr = slab.base.as_ptr().addr();
        chunk.clear_slab(addr, slab.shape.pages);
        chunk.free_run(addr, slab.shape.pages);
        self.note_if_empty(chunk_key, stats);
    }

    fn unlist_partial(&mut self, slab_key: usize) {
        let slab = &mut self.slabs[slab_key];
        let Some(pos) = slab.partial_at.take() else {
            return;
        };
        let list = &mut self.partial[slab.class];
        list.swap_remove(pos);
        if let Some(&moved) = list.get(pos) {
            self.slabs[moved].partial_at = Some(pos);
        }
    }

    /// `pages` contiguous pages: from a chunk already in use if one has
    /// room (so empty chunks stay empty and can be unmapped), else from an
    /// empty chunk, else from a new one.
    fn take_pages(&mut self, pages: usize, stats: &ArenaStats) -> io::Result<NonNull<u8>> {
        let mut spare_empty = None;
        for &(_, key) in &self.by_addr {
            let chunk = &mut self.chunks[key];
            if chunk.is_empty() {
                spare_empty.get_or_insert(key);
                continue;
            }
            if chunk.free_pages() >= pages
                && let Some(ptr) = chunk.alloc_run(pages)
            {
                return Ok(ptr);
            }
        }
        let key = match spare_empty {
            Some(key) => {
                self.empty_chunks -= 1;
                self.empty_since[key] = None;
                key
            }
            None => self.map_chunk(stats)?,
        };
        Ok(self.chunks[key]
            .alloc_run(pages)
            .expect("an empty chunk holds any run up to the chunk size"))
    }

    fn map_chunk(&mut self, stats: &ArenaStats) -> io::Result<usize> {
        let chunk = Chunk::map(self.chunk_bytes)?;
        stats.chunks_mapped.fetch_add(1, Release);
        stats.bytes_mapped.fetch_add(chunk.bytes() as u64, Relaxed);
        let base = chunk.base();
        let key = self.chunks.insert(chunk);
        if self.empty_since.len() <= key {
            self.empty_since.resize(key + 1, None);
        }
        let pos = self.by_addr.partition_point(|&(b, _)| b < base);
        self.by_addr.insert(pos, (base, key));
        Ok(key)
    }

    fn note_if_empty(&mut self, chunk_key: usize, stats: &ArenaStats) {
        if self.chunks[chunk_key].is_empty() {
            self.empty_chunks += 1;
            self.empty_since[chunk_key] = Some(Instant::now());
            self.release_empty_chunks(stats);
        }
    }

    /// Unmaps empty chunks beyond the retained count that have been empty
    /// for at least the decay time.
    pub(crate) fn release_empty_chunks(&mut self, stats: &ArenaStats) {
        if self.empty_chunks > self.retain_chunks {
            self.release_empty(Some(Instant::now()), stats);
        }
    }

    /// Unmaps every empty chunk beyond the retained count.
    pub(crate) fn release_empty_chunks_now(&mut self, stats: &ArenaStats) {
        if self.empty_chunks > self.retain_chunks {
            self.release_empty(None, stats);
        }
    }

    /// Unmaps empty chunks (those empty since before `now - decay`, if `now`
    /// is given), highest addresses first, while more than the retained
    /// count are empty.
    fn release_empty(&mut self, now: Option<Instant>, stats: &ArenaStats) {
        let mut pos = self.by_addr.len();
        while self.empty_chunks > self.retain_chunks && pos > 0 {
            pos -= 1;
            let (_, key) = self.by_addr[pos];
            let Some(since) = self.empty_since[key] else {
                continue;
            };
            if now.is_some_and(|now| now.duration_since(since) < self.decay) {
                continue;
            }
            self.by_addr.remove(pos);
            self.empty_since[key] = None;
            let chunk = self.chunks.remove(key);
            self.empty_chunks -= 1;
            stats.chunks_unmapped.fetch_add(1, Release);
            stats.bytes_mapped.fetch_sub(chunk.bytes() as u64, Relaxed);
            drop(chunk);
        }
    }

    fn chunk_of(&self, addr: usize) -> usize {
        let pos = self.by_addr.partition_point(|&(base, _)| base <= addr);
        let (_, key) = self.by_addr[pos.checked_sub(1).expect("address below every chunk")];
        debug_assert!(
            self.chunks[key].contains(addr),
            "address outside every chunk"
        );
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::size_class::class_of;

    const CHUNK: usize = 64 * PAGE;

    #[test]
    fn small_blocks_are_distinct_and_return_the_chunk() {
        let stats = ArenaStats::default();
        let mut arena = Arena::new(CHUNK, 0, Duration::ZERO, 35);
        let class = class_of(100);
        let mut blocks = Vec::new();
        arena
            .alloc_small(class, 500, &mut blocks, &stats)
            .expect("alloc");
        let mut addrs: Vec<usize> = blocks.iter().map(|p| p.as_ptr() as usize).collect();
        addrs.sort_unstable();
        addrs.dedup();
        assert_eq!(addrs.len(), 500);
        assert!(addrs.windows(2).all(|w| w[1] - w[0] >= class_size(class)));
        assert_eq!(stats.chunks_mapped.load(Relaxed), 1);
        for ptr in blocks {
            arena.free(class, ptr, &stats);
        }
        assert_eq!(stats.chunks_unmapped.load(Relaxed), 1);
        assert_eq!(stats.bytes_mapped.load(Relaxed), 0);
    }

    #[test]
    fn runs_fill_chunks_and_empty_ones_are_retained_up_to_the_limit() {
        let stats = ArenaStats::default();
        let mut arena = Arena::new(CHUNK, 1, Duration::ZERO, 35);
        let class = class_of(CHUNK / 2);
        let runs: Vec<_> = (0..6)
            .map(|_| arena.alloc_run(class, &stats).expect("run"))
            .collect();
        assert_eq!(stats.chunks_mapped.load(Relaxed), 3);
        for ptr in runs {
            arena.free(class, ptr, &stats);
        }
        assert_eq!(stats.chunks_unmapped.load(Relaxed), 2);
        assert_eq!(stats.bytes_mapped.load(Relaxed), CHUNK as u64);
        arena.set_retain_chunks(0, &stats);
        assert_eq!(stats.bytes_mapped.load(Relaxed), 0);
    }

    #[test]
    fn empty_chunks_wait_out_the_decay_unless_released_now() {
        let stats = ArenaStats::default();
        let mut arena = Arena::new(CHUNK, 0, Duration::from_secs(3600), 35);
        let class = class_of(CHUNK);
        let runs: Vec<_> = (0..3)
            .map(|_| arena.alloc_run(class, &stats).expect("run"))
            .collect();
        for ptr in runs {
            arena.free(class, ptr, &stats);
        }
        assert_eq!(stats.chunks_unmapped.load(Relaxed), 0, "still decaying");
        // Reuse takes an empty chunk instead of mapping a new one.
        let again = arena.alloc_run(class, &stats).expect("run");
        assert_eq!(stats.chunks_mapped.load(Relaxed), 3);
        arena.free(class, again, &stats);
        arena.release_empty_chunks_now(&stats);
        assert_eq!(stats.chunks_unmapped.load(Relaxed), 3);
        assert_eq!(stats.bytes_mapped.load(Relaxed), 0);
    }
}
