//! What an idle connection costs the server in heap memory (issue 12,
//! goal 4): a single-reactor echo server accepts a thousand connections
//! and echoes one byte on each; the heap the process holds after that,
//! less what it held before, is divided among them, and its live
//! allocations are listed by size. Every allocation of the process is
//! counted (a counting global allocator); the clients' sockets allocate
//! nothing and their `Vec` is made beforehand, so what grows is the
//! server's. The buffer pool's memory is not on the heap: it must hold no
//! buffer per idle connection.
//!
//! The bound is on heap bytes, not on resident memory, so that it does not
//! move with the kernel or the machine: what malloc holds for each live
//! allocation (its usable size and its 8-byte header), the connection
//! slab's share included (1 001 of its 1 024 entries are used here).
//! `many_connections` prints the resident figure for 10 000 connections.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use wharf::buf::Allocator;
use wharf::transport::handlers::Echo;
use wharf::{Pipeline, ReactorMode, ServerBootstrap, Trigger};

/// Connections held idle at once.
const CONNECTIONS: usize = 1_000;

/// Heap bytes per idle connection the server may hold: issue 12's goal
/// of half a KiB.
const BOUND: isize = 512;

/// Size classes counted apart, 16 bytes wide; the last takes the rest.
const CLASSES: usize = 256;

/// Counts what malloc holds for every live allocation of the process.
struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static BY_CLASS: [AtomicIsize; CLASSES] = [const { AtomicIsize::new(0) }; CLASSES];

/// What malloc holds for the live allocation at `ptr`: its usable size
/// and its header.
fn held(ptr: *mut u8) -> isize {
    // SAFETY: `ptr` came from the system allocator and is not freed yet.
    let usable = unsafe { libc::malloc_usable_size(ptr.cast()) };
    (usable + 8) as isize
}

fn count(ptr: *mut u8, sign: isize) {
    let bytes = held(ptr);
    HELD.fetch_add(sign * bytes, Ordering::Relaxed);
    LIVE.fetch_add(sign, Ordering::Relaxed);
    BY_CLASS[(bytes as usize / 16).min(CLASSES - 1)].fetch_add(sign, Ordering::Relaxed);
}

// SAFETY: every call goes to `System` unchanged; the counts are atomics
// and allocate nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(ptr, 1);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(ptr, -1);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(ptr, -1);
        // SAFETY: forwarded with the caller's guarantees.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        count(if new.is_null() { ptr } else { new }, 1);
        new
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Heap held, allocations live, and live allocations by size class.
fn snapshot() -> (isize, isize, Vec<isize>) {
    (
        HELD.load(Ordering::Relaxed),
        LIVE.load(Ordering::Relaxed),
        BY_CLASS.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
    )
}

fn echo(stream: &mut TcpStream) {
    stream.write_all(b"x").expect("write");
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).expect("read the echo");
    assert_eq!(&byte, b"x", "the echo");
}

#[test]
fn an_idle_connection_holds_little_heap() {
    let pool = Allocator::pooled();
    let server = ServerBootstrap::new()
        .mode(ReactorMode::Single)
        .trigger(Trigger::Edge)
        .allocator(pool)
        .child_handler(|| Pipeline::bytes(Echo))
        .bind("127.0.0.1:0")
        .expect("bind");
    let addr = server.local_addr();
    // Warm up: what the loop makes once, with its first channel.
    echo(&mut TcpStream::connect(addr).expect("connect"));
    common::wait_until(Duration::from_secs(10), "the warm-up to close", || {
        server.connections() == 0
    });

    let mut clients: Vec<TcpStream> = Vec::with_capacity(CONNECTIONS);
    let (held_before, live_before, classes_before) = snapshot();
    let in_use_before = pool.metrics().bytes_in_use;
    for _ in 0..CONNECTIONS {
        let mut stream = TcpStream::connect(addr).expect("connect");
        echo(&mut stream);
        clients.push(stream);
    }
    common::wait_until(Duration::from_secs(10), "every connection counted", || {
        server.connections() == CONNECTIONS
    });
    let (held_after, live_after, classes_after) = snapshot();
    let in_use_after = pool.metrics().bytes_in_use;

    let n = CONNECTIONS as isize;
    let per_connection = (held_after - held_before) / n;
    eprintln!(
        "heap per idle connection: {per_connection} bytes in {:.2} allocations",
        (live_after - live_before) as f64 / n as f64
    );
    for (class, (after, before)) in classes_after.iter().zip(&classes_before).enumerate() {
        let more = after - before;
        if more.abs() >= n / 2 {
            eprintln!("  {more:>6} more live allocations of {} bytes", class * 16);
        }
    }
    eprintln!("buffer pool in use: {in_use_before} -> {in_use_after} bytes");
    // The loop may hold the buffer of its last read; no connection holds one.
    assert!(
        in_use_after.saturating_sub(in_use_before) <= 64 << 10,
        "idle connections hold buffers of the pool: {in_use_before} -> {in_use_after} bytes in use"
    );
    assert!(
        per_connection <= BOUND,
        "an idle connection holds {per_connection} bytes of heap (bound {BOUND})"
    );
    drop(clients);
    common::wait_until(Duration::from_secs(10), "every connection closed", || {
        server.connections() == 0
    });
}
