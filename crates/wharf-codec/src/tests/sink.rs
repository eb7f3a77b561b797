//! The public encoding helpers: what is copied, what goes as it is, and
//! that the order of the pieces is kept.

use wharf_buf::{Allocator, FrozenBuf};
use wharf_transport::{Encoded, OutboundMessage};

use super::{VecSink, buf};
use crate::sink::{COPY_LIMIT, Pieces, Sink, push_with_prefix, push_with_suffix};

/// The entries of an `Encoded`, as (is it frozen, address, bytes).
fn entries(out: &mut Encoded) -> Vec<(bool, *const u8, Vec<u8>)> {
    out.drain()
        .map(|m| match m {
            OutboundMessage::Buf(b) => (false, b.as_ptr(), b.to_vec()),
            OutboundMessage::Frozen(f) => (true, f.as_ptr(), f.to_vec()),
            other => panic!("unexpected entry {other:?}"),
        })
        .collect()
}

#[test]
fn small_pieces_become_one_buffer() {
    let mut out = Encoded::new(Allocator::default());
    let mut pieces = Pieces::new(&mut out, 64);
    pieces.copy(b"*3\r\n");
    pieces.frozen(FrozenBuf::from_static(b"$1\r\na\r\n"));
    pieces.buf(buf(b"$1\r\nb\r\n"));
    pieces.copy(b"");
    pieces.copy(b":1\r\n");
    pieces.finish();
    let got = entries(&mut out);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].2, b"*3\r\n$1\r\na\r\n$1\r\nb\r\n:1\r\n");
}

#[test]
fn large_pieces_go_as_they_are_in_order() {
    let big = vec![b'x'; COPY_LIMIT + 1];
    let frozen = buf(&big).freeze();
    let at = frozen.as_ptr();
    let large = buf(&big);
    let large_at = large.as_ptr();
    let mut out = Encoded::new(Allocator::default());
    {
        let mut pieces = Pieces::new(&mut out, 8);
        pieces.copy(b"head");
        pieces.frozen(frozen);
        pieces.copy(b"mid");
        pieces.buf(large);
        pieces.copy(b"tail");
        // Dropped without `finish`: the pending tail is queued anyway.
    }
    let got = entries(&mut out);
    let shapes: Vec<(bool, usize)> = got.iter().map(|e| (e.0, e.2.len())).collect();
    assert_eq!(
        shapes,
        [
            (false, 4),
            (true, COPY_LIMIT + 1),
            (false, 3),
            (false, COPY_LIMIT + 1),
            (false, 4)
        ]
    );
    assert_eq!(got[1].1, at, "the frozen piece was not copied");
    assert_eq!(got[3].1, large_at, "the large buffer was not copied");
}

#[test]
fn a_limit_sized_piece_is_copied() {
    let mut out = Encoded::new(Allocator::default());
    let mut pieces = Pieces::new(&mut out, 0);
    pieces.buf(buf(&vec![1; COPY_LIMIT]));
    pieces.copy(b"!");
    pieces.finish();
    assert_eq!(entries(&mut out).len(), 1);
}

#[test]
fn the_default_push_frozen_copies() {
    let mut sink = VecSink::default();
    sink.push_frozen(FrozenBuf::from_static(b"+OK\r\n"));
    sink.push_frozen(FrozenBuf::empty());
    assert_eq!(sink.bufs.len(), 1);
    assert_eq!(sink.bytes(), b"+OK\r\n");
}

#[test]
fn prefix_and_suffix_helpers_frame_in_order() {
    let mut sink = VecSink::default();
    push_with_prefix(&mut sink, b"$3\r\n", buf(b"abc"));
    push_with_suffix(&mut sink, buf(b"def"), b"\r\n");
    push_with_prefix(&mut sink, b"[", buf(&vec![b'y'; COPY_LIMIT + 1]));
    let mut expected = b"$3\r\nabcdef\r\n[".to_vec();
    expected.extend_from_slice(&vec![b'y'; COPY_LIMIT + 1]);
    assert_eq!(sink.bytes(), expected);
    assert_eq!(sink.bufs.len(), 4);
}
