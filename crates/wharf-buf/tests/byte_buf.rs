//! `ByteBuf` and `FrozenBuf` behaviour over both allocators: alignment of
//! `alloc_aligned`, zero-length and huge buffers, growth across class
//! boundaries and after partial reads, zero-copy `split_to` / `freeze` /
//! `Bytes`, frees on another thread, vectored and `io` adapters, and the
//! documented panics.

use std::io::{self, IoSlice, Read, Write};
use std::thread;

use bytes::{Buf, BufMut, Bytes};
use wharf_buf::{Allocator, ByteBuf, FrozenBuf, PoolConfig, PooledAllocator, UnpooledAllocator};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// A fresh pool with chunks of `chunk_size` bytes.
fn pool_with_chunk(chunk_size: usize) -> PooledAllocator {
    PooledAllocator::new(PoolConfig {
        chunk_size,
        ..PoolConfig::default()
    })
}

/// One fresh allocator of each kind.
fn allocators() -> [Allocator; 2] {
    [
        Allocator::from(pool_with_chunk(MIB)),
        Allocator::from(UnpooledAllocator::new()),
    ]
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add(i as u8).wrapping_mul(7) ^ (i >> 9) as u8)
        .collect()
}

#[test]
fn alloc_aligned_honours_the_alignment() {
    let lens = [1, 100, 4096, 5000, 20_000, MIB, MIB + 1, 3 * MIB / 2];
    for alloc in allocators() {
        for align in [4096, 512, 64] {
            // Keep every buffer alive so each one gets a distinct block.
            let mut live = Vec::new();
            let more = (1..=40_000).step_by(997);
            for len in lens.iter().copied().chain(more) {
                let mut buf = alloc.alloc_aligned(len, align);
                assert!(
                    buf.capacity() >= len,
                    "len {len}: capacity {}",
                    buf.capacity()
                );
                assert_eq!(
                    buf.as_ptr() as usize % align,
                    0,
                    "len {len} align {align} pooled {}",
                    alloc.is_pooled()
                );
                let data = pattern(len, len as u8);
                buf.put_slice(&data);
                assert_eq!(&buf[..], &data[..]);
                // Filling the whole capacity stays in place (no growth).
                assert_eq!(buf.as_ptr() as usize % align, 0);
                live.push(buf);
            }
        }
        assert_eq!(
            alloc.metrics().bytes_in_use,
            0,
            "pooled {}",
            alloc.is_pooled()
        );
    }
}

#[test]
fn aligned_blocks_are_distinct_and_do_not_overlap() {
    let alloc = Allocator::from(pool_with_chunk(MIB));
    let mut bufs: Vec<ByteBuf> = (0..64)
        .map(|i| alloc.alloc_aligned(100 + i * 50, 512))
        .collect();
    for (i, buf) in bufs.iter_mut().enumerate() {
        assert_eq!(buf.as_ptr() as usize % 512, 0);
        let cap = buf.capacity();
        buf.put_bytes(i as u8, cap);
    }
    for (i, buf) in bufs.iter().enumerate() {
        assert!(
            buf.iter().all(|&b| b == i as u8),
            "buffer {i} was overwritten"
        );
    }
}

#[test]
#[should_panic(expected = "not a power of two")]
fn alloc_aligned_rejects_non_power_of_two() {
    let _ = Allocator::from(UnpooledAllocator::new()).alloc_aligned(100, 48);
}

#[test]
#[should_panic(expected = "at most 4096")]
fn pooled_alloc_aligned_rejects_more_than_a_page() {
    let _ = Allocator::from(pool_with_chunk(MIB)).alloc_aligned(100, 8192);
}

#[test]
fn unpooled_alloc_aligned_accepts_more_than_a_page() {
    let buf = Allocator::from(UnpooledAllocator::new()).alloc_aligned(100, 64 * KIB);
    assert_eq!(buf.as_ptr() as usize % (64 * KIB), 0);
    assert!(buf.capacity() >= 100);
}

