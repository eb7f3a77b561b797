//! Redis's error replies, byte for byte, for every protocol violation, at
//! and just past each limit, whatever the reads; and the request size
//! limit, which Redis answers by closing.

use wharf_transport::CodecError;

use super::{request, run_three_ways};
use crate::resp::{Reply, RespLimits, protocol_error_reply};

/// The reply a connection that sent `data` gets before it is closed.
#[track_caller]
fn reply_to(limits: RespLimits, data: &[u8]) -> Vec<u8> {
    let seen = run_three_ways(limits, data, &[2, 9, 1]);
    let error = seen.error.expect("a protocol error");
    protocol_error_reply(&error)
        .unwrap_or_else(|| panic!("no reply for {error:?}"))
        .to_bytes()
}

#[track_caller]
fn assert_reply(data: &[u8], expected: &str) {
    assert_reply_with(RespLimits::default(), data, expected);
}

#[track_caller]
fn assert_reply_with(limits: RespLimits, data: &[u8], expected: &str) {
    let got = reply_to(limits, data);
    assert_eq!(
        String::from_utf8_lossy(&got),
        expected,
        "for {:?}",
        String::from_utf8_lossy(&data[..data.len().min(40)])
    );
}

#[test]
fn an_invalid_multibulk_length() {
    for data in [
        &b"*x\r\n"[..],
        b"*\r\n",
        b"*+1\r\n",
        b"*01\r\n",
        b"*1 \r\n",
        b"*2147483648\r\n",
        b"*99999999999999999999\r\n",
        b"*1048577\r\n",
    ] {
        assert_reply(data, "-ERR Protocol error: invalid multibulk length\r\n");
    }
}

#[test]
fn a_multibulk_count_at_the_limit_is_accepted() {
    // 1,048,576 announced: no error until the bulks fail to come.
    let seen = run_three_ways(RespLimits::default(), b"*1048576\r\n", &[3]);
    assert!(matches!(seen.error, Some(CodecError::Truncated { .. })));
    let limits = RespLimits {
        max_multibulk_len: 2,
        ..RespLimits::default()
    };
    assert_reply_with(
        limits,
        b"*3\r\n",
        "-ERR Protocol error: invalid multibulk length\r\n",
    );
}

#[test]
fn a_bulk_header_that_is_not_a_bulk() {
    assert_reply(
        b"*1\r\n:12\r\n",
        "-ERR Protocol error: expected '$', got ':'\r\n",
    );
    assert_reply(
        b"*2\r\n$3\r\nGET\r\nx\r\n",
        "-ERR Protocol error: expected '$', got 'x'\r\n",
    );
    // A newline is shown as a space, as Redis's formatted errors do.
    assert_reply(
        b"*1\r\n\n\r\n",
        "-ERR Protocol error: expected '$', got ' '\r\n",
    );
}

#[test]
fn a_byte_over_0x7f_is_sent_back_as_it_came() {
    let got = reply_to(RespLimits::default(), b"*1\r\n\xff\r\n");
    assert_eq!(got, b"-ERR Protocol error: expected '$', got '\xff'\r\n");
}

#[test]
fn an_invalid_bulk_length() {
    for data in [
        &b"*1\r\n$-1\r\n"[..],
        b"*1\r\n$x\r\n",
        b"*1\r\n$\r\n",
        b"*1\r\n$01\r\n",
        b"*1\r\n$536870913\r\n",
    ] {
        assert_reply(data, "-ERR Protocol error: invalid bulk length\r\n");
    }
    let limits = RespLimits {
        max_bulk_len: 4,
        ..RespLimits::default()
    };
    assert_reply_with(
        limits,
        b"*1\r\n$5\r\n",
        "-ERR Protocol error: invalid bulk length\r\n",
    );
    assert_eq!(
        run_three_ways(limits, &request(&[b"ECHO"]), &[1])
            .ok()
            .len(),
        1
    );
}

#[test]
fn a_bulk_of_512_mib_is_accepted() {
    let seen = run_three_ways(RespLimits::default(), b"*1\r\n$536870912\r\n", &[4]);
    assert!(matches!(seen.error, Some(CodecError::Truncated { .. })));
}

#[test]
fn too_big_inline_request() {
    let line = vec![b'a'; (64 << 10) + 1];
    assert_reply(&line, "-ERR Protocol error: too big inline request\r\n");
    // Also when the end of the line came with it.
    let mut ended = line.clone();
    ended.extend_from_slice(b"\r\n");
    assert_reply(&ended, "-ERR Protocol error: too big inline request\r\n");
    // 64 KiB before the newline is still fine.
    let mut fits = vec![b'a'; (64 << 10) - 1];
    fits.extend_from_slice(b"\r\n");
    assert_eq!(
        run_three_ways(RespLimits::default(), &fits, &[4096])
            .ok()
            .len(),
        1
    );
}

#[test]
fn too_big_count_strings() {
    let mut count = b"*".to_vec();
    count.extend_from_slice(&vec![b'1'; 64 << 10]);
    assert_reply(
        &count,
        "-ERR Protocol error: too big mbulk count string\r\n",
    );
    let mut bulk = b"*1\r\n$".to_vec();
    bulk.extend_from_slice(&vec![b'1'; 64 << 10]);
    assert_reply(&bulk, "-ERR Protocol error: too big bulk count string\r\n");
}

#[test]
fn unbalanced_quotes() {
    for data in [
        &b"SET k \"v\r\n"[..],
        b"SET k 'v\r\n",
        b"ECHO \"a\"b\r\n",
        b"ECHO 'a'b\r\n",
        b"ECHO \"a\0\"\r\n",
    ] {
        assert_reply(
            data,
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        );
    }
}

#[test]
fn commands_before_the_error_are_delivered() {
    let mut data = request(&[b"PING"]);
    data.extend_from_slice(b"ECHO x\r\n*1\r\n$-5\r\n");
    let seen = run_three_ways(RespLimits::default(), &data, &[5]);
    assert_eq!(seen.commands.len(), 2);
    assert!(seen.error.is_some());
}

#[test]
fn a_request_over_the_size_limit_is_too_long() {
    let limits = RespLimits {
        max_request_bytes: 200,
        ..RespLimits::default()
    };
    // Two bulks of 50 (plus 32 each) fit; a third of 60 does not.
    let seen = run_three_ways(limits, b"*3\r\n$50\r\n", &[1]);
    assert!(matches!(seen.error, Some(CodecError::Truncated { .. })));
    let mut data = b"*3\r\n".to_vec();
    for _ in 0..2 {
        data.extend_from_slice(b"$50\r\n");
        data.extend_from_slice(&[b'v'; 52]);
    }
    data.extend_from_slice(b"$60\r\n");
    let seen = run_three_ways(limits, &data, &[7]);
    assert_eq!(
        seen.error,
        Some(CodecError::TooLong {
            limit: 200,
            length: 50 + 32 + 50 + 32 + 60 + 32
        })
    );
    assert_eq!(protocol_error_reply(&seen.error.unwrap()), None);
}

#[test]
fn only_protocol_errors_have_a_reply() {
    assert_eq!(
        protocol_error_reply(&CodecError::Truncated { remaining: 3 }),
        None
    );
    assert_eq!(
        protocol_error_reply(&CodecError::Malformed("other".into())),
        None
    );
    assert_eq!(
        protocol_error_reply(&CodecError::Malformed("Protocol error: x".into())),
        Some(Reply::error("ERR Protocol error: x"))
    );
}
