//! Buffers crossing threads: a 4-thread stress where every buffer is freed
//! on a thread other than the one that allocated it; buffers that outlive
//! the thread that allocated them (dropped on the main thread, on a thread
//! that never allocated, while their owner is still alive, racing the
//! owner's exit, or in a thread-local destructor after the thread's cache
//! is gone). In every case nothing leaks and the pool can unmap all its
//! memory. Also: metrics read during cross-thread traffic stay consistent.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use bytes::{BufMut, Bytes};
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use wharf_buf::{Allocator, ByteBuf, FrozenBuf, PoolConfig, PooledAllocator};

const KIB: usize = 1024;
const CHUNK: usize = 1024 * KIB;
const THREADS: usize = 4;
/// Buffers each thread allocates; a multiple of `THREADS - 1` so that every
/// thread receives exactly as many as it sends.
const PER_THREAD: usize = 240;

fn fresh_pool() -> PooledAllocator {
    PooledAllocator::new(PoolConfig {
        chunk_size: CHUNK,
        ..PoolConfig::default()
    })
}

/// Identifies a buffer's contents: who wrote it, its sequence number, its
/// length. The bytes are `(i % 251) + tag` with an 8-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tag {
    from: usize,
    seq: usize,
    len: usize,
}

impl Tag {
    fn byte(self) -> u8 {
        (self.from * 31 + self.seq * 7) as u8
    }

    fn contents(self) -> Vec<u8> {
        let period: Vec<u8> = (0..251u8).map(|i| i.wrapping_add(self.byte())).collect();
        let mut out = Vec::with_capacity(self.len);
        while out.len() < self.len {
            let n = (self.len - out.len()).min(period.len());
            out.extend_from_slice(&period[..n]);
        }
        let header = [
            (self.from as u32).to_le_bytes(),
            (self.seq as u32).to_le_bytes(),
        ]
        .concat();
        let n = header.len().min(self.len);
        out[..n].copy_from_slice(&header[..n]);
        out
    }

    fn check(self, bytes: &[u8]) {
        assert_eq!(bytes.len(), self.len, "length of {self:?}");
        assert!(
            bytes == &self.contents()[..],
            "contents of {self:?} were corrupted"
        );
    }
}

/// Small deterministic generator (xorshift64*), so runs are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// 16 B .. 256 KiB, spread evenly over the powers of two; every 60th
    /// size is above the chunk size.
    fn size(&mut self, seq: usize) -> usize {
        if seq % 60 == 59 {
            return CHUNK + 1 + self.below(CHUNK / 2);
        }
        let base = 16usize << self.below(14);
        (base + self.below(base)).min(256 * KIB)
    }
}

enum Msg {
    Buf(ByteBuf, Tag),
    Frozen(FrozenBuf, Tag),
    Bytes(Bytes, Tag),
    /// A `split_to` head and the rest of its buffer, which share memory.
    Halves(ByteBuf, ByteBuf, Tag),
}

impl Msg {
    fn tag(&self) -> Tag {
        match self {
            Msg::Buf(_, t) | Msg::Frozen(_, t) | Msg::Bytes(_, t) | Msg::Halves(_, _, t) => *t,
        }
    }

    fn check_and_drop(self) {
        match self {
            Msg::Buf(buf, tag) => tag.check(&buf),
            Msg::Frozen(f, tag) => tag.check(&f),
            Msg::Bytes(b, tag) => tag.check(&b),
            Msg::Halves(head, tail, tag) => {
                assert!(!head.is_unique() || head.is_empty());
                let mut whole = head.to_vec();
                whole.extend_from_slice(&tail);
                tag.check(&whole);
            }
        }
    }
}

fn make(alloc: Allocator, tag: Tag) -> Msg {
    let data = tag.contents();
    // Some buffers start small and grow while being written.
    let mut buf = if tag.seq.is_multiple_of(5) {
        alloc.buffer(16)
    } else {
        alloc.buffer(tag.len)
    };
    buf.put_slice(&data);
    match tag.seq % 4 {
        0 => Msg::Buf(buf, tag),
        1 => Msg::Frozen(buf.freeze(), tag),
        2 => Msg::Bytes(Bytes::from(buf.freeze()), tag),
        _ => {
            let head = buf.split_to(tag.len / 2);
            Msg::Halves(head, buf, tag)
        }
    }
}

