//! How connections end: a peer's half-close with and without
//! `allow_half_closure`, the server's own `shutdown_output`, a reset by the
//! peer in the middle of a stream, a server close that first sends what is
//! queued, and `SO_LINGER` zero turning the server's close into a reset.
//!
//! Each test but the last runs over TCP and over a Unix-domain socket
//! (issue 11, point 3). The last is TCP's own: a Unix-domain close has no
//! reset to send.

mod common;

use std::io::{ErrorKind, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::transport::{Client, Transport};
use common::{Config, EventLog, buf_of, connect, pattern, read_until_closed};
use wharf::buf::ByteBuf;
use wharf::{ChannelError, Context, Handler, Pipeline, SocketOption, UserEvent};

/// Records a channel error as `error:io:<kind>` or `error:<other>`.
fn record_error(log: &EventLog, error: &ChannelError) {
    match error {
        ChannelError::Io(e) => log.push(format!("error:io:{:?}", e.kind())),
        other => log.push(format!("error:{other}")),
    }
}

/// Echoes, flushing once per batch, and records the end of the channel.
struct RecordingEcho {
    log: EventLog,
}

impl Handler for RecordingEcho {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
        ctx.write(msg);
    }

    fn on_read_complete(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        ctx.flush();
    }

    fn on_input_shutdown(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        self.log.push("input_shutdown");
    }

    fn on_error(&mut self, ctx: &mut Context<'_, ByteBuf>, error: &ChannelError) {
        record_error(&self.log, error);
        ctx.close();
    }

    fn on_inactive(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        self.log.push("inactive");
    }
}

#[test]
fn without_half_closure_end_of_input_closes_after_the_replies_are_sent() {
    without_half_closure_end_of_input_closes_after_the_replies_are_sent_over(Transport::Tcp);
}

#[test]
fn without_half_closure_end_of_input_closes_after_the_replies_are_sent_over_unix() {
    without_half_closure_end_of_input_closes_after_the_replies_are_sent_over(Transport::Unix);
}

fn without_half_closure_end_of_input_closes_after_the_replies_are_sent_over(transport: Transport) {
    const LEN: usize = 1 << 20;
    common::for_each(transport.configs(), |config| {
        let log = EventLog::new();
        let l = log.clone();
        let bootstrap = config
            .server()
            .child_handler(move || Pipeline::bytes(RecordingEcho { log: l.clone() }));
        let server = transport.bind(bootstrap);
        let mut client = Client::connect(&server);
        let data = pattern(11, LEN);
        let mut writer = client.try_clone();
        let sent = data.clone();
        // Send everything, then half-close; the main thread reads meanwhile.
        let sender = std::thread::spawn(move || {
            writer.write_all(&sent).expect("send");
            writer
                .shutdown(Shutdown::Write)
                .expect("shut down the write side");
        });
        let (echoed, end) = client.read_until_closed();
        sender.join().expect("sender thread");
        assert!(
            end.is_ok(),
            "{config}: the stream ended with {end:?} after {} of {LEN} bytes",
            echoed.len()
        );
        assert_eq!(
            echoed.len(),
            LEN,
            "{config}: bytes echoed before end of stream"
        );
        assert!(echoed == data, "{config}: the echo differs");
        log.wait_for(Duration::from_secs(5), "inactive");
        let events = log.snapshot();
        assert_eq!(events, vec!["inactive"], "{config}: handler events");
        common::wait_until(
            Duration::from_secs(5),
            "the connection count to drop",
            || server.connections() == 0,
        );
    });
}

/// Counts bytes; when the peer half-closes, waits a little (the channel
/// must stay open), then answers with a summary and closes.
struct Summariser {
    bytes: usize,
    log: EventLog,
}

