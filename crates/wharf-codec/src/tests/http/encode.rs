//! The encoder: the head in one buffer, Content-Length, HEAD, 1xx, 204 and
//! 304, bodies in memory and in files, Date and Server, refusals.

use std::fs::File;
use std::io::Write;

use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, DATE, SERVER, TRANSFER_ENCODING};
use http::{HeaderValue, StatusCode, Version};
use wharf_buf::Allocator;
use wharf_transport::{Codec, CodecError, Encoded, FileRegion, OutboundMessage};

use super::one;
use crate::http::date;
use crate::tests::buf;
use crate::{Body, EncodedFields, HttpError, HttpResponse, HttpServerCodec};

/// A codec without the fields that change with the clock.
fn plain() -> HttpServerCodec {
    HttpServerCodec::new()
        .date_header(false)
        .server_header(None)
}

/// What `codec` queues for `response`.
fn encode_with(
    codec: &mut HttpServerCodec,
    response: HttpResponse,
) -> Result<Vec<OutboundMessage>, CodecError> {
    let mut out = Encoded::new(Allocator::default());
    codec.encode(response, &mut out)?;
    Ok(out.drain().collect())
}

/// The bytes queued, which must all be in memory.
fn wire(entries: &[OutboundMessage]) -> String {
    let mut bytes = Vec::new();
    for entry in entries {
        match entry {
            OutboundMessage::Buf(b) => bytes.extend_from_slice(b),
            OutboundMessage::Frozen(b) => bytes.extend_from_slice(b),
            OutboundMessage::File(_) | OutboundMessage::Spliced(_) => {
                panic!("bytes not in memory among {entries:?}")
            }
        }
    }
    String::from_utf8(bytes).unwrap()
}

fn encode(response: HttpResponse) -> String {
    wire(&encode_with(&mut plain(), response).unwrap())
}

#[test]
fn content_length_is_added_and_a_small_body_shares_the_head_buffer() {
    let entries = encode_with(
        &mut plain(),
        HttpResponse::new(StatusCode::OK).body("hello"),
    )
    .unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        wire(&entries),
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
    );
    assert_eq!(
        encode(HttpResponse::new(StatusCode::NOT_FOUND)),
        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
    );
}

#[test]
fn header_fields_are_written_in_order() {
    let response = HttpResponse::new(StatusCode::OK)
        .header(CONTENT_TYPE, HeaderValue::from_static("text/plain"))
        .header("x-a".parse().unwrap(), HeaderValue::from_static("1"))
        .header("x-a".parse().unwrap(), HeaderValue::from_static("2"))
        .body(&b"ok"[..]);
    assert_eq!(
        encode(response),
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 2\r\n\r\nok"
    );
}

#[test]
fn a_content_length_the_handler_set_must_match_the_body() {
    let response = HttpResponse::new(StatusCode::OK)
        .header(CONTENT_LENGTH, HeaderValue::from(3u64))
        .body("abc");
    assert_eq!(
        encode(response),
        "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc"
    );
    for wrong in ["4", "x", "-3"] {
        let response = HttpResponse::new(StatusCode::OK)
            .header(CONTENT_LENGTH, HeaderValue::from_static(wrong))
            .body("abc");
        let result = encode_with(&mut plain(), response);
        assert!(
            matches!(result, Err(CodecError::Unencodable(_))),
            "{wrong}: {result:?}"
        );
    }
}

#[test]
fn a_large_body_follows_the_head_without_a_copy() {
    let body = buf(&[b'x'; 4096]);
    let at = body.as_ptr();
    let entries = encode_with(&mut plain(), HttpResponse::new(StatusCode::OK).body(body)).unwrap();
    assert_eq!(entries.len(), 2);
    match &entries[1] {
        OutboundMessage::Buf(b) => assert_eq!(b.as_ptr(), at),
        other => panic!("{other:?}"),
    }
    assert!(wire(&entries).starts_with("HTTP/1.1 200 OK\r\ncontent-length: 4096\r\n\r\nxxx"));

    let frozen = buf(&[b'y'; 1000]).freeze();
    let entries = encode_with(
        &mut plain(),
        HttpResponse::new(StatusCode::OK).body(frozen.clone()),
    )
    .unwrap();
    assert!(matches!(&entries[1], OutboundMessage::Frozen(f) if *f == frozen));
    let small = buf(b"tiny").freeze();
    let entries = encode_with(&mut plain(), HttpResponse::new(StatusCode::OK).body(small)).unwrap();
    assert_eq!(entries.len(), 1);
}

