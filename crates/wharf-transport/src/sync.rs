//! The atomics of the cross-thread paths, from `std` or, under
//! `--cfg loom`, from loom, so that the same code is model-checked (tokio's
//! facade, in small).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
