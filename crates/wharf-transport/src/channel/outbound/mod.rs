//! The outbound queue of a channel: what was written and not yet sent.
//!
//! Writes are queued; a flush marks everything queued so far as ready to
//! send, and the channel then writes consecutive buffers with one `writev`
//! (at most [`IOV_MAX`] of them and a bounded number of bytes a call; a
//! small file region that comes next is read and joins them when its
//! strategy is `Auto`, or else they are sent with `MSG_MORE`, so that a
//! response head and a small file share a packet), and file
//! regions with their transfer strategy, in queue order, resuming after
//! partial writes. The queue counts its bytes, plus a fixed overhead per
//! entry, against the channel's water marks.
//!
//! Small writes are gathered: one of at most the channel's
//! [`coalesce_writes`](crate::ChannelConfig::coalesce_writes) bytes is
//! copied into the last unflushed buffer when it has room (or into a new
//! buffer that takes over a small last entry) instead of becoming an
//! entry of its own, so that a batch of small replies leaves as a few
//! iovecs instead of one each. Larger buffers and file regions are queued
//! as they are, without a copy.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use wharf_buf::{Allocator, ByteBuf, FrozenBuf};

use crate::channel::socket::Socket;
use crate::channel::spare;
use crate::file_region::{FileRegion, Inline, Step, TransferCx};
use crate::relay::SplicedBytes;
use crate::sys::net::send_vectored;

mod gather;
mod plaintext;

pub(crate) use plaintext::Taken;

/// Most iovecs one `writev` takes (Linux's `IOV_MAX`, Netty's limit).
pub const IOV_MAX: usize = 1024;

/// File regions up to this size share a packet with the buffers written
/// before them (`MSG_MORE`). Measured with a response head and a file, on
/// loopback: at 1 KiB one packet instead of two took 15 % less server CPU
/// per request; at 1 MiB the kernel copied the file into the socket instead
/// of referencing its pages once the head waited in the same skb, doubling
/// the CPU per request. So only small regions are merged.
pub(crate) const MERGE_REGION_MAX: u64 = 16 << 10;

/// A file region of at most [`MERGE_REGION_MAX`] bytes right behind
/// buffers, whose strategy is `Auto`, is read into memory (one `pread`)
/// and leaves with them in one `writev`, instead of a `sendmsg` with
/// `MSG_MORE` and a `sendfile`: measured with a response head and a 1 KiB
/// file on loopback, `sendfile`'s splice machinery and the second call
/// cost more than a `pread` and a copy (issue 12 §3). Larger regions, and
/// regions with a strategy of their own, are sent as before.
pub(crate) const INLINE_REGION_MAX: u64 = MERGE_REGION_MAX;

/// What each queued entry costs beyond its bytes, for the water marks: its
/// size in the queue (Netty counts a fixed entry overhead the same way).
pub(crate) const ENTRY_OVERHEAD: usize = std::mem::size_of::<OutboundMessage>();

/// iovecs gathered on the stack before a flush needs a heap array.
const STACK_IOVECS: usize = 64;

/// One entry of a channel's outbound queue, as produced by a codec.
#[derive(Debug)]
pub enum OutboundMessage {
    /// Bytes in a buffer that the queue owns.
    Buf(ByteBuf),
    /// Shared, immutable bytes (for example one response sent to many
    /// connections).
    Frozen(FrozenBuf),
    /// A range of a file, sent without passing through user space where
    /// the strategy allows.
    File(FileRegion),
    /// Bytes in a kernel pipe on their way from another channel (a
    /// [`Relay`](crate::Relay)), sent with `splice(2)`.
    Spliced(SplicedBytes),
}

impl OutboundMessage {
    /// Bytes left to send.
    pub fn len(&self) -> usize {
        match self {
            OutboundMessage::Buf(b) => b.len(),
            OutboundMessage::Frozen(b) => b.len(),
            OutboundMessage::File(f) => usize::try_from(f.remaining()).unwrap_or(usize::MAX),
            OutboundMessage::Spliced(s) => s.len(),
        }
    }

