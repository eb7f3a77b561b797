//! `LengthFieldCodec`: configuration errors, malformed and oversized
//! headers, the encoder, zero copy, and framing across reads (Netty's
//! javadoc examples are in `length_field_netty.rs`).

use proptest::prelude::*;
use wharf_transport::{Codec, CodecError};

use super::{VecSink, buf, decode_three_ways, feed, inside};
use crate::{ByteOrder, LengthFieldCodec};

pub(super) const HELLO: &[u8] = b"HELLO, WORLD";

/// The parts, concatenated.
pub(super) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn new_reads_and_writes_a_four_byte_big_endian_length() {
    let mut codec = LengthFieldCodec::new(1024);
    let mut sink = VecSink::default();
    codec.encode_into(buf(b"abc"), &mut sink).unwrap();
    codec.encode_into(buf(b""), &mut sink).unwrap();
    assert_eq!(sink.bytes(), b"\x00\x00\x00\x03abc\x00\x00\x00\x00");
    let frames = feed(&mut codec, [&sink.bytes()[..]]).ok();
    assert_eq!(frames, [b"abc".to_vec(), Vec::new()]);
}

#[test]
fn little_endian_fields() {
    let mut codec = LengthFieldCodec::builder(1 << 20)
        .length_field_length(3)
        .byte_order(ByteOrder::LittleEndian)
        .build()
        .unwrap();
    let mut sink = VecSink::default();
    codec.encode_into(buf(&[7; 0x0102]), &mut sink).unwrap();
    assert_eq!(&sink.bytes()[..3], b"\x02\x01\x00");
    let frames = feed(&mut codec, [&sink.bytes()[..]]).ok();
    assert_eq!(frames, [vec![7; 0x0102]]);
}

#[test]
fn field_lengths_other_than_1_2_3_4_8_are_refused_at_build() {
    for bad in [0, 5, 6, 7, 9, 16, usize::MAX] {
        assert!(
            LengthFieldCodec::builder(64)
                .length_field_length(bad)
                .build()
                .is_err()
        );
        assert!(
            LengthFieldCodec::builder(64)
                .encoder_length_field_length(bad)
                .build()
                .is_err()
        );
    }
    for good in [1, 2, 3, 4, 8] {
        assert!(
            LengthFieldCodec::builder(64)
                .length_field_length(good)
                .build()
                .is_ok()
        );
    }
    let err = LengthFieldCodec::builder(64)
        .length_field_offset(usize::MAX)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("length_field_offset"), "{err}");
}

#[test]
fn a_frame_shorter_than_its_header_is_malformed() {
    // Value 1, adjustment -2: a frame of 1 + (-2) + 2 = 1 byte < 2.
    let codec = LengthFieldCodec::builder(64)
        .length_field_length(2)
        .length_adjustment(-2)
        .build()
        .unwrap();
    let out = feed(&mut codec.clone(), [&b"\x00\x01"[..]]);
    assert!(
        matches!(out.error, Some(CodecError::Malformed(_))),
        "{:?}",
        out.error
    );
}

#[test]
fn stripping_more_than_the_frame_is_malformed_as_soon_as_the_length_is_known() {
    let mut codec = LengthFieldCodec::builder(64)
        .length_field_length(1)
        .initial_bytes_to_strip(5)
        .build()
        .unwrap();
    let mut input = buf(b"\x02");
    let mut out = Vec::new();
    assert!(matches!(
        codec.decode(&mut input, &mut out),
        Err(CodecError::Malformed(_))
    ));
    // A frame of exactly the bytes stripped is an empty frame.
    let mut codec = LengthFieldCodec::builder(64)
        .length_field_length(1)
        .initial_bytes_to_strip(3)
        .build()
        .unwrap();
    assert_eq!(feed(&mut codec, [&b"\x02ab"[..]]).ok(), [Vec::<u8>::new()]);
}