#[test]
fn zero_length_buffers_allocate_nothing_until_written() {
    for alloc in allocators() {
        let before = alloc.metrics();
        let mut buf = alloc.buffer(0);
        assert_eq!(buf.capacity(), 0);
        assert!(buf.is_empty());
        assert_eq!(buf.spare_mut().len(), 0);
        buf.reserve(0);
        buf.extend_from_slice(&[]);
        assert_eq!(buf.capacity(), 0);
        let frozen = alloc.buffer(0).freeze();
        assert!(frozen.is_empty());
        drop(frozen);
        assert_eq!(
            alloc.metrics(),
            before,
            "a zero-length buffer touched the allocator"
        );

        buf.put_slice(b"grow");
        assert!(buf.capacity() >= 4);
        assert_eq!(&buf[..], b"grow");
        let after = alloc.metrics();
        assert_eq!(after.allocations, before.allocations + 1);
        assert_eq!(after.bytes_in_use, buf.capacity() as u64);
        drop(buf);
        assert_eq!(alloc.metrics().bytes_in_use, 0);
    }
}

#[test]
fn huge_buffers_get_and_return_their_own_mapping() {
    let chunk = MIB;
    let pool = pool_with_chunk(chunk);
    let alloc = Allocator::from(pool);
    // Warm up so that chunk mappings do not change under the measurement.
    drop(alloc.buffer(100));
    for len in [chunk + 1, chunk + 4096, 3 * chunk + 7] {
        // No freed mapping kept from the last round: this one is new.
        alloc.trim_thread_cache();
        let before = alloc.metrics();
        let mut buf = alloc.buffer(len);
        assert!(buf.capacity() >= len);
        assert_eq!(buf.capacity(), len.next_multiple_of(4096));
        assert_eq!(buf.as_ptr() as usize % 4096, 0);
        let during = alloc.metrics();
        assert_eq!(during.huge_live, before.huge_live + 1);
        assert_eq!(
            during.bytes_mapped,
            before.bytes_mapped + buf.capacity() as u64
        );
        assert_eq!(
            during.bytes_in_use,
            before.bytes_in_use + buf.capacity() as u64
        );
        assert_eq!(during.chunks_mapped, before.chunks_mapped);
        let data = pattern(len, 3);
        buf.put_slice(&data);
        assert_eq!(&buf[..], &data[..]);
        let cap = buf.capacity() as u64;
        drop(buf);
        let after = alloc.metrics();
        assert_eq!(after.huge_live, 0);
        assert_eq!(after.bytes_in_use, before.bytes_in_use);
        // Kept for reuse for the pool's decay, then unmapped by a trim.
        assert_eq!(after.bytes_mapped, before.bytes_mapped + cap);
        alloc.trim_thread_cache();
        assert_eq!(alloc.metrics().bytes_mapped, before.bytes_mapped);
    }
}

/// A huge buffer that grows is remapped, not copied: no new allocation,
/// the bytes where they were, the pool's counts following.
#[test]
fn a_huge_buffer_grows_without_a_new_allocation() {
    let alloc = Allocator::from(pool_with_chunk(MIB));
    drop(alloc.buffer(100));
    let mut buf = alloc.buffer(2 * MIB);
    let data = pattern(2 * MIB, 9);
    buf.put_slice(&data);
    let before = alloc.metrics();
    buf.reserve(30 * MIB);
    let after = alloc.metrics();
    assert!(buf.capacity() >= 32 * MIB);
    assert_eq!(after.allocations, before.allocations, "grown in place");
    assert_eq!(after.huge_live, 1);
    assert_eq!(
        after.bytes_in_use - before.bytes_in_use,
        (buf.capacity() - 2 * MIB) as u64
    );
    assert_eq!(&buf[..], &data[..], "the bytes moved with the pages");
    buf.put_slice(&data);
    assert_eq!(&buf[2 * MIB..], &data[..]);
    drop(buf);
    alloc.trim_thread_cache();
    assert_eq!(alloc.metrics().huge_live, 0);
}

