//! Receiving input into a file around the pipeline (`Context::receive_file`,
//! `Context::skip_input`, `Codec::input_claimed`), in every mode × trigger
//! × allocator, over real loopback sockets and over TLS.
//!
//! The server speaks a tiny protocol: a 10-byte header (a target byte, an
//! options byte, a big-endian `u64` length), then that many bytes. A text
//! header's bytes are decoded by the codec; any other header's bytes are
//! claimed by the codec ([`Codec::input_claimed`]) for the handler, which
//! stores them in a new file, skips them, or does something deliberately
//! wrong with them, and answers each header with one line once
//! `UserEvent::Received` says how it ended:
//!
//! - `OK <bytes> <id>`: all in; `id` names the file the test then checks
//!   byte for byte (`-` for skipped bytes);
//! - `ERR <kind> <errno> <bytes>`: what stopped the receive (the handler
//!   then closes, except after a refused second receive);
//! - `T <text>`: a text message; `GO`: a receive was started (asked for).
//!
//! The bytes are checked in the file, not echoed: sizes around the
//! splice threshold (16 KiB), 1 MiB + 3 and 64 MiB, spliced and copied,
//! with the header glued to the first body bytes and the body in uneven
//! writes, at an offset into a file that has content and past 4 GiB; into
//! a file the kernel cannot splice into (`/proc/self/mem`: `EINVAL`, then
//! copied). Pipelined uploads are answered in order, also when the client
//! ends its output right behind them; a second receive is refused while
//! the first is under way, also when the first took only bytes already
//! held; a FIN or a reset in the middle of a body is reported (the reset
//! before `on_inactive`, also for a receive a worker starts as the channel
//! closes); a file that cannot be written ends the receive, not the
//! server; a claim nobody takes stops the channel reading; the splice path
//! writes the file without `write`s (the loop threads' `wchar` in
//! `/proc/self/task/*/io` stays small).

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::concurrent::{Gate, OpenOnDrop};
use common::stream::PatternStream;
use common::tls::{self, Pki, TlsStream};
use common::{Config, EventLog, Rng};
use wharf::buf::ByteBuf;
use wharf::transport::{FileReceive, Received};
use wharf::{
    ChannelError, ChannelHandle, Codec, CodecError, Context, Encoded, Handler, Pipeline,
    ReactorMode, Server, ServerBootstrap, UserEvent,
};

const WAIT: Duration = Duration::from_secs(20);

/// Target byte, options byte, `u64` length.
const HEADER: usize = 10;
/// The longest text message.
const MAX_TEXT: u64 = 1024;

// Header targets.
/// Into a new (empty) file from offset 0.
const FILE: u8 = b'F';
/// Into a file holding `PREFILLED` bytes, at `OFFSET`.
const AT_OFFSET: u8 = b'O';
/// Thrown away with `skip_input`.
const SKIP: u8 = b'S';
/// Into a new file, and a second receive started right after the first.
const TWICE: u8 = b'D';
/// Into `/dev/full`.
const DEV_FULL: u8 = b'Z';
/// Into a file opened read-only.
const READ_ONLY: u8 = b'R';
/// No receive until the test fires a user event at the channel.
const LATER: u8 = b'W';
/// Into a new file, past 4 GiB (`BIG_OFFSET`): a sparse file.
const BEYOND_4G: u8 = b'B';
/// Into this process's memory through `/proc/self/mem` (at the address
/// the test put in `Shared::memory`): a file the kernel cannot splice
/// into (`EINVAL`), but can `pwrite`.
const MEMORY: u8 = b'M';
/// Into a new file, once the test opens `Shared::gate`.
const GATED: u8 = b'G';
/// A text message: the codec decodes its bytes itself.
const TEXT: u8 = b'T';

// Header options.
/// Copy (`FileReceive::splice(false)`).
const COPY: u8 = 1;
/// Answer `GO` once the receive is started.
const ACK: u8 = 2;

/// What the prefilled file holds before an `AT_OFFSET` receive.
const PREFILLED: usize = 4096;
/// Where an `AT_OFFSET` receive writes.
const OFFSET: u64 = 1000;
/// Where a `BEYOND_4G` receive writes.
const BIG_OFFSET: u64 = (5 << 30) + 3;

fn header(target: u8, options: u8, len: u64) -> Vec<u8> {
    let mut h = vec![target, options];
    h.extend_from_slice(&len.to_be_bytes());
    h
}

fn text(s: &str) -> Vec<u8> {
    [header(TEXT, 0, s.len() as u64), s.as_bytes().to_vec()].concat()
}

/// What the codec decodes.
#[derive(Debug)]
enum Msg {
    Text(String),
    Body { target: u8, options: u8, len: u64 },
}

/// The test protocol's codec. A body's bytes are claimed from its header
/// until `input_taken` says they are gone; nothing after a header is
/// decoded in the same call, so even an empty body's end is heard before
/// what follows it.
struct Claiming {
    claimed: u64,
    log: EventLog,
}

impl Codec for Claiming {
    type In = Msg;
    type Out = String;

    fn decode(&mut self, input: &mut ByteBuf, out: &mut Vec<Msg>) -> Result<(), CodecError> {
        if self.claimed > 0 {
            return Ok(());
        }
        while input.len() >= HEADER {
            let (target, options) = (input[0], input[1]);
            let len = u64::from_be_bytes(<[u8; 8]>::try_from(&input[2..HEADER]).expect("8 bytes"));
            if target == TEXT {
                if len > MAX_TEXT {
                    return Err(CodecError::TooLong {
                        limit: MAX_TEXT as usize,
                        length: len as usize,
                    });
                }
                if input.len() < HEADER + len as usize {
                    break;
                }
                input.skip(HEADER);
                let body = input.split_to(len as usize);
                out.push(Msg::Text(String::from_utf8_lossy(&body).into_owned()));
                continue;
            }
            input.skip(HEADER);
            self.claimed = len;
            out.push(Msg::Body {
                target,
                options,
                len,
            });
            break;
        }
        Ok(())
    }

