//! Answer, then close, with a lingering close (issue 8 §2, point 5).
//!
//! A server that refuses a request (here: a length-field frame over its
//! 64 KiB limit, a decode error) writes an error response in `on_error`,
//! flushes, and closes. The response must reach the peer even though the
//! peer is still sending the refused request and reads only once it has
//! sent it: the server keeps reading and discarding what arrives (for a
//! bounded time and amount) instead of leaving the peer's writes stuck,
//! shuts down its write side once the response is sent, and so the peer
//! reads the whole response and then an orderly end of stream, not a
//! reset that destroys what it had not read yet (Apache's and nginx's
//! lingering close).
//!
//! The client has a small receive buffer (so the response cannot wait in
//! the kernel for it), sends a 1 MiB frame from a writer thread (ignoring
//! write errors; its write timeout bounds it), and reads once the writer
//! has ended. The server's close timeout is 2 s, so the current behaviour
//! fails in bounded time. Every mode × trigger × allocator, side by side.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Config, EventLog, buf_of, pattern, read_until_closed};
use wharf::buf::ByteBuf;
use wharf::codec::LengthFieldCodec;
use wharf::{ChannelError, Context, Handler, Pipeline, ServerBootstrap};

const LIMIT: usize = 64 << 10;
const RESPONSE: usize = 256 << 10;
const REQUEST: usize = 1 << 20;
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the client's writer may be stuck before it gives up.
const WRITER_TIMEOUT: Duration = Duration::from_secs(3);

/// Refuses oversized frames with a 256 KiB error response, then closes.
struct Refuser {
    log: EventLog,
}

impl Handler for Refuser {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, frame: ByteBuf) {
        self.log.push(format!("frame of {}", frame.len()));
    }

    fn on_error(&mut self, ctx: &mut Context<'_, ByteBuf>, error: &ChannelError) {
        self.log.push(format!("error {error}"));
        if let ChannelError::Decode(_) = error {
            ctx.write(buf_of(ctx.allocator(), &pattern(5, RESPONSE)));
            ctx.flush();
        }
        ctx.close();
    }
}

fn refusing_server(bootstrap: ServerBootstrap, log: &EventLog) -> wharf::Server {
    let log = log.clone();
    bootstrap
        .close_timeout(CLOSE_TIMEOUT)
        .child_handler(move || {
            Pipeline::new(LengthFieldCodec::new(LIMIT), Refuser { log: log.clone() })
        })
        .bind("127.0.0.1:0")
        .expect("bind")
}

/// A client with a small receive buffer, set before connecting.
fn small_window_client(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("client socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(&addr.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream
        .set_write_timeout(Some(WRITER_TIMEOUT))
        .expect("write timeout");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    stream
}

/// Sends the oversized request, then reads: the response and how the
/// stream ended must be exactly right.
fn request_refused_then_read(config: Config, server: &wharf::Server, log: &EventLog) {
    let mut client = small_window_client(server.local_addr());
    let mut writer_end = client.try_clone().expect("clone the client");
    let started = Instant::now();
    let writer = std::thread::spawn(move || {
        let mut request = Vec::with_capacity(4 + REQUEST);
        request.extend_from_slice(&(REQUEST as u32).to_be_bytes());
        request.extend_from_slice(&pattern(6, REQUEST));
        // Errors are expected (the server refuses the request): ignored.
        writer_end.write_all(&request).err()
    });
    let write_error = writer.join().expect("the writer thread");
    let wrote_for = started.elapsed();
    let (data, end) = read_until_closed(&mut client);
    // The codec puts its 4-byte length header in front.
    let mut expected = (RESPONSE as u32).to_be_bytes().to_vec();
    expected.extend_from_slice(&pattern(5, RESPONSE));
    let intact = data == expected;
    assert!(
        intact && end.is_ok(),
        "{config}: the client read {} of the {} response bytes{} and then {end:?} \
         (an orderly end of stream expected); its writer ended after {wrote_for:?} with \
         {write_error:?}; the handler saw {:?}",
        data.len(),
        expected.len(),
        if data.len() == expected.len() && !intact {
            " (wrong bytes)"
        } else {
            ""
        },
        log.snapshot()
    );
}

#[test]
fn an_error_response_reaches_a_peer_that_is_still_sending() {
    common::concurrent::for_each_concurrently(Config::all(), |config| {
        let log = EventLog::new();
        let server = refusing_server(config.server(), &log);
        request_refused_then_read(config, &server, &log);
        common::wait_for_no_connections(&server);
    });
}

/// The same, with the lingering close set explicitly (new API), generous
/// enough for the whole refused request to be discarded.
mod new_api {
    use super::*;
    use wharf::transport::Lingering;

    #[test]
    fn an_error_response_reaches_a_peer_that_is_still_sending_with_lingering_set() {
        common::concurrent::for_each_concurrently(Config::all(), |config| {
            let log = EventLog::new();
            let bootstrap = config.server().lingering_close(Some(Lingering {
                timeout: Duration::from_secs(2),
                max_bytes: 4 * REQUEST,
            }));
            let server = refusing_server(bootstrap, &log);
            request_refused_then_read(config, &server, &log);
            common::wait_for_no_connections(&server);
        });
    }
}
