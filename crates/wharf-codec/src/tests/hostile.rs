//! Whatever the peer sends, in whatever reads, to whatever configuration:
//! no panic, the input never grows, frames come only from consumed bytes,
//! and how the bytes were cut into reads changes nothing.
//!
//! `feed` checks the invariants on every call; `decode_three_ways` checks
//! that one-byte reads, random reads and a single read agree.

use proptest::prelude::*;
use wharf_transport::CodecExt;

use super::decode_three_ways;
use crate::{ByteOrder, LengthFieldCodec, LineCodec, Utf8};

/// Random bytes, with the line delimiters and small length values common
/// enough to matter.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<u8>(),
            2 => Just(b'\n'),
            2 => Just(b'\r'),
            2 => 0u8..4,
            1 => Just(0xFF),
        ],
        0..400,
    )
}

fn line_codec(max: usize, lenient: bool, keep: bool) -> LineCodec {
    let codec = LineCodec::new(max);
    let codec = if lenient { codec.lenient() } else { codec };
    if keep { codec.keep_delimiter() } else { codec }
}

proptest! {
    #![proptest_config(super::config())]

    #[test]
    fn line_codec_survives_anything(
        data in noise(),
        sizes in super::read_sizes(),
        max in prop::sample::select(vec![0usize, 1, 3, 16, 1000]),
        lenient in any::<bool>(),
        keep in any::<bool>(),
    ) {
        decode_three_ways(|| line_codec(max, lenient, keep), &data, &sizes);
        decode_three_ways(|| line_codec(max, lenient, keep).stack(Utf8), &data, &sizes);
    }

    #[test]
    fn length_field_codec_survives_anything(
        data in noise(),
        sizes in super::read_sizes(),
        max in prop::sample::select(vec![0usize, 5, 16, 300, usize::MAX]),
        offset in prop::sample::select(vec![0usize, 1, 3]),
        len in prop::sample::select(vec![1usize, 2, 3, 4, 8]),
        adjustment in prop::sample::select(vec![0i64, -1, -4, -11, 2, 200, i64::MIN, i64::MAX]),
        strip in prop::option::of(0usize..12),
        little in any::<bool>(),
    ) {
        let builder = LengthFieldCodec::builder(max)
            .length_field_offset(offset)
            .length_field_length(len)
            .length_adjustment(adjustment)
            .byte_order(if little { ByteOrder::LittleEndian } else { ByteOrder::BigEndian });
        let builder = match strip {
            Some(strip) => builder.initial_bytes_to_strip(strip),
            None => builder,
        };
        let codec = builder.build().unwrap();
        decode_three_ways(|| codec.clone(), &data, &sizes);
        decode_three_ways(|| codec.clone().stack(Utf8), &data, &sizes);
    }
}
