//! The allocator's only contact with the OS: anonymous memory mappings.
//!
//! Everything the pool hands out lives in mappings made here, outside the
//! Rust heap (the "direct memory" of Java NIO). The kernel gives them on
//! page boundaries, zero-filled, and takes them back when the value drops.

use std::io;
use std::ptr::NonNull;

use memmap2::{MmapMut, MmapOptions};

/// An anonymous, private, read-write mapping of `len` bytes (rounded up to
/// the OS page by the kernel). Its bytes start zeroed, so the memory is
/// initialized from the first use on.
#[derive(Debug)]
pub(crate) struct Mapping {
    map: MmapMut,
}

impl Mapping {
    /// Maps `len` bytes (`len > 0`).
    pub(crate) fn anonymous(len: usize) -> io::Result<Mapping> {
        let map = MmapOptions::new().len(len).map_anon()?;
        Ok(Mapping { map })
    }

    /// Grows (or shrinks) the mapping to `len` bytes, moving it if it must,
    /// without copying a byte: the kernel moves the page tables
    /// (`mremap(MREMAP_MAYMOVE)`). The bytes keep their offsets; pointers
    /// into the old range are no longer valid.
    ///
    /// # Safety
    ///
    /// No reference or pointer into the mapping may be used after the call
    /// (the caller holds the only view of it and takes the new base).
    pub(crate) unsafe fn remap(&mut self, len: usize) -> io::Result<()> {
        // SAFETY: forwarded contract: nothing points into the old range.
        unsafe {
            self.map
                .remap(len, memmap2::RemapOptions::new().may_move(true))
        }
    }

    /// The first byte of the mapping; page aligned.
    pub(crate) fn base(&mut self) -> NonNull<u8> {
        // A successful mapping is never at address 0.
        NonNull::new(self.map.as_mut_ptr()).expect("mmap returned a null mapping")
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}
