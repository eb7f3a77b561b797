//! The queue over a real loopback socket whose peer reads when the test
//! says so: partial writes resume at the right byte, one call gathers
//! at most `IOV_MAX` buffers and about `max_bytes`, and only flushed
//! entries go.

use std::io::Read;
use std::net::{TcpListener, TcpStream as StdStream};

use wharf_buf::{Allocator, ByteBuf};

use super::*;

/// A non-blocking sender with a small send buffer, and its peer.
pub(super) fn pair() -> (Socket, StdStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let sender = StdStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (peer, _) = listener.accept().expect("accept");
    socket2::SockRef::from(&sender)
        .set_send_buffer_size(16 << 10)
        .expect("SO_SNDBUF");
    socket2::SockRef::from(&peer)
        .set_recv_buffer_size(16 << 10)
        .expect("SO_RCVBUF");
    sender.set_nonblocking(true).expect("non-blocking");
    (Socket::Tcp(mio::net::TcpStream::from_std(sender)), peer)
}

/// A buffer holding `data`.
pub(super) fn buf(data: &[u8]) -> OutboundMessage {
    let mut b = Allocator::unpooled().buffer(data.len().max(1));
    b.extend_from_slice(data);
    OutboundMessage::Buf(b)
}

/// `len` bytes of a pattern that `seed` shifts.
pub(super) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Writes until the socket would block; returns the bytes written.
fn write_until_blocked(q: &mut OutboundBuffer, out: &Socket, max: usize) -> usize {
    let mut total = 0;
    loop {
        match q.write_buffers(out, max).expect("write") {
            Written::Progress(p) if p.bytes > 0 => total += p.bytes,
            Written::Progress(_) if !q.has_flushed() => return total,
            Written::Progress(_) => {}
            Written::WouldBlock => return total,
            Written::Pending => unreachable!("no file regions here"),
        }
    }
}

#[test]
fn partial_writes_resume_exactly_where_the_socket_stopped() {
    let (out, mut peer) = pair();
    let mut q = OutboundBuffer::default();
    let data: Vec<Vec<u8>> = (0..3).map(|i| pattern(512 << 10, i)).collect();
    let mut weight = 0;
    for d in &data {
        weight += q.push(buf(d), Gathering::none());
    }
    q.mark_flushed();
    let expected: Vec<u8> = data.concat();
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut rounds = 0;
    while q.has_flushed() {
        rounds += 1;
        let written = write_until_blocked(&mut q, &out, 4 << 20);
        assert!(
            written < expected.len(),
            "the small buffers make writes partial"
        );
        // The peer takes some: the queue resumes where it stopped.
        let n = peer.read(&mut chunk).expect("peer read");
        received.extend_from_slice(&chunk[..n]);
    }
    peer.set_nonblocking(true).expect("non-blocking peer");
    while let Ok(n) = peer.read(&mut chunk) {
        if n == 0 {
            break;
        }
        received.extend_from_slice(&chunk[..n]);
    }
    assert!(rounds > 3, "{rounds} rounds: the writes were not partial");
    assert_eq!(received.len(), expected.len());
    assert!(received == expected, "bytes lost, repeated or reordered");
    assert_eq!(q.discard(), 0, "everything released");
    assert!(weight > expected.len(), "entries count their overhead");
}

#[test]
fn one_call_gathers_at_most_iov_max_buffers() {
    let (out, _peer) = pair();
    let mut q = OutboundBuffer::default();
    for i in 0..(IOV_MAX * 3) {
        q.push(buf(&[i as u8]), Gathering::none());
    }
    q.mark_flushed();
    match q.write_buffers(&out, usize::MAX).expect("write") {
        Written::Progress(p) => {
            assert_eq!(p.bytes, IOV_MAX, "one gathering write of IOV_MAX iovecs");
            assert_eq!(p.released, IOV_MAX * (1 + ENTRY_OVERHEAD));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(q.flushed, 2 * IOV_MAX);
}

#[test]
fn one_call_offers_about_max_bytes_but_always_one_whole_entry() {
    let (out, _peer) = pair();
    let mut q = OutboundBuffer::default();
    for i in 0..4 {
        q.push(buf(&pattern(1000, i)), Gathering::none());
    }
    q.mark_flushed();
    match q.write_buffers(&out, 2500).expect("write") {
        Written::Progress(p) => assert_eq!(p.bytes, 2000, "two entries fit in 2500"),
        other => panic!("{other:?}"),
    }
    match q.write_buffers(&out, 10).expect("write") {
        Written::Progress(p) => assert_eq!(p.bytes, 1000, "one entry even over the bound"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn only_flushed_entries_are_written_and_empty_ones_are_skipped() {
    let (out, _peer) = pair();
    let mut q = OutboundBuffer::default();
    q.push(OutboundMessage::Buf(ByteBuf::new()), Gathering::none());
    q.push(buf(b"first"), Gathering::none());
    q.mark_flushed();
    q.push(buf(b"second"), Gathering::none());
    match q.write_buffers(&out, usize::MAX).expect("write") {
        Written::Progress(p) => assert_eq!(p.bytes, 5),
        other => panic!("{other:?}"),
    }
    assert!(!q.has_flushed(), "the unflushed entry waits");
    q.mark_flushed();
    match q.write_buffers(&out, usize::MAX).expect("write") {
        Written::Progress(p) => assert_eq!(p.bytes, 6),
        other => panic!("{other:?}"),
    }
    assert_eq!(q.discard(), 0);
}

#[test]
fn discard_releases_the_weight_of_everything_queued() {
    let mut q = OutboundBuffer::default();
    let w = q.push(buf(b"abc"), Gathering::none()) + q.push(buf(b"defgh"), Gathering::none());
    q.mark_flushed();
    assert_eq!(w, 8 + 2 * ENTRY_OVERHEAD);
    assert_eq!(q.discard(), w);
    assert!(!q.has_flushed());
}
