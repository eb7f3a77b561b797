//! Model-based property tests: random sequences of `ByteBuf` / `FrozenBuf` /
//! `Bytes` operations on several live buffers at once, checked against a
//! `Vec<u8>` model after every step, for a small-chunk pool and for the
//! unpooled allocator; after each case nothing may remain in use or mapped.

use std::io::{Read, Write};

use bytes::{Buf, BufMut, Bytes};
use proptest::prelude::*;
use proptest::sample::Index;
use wharf_buf::{Allocator, ByteBuf, FrozenBuf, PoolConfig, PooledAllocator, UnpooledAllocator};

/// Chunk size of the pool under test: the smallest the pool accepts, so
/// that growth and large allocations reach the huge (own-mapping) path and
/// chunks get unmapped.
const CHUNK: usize = 64 * 1024;

/// A second, slightly larger chunk size (see `pooled_128k_buffers_match_the_model`).
const CHUNK_128K: usize = 128 * 1024;

/// Sizes around the class boundaries: the last 16-byte quantum class, the
/// last small class (14 KiB), the first page-run class (16 KiB), the chunk.
const BOUNDARIES: &[usize] = &[
    63,
    64,
    65,
    14 * 1024 - 1,
    14 * 1024,
    14 * 1024 + 1,
    16 * 1024 - 1,
    16 * 1024,
    16 * 1024 + 1,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    CHUNK_128K - 1,
    CHUNK_128K,
    CHUNK_128K + 1,
    200_000,
];

/// Bytes to write: `len` bytes of a pattern derived from `seed`, so that a
/// large write costs no strategy work and shrinks to a small one.
#[derive(Debug, Clone, Copy)]
struct Fill {
    seed: u8,
    len: usize,
}

impl Fill {
    fn bytes(self) -> Vec<u8> {
        (0..self.len)
            .map(|i| self.seed.wrapping_add((i as u8).wrapping_mul(31)) ^ (i >> 8) as u8)
            .collect()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Alloc(usize),
    PutSlice(Index, Fill),
    ExtendFromSlice(Index, Fill),
    IoWrite(Index, Fill),
    SpareCommit(Index, Fill),
    PutU8(Index, u8),
    /// Consumes up to `consume` bytes (leaving at least one), then writes
    /// the writable bytes plus up to `extra` more, capped at the reader
    /// index: the write fits only once the read bytes are discarded.
    WriteCompacting(Index, u8, usize, usize),
    /// The same, reserving the room instead of writing.
    ReserveCompacting(Index, usize, usize),
    GetU8(Index),
    Advance(Index, usize),
    CopyToSlice(Index, usize),
    IoRead(Index, usize),
    SplitTo(Index, usize),
    Split(Index),
    Reserve(Index, usize),
    DiscardReadBytes(Index),
    Truncate(Index, usize),
    Clear(Index),
    Copy(Index),
    Freeze(Index),
    SliceFrozen(Index, usize, usize),
    CloneFrozen(Index),
    AdvanceFrozen(Index, usize),
    IntoBytes(Index),
    DropBuf(Index),
    DropFrozen(Index),
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => Just(0usize),
        6 => 1usize..300,
        3 => proptest::sample::select(BOUNDARIES),
        1 => 300usize..70_000,
    ]
}

fn fill() -> impl Strategy<Value = Fill> {
    let len = prop_oneof![
        8 => 0usize..300,
        2 => 300usize..5_000,
        1 => proptest::sample::select(BOUNDARIES),
        1 => 5_000usize..70_000,
    ];
    (any::<u8>(), len).prop_map(|(seed, len)| Fill { seed, len })
}

/// A count of bytes to consume or keep, mostly small, sometimes beyond the
/// readable bytes (the operations clamp or saturate).
fn amount() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0usize..64, 2 => 0usize..5_000, 1 => 0usize..100_000]
}

