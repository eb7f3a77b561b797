//! Small cached files mapped once (issue 12 §3): a response's file region
//! then leaves from the mapping in the same `writev` as its head, with no
//! system call to read the file (see [`wharf::FileMap`]). The mapping is
//! the page cache itself, so the bytes sent are the file's current ones;
//! whether the cached version is still what the path names is the open
//! file cache's `fstatat` check, as for the descriptor.
//!
//! Mappings count against the kernel's per-process limit
//! (`vm.max_map_count`, 65 530 by default), which the buffer pool's chunks
//! and the threads' stacks share: at most [`MAX_MAPS`] small files are
//! mapped at a time in the process (give or take the responses still
//! sending from an evicted file's map); the others are read with `pread`.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wharf::{FileMap, TransferStrategy};

/// Files mapped at once in the process, at most.
pub const MAX_MAPS: usize = 8192;

/// Largest file mapped: the transport sends regions up to this size with
/// the head that precedes them.
pub const MAX_MAPPED_LEN: u64 = 16 << 10;

/// Mappings alive.
static MAPS: AtomicUsize = AtomicUsize::new(0);

/// A mapping counted against [`MAX_MAPS`] while it lives.
#[derive(Debug)]
pub struct Mapped {
    map: Arc<FileMap>,
}

impl Mapped {
    /// `file` (`len` bytes long) mapped, if it is small, `transfer` is
    /// `Auto` (the only strategy that sends from a map) and the budget
    /// allows; `None` otherwise or if the kernel refuses.
    pub fn of(file: &Arc<File>, len: u64, transfer: TransferStrategy) -> Option<Mapped> {
        if transfer != TransferStrategy::Auto || len == 0 || len > MAX_MAPPED_LEN {
            return None;
        }
        if MAPS.fetch_add(1, Ordering::Relaxed) >= MAX_MAPS {
            MAPS.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        match FileMap::new(Arc::clone(file)) {
            Ok(map) if map.len() == len => Some(Mapped { map: Arc::new(map) }),
            _ => {
                MAPS.fetch_sub(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// `count` bytes from `first`, sent from the map where it can (see
    /// [`FileMap::region`]).
    pub fn region(&self, first: u64, count: u64) -> wharf::FileRegion {
        self.map.region(first, count)
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        MAPS.fetch_sub(1, Ordering::Relaxed);
    }
}
