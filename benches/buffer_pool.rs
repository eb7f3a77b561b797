//! Allocate a buffer (and write every byte, or not), free it: the pooled
//! allocator against mimalloc, the system allocator (`Vec<u8>` on glibc),
//! `bytes::BytesMut` and the unpooled allocator, for sizes from 64 B to
//! 1 MiB, with the free on the same thread and on another thread.
//!
//! Four groups: `same_thread` and `same_thread_fill`, `cross_thread` and
//! `cross_thread_fill`: allocated here in batches (of up to 256, see
//! [`batch_len`]), each batch sent to a thread that frees it; the time per
//! buffer is the allocating side's plus the freeing side's, which take
//! turns (see [`DropThread::run`]).
//!
//! mimalloc is called through its `GlobalAlloc` implementation on a
//! `MiMalloc` value, not made the global allocator: one process then runs
//! every contender under the same conditions, and the glibc `Vec` keeps
//! glibc. That is the work `Vec<u8>` does on a program whose
//! `#[global_allocator]` is `MiMalloc` (`Vec::with_capacity` ends in the
//! same `mi_malloc_aligned(size, 1)`, its drop in the same `mi_free`),
//! minus `Vec`'s capacity checks and the `__rust_alloc` shim, so if
//! anything this peer is a little faster than what the user gets.
//!
//! `cargo bench --bench buffer_pool` runs it all (about 8 minutes);
//! `cargo bench --bench buffer_pool -- same_thread/` one group,
//! `-- 'same_thread/wharf_pooled/4KiB'` one case. `WHARF_BENCH_SECS=5`
//! measures each case longer than the default 1 s.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::ptr::NonNull;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use crossbeam_channel::{Receiver, Sender, bounded};
use mimalloc::MiMalloc;
use wharf::buf::{Allocator, ByteBuf, PoolConfig, PooledAllocator, UnpooledAllocator};

const SIZES: [(usize, &str); 7] = [
    (64, "64B"),
    (1 << 10, "1KiB"),
    (4 << 10, "4KiB"),
    (16 << 10, "16KiB"),
    (64 << 10, "64KiB"),
    (256 << 10, "256KiB"),
    (1 << 20, "1MiB"),
];

/// One kind of buffer.
trait Contender: Copy + Send + 'static {
    type Buf: Send + 'static;
    /// A buffer of `size` bytes, unwritten.
    fn alloc(self, size: usize) -> Self::Buf;
    /// A buffer of `size` bytes, every one written.
    fn fill(self, size: usize) -> Self::Buf;
    /// Lets the buffer's bytes escape (so neither the allocation nor the
    /// fill can be elided), then drops the buffer.
    ///
    /// Only the data pointer escapes: `black_box(&buf)` would pin the
    /// handle itself to the stack and measure the copy of a freshly written
    /// struct (a store-forwarding stall), and reading a byte back right
    /// after the `memset` measures a stall that depends on the block's
    /// alignment; neither is the allocator.
    fn consume(buf: Self::Buf);
}

#[derive(Clone, Copy)]
struct SystemVec;

impl Contender for SystemVec {
    type Buf = Vec<u8>;

    #[inline]
    fn alloc(self, size: usize) -> Vec<u8> {
        Vec::with_capacity(size)
    }

    #[inline]
    fn fill(self, size: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(size);
        v.put_bytes(0xA5, size);
        v
    }

    #[inline]
    fn consume(buf: Vec<u8>) {
        black_box(buf.as_ptr());
    }
}

/// `size` bytes from mimalloc, freed by mimalloc (see the module docs).
struct MiBuf {
    ptr: NonNull<u8>,
    size: usize,
}

// SAFETY: the buffer is the only handle to its allocation, and mimalloc
// frees memory from any thread.
unsafe impl Send for MiBuf {}

