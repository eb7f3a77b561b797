//! The synchronization of the cross-thread paths (a block freed on another
//! thread going back to its owner, and the hand-over when the owner thread
//! exits) from `std` or, under `--cfg loom`, from loom, so that the code
//! that is model-checked is the code that runs (tokio's facade, in small;
//! wharf-transport has the same).
//!
//! Only the modules on those paths use it: `returns` (the return stack's
//! one word) and `pool` (the locks of the arena and of the slots, which
//! order a slot's release before its reuse). Counters that only feed the
//! metrics stay `std` atomics.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicPtr, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