/// A freed huge mapping serves the next allocation of a similar size as
/// it is (no fresh pages to fault in), is not used for one much smaller
/// (not to waste it), and a pool that keeps nothing unmaps it at once.
#[test]
fn a_freed_huge_mapping_is_reused_by_the_next_of_a_similar_size() {
    let alloc = Allocator::from(pool_with_chunk(MIB));
    drop(alloc.buffer(100));
    let first = alloc.buffer(8 * MIB);
    let address = first.as_ptr();
    drop(first);
    let mapped = alloc.metrics().bytes_mapped;
    let second = alloc.buffer(6 * MIB);
    assert_eq!(second.as_ptr(), address, "the freed mapping was reused");
    assert_eq!(second.capacity(), 8 * MIB);
    assert_eq!(
        alloc.metrics().bytes_mapped,
        mapped,
        "nothing new was mapped"
    );
    drop(second);
    let small = alloc.buffer(2 * MIB);
    assert_ne!(
        small.as_ptr(),
        address,
        "a quarter of the mapping would waste it"
    );
    drop(small);
    alloc.trim_thread_cache();

    let keeps_nothing = PooledAllocator::new(PoolConfig {
        chunk_size: MIB,
        empty_chunk_decay: std::time::Duration::ZERO,
        ..PoolConfig::default()
    });
    let alloc = Allocator::from(keeps_nothing);
    drop(alloc.buffer(100));
    let before = alloc.metrics().bytes_mapped;
    drop(alloc.buffer(8 * MIB));
    assert_eq!(alloc.metrics().bytes_mapped, before, "unmapped at once");
}

/// `AllocatorMetrics::allocations` is documented as "buffer memory
/// allocations since the start", and `frees` as the frees: a huge buffer is
/// one of each, as it is for the unpooled allocator.
#[test]
fn huge_buffers_count_as_allocations_and_frees() {
    for alloc in allocators() {
        let before = alloc.metrics();
        let buf = alloc.buffer(2 * MIB);
        assert_eq!(
            alloc.metrics().allocations,
            before.allocations + 1,
            "pooled {}",
            alloc.is_pooled()
        );
        drop(buf);
        let after = alloc.metrics();
        assert_eq!(
            after.frees,
            before.frees + 1,
            "pooled {}",
            alloc.is_pooled()
        );
        assert_eq!(
            after.allocations - after.frees,
            before.allocations - before.frees
        );
    }
}

/// Small classes above 8 KiB use slabs of 20 to 28 pages; a pool with the
/// smallest chunk size it accepts (64 KiB, 16 pages) must still serve them.
#[test]
fn the_minimum_chunk_size_serves_every_size_up_to_the_chunk() {
    let alloc = Allocator::from(pool_with_chunk(64 * KIB));
    for len in [
        8 * KIB,
        8 * KIB + 1,
        10 * KIB,
        12 * KIB,
        14 * KIB,
        16 * KIB,
        64 * KIB,
    ] {
        let mut buf = alloc.buffer(len);
        assert!(buf.capacity() >= len, "len {len}");
        buf.put_bytes(0xA5, len);
        assert_eq!(buf.len(), len);
    }
    assert_eq!(alloc.metrics().bytes_in_use, 0);
}

