//! wharf: a Netty-style reactor networking framework for Linux.
//!
//! This facade re-exports the member crates, so an application depends on
//! `wharf` alone:
//!
//! * [`buf`]: the pooled direct-buffer allocator and [`ByteBuf`](buf::ByteBuf).
//!
//! `use wharf::prelude::*;` brings the names most programs need.

pub use wharf_buf as buf;

/// The names most programs need, in one `use`.
pub mod prelude {
    pub use wharf_buf::{Allocator, ByteBuf, FrozenBuf, PoolConfig, PooledAllocator};
}
