//! Giving the C library's free heap back to the kernel.

/// Returns the free memory of all of glibc's heaps (the main one and each
/// thread's arena) to the kernel, `malloc_trim(0)`; whether any was.
/// glibc gives memory back on its own only from the top of a heap, so the
/// per-connection allocations freed when a crowd of connections leaves
/// would otherwise stay resident. Other C libraries: nothing to do.
pub(crate) fn release_free_heap() -> bool {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: malloc_trim has no preconditions; it takes glibc's own
        // arena locks and releases only pages no allocation holds.
        unsafe { libc::malloc_trim(0) != 0 }
    }
    #[cfg(not(target_env = "gnu"))]
    {
        false
    }
}