fn worker(me: usize, alloc: Allocator, senders: Vec<Sender<Msg>>, inbox: Receiver<Msg>) -> usize {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (me as u64 + 1));
    let mut received = 0;
    for seq in 0..PER_THREAD {
        let tag = Tag {
            from: me,
            seq,
            len: rng.size(seq),
        };
        let to = (me + 1 + seq % (THREADS - 1)) % THREADS;
        senders[to].send(make(alloc, tag)).expect("receiver alive");
        while let Ok(msg) = inbox.try_recv() {
            msg.check_and_drop();
            received += 1;
        }
    }
    // Once every thread has dropped its senders the inbox disconnects, so a
    // panicking thread ends this loop instead of hanging it.
    drop(senders);
    for msg in inbox.iter() {
        msg.check_and_drop();
        received += 1;
    }
    received
}

#[test]
fn buffers_freed_on_other_threads_all_come_back() {
    let pool = fresh_pool();
    let alloc = Allocator::from(pool);
    let (senders, inboxes): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| unbounded()).unzip();
    let handles: Vec<_> = inboxes
        .into_iter()
        .enumerate()
        .map(|(me, inbox)| {
            let senders = senders.clone();
            thread::spawn(move || worker(me, alloc, senders, inbox))
        })
        .collect();
    drop(senders);
    for handle in handles {
        let received = handle.join().expect("worker panicked");
        assert_eq!(received, PER_THREAD);
    }

    let m = pool.metrics();
    assert_eq!(m.bytes_in_use, 0, "{m:?}");
    assert_eq!(m.pending_returns, 0, "{m:?}");
    assert_eq!(m.huge_live, 0, "{m:?}");
    assert!(m.cross_thread_returns > 0, "{m:?}");
    assert_eq!(
        m.thread_caches, 0,
        "every worker's cache went with its thread"
    );
    assert_eq!(m.allocations, m.frees, "{m:?}");
    assert!(m.allocations >= (THREADS * PER_THREAD) as u64);
    assert!(m.classes.iter().all(|c| c.live == 0), "{:?}", m.classes);

    pool.set_retained_chunks(0);
    pool.trim_thread_cache();
    let m = pool.metrics();
    assert_eq!(m.chunks_mapped, 0, "{m:?}");
    assert_eq!(m.bytes_mapped, 0, "{m:?}");
}

/// What a thread allocates and hands over before it exits.
struct Batch {
    msgs: Vec<Msg>,
}

/// Allocates a mix of small, normal and huge buffers (and views of them).
fn allocate_batch(alloc: Allocator, from: usize) -> Batch {
    let sizes = [
        16,
        100,
        1000,
        4096,
        14 * KIB,
        16 * KIB + 1,
        64 * KIB,
        256 * KIB,
        CHUNK,
        CHUNK + 1,
        3 * CHUNK,
    ];
    let msgs = (0..64)
        .map(|seq| {
            let len = sizes[seq % sizes.len()];
            make(alloc, Tag { from, seq, len })
        })
        .collect();
    Batch { msgs }
}

fn check_and_drop(batch: Batch) {
    for msg in batch.msgs {
        msg.check_and_drop();
    }
}

/// Nothing in use or waiting, and all memory can go back to the OS.
fn assert_all_returned(pool: PooledAllocator) {
    let m = pool.metrics();
    assert_eq!(m.bytes_in_use, 0, "{m:?}");
    assert_eq!(m.pending_returns, 0, "{m:?}");
    assert_eq!(m.huge_live, 0, "{m:?}");
    assert_eq!(m.allocations, m.frees, "{m:?}");
    pool.set_retained_chunks(0);
    pool.trim_thread_cache();
    let m = pool.metrics();
    assert_eq!(m.chunks_mapped, 0, "{m:?}");
    assert_eq!(m.bytes_mapped, 0, "{m:?}");
}

#[test]
fn buffers_outliving_their_thread_are_freed_on_main() {
    let pool = fresh_pool();
    let alloc = Allocator::from(pool);
    let batch = thread::spawn(move || allocate_batch(alloc, 1))
        .join()
        .expect("allocating thread panicked");
    assert_eq!(pool.metrics().thread_caches, 0, "the owner's cache is gone");
    assert!(pool.metrics().bytes_in_use > 0);
    check_and_drop(batch);
    assert_all_returned(pool);
}

