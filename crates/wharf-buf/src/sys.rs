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