    /// Whether nothing is left to send.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes left to send, if the entry is in memory.
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        match self {
            OutboundMessage::Buf(b) => Some(b),
            OutboundMessage::Frozen(b) => Some(b),
            OutboundMessage::File(_) | OutboundMessage::Spliced(_) => None,
        }
    }

    /// Marks `n` bytes of an in-memory entry as sent.
    fn advance(&mut self, n: usize) {
        match self {
            OutboundMessage::Buf(b) => b.skip(n),
            OutboundMessage::Frozen(b) => bytes::Buf::advance(b, n),
            // A region (or a pipe) counts its own progress as it goes.
            OutboundMessage::File(_) | OutboundMessage::Spliced(_) => {}
        }
    }

    /// What the entry counts against the water marks.
    pub(crate) fn weight(&self) -> usize {
        self.len() + ENTRY_OVERHEAD
    }
}

impl From<ByteBuf> for OutboundMessage {
    fn from(buf: ByteBuf) -> OutboundMessage {
        OutboundMessage::Buf(buf)
    }
}

impl From<FrozenBuf> for OutboundMessage {
    fn from(buf: FrozenBuf) -> OutboundMessage {
        OutboundMessage::Frozen(buf)
    }
}

impl From<FileRegion> for OutboundMessage {
    fn from(region: FileRegion) -> OutboundMessage {
        OutboundMessage::File(region)
    }
}

/// What one write call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Bytes the socket took.
    pub bytes: usize,
    /// Weight (bytes plus entry overhead) that left the queue.
    pub released: usize,
}

/// The outcome of one write step.
#[derive(Debug)]
pub(crate) enum Written {
    /// Something was sent (or empty entries were dropped).
    Progress(Progress),
    /// The socket would block.
    WouldBlock,
    /// A file region waits for the blocking-I/O pool.
    Pending,
}

/// The queue. Entries `[0, flushed)` are flushed: ready to be written.
#[derive(Debug, Default)]
pub(crate) struct OutboundBuffer {
    entries: VecDeque<OutboundMessage>,
    flushed: usize,
    /// Total weight of all entries.
    weight: usize,
}

/// Which writes a queue gathers: those of up to `max` bytes (0: none),
/// into buffers from `allocator`. The channel's configuration says; it is
/// passed to each push rather than kept in every connection's queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gathering {
    pub max: usize,
    pub allocator: Allocator,
}

impl Gathering {
    /// No write is gathered.
    #[cfg(test)]
    pub(crate) fn none() -> Gathering {
        Gathering {
            max: 0,
            allocator: Allocator::unpooled(),
        }
    }
}

impl OutboundBuffer {
    /// Queues a message (not yet flushed), gathered into the last entry
    /// if `gathering` allows; returns the weight it adds (its bytes alone
    /// when it was gathered).
    pub(crate) fn push(&mut self, msg: OutboundMessage, gathering: Gathering) -> usize {
        let len = msg.len();
        if len > 0 && len <= gathering.max && self.gather(&msg, gathering) {
            self.weight += len;
            return len;
        }
        let weight = msg.weight();
        self.weight += weight;
        if self.entries.capacity() == 0 {
            spare::take_queue(&mut self.entries);
        }
        self.entries.push_back(msg);
        weight
    }

    /// Marks everything queued so far as ready to send.
    pub(crate) fn mark_flushed(&mut self) {
        self.flushed = self.entries.len();
    }

    /// What all queued entries weigh (bytes plus entry overhead).
    pub(crate) fn weight(&self) -> usize {
        self.weight
    }

    /// Whether flushed entries wait to be written.
    pub(crate) fn has_flushed(&self) -> bool {
        self.flushed > 0
    }

