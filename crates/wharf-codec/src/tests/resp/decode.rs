//! Every request form decoded, fed in one read, one byte per read and in
//! odd reads; bulks shared with the input; the reservation for large
//! bulks; the end of input.

use wharf_buf::ByteBuf;
use wharf_transport::{Codec, CodecError};

use super::{args, decode, request};
use crate::resp::{RespCodec, RespLimits};
use crate::tests::{buf, inside};

#[test]
fn an_array_of_bulk_strings_is_a_command() {
    let seen = decode(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n").ok();
    assert_eq!(seen, [args(&[b"SET", b"k", b"value"])]);
}

#[test]
fn bulks_are_binary_safe() {
    let value: Vec<u8> = (0..=255).collect();
    let data = request(&[b"SET", b"\r\n\0", &value, b""]);
    assert_eq!(
        decode(&data).ok(),
        [args(&[b"SET", b"\r\n\0", &value, b""])]
    );
}

#[test]
fn inline_commands_are_split_as_redis_splits_them() {
    let seen = decode(b"PING\r\nSET  k \"a b\\x41\\n\"\r\nECHO 'it\\'s'\nGET\tk\r\n").ok();
    assert_eq!(
        seen,
        [
            args(&[b"PING"]),
            args(&[b"SET", b"k", b"a bA\n"]),
            args(&[b"ECHO", b"it's"]),
            args(&[b"GET", b"k"]),
        ]
    );
}

#[test]
fn empty_requests_are_skipped() {
    let data = b"*0\r\n*-1\r\n\r\n   \r\n\n*1\r\n$4\r\nPING\r\n*-7\r\n";
    assert_eq!(decode(data).ok(), [args(&[b"PING"])]);
}

#[test]
fn pipelined_requests_come_in_order() {
    let mut data = Vec::new();
    let mut expected = Vec::new();
    for i in 0..100u32 {
        let key = format!("key:{i}");
        if i % 3 == 0 {
            data.extend_from_slice(format!("GET {key}\r\n").as_bytes());
        } else {
            data.extend_from_slice(&request(&[b"GET", key.as_bytes()]));
        }
        expected.push(args(&[b"GET", key.as_bytes()]));
    }
    assert_eq!(decode(&data).ok(), expected);
}

#[test]
fn redis_skips_the_bytes_after_a_header_and_a_bulk_unchecked() {
    // Redis looks for '\r' only, and skips two bytes after every bulk.
    let seen = decode(b"*2\rX$4\r\nECHOab$2\r?hi!!").ok();
    assert_eq!(seen, [args(&[b"ECHO", b"hi"])]);
}

#[test]
fn the_kind_of_request_is_told_by_its_first_byte() {
    // "$" or ":" starting a request is an inline command, as in Redis.
    let seen = decode(b"$3 x\r\n:1\r\n").ok();
    assert_eq!(seen, [args(&[b"$3", b"x"]), args(&[b":1"])]);
}

#[test]
fn array_bulks_share_the_memory_they_were_read_into() {
    let data = request(&[b"SET", b"key", &[7u8; 1000]]);
    let mut input = buf(&data);
    let (start, len) = (input.as_ptr(), input.len());
    let mut out = Vec::new();
    RespCodec::new().decode(&mut input, &mut out).unwrap();
    let command = out.pop().unwrap();
    assert!(!command.is_inline());
    assert_eq!(command.name(), b"SET");
    assert_eq!(command.len(), 3);
    assert!(command.args().iter().all(|a| inside(a, start, len)));
}

#[test]
fn an_inline_line_at_the_limit_is_accepted() {
    let limits = RespLimits {
        max_inline_len: 16,
        ..RespLimits::default()
    };
    // 16 bytes before the '\n' (the '\r' counted): at the limit.
    let seen = super::run_three_ways(limits, b"ECHO 0123456789\r\n", &[5]).ok();
    assert_eq!(seen, [args(&[b"ECHO", b"0123456789"])]);
}

/// The codec and a cumulation that has received `data`, decoded.
fn after(data: &[u8]) -> (RespCodec, ByteBuf) {
    let mut codec = RespCodec::new();
    let mut input = buf(data);
    let mut out = Vec::new();
    codec.decode(&mut input, &mut out).unwrap();
    assert!(out.is_empty());
    (codec, input)
}

#[test]
fn a_small_bulk_is_reserved_whole_as_soon_as_it_is_announced() {
    let (codec, input) = after(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000\r\n");
    assert!(input.is_empty(), "headers and earlier bulks are consumed");
    assert_eq!(codec.size_hint(&input), Some(1002));
    let (codec, input) = after(b"*1\r\n$65534\r\n");
    assert_eq!(codec.size_hint(&input), Some(65536));
}

#[test]
fn a_large_bulk_is_reserved_as_its_bytes_arrive() {
    const LEN: usize = 400 << 20;
    let header = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${LEN}\r\n");
    // Announced, nothing sent: one read buffer's worth.
    let (codec, input) = after(header.as_bytes());
    assert_eq!(codec.size_hint(&input), Some(64 << 10));
    // Some sent: twice what arrived.
    let mut data = header.clone().into_bytes();
    data.extend_from_slice(&vec![1; 1 << 20]);
    let (codec, input) = after(&data);
    assert_eq!(input.len(), 1 << 20);
    assert_eq!(codec.size_hint(&input), Some(2 << 20));
    // A sixteenth sent: the whole bulk and its "\r\n".
    let mut data = header.into_bytes();
    data.extend_from_slice(&vec![1; LEN / 16 + 1]);
    let (codec, input) = after(&data);
    assert_eq!(codec.size_hint(&input), Some(LEN + 2));
}

#[test]
fn no_hint_between_requests_or_while_reading_headers() {
    let (codec, input) = after(b"*2\r\n$3\r\nGET\r\n");
    assert_eq!(codec.size_hint(&input), None);
    let (codec, input) = after(b"*2\r\n$3\r\nGET\r\n$1");
    assert_eq!(codec.size_hint(&input), None);
    let (codec, input) = after(b"PIN");
    assert_eq!(codec.size_hint(&input), None);
}

#[test]
fn a_large_bulk_ends_up_in_one_buffer_of_its_size() {
    // The channel's part, played here: reserve what the hint says, fill.
    const LEN: usize = 8 << 20;
    let mut codec = RespCodec::new();
    let mut input = buf(format!("*2\r\n$4\r\nECHO\r\n${LEN}\r\n").as_bytes());
    let mut out = Vec::new();
    let mut grown = 0;
    let mut sent = 0;
    while out.is_empty() {
        codec.decode(&mut input, &mut out).unwrap();
        let hint = codec.size_hint(&input);
        if let Some(total) = hint.filter(|&t| t > input.len() + input.writable_bytes()) {
            grown += 1;
            input.reserve(total - input.len());
        }
        let n = (64 << 10).min(LEN + 2 - sent);
        let body: Vec<u8> = (sent..sent + n).map(|i| (i % 251) as u8).collect();
        input.extend_from_slice(&body);
        sent += n;
        if sent == LEN + 2 && out.is_empty() {
            codec.decode(&mut input, &mut out).unwrap();
        }
    }
    let value = &out[0].args()[1];
    assert_eq!(value.len(), LEN);
    assert_eq!(value[LEN - 1], ((LEN - 1) % 251) as u8);
    // 64 KiB, then doubling to 512 KiB, then the whole: a handful.
    assert!(grown <= 6, "{grown} reservations");
}

#[test]
fn end_of_input_mid_request_is_truncated() {
    for cut in [
        &b"*2\r\n$3\r\nGET\r\n"[..],
        b"*2\r\n",
        b"*2\r\n$3\r\nGE",
        b"GET k",
    ] {
        let seen = decode(cut);
        assert!(
            matches!(seen.error, Some(CodecError::Truncated { .. })),
            "{cut:?}: {seen:?}"
        );
        assert!(seen.commands.is_empty());
    }
    assert_eq!(decode(b"*1\r\n$4\r\nPING\r\n").ok().len(), 1);
}