#[test]
fn growth_one_byte_at_a_time_across_every_class_boundary() {
    for alloc in [
        Allocator::from(pool_with_chunk(64 * KIB)),
        Allocator::from(pool_with_chunk(MIB)),
        Allocator::from(UnpooledAllocator::new()),
    ] {
        let total = 300 * KIB;
        let mut buf = alloc.buffer(0);
        let mut cap = buf.capacity();
        let mut growths = 0;
        for i in 0..total {
            buf.put_u8(i as u8 ^ (i >> 8) as u8);
            assert!(buf.capacity() >= cap, "capacity shrank at byte {i}");
            if buf.capacity() != cap {
                growths += 1;
                cap = buf.capacity();
                assert_eq!(buf.len(), i + 1);
                assert!(
                    buf.iter()
                        .enumerate()
                        .all(|(j, &b)| b == j as u8 ^ (j >> 8) as u8),
                    "contents lost when growing at byte {i}"
                );
            }
        }
        assert_eq!(buf.len(), total);
        assert!(
            buf.iter()
                .enumerate()
                .all(|(j, &b)| b == j as u8 ^ (j >> 8) as u8)
        );
        // Doubling from 64 bytes to 300 KiB takes about a dozen steps.
        assert!((10..=16).contains(&growths), "{growths} growths");
        drop(buf);
        let m = alloc.metrics();
        assert_eq!(m.bytes_in_use, 0);
        assert_eq!(m.huge_live, 0);
    }
}

#[test]
fn growth_after_partial_reads_compacts_first_then_reallocates() {
    for alloc in allocators() {
        let mut buf = alloc.buffer(1000);
        let cap = buf.capacity();
        let base = buf.as_ptr();
        let data = pattern(cap, 9);
        buf.put_slice(&data);
        let mut head = vec![0; 600];
        buf.copy_to_slice(&mut head);
        assert_eq!(head, data[..600]);
        assert_eq!(buf.reader_index(), 600);

        // Room for 500 more only after moving the 400 unread bytes to the
        // front: compaction, same memory, same capacity.
        let more = pattern(500, 10);
        buf.put_slice(&more);
        assert_eq!(buf.capacity(), cap);
        assert_eq!(buf.reader_index(), 0);
        assert_eq!(buf.as_ptr(), base, "compaction must stay in place");
        let mut model = data[600..].to_vec();
        model.extend_from_slice(&more);
        assert_eq!(&buf[..], &model[..]);

        // More than the whole capacity: new memory, contents kept.
        buf.advance(100);
        model.drain(..100);
        let tail = pattern(3 * cap, 11);
        buf.put_slice(&tail);
        model.extend_from_slice(&tail);
        assert!(buf.capacity() >= model.len());
        assert_eq!(buf.reader_index(), 0);
        assert_eq!(&buf[..], &model[..]);

        // The explicit form.
        buf.advance(10);
        model.drain(..10);
        let len = buf.len();
        buf.discard_read_bytes();
        assert_eq!((buf.reader_index(), buf.writer_index()), (0, len));
        assert_eq!(&buf[..], &model[..]);
        drop(buf);
        assert_eq!(alloc.metrics().bytes_in_use, 0);
    }
}

#[test]
fn split_to_shares_memory_until_a_view_drops() {
    for alloc in allocators() {
        let mut buf = alloc.buffer(256);
        buf.put_slice(b"GET / HTTP/1.1\r\nHost: x\r\n");
        let base = buf.as_ptr();
        let in_use = alloc.metrics().bytes_in_use;
        assert!(buf.is_unique());

        let line = buf.split_to(16);
        assert_eq!(&line[..], b"GET / HTTP/1.1\r\n");
        assert_eq!(&buf[..], b"Host: x\r\n");
        assert_eq!(line.as_ptr(), base, "split_to must not copy");
        assert_eq!(buf.as_ptr(), base.wrapping_add(16));
        assert!(!line.is_unique());
        assert!(!buf.is_unique());
        assert_eq!(line.capacity(), 16);
        assert_eq!(line.writable_bytes(), 0);
        assert_eq!(alloc.metrics().bytes_in_use, in_use, "no new memory");

        // Both views may write to their own part without disturbing the other.
        buf.put_slice(b"\r\n");
        assert_eq!(&line[..], b"GET / HTTP/1.1\r\n");
        assert_eq!(buf.as_ptr(), base.wrapping_add(16));

        drop(line);
        assert!(buf.is_unique());
        assert_eq!(alloc.metrics().bytes_in_use, in_use);
        drop(buf);
        assert_eq!(alloc.metrics().bytes_in_use, 0);
    }
}