#[test]
fn too_long_fails_on_the_header_alone() {
    let mut codec = LengthFieldCodec::new(100);
    let mut input = buf(b"\x00\x00\x00\x61"); // 97 + 4 = 101 bytes
    let mut out = Vec::new();
    assert_eq!(
        codec.decode(&mut input, &mut out),
        Err(CodecError::TooLong {
            limit: 100,
            length: 101
        })
    );
    let mut input = buf(b"\x00\x00\x00\x60");
    assert_eq!(codec.decode(&mut input, &mut out), Ok(()));
}

#[test]
fn huge_eight_byte_lengths_are_too_long_not_overflows() {
    for (value, adjustment) in [
        (u64::MAX, 0),
        (u64::MAX, i64::MAX),
        (u64::MAX, i64::MIN),
        (1 << 63, 0),
        (u64::MAX - 7, 0),
        (i64::MAX as u64, i64::MAX),
    ] {
        for order in [ByteOrder::BigEndian, ByteOrder::LittleEndian] {
            let mut codec = LengthFieldCodec::builder(usize::MAX)
                .length_field_length(8)
                .length_adjustment(adjustment)
                .byte_order(order)
                .build()
                .unwrap();
            let field = match order {
                ByteOrder::BigEndian => value.to_be_bytes(),
                ByteOrder::LittleEndian => value.to_le_bytes(),
            };
            let out = feed(&mut codec, [&field[..]]);
            assert!(
                matches!(out.error, Some(CodecError::TooLong { .. })),
                "{value} {adjustment}: {:?}",
                out.error
            );
        }
    }
    // A large negative adjustment takes the frame below its header.
    let mut codec = LengthFieldCodec::builder(64)
        .length_field_length(8)
        .length_adjustment(i64::MIN)
        .build()
        .unwrap();
    let out = feed(&mut codec, [&[0; 8][..]]);
    assert!(
        matches!(out.error, Some(CodecError::Malformed(_))),
        "{:?}",
        out.error
    );
}

#[test]
fn max_frame_length_is_capped_at_what_a_buffer_holds() {
    let codec = LengthFieldCodec::new(usize::MAX);
    assert_eq!(codec.max_frame_length(), wharf_buf::MAX_CAPACITY);
    let mut codec = codec;
    let out = feed(&mut codec, [&b"\xFF\xFF\xFF\xFF"[..]]);
    assert!(
        matches!(out.error, Some(CodecError::TooLong { .. })),
        "{:?}",
        out.error
    );
}

#[test]
fn a_max_below_the_header_admits_no_frame() {
    let out = feed(&mut LengthFieldCodec::new(3), [&b"\x00\x00\x00\x00"[..]]);
    assert_eq!(
        out.error,
        Some(CodecError::TooLong {
            limit: 3,
            length: 4
        })
    );
}

#[test]
fn end_of_input_inside_a_frame_or_header_is_truncated() {
    let out = feed(
        &mut LengthFieldCodec::new(64),
        [&b"\x00\x00\x00\x01a\x00\x00\x00\x05abc"[..]],
    );
    assert_eq!(out.frames, [b"a".to_vec()]);
    assert_eq!(out.error, Some(CodecError::Truncated { remaining: 7 }));
    let out = feed(&mut LengthFieldCodec::new(64), [&b"\x00\x00"[..]]);
    assert_eq!(out.error, Some(CodecError::Truncated { remaining: 2 }));
}

#[test]
fn encoder_refuses_lengths_that_do_not_fit() {
    let mut codec = LengthFieldCodec::builder(1024)
        .length_field_length(1)
        .build()
        .unwrap();
    let mut sink = VecSink::default();
    codec.encode_into(buf(&[0; 255]), &mut sink).unwrap();
    assert!(matches!(
        codec.encode_into(buf(&[0; 256]), &mut sink),
        Err(CodecError::Unencodable(_))
    ));
    // The field counting itself leaves one byte less.
    let mut codec = LengthFieldCodec::builder(1024)
        .length_field_length(1)
        .length_includes_length_field_length(true)
        .build()
        .unwrap();
    codec.encode_into(buf(&[0; 254]), &mut sink).unwrap();
    assert!(codec.encode_into(buf(&[0; 255]), &mut sink).is_err());
    // Three bytes: up to 0xFF_FFFF.
    let mut codec = LengthFieldCodec::builder(1024)
        .length_field_length(3)
        .encoder_length_adjustment(0xFF_FFFF - 10)
        .build()
        .unwrap();
    let mut sink = VecSink::default();
    codec.encode_into(buf(&[0; 10]), &mut sink).unwrap();
    assert_eq!(&sink.bytes()[..3], b"\xFF\xFF\xFF");
    assert!(codec.encode_into(buf(&[0; 11]), &mut sink).is_err());
}

