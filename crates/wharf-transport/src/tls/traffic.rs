//! An established TLS connection's traffic: records opened from the input
//! buffer in place, plaintext sealed into batches of records, the
//! post-handshake messages (key updates, session tickets), alerts.

use wharf_buf::{Allocator, ByteBuf};

use crate::channel::outbound::{OutboundBuffer, Taken};
use crate::file_region::TransferCx;
use crate::tls::error::TlsError;
use crate::tls::handshake::{Established, Kernel};
use crate::tls::records::{self, ContentType, Format, MAX_PLAINTEXT, RecordCipher};
use crate::tls::session::SealError;

/// Bytes of a whole sealed record in a batch: records are sized so that
/// four fill a 64 KiB buffer exactly.
const RECORD: usize = 16 << 10;
/// Largest post-handshake message kept while its records arrive.
const MAX_HANDSHAKE_MESSAGE: usize = 64 << 10;
/// Records short of the suite's limit at which the sending key changes.
const LIMIT_MARGIN: u64 = 1 << 10;
/// Key updates a peer may send in a row without application data between
/// them (rustls allows 32 requests): each costs a key derivation, and a
/// requested one an answer.
const MAX_KEY_UPDATES: u8 = 32;
/// TLS 1.2 warning alerts (and `user_canceled`) a peer may send in a row
/// without application data between them (rustls allows 4).
const MAX_WARNINGS: u8 = 4;

/// What opening the input's records produced.
#[derive(Debug, Default)]
pub(crate) struct Opened {
    /// The application data, a view of the input buffer.
    pub plaintext: Option<ByteBuf>,
    /// The peer sent `close_notify`.
    pub peer_closed: bool,
    /// A record to send back (the answer to a key update request).
    pub reply: Option<ByteBuf>,
}

/// Both directions' record protection and rustls's key schedule.
#[derive(Debug)]
pub(crate) struct Traffic {
    rx: RecordCipher,
    tx: RecordCipher,
    kernel: Kernel,
    record_limit: u64,
    /// A post-handshake message split over records.
    fragment: Vec<u8>,
    /// Key updates since the peer's last application data.
    key_updates: u8,
    /// Warning alerts since the peer's last application data.
    warnings: u8,
}

impl Traffic {
    pub(crate) fn new(established: Established) -> Result<Traffic, TlsError> {
        let Established {
            secrets,
            kernel,
            format,
            record_limit,
            ..
        } = established;
        let (tx_seq, tx) = secrets.tx;
        let (rx_seq, rx) = secrets.rx;
        Ok(Traffic {
            rx: RecordCipher::new(format, rx, rx_seq)?,
            tx: RecordCipher::new(format, tx, tx_seq)?,
            kernel,
            record_limit,
            fragment: Vec::new(),
            key_updates: 0,
            warnings: 0,
        })
    }

    fn format(&self) -> Format {
        self.tx.format()
    }

    /// Opens every whole record at the front of `input`, in place: the
    /// application data is packed at the front and split off; a partial
    /// record stays in `input`.
    pub(crate) fn open(
        &mut self,
        input: &mut ByteBuf,
        allocator: Allocator,
    ) -> Result<Opened, TlsError> {
        let mut opened = Opened::default();
        let (mut read, mut write) = (0, 0);
        while let Some(len) = records::record_len(&input[read..])? {
            if read + len > input.len() {
                break;
            }
            let record = self.rx.open(&mut input[read..read + len])?;
            let content = read + record.start..read + record.start + record.len;
            match record.kind {
                ContentType::ApplicationData => {
                    input.copy_within(content, write);
                    write += record.len;
                    (self.key_updates, self.warnings) = (0, 0);
                }
                ContentType::Alert => {
                    if self.alert_received(&input[content])? {
                        opened.peer_closed = true;
                        // Nothing after close_notify counts.
                        read = input.len();
                        break;
                    }
                }
                ContentType::Handshake => {
                    let body = &input[content];
                    self.handshake_received(body, &mut opened.reply, allocator)?;
                }
                ContentType::ChangeCipherSpec => {
                    return Err(TlsError::protocol("change_cipher_spec after the handshake"));
                }
            }
            read += len;
        }
        if write > 0 && read == input.len() {
            // No partial record stays behind: the buffer itself is the
            // plaintext, handed over without a shared claim on it (which
            // would cost a heap allocation).
            input.truncate(write);
            opened.plaintext = Some(std::mem::replace(input, ByteBuf::new()));
            return Ok(opened);
        }
        if write > 0 {
            opened.plaintext = Some(input.split_to(write));
        }
        input.skip(read - write);
        Ok(opened)
    }

