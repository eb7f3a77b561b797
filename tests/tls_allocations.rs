//! The steady state of a TLS channel costs (almost) no heap allocation:
//! once a connection is established and warm, records are opened in place
//! in its pooled input buffer and sealed in place into pooled batches.
//! Messages of one record each cost the loop thread no `malloc` at all;
//! longer ones cost at most one small allocation per input buffer a
//! partial record is split from (the shared claim on the buffer, in
//! `wharf-buf`), never one per record. Counted by a global allocator that
//! counts the allocations of threads that asked for it (the loop thread,
//! from the handler's `on_active`).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use common::pattern;
use common::tls::{self, Pki};
use wharf::prelude::*;

/// The system allocator, counting the allocations of marked threads.
struct Counting;

/// One count per test (the tests of this file run side by side).
static COUNTED: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

thread_local! {
    /// Which count this thread's allocations go to, if any.
    static MARKED: Cell<Option<usize>> = const { Cell::new(None) };
}

fn note() {
    // `try_with`: a thread being torn down has no locals any more.
    if let Ok(Some(count)) = MARKED.try_with(Cell::get) {
        COUNTED[count].fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call goes to `System` unchanged; counting touches only a
// const-initialised thread-local `Cell` and an atomic, neither of which
// allocates.
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
        // SAFETY: `ptr` and `layout` come from this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// [`Echo`](wharf::transport::handlers::Echo) that marks its loop thread
/// for counting (into its count) once its channel is established.
struct MarkingEcho(usize);

impl Handler for MarkingEcho {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        MARKED.with(|m| m.set(Some(self.0)));
    }

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
        if msg.starts_with(CONTROL) {
            // The positive control: one allocation the count must see.
            std::hint::black_box(Vec::<u8>::with_capacity(64));
        }
        ctx.write(msg);
    }

    fn on_read_complete(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        ctx.flush();
    }
}

/// A message on which the handler allocates, to show the count works.
const CONTROL: &[u8] = b"allocate!";

/// Sends `message` and reads its echo back whole.
fn round_trip(stream: &mut tls::TlsStream, message: &[u8], echo: &mut [u8]) {
    stream.write_all(message).expect("send");
    stream.flush().expect("flush");
    stream.read_exact(echo).expect("echo");
    assert!(echo == message, "the echo differs from what was sent");
}

/// Echoes `messages` over a warm TLS channel of a single-reactor server
/// (pooled buffers, the defaults: the handler runs on the loop thread,
/// the thread that gets marked): the loop thread's heap allocations while
/// it echoes them `rounds` times.
fn allocations_echoing(count: usize, messages: &[Vec<u8>], rounds: usize) -> u64 {
    let pki = Pki::new(&format!("alloc{count}"), &["alloc.test"]);
    let server = ServerBootstrap::new()
        .thread_name(format!("tls-alloc{count}"))
        .tls(pki.server("alloc.test"))
        .child_handler(move || Pipeline::bytes(MarkingEcho(count)))
        .bind("127.0.0.1:0")
        .expect("bind");
    let mut stream =
        tls::connect(server.local_addr(), pki.rustls_client(), "alloc.test").expect("handshake");
    let longest = messages.iter().map(Vec::len).max().unwrap_or(0);
    let mut echo = vec![0; longest.max(CONTROL.len())];
    // Warm up: the session ticket, the adaptive receive size, the pool's
    // thread cache and the queues reach their working sizes.
    for _ in 0..50 {
        for m in messages {
            round_trip(&mut stream, m, &mut echo[..m.len()]);
        }
    }
    let before = COUNTED[count].load(Ordering::Relaxed);
    for _ in 0..rounds {
        for m in messages {
            round_trip(&mut stream, m, &mut echo[..m.len()]);
        }
    }
    let allocations = COUNTED[count].load(Ordering::Relaxed) - before;
    let before_control = COUNTED[count].load(Ordering::Relaxed);
    round_trip(&mut stream, CONTROL, &mut echo[..CONTROL.len()]);
    assert!(
        COUNTED[count].load(Ordering::Relaxed) > before_control,
        "the handler's own allocation was not counted: the test could not fail"
    );
    allocations
}

#[test]
fn messages_of_one_record_cost_no_heap_allocation() {
    // 100 B, 4 KiB, and 16 000 B (one record: its plaintext limit is
    // 16 KiB); each arrives as one whole record per read.
    let messages: Vec<Vec<u8>> = [100, 4 << 10, 16_000]
        .iter()
        .enumerate()
        .map(|(i, &len)| pattern(i as u64, len))
        .collect();
    let rounds = 300;
    let allocations = allocations_echoing(0, &messages, rounds);
    assert_eq!(
        allocations,
        0,
        "{allocations} heap allocations on the loop thread for {} echoed messages",
        rounds * messages.len()
    );
}

#[test]
fn longer_messages_cost_at_most_one_allocation_per_input_buffer() {
    // 40 KiB, 64 KiB and 256 KiB: 3, 4 and 16 records, read in 64 KiB
    // buffers that end in a partial record.
    let messages: Vec<Vec<u8>> = [40 << 10, 64 << 10, 256 << 10]
        .iter()
        .enumerate()
        .map(|(i, &len)| pattern(i as u64, len))
        .collect();
    let rounds = 100;
    let allocations = allocations_echoing(1, &messages, rounds) as usize;
    let records: usize = messages.iter().map(|m| m.len().div_ceil(16 << 10)).sum();
    let bytes: usize = messages.iter().map(Vec::len).sum();
    // Each message may start a buffer of its own, and each 64 KiB of
    // input fills one.
    let buffers = rounds * (messages.len() + bytes.div_ceil(64 << 10));
    assert!(
        allocations <= buffers,
        "{allocations} heap allocations on the loop thread for {} echoed messages \
         ({} records, at most {buffers} input buffers)",
        rounds * messages.len(),
        rounds * records,
    );
}