fn op() -> impl Strategy<Value = Op> {
    let idx = any::<Index>;
    prop_oneof![
        6 => size().prop_map(Op::Alloc),
        4 => (idx(), fill()).prop_map(|(i, f)| Op::PutSlice(i, f)),
        3 => (idx(), fill()).prop_map(|(i, f)| Op::ExtendFromSlice(i, f)),
        3 => (idx(), fill()).prop_map(|(i, f)| Op::IoWrite(i, f)),
        3 => (idx(), fill()).prop_map(|(i, f)| Op::SpareCommit(i, f)),
        2 => (idx(), any::<u8>()).prop_map(|(i, b)| Op::PutU8(i, b)),
        2 => (idx(), any::<u8>(), amount(), amount())
            .prop_map(|(i, seed, consume, extra)| Op::WriteCompacting(i, seed, consume, extra)),
        1 => (idx(), amount(), amount())
            .prop_map(|(i, consume, extra)| Op::ReserveCompacting(i, consume, extra)),
        2 => idx().prop_map(Op::GetU8),
        3 => (idx(), amount()).prop_map(|(i, n)| Op::Advance(i, n)),
        2 => (idx(), amount()).prop_map(|(i, n)| Op::CopyToSlice(i, n)),
        2 => (idx(), amount()).prop_map(|(i, n)| Op::IoRead(i, n)),
        3 => (idx(), amount()).prop_map(|(i, n)| Op::SplitTo(i, n)),
        1 => idx().prop_map(Op::Split),
        3 => (idx(), prop_oneof![size(), proptest::sample::select(BOUNDARIES)])
            .prop_map(|(i, n)| Op::Reserve(i, n)),
        1 => idx().prop_map(Op::DiscardReadBytes),
        1 => (idx(), amount()).prop_map(|(i, n)| Op::Truncate(i, n)),
        1 => idx().prop_map(Op::Clear),
        1 => idx().prop_map(Op::Copy),
        2 => idx().prop_map(Op::Freeze),
        2 => (idx(), amount(), amount()).prop_map(|(i, a, b)| Op::SliceFrozen(i, a, b)),
        1 => idx().prop_map(Op::CloneFrozen),
        1 => (idx(), amount()).prop_map(|(i, n)| Op::AdvanceFrozen(i, n)),
        1 => idx().prop_map(Op::IntoBytes),
        2 => idx().prop_map(Op::DropBuf),
        2 => idx().prop_map(Op::DropFrozen),
    ]
}

/// Immutable views: a `FrozenBuf` or the `Bytes` it was turned into.
enum Frozen {
    Frozen(FrozenBuf),
    Bytes(Bytes),
}

impl Frozen {
    fn as_slice(&self) -> &[u8] {
        match self {
            Frozen::Frozen(f) => f,
            Frozen::Bytes(b) => b,
        }
    }
}

/// Indices and capacity of a buffer, for checking how an operation moved them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    read: usize,
    write: usize,
    cap: usize,
}

fn shape(buf: &ByteBuf) -> Shape {
    Shape {
        read: buf.reader_index(),
        write: buf.writer_index(),
        cap: buf.capacity(),
    }
}

fn check_buf(buf: &ByteBuf, model: &[u8]) -> Result<(), TestCaseError> {
    let s = shape(buf);
    prop_assert!(s.read <= s.write, "reader {} > writer {}", s.read, s.write);
    prop_assert!(s.write <= s.cap, "writer {} > capacity {}", s.write, s.cap);
    prop_assert_eq!(buf.len(), s.write - s.read);
    prop_assert_eq!(buf.len(), model.len());
    prop_assert_eq!(buf.is_empty(), model.is_empty());
    prop_assert_eq!(buf.writable_bytes(), s.cap - s.write);
    prop_assert_eq!(buf.remaining(), model.len());
    prop_assert!(&buf[..] == model, "buffer contents differ from the model");
    prop_assert!(buf.chunk() == model, "Buf::chunk differs from the model");
    Ok(())
}

/// Capacity of a fresh buffer for a request of `n` bytes, within the bounds
/// the crate documents (exact for the heap, class rounding for the pool).
fn check_fresh_capacity(alloc: &Allocator, n: usize, cap: usize) -> Result<(), TestCaseError> {
    let chunk = match alloc {
        Allocator::Pooled(pool) => pool.config().chunk_size,
        Allocator::Unpooled(_) => 0,
    };
    if n == 0 {
        prop_assert_eq!(cap, 0);
    } else if !alloc.is_pooled() {
        prop_assert_eq!(cap, n);
    } else if n <= 64 {
        prop_assert!(cap >= n && cap - n < 16, "request {n}: capacity {cap}");
    } else if n <= chunk {
        prop_assert!(
            cap >= n && (cap - n) * 5 <= cap,
            "request {n}: capacity {cap}"
        );
    } else {
        // A mapping of its own, or a freed one kept for reuse that is at
        // most twice as large.
        let own = n.next_multiple_of(4096);
        prop_assert!(
            cap >= own && cap <= 2 * own,
            "huge request {n}: capacity {cap}"
        );
    }
    Ok(())
}