    fn encode(&mut self, msg: String, out: &mut Encoded) -> Result<(), CodecError> {
        let mut buf = out.buffer(msg.len());
        buf.extend_from_slice(msg.as_bytes());
        out.push(buf);
        Ok(())
    }

    fn input_claimed(&self) -> bool {
        self.claimed > 0
    }

    fn input_taken(&mut self, n: u64) {
        if n > self.claimed {
            self.log
                .push(format!("codec: {n} bytes taken, {} claimed", self.claimed));
        }
        self.claimed = self.claimed.saturating_sub(n);
    }
}

/// What a server's handlers share with the test.
#[derive(Default)]
struct Shared {
    /// Files received in full, by the id their `OK` line names.
    files: Mutex<HashMap<u64, File>>,
    next_id: AtomicU64,
    log: EventLog,
    /// A `LATER` header waiting for the test: the channel and the length.
    later: Mutex<Option<(ChannelHandle<String>, u64)>>,
    /// Where a `MEMORY` receive writes: `/proc/self/mem` and an address.
    memory: Mutex<Option<(File, u64)>>,
    /// What a `GATED` header waits for.
    gate: Gate,
}

impl Shared {
    fn take_file(&self, id: u64) -> File {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
            .unwrap_or_else(|| panic!("no file {id} was received"))
    }
}

/// The directory the handlers' files are made in (each is unlinked at
/// once: it lives as long as its descriptor).
fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("receive_file");
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    })
}

/// A new unlinked file, opened for reading and writing, holding `content`.
fn scratch_file(content: &[u8]) -> File {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = scratch_dir().join(format!("{}-{n}", std::process::id()));
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .expect("scratch file");
    std::fs::remove_file(&path).expect("unlink scratch file");
    file.write_all_at(content, 0).expect("prefill");
    file
}

/// A file that cannot be written: opened read-only.
fn read_only_file() -> File {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = scratch_dir().join(format!("{}-ro-{n}", std::process::id()));
    std::fs::write(&path, b"").expect("create");
    let file = File::open(&path).expect("open read-only");
    std::fs::remove_file(&path).expect("unlink");
    file
}

fn prefilled() -> Vec<u8> {
    common::pattern(4242, PREFILLED)
}

/// Starts a receive per header as the header asks, answers each end.
struct Receiver {
    shared: Arc<Shared>,
}

impl Receiver {
    fn new_file(len: u64, options: u8) -> FileReceive {
        FileReceive::new(scratch_file(b""), 0, len).splice(options & COPY == 0)
    }

    fn answer(&mut self, ctx: &mut Context<'_, String>, received: Received) {
        let Received {
            file,
            bytes,
            result,
        } = received;
        match result {
            Ok(()) => {
                self.shared.log.push(format!("received ok {bytes}"));
                let id = match file {
                    Some(file) => {
                        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
                        self.shared
                            .files
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(id, file);
                        id.to_string()
                    }
                    None => "-".to_string(),
                };
                ctx.write_and_flush(format!("OK {bytes} {id}\n"));
            }
            Err(e) => {
                let errno = e.raw_os_error().map_or("-".to_string(), |n| n.to_string());
                self.shared
                    .log
                    .push(format!("received err {:?} {errno} {bytes}", e.kind()));
                ctx.write_and_flush(format!("ERR {:?} {errno} {bytes}\n", e.kind()));
                if e.kind() != io::ErrorKind::InvalidInput {
                    // The rest of the body is still claimed: nothing after it
                    // can be decoded.
                    ctx.close();
                }
            }
        }
    }
}

impl Handler for Receiver {
    type In = Msg;
    type Out = String;

    fn on_read(&mut self, ctx: &mut Context<'_, String>, msg: Msg) {
        let (target, options, len) = match msg {
            Msg::Text(t) => {
                ctx.write_and_flush(format!("T {t}\n"));
                return;
            }
            Msg::Body {
                target,
                options,
                len,
            } => (target, options, len),
        };
        let splice = options & COPY == 0;
        match target {
            FILE => ctx.receive_file(Receiver::new_file(len, options)),
            AT_OFFSET => ctx.receive_file(
                FileReceive::new(scratch_file(&prefilled()), OFFSET, len).splice(splice),
            ),
            SKIP => ctx.skip_input(len),
            TWICE => {
                ctx.receive_file(Receiver::new_file(len, options));
                ctx.receive_file(Receiver::new_file(len, options));
            }
            DEV_FULL => {
                let full = File::options()
                    .write(true)
                    .open("/dev/full")
                    .expect("open /dev/full");
                ctx.receive_file(FileReceive::new(full, 0, len).splice(splice));
            }
            READ_ONLY => {
                ctx.receive_file(FileReceive::new(read_only_file(), 0, len).splice(splice))
            }
            BEYOND_4G => ctx
                .receive_file(FileReceive::new(scratch_file(b""), BIG_OFFSET, len).splice(splice)),
            MEMORY => {
                let memory = self
                    .shared
                    .memory
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                let (mem, address) = memory.expect("a memory target");
                ctx.receive_file(FileReceive::new(mem, address, len).splice(splice));
            }
            GATED => {
                self.shared.log.push("gated");
                self.shared.gate.wait(WAIT);
                ctx.receive_file(Receiver::new_file(len, options));
            }
            LATER => {
                *self.shared.later.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((ctx.handle(), len));
            }
            other => panic!("unknown target {other}"),
        }
        self.shared
            .log
            .push(format!("started {} {len}", char::from(target)));
        if options & ACK != 0 {
            ctx.write_and_flush("GO\n".to_string());
        }
    }

