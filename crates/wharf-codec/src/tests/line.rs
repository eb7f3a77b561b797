//! `LineCodec`: delimiters, limits, end of input, the encoder, zero copy,
//! and framing across reads.

use proptest::prelude::*;
use wharf_transport::{Codec, CodecError};

use super::{VecSink, buf, bytewise, decode_three_ways, feed, inside};
use crate::LineCodec;

fn lines(outcome: super::Outcome) -> Vec<String> {
    outcome
        .ok()
        .into_iter()
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .collect()
}

#[test]
fn strict_splits_on_crlf() {
    let out = feed(
        &mut LineCodec::new(16),
        [&b"one\r\ntwo\r\n\r\nthr"[..], b"ee\r\n"],
    );
    assert_eq!(lines(out), ["one", "two", "", "three"]);
}

#[test]
fn strict_refuses_a_bare_newline_after_delivering_what_came_before() {
    let out = feed(&mut LineCodec::new(16), [&b"ok\r\nbad\nnever\r\n"[..]]);
    assert_eq!(out.frames, [b"ok".to_vec()]);
    assert!(
        matches!(out.error, Some(CodecError::Malformed(_))),
        "{:?}",
        out.error
    );
}

#[test]
fn strict_keeps_a_lone_carriage_return_in_the_line() {
    let out = feed(&mut LineCodec::new(16), [&b"a\rb\r\r\n"[..]]);
    assert_eq!(out.ok(), [b"a\rb\r".to_vec()]);
}

#[test]
fn lenient_accepts_both_delimiters() {
    let out = feed(&mut LineCodec::new(16).lenient(), [&b"a\nb\r\n\nc\r\n"[..]]);
    assert_eq!(lines(out), ["a", "b", "", "c"]);
}

#[test]
fn keep_delimiter_delivers_what_ended_each_line() {
    let out = feed(
        &mut LineCodec::new(16).lenient().keep_delimiter(),
        [&b"a\nb\r\n"[..]],
    );
    assert_eq!(lines(out), ["a\n", "b\r\n"]);
    let out = feed(&mut LineCodec::new(16).keep_delimiter(), [&b"a\r\n"[..]]);
    assert_eq!(lines(out), ["a\r\n"]);
}

#[test]
fn a_line_of_exactly_max_length_passes() {
    let out = feed(&mut LineCodec::new(4), bytewise(b"abcd\r\n"));
    assert_eq!(lines(out), ["abcd"]);
    let out = feed(&mut LineCodec::new(0), [&b"\r\n\r\n"[..]]);
    assert_eq!(lines(out), ["", ""]);
}

#[test]
fn too_long_fails_as_soon_as_the_limit_is_passed() {
    let mut codec = LineCodec::new(4);
    let mut input = buf(b"abcd\r");
    let mut out = Vec::new();
    // Four bytes and a `\r` that may start the delimiter: still fine.
    assert_eq!(codec.decode(&mut input, &mut out), Ok(()));
    input.extend_from_slice(b"x");
    // Now the `\r` is content: six bytes, refused without waiting for a `\n`.
    assert_eq!(
        codec.decode(&mut input, &mut out),
        Err(CodecError::TooLong {
            limit: 4,
            length: 6
        })
    );
    assert!(out.is_empty());
}

#[test]
fn too_long_when_the_whole_line_is_in_one_read() {
    let out = feed(&mut LineCodec::new(3).lenient(), [&b"abc\nabcd\n"[..]]);
    assert_eq!(out.frames, [b"abc".to_vec()]);
    assert_eq!(
        out.error,
        Some(CodecError::TooLong {
            limit: 3,
            length: 4
        })
    );
}

#[test]
fn strict_end_of_input_mid_line_is_truncated() {
    let out = feed(&mut LineCodec::new(16), [&b"a\r\nbc\r"[..]]);
    assert_eq!(out.frames, [b"a".to_vec()]);
    assert_eq!(out.error, Some(CodecError::Truncated { remaining: 3 }));
}