#[test]
fn freeze_slice_and_bytes_share_memory() {
    for alloc in allocators() {
        let mut buf = alloc.buffer(64);
        buf.put_slice(b"xxshared bytes");
        buf.advance(2);
        let ptr = buf.as_ptr();
        let frozen = buf.freeze();
        assert_eq!(frozen.as_ptr(), ptr, "freeze must not copy");
        assert_eq!(&frozen[..], b"shared bytes");

        let word = frozen.slice(0..6);
        assert_eq!(word.as_ptr(), ptr);
        assert_eq!(frozen.slice(7..).as_ptr(), ptr.wrapping_add(7));
        assert_eq!(&frozen.slice(7..=9)[..], b"byt");
        assert!(frozen.slice(3..3).is_empty());
        let clone = frozen.clone();
        assert_eq!(clone.as_ptr(), ptr);

        let bytes = Bytes::from(frozen);
        assert_eq!(bytes.as_ptr(), ptr, "Bytes::from must not copy");
        assert_eq!(bytes, &b"shared bytes"[..]);
        let sub = bytes.slice(7..);
        drop(bytes);
        drop(clone);
        assert_ne!(
            alloc.metrics().bytes_in_use,
            0,
            "views still hold the memory"
        );
        drop(word);
        assert_eq!(&sub[..], b"bytes");
        assert_ne!(alloc.metrics().bytes_in_use, 0);
        drop(sub);
        assert_eq!(alloc.metrics().bytes_in_use, 0);
    }
}

#[test]
fn frozen_buf_dropped_on_another_thread_is_freed() {
    let pool = pool_with_chunk(MIB);
    let alloc = Allocator::from(pool);
    let mut buf = alloc.buffer(4000);
    buf.put_slice(&pattern(4000, 5));
    let frozen = buf.freeze();
    let bytes = Bytes::from(frozen.slice(100..200));
    let remote = frozen.clone();
    drop(frozen);
    let handle = thread::spawn(move || {
        assert_eq!(&remote[..], &pattern(4000, 5)[..]);
        assert_eq!(&bytes[..], &pattern(4000, 5)[100..200]);
        drop(remote);
        drop(bytes);
    });
    handle.join().expect("the other thread panicked");
    let m = alloc.metrics();
    assert_eq!(m.bytes_in_use, 0);
    assert_eq!(m.cross_thread_returns, 1);
    assert_eq!(m.pending_returns, 1, "the block waits for its owner");
    // The owner takes it back on its next allocation.
    let again = alloc.buffer(4000);
    let m = alloc.metrics();
    assert_eq!(m.pending_returns, 0);
    assert_eq!(m.bytes_in_use, again.capacity() as u64);
    drop(again);
    pool.set_retained_chunks(0);
    pool.trim_thread_cache();
    assert_eq!(pool.metrics().bytes_mapped, 0);
}

#[test]
fn chunks_vectored_fills_one_io_slice() {
    for alloc in allocators() {
        let mut buf = alloc.buffer(32);
        assert_eq!(
            buf.chunks_vectored(&mut [IoSlice::new(&[])]),
            0,
            "empty buffer"
        );
        buf.put_slice(b"abcdef");
        let mut dst = [IoSlice::new(&[]), IoSlice::new(&[])];
        buf.advance(1);
        assert_eq!(buf.chunks_vectored(&mut dst), 1);
        assert_eq!(&*dst[0], b"bcdef");
        assert_eq!(buf.chunks_vectored(&mut []), 0);

        let frozen = buf.freeze();
        let mut dst = [IoSlice::new(&[]); 3];
        assert_eq!(frozen.chunks_vectored(&mut dst), 1);
        assert_eq!(&*dst[0], b"bcdef");
        assert_eq!(FrozenBuf::empty().chunks_vectored(&mut dst), 0);
    }
}