    /// An alert: `true` for `close_notify`; warnings other than that are
    /// ignored in TLS 1.2 (and `user_canceled` always), a few in a row;
    /// the rest is fatal.
    fn alert_received(&mut self, body: &[u8]) -> Result<bool, TlsError> {
        let [level, code] = body else {
            return Err(TlsError::protocol("a malformed alert"));
        };
        match (*level, *code) {
            (_, 0) => Ok(true),
            (_, 90) => self.warning(),
            (1, _) if self.format() != Format::Tls13 => self.warning(),
            (_, code) => Err(TlsError::Alert(code)),
        }
    }

    /// A warning alert, ignored unless too many came in a row.
    fn warning(&mut self) -> Result<bool, TlsError> {
        self.warnings += 1;
        if self.warnings > MAX_WARNINGS {
            return Err(TlsError::protocol("too many warning alerts in a row"));
        }
        Ok(false)
    }

    /// A post-handshake message (or part of one); the answer to a key
    /// update request goes into `reply`.
    fn handshake_received(
        &mut self,
        body: &[u8],
        reply: &mut Option<ByteBuf>,
        allocator: Allocator,
    ) -> Result<(), TlsError> {
        self.fragment.extend_from_slice(body);
        if self.fragment.len() > MAX_HANDSHAKE_MESSAGE {
            return Err(TlsError::protocol("a post-handshake message too large"));
        }
        while self.fragment.len() >= 4 {
            let f = &self.fragment;
            let len = u32::from_be_bytes([0, f[1], f[2], f[3]]) as usize;
            if f.len() < 4 + len {
                break;
            }
            let message: Vec<u8> = self.fragment.drain(..4 + len).collect();
            self.message(message[0], &message[4..], reply, allocator)?;
        }
        if self.fragment.is_empty() {
            self.fragment = Vec::new();
        }
        Ok(())
    }

    /// One whole post-handshake message. A key update request is answered
    /// once per read, however many the read held: RFC 8446 §4.6.3 lets a
    /// receiver that has not sent since answer several with one update,
    /// and the sending key must move exactly once per `key_update` sent
    /// (it once moved for each request while only the last answer was
    /// kept: `two_key_update_requests_in_one_read_are_answered` in
    /// `tests/tls_protocol.rs`).
    fn message(
        &mut self,
        kind: u8,
        body: &[u8],
        reply: &mut Option<ByteBuf>,
        allocator: Allocator,
    ) -> Result<(), TlsError> {
        let tls13 = self.format() == Format::Tls13;
        match (kind, &mut self.kernel) {
            // key_update: the peer's later records use its next key.
            (24, kernel) if tls13 => {
                let request = match body {
                    [0] => false,
                    [1] => true,
                    _ => return Err(TlsError::protocol("a malformed key_update")),
                };
                self.key_updates += 1;
                if self.key_updates > MAX_KEY_UPDATES {
                    return Err(TlsError::protocol(
                        "too many key updates without application data between them",
                    ));
                }
                let (seq, secrets) = match kernel {
                    Kernel::Server(k) => k.update_rx_secret(),
                    Kernel::Client(k) => k.update_rx_secret(),
                }
                .map_err(TlsError::Handshake)?;
                self.rx = RecordCipher::new(Format::Tls13, secrets, seq)?;
                if request && reply.is_none() {
                    *reply = Some(self.key_update(allocator)?);
                }
                Ok(())
            }
            // new_session_ticket, for the client's resumption cache.
            (4, Kernel::Client(k)) if tls13 => k
                .handle_new_session_ticket(body)
                .map_err(TlsError::Handshake),
            // hello_request (TLS 1.2): renegotiation is not offered; ignored.
            (0, Kernel::Client(_)) if !tls13 => Ok(()),
            _ => Err(TlsError::protocol(
                "a handshake message after the handshake (renegotiation and post-handshake \
                 authentication are not supported)",
            )),
        }
    }