    /// Writes the front of the flushed entries: consecutive buffers with one
    /// gathering write (up to [`IOV_MAX`] of them and about `max_bytes`,
    /// always at least one), or one step of a file region.
    pub(crate) fn write_to(
        &mut self,
        stream: &Socket,
        cx: &mut TransferCx<'_>,
    ) -> io::Result<Written> {
        if self.flushed == 0 {
            return Ok(Written::Progress(Progress {
                bytes: 0,
                released: 0,
            }));
        }
        let more = self.flushed > 1;
        match self.entries.front_mut() {
            Some(OutboundMessage::File(region)) => {
                return match region.transfer(stream, cx)? {
                    Step::Sent(n) => Ok(Written::Progress(self.consume_file(n))),
                    Step::WouldBlock => Ok(Written::WouldBlock),
                    Step::Pending => Ok(Written::Pending),
                };
            }
            Some(OutboundMessage::Spliced(bytes)) => {
                return match bytes.drain_to(stream, more) {
                    Ok(n) => Ok(Written::Progress(self.consume_file(n))),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Written::WouldBlock),
                    Err(e) => Err(e),
                };
            }
            Some(front) if !more => {
                // One flushed buffer (an echo's reply, a response written
                // and flushed on its own): its bytes go out as they are,
                // with nothing to gather around them.
                if let Some(data) = front.bytes().filter(|d| !d.is_empty()) {
                    let len = data.len();
                    return match send_vectored(stream, &[IoSlice::new(data)], false) {
                        Ok(written) if written == len => {
                            Ok(Written::Progress(self.sent_whole(len)))
                        }
                        Ok(written) => Ok(Written::Progress(self.consume(written))),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Written::WouldBlock),
                        Err(e) => Err(e),
                    };
                }
            }
            _ => {}
        }
        self.gathered_write(stream, cx.max_bytes, Some(cx))
    }

    /// [`gathered_write`](Self::gathered_write) without reading small
    /// regions into memory (the tests' way of writing buffers alone).
    #[cfg(test)]
    fn write_buffers(&mut self, stream: &Socket, max_bytes: usize) -> io::Result<Written> {
        self.gathered_write(stream, max_bytes, None)
    }

    /// Writes consecutive flushed buffers with one `writev`. A small file
    /// region right behind them is read into memory and joins them (with
    /// `cx`, where its strategy is `Auto`; see [`INLINE_REGION_MAX`]), or
    /// else the buffers are sent with `MSG_MORE` so that it shares their
    /// packet.
    fn gathered_write(
        &mut self,
        stream: &Socket,
        max_bytes: usize,
        cx: Option<&TransferCx<'_>>,
    ) -> io::Result<Written> {
        let mut stack = [IoSlice::new(&[]); STACK_IOVECS];
        let mut heap = Vec::new();
        let mut count = 0;
        let mut bytes = 0;
        // A small file region right behind these buffers.
        let mut small_region_follows = false;
        // That region's bytes, read, and where it is in the queue.
        let mut inlined = None;
        // The most iovecs this write can take: the entries, and a region.
        let iovecs = self.flushed.min(IOV_MAX) + 1;
        for (at, entry) in self
            .entries
            .iter()
            .take(self.flushed.min(IOV_MAX))
            .enumerate()
        {
            let Some(data) = entry.bytes() else {
                // A file region or spliced bytes: written on their own,
                // unless a small region can be read and join the buffers.
                if let OutboundMessage::File(region) = entry
                    && (1..=MERGE_REGION_MAX).contains(&region.remaining())
                {
                    small_region_follows = true;
                    let room = count > 0 && bytes < max_bytes;
                    if room && let Some(cx) = cx {
                        inlined = region.inline(cx).map(|inline| (at, inline));
                    }
                }
                break;
            };
            if data.is_empty() {
                continue;
            }
            if count > 0 && bytes + data.len() > max_bytes {
                break;
            }
            push_iovec(&mut stack, &mut heap, count, IoSlice::new(data), iovecs);
            count += 1;
            bytes += data.len();
        }
        if count == 0 {
            // Only empty entries before the next region: drop them.
            return Ok(Written::Progress(self.consume(0)));
        }
        if let Some((_, inline)) = &inlined {
            let slice = match inline {
                Inline::Read(buf) => IoSlice::new(buf),
                Inline::Mapped(slice) => *slice,
            };
            push_iovec(&mut stack, &mut heap, count, slice, iovecs);
            count += 1;
            small_region_follows = false;
        }
        let iov = if heap.is_empty() {
            &stack[..count]
        } else {
            &heap[..]
        };
        // All buffers up to a small region are offered: let them and the
        // file share a packet (a response head and a small file: one).
        let written = send_vectored(stream, iov, small_region_follows);
        let mapped = match inlined {
            Some((at, Inline::Read(buf))) => {
                // The region's bytes are in memory now: the rest of it is
                // sent as a buffer (of the same weight).
                self.entries[at] = OutboundMessage::Buf(buf);
                false
            }
            Some((_, Inline::Mapped(_))) => true,
            None => false,
        };
        match written {
            Ok(written) if mapped && written > bytes => {
                // The buffers went, and some of the region from its map.
                let buffers = self.consume(bytes);
                let region = self.consume_mapped(written - bytes, cx);
                Ok(Written::Progress(Progress {
                    bytes: written,
                    released: buffers.released + region.released,
                }))
            }
            Ok(written) => Ok(Written::Progress(self.consume(written))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Written::WouldBlock),
            Err(e) => Err(e),
        }
    }

    /// Accounts for `n` bytes the region now at the front sent from its
    /// map in a gathered write.
    fn consume_mapped(&mut self, n: usize, cx: Option<&TransferCx<'_>>) -> Progress {
        if let (Some(OutboundMessage::File(region)), Some(cx)) = (self.entries.front_mut(), cx) {
            region.sent_from_map(n, cx);
        }
        self.consume_file(n)
    }

    /// Accounts for `n` bytes a file region (or spliced bytes) at the front
    /// sent, dropping it when it is done.
    fn consume_file(&mut self, n: usize) -> Progress {
        let mut released = n;
        if self.entries.front().is_some_and(|e| e.is_empty()) {
            self.entries.pop_front();
            self.flushed -= 1;
            released += ENTRY_OVERHEAD;
            spare::give_back_queue(&mut self.entries);
        }
        self.weight -= released;
        Progress { bytes: n, released }
    }

    /// Removes the only flushed entry, an in-memory one whose `len` bytes
    /// all went: what [`consume`](Self::consume) does for it, without the
    /// loop.
    fn sent_whole(&mut self, len: usize) -> Progress {
        debug_assert!(self.flushed == 1 && self.entries.front().is_some_and(|e| e.len() == len));
        self.entries.pop_front();
        self.flushed = 0;
        let released = len + ENTRY_OVERHEAD;
        self.weight -= released;
        spare::give_back_queue(&mut self.entries);
        Progress {
            bytes: len,
            released,
        }
    }

    /// Removes `n` written bytes from the front of the flushed entries,
    /// and any flushed buffers that are empty (not file regions, which
    /// `consume_file` handles).
    fn consume(&mut self, written: usize) -> Progress {
        let mut n = written;
        let mut released = 0;
        while self.flushed > 0 {
            let Some(front) = self.entries.front_mut() else {
                break;
            };
            if matches!(
                front,
                OutboundMessage::File(_) | OutboundMessage::Spliced(_)
            ) {
                break;
            }
            let len = front.len();
            if n < len {
                if n > 0 {
                    front.advance(n);
                    released += n;
                    n = 0;
                }
                break;
            }
            n -= len;
            released += len + ENTRY_OVERHEAD;
            self.entries.pop_front();
            self.flushed -= 1;
        }
        debug_assert_eq!(n, 0, "the socket took more bytes than were offered");
        self.weight -= released;
        spare::give_back_queue(&mut self.entries);
        Progress {
            bytes: written,
            released,
        }
    }

    /// Drops every entry (the channel is closing without sending them);
    /// returns the weight released.
    pub(crate) fn discard(&mut self) -> usize {
        let weight = self.weight;
        self.entries.clear();
        spare::give_back_queue(&mut self.entries);
        self.flushed = 0;
        self.weight = 0;
        weight
    }
}

/// Puts the `count`th iovec of a write in the stack array while it has
/// room, else in `heap`, which takes the whole array first (64 iovecs then
/// a 65th, whether a buffer or a small region's bytes) with room for
/// `most` in all.
fn push_iovec<'a>(
    stack: &mut [IoSlice<'a>; STACK_IOVECS],
    heap: &mut Vec<IoSlice<'a>>,
    count: usize,
    slice: IoSlice<'a>,
    most: usize,
) {
    if count < STACK_IOVECS {
        stack[count] = slice;
        return;
    }
    if heap.is_empty() {
        heap.reserve(most);
        heap.extend_from_slice(&stack[..]);
    }
    heap.push(slice);
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod write_to_tests;