/// How writing (or reserving room for) `k` bytes must move the indices:
/// in place if there is room after the writer index, by compaction if the
/// buffer as a whole has room, else by growing to at least `len + k`.
fn check_room_made(
    before: Shape,
    after: Shape,
    k: usize,
    written: usize,
) -> Result<(), TestCaseError> {
    let len = before.write - before.read;
    if before.cap - before.write >= k {
        prop_assert_eq!(
            after,
            Shape {
                read: before.read,
                write: before.write + written,
                cap: before.cap
            }
        );
    } else if len + k <= before.cap {
        prop_assert_eq!(
            after,
            Shape {
                read: 0,
                write: len + written,
                cap: before.cap
            }
        );
    } else {
        prop_assert_eq!((after.read, after.write), (0, len + written));
        prop_assert!(
            after.cap >= len + k,
            "grew to {} for {}",
            after.cap,
            len + k
        );
        prop_assert!(after.cap > before.cap, "growth must increase the capacity");
    }
    Ok(())
}

/// After consuming `n` bytes: the reader index moves by `n`; a buffer left
/// empty may instead restart both indices at 0.
fn check_consumed(before: Shape, after: Shape, n: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(after.cap, before.cap);
    let moved = Shape {
        read: before.read + n,
        ..before
    };
    let reset = Shape {
        read: 0,
        write: 0,
        cap: before.cap,
    };
    if moved.read == moved.write {
        prop_assert!(
            after == moved || after == reset,
            "{:?} -> {:?}",
            before,
            after
        );
    } else {
        prop_assert_eq!(after, moved);
    }
    Ok(())
}

/// Advances by up to `n` bytes but leaves at least one readable byte (so
/// the reader index stays where it is); returns the shape afterwards.
fn consume_leaving_one(
    buf: &mut ByteBuf,
    model: &mut Vec<u8>,
    n: usize,
) -> Result<Shape, TestCaseError> {
    let before = shape(buf);
    let n = n.min(model.len().saturating_sub(1));
    buf.advance(n);
    model.drain(..n);
    check_consumed(before, shape(buf), n)?;
    check_buf(buf, model)?;
    Ok(shape(buf))
}

fn write_op(buf: &mut ByteBuf, model: &mut Vec<u8>, op: &Op) -> Result<(), TestCaseError> {
    let before = shape(buf);
    match *op {
        Op::PutSlice(_, f) => {
            let data = f.bytes();
            buf.put_slice(&data);
            model.extend_from_slice(&data);
            check_room_made(before, shape(buf), data.len(), data.len())?;
        }
        Op::ExtendFromSlice(_, f) => {
            let data = f.bytes();
            buf.extend_from_slice(&data);
            model.extend_from_slice(&data);
            check_room_made(before, shape(buf), data.len(), data.len())?;
        }
        Op::IoWrite(_, f) => {
            let data = f.bytes();
            buf.write_all(&data).expect("io::Write into a ByteBuf");
            buf.flush().expect("flush");
            model.extend_from_slice(&data);
            check_room_made(before, shape(buf), data.len(), data.len())?;
        }
        Op::SpareCommit(_, f) => {
            let data = f.bytes();
            let spare = buf.spare_mut();
            prop_assert_eq!(spare.len(), before.cap - before.write);
            let n = data.len().min(spare.len());
            spare[..n].copy_from_slice(&data[..n]);
            buf.commit(n);
            model.extend_from_slice(&data[..n]);
            prop_assert_eq!(
                shape(buf),
                Shape {
                    write: before.write + n,
                    ..before
                }
            );
        }
        Op::WriteCompacting(_, seed, consume, extra) => {
            let before = consume_leaving_one(buf, model, consume)?;
            let len = before.cap - before.write + extra.min(before.read);
            let data = Fill { seed, len }.bytes();
            buf.put_slice(&data);
            model.extend_from_slice(&data);
            check_room_made(before, shape(buf), data.len(), data.len())?;
        }
        Op::PutU8(_, b) => {
            buf.put_u8(b);
            model.push(b);
            check_room_made(before, shape(buf), 1, 1)?;
        }
        _ => unreachable!("not a write: {op:?}"),
    }
    Ok(())
}