#[test]
fn encoder_refuses_negative_lengths() {
    let mut codec = LengthFieldCodec::builder(1024)
        .encoder_length_adjustment(-3)
        .build()
        .unwrap();
    let mut sink = VecSink::default();
    codec.encode_into(buf(b"abc"), &mut sink).unwrap();
    assert_eq!(sink.bytes(), b"\x00\x00\x00\x00abc");
    assert!(matches!(
        codec.encode_into(buf(b"ab"), &mut sink),
        Err(CodecError::Unencodable(_))
    ));
    let mut codec = LengthFieldCodec::builder(1024)
        .length_field_length(8)
        .encoder_length_adjustment(i64::MIN)
        .build()
        .unwrap();
    assert!(codec.encode_into(buf(b"ab"), &mut sink).is_err());
}

#[test]
fn encoder_writes_netty_prepender_values() {
    // Netty's LengthFieldPrepender(2) and (2, true) on "HELLO, WORLD".
    let mut plain = LengthFieldCodec::builder(64)
        .length_field_length(2)
        .build()
        .unwrap();
    let mut sink = VecSink::default();
    plain.encode_into(buf(HELLO), &mut sink).unwrap();
    assert_eq!(sink.bytes(), cat(&[b"\x00\x0C", HELLO]));
    let mut counting = LengthFieldCodec::builder(64)
        .length_field_length(2)
        .length_includes_length_field_length(true)
        .encoder_length_adjustment(0)
        .build()
        .unwrap();
    let mut sink = VecSink::default();
    counting.encode_into(buf(HELLO), &mut sink).unwrap();
    assert_eq!(sink.bytes(), cat(&[b"\x00\x0E", HELLO]));
}

#[test]
fn encoder_sends_a_long_message_without_copying_it() {
    let mut codec = LengthFieldCodec::new(1 << 20);
    let msg = buf(&[1; 4096]);
    let at = msg.as_ptr();
    let mut sink = VecSink::default();
    codec.encode_into(msg, &mut sink).unwrap();
    assert_eq!(sink.bufs.len(), 2);
    assert_eq!(&sink.bufs[0][..], b"\x00\x00\x10\x00");
    assert_eq!(sink.bufs[1].as_ptr(), at);
    let mut sink = VecSink::default();
    codec.encode_into(buf(b"short"), &mut sink).unwrap();
    assert_eq!(sink.bufs.len(), 1);
}

#[test]
fn message_size_allows_for_the_largest_field() {
    assert_eq!(LengthFieldCodec::message_size(&buf(b"abc")), 11);
}

#[test]
fn frames_from_one_read_share_its_memory() {
    let mut codec = LengthFieldCodec::builder(64)
        .length_field_offset(1)
        .length_field_length(2)
        .length_adjustment(1)
        .initial_bytes_to_strip(3)
        .build()
        .unwrap();
    let one = cat(&[b"\xCA", b"\x00\x0C", b"\xFE", HELLO]);
    let mut input = buf(&cat(&[&one, &one, &one[..5]]));
    let (start, len) = (input.as_ptr(), input.len());
    let mut out = Vec::new();
    codec.decode(&mut input, &mut out).unwrap();
    assert_eq!(out.len(), 2);
    for frame in &out {
        assert_eq!(&frame[..], &one[3..]);
        assert!(inside(frame, start, len), "{frame:?} was copied");
    }
    assert_eq!(input.len(), 5);
}