#[test]
fn head_responses_carry_the_length_but_no_body() {
    let response = HttpResponse::text(StatusCode::OK, "ignored").head_only(1234);
    assert_eq!(
        encode(response),
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 1234\r\n\r\n"
    );
    // Marked by hand, with the body still there: its length, not its bytes.
    let mut response = HttpResponse::new(StatusCode::OK).body("abcdef");
    response.head_only = true;
    assert_eq!(
        encode(response),
        "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n"
    );
    let mut response = HttpResponse::new(StatusCode::OK);
    response.head_only = true;
    assert_eq!(encode(response), "HTTP/1.1 200 OK\r\n\r\n");
}

#[test]
fn not_modified_has_no_body_and_keeps_a_length_it_was_given() {
    let response = HttpResponse::new(StatusCode::NOT_MODIFIED).body("stale");
    assert_eq!(encode(response), "HTTP/1.1 304 Not Modified\r\n\r\n");
    let response = HttpResponse::new(StatusCode::NOT_MODIFIED)
        .header(CONTENT_LENGTH, HeaderValue::from(99u64))
        .body("stale");
    assert_eq!(
        encode(response),
        "HTTP/1.1 304 Not Modified\r\ncontent-length: 99\r\n\r\n"
    );
}

#[test]
fn no_content_and_informational_have_neither_body_nor_length() {
    let response = HttpResponse::new(StatusCode::NO_CONTENT)
        .header(CONTENT_LENGTH, HeaderValue::from(5u64))
        .body("hello");
    assert_eq!(encode(response), "HTTP/1.1 204 No Content\r\n\r\n");
    let entries = encode_with(
        &mut HttpServerCodec::new(),
        HttpResponse::new(StatusCode::CONTINUE),
    )
    .unwrap();
    assert_eq!(
        wire(&entries),
        "HTTP/1.1 100 Continue\r\n\r\n",
        "no Date or Server either"
    );
}

#[test]
fn a_file_body_is_queued_as_a_region_with_its_count_as_the_length() {
    let path = std::env::temp_dir().join(format!("wharf-codec-http-{}.txt", std::process::id()));
    File::create(&path)
        .unwrap()
        .write_all(b"0123456789")
        .unwrap();
    let file = File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();

    let region = FileRegion::new(file, 2, 5);
    let response = HttpResponse::new(StatusCode::OK).body(region);
    assert_eq!(HttpServerCodec::message_size(&response), 256 + 5);
    let entries = encode_with(&mut plain(), response).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        wire(&entries[..1]),
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
    );
    match &entries[1] {
        OutboundMessage::File(region) => {
            assert_eq!(
                (region.position(), region.count(), region.remaining()),
                (2, 5, 5)
            );
        }
        other => panic!("{other:?}"),
    }

    // An empty region: a length of 0 and nothing to send.
    let file = File::open("/dev/null").unwrap();
    let response = HttpResponse::new(StatusCode::OK).body(FileRegion::new(file, 0, 0));
    let entries = encode_with(&mut plain(), response).unwrap();
    assert_eq!(
        wire(&entries),
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
    );
}

#[test]
fn date_and_server_are_added_unless_set_or_turned_off() {
    let text = wire(
        &encode_with(
            &mut HttpServerCodec::new(),
            HttpResponse::new(StatusCode::OK),
        )
        .unwrap(),
    );
    let date_line = text.lines().find_map(|l| l.strip_prefix("date: ")).unwrap();
    assert_eq!(date_line.len(), 29);
    assert!(date_line.ends_with(" GMT"), "{date_line}");
    assert!(text.contains("\r\nserver: wharf\r\n"), "{text}");

    let response = HttpResponse::new(StatusCode::OK)
        .header(
            DATE,
            HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
        )
        .header(SERVER, HeaderValue::from_static("mine"));
    let text = wire(&encode_with(&mut HttpServerCodec::new(), response).unwrap());
    assert_eq!(text.matches("date:").count(), 1);
    assert!(text.contains("date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"));
    assert!(text.contains("server: mine\r\n") && !text.contains("wharf"));

    let mut codec = HttpServerCodec::new()
        .date_header(false)
        .server_header(Some(HeaderValue::from_static("edge/1")));
    let text = wire(&encode_with(&mut codec, HttpResponse::new(StatusCode::OK)).unwrap());
    assert_eq!(
        text,
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nserver: edge/1\r\n\r\n"
    );
}

