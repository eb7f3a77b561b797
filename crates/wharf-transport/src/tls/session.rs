//! One channel's TLS: the handshake, then the record layer, between the
//! socket and the pipeline.
//!
//! Input: the channel reads the socket into the session's input buffer;
//! the session processes the records there in place and hands the
//! plaintext on as a view of the same pooled memory (a partial record at
//! the end stays behind for the next read). Output: the channel's queue
//! gives up flushed plaintext, which is copied (or read from a file) into
//! records of a pooled output buffer and sealed there; the output buffer
//! goes to the socket, and the plaintext it carries stays counted against
//! the water marks until it has.
//!
//! Memory per connection is bounded: the input buffer holds at most one
//! partial record beyond a read, the output one batch of records.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::time::Duration;

use wharf_buf::{Allocator, ByteBuf};

use crate::channel::outbound::OutboundBuffer;
use crate::channel::socket::Socket;
use crate::file_region::TransferCx;
use crate::sys::net::send_vectored;
use crate::tls::config::{TlsClient, TlsServer};
use crate::tls::error::TlsError;
use crate::tls::handshake::{Handshake, Progress};
use crate::tls::info::TlsInfo;
use crate::tls::records::{self, MAX_RECORD};
use crate::tls::sni::{Hello, client_hello};
use crate::tls::traffic::Traffic;

/// Most ciphertext one batch of sealed records takes: four full records.
const BATCH: usize = 64 << 10;
/// Most handshake input held before rustls consumes it: its largest
/// handshake message (64 KiB) plus a record.
const MAX_HANDSHAKE_INPUT: usize = (64 << 10) + MAX_RECORD;

/// TLS settings a new channel starts its session from.
#[derive(Debug, Clone)]
pub(crate) enum TlsSetup {
    /// The channel is a server's.
    Server(TlsServer),
    /// The channel is a client's.
    Client(TlsClient),
}

impl TlsSetup {
    /// How long the handshake may take.
    pub(crate) fn handshake_timeout(&self) -> Duration {
        match self {
            TlsSetup::Server(s) => s.handshake_timeout,
            TlsSetup::Client(c) => c.handshake_timeout,
        }
    }
}

enum Stage {
    Handshaking(Box<Handshake>),
    Open(Box<Traffic>),
    /// Failed or closed: nothing more is processed.
    Done,
}

/// Ciphertext waiting for the socket.
#[derive(Debug)]
struct Sealed {
    buf: ByteBuf,
    /// Weight of the plaintext it carries, released once it is sent.
    held: usize,
}

/// What processing the input produced.
#[derive(Debug, Default)]
pub(crate) struct Received {
    /// Plaintext for the pipeline.
    pub plaintext: Option<ByteBuf>,
    /// The handshake finished with this read.
    pub established: Option<TlsInfo>,
    /// The peer sent `close_notify`: its input is over.
    pub peer_closed: bool,
    /// Bytes this read queued for the socket (the answer to a key update
    /// request), which the channel counts as pending output: a peer that
    /// asks for answers and never reads them meets the water marks and
    /// backpressure like any other.
    pub queued: usize,
}

/// What one sealing step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sealing {
    /// Records were sealed (plaintext bytes).
    Sealed(usize),
    /// Nothing to seal.
    Idle,
    /// The next plaintext is a file chunk still being read.
    FilePending,
}

/// One channel's TLS state.
pub(crate) struct TlsSession {
    stage: Stage,
    input: ByteBuf,
    output: VecDeque<Sealed>,
    /// Handshake bytes rustls encoded, not yet queued.
    handshake_out: ByteBuf,
    close_notify_sent: bool,
    timeout: Duration,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stage = match &self.stage {
            Stage::Handshaking(_) => "handshaking",
            Stage::Open(_) => "open",
            Stage::Done => "done",
        };
        f.debug_struct("TlsSession")
            .field("stage", &stage)
            .field("input", &self.input.len())
            .field("output", &self.output.len())
            .finish_non_exhaustive()
    }
}

impl TlsSession {
    /// A session about to handshake.
    pub(crate) fn new(setup: &TlsSetup) -> Result<TlsSession, TlsError> {
        let handshake = match setup {
            TlsSetup::Server(s) => Handshake::server(s)?,
            TlsSetup::Client(c) => Handshake::client(c)?,
        };
        Ok(TlsSession {
            stage: Stage::Handshaking(Box::new(handshake)),
            input: ByteBuf::new(),
            output: VecDeque::new(),
            handshake_out: ByteBuf::new(),
            close_notify_sent: false,
            timeout: setup.handshake_timeout(),
        })
    }