    fn on_user_event(&mut self, ctx: &mut Context<'_, String>, event: UserEvent) {
        match event {
            UserEvent::Received(received) => self.answer(ctx, received),
            UserEvent::Custom(_) => {
                let later = self
                    .shared
                    .later
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                let (_, len) = later.expect("a LATER header waiting");
                ctx.receive_file(Receiver::new_file(len, 0));
            }
            _ => {}
        }
    }

    fn on_error(&mut self, ctx: &mut Context<'_, String>, error: &ChannelError) {
        self.shared.log.push(format!("error {error}"));
        ctx.close();
    }

    fn on_inactive(&mut self, _ctx: &mut Context<'_, String>) {
        self.shared.log.push("inactive");
    }
}

/// How the test connects.
#[derive(Clone)]
enum Transport {
    Plain,
    Tls(Arc<Pki>),
}

const TLS_NAME: &str = "receive.test";

/// Certificates for one test (`tag` tells the tests' directories apart;
/// they are removed when the last `Transport` holding them goes).
fn tls_pki(tag: &str) -> Arc<Pki> {
    Arc::new(Pki::new(&format!("receive-file-{tag}"), &[TLS_NAME]))
}

impl Transport {
    fn name(&self) -> &'static str {
        match self {
            Transport::Plain => "tcp",
            Transport::Tls(_) => "tls",
        }
    }

    fn bootstrap(&self, config: Config) -> ServerBootstrap {
        match self {
            Transport::Plain => config.server(),
            Transport::Tls(pki) => config.server().tls(pki.server(TLS_NAME)),
        }
    }

    fn connect(&self, addr: SocketAddr) -> Peer {
        match self {
            Transport::Plain => {
                let stream = common::connect(addr);
                stream.set_nodelay(true).expect("nodelay");
                Peer::new(Stream::Plain(stream))
            }
            Transport::Tls(pki) => {
                let stream = tls::connect(addr, pki.rustls_client(), TLS_NAME).expect("TLS");
                stream.sock.set_nodelay(true).expect("nodelay");
                Peer::new(Stream::Tls(Box::new(stream)))
            }
        }
    }
}

/// A server of the test protocol, and what its handlers share.
fn serve(config: Config, transport: &Transport) -> (Server, Arc<Shared>) {
    serve_with(transport.bootstrap(config))
}

fn serve_with(bootstrap: ServerBootstrap) -> (Server, Arc<Shared>) {
    let shared = Arc::new(Shared::default());
    let s = Arc::clone(&shared);
    let server = bootstrap
        .child_handler(move || {
            Pipeline::new(
                Claiming {
                    claimed: 0,
                    log: s.log.clone(),
                },
                Receiver {
                    shared: Arc::clone(&s),
                },
            )
        })
        .bind("127.0.0.1:0")
        .expect("bind");
    (server, shared)
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

/// A blocking client that does not go through wharf, reading the
/// server's answers line by line.
struct Peer {
    stream: Stream,
    input: Vec<u8>,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl Peer {
    fn new(stream: Stream) -> Peer {
        Peer {
            stream,
            input: Vec::new(),
        }
    }

    fn tcp(&self) -> &TcpStream {
        match &self.stream {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    fn send(&mut self, data: &[u8]) {
        self.stream.write_all(data).expect("write to the server");
        self.stream.flush().expect("flush");
    }

    /// Sends a header and a body: the header glued to the first `glue`
    /// body bytes in one write, the rest in writes of random sizes up to
    /// `max_write` bytes.
    fn upload(&mut self, head: &[u8], body: &PatternStream, glue: usize, max_write: usize) {
        let mut writer = Uneven {
            peer: self,
            pending: head.to_vec(),
            glue,
            rng: Rng::new(body.len ^ glue as u64),
            max_write,
        };
        body.write_to(&mut writer).expect("send the body");
        writer.finish();
    }

    /// The next line the server sent (without its `\n`).
    fn line(&mut self) -> String {
        self.try_line().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The next line, or why there is none (closed, timed out).
    fn try_line(&mut self) -> Result<String, String> {
        loop {
            if let Some(at) = self.input.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.input.drain(..=at).collect();
                return Ok(String::from_utf8_lossy(&line[..at]).into_owned());
            }
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    return Err(format!(
                        "the server closed before a whole line; got {:?}",
                        String::from_utf8_lossy(&self.input)
                    ));
                }
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(format!(
                        "no line from the server ({e}); got {:?}",
                        String::from_utf8_lossy(&self.input)
                    ));
                }
            }
        }
    }

    /// Reads until the server closes: what else it sent, and how the
    /// stream ended (an orderly end or a reset; a timeout fails).
    fn until_closed(&mut self) -> String {
        let (data, end) = common::read_until_closed(&mut self.stream);
        if let Err(e) = &end {
            assert!(
                !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ),
                "the server did not close: {e}"
            );
        }
        let mut rest = std::mem::take(&mut self.input);
        rest.extend_from_slice(&data);
        String::from_utf8_lossy(&rest).into_owned()
    }

    /// Ends our output (after `close_notify` over TLS).
    fn finish_output(&mut self) {
        if let Stream::Tls(s) = &mut self.stream {
            s.conn.send_close_notify();
            s.flush().expect("send close_notify");
        }
        self.tcp().shutdown(Shutdown::Write).expect("half-close");
    }
}

