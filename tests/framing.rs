//! Framing across reads, in every mode × trigger × allocator: the line and
//! length-field codecs on a server that echoes each frame it decodes (the
//! codec re-frames it on the way out), fed one byte per write and then in
//! one large batch. Any frame cut or joined in the wrong place changes the
//! echoed stream, which is compared byte for byte. A frame over the limit
//! closes its connection while the server keeps serving.

mod common;

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use common::{Config, Rng, connect, pattern};
use wharf::buf::ByteBuf;
use wharf::codec::{LengthFieldCodec, LineCodec};
use wharf::{Codec, Context, Handler, Pipeline};

const MAX_LINE: usize = 1024;
const MAX_FRAME: usize = 8 << 10;

/// Writes every decoded frame back; the codec frames it again.
struct FrameEcho;

impl Handler for FrameEcho {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, frame: ByteBuf) {
        ctx.write(frame);
    }

    fn on_read_complete(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        ctx.flush();
    }
}

fn serve<C>(config: Config, codec: impl Fn() -> C + Send + Sync + 'static) -> wharf::Server
where
    C: Codec<In = ByteBuf, Out = ByteBuf>,
{
    config
        .server()
        .child_handler(move || Pipeline::new(codec(), FrameEcho))
        .bind("127.0.0.1:0")
        .expect("bind")
}

/// Sends `slow` one byte per write, then `fast` in one write and a FIN,
/// and returns everything the server sent back until it closed.
fn exchange(addr: SocketAddr, slow: &[u8], fast: &[u8], expect: usize) -> Vec<u8> {
    let mut client = connect(addr);
    client.set_nodelay(true).expect("nodelay");
    let mut reader = client.try_clone().expect("clone");
    reader
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let echoes = thread::spawn(move || {
        let mut got = Vec::with_capacity(expect);
        let end = reader.read_to_end(&mut got);
        (got, end)
    });
    for byte in slow {
        common::write_all(&mut client, std::slice::from_ref(byte));
    }
    common::write_all(&mut client, fast);
    client.shutdown(Shutdown::Write).expect("half-close");
    let (got, end) = echoes.join().expect("the reader thread");
    // The server must see our FIN after the batch and close: a stall here
    // (the read timing out) is a FIN lost between reads.
    if let Err(e) = end {
        panic!(
            "the stream did not end after {} of {expect} bytes: {e}",
            got.len()
        );
    }
    got
}

/// Lines of random lengths (some empty, some at the limit) from printable
/// bytes, each ended by `\r\n`.
fn lines(rng: &mut Rng, count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..count {
        let len = match i % 7 {
            0 => 0,
            1 => MAX_LINE,
            _ => rng.range(1, MAX_LINE),
        };
        out.extend((0..len).map(|_| b'!' + (rng.next() % 90) as u8));
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Frames behind a 4-byte big-endian length, random bytes (newlines and
/// zeros included), some empty, some at the limit.
fn frames(rng: &mut Rng, count: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..count {
        let len = match i % 7 {
            0 => 0,
            1 => MAX_FRAME - 4,
            _ => rng.range(1, MAX_FRAME - 4),
        };
        out.extend_from_slice(&(len as u32).to_be_bytes());
        out.extend_from_slice(&pattern(seed + i as u64, len));
    }
    out
}

#[test]
fn line_frames_survive_any_split_between_reads() {
    common::for_each(Config::all(), |config| {
        let server = serve(config, || LineCodec::new(MAX_LINE));
        let mut rng = Rng::new(7);
        let slow = lines(&mut rng, 6);
        let fast = lines(&mut rng, 150);
        let sent = [slow.as_slice(), fast.as_slice()].concat();
        let got = exchange(server.local_addr(), &slow, &fast, sent.len());
        assert_eq!(got.len(), sent.len(), "{config}: echoed length");
        assert!(got == sent, "{config}: the echoed lines differ");
    });
}

#[test]
fn length_field_frames_survive_any_split_between_reads() {
    common::for_each(Config::all(), |config| {
        let server = serve(config, || LengthFieldCodec::new(MAX_FRAME));
        let mut rng = Rng::new(11);
        let slow = frames(&mut rng, 4, 100);
        let fast = frames(&mut rng, 60, 1000);
        let sent = [slow.as_slice(), fast.as_slice()].concat();
        let got = exchange(server.local_addr(), &slow, &fast, sent.len());
        assert_eq!(got.len(), sent.len(), "{config}: echoed length");
        assert!(got == sent, "{config}: the echoed frames differ");
    });
}

/// Reads what the server sends until it closes; the end may be a reset.
fn drain(client: &mut TcpStream) -> Vec<u8> {
    let (data, _end) = common::read_until_closed(client);
    data
}

#[test]
fn an_oversized_frame_closes_only_its_connection() {
    common::for_each(Config::all(), |config| {
        for lines_codec in [true, false] {
            let server = if lines_codec {
                serve(config, || LineCodec::new(MAX_LINE))
            } else {
                serve(config, || LengthFieldCodec::new(MAX_FRAME))
            };
            let (good, bad) = if lines_codec {
                (b"fine\r\n".to_vec(), vec![b'x'; MAX_LINE + 2])
            } else {
                let mut good = 4u32.to_be_bytes().to_vec();
                good.extend_from_slice(b"fine");
                (good, ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec())
            };
            let mut bystander = connect(server.local_addr());
            let mut offender = connect(server.local_addr());
            // The good frame first: it is answered, then the bad one ends
            // the connection without the server waiting for more bytes.
            common::write_all(&mut offender, &[good.as_slice(), &bad].concat());
            let echoed = drain(&mut offender);
            assert_eq!(echoed, good, "{config}: what preceded the bad frame");
            // The other connection is still served.
            common::write_all(&mut bystander, &good);
            let back = common::read_exact_n(&mut bystander, good.len());
            assert_eq!(back, good, "{config}: the bystander");
        }
    });
}