impl Handler for Summariser {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
        self.bytes += msg.len();
    }

    fn on_input_shutdown(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        self.log.push("input_shutdown");
        ctx.schedule(Duration::from_millis(50), 1);
    }

    fn on_user_event(&mut self, ctx: &mut Context<'_, ByteBuf>, event: UserEvent) {
        if let UserEvent::Timer(1) = event {
            self.log.push("timer");
            let summary = format!("got {} bytes", self.bytes);
            let buf = buf_of(ctx.allocator(), summary.as_bytes());
            ctx.write_and_flush(buf);
            ctx.close();
        }
    }

    fn on_error(&mut self, ctx: &mut Context<'_, ByteBuf>, error: &ChannelError) {
        record_error(&self.log, error);
        ctx.close();
    }

    fn on_inactive(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        self.log.push("inactive");
    }
}

#[test]
fn with_half_closure_the_handler_hears_of_it_and_can_still_write() {
    with_half_closure_the_handler_hears_of_it_and_can_still_write_over(Transport::Tcp);
}

#[test]
fn with_half_closure_the_handler_hears_of_it_and_can_still_write_over_unix() {
    with_half_closure_the_handler_hears_of_it_and_can_still_write_over(Transport::Unix);
}

fn with_half_closure_the_handler_hears_of_it_and_can_still_write_over(transport: Transport) {
    const LEN: usize = 300_000;
    common::for_each(transport.configs(), |config| {
        let log = EventLog::new();
        let l = log.clone();
        let bootstrap = config
            .server()
            .allow_half_closure(true)
            .child_handler(move || {
                Pipeline::bytes(Summariser {
                    bytes: 0,
                    log: l.clone(),
                })
            });
        let server = transport.bind(bootstrap);
        let mut client = Client::connect(&server);
        client.write_all(&pattern(12, LEN)).expect("send");
        client
            .shutdown(Shutdown::Write)
            .expect("shut down the write side");
        let (reply, end) = client.read_until_closed();
        assert!(end.is_ok(), "{config}: the stream ended with {end:?}");
        assert_eq!(
            String::from_utf8_lossy(&reply),
            format!("got {LEN} bytes"),
            "{config}: the reply after the half-close"
        );
        log.wait_for(Duration::from_secs(5), "inactive");
        assert_eq!(
            log.snapshot(),
            vec!["input_shutdown", "timer", "inactive"],
            "{config}: handler events"
        );
    });
}

/// Answers the first read and shuts its output down; counts every byte it
/// reads, before and after.
struct AnswersThenShutsOutput {
    shut: bool,
    received: Arc<AtomicUsize>,
    log: EventLog,
}

impl Handler for AnswersThenShutsOutput {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
        self.received.fetch_add(msg.len(), Ordering::SeqCst);
        if !self.shut {
            self.shut = true;
            let buf = buf_of(ctx.allocator(), b"response");
            ctx.write(buf);
            ctx.shutdown_output();
            self.log.push("shutdown_output");
        }
    }

    fn on_input_shutdown(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        self.log.push("input_shutdown");
    }

    fn on_error(&mut self, ctx: &mut Context<'_, ByteBuf>, error: &ChannelError) {
        record_error(&self.log, error);
        ctx.close();
    }

    fn on_inactive(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        self.log.push("inactive");
    }
}

#[test]
fn shutdown_output_ends_the_clients_stream_and_the_server_keeps_reading() {
    shutdown_output_ends_the_clients_stream_and_the_server_keeps_reading_over(Transport::Tcp);
}

#[test]
fn shutdown_output_ends_the_clients_stream_and_the_server_keeps_reading_over_unix() {
    shutdown_output_ends_the_clients_stream_and_the_server_keeps_reading_over(Transport::Unix);
}