/// The writer of [`Peer::upload`].
struct Uneven<'a> {
    peer: &'a mut Peer,
    pending: Vec<u8>,
    glue: usize,
    rng: Rng,
    max_write: usize,
}

impl Uneven<'_> {
    fn finish(&mut self) {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.peer.send(&pending);
        }
    }
}

impl Write for Uneven<'_> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let len = data.len();
        if self.glue > 0 {
            let n = self.glue.min(data.len());
            self.pending.extend_from_slice(&data[..n]);
            self.glue -= n;
            data = &data[n..];
            if self.glue > 0 {
                return Ok(len);
            }
        }
        self.finish();
        while !data.is_empty() {
            let n = self.rng.range(1, self.max_write).min(data.len());
            self.peer.send(&data[..n]);
            data = &data[n..];
        }
        Ok(len)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Parses `OK <bytes> <id>`: the file's id.
fn ok_line(line: &str, bytes: u64, what: &str) -> Option<u64> {
    let parts: Vec<&str> = line.split(' ').collect();
    assert!(
        parts.len() == 3 && parts[0] == "OK" && parts[1] == bytes.to_string(),
        "{what}: expected OK with {bytes} bytes, got {line:?}"
    );
    parts[2].parse().ok()
}

/// Checks that `file` holds exactly `body`, from offset 0.
fn check_file(file: &File, body: &PatternStream, what: &str) {
    let len = file.metadata().expect("metadata").len();
    assert_eq!(len, body.len, "{what}: file length");
    let mut checker = body.checker();
    feed_file(file, 0, len, &mut checker, what);
}

/// Feeds `len` bytes of `file` from `at` to `checker`.
fn feed_file(file: &File, at: u64, len: u64, checker: &mut common::stream::Checker, what: &str) {
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0;
    while done < len {
        let want = buf.len().min((len - done) as usize);
        let n = file
            .read_at(&mut buf[..want], at + done)
            .expect("read back");
        assert!(n > 0, "{what}: file ends after {done} of {len} bytes");
        if let Err(e) = checker.feed(&buf[..n]) {
            panic!("{what}: {e}");
        }
        done += n as u64;
    }
    if let Err(e) = checker.finish() {
        panic!("{what}: {e}");
    }
}

/// Checks the prefilled file after `body` was written into it at `OFFSET`.
fn check_prefilled(file: &File, body: &PatternStream, what: &str) {
    let before = prefilled();
    let end = OFFSET + body.len;
    let len = file.metadata().expect("metadata").len();
    assert_eq!(len, end.max(PREFILLED as u64), "{what}: file length");
    let mut head = vec![0u8; OFFSET as usize];
    file.read_exact_at(&mut head, 0).expect("read the head");
    assert!(
        head == before[..OFFSET as usize],
        "{what}: the bytes before the offset changed"
    );
    let mut checker = body.checker();
    feed_file(file, OFFSET, body.len, &mut checker, what);
    if end < PREFILLED as u64 {
        let mut tail = vec![0u8; PREFILLED - end as usize];
        file.read_exact_at(&mut tail, end).expect("read the tail");
        assert!(
            tail == before[end as usize..],
            "{what}: the bytes after the body changed"
        );
    }
}

/// Uploads `len` bytes with `target` and `options`, expects `OK` and
/// checks the file.
fn upload_and_check(
    peer: &mut Peer,
    shared: &Shared,
    (target, options): (u8, u8),
    len: u64,
    glue: usize,
    what: &str,
) {
    let body = PatternStream::new(len ^ u64::from(options) << 40, len);
    let max_write = if len > (4 << 20) { 256 << 10 } else { 20_000 };
    peer.upload(&header(target, options, len), &body, glue, max_write);
    let line = peer.line();
    let id = ok_line(&line, len, what).unwrap_or_else(|| panic!("{what}: no file id in {line:?}"));
    let file = shared.take_file(id);
    match target {
        AT_OFFSET => check_prefilled(&file, &body, what),
        BEYOND_4G => {
            let size = file.metadata().expect("metadata").len();
            assert_eq!(size, BIG_OFFSET + len, "{what}: file length");
            feed_file(&file, BIG_OFFSET, len, &mut body.checker(), what);
        }
        _ => check_file(&file, &body, what),
    }
}

const SIZES: [u64; 6] = [0, 1, (16 << 10) - 1, 16 << 10, (1 << 20) + 3, 64 << 20];

/// Every size, spliced and copied, on one connection per configuration:
/// the header alone, or glued to the first body bytes (one, or up to
/// 5000), the body in uneven writes; then at an offset into a file with
/// content. Every file holds exactly what was sent.
fn every_size_arrives_exactly(transport: Transport) {
    common::for_each(Config::all(), |config| {
        let (server, shared) = serve(config, &transport);
        let mut peer = transport.connect(server.local_addr());
        for (i, len) in SIZES.into_iter().enumerate() {
            for options in [0, COPY] {
                let glue = [0, 1, 5000][i % 3];
                let what = format!(
                    "{config} over {}: {len} bytes {} (header glued to {glue})",
                    transport.name(),
                    if options == COPY { "copied" } else { "spliced" }
                );
                upload_and_check(&mut peer, &shared, (FILE, options), len, glue, &what);
            }
        }
        for len in [0, 100, 3096, 5000, 1 << 20] {
            for options in [0, COPY] {
                let what = format!(
                    "{config} over {}: {len} bytes at offset {OFFSET}, options {options}",
                    transport.name()
                );
                upload_and_check(&mut peer, &shared, (AT_OFFSET, options), len, 7, &what);
            }
        }
        for options in [0, COPY] {
            let len = (1 << 20) + 1;
            let what = format!(
                "{config} over {}: {len} bytes at offset {BIG_OFFSET}, options {options}",
                transport.name()
            );
            upload_and_check(&mut peer, &shared, (BEYOND_4G, options), len, 0, &what);
        }
        peer.finish_output();
        assert_eq!(peer.until_closed(), "", "{config}: nothing more");
        common::wait_for_no_connections(&server);
        assert_no_codec_complaint(&shared, config);
    });
}