#[test]
fn buffers_outliving_their_thread_are_freed_on_a_thread_with_a_cache() {
    let pool = fresh_pool();
    let alloc = Allocator::from(pool);
    // The main thread has a cache of its own before the owner exits, so
    // the frees below go to the exited owner's return queue.
    let mine = alloc.buffer(100);
    let batch = thread::spawn(move || allocate_batch(alloc, 2))
        .join()
        .expect("allocating thread panicked");
    check_and_drop(batch);
    let m = pool.metrics();
    assert!(m.cross_thread_returns > 0, "{m:?}");
    assert_eq!(
        m.pending_returns, 0,
        "nobody will drain an exited thread's queue: {m:?}"
    );
    assert_eq!(m.bytes_in_use, mine.capacity() as u64);
    drop(mine);
    assert_all_returned(pool);
}

#[test]
fn buffers_outliving_their_thread_are_freed_on_a_thread_that_never_allocated() {
    let pool = fresh_pool();
    let alloc = Allocator::from(pool);
    let batch = thread::spawn(move || allocate_batch(alloc, 3))
        .join()
        .expect("allocating thread panicked");
    thread::spawn(move || check_and_drop(batch))
        .join()
        .expect("freeing thread panicked");
    assert_eq!(pool.metrics().thread_caches, 0);
    assert_all_returned(pool);
}

#[test]
fn buffers_freed_elsewhere_while_the_owner_lives_return_when_it_exits() {
    let pool = fresh_pool();
    let alloc = Allocator::from(pool);
    let (to_b, from_a) = unbounded::<Batch>();
    let (done_tx, done_rx) = unbounded::<()>();
    let b = thread::spawn(move || {
        for batch in from_a.iter() {
            check_and_drop(batch);
            done_tx.send(()).expect("owner alive");
        }
    });
    let a = thread::spawn(move || {
        let batch = allocate_batch(alloc, 4);
        // One block per message; those up to the chunk size are pooled
        // (and cached: `max_cached_size` defaults to the 1 MiB chunk).
        let pooled_blocks = batch.msgs.iter().filter(|m| m.tag().len <= CHUNK).count() as u64;
        to_b.send(batch).expect("freeing thread alive");
        done_rx.recv().expect("freeing thread finished");
        // Freed on B while A is alive and has not allocated since: the
        // blocks wait in A's return queue.
        let m = pool.metrics();
        assert_eq!(m.bytes_in_use, 0, "{m:?}");
        assert_eq!(m.pending_returns, pooled_blocks, "{m:?}");
        assert_eq!(m.cross_thread_returns, pooled_blocks, "{m:?}");
        drop(to_b);
    });
    a.join().expect("owner panicked");
    b.join().expect("freeing thread panicked");
    assert_all_returned(pool);
}

/// The owner exits while another thread (with a cache of its own) is still
/// freeing its blocks: each block must reach the arena whichever side wins
/// the race, so nothing is stranded in the exited owner's return queue.
#[test]
fn owner_exit_races_with_remote_frees() {
    enum ToB {
        Buf(ByteBuf),
        Sync,
    }
    let pool = fresh_pool();
    let alloc = Allocator::from(pool);
    let (to_b, b_inbox) = unbounded::<ToB>();
    let (ack_tx, ack_rx) = unbounded::<()>();
    let b = thread::spawn(move || {
        // B's cache (and slot) exist before any owner exits.
        drop(alloc.buffer(16));
        for msg in b_inbox.iter() {
            match msg {
                ToB::Buf(buf) => drop(buf),
                ToB::Sync => ack_tx.send(()).expect("main alive"),
            }
        }
    });
    for round in 0..100 {
        let owner_to_b = to_b.clone();
        let owner = thread::spawn(move || {
            for i in 0..24usize {
                let mut buf = alloc.buffer(if i.is_multiple_of(3) {
                    20 * KIB
                } else {
                    100 + i * 50
                });
                buf.put_u8(round as u8);
                owner_to_b.send(ToB::Buf(buf)).expect("B alive");
            }
            // Exit at once: B is likely still freeing these blocks.
        });
        owner.join().expect("owner panicked");
        to_b.send(ToB::Sync).expect("B alive");
        ack_rx.recv().expect("B acknowledged");
        let m = pool.metrics();
        assert_eq!(m.bytes_in_use, 0, "round {round}: {m:?}");
        assert_eq!(
            m.pending_returns, 0,
            "round {round}: stranded blocks: {m:?}"
        );
    }
    drop(to_b);
    b.join().expect("B panicked");
    assert_all_returned(pool);
}