fn read_op(buf: &mut ByteBuf, model: &mut Vec<u8>, op: &Op) -> Result<(), TestCaseError> {
    let before = shape(buf);
    let len = model.len();
    match *op {
        Op::GetU8(_) => {
            if len == 0 {
                return Ok(());
            }
            prop_assert_eq!(buf.get_u8(), model.remove(0));
            check_consumed(before, shape(buf), 1)?;
        }
        Op::Advance(_, n) => {
            let n = n.min(len);
            buf.advance(n);
            model.drain(..n);
            check_consumed(before, shape(buf), n)?;
        }
        Op::CopyToSlice(_, n) => {
            let n = n.min(len);
            let mut dst = vec![0u8; n];
            buf.copy_to_slice(&mut dst);
            prop_assert!(dst[..] == model[..n], "copy_to_slice returned other bytes");
            model.drain(..n);
            check_consumed(before, shape(buf), n)?;
        }
        Op::IoRead(_, n) => {
            let mut dst = vec![0u8; n];
            let got = buf.read(&mut dst).expect("io::Read from a ByteBuf");
            prop_assert_eq!(got, n.min(len));
            prop_assert!(dst[..got] == model[..got], "io::Read returned other bytes");
            model.drain(..got);
            check_consumed(before, shape(buf), got)?;
        }
        _ => unreachable!("not a read: {op:?}"),
    }
    Ok(())
}

#[derive(Default)]
struct World {
    bufs: Vec<(ByteBuf, Vec<u8>)>,
    frozen: Vec<(Frozen, Vec<u8>)>,
}

impl World {
    fn check(&self) -> Result<(), TestCaseError> {
        for (buf, model) in &self.bufs {
            check_buf(buf, model)?;
        }
        for (f, model) in &self.frozen {
            prop_assert!(
                f.as_slice() == &model[..],
                "frozen contents differ from the model"
            );
            if let Frozen::Frozen(f) = f {
                prop_assert_eq!(f.len(), model.len());
                prop_assert_eq!(f.remaining(), model.len());
                prop_assert_eq!(f.is_empty(), model.is_empty());
            }
        }
        Ok(())
    }