fn assert_no_codec_complaint(shared: &Shared, config: Config) {
    assert_eq!(
        shared.log.count("codec:"),
        0,
        "{config}: the codec was told of more bytes than it claimed: {:?}",
        shared.log.snapshot()
    );
}

#[test]
fn every_size_arrives_byte_exact_spliced_and_copied() {
    every_size_arrives_exactly(Transport::Plain);
}

/// Over TLS the socket carries ciphertext: the receive must copy the
/// decrypted bytes, whatever `splice` says, and they arrive exactly.
#[test]
fn every_size_arrives_byte_exact_over_tls() {
    every_size_arrives_exactly(Transport::Tls(tls_pki("sizes")));
}

/// One write carries uploads back to back (spliced, copied, skipped,
/// empty, at an offset) with text messages between and after them, then
/// the client ends its output: every answer comes, in order, and then
/// the close.
fn pipelined_uploads_answered_in_order(transport: Transport) {
    let uploads: [(u8, u8, u64); 7] = [
        (FILE, 0, 300 << 10),
        (FILE, COPY, 20 << 10),
        (SKIP, 0, 70_000),
        (FILE, 0, 1),
        (AT_OFFSET, 0, 17 << 10),
        (FILE, 0, 1 << 20),
        (FILE, COPY, 100),
    ];
    common::concurrent::for_each_reporting_all(Config::all(), |config| {
        let (server, shared) = serve(config, &transport);
        let mut peer = transport.connect(server.local_addr());
        let mut batch = Vec::new();
        let mut bodies = Vec::new();
        for (i, &(target, options, len)) in uploads.iter().enumerate() {
            let body = common::pattern(i as u64, len as usize);
            batch.extend_from_slice(&header(target, options, len));
            batch.extend_from_slice(&body);
            batch.extend_from_slice(&text(&format!("after {i}")));
            bodies.push(body);
        }
        batch.extend_from_slice(&text("last"));
        peer.send(&batch);
        peer.finish_output();
        let what = format!("{config} over {}", transport.name());
        let mut next_line = || {
            peer.try_line()
                .unwrap_or_else(|e| panic!("{what}: {e}; log {:?}", shared.log.snapshot()))
        };
        for (i, &(target, _, len)) in uploads.iter().enumerate() {
            let line = next_line();
            let id = ok_line(&line, len, &format!("{what}: upload {i}"));
            if target != SKIP {
                let id = id.unwrap_or_else(|| panic!("{what}: upload {i}: no id in {line:?}"));
                let file = shared.take_file(id);
                let stream = ExactBytes(&bodies[i]);
                stream.check(&file, target, &format!("{what}: upload {i}"));
            }
            assert_eq!(
                next_line(),
                format!("T after {i}"),
                "{what}: after upload {i}"
            );
        }
        assert_eq!(next_line(), "T last", "{what}");
        assert_eq!(peer.until_closed(), "", "{what}: nothing after the answers");
        common::wait_for_no_connections(&server);
        assert_no_codec_complaint(&shared, config);
        assert_eq!(
            shared.log.count("error"),
            0,
            "{what}: {:?}",
            shared.log.snapshot()
        );
    });
}

/// A body given as bytes (for the pipelined batches).
struct ExactBytes<'a>(&'a [u8]);

impl ExactBytes<'_> {
    fn check(&self, file: &File, target: u8, what: &str) {
        let mut content = Vec::new();
        let mut reader = file;
        reader.read_to_end(&mut content).expect("read back");
        let expected = if target == AT_OFFSET {
            let mut e = prefilled();
            let end = OFFSET as usize + self.0.len();
            if e.len() < end {
                e.resize(end, 0);
            }
            e[OFFSET as usize..end].copy_from_slice(self.0);
            e
        } else {
            self.0.to_vec()
        };
        assert_eq!(content.len(), expected.len(), "{what}: file length");
        assert!(content == expected, "{what}: the file's bytes differ");
    }
}

#[test]
fn pipelined_uploads_are_answered_in_order() {
    pipelined_uploads_answered_in_order(Transport::Plain);
}

#[test]
fn pipelined_uploads_are_answered_in_order_over_tls() {
    pipelined_uploads_answered_in_order(Transport::Tls(tls_pki("pipelined")));
}

