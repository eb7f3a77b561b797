//! Encoding helpers: how a message and its header, delimiter or framing go
//! out together without copying large messages, and without a buffer of
//! its own for every small piece.
//!
//! Every encoder meets the same trade-off. Copying a small message behind
//! its header into one buffer costs little and gives the outbound queue one
//! entry (one iovec); copying a large one costs a pass over its bytes, so
//! it is better queued as it is, next to a small buffer for the header.
//! [`COPY_LIMIT`] is where one becomes the other. The helpers here make
//! that choice once, for every codec of this crate and for yours:
//!
//! * [`push_with_prefix`] / [`push_with_suffix`]: one message behind a
//!   header or before a delimiter (the length-field and line codecs).
//! * [`Pieces`]: a message made of many pieces (a RESP array of bulk
//!   strings, a header block): small pieces are copied together into one
//!   buffer, large ones queued as they are, in order.
//!
//! They write to a [`Sink`], which the transport's
//! [`Encoded`] is; tests can run the very same
//! code against a plain list.
//!
//! ```
//! use wharf_codec::sink::push_with_suffix;
//! use wharf_transport::buf::Allocator;
//! use wharf_transport::Encoded;
//!
//! let alloc = Allocator::default();
//! let mut out = Encoded::new(alloc);
//! let mut line = alloc.buffer(16);
//! line.extend_from_slice(b"hello");
//! push_with_suffix(&mut out, line, b"\r\n"); // appended in place: one entry
//! assert_eq!(out.drain().count(), 1);
//! ```

use wharf_buf::{ByteBuf, FrozenBuf};
use wharf_transport::Encoded;

/// Messages up to this many bytes are copied into one buffer with their
/// header, delimiter or neighbouring pieces (one queue entry, one iovec);
/// longer ones go out as they are. 512 bytes: copying that much costs
/// about what an extra iovec and queue entry cost.
pub const COPY_LIMIT: usize = 512;

/// A destination for encoded bytes, in order: the transport's
/// [`Encoded`], or anything a test wants to collect them in.
///
/// Threading: used by the one thread that encodes.
pub trait Sink {
    /// A new, empty buffer with room for `capacity` bytes, from the
    /// channel's allocator.
    fn buffer(&self, capacity: usize) -> ByteBuf;

    /// Queues `buf`'s readable bytes after everything pushed before (an
    /// empty buffer may be skipped).
    fn push(&mut self, buf: ByteBuf);

    /// Queues shared, immutable bytes after everything pushed before. By
    /// default they are copied into a buffer and [`push`](Self::push)ed;
    /// [`Encoded`] queues them as they are.
    fn push_frozen(&mut self, buf: FrozenBuf) {
        if !buf.is_empty() {
            let mut copy = self.buffer(buf.len());
            copy.extend_from_slice(&buf);
            self.push(copy);
        }
    }
}

impl Sink for Encoded {
    fn buffer(&self, capacity: usize) -> ByteBuf {
        Encoded::buffer(self, capacity)
    }

    fn push(&mut self, buf: ByteBuf) {
        Encoded::push(self, buf);
    }

    fn push_frozen(&mut self, buf: FrozenBuf) {
        Encoded::push_frozen(self, buf);
    }
}

/// Queues `msg` followed by `suffix`: appended in place if `msg` has the
/// spare room (no copy, no allocation), copied together into one buffer if
/// `msg` is at most [`COPY_LIMIT`] bytes, else as two buffers (`msg` as it
/// is, then a small one holding `suffix`).
///
/// ```
/// use wharf_codec::sink::push_with_suffix;
/// use wharf_transport::buf::Allocator;
/// use wharf_transport::Encoded;
///
/// let alloc = Allocator::default();
/// let mut out = Encoded::new(alloc);
/// let mut line = alloc.buffer(5);
/// line.extend_from_slice(b"hello");
/// push_with_suffix(&mut out, line, b"\r\n");
/// assert_eq!(out.drain().map(|m| m.len()).sum::<usize>(), 7);
/// ```
pub fn push_with_suffix<S: Sink + ?Sized>(out: &mut S, mut msg: ByteBuf, suffix: &[u8]) {
    if msg.writable_bytes() >= suffix.len() {
        // The writable bytes belong to this view alone (views never
        // overlap), so appending cannot touch anyone else's bytes.
        msg.extend_from_slice(suffix);
        out.push(msg);
    } else if msg.len() <= COPY_LIMIT {
        let mut joined = out.buffer(msg.len().saturating_add(suffix.len()));
        joined.extend_from_slice(&msg);
        joined.extend_from_slice(suffix);
        out.push(joined);
    } else {
        out.push(msg);
        let mut tail = out.buffer(suffix.len());
        tail.extend_from_slice(suffix);
        out.push(tail);
    }
}