#[test]
fn lenient_end_of_input_delivers_the_last_line_as_it_is() {
    let out = feed(&mut LineCodec::new(16).lenient(), [&b"a\nbc"[..]]);
    assert_eq!(lines(out), ["a", "bc"]);
    let out = feed(&mut LineCodec::new(16).lenient(), [&b"a\nbc\r"[..]]);
    assert_eq!(lines(out), ["a", "bc\r"]);
    // `\r` held back as a possible delimiter is content after all.
    let out = feed(&mut LineCodec::new(2).lenient(), [&b"bc\r"[..]]);
    assert_eq!(
        out.error,
        Some(CodecError::TooLong {
            limit: 2,
            length: 3
        })
    );
}

#[test]
fn nothing_pending_at_end_of_input_is_fine() {
    assert_eq!(lines(feed(&mut LineCodec::new(16), [&b"a\r\n"[..]])), ["a"]);
    assert!(lines(feed(&mut LineCodec::new(16), [])).is_empty());
}

#[test]
fn each_call_searches_only_the_new_bytes() {
    let mut codec = LineCodec::new(1 << 20);
    let mut input = buf(b"");
    let mut out = Vec::new();
    for i in 1..=1000 {
        input.extend_from_slice(if i % 100 == 0 { b"\r" } else { b"x" });
        codec.decode(&mut input, &mut out).unwrap();
        assert_eq!(codec.scanned, input.len());
    }
    input.extend_from_slice(b"\n");
    codec.decode(&mut input, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(codec.scanned, 0);
}

#[test]
fn a_long_line_one_byte_per_read_is_linear() {
    // 256 KiB fed byte by byte: quadratic rescanning would take minutes.
    let mut data = vec![b'x'; 256 << 10];
    data.extend_from_slice(b"\r\n");
    let started = std::time::Instant::now();
    let out = feed(&mut LineCodec::new(1 << 20), bytewise(&data)).ok();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].len(), 256 << 10);
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
}

#[test]
fn frames_from_one_read_share_its_memory() {
    for codec in [
        LineCodec::new(64),
        LineCodec::new(64).lenient().keep_delimiter(),
    ] {
        let mut codec = codec;
        let mut input = buf(b"first\r\nsecond\r\nthird\r\npartial");
        let (start, len) = (input.as_ptr(), input.len());
        let mut out = Vec::new();
        codec.decode(&mut input, &mut out).unwrap();
        assert_eq!(out.len(), 3);
        for frame in &out {
            assert!(inside(frame, start, len), "{frame:?} was copied");
        }
    }
}

#[test]
fn encoder_appends_crlf_in_both_modes() {
    for mut codec in [LineCodec::new(64), LineCodec::new(64).lenient()] {
        let mut sink = VecSink::default();
        codec.encode_into(buf(b"hello"), &mut sink).unwrap();
        codec.encode_into(buf(b""), &mut sink).unwrap();
        assert_eq!(sink.bytes(), b"hello\r\n\r\n");
    }
}

#[test]
fn encoder_refuses_newlines_and_overlong_lines() {
    let mut codec = LineCodec::new(8).lenient();
    let mut sink = VecSink::default();
    assert!(matches!(
        codec.encode_into(buf(b"a\nb"), &mut sink),
        Err(CodecError::Unencodable(_))
    ));
    assert!(matches!(
        codec.encode_into(buf(b"123456789"), &mut sink),
        Err(CodecError::Unencodable(_))
    ));
    assert!(sink.bufs.is_empty());
    codec.encode_into(buf(b"12345678"), &mut sink).unwrap();
    assert_eq!(sink.bytes(), b"12345678\r\n");
}

#[test]
fn encoder_appends_in_place_when_there_is_room() {
    let mut line = wharf_buf::Allocator::default().buffer(64);
    line.extend_from_slice(b"room to spare");
    let at = line.as_ptr();
    let mut sink = VecSink::default();
    LineCodec::new(64).encode_into(line, &mut sink).unwrap();
    assert_eq!(sink.bufs.len(), 1);
    assert_eq!(sink.bufs[0].as_ptr(), at);
    assert_eq!(sink.bytes(), b"room to spare\r\n");
}