#[test]
fn dates_are_imf_fixdates() {
    let cases = [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (1_709_251_199, "Thu, 29 Feb 2024 23:59:59 GMT"),
        (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 GMT"),
        (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
    ];
    for (secs, text) in cases {
        assert_eq!(
            std::str::from_utf8(&date::format(secs)).unwrap(),
            text,
            "{secs}"
        );
    }
    let now = date::now();
    assert_eq!(
        now,
        date::now(),
        "cached within the second (or the second turned)"
    );
}

#[test]
fn what_cannot_be_encoded_is_refused() {
    let chunked = HttpResponse::new(StatusCode::OK)
        .header(TRANSFER_ENCODING, HeaderValue::from_static("chunked"))
        .body("x");
    assert!(matches!(
        encode_with(&mut plain(), chunked),
        Err(CodecError::Unencodable(_))
    ));
    let h2 = HttpResponse::new(StatusCode::OK).version(Version::HTTP_2);
    assert!(matches!(
        encode_with(&mut plain(), h2),
        Err(CodecError::Unencodable(_))
    ));
}

#[test]
fn status_lines() {
    let response = HttpResponse::new(StatusCode::OK).version(Version::HTTP_10);
    assert!(encode(response).starts_with("HTTP/1.0 200 OK\r\n"));
    let unknown = HttpResponse::new(StatusCode::from_u16(599).unwrap());
    assert!(encode(unknown).starts_with("HTTP/1.1 599 \r\n"));
    // An HTTP/1.0 request gets an HTTP/1.1 status line unless told otherwise.
    let request = one(b"GET / HTTP/1.0\r\n\r\n");
    let response = HttpResponse::new(StatusCode::OK).keep_alive_for(&request);
    assert_eq!(
        encode(response),
        "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
    );
}

#[test]
fn error_responses() {
    let error = HttpError::new(StatusCode::URI_TOO_LONG, "request line exceeds the limit");
    let response = HttpResponse::from(error);
    assert_eq!(response.headers[CONNECTION], "close");
    assert_eq!(
        encode(response),
        "HTTP/1.1 414 URI Too Long\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n\
         content-length: 49\r\n\r\n414 URI Too Long: request line exceeds the limit\n"
    );
}

#[test]
fn message_size_is_the_head_estimate_plus_the_body_sent() {
    let size = |r: &HttpResponse| HttpServerCodec::message_size(r);
    assert_eq!(size(&HttpResponse::new(StatusCode::OK)), 256);
    assert_eq!(size(&HttpResponse::new(StatusCode::OK).body("hello")), 261);
    assert_eq!(
        size(&HttpResponse::new(StatusCode::OK).body("hello").head_only(5)),
        256
    );
    assert_eq!(
        size(&HttpResponse::new(StatusCode::NOT_MODIFIED).body("hello")),
        256
    );
    assert_eq!(Body::from("abc").len(), 3);
    assert!(Body::Empty.is_empty());
}

/// `content-type: text/plain` and `Content-Length: len`, encoded once.
fn preset(len: u64) -> EncodedFields {
    EncodedFields::new(
        [(CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
        Some(len),
    )
    .unwrap()
}

#[test]
fn encoded_fields_follow_the_map_and_their_length_frames_the_body() {
    let response = HttpResponse::new(StatusCode::OK)
        .header("x-a".parse().unwrap(), HeaderValue::from_static("1"))
        .fields(preset(2))
        .body(&b"ok"[..]);
    assert_eq!(
        encode(response),
        "HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"
    );
    // HEAD: the length of the body a GET would get, once.
    let head = HttpResponse::new(StatusCode::OK)
        .fields(preset(7))
        .head_only(7);
    assert_eq!(
        encode(head),
        "HTTP/1.1 200 OK\r\ncontent-length: 7\r\ncontent-type: text/plain\r\n\r\n"
    );
    // No Content-Length on a 204, whoever set it.
    let mut empty = HttpResponse::new(StatusCode::NO_CONTENT).fields(preset(0));
    empty.head_only = true;
    assert_eq!(
        encode(empty),
        "HTTP/1.1 204 No Content\r\ncontent-type: text/plain\r\n\r\n"
    );
}

#[test]
fn encoded_fields_that_disagree_with_the_body_or_the_map_are_refused() {
    let short = HttpResponse::new(StatusCode::OK)
        .fields(preset(3))
        .body(&b"ok"[..]);
    assert!(encode_with(&mut plain(), short).is_err());
    let conflict = HttpResponse::new(StatusCode::OK)
        .header(CONTENT_LENGTH, HeaderValue::from_static("2"))
        .fields(preset(3))
        .body(&b"ok"[..]);
    assert!(encode_with(&mut plain(), conflict).is_err());
}
