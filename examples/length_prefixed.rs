//! A custom codec end to end: a binary protocol whose frames are a
//! two-byte big-endian length and that many bytes. The server answers each
//! frame with its bytes in upper case; a frame longer than 1 KiB is
//! answered with an error frame, and the connection closes.
//!
//! ```text
//! cargo run --example length_prefixed
//! ```
//!
//! It starts the server on a free port, talks to it as a client would
//! (a frame split across writes, two frames in one write, one too long),
//! prints what came back, and exits. This file is also the crate docs'
//! codec example, so it is compiled and run by `cargo test`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use wharf::bytes::{Buf, BufMut};
use wharf::prelude::*;

/// Frames: a `u16` big-endian length, then that many bytes.
struct Frames {
    max: usize,
}

impl Codec for Frames {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn decode(&mut self, input: &mut ByteBuf, out: &mut Vec<ByteBuf>) -> Result<(), CodecError> {
        // Every complete frame at the front; an incomplete one stays in
        // `input` and is completed by the next read.
        while input.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([input[0], input[1]]));
            if len > self.max {
                return Err(CodecError::TooLong {
                    limit: self.max,
                    length: len,
                });
            }
            if input.len() < 2 + len {
                break;
            }
            input.advance(2);
            out.push(input.split_to(len)); // shares the bytes, no copy
        }
        Ok(())
    }

    fn encode(&mut self, msg: ByteBuf, out: &mut Encoded) -> Result<(), CodecError> {
        let len = u16::try_from(msg.len())
            .map_err(|_| CodecError::Unencodable(format!("{} bytes", msg.len())))?;
        let mut head = out.buffer(2);
        head.put_u16(len);
        out.push(head);
        out.push(msg); // written with the head in one writev
        Ok(())
    }

    /// Once the header is in, the whole frame's size: the channel reserves
    /// it and reads the rest straight into it.
    fn size_hint(&self, input: &ByteBuf) -> Option<usize> {
        let len = usize::from(u16::from_be_bytes([*input.first()?, *input.get(1)?]));
        (len <= self.max).then_some(2 + len)
    }

    fn message_size(msg: &ByteBuf) -> usize {
        2 + msg.len()
    }
}

/// Upper-cases every frame; answers a bad one before the close.
struct Shout;

impl Handler for Shout {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, mut frame: ByteBuf) {
        frame.make_ascii_uppercase();
        ctx.write(frame);
    }

    fn on_read_complete(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        ctx.flush();
    }

    fn on_error(&mut self, ctx: &mut Context<'_, ByteBuf>, error: &ChannelError) {
        if let ChannelError::Decode(e) = error {
            // Written and flushed before the close: the peer reads it.
            let mut answer = ctx.allocator().buffer(64);
            answer.extend_from_slice(format!("error: {e}").as_bytes());
            ctx.write(answer);
            ctx.flush();
        }
        ctx.close();
    }
}

/// A frame as a client writes it.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// Reads one frame.
fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = [0; 2];
    stream.read_exact(&mut head)?;
    let mut payload = vec![0; usize::from(u16::from_be_bytes(head))];
    stream.read_exact(&mut payload)?;
    Ok(payload)
}

fn main() -> std::io::Result<()> {
    // The codec on its own: half a frame waits for the rest.
    let mut codec = Frames { max: 1024 };
    let mut input = ByteBuf::new();
    let hello = frame(b"hello");
    input.extend_from_slice(&hello[..4]);
    let mut out = Vec::new();
    codec.decode(&mut input, &mut out).expect("a valid prefix");
    assert!(out.is_empty() && input.len() == 4);
    input.extend_from_slice(&hello[4..]);
    codec.decode(&mut input, &mut out).expect("the rest");
    assert_eq!(&out[0][..], b"hello");

    // The same codec in a server, over a socket.
    let mut server = ServerBootstrap::new()
        .child_handler(|| Pipeline::new(Frames { max: 1024 }, Shout))
        .bind("127.0.0.1:0")?;
    let mut client = TcpStream::connect(server.local_addr())?;
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    client.write_all(&hello[..3])?; // a frame split across writes
    client.write_all(&hello[3..])?;
    assert_eq!(read_frame(&mut client)?, b"HELLO");
    client.write_all(&[frame(b"two"), frame(b"frames")].concat())?;
    assert_eq!(read_frame(&mut client)?, b"TWO");
    assert_eq!(read_frame(&mut client)?, b"FRAMES");
    client.write_all(&[0xff, 0xff])?; // announces 65535 bytes: too long
    let answer = read_frame(&mut client)?;
    println!("{}", String::from_utf8_lossy(&answer));
    assert!(answer.starts_with(b"error: frame of 65535 bytes exceeds the limit of 1024"));
    assert_eq!(client.read(&mut [0; 1])?, 0, "then the server closes");
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5))
}
