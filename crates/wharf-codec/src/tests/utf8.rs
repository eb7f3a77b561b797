//! `Utf8`: valid text both ways, invalid bytes refused, and stacked on the
//! framing codecs.

use proptest::prelude::*;
use wharf_transport::{Codec, CodecError, CodecExt, Transform};

use super::{VecSink, buf, decode_three_ways, feed};
use crate::{LengthFieldCodec, LineCodec, Utf8};

#[test]
fn decodes_valid_text() {
    let mut out = Vec::new();
    Utf8.decode(buf("héllo, wörld ✓".as_bytes()), &mut out)
        .unwrap();
    assert_eq!(out, ["héllo, wörld ✓"]);
}

#[test]
fn invalid_utf8_is_malformed() {
    for bad in [&b"\xFF"[..], b"ok\xC3", b"\xED\xA0\x80", b"\xC0\x80"] {
        let mut out = Vec::new();
        assert!(
            matches!(
                Utf8.decode(buf(bad), &mut out),
                Err(CodecError::Malformed(_))
            ),
            "{bad:?}"
        );
        assert!(out.is_empty());
    }
}

#[test]
fn encodes_with_room_for_a_delimiter() {
    let mut out = Vec::new();
    Utf8.encode("ünïcode".to_owned(), &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..], "ünïcode".as_bytes());
    assert!(out[0].writable_bytes() >= 2);
    // So the line codec appends in place.
    let at = out[0].as_ptr();
    let mut sink = VecSink::default();
    LineCodec::new(64)
        .encode_into(out.remove(0), &mut sink)
        .unwrap();
    assert_eq!(sink.bufs.len(), 1);
    assert_eq!(sink.bufs[0].as_ptr(), at);
}

#[test]
fn stacked_on_lines() {
    let out = feed(
        &mut LineCodec::new(64).stack(Utf8),
        [&b"gr\xC3"[..], b"\xBC\xC3\x9F dich\r\nok\r\n"],
    );
    assert_eq!(out.ok(), ["grüß dich".as_bytes().to_vec(), b"ok".to_vec()]);
}

#[test]
fn invalid_text_stops_the_stack_after_the_good_lines() {
    let out = feed(
        &mut LineCodec::new(64).stack(Utf8),
        [&b"fine\r\n\xFF\r\nnever\r\n"[..]],
    );
    assert_eq!(out.frames, [b"fine".to_vec()]);
    assert!(
        matches!(out.error, Some(CodecError::Malformed(_))),
        "{:?}",
        out.error
    );
}

proptest! {
    #![proptest_config(super::config())]

    #[test]
    fn text_round_trips_through_a_length_field(
        texts in prop::collection::vec(".{0,30}", 0..10),
        sizes in super::read_sizes(),
    ) {
        let make = || LengthFieldCodec::builder(1024).length_field_length(2).build().unwrap();
        let mut sink = VecSink::default();
        for text in &texts {
            let mut below = Vec::new();
            Utf8.encode(text.clone(), &mut below).unwrap();
            for frame in below {
                make().encode_into(frame, &mut sink).unwrap();
            }
        }
        let decoded = decode_three_ways(|| make().stack(Utf8), &sink.bytes(), &sizes).ok();
        let expected: Vec<Vec<u8>> = texts.iter().map(|t| t.as_bytes().to_vec()).collect();
        prop_assert_eq!(decoded, expected);
    }
}

#[test]
fn message_size_is_the_text_length() {
    assert_eq!(<Utf8 as Transform>::message_size(&"añb".to_owned()), 4);
    assert_eq!(
        <wharf_transport::Stacked<LineCodec, Utf8> as Codec>::message_size(&"ab".to_owned()),
        2
    );
}