/// `skip_input` throws a body away and the next message is decoded after
/// it; a second receive started while one is under way ends at once with
/// `InvalidInput`, and the first goes on to the end.
#[test]
fn skip_input_and_a_second_receive_while_one_is_under_way() {
    common::for_each(Config::all(), |config| {
        let (server, shared) = serve(config, &Transport::Plain);
        let mut peer = Transport::Plain.connect(server.local_addr());
        // Skipped, in uneven writes, a text message right behind it.
        let skipped = PatternStream::new(5, (1 << 20) + 7);
        peer.upload(&header(SKIP, 0, skipped.len), &skipped, 3, 30_000);
        peer.send(&text("next"));
        assert_eq!(
            peer.line(),
            format!("OK {} -", skipped.len),
            "{config}: skip"
        );
        assert_eq!(peer.line(), "T next", "{config}: after the skip");
        for options in [0, COPY] {
            // The header alone: the first receive is under way (its body
            // not there yet) when the second is started.
            let len = 1 << 20;
            peer.send(&header(TWICE, options | ACK, len));
            assert_eq!(peer.line(), "GO", "{config}");
            assert_eq!(
                peer.line(),
                "ERR InvalidInput - 0",
                "{config}: the second receive"
            );
            let body = PatternStream::new(6 + u64::from(options), len);
            peer.upload(&[], &body, 0, 50_000);
            let line = peer.line();
            let id =
                ok_line(&line, len, &format!("{config}: the first receive")).expect("a file id");
            check_file(&shared.take_file(id), &body, &format!("{config}: first"));
        }
        peer.send(&text("still here"));
        assert_eq!(peer.line(), "T still here", "{config}");
        drop(peer);
        common::wait_for_no_connections(&server);
        assert_no_codec_complaint(&shared, config);
    });
}

/// A second receive started when the first one took all its bytes from
/// the input already held (so it is over on the loop, but its handler has
/// not heard of its end yet): the second is refused as well, and takes
/// nothing of what follows the first body, which is decoded as usual.
#[test]
fn a_second_receive_is_refused_even_when_the_first_took_only_held_bytes() {
    common::for_each(Config::all(), |config| {
        let (server, shared) = serve(config, &Transport::Plain);
        for options in [0, COPY] {
            let what = format!("{config}, options {options}");
            let mut peer = Transport::Plain.connect(server.local_addr());
            peer.tcp()
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("read timeout");
            let len = 1000;
            let body = PatternStream::new(16, len);
            let mut batch = header(TWICE, options, len);
            body.write_to(&mut batch).expect("the body");
            batch.extend_from_slice(&text("next"));
            peer.send(&batch);
            let mut answers: Vec<String> = (0..2)
                .map(|_| {
                    peer.try_line()
                        .unwrap_or_else(|e| panic!("{what}: {e}; log {:?}", shared.log.snapshot()))
                })
                .collect();
            answers.sort();
            assert_eq!(
                answers[0],
                "ERR InvalidInput - 0",
                "{what}: the second receive; answers {answers:?}, log {:?}",
                shared.log.snapshot()
            );
            let id = ok_line(&answers[1], len, &what).expect("an id");
            check_file(&shared.take_file(id), &body, &what);
            assert_eq!(peer.line(), "T next", "{what}: what followed the body");
            drop(peer);
        }
        common::wait_for_no_connections(&server);
        assert_no_codec_complaint(&shared, config);
    });
}

/// How much of a 1 MiB body the peer sends before it stops.
const SENT_PART: usize = 200 << 10;

/// Sends a `FILE` header and the first `SENT_PART` bytes of a 1 MiB body,
/// and waits until the server has read them all (so the receive is under
/// way: the channel reads past the header only once it is).
fn start_partial_upload(server: &Server, peer: &mut Peer, options: u8) {
    let before = server.stats().bytes_read;
    let body = common::pattern(9, SENT_PART);
    peer.send(&[header(FILE, options, 1 << 20), body].concat());
    common::wait_until(WAIT, "the server to read the partial body", || {
        server.stats().bytes_read - before >= (HEADER + SENT_PART) as u64
    });
}

/// The peer ends its output in the middle of a body (a FIN; over TLS a
/// `close_notify` and a FIN): the receive ends with `UnexpectedEof` after
/// the bytes that came, the handler answers, and the channel closes.
#[test]
fn peer_fin_mid_body_ends_the_receive_with_unexpected_eof() {
    let pki = tls_pki("fin");
    common::for_each_parallel(Config::all(), |config| {
        for transport in [Transport::Plain, Transport::Tls(Arc::clone(&pki))] {
            for options in [0, COPY] {
                let what = format!("{config} over {}, options {options}", transport.name());
                let (server, shared) = serve(config, &transport);
                let mut peer = transport.connect(server.local_addr());
                start_partial_upload(&server, &mut peer, options);
                peer.finish_output();
                assert_eq!(
                    peer.line(),
                    format!("ERR UnexpectedEof - {SENT_PART}"),
                    "{what}: {:?}",
                    shared.log.snapshot()
                );
                assert_eq!(peer.until_closed(), "", "{what}: after the answer");
                shared.log.wait_for(WAIT, "inactive");
                common::wait_for_no_connections(&server);
            }
        }
    });
}

/// Checks that the log shows one end of the receive, an error, before
/// `on_inactive`.
fn assert_receive_failed_before_inactive(log: &[String], what: &str) {
    let received: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, e)| e.starts_with("received"))
        .map(|(i, _)| i)
        .collect();
    let inactive = log.iter().position(|e| e == "inactive").expect("inactive");
    assert_eq!(received.len(), 1, "{what}: one end of the receive: {log:?}");
    assert!(
        log[received[0]].starts_with("received err"),
        "{what}: the receive ended in error: {log:?}"
    );
    assert!(
        received[0] < inactive,
        "{what}: the end came before on_inactive: {log:?}"
    );
}

