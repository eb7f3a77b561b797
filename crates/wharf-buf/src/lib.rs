//! Pooled direct buffers for wharf: Netty's `PooledByteBufAllocator`, in Rust.
//!
//! * **Direct memory.** Buffers live in anonymous memory mappings
//!   ([`PoolConfig::chunk_size`], 4 MiB by default), page aligned and outside
//!   the Rust heap. A request larger than a chunk gets a mapping of its own,
//!   unmapped when the buffer drops.
//! * **Size classes.** Small sizes (16 B to 14 KiB) are carved from slabs of
//!   pages, normal sizes (16 KiB to the chunk size) are runs of pages; four
//!   classes per doubling bound the internal waste to 20 %. The table and
//!   the exact bounds are in the `size_class` module's source docs.
//! * **Thread-local caches.** Each thread keeps bounded stacks of free
//!   blocks per class: allocating and freeing on the owning thread takes no
//!   lock. Caches give back what they did not use every 8192 allocations.
//! * **Cross-thread frees.** A buffer dropped on another thread goes back to
//!   its owner through a lock-free return stack that the owner takes in on
//!   its next allocation; if the owner has exited, the memory goes back to the
//!   shared arena instead. Nothing is leaked.
//! * **Memory goes back to the OS.** Chunks that become empty are unmapped
//!   beyond [`PoolConfig::retained_chunks`].
//! * **[`ByteBuf`]**: reader and writer indices, growth, `bytes::Buf` and
//!   `BufMut`, `io::Read` and `Write`, zero-copy `split_to` and `freeze`
//!   (into [`FrozenBuf`] and on to `bytes::Bytes`).
//! * **Alignment.** Every pooled block is aligned to the largest power of
//!   two dividing its class size, up to 4 KiB; [`Allocator::alloc_aligned`]
//!   picks a class that gives the alignment asked for, so buffers can serve
//!   `O_DIRECT` reads.
//! * **[`AllocatorMetrics`]**: chunks and bytes mapped, bytes in use,
//!   per-class counts, cache hits and misses, cross-thread returns.
//! * **[`UnpooledAllocator`]** behind the same [`Allocator`] API, so tests
//!   and benches can compare the two.
//!
//! Threading: allocators are `Copy + Send + Sync` handles; buffers are
//! `Send + Sync` values that may be dropped on any thread.
//!
//! ```
//! use wharf_buf::{Allocator, PoolConfig, PooledAllocator};
//! use bytes::BufMut;
//!
//! let pool = Allocator::from(PooledAllocator::new(PoolConfig::default()));
//! let mut buf = pool.buffer(1024);
//! buf.put_slice(b"hello");
//! assert_eq!(pool.metrics().bytes_in_use, 1024);
//! drop(buf);
//! assert_eq!(pool.metrics().bytes_in_use, 0);
//! ```

mod allocator;
mod arena;
mod byte_buf;
mod chunk;
mod frozen;
mod huge;
mod local;
#[cfg(all(test, loom))]
mod loom_tests;
mod memory;
mod metrics;
mod pool;
mod returns;
mod size_class;
mod sync;
mod sys;
mod thread_cache;
mod unpooled;

pub use allocator::{Allocator, MAX_CAPACITY};
pub use byte_buf::ByteBuf;
pub use frozen::FrozenBuf;
pub use metrics::{AllocatorMetrics, ClassMetrics};
pub use pool::{PoolConfig, PooledAllocator};
pub use unpooled::UnpooledAllocator;
#[cfg(test)]
mod layout_tests {
    /// The buffer is moved through every pipeline: keep it small.
    #[test]
    fn a_byte_buf_is_four_words() {
        assert_eq!(std::mem::size_of::<crate::ByteBuf>(), 32);
        assert_eq!(std::mem::size_of::<crate::FrozenBuf>(), 24);
    }
}
