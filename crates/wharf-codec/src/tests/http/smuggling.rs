//! Request smuggling: every framing a front end and this server could read
//! differently is refused, and a body is never read as a request.

use http::StatusCode;

use super::{decode, get, one, refused, request};

const BAD: StatusCode = StatusCode::BAD_REQUEST;

#[test]
fn content_length_with_transfer_encoding_is_refused_in_either_order() {
    for fields in [
        "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
        "Content-Length: 4\r\nTransfer-Encoding: gzip\r\n",
    ] {
        let data = get(fields, b"0\r\n\r\n");
        assert_eq!(refused(&data), BAD, "{fields:?}");
    }
}

#[test]
fn differing_duplicate_content_lengths_are_refused() {
    for fields in [
        "Content-Length: 0\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nContent-Length: 0\r\n",
        "Content-Length: 5, 0\r\n",
        "Content-Length: 5\r\nContent-Length: 5, 6\r\n",
    ] {
        assert_eq!(refused(&get(fields, b"hello")), BAD, "{fields:?}");
    }
}

#[test]
fn chunked_must_be_the_final_coding_even_across_fields() {
    for fields in [
        "Transfer-Encoding: chunked, identity\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: chunked-false\r\n",
        "Transfer-Encoding: \"chunked\"\r\n",
    ] {
        assert_eq!(refused(&get(fields, b"0\r\n\r\n")), BAD, "{fields:?}");
    }
    // Split over two fields, the list still ends with chunked.
    let r = one(&get(
        "Transfer-Encoding: \r\nTransfer-Encoding: chunked\r\n",
        b"1\r\nx\r\n0\r\n\r\n",
    ));
    assert_eq!(&r.body[..], b"x");
}

#[test]
fn whitespace_and_folding_tricks_are_refused_by_the_parser() {
    for fields in [
        // obs-fold: a continuation line.
        "Transfer-Encoding:\r\n chunked\r\n",
        "X: a\r\n chunked\r\n",
        "Content-Length:\r\n\t5\r\n",
        // Whitespace between the name and the colon.
        "Transfer-Encoding : chunked\r\n",
        "Content-Length\t: 5\r\n",
        // A field name that starts with whitespace.
        " Transfer-Encoding: chunked\r\n",
        "\tContent-Length: 5\r\n",
        // Control characters inside values.
        "Transfer-Encoding: \x0bchunked\r\n",
        "Content-Length: \x0c5\r\n",
        "Transfer-Encoding: chu\x00nked\r\n",
    ] {
        assert_eq!(refused(&get(fields, b"hello")), BAD, "{fields:?}");
    }
}

#[test]
fn an_empty_chunk_size_does_not_end_the_body_early() {
    // httparse alone reads an empty size line as 0.
    let data = get(
        "Transfer-Encoding: chunked\r\n",
        b"\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let out = decode(&data);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].as_ref().unwrap_err().status, BAD);
}

#[test]
fn a_body_is_never_read_as_a_request() {
    let inner = b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n";
    let data = get(&format!("Content-Length: {}\r\n", inner.len()), inner);
    let r = one(&data);
    assert_eq!(&r.body[..], inner);

    let mut chunk = format!("{:x}\r\n", inner.len()).into_bytes();
    chunk.extend_from_slice(inner);
    chunk.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = one(&get("Transfer-Encoding: chunked\r\n", &chunk));
    assert_eq!(&r.body[..], inner);
}

#[test]
fn a_content_length_shorter_than_the_data_leaves_the_rest_as_the_next_request() {
    // What a front end that ignored Content-Length would have forwarded as
    // one request is two here, and the second is refused.
    let data = get("Content-Length: 3\r\n", b"abcGET /x HTTP/1.1\r\n\r\n");
    let out = decode(&data);
    assert_eq!(out.len(), 2);
    assert_eq!(&out[0].as_ref().unwrap().body[..], b"abc");
    assert_eq!(out[1].as_ref().unwrap_err().status, BAD, "no Host");
}

#[test]
fn transfer_encoding_in_http_1_0_is_honoured_then_the_connection_closes() {
    let r = one(&request(
        "POST / HTTP/1.0",
        "Transfer-Encoding: chunked\r\n",
        b"3\r\nabc\r\n0\r\n\r\n",
    ));
    assert_eq!(&r.body[..], b"abc");
    assert!(!r.keep_alive);
}