impl Drop for MiBuf {
    #[inline]
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.size, 1).expect("a valid layout");
        // SAFETY: `ptr` came from `MiMalloc.alloc` with this layout and is
        // freed once, here.
        unsafe { MiMalloc.dealloc(self.ptr.as_ptr(), layout) };
    }
}

#[derive(Clone, Copy)]
struct Mimalloc;

impl Contender for Mimalloc {
    type Buf = MiBuf;

    #[inline]
    fn alloc(self, size: usize) -> MiBuf {
        let layout = Layout::from_size_align(size, 1).expect("a valid layout");
        // SAFETY: the layout's size is not zero (every size above is).
        let ptr = unsafe { MiMalloc.alloc(layout) };
        let ptr = NonNull::new(ptr).expect("mimalloc out of memory");
        MiBuf { ptr, size }
    }

    #[inline]
    fn fill(self, size: usize) -> MiBuf {
        let buf = self.alloc(size);
        // SAFETY: the allocation holds `size` bytes and is ours alone.
        unsafe { buf.ptr.as_ptr().write_bytes(0xA5, size) };
        buf
    }

    #[inline]
    fn consume(buf: MiBuf) {
        black_box(buf.ptr.as_ptr());
    }
}

#[derive(Clone, Copy)]
struct BytesMutBuf;

impl Contender for BytesMutBuf {
    type Buf = BytesMut;

    #[inline]
    fn alloc(self, size: usize) -> BytesMut {
        BytesMut::with_capacity(size)
    }

    #[inline]
    fn fill(self, size: usize) -> BytesMut {
        let mut b = BytesMut::with_capacity(size);
        b.put_bytes(0xA5, size);
        b
    }

    #[inline]
    fn consume(buf: BytesMut) {
        black_box(buf.as_ptr());
    }
}

#[derive(Clone, Copy)]
struct Wharf(Allocator);

impl Contender for Wharf {
    type Buf = ByteBuf;

    #[inline]
    fn alloc(self, size: usize) -> ByteBuf {
        self.0.buffer(size)
    }

    #[inline]
    fn fill(self, size: usize) -> ByteBuf {
        let mut b = self.0.buffer(size);
        b.put_bytes(0xA5, size);
        b
    }

    #[inline]
    fn consume(buf: ByteBuf) {
        black_box(buf.as_ptr());
    }
}

fn measurement_time() -> Duration {
    let secs = std::env::var("WHARF_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(1.0);
    Duration::from_secs_f64(secs)
}

/// The contenders, each with what it is called in the results, for one
/// group. `$run` is called as `$run(contender, name)`.
macro_rules! for_each_contender {
    ($pooled:expr, $unpooled:expr, $run:expr) => {{
        $run(Wharf($pooled), "wharf_pooled");
        $run(Mimalloc, "mimalloc");
        $run(SystemVec, "vec");
        $run(BytesMutBuf, "bytes_mut");
        $run(Wharf($unpooled), "wharf_unpooled");
    }};
}

fn same_thread_group(c: &mut Criterion, group_name: &str, fill: bool) {
    let mut group = c.benchmark_group(group_name);
    group.measurement_time(measurement_time());
    group.warm_up_time(Duration::from_millis(300));
    let pooled = PooledAllocator::new(PoolConfig::default()).into();
    let unpooled = UnpooledAllocator::new().into();
    for (size, label) in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        for_each_contender!(pooled, unpooled, |contender, name| {
            bench_same_thread(&mut group, contender, name, size, label, fill)
        });
    }
    group.finish();
}

fn bench_same_thread<C: Contender>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    contender: C,
    name: &str,
    size: usize,
    label: &str,
    fill: bool,
) {
    group.bench_with_input(BenchmarkId::new(name, label), &size, |b, &size| {
        if fill {
            b.iter(|| C::consume(contender.fill(size)));
        } else {
            b.iter(|| C::consume(contender.alloc(size)));
        }
    });
}

fn same_thread(c: &mut Criterion) {
    same_thread_group(c, "same_thread", false);
}

