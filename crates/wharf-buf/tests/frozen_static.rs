//! `FrozenBuf::from_static` (issue 13 §2): constants such as `\r\n` or
//! `+OK\r\n` are sent as they are, without pooled memory or a reference
//! count, and behave like any other frozen bytes.

use bytes::{Buf, Bytes};
use wharf_buf::{Allocator, FrozenBuf, PoolConfig, PooledAllocator};

const OK: &[u8] = b"+OK\r\n";

#[test]
fn static_bytes_are_the_constant_itself() {
    let ok = FrozenBuf::from_static(OK);
    assert_eq!(&ok[..], OK);
    assert_eq!(ok.as_ptr(), OK.as_ptr());
    assert!(ok.is_static());
    let from: FrozenBuf = OK.into();
    assert_eq!(from, ok);
    assert_eq!(from.as_ptr(), OK.as_ptr());
}

#[test]
fn static_bytes_can_be_a_constant() {
    const PONG: FrozenBuf = FrozenBuf::from_static(b"+PONG\r\n");
    assert_eq!(&PONG[..], b"+PONG\r\n");
    const NONE: FrozenBuf = FrozenBuf::from_static(b"");
    assert!(NONE.is_empty());
}

#[test]
fn static_bytes_cost_no_pooled_memory() {
    let pool = Allocator::from(PooledAllocator::new(PoolConfig::default()));
    let before = pool.metrics();
    let ok = FrozenBuf::from_static(OK);
    let clones: Vec<FrozenBuf> = (0..1000).map(|_| ok.clone()).collect();
    let slices: Vec<FrozenBuf> = clones.iter().map(|c| c.slice(1..3)).collect();
    assert!(slices.iter().all(|s| &s[..] == b"OK" && s.is_static()));
    drop((clones, slices));
    let after = pool.metrics();
    assert_eq!(after.allocations, before.allocations);
    assert_eq!(after.bytes_in_use, 0);
}

#[test]
fn static_bytes_behave_as_frozen_bytes() {
    let mut ok = FrozenBuf::from_static(OK);
    let tail = ok.slice(3..);
    assert_eq!(&tail[..], b"\r\n");
    ok.advance(1);
    assert_eq!(ok.chunk(), b"OK\r\n");
    assert_eq!(ok.remaining(), 4);
    let bytes = Bytes::from(ok.clone());
    assert_eq!(bytes, &b"OK\r\n"[..]);
    // Dropping on another thread is fine: there is nothing to give back.
    std::thread::spawn(move || drop(ok)).join().unwrap();
    assert!(FrozenBuf::from_static(b"").slice(..).is_empty());
}
