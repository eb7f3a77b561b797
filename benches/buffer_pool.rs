//! Allocate, write every byte, free: the pooled allocator against the
//! system allocator (`Vec<u8>`), `bytes::BytesMut` and the unpooled
//! allocator, for sizes from 64 B to 1 MiB, with the free on the same thread
//! and on another thread.
//!
//! `cargo bench --bench buffer_pool` runs it all (about 3 minutes);
//! `cargo bench --bench buffer_pool -- same_thread/4KiB` one size.
//! `WHARF_BENCH_SECS=5` measures each case longer than the default 1 s.

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use crossbeam_channel::{Sender, bounded};
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

/// One kind of buffer: allocate `size` bytes and fill them.
trait Contender: Copy + Send + 'static {
    type Buf: Send + 'static;
    const NAME: &'static str;
    fn fill(self, size: usize) -> Self::Buf;
    /// Lets the buffer's bytes escape (so the fill cannot be elided), then
    /// drops the buffer.
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
    const NAME: &'static str = "vec";

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

#[derive(Clone, Copy)]
struct BytesMutBuf;

impl Contender for BytesMutBuf {
    type Buf = BytesMut;
    const NAME: &'static str = "bytes_mut";

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
    const NAME: &'static str = "wharf";

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

fn bench_same_thread<C: Contender>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    contender: C,
    name: &str,
    size: usize,
    label: &str,
) {
    group.bench_with_input(BenchmarkId::new(name, label), &size, |b, &size| {
        b.iter(|| C::consume(contender.fill(size)));
    });
}

fn same_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("same_thread");
    group.measurement_time(measurement_time());
    group.warm_up_time(Duration::from_millis(300));
    let pooled = Wharf(PooledAllocator::new(PoolConfig::default()).into());
    let unpooled = Wharf(UnpooledAllocator::new().into());
    for (size, label) in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        bench_same_thread(&mut group, SystemVec, SystemVec::NAME, size, label);
        bench_same_thread(&mut group, BytesMutBuf, BytesMutBuf::NAME, size, label);
        bench_same_thread(&mut group, pooled, "wharf_pooled", size, label);
        bench_same_thread(&mut group, unpooled, "wharf_unpooled", size, label);
    }
    group.finish();
}

/// A thread that drops whatever buffers it is sent, and says when it has
/// caught up.
struct DropThread<T: Send + 'static> {
    tx: Option<Sender<Message<T>>>,
    handle: Option<thread::JoinHandle<()>>,
}

enum Message<T> {
    Drop(T),
    Sync(Sender<()>),
}

impl<T: Send + 'static> DropThread<T> {
    fn spawn(consume: fn(T)) -> DropThread<T> {
        let (tx, rx) = bounded::<Message<T>>(256);
        let handle = thread::spawn(move || {
            for message in rx {
                match message {
                    Message::Drop(buf) => consume(buf),
                    Message::Sync(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        DropThread {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    /// Runs `fill` `iters` times here and drops the buffers on the other
    /// thread; returns the time until the last one is dropped.
    fn run(&self, iters: u64, mut fill: impl FnMut() -> T) -> Duration {
        let tx = self.tx.as_ref().expect("drop thread running");
        let (done_tx, done_rx) = bounded(1);
        let start = Instant::now();
        for _ in 0..iters {
            tx.send(Message::Drop(fill())).expect("drop thread alive");
        }
        tx.send(Message::Sync(done_tx)).expect("drop thread alive");
        done_rx.recv().expect("drop thread alive");
        start.elapsed()
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

fn bench_cross_thread<C: Contender>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    sink: &DropThread<C::Buf>,
    contender: C,
    name: &str,
    size: usize,
    label: &str,
) {
    group.bench_with_input(BenchmarkId::new(name, label), &size, |b, &size| {
        b.iter_custom(|iters| sink.run(iters, || contender.fill(size)));
    });
}

fn cross_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("cross_thread");
    group.measurement_time(measurement_time());
    group.warm_up_time(Duration::from_millis(300));
    let pooled = Wharf(PooledAllocator::new(PoolConfig::default()).into());
    let unpooled = Wharf(UnpooledAllocator::new().into());
    let vec_sink = DropThread::spawn(SystemVec::consume);
    let bytes_sink = DropThread::spawn(BytesMutBuf::consume);
    let wharf_sink = DropThread::spawn(Wharf::consume);
    for (size, label) in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        bench_cross_thread(
            &mut group,
            &vec_sink,
            SystemVec,
            SystemVec::NAME,
            size,
            label,
        );
        bench_cross_thread(
            &mut group,
            &bytes_sink,
            BytesMutBuf,
            BytesMutBuf::NAME,
            size,
            label,
        );
        bench_cross_thread(&mut group, &wharf_sink, pooled, "wharf_pooled", size, label);
        bench_cross_thread(
            &mut group,
            &wharf_sink,
            unpooled,
            "wharf_unpooled",
            size,
            label,
        );
    }
    group.finish();
}

criterion_group!(benches, same_thread, cross_thread);
criterion_main!(benches);