/// The peer resets the connection in the middle of a body: the handler
/// hears the receive end with an error, before `on_inactive`.
#[test]
fn peer_reset_mid_body_is_reported_before_on_inactive() {
    let pki = tls_pki("reset");
    common::for_each_parallel(Config::all(), |config| {
        for transport in [Transport::Plain, Transport::Tls(Arc::clone(&pki))] {
            for options in [0, COPY] {
                let what = format!("{config} over {}, options {options}", transport.name());
                let (server, shared) = serve(config, &transport);
                let mut peer = transport.connect(server.local_addr());
                start_partial_upload(&server, &mut peer, options);
                socket2::SockRef::from(peer.tcp())
                    .set_linger(Some(Duration::ZERO))
                    .expect("SO_LINGER 0");
                drop(peer);
                shared.log.wait_for(WAIT, "inactive");
                assert_receive_failed_before_inactive(&shared.log.snapshot(), &what);
                common::wait_for_no_connections(&server);
            }
        }
    });
}

/// In the worker modes a handler may start a receive (on its worker) just
/// as the channel closes on its loop: the peer reset the connection while
/// the handler was busy with the header. It has not heard `on_inactive`
/// yet, so it must still hear the receive end (with an error) before it.
#[test]
fn a_receive_started_as_the_channel_closes_still_ends_before_on_inactive() {
    let configs: Vec<Config> = Config::all()
        .into_iter()
        .filter(|c| {
            matches!(
                c.mode,
                ReactorMode::WorkerPool { .. } | ReactorMode::MultiReactor { workers: 1.., .. }
            )
        })
        .collect();
    common::for_each_parallel(configs, |config| {
        let (server, shared) = serve(config, &Transport::Plain);
        let _release = OpenOnDrop(shared.gate.clone());
        let mut peer = Transport::Plain.connect(server.local_addr());
        peer.send(&[header(GATED, 0, 1 << 20), common::pattern(14, 1000)].concat());
        shared.log.wait_for(WAIT, "gated");
        socket2::SockRef::from(peer.tcp())
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER 0");
        drop(peer);
        // The loop closes the channel while the handler waits at the gate.
        common::wait_for_no_connections(&server);
        shared.gate.open();
        shared.log.wait_for(WAIT, "inactive");
        assert_receive_failed_before_inactive(&shared.log.snapshot(), &config.to_string());
    });
}

/// A body that cannot be written: the receive ends with the file's error,
/// the handler answers and closes, and the server goes on serving.
#[test]
fn a_file_that_cannot_be_written_ends_the_receive_not_the_server() {
    // ENOSPC (/dev/full: a splice into it is refused with EINVAL, and the
    // bytes in the pipe are copied, which fails) and EBADF (read-only).
    let cases = [(DEV_FULL, libc::ENOSPC), (READ_ONLY, libc::EBADF)];
    common::for_each_parallel(Config::all(), |config| {
        let (server, shared) = serve(config, &Transport::Plain);
        for (target, errno) in cases {
            for options in [0, COPY] {
                for after_go in [false, true] {
                    let what = format!(
                        "{config}: target {}, options {options}, body {}",
                        char::from(target),
                        if after_go {
                            "after GO"
                        } else {
                            "with the header"
                        }
                    );
                    let mut peer = Transport::Plain.connect(server.local_addr());
                    let len = 40 << 10;
                    let body = common::pattern(11, len);
                    if after_go {
                        // The body comes from the socket (spliced, or
                        // copied) with nothing of it held before.
                        peer.send(&header(target, options | ACK, len as u64));
                        assert_eq!(peer.line(), "GO", "{what}");
                        peer.send(&body);
                    } else {
                        peer.send(&[header(target, options, len as u64), body].concat());
                    }
                    let line = peer.line();
                    let parts: Vec<&str> = line.split(' ').collect();
                    assert!(
                        parts.len() == 4 && parts[0] == "ERR" && parts[2] == errno.to_string(),
                        "{what}: expected ERR with errno {errno}, got {line:?}"
                    );
                    assert_eq!(parts[3], "0", "{what}: bytes written");
                    assert_eq!(peer.until_closed(), "", "{what}: the close after ERR");
                    // The server still serves.
                    let mut next = Transport::Plain.connect(server.local_addr());
                    upload_and_check(&mut next, &shared, (FILE, options), 50_000, 10, &what);
                }
            }
        }
        common::wait_for_no_connections(&server);
    });
}

/// A body the codec claims while the handler starts no receive: the
/// channel stops reading, whatever the peer sends (its writes block once
/// the socket buffers are full), so the input held does not grow; once
/// the receive starts, every byte arrives.
#[test]
fn a_claim_without_a_receive_stops_reading() {
    const BODY: u64 = 32 << 20;
    /// A write that makes no progress for this long: the peer is blocked.
    const STALL: Duration = Duration::from_secs(1);
    /// The channel may have read this much (its first reads) at most.
    const BOUND: u64 = 1 << 20;
    common::for_each_parallel(Config::all(), |config| {
        let (server, shared) = serve(config, &Transport::Plain);
        let mut peer = Transport::Plain.connect(server.local_addr());
        let before = server.stats().bytes_read;
        let body = PatternStream::new(12, BODY);
        let mut all = Vec::new();
        body.write_to(&mut all).expect("the body");
        peer.send(&header(LATER, 0, BODY));
        shared.log.wait_for(WAIT, "started W");
        let tcp = peer.tcp().try_clone().expect("clone");
        tcp.set_write_timeout(Some(STALL)).expect("write timeout");
        let mut sent = 0;
        let mut writer = &tcp;
        loop {
            assert!(
                sent < all.len(),
                "{config}: the whole body was sent, and {} bytes read, while no receive was started",
                server.stats().bytes_read - before
            );
            let end = (sent + (64 << 10)).min(all.len());
            match writer.write(&all[sent..end]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => panic!("{config}: write: {e}"),
            }
        }
        let read = server.stats().bytes_read - before;
        assert!(
            read <= BOUND,
            "{config}: the channel read {read} bytes while the codec claimed the body"
        );
        assert!(
            sent as u64 > read,
            "{config}: the peer sent {sent} bytes, the server read {read}"
        );
        // Now the receive: every byte, the ones held and the ones waiting.
        let (handle, _) = shared
            .later
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .expect("the channel waiting");
        handle.fire_user_event(Box::new(()));
        tcp.set_write_timeout(Some(WAIT)).expect("write timeout");
        writer
            .write_all(&all[sent..])
            .expect("the rest of the body");
        let line = peer.line();
        let id = ok_line(&line, BODY, &format!("{config}")).expect("a file id");
        check_file(&shared.take_file(id), &body, &format!("{config}"));
        drop(tcp);
        drop(peer);
        common::wait_for_no_connections(&server);
    });
}

