//! What one connection's structures weigh (issue 12, goal 4): bounds on
//! their sizes, so that a field added inline to every connection is a
//! decision, not an accident. `tests/idle_footprint.rs` measures the heap
//! an idle connection holds; docs/performance.md has the breakdown.

use std::mem::size_of;

use crate::channel::codec::RawBytes;
use crate::channel::connection::{ConnCore, Connection};
use crate::channel::local::LocalPipeline;
use crate::channel::shared::ChannelShared;
use crate::handlers::Echo;
use crate::reactor::event_loop::Slot;
use crate::reactor::timer_queue::TimerId;

/// `size_of::<T>()` is at most `bound` (debug builds, where mio's sockets
/// carry a selector id, are the larger).
fn at_most<T>(bound: usize) {
    let size = size_of::<T>();
    eprintln!("{size:>4} bytes  {}", std::any::type_name::<T>());
    assert!(
        size <= bound,
        "{} is {size} bytes (bound {bound})",
        std::any::type_name::<T>()
    );
}

#[test]
fn a_connection_is_small() {
    // The slab entry: a connection and its generation.
    at_most::<(u32, Slot)>(240);
    at_most::<Connection>(232);
    at_most::<ConnCore>(208);
    // The Arc'd state other threads see.
    at_most::<ChannelShared>(128);
    // The boxed pipeline of a bytes echo: the cumulation, and a pointer
    // for held messages.
    at_most::<LocalPipeline<RawBytes, Echo>>(40);
    assert_eq!(size_of::<Option<TimerId>>(), size_of::<TimerId>());
}
