//! Buffers above the chunk size: a mapping of their own each, and a short
//! memory of the last few freed ones.
//!
//! A large buffer is filled soon after it is allocated (a frame of
//! hundreds of megabytes read off a socket). Fresh anonymous memory costs
//! a page fault and a zeroed page per 4 KiB as it fills, and unmapping it
//! costs a TLB shootdown per page range; a server that receives one large
//! value after another pays both every time. So a freed huge mapping is
//! kept, for the pool's `empty_chunk_decay`
//! at most, for the next allocation of a similar size to reuse as it is
//! (jemalloc's dirty-page decay does the same for Redis); one past its
//! decay is unmapped at the next huge allocation or free, at a thread
//! cache's periodic trim, or at an idle loop's trim. A unique huge
//! buffer that grows is remapped larger (`mremap`), its pages moved by
//! the kernel, instead of copied into a new mapping. At most
//! [`CACHED`] mappings are kept, the smallest going first; an idle loop's
//! trim drops them all.

use std::fmt;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::pool::PoolShared;
use crate::sys::Mapping;

/// Freed huge mappings kept for reuse, at most. When one more is freed,
/// the smallest goes: the largest are the dearest to map and fill again
/// (the growth steps of a buffer on its way to a large size must not push
/// out the large one itself).
const CACHED: usize = 4;

/// A mapping of its own for a request above the chunk size.
pub(crate) struct HugeBlock {
    /// Always `Some` until the block drops and hands it to the cache.
    mapping: Option<Mapping>,
    pub pool: &'static PoolShared,
}

impl fmt::Debug for HugeBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HugeBlock")
            .field("len", &self.mapping.as_ref().map(Mapping::len))
            .finish_non_exhaustive()
    }
}

impl HugeBlock {
    /// A block over `mapping`, counted as in use in `pool`.
    pub(crate) fn new(mapping: Mapping, pool: &'static PoolShared) -> HugeBlock {
        let len = mapping.len() as u64;
        pool.huge_allocations.fetch_add(1, Relaxed);
        pool.huge_live.fetch_add(1, Relaxed);
        pool.huge_bytes.fetch_add(len, Relaxed);
        HugeBlock {
            mapping: Some(mapping),
            pool,
        }
    }
}

impl HugeBlock {
    /// Grows the block to `len` bytes in place of a copy (the kernel moves
    /// its pages); returns its new base and length. The pool's counts
    /// follow. `None` when a freed mapping of that size is kept for reuse:
    /// copying what the block holds into it is cheaper than faulting in
    /// the rest of a fresh range.
    ///
    /// # Safety
    ///
    /// The caller holds the only view of the block and uses no pointer
    /// into it from before the call.
    pub(crate) unsafe fn grow(
        &mut self,
        len: usize,
    ) -> io::Result<Option<(std::ptr::NonNull<u8>, usize)>> {
        if self.pool.huge_cache.has_fit(len) {
            return Ok(None);
        }
        let mapping = self
            .mapping
            .as_mut()
            .expect("a live huge block holds its mapping");
        let old = mapping.len();
        // SAFETY: forwarded contract.
        unsafe { mapping.remap(len)? };
        let new = mapping.len();
        let grown = (new - old) as u64;
        let pool = self.pool;
        pool.huge_bytes.fetch_add(grown, Relaxed);
        pool.stats.bytes_mapped.fetch_add(grown, Relaxed);
        Ok(Some((mapping.base(), new)))
    }
}

impl Drop for HugeBlock {
    fn drop(&mut self) {
        let pool = self.pool;
        let Some(mapping) = self.mapping.take() else {
            return;
        };
        pool.huge_live.fetch_sub(1, Relaxed);
        pool.huge_bytes.fetch_sub(mapping.len() as u64, Relaxed);
        pool.huge_cache.put(mapping, pool);
    }
}

/// Recently freed huge mappings of one pool.
#[derive(Debug, Default)]
pub(crate) struct HugeCache {
    entries: Mutex<Vec<(Mapping, Instant)>>,
}

impl HugeCache {
    /// Whether a kept mapping would serve `len` bytes.
    pub(crate) fn has_fit(&self, len: usize) -> bool {
        Self::fit(&self.lock(), len).is_some()
    }

    /// The smallest kept mapping between `len` and twice that (not to
    /// waste much).
    fn fit(entries: &[(Mapping, Instant)], len: usize) -> Option<usize> {
        entries
            .iter()
            .enumerate()
            .filter(|(_, (m, _))| m.len() >= len && m.len() / 2 <= len)
            .min_by_key(|(_, (m, _))| m.len())
            .map(|(i, _)| i)
    }

    /// A mapping for `len` bytes: a kept one that fits, else a new one
    /// (dropping kept ones past their decay on the way).
    pub(crate) fn take(&self, len: usize, pool: &PoolShared) -> io::Result<Mapping> {
        let expired = {
            let mut entries = self.lock();
            if let Some(i) = Self::fit(&entries, len) {
                return Ok(entries.swap_remove(i).0);
            }
            Self::expired(&mut entries, Instant::now(), pool.config.empty_chunk_decay)
        };
        Self::unmap(expired, pool);
        let mapping = Mapping::anonymous(len)?;
        pool.stats
            .bytes_mapped
            .fetch_add(mapping.len() as u64, Relaxed);
        Ok(mapping)
    }

    /// Keeps a freed mapping for reuse (dropping the oldest beyond the
    /// limit, and any older than the decay), or unmaps it at once when the
    /// pool keeps nothing.
    fn put(&self, mapping: Mapping, pool: &PoolShared) {
        let decay = pool.config.empty_chunk_decay;
        let now = Instant::now();
        let unmapped = {
            let mut entries = self.lock();
            entries.push((mapping, now));
            let mut gone = Vec::new();
            if decay.is_zero() {
                gone.extend(entries.drain(..).map(|(m, _)| m));
            }
            while entries.len() > CACHED {
                let smallest = entries
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, (m, _))| m.len())
                    .map_or(0, |(i, _)| i);
                gone.push(entries.swap_remove(smallest).0);
            }
            gone.extend(Self::expired(&mut entries, now, decay));
            gone
        };
        Self::unmap(unmapped, pool);
    }

    /// Unmaps every cached mapping older than `decay` (all of them for a
    /// zero decay).
    pub(crate) fn trim(&self, pool: &PoolShared, decay: Duration) {
        let gone = Self::expired(&mut self.lock(), Instant::now(), decay);
        Self::unmap(gone, pool);
    }

    /// Takes the entries freed more than `decay` ago.
    fn expired(
        entries: &mut Vec<(Mapping, Instant)>,
        now: Instant,
        decay: Duration,
    ) -> Vec<Mapping> {
        let mut gone = Vec::new();
        let mut i = 0;
        while i < entries.len() {
            if now.saturating_duration_since(entries[i].1) >= decay {
                gone.push(entries.remove(i).0);
            } else {
                i += 1;
            }
        }
        gone
    }

    /// Unmaps `mappings` (outside the lock: munmap of a large range is
    /// slow) and counts them out.
    fn unmap(mappings: Vec<Mapping>, pool: &PoolShared) {
        for mapping in mappings {
            pool.stats
                .bytes_mapped
                .fetch_sub(mapping.len() as u64, Relaxed);
            drop(mapping);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Mapping, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
