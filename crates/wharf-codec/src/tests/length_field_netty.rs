//! `LengthFieldCodec` against the seven examples of Netty's
//! `LengthFieldBasedFrameDecoder` javadoc, each decoded whole and in reads
//! of one, two and three bytes.

use super::decode_three_ways;
use super::length_field::{HELLO, cat};
use crate::LengthFieldCodec;

/// Decodes `input` in one read and in reads of one byte; both must give
/// exactly one frame, `expected`, and leave nothing.
#[track_caller]
fn netty_example(codec: LengthFieldCodec, input: &[u8], expected: &[u8]) {
    let frames = decode_three_ways(|| codec.clone(), input, &[1, 2, 3]).ok();
    assert_eq!(frames, [expected.to_vec()]);
}

#[test]
fn netty_1_two_byte_length_at_offset_0_header_kept() {
    let codec = LengthFieldCodec::builder(64)
        .length_field_length(2)
        .initial_bytes_to_strip(0)
        .build()
        .unwrap();
    let frame = cat(&[b"\x00\x0C", HELLO]);
    netty_example(codec, &frame, &frame);
}

#[test]
fn netty_2_two_byte_length_at_offset_0_header_stripped() {
    let codec = LengthFieldCodec::builder(64)
        .length_field_length(2)
        .build()
        .unwrap();
    netty_example(codec, &cat(&[b"\x00\x0C", HELLO]), HELLO);
}

#[test]
fn netty_3_length_counts_the_whole_frame() {
    let codec = LengthFieldCodec::builder(64)
        .length_field_length(2)
        .length_adjustment(-2)
        .initial_bytes_to_strip(0)
        .build()
        .unwrap();
    let frame = cat(&[b"\x00\x0E", HELLO]);
    netty_example(codec, &frame, &frame);
}

#[test]
fn netty_4_three_byte_length_at_the_end_of_a_five_byte_header() {
    let codec = LengthFieldCodec::builder(64)
        .length_field_offset(2)
        .length_field_length(3)
        .initial_bytes_to_strip(0)
        .build()
        .unwrap();
    let frame = cat(&[b"\xCA\xFE", b"\x00\x00\x0C", HELLO]);
    netty_example(codec, &frame, &frame);
}

#[test]
fn netty_5_three_byte_length_at_the_start_of_a_five_byte_header() {
    let codec = LengthFieldCodec::builder(64)
        .length_field_length(3)
        .length_adjustment(2)
        .initial_bytes_to_strip(0)
        .build()
        .unwrap();
    let frame = cat(&[b"\x00\x00\x0C", b"\xCA\xFE", HELLO]);
    netty_example(codec, &frame, &frame);
}

#[test]
fn netty_6_length_in_the_middle_of_the_header_first_field_and_length_stripped() {
    let codec = LengthFieldCodec::builder(64)
        .length_field_offset(1)
        .length_field_length(2)
        .length_adjustment(1)
        .initial_bytes_to_strip(3)
        .build()
        .unwrap();
    netty_example(
        codec,
        &cat(&[b"\xCA", b"\x00\x0C", b"\xFE", HELLO]),
        &cat(&[b"\xFE", HELLO]),
    );
}

#[test]
fn netty_7_as_6_with_the_length_counting_the_whole_frame() {
    let codec = LengthFieldCodec::builder(64)
        .length_field_offset(1)
        .length_field_length(2)
        .length_adjustment(-3)
        .initial_bytes_to_strip(3)
        .build()
        .unwrap();
    netty_example(
        codec,
        &cat(&[b"\xCA", b"\x00\x10", b"\xFE", HELLO]),
        &cat(&[b"\xFE", HELLO]),
    );
}
