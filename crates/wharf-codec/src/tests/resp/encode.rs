//! Every reply type encoded byte for byte through the transport's sink;
//! large values sent without a copy, constants without a buffer; the two
//! public text parsers.

use std::borrow::Cow;

use wharf_buf::{Allocator, FrozenBuf};
use wharf_transport::{Codec, Encoded, OutboundMessage};

use crate::resp::{Reply, RespCodec, parse_integer, split_args};
use crate::sink::COPY_LIMIT;
use crate::tests::buf;

/// The reply as encoded by the codec: the entries' (is it frozen, bytes).
fn encoded(reply: Reply) -> Vec<(bool, Vec<u8>)> {
    let mut out = Encoded::new(Allocator::default());
    RespCodec::new().encode(reply, &mut out).unwrap();
    out.drain()
        .map(|m| match m {
            OutboundMessage::Buf(b) => (false, b.to_vec()),
            OutboundMessage::Frozen(f) => (true, f.to_vec()),
            other => panic!("unexpected entry {other:?}"),
        })
        .collect()
}

/// The bytes on the wire, checked against `to_bytes`, `encoded_len` and
/// `message_size`.
fn wire(reply: Reply) -> Vec<u8> {
    let expected = reply.to_bytes();
    assert_eq!(reply.encoded_len(), expected.len());
    assert_eq!(RespCodec::message_size(&reply), expected.len());
    let got: Vec<u8> = encoded(reply).into_iter().flat_map(|e| e.1).collect();
    assert_eq!(got, expected);
    got
}

/// Integers and lengths are written by hand, not by `write!`: every
/// number of digits, both signs and both ends of `i64` as Rust prints them.
#[test]
fn integers_in_decimal_as_rust_prints_them() {
    let mut values = vec![0, 1, -1, 9, -9, 10, -10, i64::MAX, i64::MIN, i64::MIN + 1];
    let mut p: i64 = 1;
    while let Some(next) = p.checked_mul(10) {
        values.extend([p - 1, p, p + 1, -(p - 1), -p, -(p + 1)]);
        p = next;
    }
    for n in values {
        assert_eq!(wire(Reply::Integer(n)), format!(":{n}\r\n").into_bytes());
    }
}

#[test]
fn every_reply_type_byte_for_byte() {
    assert_eq!(wire(Reply::static_simple("OK")), b"+OK\r\n");
    assert_eq!(wire(Reply::simple("QUEUED")), b"+QUEUED\r\n");
    assert_eq!(
        wire(Reply::static_error("ERR syntax error")),
        b"-ERR syntax error\r\n"
    );
    assert_eq!(
        wire(Reply::error(b"WRONGTYPE x".to_vec())),
        b"-WRONGTYPE x\r\n"
    );
    assert_eq!(wire(Reply::Integer(0)), b":0\r\n");
    assert_eq!(wire(Reply::Integer(i64::MIN)), b":-9223372036854775808\r\n");
    assert_eq!(wire(Reply::integer(42)), b":42\r\n");
    assert_eq!(
        wire(Reply::bulk(buf(b"hello").freeze())),
        b"$5\r\nhello\r\n"
    );
    assert_eq!(wire(Reply::bulk(FrozenBuf::empty())), b"$0\r\n\r\n");
    assert_eq!(wire(Reply::Null), b"$-1\r\n");
    assert_eq!(wire(Reply::NullArray), b"*-1\r\n");
    assert_eq!(wire(Reply::Array(Vec::new())), b"*0\r\n");
    assert_eq!(
        wire(Reply::Array(vec![
            Reply::bulk(FrozenBuf::from_static(b"a")),
            Reply::Null,
            Reply::Array(vec![Reply::Integer(1), Reply::ok()]),
        ])),
        b"*3\r\n$1\r\na\r\n$-1\r\n*2\r\n:1\r\n+OK\r\n"
    );
    assert_eq!(wire(Reply::ok()), b"+OK\r\n");
    assert_eq!(wire(Reply::pong()), b"+PONG\r\n");
}

