//! Where encoders put their bytes, and how a message and its header or
//! delimiter go out together without copying large messages.
//!
//! Encoders write to a [`Sink`] rather than to [`Encoded`] directly:
//! `Encoded` can only be made by the transport, and the crate's tests need
//! to run the very same encoding code against a plain list.

use wharf_buf::ByteBuf;
use wharf_transport::Encoded;

/// Messages up to this many bytes are copied into one buffer with their
/// header or delimiter (one queue entry, one iovec); longer ones go out as
/// they are, next to a small buffer for the header or delimiter.
pub(crate) const COPY_LIMIT: usize = 512;

/// A destination for encoded buffers.
pub(crate) trait Sink {
    /// A new, empty buffer with room for `capacity` bytes.
    fn buffer(&self, capacity: usize) -> ByteBuf;
    /// Queues `buf` after everything pushed before.
    fn push(&mut self, buf: ByteBuf);
}

impl Sink for Encoded {
    fn buffer(&self, capacity: usize) -> ByteBuf {
        Encoded::buffer(self, capacity)
    }

    fn push(&mut self, buf: ByteBuf) {
        Encoded::push(self, buf);
    }
}

/// Queues `msg` followed by `suffix`: appended in place if `msg` has the
/// room (no copy, no allocation), copied together if `msg` is small, else
/// as two buffers.
pub(crate) fn push_with_suffix(out: &mut impl Sink, mut msg: ByteBuf, suffix: &[u8]) {
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

/// Queues `prefix` followed by `msg`: copied together if `msg` is small,
/// else as two buffers.
pub(crate) fn push_with_prefix(out: &mut impl Sink, prefix: &[u8], msg: ByteBuf) {
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