/// A file the kernel cannot splice into: `/proc/self/mem` (writable with
/// `pwrite`, but without `splice` writes: `EINVAL`). A spliced receive
/// into it copies what its pipe already holds and copies from then on;
/// every byte lands at its address, none twice or elsewhere.
#[test]
fn a_file_that_refuses_splices_is_copied_into_instead() {
    const LEN: usize = (1 << 20) + 5;
    /// Untouched guard bytes around the target.
    const GUARD: usize = 4096;
    common::for_each(Config::all(), |config| {
        let (server, shared) = serve(config, &Transport::Plain);
        for options in [0, COPY] {
            let what = format!("{config}, options {options}");
            let memory: Vec<AtomicU8> = (0..LEN + 2 * GUARD).map(|_| AtomicU8::new(0xA5)).collect();
            let address = memory.as_ptr() as u64 + GUARD as u64;
            let mem = File::options()
                .read(true)
                .write(true)
                .open("/proc/self/mem")
                .expect("open /proc/self/mem");
            *shared.memory.lock().unwrap_or_else(|e| e.into_inner()) = Some((mem, address));
            let mut peer = Transport::Plain.connect(server.local_addr());
            // The header alone: every body byte comes from the socket, so
            // the first splice round meets the refusal.
            peer.send(&header(MEMORY, options | ACK, LEN as u64));
            assert_eq!(peer.line(), "GO", "{what}");
            let body = common::pattern(15, LEN);
            peer.send(&body);
            let line = peer.line();
            let id = ok_line(&line, LEN as u64, &what).expect("an id");
            drop(shared.take_file(id));
            let got: Vec<u8> = memory.iter().map(|b| b.load(Ordering::Acquire)).collect();
            assert!(
                got[..GUARD].iter().all(|&b| b == 0xA5)
                    && got[GUARD + LEN..].iter().all(|&b| b == 0xA5),
                "{what}: bytes written outside the target"
            );
            let at = (0..LEN).find(|&i| got[GUARD + i] != body[i]);
            assert_eq!(at, None, "{what}: the first byte that differs");
            drop(peer);
        }
        common::wait_for_no_connections(&server);
    });
}

/// Bytes written with `write`/`pwrite` by the threads named `prefix…`
/// (`wchar` of `/proc/self/task/*/io`; `splice` does not count there).
fn threads_wchar(prefix: &str) -> u64 {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    let mut total = 0;
    for task in tasks.filter_map(|t| t.ok()) {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !name.starts_with(prefix) {
            continue;
        }
        let io = std::fs::read_to_string(task.path().join("io")).expect("task io");
        total += io
            .lines()
            .find_map(|l| l.strip_prefix("wchar:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .expect("wchar");
    }
    total
}

/// The splice path is taken: a 16 MiB body, its header alone (nothing of
/// it held when the receive starts), reaches its file with the loop
/// threads writing less than 1 MiB with `write`/`pwrite` (the last bytes
/// under the splice threshold are copied). The same body copied, or over
/// TLS (ciphertext on the socket), is written with `pwrite`: at least its
/// length. No counter of the library tells splices into files apart (the
/// relay's `RelayStats` count relays only), so the kernel's per-thread
/// I/O accounting is the witness.
#[test]
fn the_splice_path_writes_the_file_without_copies() {
    const LEN: u64 = 16 << 20;
    let cases = [
        (Transport::Plain, 0, false),
        (Transport::Plain, COPY, true),
        (Transport::Tls(tls_pki("splice")), 0, true),
    ];
    for (i, config) in Config::all().into_iter().enumerate() {
        for (k, (transport, options, copies)) in cases.iter().enumerate() {
            let prefix = format!("rxw{i}x{k}-");
            let (server, shared) = serve_with(
                transport
                    .bootstrap(config)
                    .thread_name(prefix.trim_end_matches('-')),
            );
            let what = format!("{config} over {}, options {options}", transport.name());
            let mut peer = transport.connect(server.local_addr());
            let body = PatternStream::new(13, LEN);
            peer.send(&header(FILE, options | ACK, LEN));
            assert_eq!(peer.line(), "GO", "{what}");
            let before = threads_wchar(&prefix);
            peer.upload(&[], &body, 0, 256 << 10);
            let line = peer.line();
            let written = threads_wchar(&prefix) - before;
            let id = ok_line(&line, LEN, &what).expect("a file id");
            check_file(&shared.take_file(id), &body, &what);
            if *copies {
                assert!(
                    written >= LEN,
                    "{what}: copied, yet the loop wrote only {written} bytes with pwrite"
                );
            } else {
                assert!(
                    written < 1 << 20,
                    "{what}: spliced, yet the loop wrote {written} bytes with write/pwrite"
                );
            }
            drop(peer);
            common::wait_for_no_connections(&server);
        }
    }
}
