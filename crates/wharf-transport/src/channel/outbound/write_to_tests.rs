//! `write_to` over a real socket: the one-flushed-buffer path (partial
//! writes, an unflushed entry behind it, an empty buffer) and a head with
//! a small flushed region, which still leave by the gathering path.

use std::io::Read;
use std::sync::Arc;

use wharf_buf::Allocator;

use super::tests::{buf, pair, pattern};
use super::*;
use crate::EventLoopHandle;
use crate::channel::config::WaterMark;
use crate::channel::shared::{ChannelExtras, ChannelShared};
use crate::file_region::{TransferCounters, TransferStrategy};
use crate::reactor::handle::LoopShared;
use crate::reactor::mailbox::mailbox;
use crate::token::Token;

struct Env {
    _poll: mio::Poll,
    /// The loop's end of the mailbox, kept so that posts have somewhere to go.
    _inbox: crate::reactor::mailbox::Inbox<crate::reactor::handle::Task>,
    shared: Arc<ChannelShared>,
    counters: TransferCounters,
    extras: ChannelExtras,
    pipe: Option<crate::sys::file::Pipe>,
}

fn env() -> Env {
    let poll = mio::Poll::new().expect("poll");
    let waker = mio::Waker::new(poll.registry(), mio::Token(0)).expect("waker");
    let (mb, inbox) = mailbox(waker);
    let handle = EventLoopHandle {
        shared: Arc::new(LoopShared::new(0, mb)),
    };
    let shared = Arc::new(ChannelShared::new(
        Token::new(1, 0),
        handle,
        None,
        None,
        WaterMark::default(),
        true,
    ));
    Env {
        _poll: poll,
        _inbox: inbox,
        shared,
        counters: TransferCounters::default(),
        extras: ChannelExtras::default(),
        pipe: None,
    }
}

fn cx(e: &mut Env, max: usize) -> TransferCx<'_> {
    TransferCx {
        default: TransferStrategy::Auto,
        allocator: Allocator::unpooled(),
        pipe: &mut e.pipe,
        loop_stats: &e.counters,
        channel_stats: &e.extras,
        max_bytes: max,
        channel: &e.shared,
    }
}

/// One `write_to` that must make progress (the socket has room).
fn progress(q: &mut OutboundBuffer, out: &Socket, e: &mut Env) -> Progress {
    match q.write_to(out, &mut cx(e, 1 << 20)).expect("write") {
        Written::Progress(p) => p,
        other => panic!("{other:?}"),
    }
}

#[test]
fn one_big_flushed_buffer_in_partial_writes_releases_exactly_its_weight() {
    let mut e = env();
    let (out, mut peer) = pair();
    let mut q = OutboundBuffer::default();
    let data = pattern(2 << 20, 7);
    let weight = q.push(buf(&data), Gathering::none());
    q.mark_flushed();
    let mut released = 0;
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut partial = 0;
    while q.has_flushed() {
        loop {
            match q.write_to(&out, &mut cx(&mut e, 1024)).expect("write") {
                Written::Progress(p) => {
                    released += p.released;
                    if q.has_flushed() {
                        partial += 1;
                        assert_eq!(
                            p.released, p.bytes,
                            "a partial write releases its bytes only"
                        );
                    }
                    if !q.has_flushed() || p.bytes == 0 {
                        break;
                    }
                }
                Written::WouldBlock => break,
                Written::Pending => unreachable!(),
            }
            assert_eq!(q.weight() + released, weight, "weight accounted");
        }
        if q.has_flushed() {
            let n = peer.read(&mut chunk).expect("peer read");
            received.extend_from_slice(&chunk[..n]);
        }
    }
    // Everything is in the kernel now: read the rest, bounded in time.
    peer.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("read timeout");
    let mut rest = vec![0u8; data.len().saturating_sub(received.len())];
    peer.read_exact(&mut rest).expect("the rest of the bytes");
    received.extend_from_slice(&rest);
    assert!(partial > 3, "{partial} partial writes");
    assert!(received == data, "bytes lost, repeated or reordered");
    assert_eq!(released, weight);
    assert_eq!(q.weight(), 0);
    assert_eq!(q.entries.capacity(), 0, "queue given back");
}

#[test]
fn one_flushed_buffer_leaves_the_unflushed_entry_behind_it() {
    let mut e = env();
    let (out, _peer) = pair();
    let mut q = OutboundBuffer::default();
    let wa = q.push(buf(&pattern(100, 1)), Gathering::none());
    q.mark_flushed();
    let wb = q.push(buf(&pattern(200, 2)), Gathering::none());
    let p = progress(&mut q, &out, &mut e);
    assert_eq!(p.bytes, 100);
    assert_eq!(p.released, wa);
    assert!(!q.has_flushed());
    assert_eq!(q.entries.len(), 1);
    assert_eq!(q.weight(), wb);
    assert!(q.entries.capacity() > 0, "still holds the unflushed entry");
}

#[test]
fn an_empty_lone_flushed_buffer_is_dropped() {
    let mut e = env();
    let (out, _peer) = pair();
    let mut q = OutboundBuffer::default();
    let w = q.push(buf(&[]), Gathering::none());
    q.mark_flushed();
    let p = progress(&mut q, &out, &mut e);
    assert_eq!(p.bytes, 0);
    assert_eq!(p.released, w);
    assert!(!q.has_flushed());
    assert_eq!(q.weight(), 0);
}

#[test]
fn a_head_and_a_small_flushed_region_still_leave_in_one_write() {
    let mut e = env();
    let (out, mut peer) = pair();
    let path = std::env::temp_dir().join(format!("wharf-write-to-region-{}", std::process::id()));
    let body = pattern(1024, 9);
    std::fs::write(&path, &body).expect("write the file");
    let file = std::fs::File::open(&path).expect("open the file");
    let mut q = OutboundBuffer::default();
    let head = pattern(100, 3);
    q.push(buf(&head), Gathering::none());
    q.push(
        OutboundMessage::File(FileRegion::new(file, 0, 1024)),
        Gathering::none(),
    );
    q.mark_flushed();
    let p = progress(&mut q, &out, &mut e);
    assert_eq!(p.bytes, 1124, "head and region in one write");
    assert!(!q.has_flushed());
    assert_eq!(q.weight(), 0);
    let mut got = vec![0u8; 1124];
    peer.read_exact(&mut got).expect("head and region");
    assert_eq!(&got[..100], &head[..]);
    assert_eq!(&got[100..], &body[..]);
    let _ = std::fs::remove_file(&path);
}