fn shutdown_output_ends_the_clients_stream_and_the_server_keeps_reading_over(transport: Transport) {
    const MORE: usize = 100 << 10;
    common::for_each(transport.configs(), |config| {
        let log = EventLog::new();
        let received = Arc::new(AtomicUsize::new(0));
        let (l, r) = (log.clone(), Arc::clone(&received));
        let bootstrap = config.server().child_handler(move || {
            Pipeline::bytes(AnswersThenShutsOutput {
                shut: false,
                received: Arc::clone(&r),
                log: l.clone(),
            })
        });
        let server = transport.bind(bootstrap);
        let mut client = Client::connect(&server);
        client.write_all(b"req").expect("send the request");
        let (reply, end) = client.read_until_closed();
        assert!(end.is_ok(), "{config}: the stream ended with {end:?}");
        assert_eq!(
            reply, b"response",
            "{config}: the response before end of stream"
        );
        // The server's output is shut; its input is not.
        client
            .write_all(&pattern(13, MORE))
            .expect("send after the server's shutdown");
        common::wait_until(
            Duration::from_secs(5),
            "the server to read everything",
            || received.load(Ordering::SeqCst) == 3 + MORE,
        );
        assert_eq!(
            server.connections(),
            1,
            "{config}: the half-closed channel stays open"
        );
        assert_eq!(
            log.snapshot(),
            vec!["shutdown_output"],
            "{config}: handler events"
        );
        // Now both directions are shut: the channel closes.
        client
            .shutdown(Shutdown::Write)
            .expect("shut down the write side");
        log.wait_for(Duration::from_secs(5), "inactive");
        assert_eq!(
            log.snapshot(),
            vec!["shutdown_output", "inactive"],
            "{config}: handler events"
        );
    });
}

const FIREHOSE_LIMIT: usize = 64 << 20;
const FIREHOSE_CHUNK: usize = 16 << 10;

/// Streams bytes `i % 251` while the channel is writable, up to a bound.
struct Firehose {
    sent: usize,
    source: Arc<Vec<u8>>,
    log: EventLog,
}

impl Firehose {
    fn new(log: EventLog) -> Firehose {
        let source = (0..FIREHOSE_CHUNK + 251).map(|i| (i % 251) as u8).collect();
        Firehose {
            sent: 0,
            source: Arc::new(source),
            log,
        }
    }

    fn pump(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        while self.sent < FIREHOSE_LIMIT && ctx.is_writable() {
            let start = self.sent % 251;
            let buf = buf_of(ctx.allocator(), &self.source[start..start + FIREHOSE_CHUNK]);
            ctx.write(buf);
            self.sent += FIREHOSE_CHUNK;
        }
        ctx.flush();
    }
}

impl Handler for Firehose {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        self.pump(ctx);
    }

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {}

    fn on_writability_changed(&mut self, ctx: &mut Context<'_, ByteBuf>, writable: bool) {
        if writable {
            self.pump(ctx);
        }
    }

    fn on_error(&mut self, ctx: &mut Context<'_, ByteBuf>, error: &ChannelError) {
        record_error(&self.log, error);
        ctx.close();
    }

    fn on_inactive(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        self.log.push("inactive");
    }
}

/// Checks that `data` is the firehose stream from offset 0.
fn assert_firehose_bytes(config: Config, data: &[u8]) {
    if let Some(at) = (0..data.len()).find(|&i| data[i] != (i % 251) as u8) {
        panic!("{config}: wrong byte at offset {at} of the stream");
    }
}

#[test]
fn a_reset_by_the_peer_mid_stream_is_an_io_error_then_inactive() {
    a_reset_by_the_peer_mid_stream_is_an_io_error_then_inactive_over(Transport::Tcp);
}

#[test]
fn a_reset_by_the_peer_mid_stream_is_an_io_error_then_inactive_over_unix() {
    a_reset_by_the_peer_mid_stream_is_an_io_error_then_inactive_over(Transport::Unix);
}