    /// How long the handshake may take.
    pub(crate) fn handshake_timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the handshake is still going on.
    pub(crate) fn is_handshaking(&self) -> bool {
        matches!(self.stage, Stage::Handshaking(_))
    }

    /// Whether application data can be sealed.
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.stage, Stage::Open(_))
    }

    /// A client starts the handshake: its ClientHello goes out.
    pub(crate) fn start(&mut self, allocator: Allocator) -> Result<(), TlsError> {
        if let Stage::Handshaking(handshake) = &mut self.stage
            && !handshake.is_server()
        {
            handshake.advance(&mut self.input, &mut self.handshake_out, allocator)?;
            self.queue_handshake_output();
        }
        Ok(())
    }

    /// The buffer the next read fills: room for at least `want` bytes and
    /// for the rest of a record already begun.
    pub(crate) fn read_buffer(
        &mut self,
        want: usize,
        allocator: Allocator,
    ) -> io::Result<&mut ByteBuf> {
        let have = self.input.len();
        let record = records::record_len(&self.input).ok().flatten().unwrap_or(0);
        let room = want.max(record.saturating_sub(have)).max(1);
        if self.input.capacity() == 0 {
            self.input = allocator.try_buffer(room)?;
        } else {
            self.input.try_reserve(room)?;
        }
        Ok(&mut self.input)
    }

    /// Processes what the last read put in the input buffer.
    pub(crate) fn receive(&mut self, allocator: Allocator) -> Result<Received, TlsError> {
        let mut received = Received::default();
        if let Stage::Handshaking(handshake) = &mut self.stage {
            if handshake.is_server() && !handshake.hello_read {
                if self.input.first().is_some_and(u8::is_ascii_alphabetic) {
                    return Err(self.fail(TlsError::PlainText));
                }
                // rustls sees the ClientHello once it is whole (see
                // `sni.rs`); its handshake timeout bounds the wait.
                match client_hello(&self.input) {
                    Hello::Partial if self.input.len() <= MAX_HANDSHAKE_INPUT => {
                        return Ok(received);
                    }
                    Hello::Whole(name) => handshake.server_name = name,
                    Hello::Partial | Hello::Other => {}
                }
                handshake.hello_read = true;
            }
            let progress = handshake.advance(&mut self.input, &mut self.handshake_out, allocator);
            self.queue_handshake_output();
            match progress {
                Err(e) => return Err(self.fail(e)),
                Ok(Progress::NeedInput) => {
                    if self.input.len() > MAX_HANDSHAKE_INPUT {
                        return Err(self.fail(TlsError::protocol("a handshake message too large")));
                    }
                    return Ok(received);
                }
                Ok(Progress::Done) => {}
            }
            let Stage::Handshaking(handshake) = std::mem::replace(&mut self.stage, Stage::Done)
            else {
                unreachable!("checked above");
            };
            let mut handshake = *handshake;
            received.plaintext = handshake.early_plaintext.take();
            received.peer_closed = handshake.peer_closed;
            let established = handshake.establish().map_err(|e| self.fail(e))?;
            received.established = Some(established.info.clone());
            self.stage = Stage::Open(Box::new(Traffic::new(established)?));
            if received.peer_closed {
                return Ok(received);
            }
        }
        let Stage::Open(traffic) = &mut self.stage else {
            return Ok(received);
        };
        let opened = traffic.open(&mut self.input, allocator);
        let opened = match opened {
            Ok(opened) => opened,
            Err(e) => return Err(self.fail(e)),
        };
        if let Some(reply) = opened.reply {
            received.queued = reply.len();
            self.output.push_back(Sealed {
                buf: reply,
                held: received.queued,
            });
        }
        received.peer_closed |= opened.peer_closed;
        received.plaintext = match (received.plaintext, opened.plaintext) {
            (Some(mut early), Some(more)) => {
                early.extend_from_slice(&more);
                Some(early)
            }
            (early, more) => early.or(more),
        };
        if self.input.is_empty() {
            // No partial record: an idle connection holds no buffer.
            self.input = ByteBuf::new();
        }
        Ok(received)
    }

    /// Seals flushed plaintext of `out` into one batch of records, if no
    /// ciphertext is waiting for the socket.
    pub(crate) fn seal_from(
        &mut self,
        out: &mut OutboundBuffer,
        cx: &mut TransferCx<'_>,
        allocator: Allocator,
    ) -> io::Result<Sealing> {
        if !self.output.is_empty() || !out.has_flushed() {
            return Ok(Sealing::Idle);
        }
        let Stage::Open(traffic) = &mut self.stage else {
            return Ok(Sealing::Idle);
        };
        let estimate = out.weight().min(BATCH);
        let mut buf = allocator.try_buffer(traffic.batch_capacity(estimate, BATCH))?;
        let sealed = traffic.seal_batch(&mut buf, out, cx);
        let (taken, pending) = match sealed {
            Ok(x) => x,
            Err(SealError::Io(e)) => return Err(e),
            Err(SealError::Tls(e)) => {
                let e = self.fail(e);
                return Err(io::Error::other(e));
            }
        };
        let bytes = taken.bytes;
        if !buf.is_empty() || taken.released > 0 {
            // (An empty batch still carries the weight of empty entries
            // that left the queue; writing it releases them.)
            self.output.push_back(Sealed {
                buf,
                held: taken.released,
            });
        }
        Ok(if bytes > 0 || taken.released > 0 {
            Sealing::Sealed(bytes)
        } else if pending {
            Sealing::FilePending
        } else {
            Sealing::Idle
        })
    }

    /// Whether ciphertext waits for the socket.
    pub(crate) fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// Writes waiting ciphertext: returns bytes written and the plaintext
    /// weight now sent, or `None` if the socket would block.
    pub(crate) fn write_to(&mut self, socket: &Socket) -> io::Result<Option<(usize, usize)>> {
        let mut slices = [IoSlice::new(&[]); 8];
        let mut count = 0;
        for sealed in self.output.iter().take(slices.len()) {
            slices[count] = IoSlice::new(&sealed.buf);
            count += 1;
        }
        if count == 0 {
            return Ok(Some((0, 0)));
        }
        let mut n = match send_vectored(socket, &slices[..count], false) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        };
        let written = n;
        let mut released = 0;
        while let Some(front) = self.output.front_mut() {
            if n < front.buf.len() {
                front.buf.skip(n);
                break;
            }
            n -= front.buf.len();
            released += front.held;
            self.output.pop_front();
        }
        Ok(Some((written, released)))
    }

    /// Queues `close_notify` (once, on an open session): the peer learns
    /// that the stream ended here, not by truncation.
    pub(crate) fn close_notify(&mut self, allocator: Allocator) {
        if self.close_notify_sent {
            return;
        }
        self.close_notify_sent = true;
        if let Stage::Open(traffic) = &mut self.stage
            && let Ok(record) = traffic.alert(1, 0, allocator)
        {
            self.output.push_back(Sealed {
                buf: record,
                held: 0,
            });
        }
    }

    /// Whether `close_notify` went into the output.
    pub(crate) fn close_notify_queued(&self) -> bool {
        self.close_notify_sent
    }

    /// Drops waiting ciphertext (the channel closes without sending it);
    /// returns the plaintext weight it held.
    pub(crate) fn discard_output(&mut self) -> (usize, usize) {
        let bytes = self.output.iter().map(|s| s.buf.len()).sum();
        let held = self.output.drain(..).map(|s| s.held).sum();
        (bytes, held)
    }

    /// Moves what rustls encoded to the output.
    fn queue_handshake_output(&mut self) {
        if !self.handshake_out.is_empty() {
            let buf = self.handshake_out.split();
            self.output.push_back(Sealed { buf, held: 0 });
        }
    }

    /// The session failed: an alert for the peer (if the error has one
    /// and keys to send it with) goes at the end of the output, after the
    /// records already sealed; nothing more is processed.
    fn fail(&mut self, error: TlsError) -> TlsError {
        if let (Some(code), Stage::Open(traffic)) = (error.alert(), &mut self.stage)
            && let Ok(record) = traffic.alert(2, code, Allocator::default())
        {
            self.output.push_back(Sealed {
                buf: record,
                held: 0,
            });
        }
        self.stage = Stage::Done;
        self.close_notify_sent = true;
        error
    }
}

/// Why sealing failed.
#[derive(Debug)]
pub(crate) enum SealError {
    /// Reading a file region failed.
    Io(io::Error),
    /// The record layer failed (sequence numbers ran out).
    Tls(TlsError),
}