    /// Sends `key_update` (not requesting one back) under the current key
    /// and moves to the next sending key.
    fn key_update(&mut self, allocator: Allocator) -> Result<ByteBuf, TlsError> {
        let record = self.record(ContentType::Handshake, &[24, 0, 0, 1, 0], allocator)?;
        let (seq, secrets) = match &mut self.kernel {
            Kernel::Server(k) => k.update_tx_secret(),
            Kernel::Client(k) => k.update_tx_secret(),
        }
        .map_err(TlsError::Handshake)?;
        self.tx = RecordCipher::new(Format::Tls13, secrets, seq)?;
        Ok(record)
    }

    /// One sealed record of `kind` holding `data`.
    fn record(
        &mut self,
        kind: ContentType,
        data: &[u8],
        allocator: Allocator,
    ) -> Result<ByteBuf, TlsError> {
        let f = self.format();
        let mut buf = allocator
            .try_buffer(f.overhead() + data.len())
            .map_err(|_| TlsError::protocol("no memory for a record"))?;
        let spare = buf.spare_mut();
        spare[f.prefix()..f.prefix() + data.len()].copy_from_slice(data);
        self.tx
            .seal(&mut spare[..f.overhead() + data.len()], kind, data.len())?;
        buf.commit(f.overhead() + data.len());
        Ok(buf)
    }

    /// A sealed alert record.
    pub(crate) fn alert(
        &mut self,
        level: u8,
        code: u8,
        allocator: Allocator,
    ) -> Result<ByteBuf, TlsError> {
        self.record(ContentType::Alert, &[level, code], allocator)
    }

    /// Plaintext bytes of a full record in a batch.
    fn record_plaintext(&self) -> usize {
        (RECORD - self.format().overhead()).min(MAX_PLAINTEXT)
    }

    /// The buffer size for a batch of about `plaintext` bytes, at most
    /// `max`.
    pub(crate) fn batch_capacity(&self, plaintext: usize, max: usize) -> usize {
        let records = plaintext.div_ceil(self.record_plaintext()).max(1);
        (plaintext + records * self.format().overhead()).clamp(64, max)
    }

    /// Fills `buf` with records sealed from the flushed front of `out`;
    /// returns what was taken and whether a file chunk is still being read.
    pub(crate) fn seal_batch(
        &mut self,
        buf: &mut ByteBuf,
        out: &mut OutboundBuffer,
        cx: &mut TransferCx<'_>,
    ) -> Result<(Taken, bool), SealError> {
        let f = self.format();
        let mut total = Taken::default();
        loop {
            if self.tx.seq() >= self.record_limit.saturating_sub(LIMIT_MARGIN) {
                // The sending key protected as much as the suite allows.
                if f != Format::Tls13 {
                    return Err(SealError::Tls(TlsError::protocol(
                        "the cipher suite's record limit was reached (TLS 1.2 has no key update)",
                    )));
                }
                let update = self.key_update(buf.allocator()).map_err(SealError::Tls)?;
                buf.extend_from_slice(&update);
            }
            let room = buf.writable_bytes();
            if room <= f.overhead() {
                break;
            }
            let plain = (room - f.overhead()).min(self.record_plaintext());
            let spare = buf.spare_mut();
            let taken = out
                .take_plaintext(&mut spare[f.prefix()..f.prefix() + plain], cx)
                .map_err(SealError::Io)?;
            total.bytes += taken.bytes;
            total.released += taken.released;
            if taken.bytes > 0 {
                let len = f.overhead() + taken.bytes;
                self.tx
                    .seal(&mut spare[..len], ContentType::ApplicationData, taken.bytes)
                    .map_err(SealError::Tls)?;
                buf.commit(len);
            }
            if taken.file_pending {
                return Ok((total, true));
            }
            if taken.bytes < plain {
                break;
            }
        }
        Ok((total, false))
    }
}
