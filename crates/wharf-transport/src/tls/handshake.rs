//! The TLS handshake, driven through rustls's unbuffered API: records are
//! processed where they were read (the channel's pooled input buffer), and
//! what rustls wants sent is encoded into the channel's output buffer.
//! When the handshake is done, the traffic keys are taken out of rustls
//! (its kernel-connection API) for the record layer; rustls keeps what it
//! needs for key updates and session tickets.

use std::ops::DerefMut;

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::kernel::KernelConnection;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, UnbufferedConnectionCommon, UnbufferedStatus,
};
use rustls::{ExtractedSecrets, ProtocolVersion, SupportedCipherSuite};
use wharf_buf::{Allocator, ByteBuf};

use crate::tls::config::{TlsClient, TlsServer};
use crate::tls::error::TlsError;
use crate::tls::info::TlsInfo;
use crate::tls::records::Format;

/// Most state changes one call makes before giving up: a handshake
/// exchanges a dozen messages at most; more means a peer that keeps the
/// state machine busy without progress.
const MAX_STEPS: usize = 256;

/// One side of an unbuffered rustls connection.
trait Side: DerefMut<Target = UnbufferedConnectionCommon<Self::Data>> {
    type Data;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Side for UnbufferedServerConnection {
    type Data = ServerConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, ServerConnectionData> {
        self.process_tls_records(incoming)
    }
}

impl Side for UnbufferedClientConnection {
    type Data = ClientConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, ClientConnectionData> {
        self.process_tls_records(incoming)
    }
}

/// rustls's half of an established connection: new traffic secrets on a
/// key update, and (on a client) the tickets a server sends.
pub(crate) enum Kernel {
    /// A server connection.
    Server(KernelConnection<ServerConnectionData>),
    /// A client connection.
    Client(KernelConnection<ClientConnectionData>),
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kernel::Server(_) => "Kernel::Server",
            Kernel::Client(_) => "Kernel::Client",
        })
    }
}

/// What a finished handshake hands to the record layer.
pub(crate) struct Established {
    pub secrets: ExtractedSecrets,
    pub kernel: Kernel,
    pub format: Format,
    /// Records the suite may protect with one key (then it must change).
    pub record_limit: u64,
    pub info: TlsInfo,
}

impl std::fmt::Debug for Established {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("Established")
            .field("format", &self.format)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Where a handshake stands after taking some input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Waiting for more of the peer's records.
    NeedInput,
    /// Done: take the keys with [`Handshake::establish`].
    Done,
}

/// A handshake in progress.
pub(crate) struct Handshake {
    conn: Conn,
    /// Application data that arrived with the handshake's last flight
    /// (decrypted by rustls), for the handler once it is active.
    pub early_plaintext: Option<ByteBuf>,
    /// The peer sent `close_notify` with its last flight.
    pub peer_closed: bool,
    /// The server name the client asked for.
    pub server_name: Option<String>,
    /// A server has the client's whole ClientHello (or knows the input
    /// is not one).
    pub hello_read: bool,
}

enum Conn {
    Server(Box<UnbufferedServerConnection>),
    Client(Box<UnbufferedClientConnection>),
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("server", &matches!(self.conn, Conn::Server(_)))
            .field("peer_closed", &self.peer_closed)
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// A server's handshake: waits for the ClientHello.
    pub(crate) fn server(tls: &TlsServer) -> Result<Handshake, TlsError> {
        let conn =
            UnbufferedServerConnection::new(tls.config.clone()).map_err(TlsError::Handshake)?;
        Ok(Handshake::new(Conn::Server(Box::new(conn))))
    }

    /// A client's handshake: its ClientHello is ready to send after the
    /// first [`advance`](Self::advance).
    pub(crate) fn client(tls: &TlsClient) -> Result<Handshake, TlsError> {
        let conn = UnbufferedClientConnection::new(tls.config.clone(), tls.server_name.clone())
            .map_err(TlsError::Handshake)?;
        let mut handshake = Handshake::new(Conn::Client(Box::new(conn)));
        // The name the client asks for (and checks the certificate
        // against), for `TlsInfo::server_name` on the client's side too.
        handshake.server_name = Some(tls.server_name.to_str().into_owned());
        Ok(handshake)
    }

    fn new(conn: Conn) -> Handshake {
        Handshake {
            conn,
            early_plaintext: None,
            peer_closed: false,
            server_name: None,
            hello_read: false,
        }
    }

    /// Whether this is the server's side.
    pub(crate) fn is_server(&self) -> bool {
        matches!(self.conn, Conn::Server(_))
    }

    /// Processes the records in `incoming` (consuming what rustls is done
    /// with) and encodes what rustls wants to send into `outgoing`. On a
    /// failure, the alert rustls queued for the peer is in `outgoing`.
    pub(crate) fn advance(
        &mut self,
        incoming: &mut ByteBuf,
        outgoing: &mut ByteBuf,
        allocator: Allocator,
    ) -> Result<Progress, TlsError> {
        let mut sink = Sink {
            outgoing,
            allocator,
            plaintext: &mut self.early_plaintext,
            peer_closed: &mut self.peer_closed,
        };
        let result = match &mut self.conn {
            Conn::Server(conn) => drive(&mut **conn, incoming, &mut sink),
            Conn::Client(conn) => drive(&mut **conn, incoming, &mut sink),
        };
        if let Err(error) = &result {
            // The alert rustls queued (if any) goes out before the close.
            let _ = match &mut self.conn {
                Conn::Server(conn) => flush_alert(&mut **conn, incoming, &mut sink),
                Conn::Client(conn) => flush_alert(&mut **conn, incoming, &mut sink),
            };
            log::debug!("TLS handshake failed: {error}");
        }
        result
    }

