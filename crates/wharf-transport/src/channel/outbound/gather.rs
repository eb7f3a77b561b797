//! Write coalescing: small writes copied into the queue's last unflushed
//! buffer, so that a batch of small replies (a pipelined protocol's
//! `+OK`s) leaves in a few iovecs instead of one each, without handlers
//! gathering them by hand. Copying a few hundred bytes costs less than an
//! entry, an iovec and a buffer returned to the pool for each.

use super::{Gathering, OutboundBuffer, OutboundMessage};

/// The size of a buffer that small writes are gathered in, once the last
/// entry has no room left.
const GATHER_BUF: usize = 4 << 10;

impl OutboundBuffer {
    /// Copies a small in-memory write into the last entry, if that entry
    /// is unflushed and either a buffer with room for it or small itself
    /// (then a new gathering buffer takes its place); `false` if neither.
    pub(super) fn gather(&mut self, msg: &OutboundMessage, gathering: Gathering) -> bool {
        let Some(bytes) = msg.bytes() else {
            return false;
        };
        if self.entries.len() <= self.flushed {
            // No last entry, or it is flushed: what follows is not.
            return false;
        }
        let Some(last) = self.entries.back_mut() else {
            return false;
        };
        if let OutboundMessage::Buf(buf) = last
            && buf.writable_bytes() >= bytes.len()
        {
            buf.extend_from_slice(bytes);
            return true;
        }
        let Some(head) = last.bytes().filter(|b| b.len() <= gathering.max) else {
            return false;
        };
        let mut gathered = gathering
            .allocator
            .buffer(GATHER_BUF.max(head.len() + bytes.len()));
        gathered.extend_from_slice(head);
        gathered.extend_from_slice(bytes);
        *last = OutboundMessage::Buf(gathered);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    use wharf_buf::{Allocator, FrozenBuf};

    use super::*;
    use crate::channel::outbound::{ENTRY_OVERHEAD, Written};
    use crate::channel::socket::Socket;
    use crate::file_region::FileRegion;

    /// A buffer holding exactly `data`, with no room to spare.
    fn exact(data: &[u8]) -> OutboundMessage {
        let mut b = Allocator::unpooled().buffer(data.len().max(1));
        b.extend_from_slice(data);
        OutboundMessage::Buf(b)
    }

    fn queue() -> OutboundBuffer {
        OutboundBuffer::default()
    }

    fn gathering() -> Gathering {
        Gathering {
            max: 512,
            allocator: Allocator::unpooled(),
        }
    }

    /// A connected pair: the queue's side, and the peer that reads.
    fn pair() -> (Socket, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let sender = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (peer, _) = listener.accept().expect("accept");
        sender.set_nonblocking(true).expect("non-blocking");
        (Socket::Tcp(mio::net::TcpStream::from_std(sender)), peer)
    }

    /// Writes every flushed entry; returns what one write call took and
    /// released (the test's writes are small enough for one call).
    fn write_all(q: &mut OutboundBuffer, out: &Socket) -> (usize, usize) {
        match q.write_buffers(out, usize::MAX).expect("write") {
            Written::Progress(p) => (p.bytes, p.released),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn small_writes_between_flushes_leave_as_one_entry_in_order() {
        let (out, mut peer) = pair();
        let mut q = queue();
        let mut weight = 0;
        let mut expected = Vec::new();
        for i in 0..100u8 {
            let reply = vec![i; 1 + usize::from(i) % 40];
            expected.extend_from_slice(&reply);
            weight += if i % 2 == 0 {
                q.push(exact(&reply), gathering())
            } else {
                q.push(
                    OutboundMessage::Frozen({
                        let mut b = Allocator::unpooled().buffer(reply.len());
                        b.extend_from_slice(&reply);
                        b.freeze()
                    }),
                    gathering(),
                )
            };
        }
        assert_eq!(q.entries.len(), 1, "one entry gathers them all");
        assert_eq!(weight, expected.len() + ENTRY_OVERHEAD);
        assert_eq!(q.weight(), weight);
        q.mark_flushed();
        let (bytes, released) = write_all(&mut q, &out);
        assert_eq!((bytes, released), (expected.len(), weight));
        let mut received = vec![0; expected.len()];
        peer.read_exact(&mut received).expect("read");
        assert!(received == expected, "bytes reordered or lost");
    }

    #[test]
    fn nothing_is_added_to_a_flushed_entry() {
        let (out, mut peer) = pair();
        let mut q = queue();
        let mut first = Allocator::unpooled().buffer(1024);
        first.extend_from_slice(b"flushed");
        q.push(OutboundMessage::Buf(first), gathering());
        q.mark_flushed();
        q.push(exact(b" and not yet"), gathering());
        assert_eq!(
            q.entries.len(),
            2,
            "the flushed entry has room but is not touched"
        );
        assert_eq!(write_all(&mut q, &out).0, 7, "only the flushed bytes go");
        q.mark_flushed();
        assert_eq!(write_all(&mut q, &out).0, 12);
        let mut received = vec![0; 19];
        peer.read_exact(&mut received).expect("read");
        assert_eq!(&received, b"flushed and not yet");
    }

    #[test]
    fn large_writes_and_file_regions_are_queued_without_a_copy() {
        let mut q = queue();
        let big = vec![7u8; 513];
        let mut large = Allocator::unpooled().buffer(big.len());
        large.extend_from_slice(&big);
        let at = large.as_ptr();
        q.push(exact(b"head"), gathering());
        q.push(OutboundMessage::Buf(large), gathering());
        q.push(exact(b"tail"), gathering());
        assert_eq!(q.entries.len(), 3, "a write over the limit is an entry");
        let OutboundMessage::Buf(queued) = &q.entries[1] else {
            panic!("not a buffer")
        };
        assert_eq!(queued.as_ptr(), at, "the large buffer itself is queued");
        // A write that follows a large buffer without room starts an entry
        // (the large one is not copied into a gathering buffer).
        assert!(matches!(&q.entries[2], OutboundMessage::Buf(b) if &b[..] == b"tail"));
        // Nothing is gathered across a file region: what follows it waits
        // for it, in its own entry.
        let file = std::fs::File::open("/proc/self/exe").expect("a file");
        q.push(
            OutboundMessage::File(FileRegion::new(file, 0, 16)),
            gathering(),
        );
        q.push(exact(b"after"), gathering());
        assert_eq!(q.entries.len(), 5);
        assert!(matches!(&q.entries[4], OutboundMessage::Buf(b) if &b[..] == b"after"));
    }

    #[test]
    fn a_small_write_after_a_frozen_one_takes_its_place_in_a_new_buffer() {
        let mut q = queue();
        q.push(
            OutboundMessage::Frozen(FrozenBuf::from_static(b"+OK\r\n")),
            gathering(),
        );
        q.push(
            OutboundMessage::Frozen(FrozenBuf::from_static(b"+OK\r\n")),
            gathering(),
        );
        q.push(exact(b":1\r\n"), gathering());
        assert_eq!(q.entries.len(), 1);
        assert_eq!(q.entries[0].bytes(), Some(&b"+OK\r\n+OK\r\n:1\r\n"[..]));
        assert_eq!(q.weight(), 14 + ENTRY_OVERHEAD);
    }

    #[test]
    fn without_coalescing_every_write_is_an_entry() {
        let mut q = OutboundBuffer::default();
        for _ in 0..10 {
            q.push(exact(b"x"), Gathering::none());
        }
        assert_eq!(q.entries.len(), 10);
    }
}