fn a_reset_by_the_peer_mid_stream_is_an_io_error_then_inactive_over(transport: Transport) {
    common::for_each(transport.configs(), |config| {
        let logs: Arc<std::sync::Mutex<Vec<EventLog>>> = Arc::default();
        let l = Arc::clone(&logs);
        let bootstrap = config.server().child_handler(move || {
            let log = EventLog::new();
            l.lock().unwrap().push(log.clone());
            Pipeline::bytes(Firehose::new(log))
        });
        let server = transport.bind(bootstrap);
        let mut client = Client::connect(&server);
        let head = client.read_exact_n(256 << 10);
        assert_firehose_bytes(config, &head);
        // The server is blocked on a full socket; a linger of zero makes
        // the close a reset.
        if let Client::Tcp(tcp) = &client {
            socket2::SockRef::from(tcp)
                .set_linger(Some(Duration::ZERO))
                .expect("SO_LINGER");
        }
        drop(client);
        let first = logs.lock().unwrap()[0].clone();
        first.wait_for(Duration::from_secs(5), "inactive");
        let events = first.snapshot();
        assert!(
            events.len() == 2 && events[0].starts_with("error:io:") && events[1] == "inactive",
            "{config}: expected an I/O error, then inactive; got {events:?}"
        );
        common::wait_until(
            Duration::from_secs(5),
            "the connection count to drop",
            || server.connections() == 0,
        );
        // The server goes on serving.
        let mut again = Client::connect(&server);
        let head = again.read_exact_n(256 << 10);
        assert_firehose_bytes(config, &head);
        drop(again);
        common::wait_until(
            Duration::from_secs(5),
            "the second connection to close",
            || server.connections() == 0,
        );
        assert_eq!(logs.lock().unwrap().len(), 2, "{config}: connections made");
    });
}

/// Writes 1 MiB in 16 writes as soon as the channel is active, then closes.
struct WritesThenCloses {
    log: EventLog,
}

const BURST: usize = 1 << 20;

impl Handler for WritesThenCloses {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        let data = pattern(14, BURST);
        for chunk in data.chunks(BURST / 16) {
            let buf = buf_of(ctx.allocator(), chunk);
            ctx.write(buf);
        }
        ctx.close();
    }

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {}

    fn on_error(&mut self, ctx: &mut Context<'_, ByteBuf>, error: &ChannelError) {
        record_error(&self.log, error);
        ctx.close();
    }

    fn on_inactive(&mut self, _ctx: &mut Context<'_, ByteBuf>) {
        self.log.push("inactive");
    }
}

#[test]
fn a_server_close_sends_what_was_written_first() {
    a_server_close_sends_what_was_written_first_over(Transport::Tcp);
}

#[test]
fn a_server_close_sends_what_was_written_first_over_unix() {
    a_server_close_sends_what_was_written_first_over(Transport::Unix);
}

fn a_server_close_sends_what_was_written_first_over(transport: Transport) {
    common::for_each(transport.configs(), |config| {
        let log = EventLog::new();
        let l = log.clone();
        let bootstrap = config
            .server()
            .child_handler(move || Pipeline::bytes(WritesThenCloses { log: l.clone() }));
        let server = transport.bind(bootstrap);
        let mut client = Client::connect(&server);
        // A slow client: the server's queue cannot drain before it closes.
        std::thread::sleep(Duration::from_millis(50));
        let (data, end) = client.read_until_closed();
        assert!(
            end.is_ok(),
            "{config}: the stream ended with {end:?} after {} bytes",
            data.len()
        );
        assert_eq!(data.len(), BURST, "{config}: bytes before end of stream");
        assert!(data == pattern(14, BURST), "{config}: the bytes differ");
        log.wait_for(Duration::from_secs(5), "inactive");
        assert_eq!(log.snapshot(), vec!["inactive"], "{config}: handler events");
    });
}

/// Says a word and closes as soon as the channel is active.
struct SaysByeAndCloses;

impl Handler for SaysByeAndCloses {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        let buf = buf_of(ctx.allocator(), b"bye");
        ctx.write_and_flush(buf);
        ctx.close();
    }

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {}
}

#[test]
fn linger_zero_on_the_server_makes_its_close_a_reset() {
    common::for_each(Config::all(), |config| {
        let server = config
            .server()
            .option(SocketOption::Linger(Some(Duration::ZERO)))
            .child_handler(|| Pipeline::bytes(SaysByeAndCloses))
            .bind("127.0.0.1:0")
            .expect("bind");
        let mut client = connect(server.local_addr());
        let (data, end) = read_until_closed(&mut client);
        assert!(
            b"bye".starts_with(&data),
            "{config}: unexpected bytes before the reset: {data:?}"
        );
        match end {
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("{config}: expected a reset, the stream ended with {other:?}"),
        }
    });
}
