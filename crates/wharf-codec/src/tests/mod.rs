//! The crate's tests, and what they share: a stand-in for the channel's
//! cumulation, the ways of cutting a stream into reads, and a sink that
//! collects what encoders write.

use std::mem::{Discriminant, discriminant};

use proptest::prelude::*;
use wharf_buf::{Allocator, ByteBuf};
use wharf_transport::{Codec, CodecError};

use crate::sink::Sink;

mod hostile;
mod http;
mod length_field;
mod length_field_netty;
mod line;
mod resp;
mod sink;
mod utf8;

/// Collects encoded buffers, as `Encoded` does (empty ones skipped).
#[derive(Debug, Default)]
pub(crate) struct VecSink {
    pub(crate) bufs: Vec<ByteBuf>,
}

impl Sink for VecSink {
    fn buffer(&self, capacity: usize) -> ByteBuf {
        Allocator::default().buffer(capacity)
    }

    fn push(&mut self, buf: ByteBuf) {
        if !buf.is_empty() {
            self.bufs.push(buf);
        }
    }
}

impl VecSink {
    /// Everything pushed, as the peer would receive it.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.bufs.iter().flat_map(|b| b.iter().copied()).collect()
    }
}

/// A buffer holding `bytes`, as a read would return it.
pub(crate) fn buf(bytes: &[u8]) -> ByteBuf {
    let mut buf = Allocator::default().buffer(bytes.len());
    buf.extend_from_slice(bytes);
    buf
}

/// What a connection's handler would have seen.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The frames' bytes, in order.
    pub(crate) frames: Vec<Vec<u8>>,
    /// The error that closed the connection, if any.
    pub(crate) error: Option<CodecError>,
}

impl Outcome {
    /// The frames and the kind of error, which must not depend on how the
    /// stream was cut into reads (an error's `length` may: it says how far
    /// the codec read before giving up).
    pub(crate) fn key(&self) -> (&[Vec<u8>], Option<Discriminant<CodecError>>) {
        (&self.frames, self.error.as_ref().map(discriminant))
    }

    /// The frames, after checking that nothing went wrong.
    #[track_caller]
    pub(crate) fn ok(self) -> Vec<Vec<u8>> {
        assert_eq!(self.error, None, "after frames {:?}", self.frames);
        self.frames
    }
}

/// Runs `chunks` through `codec` exactly as the transport does (see
/// `CodecState` in wharf-transport's pipeline): a chunk becomes the
/// cumulation when nothing is pending and is appended otherwise, `decode`
/// runs after each, `decode_eof` at the end; an error stops everything.
///
/// Checks on every call that the input never grows and that the frames
/// produced are no larger than the bytes consumed.
pub(crate) fn feed<'a, C>(codec: &mut C, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome
where
    C: Codec,
    C::In: AsRef<[u8]>,
{
    let mut cumulation = ByteBuf::new();
    let mut frames = Vec::new();
    let mut decoded = Vec::new();
    for chunk in chunks {
        if chunk.is_empty() {
            continue; // a read of 0 bytes is the end of input
        }
        let read = buf(chunk);
        if cumulation.is_empty() {
            cumulation = read;
        } else {
            cumulation.extend_from_slice(&read);
        }
        let before = cumulation.len();
        let result = codec.decode(&mut cumulation, &mut decoded);
        check_consumed(before, &cumulation, &result, &decoded);
        frames.extend(decoded.drain(..).map(|f| f.as_ref().to_vec()));
        if let Err(error) = result {
            return Outcome {
                frames,
                error: Some(error),
            };
        }
        if cumulation.is_empty() && cumulation.capacity() > 0 {
            cumulation = ByteBuf::new();
        }
    }
    let before = cumulation.len();
    let result = codec.decode_eof(&mut cumulation, &mut decoded);
    check_consumed(before, &cumulation, &result, &decoded);
    frames.extend(decoded.drain(..).map(|f| f.as_ref().to_vec()));
    Outcome {
        frames,
        error: result.err(),
    }
}

fn check_consumed<T: AsRef<[u8]>>(
    before: usize,
    after: &ByteBuf,
    result: &Result<(), CodecError>,
    decoded: &[T],
) {
    assert!(
        after.len() <= before,
        "the input grew from {before} to {}",
        after.len()
    );
    if result.is_ok() {
        let produced: usize = decoded.iter().map(|f| f.as_ref().len()).sum();
        assert!(
            produced <= before - after.len(),
            "{produced} bytes of frames from {} bytes consumed",
            before - after.len()
        );
    }
}

/// `data` one byte per read.
pub(crate) fn bytewise(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.chunks(1)
}

/// `data` in reads of the given sizes, in turn (each at least 1 byte).
pub(crate) fn chunked<'a>(data: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> {
    let mut rest = data;
    let mut sizes = sizes.iter().copied().map(|n| n.max(1)).cycle();
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = sizes.next().unwrap_or(rest.len()).min(rest.len());
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

/// Decodes `data` one byte per read, in reads of `sizes`, and in one read,
/// each with a fresh codec; asserts that the three agree and returns what
/// the single read gave.
#[track_caller]
pub(crate) fn decode_three_ways<C>(make: impl Fn() -> C, data: &[u8], sizes: &[usize]) -> Outcome
where
    C: Codec,
    C::In: AsRef<[u8]>,
{
    let bytes = feed(&mut make(), bytewise(data));
    let random = feed(&mut make(), chunked(data, sizes));
    let whole = feed(&mut make(), [data]);
    assert_eq!(bytes.key(), whole.key(), "one byte per read vs one read");
    assert_eq!(random.key(), whole.key(), "reads of {sizes:?} vs one read");
    whole
}

/// Read sizes for proptest: mostly small, sometimes large.
pub(crate) fn read_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![3 => 1usize..8, 1 => 8usize..300], 1..16)
}

/// Proptest settings: enough cases to find framing bugs, few enough for a
/// debug build to finish in seconds.
pub(crate) fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        ..ProptestConfig::default()
    }
}

/// Whether `frame` lies inside the memory of `input` (recorded as its
/// first byte's address and length before decoding).
pub(crate) fn inside(frame: &ByteBuf, start: *const u8, len: usize) -> bool {
    let (start, frame_at) = (start as usize, frame.as_ptr() as usize);
    frame_at >= start && frame_at + frame.len() <= start + len
}

#[test]
fn chunked_covers_the_data_in_order() {
    let data: Vec<u8> = (0..=255).collect();
    let joined: Vec<u8> = chunked(&data, &[1, 0, 7, 300]).flatten().copied().collect();
    assert_eq!(joined, data);
    assert_eq!(bytewise(&data).count(), 256);
}