fn field_length() -> impl Strategy<Value = usize> {
    prop::sample::select(vec![1usize, 2, 3, 4, 8])
}

fn byte_order() -> impl Strategy<Value = ByteOrder> {
    prop_oneof![Just(ByteOrder::BigEndian), Just(ByteOrder::LittleEndian)]
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 3..200)
}

/// `value` as a `len`-byte field in `order`.
fn field(value: u64, len: usize, order: ByteOrder) -> Vec<u8> {
    let bytes = match order {
        ByteOrder::BigEndian => value.to_be_bytes()[8 - len..].to_vec(),
        ByteOrder::LittleEndian => value.to_le_bytes()[..len].to_vec(),
    };
    assert!(
        len == 8 || value >> (8 * len) == 0,
        "{value} in {len} bytes"
    );
    bytes
}

proptest! {
    #![proptest_config(super::config())]

    /// The codec's own encoder, offset 0, header stripped: every field
    /// size and byte order, with the length counting the payload, the
    /// whole frame, or 3 bytes less than the payload.
    #[test]
    fn round_trip_across_any_reads(
        frames in prop::collection::vec(payload(), 0..12),
        sizes in super::read_sizes(),
        len in field_length(),
        order in byte_order(),
        adjustment in prop::sample::select(vec![0i64, -1, 3]),
        counts_itself in any::<bool>(),
    ) {
        let builder = LengthFieldCodec::builder(1024)
            .length_field_length(len)
            .byte_order(order);
        let builder = match (adjustment, counts_itself) {
            // The decoder subtracts the field; the encoder adds it by flag.
            (-1, true) => builder
                .length_adjustment(-(len as i64))
                .length_includes_length_field_length(true)
                .encoder_length_adjustment(0),
            // The same, by the default (negated) encoder adjustment.
            (-1, false) => builder.length_adjustment(-(len as i64)),
            (n, _) => builder.length_adjustment(n),
        };
        let codec = builder.build().unwrap();
        let mut sink = VecSink::default();
        for frame in &frames {
            codec.clone().encode_into(buf(frame), &mut sink).unwrap();
        }
        let decoded = decode_three_ways(|| codec.clone(), &sink.bytes(), &sizes).ok();
        prop_assert_eq!(decoded, frames);
    }

    /// Frames built by hand with header fields around the length, the
    /// length counting the rest or the whole frame, and any strip: what
    /// Netty's decoder would deliver.
    #[test]
    fn any_header_layout_across_any_reads(
        payloads in prop::collection::vec(payload(), 0..8),
        sizes in super::read_sizes(),
        len in field_length(),
        order in byte_order(),
        offset in 0usize..4,
        after in 0usize..3,
        counts_whole_frame in any::<bool>(),
        strip_seed in any::<prop::sample::Index>(),
    ) {
        let header = offset + len;
        let strip = strip_seed.index(header + after + 3 + 1);
        // The value counts the bytes after the field, or the whole frame;
        // header fields after the length count either way.
        let adjustment = if counts_whole_frame { -(header as i64) } else { 0 };
        let codec = LengthFieldCodec::builder(1024)
            .length_field_offset(offset)
            .length_field_length(len)
            .length_adjustment(adjustment)
            .initial_bytes_to_strip(strip)
            .byte_order(order)
            .build()
            .unwrap();
        let mut data = Vec::new();
        let mut expected = Vec::new();
        for (i, payload) in payloads.iter().enumerate() {
            let rest = after + payload.len();
            let value = if counts_whole_frame { header + rest } else { rest };
            let frame = cat(&[
                &vec![0xA0 | i as u8; offset],
                &field(value as u64, len, order),
                &vec![0xB0 | i as u8; after],
                payload,
            ]);
            expected.push(frame[strip..].to_vec());
            data.extend_from_slice(&frame);
        }
        let decoded = decode_three_ways(|| codec.clone(), &data, &sizes).ok();
        prop_assert_eq!(decoded, expected);
    }
}