#[test]
fn io_write_and_read_adapters() {
    for alloc in allocators() {
        let mut buf = alloc.buffer(8);
        let word = "hello";
        write!(buf, "{word}-{}", 42).expect("write!");
        buf.write_all(&pattern(10_000, 1)).expect("write_all");
        assert_eq!(buf.write(b"").expect("empty write"), 0);
        buf.flush().expect("flush");
        let mut model = b"hello-42".to_vec();
        model.extend_from_slice(&pattern(10_000, 1));
        assert_eq!(&buf[..], &model[..]);

        let mut head = [0u8; 8];
        buf.read_exact(&mut head).expect("read_exact");
        assert_eq!(&head, b"hello-42");
        let mut some = [0u8; 100];
        assert_eq!(buf.read(&mut some).expect("read"), 100);
        assert_eq!(&some[..], &model[8..108]);
        let mut rest = Vec::new();
        assert_eq!(
            buf.read_to_end(&mut rest).expect("read_to_end"),
            model.len() - 108
        );
        assert_eq!(&rest[..], &model[108..]);
        assert_eq!(buf.read(&mut some).expect("read at the end"), 0);
        assert!(buf.is_empty());
        let mut tail = [0u8; 1];
        let err = buf.read_exact(&mut tail).expect_err("nothing left");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

        // io::copy from one buffer into another.
        let mut src = alloc.buffer(0);
        src.put_slice(&pattern(70_000, 2));
        let mut dst = alloc.buffer(16);
        assert_eq!(io::copy(&mut src, &mut dst).expect("io::copy"), 70_000);
        assert!(src.is_empty());
        assert_eq!(&dst[..], &pattern(70_000, 2)[..]);
        drop((buf, src, dst));
        assert_eq!(alloc.metrics().bytes_in_use, 0);
    }
}

#[test]
fn copy_is_deep() {
    for alloc in allocators() {
        let mut buf = alloc.buffer(100);
        buf.put_slice(b"original");
        let mut copy = buf.copy();
        assert_eq!(copy, buf);
        assert_ne!(copy.as_ptr(), buf.as_ptr());
        copy[0] = b'O';
        assert_eq!(&buf[..], b"original");
        assert!(buf.is_unique() && copy.is_unique());
    }
}

#[test]
#[should_panic(expected = "split_to(6) past the 5 readable bytes")]
fn split_to_past_len_panics() {
    let mut buf = Allocator::from(UnpooledAllocator::new()).buffer(64);
    buf.put_slice(b"12345");
    let _ = buf.split_to(6);
}

#[test]
#[should_panic(expected = "past the 5 readable bytes")]
fn pooled_split_to_past_len_panics() {
    let mut buf = Allocator::from(pool_with_chunk(MIB)).buffer(64);
    buf.put_slice(b"12345");
    let _ = buf.split_to(6);
}

#[test]
#[should_panic(expected = "commit(65) past the 64 writable bytes")]
fn commit_past_capacity_panics() {
    let mut buf = Allocator::from(UnpooledAllocator::new()).buffer(64);
    buf.commit(65);
}

#[test]
#[should_panic(expected = "past the")]
fn pooled_commit_past_capacity_panics() {
    let mut buf = Allocator::from(pool_with_chunk(MIB)).buffer(100);
    let cap = buf.capacity();
    buf.commit(cap + 1);
}

#[test]
#[should_panic(expected = "past the 3 readable bytes")]
fn advance_past_len_panics() {
    let mut buf = Allocator::from(UnpooledAllocator::new()).buffer(64);
    buf.put_slice(b"abc");
    buf.advance(4);
}

#[test]
#[should_panic(expected = "out of bounds")]
fn frozen_slice_out_of_bounds_panics() {
    let mut buf = Allocator::from(UnpooledAllocator::new()).buffer(64);
    buf.put_slice(b"abc");
    let _ = buf.freeze().slice(1..4);
}