#[test]
fn newlines_in_status_and_error_texts_are_sent_as_spaces() {
    assert_eq!(
        wire(Reply::error("ERR unknown command 'a\r\nb'")),
        b"-ERR unknown command 'a  b'\r\n"
    );
    assert_eq!(wire(Reply::Simple(Cow::Borrowed(b"x\ny"))), b"+x y\r\n");
}

#[test]
fn constants_cost_no_buffer() {
    for reply in [
        Reply::ok(),
        Reply::pong(),
        Reply::integer(0),
        Reply::integer(1),
    ] {
        let entries = encoded(reply);
        assert_eq!(entries.len(), 1);
        assert!(entries[0].0, "sent as static frozen bytes");
    }
}

#[test]
fn a_small_reply_is_one_buffer() {
    let values: Vec<Reply> = (0..100)
        .map(|i| Reply::bulk(buf(format!("value-{i}").as_bytes()).freeze()))
        .collect();
    let entries = encoded(Reply::Array(values));
    assert_eq!(entries.len(), 1);
    assert!(!entries[0].0);
}

#[test]
fn a_large_value_is_sent_as_it_is() {
    let value = buf(&vec![b'v'; COPY_LIMIT + 1]).freeze();
    let at = value.as_ptr();
    let mut out = Encoded::new(Allocator::default());
    RespCodec::new()
        .encode(
            Reply::Array(vec![Reply::Integer(7), Reply::Bulk(value)]),
            &mut out,
        )
        .unwrap();
    let entries: Vec<OutboundMessage> = out.drain().collect();
    assert_eq!(entries.len(), 3);
    let OutboundMessage::Frozen(sent) = &entries[1] else {
        panic!("the value was copied: {entries:?}");
    };
    assert_eq!(sent.as_ptr(), at);
    let OutboundMessage::Buf(head) = &entries[0] else {
        panic!("{entries:?}");
    };
    assert_eq!(
        &head[..],
        format!("*2\r\n:7\r\n${}\r\n", COPY_LIMIT + 1).as_bytes()
    );
}

#[test]
fn parse_integer_is_redis_string2ll() {
    for (text, value) in [
        (&b"0"[..], Some(0)),
        (b"-1", Some(-1)),
        (b"10", Some(10)),
        (b"9223372036854775807", Some(i64::MAX)),
        (b"-9223372036854775808", Some(i64::MIN)),
        (b"9223372036854775808", None),
        (b"-9223372036854775809", None),
        (b"", None),
        (b"-", None),
        (b"-0", None),
        (b"00", None),
        (b"+1", None),
        (b"1.0", None),
        (b"1e3", None),
        (b" 1", None),
        (b"1 ", None),
        (b"000000000000000000001", None),
    ] {
        assert_eq!(
            parse_integer(text),
            value,
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }
}

#[test]
fn split_args_is_redis_sdssplitargs() {
    let split = |s: &[u8]| split_args(s).map(|v| v.into_iter().collect::<Vec<_>>());
    assert_eq!(split(b""), Some(vec![]));
    assert_eq!(split(b"  \t "), Some(vec![]));
    assert_eq!(split(b"a  b"), Some(vec![b"a".to_vec(), b"b".to_vec()]));
    assert_eq!(split(b"\"\""), Some(vec![Vec::new()]));
    assert_eq!(
        split(b"\"\\x4a\\x4G\\t\\q\""),
        Some(vec![b"Jx4G\tq".to_vec()])
    );
    assert_eq!(split(b"'a\\nb'"), Some(vec![b"a\\nb".to_vec()]));
    assert_eq!(split(b"a\"b c\""), Some(vec![b"ab c".to_vec()]));
    // \v and \f are blanks between arguments but not inside one.
    assert_eq!(split(b"\x0ba\x0bb"), Some(vec![b"a\x0bb".to_vec()]));
    // A NUL ends the line.
    assert_eq!(split(b"a\0b c"), Some(vec![b"a".to_vec()]));
    assert_eq!(split(b"\"a"), None);
    assert_eq!(split(b"\"a\\\""), None);
    assert_eq!(split(b"'a'b"), None);
}