#[test]
fn encoder_does_not_copy_a_long_line_without_room() {
    let mut input = buf(&[b'x'; 4096]);
    let line = input.split_to(4000); // a view with no spare capacity
    let at = line.as_ptr();
    let mut sink = VecSink::default();
    LineCodec::new(8192).encode_into(line, &mut sink).unwrap();
    assert_eq!(sink.bufs.len(), 2);
    assert_eq!(sink.bufs[0].as_ptr(), at);
    assert_eq!(&sink.bufs[1][..], b"\r\n");
}

#[test]
fn encoder_joins_a_short_line_without_room_into_one_buffer() {
    let mut input = buf(b"short and more");
    let line = input.split_to(5);
    let mut sink = VecSink::default();
    LineCodec::new(64).encode_into(line, &mut sink).unwrap();
    assert_eq!(sink.bufs.len(), 1);
    assert_eq!(sink.bytes(), b"short\r\n");
}

#[test]
fn message_size_counts_the_delimiter() {
    assert_eq!(LineCodec::message_size(&buf(b"abc")), 5);
}

/// A line of any bytes but `\n` (`\r` included, at the end too).
fn line() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![4 => any::<u8>().prop_filter("no LF", |&b| b != b'\n'), 1 => Just(b'\r')],
        0..40,
    )
}

/// The lines encoded by `codec`'s own encoder, one stream.
fn encode_all(codec: &mut LineCodec, lines: &[Vec<u8>]) -> Vec<u8> {
    let mut sink = VecSink::default();
    for line in lines {
        codec.encode_into(buf(line), &mut sink).unwrap();
    }
    sink.bytes()
}

proptest! {
    #![proptest_config(super::config())]

    #[test]
    fn round_trip_across_any_reads(
        lines in prop::collection::vec(line(), 0..20),
        sizes in super::read_sizes(),
        lenient in any::<bool>(),
        keep in any::<bool>(),
    ) {
        let make = || {
            let codec = LineCodec::new(40);
            let codec = if lenient { codec.lenient() } else { codec };
            if keep { codec.keep_delimiter() } else { codec }
        };
        let data = encode_all(&mut make(), &lines);
        let frames = decode_three_ways(make, &data, &sizes).ok();
        let expected: Vec<Vec<u8>> = lines
            .iter()
            .map(|l| if keep { [l.as_slice(), b"\r\n"].concat() } else { l.clone() })
            .collect();
        prop_assert_eq!(frames, expected);
    }

    #[test]
    fn lenient_reads_mixed_delimiters_across_any_reads(
        lines in prop::collection::vec((line(), any::<bool>()), 0..20),
        sizes in super::read_sizes(),
    ) {
        // A line that ends with `\r` before a bare `\n` reads as `\r\n`:
        // not a bare `\n`, so give those lines `\r\n`.
        let mut data = Vec::new();
        for (line, bare) in &lines {
            data.extend_from_slice(line);
            let bare = *bare && line.last() != Some(&b'\r');
            data.extend_from_slice(if bare { b"\n" } else { b"\r\n" });
        }
        let frames = decode_three_ways(|| LineCodec::new(40).lenient(), &data, &sizes).ok();
        let expected: Vec<Vec<u8>> = lines.into_iter().map(|(l, _)| l).collect();
        prop_assert_eq!(frames, expected);
    }

    #[test]
    fn lenient_delivers_an_unterminated_last_line_across_any_reads(
        mut lines in prop::collection::vec(line(), 0..10),
        last in line().prop_filter("not empty", |l| !l.is_empty()),
        sizes in super::read_sizes(),
    ) {
        // An empty last line leaves nothing pending: nothing to deliver.
        lines.push(last);
        let mut data = encode_all(&mut LineCodec::new(40), &lines);
        data.truncate(data.len() - 2);
        let frames = decode_three_ways(|| LineCodec::new(40).lenient(), &data, &sizes).ok();
        prop_assert_eq!(frames, lines);
    }
}