/// Queues `prefix` followed by `msg`: copied together into one buffer if
/// `msg` is at most [`COPY_LIMIT`] bytes, else as two buffers (a small one
/// holding `prefix`, then `msg` as it is).
///
/// ```
/// use wharf_codec::sink::push_with_prefix;
/// use wharf_transport::buf::Allocator;
/// use wharf_transport::Encoded;
///
/// let alloc = Allocator::default();
/// let mut out = Encoded::new(alloc);
/// let mut body = alloc.buffer(4096);
/// body.extend_from_slice(&[7; 4096]);
/// push_with_prefix(&mut out, &4096u32.to_be_bytes(), body);
/// assert_eq!(out.drain().count(), 2); // the header, then the body as it was
/// ```
pub fn push_with_prefix<S: Sink + ?Sized>(out: &mut S, prefix: &[u8], msg: ByteBuf) {
    if msg.len() <= COPY_LIMIT {
        let mut joined = out.buffer(prefix.len().saturating_add(msg.len()));
        joined.extend_from_slice(prefix);
        joined.extend_from_slice(&msg);
        out.push(joined);
    } else {
        let mut head = out.buffer(prefix.len());
        head.extend_from_slice(prefix);
        out.push(head);
        out.push(msg);
    }
}

/// Writes one message made of many pieces to a [`Sink`], in order: pieces
/// of at most [`COPY_LIMIT`] bytes are copied together into a buffer of
/// their own, larger ones are queued as they are (after the small pieces
/// before them). A RESP array of a thousand short values becomes one
/// buffer; one with a 1 MB value in the middle becomes three entries, the
/// value not copied.
///
/// `small_bytes` is how many bytes the small pieces will take in all, if
/// known (else a guess): the first buffer is allocated that large, so a
/// good estimate means a single allocation. The pending buffer is queued
/// by [`finish`](Self::finish), or when the writer is dropped.
///
/// Threading: borrows its sink; used on the encoding thread.
///
/// ```
/// use wharf_codec::sink::Pieces;
/// use wharf_transport::buf::{Allocator, FrozenBuf};
/// use wharf_transport::{Encoded, OutboundMessage};
///
/// let alloc = Allocator::default();
/// let mut out = Encoded::new(alloc);
/// let mut large = alloc.buffer(1 << 20);
/// large.extend_from_slice(&vec![b'x'; 1 << 20]);
/// let mut pieces = Pieces::new(&mut out, 32);
/// pieces.copy(b"*2\r\n$3\r\n");
/// pieces.frozen(FrozenBuf::from_static(b"foo"));
/// pieces.copy(b"\r\n$1048576\r\n");
/// pieces.buf(large);
/// pieces.copy(b"\r\n");
/// pieces.finish();
/// let sizes: Vec<usize> = out.drain().map(|m| m.len()).collect();
/// assert_eq!(sizes, [23, 1 << 20, 2]);
/// ```
#[derive(Debug)]
pub struct Pieces<'a, S: Sink + ?Sized> {
    out: &'a mut S,
    /// Small pieces copied since the last large one.
    pending: Option<ByteBuf>,
    /// Small bytes still expected, for the size of the next buffer.
    expected: usize,
}

impl<'a, S: Sink + ?Sized> Pieces<'a, S> {
    /// A writer to `out`, expecting about `small_bytes` bytes of small
    /// pieces.
    pub fn new(out: &'a mut S, small_bytes: usize) -> Pieces<'a, S> {
        Pieces {
            out,
            pending: None,
            expected: small_bytes,
        }
    }

    /// Copies `bytes` after the pieces before (whatever their length).
    pub fn copy(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let expected = self.expected;
        let out = &mut *self.out;
        let pending = self
            .pending
            .get_or_insert_with(|| out.buffer(expected.max(bytes.len())));
        pending.extend_from_slice(bytes);
        self.expected = expected.saturating_sub(bytes.len());
    }

    /// Adds `buf`: copied if it is at most [`COPY_LIMIT`] bytes, else
    /// queued as it is.
    pub fn buf(&mut self, buf: ByteBuf) {
        if buf.len() <= COPY_LIMIT {
            self.copy(&buf);
        } else {
            self.flush();
            self.out.push(buf);
        }
    }

    /// Adds shared bytes: copied if they are at most [`COPY_LIMIT`] bytes,
    /// else queued as they are (no copy, one more reference).
    pub fn frozen(&mut self, buf: FrozenBuf) {
        if buf.len() <= COPY_LIMIT {
            self.copy(&buf);
        } else {
            self.flush();
            self.out.push_frozen(buf);
        }
    }

    /// Queues the small pieces still pending; the message is complete.
    pub fn finish(mut self) {
        self.flush();
    }

    fn flush(&mut self) {
        if let Some(pending) = self.pending.take() {
            self.out.push(pending);
        }
    }
}

impl<S: Sink + ?Sized> Drop for Pieces<'_, S> {
    fn drop(&mut self) {
        self.flush();
    }
}