    /// Takes the traffic keys out of a finished handshake.
    pub(crate) fn establish(self) -> Result<Established, TlsError> {
        let server_name = self.server_name;
        let (info, suite, version, converted) = match self.conn {
            Conn::Server(conn) => {
                let (info, suite, version) = describe(&conn, server_name);
                let converted = conn
                    .dangerous_into_kernel_connection()
                    .map(|(s, k)| (s, Kernel::Server(k)));
                (info, suite, version, converted)
            }
            Conn::Client(conn) => {
                let (info, suite, version) = describe(&conn, server_name);
                let converted = conn
                    .dangerous_into_kernel_connection()
                    .map(|(s, k)| (s, Kernel::Client(k)));
                (info, suite, version, converted)
            }
        };
        let (secrets, kernel) = converted.map_err(TlsError::Handshake)?;
        let (format, record_limit) = match suite {
            Some(SupportedCipherSuite::Tls13(s)) => (Format::Tls13, s.common.confidentiality_limit),
            Some(SupportedCipherSuite::Tls12(s)) => {
                (Format::Tls12Gcm, s.common.confidentiality_limit)
            }
            None => return Err(TlsError::protocol("no cipher suite after the handshake")),
        };
        let format = match version {
            Some(ProtocolVersion::TLSv1_3) => Format::Tls13,
            _ => format,
        };
        Ok(Established {
            secrets,
            kernel,
            format,
            record_limit,
            info,
        })
    }
}

/// The handshake's outcome as the handler sees it, with the suite and
/// version the record layer needs.
fn describe<D>(
    conn: &UnbufferedConnectionCommon<D>,
    server_name: Option<String>,
) -> (
    TlsInfo,
    Option<SupportedCipherSuite>,
    Option<ProtocolVersion>,
) {
    (
        TlsInfo::from_state(conn, server_name),
        conn.negotiated_cipher_suite(),
        conn.protocol_version(),
    )
}

/// Where the driver puts what rustls produces.
struct Sink<'a> {
    outgoing: &'a mut ByteBuf,
    allocator: Allocator,
    plaintext: &'a mut Option<ByteBuf>,
    peer_closed: &'a mut bool,
}

impl Sink<'_> {
    /// Appends a record rustls encodes.
    fn encode(&mut self, mut encode: impl FnMut(&mut [u8]) -> Result<usize, EncodeError>) {
        loop {
            match encode(self.outgoing.spare_mut()) {
                Ok(n) => {
                    self.outgoing.commit(n);
                    return;
                }
                Err(EncodeError::InsufficientSize(e)) => self.outgoing.reserve(e.required_size),
                Err(EncodeError::AlreadyEncoded) => return,
            }
        }
    }

    /// Keeps application data that came with the handshake.
    fn keep(&mut self, data: &[u8]) {
        let plaintext = self
            .plaintext
            .get_or_insert_with(|| self.allocator.buffer(data.len()));
        plaintext.extend_from_slice(data);
    }
}

/// Runs the state machine until it needs input or is done.
fn drive<S: Side>(
    conn: &mut S,
    incoming: &mut ByteBuf,
    sink: &mut Sink<'_>,
) -> Result<Progress, TlsError> {
    for _ in 0..MAX_STEPS {
        let status = conn.process(&mut incoming[..]);
        let discard = status.discard;
        let state = match status.state {
            Ok(state) => state,
            Err(e) => {
                // What rustls consumed goes before it is called again
                // (for its alert, below).
                incoming.skip(discard);
                return Err(TlsError::Handshake(e));
            }
        };
        let progress = match state {
            ConnectionState::EncodeTlsData(mut data) => {
                sink.encode(|buf| data.encode(buf));
                None
            }
            ConnectionState::TransmitTlsData(data) => {
                // What was encoded is in the output buffer, sent in order
                // before anything written later.
                data.done();
                None
            }
            ConnectionState::ReadTraffic(mut traffic) => {
                while let Some(record) = traffic.next_record() {
                    let record = record.map_err(TlsError::Handshake)?;
                    sink.keep(record.payload);
                }
                None
            }
            ConnectionState::ReadEarlyData(_) => {
                // 0-RTT data is never accepted (`max_early_data_size` 0).
                return Err(TlsError::protocol("0-RTT data, which is not accepted"));
            }
            ConnectionState::PeerClosed | ConnectionState::Closed => {
                *sink.peer_closed = true;
                None
            }
            ConnectionState::BlockedHandshake => Some(Progress::NeedInput),
            ConnectionState::WriteTraffic(_) => Some(Progress::Done),
            _ => return Err(TlsError::protocol("an unexpected handshake state")),
        };
        incoming.skip(discard);
        if let Some(progress) = progress {
            return Ok(progress);
        }
    }
    Err(TlsError::protocol("the handshake made no progress"))
}

/// After a failure: encodes the alert rustls queued. rustls is called
/// only while it has something queued, which it hands out before looking
/// at the input again: the input that failed must not be processed twice
/// (a record it could not deframe fails again and queues a second fatal
/// alert, which rustls asserts against; a debug build's loop thread
/// panicked on random bytes: `tests/tls_bad_input.rs`).
fn flush_alert<S: Side>(conn: &mut S, incoming: &mut ByteBuf, sink: &mut Sink<'_>) -> Option<()> {
    for _ in 0..8 {
        if !conn.wants_write() {
            return Some(());
        }
        let status = conn.process(&mut incoming[..]);
        let discard = status.discard;
        match status.state.ok()? {
            ConnectionState::EncodeTlsData(mut data) => sink.encode(|buf| data.encode(buf)),
            ConnectionState::TransmitTlsData(data) => data.done(),
            _ => return Some(()),
        }
        incoming.skip(discard);
    }
    Some(())
}
