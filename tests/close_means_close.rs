//! `Context::close` means close (issue 8 §2, point 4): its documentation
//! says reading stops, and that must hold for messages already decoded
//! from the same read, too. A Redis-like line server answers `PING` with
//! `+PONG` and `QUIT` with `+OK` followed by a close; a client that sends
//! `PING QUIT PING` in one segment must get exactly `+PONG +OK` and then
//! the end of the stream, as Redis answers: the `PING` after `QUIT` is
//! never handled. In every mode × trigger × allocator (in the worker-pool
//! modes the close is asked for on a worker, and the messages decoded with
//! it are already on their way there).

mod common;

use std::time::Duration;

use common::{Config, EventLog, buf_of, connect, read_until_closed, write_all};
use wharf::buf::ByteBuf;
use wharf::codec::LineCodec;
use wharf::{Context, Handler, Pipeline};

/// `PING` → `+PONG`, `QUIT` → `+OK` then close, anything else → `-ERR`.
struct MiniRedis {
    log: EventLog,
}

impl Handler for MiniRedis {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, line: ByteBuf) {
        self.log
            .push(format!("read {}", String::from_utf8_lossy(&line)));
        match &line[..] {
            b"PING" => ctx.write(buf_of(ctx.allocator(), b"+PONG")),
            b"QUIT" => {
                ctx.write(buf_of(ctx.allocator(), b"+OK"));
                ctx.flush();
                ctx.close();
            }
            _ => ctx.write(buf_of(ctx.allocator(), b"-ERR unknown command")),
        }
    }

    fn on_read_complete(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        ctx.flush();
    }
}

#[test]
fn nothing_decoded_after_a_close_is_handled() {
    common::concurrent::for_each_reporting_all(Config::all(), |config| {
        let log = EventLog::new();
        let server_log = log.clone();
        let server = config
            .server()
            .child_handler(move || {
                Pipeline::new(
                    LineCodec::new(64),
                    MiniRedis {
                        log: server_log.clone(),
                    },
                )
            })
            .bind("127.0.0.1:0")
            .expect("bind");
        let mut client = connect(server.local_addr());
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        // One write, one segment: the server decodes all three lines from
        // one read.
        write_all(&mut client, b"PING\r\nQUIT\r\nPING\r\n");
        let (data, end) = read_until_closed(&mut client);
        let got = String::from_utf8_lossy(&data);
        assert!(
            got == "+PONG\r\n+OK\r\n" && end.is_ok(),
            "{config}: the client read {got:?} then {end:?}; expected \"+PONG\\r\\n+OK\\r\\n\" \
             then an orderly end of stream (the handler was given {:?})",
            log.snapshot()
        );
        common::wait_for_no_connections(&server);
    });
}
