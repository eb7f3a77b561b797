//! Bodies handed over to the handler (`HttpServerCodec::hand_over_bodies`):
//! the request comes at its head, the codec claims the body's bytes and
//! decodes nothing past them until it hears they were taken.

use http::Method;
use wharf_buf::ByteBuf;
use wharf_transport::Codec;

use super::{Decoded, request};
use crate::HttpServerCodec;

fn uploads() -> HttpServerCodec {
    HttpServerCodec::new().hand_over_bodies(|method| method == Method::PUT)
}

fn decode(codec: &mut HttpServerCodec, input: &mut ByteBuf) -> Vec<Decoded> {
    let mut out = Vec::new();
    codec.decode(input, &mut out).expect("never fails");
    out
}

#[test]
fn a_put_comes_at_its_head_and_its_body_stays_in_the_input() {
    let mut codec = uploads();
    let mut data = request(
        "PUT /f HTTP/1.1",
        "Host: a\r\nContent-Length: 10\r\n",
        b"0123",
    );
    data.extend_from_slice(b"456789GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut input = ByteBuf::new();
    input.extend_from_slice(&data);
    let got = decode(&mut codec, &mut input);
    assert_eq!(got.len(), 1, "nothing past the body is decoded: {got:?}");
    let put = got.into_iter().next().unwrap().unwrap();
    assert_eq!(put.unread_body, Some(10));
    assert!(put.body.is_empty());
    assert!(codec.input_claimed());
    assert!(
        input.starts_with(b"0123456789GET"),
        "the body is left as it is"
    );

    // Called again (more input arrived), still nothing.
    assert!(decode(&mut codec, &mut input).is_empty());

    // The handler took the ten bytes around the codec.
    input.skip(4);
    codec.input_taken(4);
    assert!(codec.input_claimed(), "six bytes are still to be taken");
    input.skip(6);
    codec.input_taken(6);
    assert!(!codec.input_claimed());
    let got = decode(&mut codec, &mut input);
    assert_eq!(got.len(), 1);
    let get = got.into_iter().next().unwrap().unwrap();
    assert_eq!(get.method, Method::GET);
    assert_eq!(get.unread_body, None);
}

#[test]
fn a_chunked_body_of_a_picked_method_is_refused_411_at_its_head() {
    let mut codec = uploads();
    let data = request(
        "PUT /c HTTP/1.1",
        "Host: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n",
        b"",
    );
    let mut input = ByteBuf::new();
    input.extend_from_slice(&data);
    let got = decode(&mut codec, &mut input);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].as_ref().unwrap_err().status,
        http::StatusCode::LENGTH_REQUIRED
    );
}

#[test]
fn other_methods_and_empty_bodies_are_read_as_usual() {
    let mut codec = uploads();
    let mut data = request(
        "POST /f HTTP/1.1",
        "Host: a\r\nContent-Length: 2\r\n",
        b"hi",
    );
    data.extend(request(
        "PUT /e HTTP/1.1",
        "Host: a\r\nContent-Length: 0\r\n",
        b"",
    ));
    data.extend(request(
        "POST /c HTTP/1.1",
        "Host: a\r\nTransfer-Encoding: chunked\r\n",
        b"2\r\nok\r\n0\r\n\r\n",
    ));
    let mut input = ByteBuf::new();
    input.extend_from_slice(&data);
    let got: Vec<_> = decode(&mut codec, &mut input)
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(got.len(), 3);
    assert_eq!(&got[0].body[..], b"hi");
    assert!(got.iter().all(|r| r.unread_body.is_none()));
    assert_eq!(&got[2].body[..], b"ok");
    assert!(!codec.input_claimed());
}

#[test]
fn a_handed_over_body_is_not_held_to_max_body() {
    let mut codec = uploads();
    let length = 1u64 << 40;
    let data = request(
        "PUT /big HTTP/1.1",
        &format!("Host: a\r\nContent-Length: {length}\r\n"),
        b"",
    );
    let mut input = ByteBuf::new();
    input.extend_from_slice(&data);
    let got = decode(&mut codec, &mut input);
    assert_eq!(got[0].as_ref().unwrap().unread_body, Some(length));
}

#[test]
fn the_end_of_input_forgets_a_body_not_taken() {
    let mut codec = uploads();
    let data = request(
        "PUT /f HTTP/1.1",
        "Host: a\r\nContent-Length: 10\r\n",
        b"01",
    );
    let mut input = ByteBuf::new();
    input.extend_from_slice(&data);
    assert_eq!(decode(&mut codec, &mut input).len(), 1);
    let mut out = Vec::new();
    codec.decode_eof(&mut input, &mut out).unwrap();
    assert!(out.is_empty());
    assert!(input.is_empty());
    assert!(!codec.input_claimed());
}
