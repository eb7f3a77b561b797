//! Decoding the commands a key-value server sees most costs no heap
//! allocation per command: the arguments of `GET key` and `SET key value`
//! are held inline in the [`Command`], and each is a view of the input it
//! arrived in, as are those of an inline command without quotes (`PING`
//! as `redis-benchmark`'s `PING_INLINE` sends it). What is left is one small allocation per input buffer (the
//! shared claim that its views hold, in `wharf-buf`), not one per
//! command. Counted by a global allocator that counts this thread's
//! allocations while asked to.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use wharf_codec::resp::{Command, RespCodec};
use wharf_transport::Codec;
use wharf_transport::buf::{Allocator, ByteBuf};

/// The system allocator, counting the allocations of a thread that asked.
struct Counting;

thread_local! {
    /// This thread's count, while it counts.
    static COUNT: Cell<Option<u64>> = const { Cell::new(None) };
}

fn note() {
    // `try_with`: a thread being torn down has no locals any more.
    let _ = COUNT.try_with(|c| c.set(c.get().map(|n| n + 1)));
}

// SAFETY: every call goes to `System` unchanged; counting touches only a
// const-initialised thread-local `Cell`, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract is passed on to `System`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as `alloc`; `ptr` and `layout` come from this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(Some(0)));
    f();
    COUNT.with(|c| c.replace(None)).unwrap_or(0)
}

/// `requests` in one pooled input buffer, as one read would bring them.
fn input(requests: &[u8]) -> ByteBuf {
    let mut buf = Allocator::default().buffer(requests.len());
    buf.extend_from_slice(requests);
    buf
}

#[test]
fn pipelined_get_set_and_ping_cost_no_allocation_per_command() {
    const PIPELINE: usize = 16;
    let mut requests = Vec::new();
    for _ in 0..PIPELINE / 4 {
        requests.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n");
        requests.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nxxx\r\n");
        requests.extend_from_slice(b"PING\r\n");
        requests.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nxxx\r\n");
    }
    let mut codec = RespCodec::new();
    let mut out: Vec<Command> = Vec::with_capacity(PIPELINE);
    // Warm up the thread's buffer cache.
    let mut warm = input(&requests);
    codec.decode(&mut warm, &mut out).unwrap();
    out.clear();

    let mut buf = input(&requests);
    let n = allocations(|| {
        codec.decode(&mut buf, &mut out).unwrap();
        out.clear();
    });
    assert!(buf.is_empty());
    // The first view split off the input makes it shared: one claim.
    assert!(n <= 1, "{n} allocations for {PIPELINE} commands");
}