fn same_thread_fill(c: &mut Criterion) {
    same_thread_group(c, "same_thread_fill", true);
}

/// A thread that frees the batches of buffers it is sent, times that, and
/// sends the empty batch back for reuse (so no batch is allocated while
/// measuring).
struct DropThread<T: Send + 'static> {
    tx: Option<Sender<Vec<T>>>,
    back: Receiver<(Vec<T>, Duration)>,
    handle: Option<thread::JoinHandle<()>>,
}

impl<T: Send + 'static> DropThread<T> {
    fn spawn(consume: fn(T)) -> DropThread<T> {
        let (tx, rx) = bounded::<Vec<T>>(1);
        let (back_tx, back) = bounded(1);
        let handle = thread::spawn(move || {
            for mut batch in rx {
                let start = Instant::now();
                batch.drain(..).for_each(consume);
                let _ = back_tx.send((batch, start.elapsed()));
            }
        });
        DropThread {
            tx: Some(tx),
            back,
            handle: Some(handle),
        }
    }

    /// Runs `make` `iters` times here, `batch` at a time, and frees the
    /// buffers on the other thread; returns the time spent allocating
    /// here plus the time spent freeing there. The two sides take turns,
    /// so neither is slowed by the other's work on this 2-core machine,
    /// and the hand-over and the wake-ups are left out: what remains is
    /// what the allocator costs on each side, coherence misses included
    /// (the freeing side touches blocks the allocating side used, and
    /// the other way round).
    fn run(&self, iters: u64, batch: usize, mut make: impl FnMut() -> T) -> Duration {
        let tx = self.tx.as_ref().expect("drop thread running");
        let mut total = Duration::ZERO;
        let mut buffers = Vec::with_capacity(batch);
        let mut left = iters;
        while left > 0 {
            let n = left.min(batch as u64);
            let start = Instant::now();
            buffers.extend((0..n).map(|_| make()));
            total += start.elapsed();
            tx.send(buffers).expect("drop thread alive");
            let (empty, freeing) = self.back.recv().expect("drop thread alive");
            buffers = empty;
            total += freeing;
            left -= n;
        }
        total
    }
}

impl<T: Send + 'static> Drop for DropThread<T> {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Buffers handed over at a time: enough that timing a batch costs well
/// under a nanosecond a buffer, at most 16 MiB in flight.
fn batch_len(size: usize) -> usize {
    ((16 << 20) / size).clamp(16, 256)
}

fn cross_thread_group(c: &mut Criterion, group_name: &str, fill: bool) {
    let mut group = c.benchmark_group(group_name);
    group.measurement_time(measurement_time());
    group.warm_up_time(Duration::from_millis(300));
    let pooled = PooledAllocator::new(PoolConfig::default()).into();
    let unpooled = UnpooledAllocator::new().into();
    for (size, label) in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        for_each_contender!(pooled, unpooled, |contender, name| {
            bench_cross_thread(&mut group, contender, name, size, label, fill)
        });
    }
    group.finish();
}

fn bench_cross_thread<C: Contender>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    contender: C,
    name: &str,
    size: usize,
    label: &str,
    fill: bool,
) {
    let sink = DropThread::spawn(C::consume);
    group.bench_with_input(BenchmarkId::new(name, label), &size, |b, &size| {
        b.iter_custom(|iters| {
            if fill {
                sink.run(iters, batch_len(size), || contender.fill(size))
            } else {
                sink.run(iters, batch_len(size), || contender.alloc(size))
            }
        });
    });
}

fn cross_thread(c: &mut Criterion) {
    cross_thread_group(c, "cross_thread", false);
}

fn cross_thread_fill(c: &mut Criterion) {
    cross_thread_group(c, "cross_thread_fill", true);
}

criterion_group!(
    benches,
    same_thread,
    same_thread_fill,
    cross_thread,
    cross_thread_fill
);
criterion_main!(benches);