    fn apply(&mut self, alloc: &Allocator, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Alloc(n) => {
                let buf = alloc.buffer(*n);
                check_fresh_capacity(alloc, *n, buf.capacity())?;
                prop_assert_eq!((buf.reader_index(), buf.writer_index()), (0, 0));
                prop_assert!(buf.is_unique());
                self.bufs.push((buf, Vec::new()));
            }
            Op::PutSlice(i, _)
            | Op::ExtendFromSlice(i, _)
            | Op::IoWrite(i, _)
            | Op::SpareCommit(i, _)
            | Op::PutU8(i, _)
            | Op::WriteCompacting(i, ..) => {
                if let Some((buf, model)) = pick(&mut self.bufs, i) {
                    write_op(buf, model, op)?;
                }
            }
            Op::GetU8(i) | Op::Advance(i, _) | Op::CopyToSlice(i, _) | Op::IoRead(i, _) => {
                if let Some((buf, model)) = pick(&mut self.bufs, i) {
                    read_op(buf, model, op)?;
                }
            }
            Op::SplitTo(i, n) => {
                if let Some((buf, model)) = pick(&mut self.bufs, i) {
                    let n = (*n).min(model.len());
                    let before = shape(buf);
                    let ptr = buf.as_ptr();
                    let head = buf.split_to(n);
                    let head_model: Vec<u8> = model.drain(..n).collect();
                    prop_assert_eq!(head.len(), n);
                    prop_assert_eq!(
                        head.writable_bytes(),
                        0,
                        "split_to's head has no spare room"
                    );
                    prop_assert_eq!(
                        buf.writable_bytes(),
                        before.cap - before.write,
                        "split_to keeps the writable bytes"
                    );
                    if n > 0 {
                        prop_assert_eq!(head.as_ptr(), ptr, "split_to must not copy");
                        prop_assert_eq!(buf.as_ptr(), ptr.wrapping_add(n));
                        prop_assert!(!head.is_unique() && !buf.is_unique());
                    }
                    self.bufs.push((head, head_model));
                }
            }
            Op::Split(i) => {
                if let Some((buf, model)) = pick(&mut self.bufs, i) {
                    let before = shape(buf);
                    let head = buf.split();
                    let head_model = std::mem::take(model);
                    prop_assert!(buf.is_empty());
                    prop_assert_eq!(buf.writable_bytes(), before.cap - before.write);
                    self.bufs.push((head, head_model));
                }
            }
            Op::Reserve(i, n) => {
                if let Some((buf, _)) = pick(&mut self.bufs, i) {
                    let before = shape(buf);
                    buf.reserve(*n);
                    prop_assert!(buf.writable_bytes() >= *n);
                    check_room_made(before, shape(buf), *n, 0)?;
                }
            }
            Op::ReserveCompacting(i, consume, extra) => {
                if let Some((buf, model)) = pick(&mut self.bufs, i) {
                    let before = consume_leaving_one(buf, model, *consume)?;
                    let n = before.cap - before.write + (*extra).min(before.read);
                    buf.reserve(n);
                    prop_assert!(buf.writable_bytes() >= n);
                    check_room_made(before, shape(buf), n, 0)?;
                }
            }
            Op::DiscardReadBytes(i) => {
                if let Some((buf, model)) = pick(&mut self.bufs, i) {
                    let before = shape(buf);
                    buf.discard_read_bytes();
                    prop_assert_eq!(
                        shape(buf),
                        Shape {
                            read: 0,
                            write: model.len(),
                            cap: before.cap
                        }
                    );
                }
            }
            Op::Truncate(i, n) => {
                if let Some((buf, model)) = pick(&mut self.bufs, i) {
                    let before = shape(buf);
                    buf.truncate(*n);
                    model.truncate(*n);
                    prop_assert_eq!(
                        shape(buf),
                        Shape {
                            write: before.read + model.len(),
                            ..before
                        }
                    );
                }
            }
            Op::Clear(i) => {
                if let Some((buf, model)) = pick(&mut self.bufs, i) {
                    let before = shape(buf);
                    buf.clear();
                    model.clear();
                    prop_assert_eq!(
                        shape(buf),
                        Shape {
                            read: 0,
                            write: 0,
                            cap: before.cap
                        }
                    );
                }
            }
            Op::Copy(i) => {
                if let Some((buf, model)) = pick(&mut self.bufs, i) {
                    let copy = buf.copy();
                    let model = model.clone();
                    prop_assert!(copy.is_empty() || copy.as_ptr() != buf.as_ptr());
                    self.bufs.push((copy, model));
                }
            }
            Op::Freeze(i) => {
                if !self.bufs.is_empty() {
                    let (buf, model) = self.bufs.swap_remove(i.index(self.bufs.len()));
                    let ptr = buf.as_ptr();
                    let frozen = buf.freeze();
                    prop_assert_eq!(frozen.len(), model.len());
                    if !model.is_empty() {
                        prop_assert_eq!(frozen.as_ptr(), ptr, "freeze must not copy");
                    }
                    self.frozen.push((Frozen::Frozen(frozen), model));
                }
            }
            Op::SliceFrozen(i, a, b) => {
                if let Some((f, model)) = pick(&mut self.frozen, i) {
                    let len = model.len();
                    let (a, b) = ((*a).min(len), (*b).min(len));
                    let (start, end) = (a.min(b), a.max(b));
                    let sub = match f {
                        Frozen::Frozen(f) => {
                            let s = f.slice(start..end);
                            if start < end {
                                prop_assert_eq!(s.as_ptr(), f.as_ptr().wrapping_add(start));
                            }
                            Frozen::Frozen(s)
                        }
                        Frozen::Bytes(b) => Frozen::Bytes(b.slice(start..end)),
                    };
                    let sub_model = model[start..end].to_vec();
                    self.frozen.push((sub, sub_model));
                }
            }
            Op::CloneFrozen(i) => {
                if let Some((f, model)) = pick(&mut self.frozen, i) {
                    let copy = match f {
                        Frozen::Frozen(f) => {
                            let c = f.clone();
                            prop_assert_eq!(c.as_ptr(), f.as_ptr());
                            Frozen::Frozen(c)
                        }
                        Frozen::Bytes(b) => Frozen::Bytes(b.clone()),
                    };
                    let model = model.clone();
                    self.frozen.push((copy, model));
                }
            }
            Op::AdvanceFrozen(i, n) => {
                if let Some((f, model)) = pick(&mut self.frozen, i) {
                    let n = (*n).min(model.len());
                    match f {
                        Frozen::Frozen(f) => f.advance(n),
                        Frozen::Bytes(b) => b.advance(n),
                    }
                    model.drain(..n);
                }
            }
            Op::IntoBytes(i) => {
                if !self.frozen.is_empty() {
                    let at = i.index(self.frozen.len());
                    let (f, model) = self.frozen.swap_remove(at);
                    let bytes = match f {
                        Frozen::Frozen(f) => {
                            let ptr = f.as_ptr();
                            let bytes = Bytes::from(f);
                            if !model.is_empty() {
                                prop_assert_eq!(bytes.as_ptr(), ptr, "Bytes::from must not copy");
                            }
                            bytes
                        }
                        Frozen::Bytes(b) => b,
                    };
                    self.frozen.push((Frozen::Bytes(bytes), model));
                }
            }
            Op::DropBuf(i) => {
                if !self.bufs.is_empty() {
                    drop(self.bufs.swap_remove(i.index(self.bufs.len())));
                }
            }
            Op::DropFrozen(i) => {
                if !self.frozen.is_empty() {
                    drop(self.frozen.swap_remove(i.index(self.frozen.len())));
                }
            }
        }
        Ok(())
    }
}