/// Buffers dropped, and even allocated, in a thread-local destructor that
/// runs after the thread's pool cache has been torn down take the cacheless
/// path; nothing leaks and no cache is left behind.
#[test]
fn buffers_used_in_thread_local_destructors_do_not_leak() {
    struct Late {
        alloc: Option<Allocator>,
        held: Vec<Msg>,
        out: Option<Sender<Msg>>,
    }
    impl Drop for Late {
        fn drop(&mut self) {
            for msg in self.held.drain(..) {
                msg.check_and_drop();
            }
            if let (Some(alloc), Some(out)) = (self.alloc, self.out.take()) {
                // Allocate after the cache is gone, use, and free here...
                for seq in 0..8 {
                    make(
                        alloc,
                        Tag {
                            from: 9,
                            seq,
                            len: 500 + seq * 3000,
                        },
                    )
                    .check_and_drop();
                }
                // ...and hand some over to be freed on another thread.
                for seq in 8..16 {
                    let _ = out.send(make(
                        alloc,
                        Tag {
                            from: 9,
                            seq,
                            len: 700 * seq,
                        },
                    ));
                }
            }
        }
    }
    thread_local! {
        static LATE: RefCell<Late> = const {
            RefCell::new(Late { alloc: None, held: Vec::new(), out: None })
        };
    }

    let pool = fresh_pool();
    let alloc = Allocator::from(pool);
    let (out_tx, out_rx) = unbounded::<Msg>();
    thread::spawn(move || {
        // Registered before the pool's thread cache, so (destructors run in
        // reverse order) dropped after it.
        LATE.with(|late| late.borrow_mut().out = Some(out_tx));
        let batch = allocate_batch(alloc, 8);
        LATE.with(|late| {
            let mut late = late.borrow_mut();
            late.alloc = Some(alloc);
            late.held = batch.msgs;
        });
    })
    .join()
    .expect("thread panicked");
    let handed_over: Vec<Msg> = out_rx.try_iter().collect();
    assert_eq!(handed_over.len(), 8);
    for msg in handed_over {
        msg.check_and_drop();
    }
    let m = pool.metrics();
    assert_eq!(m.thread_caches, 1, "only the main thread's cache: {m:?}");
    assert!(m.classes.iter().all(|c| c.live == 0), "{:?}", m.classes);
    assert_all_returned(pool);
}

/// `metrics()` is a snapshot "summed over all threads"; while blocks are
/// allocated on one thread and freed on another, no reading may show more
/// frees than allocations (which the unsigned counters would turn into
/// values near 2^64).
#[test]
fn metrics_stay_consistent_during_cross_thread_traffic() {
    const READS: usize = 5_000;
    let pool = fresh_pool();
    let alloc = Allocator::from(pool);
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = unbounded::<()>();
    let (release_tx, release_rx) = unbounded::<()>();
    let (buf_tx, buf_rx) = bounded::<ByteBuf>(64);

    // The producer's slot comes first, then idle threads' slots, then the
    // consumer's, so a reading visits the allocations before the frees.
    let producer = {
        let (stop, ready) = (stop.clone(), ready_tx.clone());
        thread::spawn(move || {
            drop(alloc.buffer(1000));
            ready.send(()).expect("main alive");
            while !stop.load(Ordering::Relaxed) {
                if buf_tx.send(alloc.buffer(1000)).is_err() {
                    break;
                }
            }
        })
    };
    ready_rx.recv().expect("producer ready");
    let idle: Vec<_> = (0..16)
        .map(|_| {
            let (ready, release) = (ready_tx.clone(), release_rx.clone());
            let handle = thread::spawn(move || {
                drop(alloc.buffer(16));
                ready.send(()).expect("main alive");
                let _ = release.recv();
            });
            ready_rx.recv().expect("idle thread ready");
            handle
        })
        .collect();
    let consumer = {
        let ready = ready_tx.clone();
        thread::spawn(move || {
            drop(alloc.buffer(16));
            ready.send(()).expect("main alive");
            for buf in buf_rx.iter() {
                drop(buf);
            }
        })
    };
    ready_rx.recv().expect("consumer ready");

    let mut inconsistent = None;
    for read in 0..READS {
        let m = pool.metrics();
        let bad_class = m.classes.iter().find(|c| c.live > c.allocations);
        if m.bytes_in_use > 1 << 40 || m.frees > m.allocations || bad_class.is_some() {
            inconsistent = Some((
                read,
                m.bytes_in_use,
                m.allocations,
                m.frees,
                bad_class.copied(),
            ));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    drop(release_tx);
    producer.join().expect("producer panicked");
    consumer.join().expect("consumer panicked");
    for handle in idle {
        handle.join().expect("idle thread panicked");
    }
    assert_eq!(
        inconsistent, None,
        "a metrics snapshot counted frees without their allocations \
         (read, bytes_in_use, allocations, frees, class)"
    );
    assert_all_returned(pool);
}
