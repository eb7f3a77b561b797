//! Whatever the peer sends: random bytes rich in RESP's own tokens, and
//! every truncation of a valid stream. No panic, the input never grows,
//! every reservation keeps to the policy's bound (checked in `run`), and
//! how the bytes were cut into reads changes nothing.

use proptest::prelude::*;
use wharf_transport::CodecError;

use super::{request, run, run_three_ways};
use crate::resp::{RespLimits, protocol_error_reply, split_args};

/// Random input built from RESP's tokens and plain noise.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        4 => any::<u8>().prop_map(|b| vec![b]),
        2 => Just(b"\r\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b"\n".to_vec()),
        2 => (0i64..5).prop_map(|n| format!("*{n}\r\n").into_bytes()),
        2 => (-2i64..12).prop_map(|n| format!("${n}\r\n").into_bytes()),
        1 => Just(b"*99999999\r\n$536870912\r\n".to_vec()),
        1 => Just(b"\"".to_vec()),
        1 => Just(b"'".to_vec()),
        1 => Just(b"\\x".to_vec()),
        1 => Just(b"PING ".to_vec()),
        1 => Just(b"\0".to_vec()),
    ];
    prop::collection::vec(token, 0..60).prop_map(|t| t.concat())
}

/// Small limits, so that random input reaches them.
fn small_limits() -> RespLimits {
    RespLimits {
        max_bulk_len: 16,
        max_inline_len: 24,
        max_multibulk_len: 6,
        max_request_bytes: 150,
    }
}

/// A valid stream: commands of random arguments, each as an array or
/// (when its arguments allow) inline.
fn commands() -> impl Strategy<Value = Vec<(Vec<Vec<u8>>, bool)>> {
    let arg = prop::collection::vec(any::<u8>(), 0..40);
    let command = (prop::collection::vec(arg, 1..5), any::<bool>());
    prop::collection::vec(command, 1..8)
}

/// The stream's bytes and what a server must decode from it.
fn stream(commands: &[(Vec<Vec<u8>>, bool)]) -> (Vec<u8>, Vec<Vec<Vec<u8>>>) {
    let mut data = Vec::new();
    let mut expected = Vec::new();
    for (args, inline) in commands {
        let plain = |a: &Vec<u8>| {
            !a.is_empty()
                && a.iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(b))
        };
        if *inline && args.iter().all(plain) && !args[0].starts_with(b"*") {
            let line: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
            data.extend_from_slice(&line.join(&b' '));
            data.extend_from_slice(b"\r\n");
        } else {
            let refs: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
            data.extend_from_slice(&request(&refs));
        }
        expected.push(args.clone());
    }
    (data, expected)
}

proptest! {
    #![proptest_config(crate::tests::config())]

    #[test]
    fn random_bytes_never_panic(data in noise(), sizes in crate::tests::read_sizes()) {
        for limits in [RespLimits::default(), small_limits()] {
            let seen = run_three_ways(limits, &data, &sizes);
            if let Some(CodecError::Malformed(_)) = &seen.error {
                // Every protocol error has Redis's reply.
                let error = seen.error.as_ref().unwrap();
                prop_assert!(protocol_error_reply(error).is_some(), "{error:?}");
            }
        }
    }

    #[test]
    fn a_valid_stream_decodes_however_it_is_read(
        commands in commands(),
        sizes in crate::tests::read_sizes(),
    ) {
        let (data, expected) = stream(&commands);
        let seen = run_three_ways(RespLimits::default(), &data, &sizes);
        prop_assert_eq!(seen.ok(), expected);
    }

    #[test]
    fn every_truncation_of_a_valid_stream_is_a_prefix_of_it(
        commands in commands(),
        sizes in crate::tests::read_sizes(),
    ) {
        let (data, expected) = stream(&commands);
        for cut in 0..data.len() {
            let seen = run(RespLimits::default(), crate::tests::chunked(&data[..cut], &sizes));
            prop_assert!(seen.commands.len() <= expected.len());
            prop_assert_eq!(&seen.commands[..], &expected[..seen.commands.len()]);
            match seen.error {
                None | Some(CodecError::Truncated { .. }) => {}
                Some(other) => prop_assert!(false, "cut at {}: {:?}", cut, other),
            }
        }
    }
}

/// Lines of the bytes that matter to `sdssplitargs`: blanks it skips
/// (`\v`, `\f` too) or ends words on, quotes, escapes, NULs.
fn inline_line() -> impl Strategy<Value = Vec<u8>> {
    let alphabet = vec![
        b'a', b'B', b'x', b' ', b'\t', 0x0b, 0x0c, b'\r', b'"', b'\'', b'\\', 0,
    ];
    proptest::collection::vec(proptest::sample::select(alphabet), 0..24)
}

proptest! {
    #![proptest_config(crate::tests::config())]

    /// An inline line decodes to what `split_args` (Redis's
    /// `sdssplitargs`) makes of it, on either path: views of the input for
    /// a line without quotes or NULs, copies otherwise.
    #[test]
    fn an_inline_line_is_split_as_sdssplitargs_splits_it(
        line in inline_line(),
        sizes in crate::tests::read_sizes(),
    ) {
        let mut data = line.clone();
        data.push(b'\n');
        let seen = run(RespLimits::default(), crate::tests::chunked(&data, &sizes));
        let body = line.strip_suffix(b"\r").unwrap_or(&line);
        match split_args(body) {
            Some(words) if words.is_empty() => prop_assert_eq!(seen.ok(), Vec::<Vec<Vec<u8>>>::new()),
            Some(words) => prop_assert_eq!(seen.ok(), vec![words]),
            None => prop_assert!(seen.error.is_some()),
        }
    }
}