fn pick<'a, T>(items: &'a mut [T], i: &Index) -> Option<&'a mut T> {
    if items.is_empty() {
        None
    } else {
        let at = i.index(items.len());
        Some(&mut items[at])
    }
}

fn run(alloc: Allocator, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut world = World::default();
    for op in ops {
        world.apply(&alloc, op)?;
        world.check()?;
    }
    drop(world);
    let m = alloc.metrics();
    prop_assert_eq!(
        m.bytes_in_use,
        0,
        "bytes still in use after dropping everything: {:?}",
        m
    );
    prop_assert_eq!(
        m.allocations,
        m.frees,
        "allocations and frees differ: {:?}",
        m
    );
    Ok(())
}

/// Runs `ops` on a fresh pool with `chunk_size` chunks, then checks that
/// the pool can give every byte back to the OS.
fn run_pooled(chunk_size: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let pool = PooledAllocator::new(PoolConfig {
        chunk_size,
        ..PoolConfig::default()
    });
    run(Allocator::from(pool), ops)?;
    pool.set_retained_chunks(0);
    pool.trim_thread_cache();
    let m = pool.metrics();
    prop_assert_eq!(m.huge_live, 0);
    prop_assert_eq!(m.pending_returns, 0);
    prop_assert!(
        m.classes.iter().all(|c| c.live == 0),
        "live blocks left: {:?}",
        m.classes
    );
    prop_assert_eq!(m.chunks_mapped, 0, "{:?}", m);
    prop_assert_eq!(m.bytes_mapped, 0, "{:?}", m);
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        // Failures are reported with their minimal sequence; no files are
        // written into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// The pool at its smallest chunk size (64 KiB, the documented minimum).
    #[test]
    fn pooled_buffers_match_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run_pooled(CHUNK, &ops)?;
    }

    /// The same with 128 KiB chunks, where every small class's slab fits
    /// in a chunk, so the rest of the model is checked whatever happens
    /// to the 64 KiB pool.
    #[test]
    fn pooled_128k_buffers_match_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run_pooled(CHUNK_128K, &ops)?;
    }

    #[test]
    fn unpooled_buffers_match_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let heap = UnpooledAllocator::new();
        run(Allocator::from(heap), &ops)?;
        let m = heap.metrics();
        prop_assert_eq!(m.bytes_mapped, 0);
        prop_assert!(m.classes.is_empty());
    }
}
