//! RESP, the Redis serialization protocol (version 2), server side:
//! Netty's `codec-redis` for wharf.
//!
//! [`RespCodec`] decodes requests, as arrays of bulk strings (what every
//! client library sends) or inline commands (what a human types into
//! `telnet`), into [`Command`]s, and encodes [`Reply`]s: simple strings,
//! errors, integers, bulk strings, arrays, nulls.
//!
//! It is meant to let a wharf server speak to `redis-cli`, client
//! libraries and `redis-benchmark` exactly as Redis would, so the decoder
//! follows Redis's `networking.c`: the same limits, checks in the same
//! order, the same error texts (see [`RespCodec`]). The two text parsers it
//! relies on are public, because a server needs them too: [`parse_integer`]
//! (Redis's `string2ll`, for `INCRBY` and friends) and [`split_args`]
//! (Redis's `sdssplitargs`).

mod decoder;
mod reply;
mod text;

use std::borrow::Cow;

use smallvec::SmallVec;
use wharf_buf::{ByteBuf, MAX_CAPACITY};
use wharf_transport::{Codec, CodecError, Encoded};

use decoder::Decoder;
pub use reply::Reply;
pub use text::{parse_integer, split_args};

/// The limits of a [`RespCodec`], Redis's by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RespLimits {
    /// The longest bulk string (Redis's `proto-max-bulk-len`, 512 MiB);
    /// longer is "invalid bulk length".
    pub max_bulk_len: usize,
    /// The longest inline command and header line (Redis's
    /// `PROTO_INLINE_MAX_SIZE`, 64 KiB); longer is "too big inline
    /// request", "too big mbulk count string" or "too big bulk count
    /// string".
    pub max_inline_len: usize,
    /// The most bulks in one request (1,048,576, Redis's limit until 7.0,
    /// which raised it to `INT_MAX`); more is "invalid multibulk length".
    pub max_multibulk_len: usize,
    /// The most bytes one request may hold (its bulks plus 32 bytes each),
    /// checked as each bulk is announced (Redis's
    /// `client-query-buffer-limit`, 1 GiB). Past it the request fails with
    /// [`CodecError::TooLong`]; Redis closes such a client without an
    /// answer.
    pub max_request_bytes: usize,
}

impl Default for RespLimits {
    fn default() -> RespLimits {
        RespLimits {
            max_bulk_len: 512 << 20,
            max_inline_len: 64 << 10,
            max_multibulk_len: 1 << 20,
            max_request_bytes: 1 << 30,
        }
    }
}

/// A command's arguments: up to three held inline, so that `GET key` and
/// `SET key value` cost no allocation besides their bytes.
type Args = SmallVec<[ByteBuf; 3]>;

/// A request: its arguments, the command name first. Never empty (empty
/// requests are skipped, as Redis skips them).
///
/// The arguments of an array request share the memory they were read into
/// (no copy), and so do those of an inline command without quotes; those
/// of one with quotes are copied out of the line, since quotes and escapes
/// change them.
///
/// Threading: a plain `Send` value.
#[derive(Debug, PartialEq, Eq)]
pub struct Command {
    args: Args,
    inline: bool,
}

impl Command {
    /// A command of these arguments (to test a handler without a codec).
    pub fn new(args: Vec<ByteBuf>) -> Command {
        Command::from_parts(Args::from_vec(args), false)
    }

    fn from_parts(args: Args, inline: bool) -> Command {
        Command { args, inline }
    }

    /// The arguments, the command name first.
    pub fn args(&self) -> &[ByteBuf] {
        &self.args
    }

    /// The arguments, to take some of them out without a copy:
    /// `std::mem::take(&mut command.args_mut()[2])` leaves an empty buffer
    /// behind and allocates nothing.
    pub fn args_mut(&mut self) -> &mut [ByteBuf] {
        &mut self.args
    }

    /// The arguments in a `Vec`, to keep (a value stored without a copy).
    /// This allocates the `Vec` for a command of up to three arguments,
    /// which are held inline: [`args_mut`](Self::args_mut) does not.
    pub fn into_args(self) -> Vec<ByteBuf> {
        self.args.into_vec()
    }

    /// The command name as sent (any case).
    pub fn name(&self) -> &[u8] {
        self.args.first().map_or(&[], |a| &a[..])
    }

    /// The number of arguments, the name included.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// Whether there are no arguments (never, for a decoded command).
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// Whether it came as an inline command rather than an array.
    pub fn is_inline(&self) -> bool {
        self.inline
    }
}

/// RESP2 requests in, replies out: the server side of the Redis protocol.
///
/// # Decoding
///
/// A request that starts with `*` is an array of bulk strings
/// (`*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n`); anything else is an inline
/// command, a line of blank-separated arguments with Redis's quoting (see
/// [`split_args`]). Each becomes a [`Command`]; empty ones (`*0`, `*-1`, a
/// blank line) are skipped. The checks are Redis's, in Redis's order, and
/// each failure is [`CodecError::Malformed`] with Redis's text (send it
/// with [`protocol_error_reply`]):
///
/// | input | text |
/// |---|---|
/// | a count that is not an integer (Redis's `string2ll`), above `INT_MAX` or above [`max_multibulk_len`](RespLimits::max_multibulk_len) | `Protocol error: invalid multibulk length` |
/// | a bulk header not starting with `$` | `Protocol error: expected '$', got 'x'` |
/// | a bulk length not an integer, negative or above [`max_bulk_len`](RespLimits::max_bulk_len) | `Protocol error: invalid bulk length` |
/// | an inline line, count line or bulk header line over [`max_inline_len`](RespLimits::max_inline_len) | `Protocol error: too big inline request` / `too big mbulk count string` / `too big bulk count string` |
/// | unbalanced quotes in an inline command | `Protocol error: unbalanced quotes in request` |
///
/// As in Redis, the byte after each header's `\r` and the two bytes after
/// each bulk are skipped without being checked. Unlike Redis, a line is
/// refused as too long also when its end arrived in the same read (Redis
/// checks only while the end is missing, so its answer depends on how the
/// bytes were cut into reads), and a NUL byte does not hide the end of an
/// inline line. A request whose bulks would hold more than
/// [`max_request_bytes`](RespLimits::max_request_bytes) is
/// [`CodecError::TooLong`]; the peer closing mid-request is
/// [`CodecError::Truncated`]. No input makes the decoder panic.
///
/// # Large values
///
/// A bulk's bytes are delivered without a copy, and a large one is
/// received into one buffer of its size, in linear time: once its header
/// has been read, [`Codec::size_hint`] tells the channel how much to
/// reserve, and the channel reads the rest straight into it. How much is
/// the policy that bounds what a peer can make the server reserve without
/// sending anything:
///
/// * a bulk of up to 64 KiB is reserved whole at once;
/// * a larger one is reserved whole once a sixteenth of it has arrived;
///   before that the reservation is 64 KiB, then twice what has arrived.
///
/// So a peer that announces 512 MB and sends nothing costs 64 KiB, and
/// whatever it sends, the reservation is at most 16 times what it sent;
/// an honest 400 MB value costs a few growing buffers up to 25 MB, then
/// one allocation of 400 MB that its bytes are read straight into (Redis
/// reserves any bulk of 32 KiB or more whole as soon as it is announced).
///
/// # Encoding
///
/// A [`Reply`] is written as one buffer holding everything but the bulk
/// values over [`COPY_LIMIT`](crate::sink::COPY_LIMIT), which go out as
/// the shared bytes they are; constant replies such as [`Reply::ok`] are
/// static bytes and cost no buffer. Each reply written is its own message
/// (the transport may gather several into one `writev`).
///
/// Threading: a plain `Send` value; one per connection.
///
/// ```
/// use wharf_codec::resp::{Reply, RespCodec};
/// use wharf_transport::Codec;
/// use wharf_transport::buf::ByteBuf;
///
/// let mut codec = RespCodec::new();
/// let mut input = ByteBuf::new();
/// input.extend_from_slice(b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n*1\r\n$3\r\nGE");
/// let mut commands = Vec::new();
/// codec.decode(&mut input, &mut commands).unwrap();
/// assert_eq!(commands.len(), 2);
/// assert_eq!(&commands[0].args()[1][..], b"hi");
/// assert!(commands[1].is_inline());
/// assert_eq!(&input[..], b"GE"); // the rest of the third, to come
///
/// let mut bad = ByteBuf::new();
/// bad.extend_from_slice(b"*1\r\n$x\r\n");
/// let error = RespCodec::new().decode(&mut bad, &mut commands).unwrap_err();
/// let reply = wharf_codec::resp::protocol_error_reply(&error).unwrap();
/// assert_eq!(reply.to_bytes(), b"-ERR Protocol error: invalid bulk length\r\n");
/// ```
#[derive(Debug)]
pub struct RespCodec {
    decoder: Decoder,
}

impl Default for RespCodec {
    fn default() -> RespCodec {
        RespCodec::new()
    }
}

impl RespCodec {
    /// A codec with Redis's limits ([`RespLimits::default`]).
    pub fn new() -> RespCodec {
        RespCodec::with_limits(RespLimits::default())
    }

    /// A codec with these limits (a bulk limit above what a buffer holds
    /// is lowered to it).
    pub fn with_limits(limits: RespLimits) -> RespCodec {
        let limits = RespLimits {
            max_bulk_len: limits.max_bulk_len.min(MAX_CAPACITY - 2),
            ..limits
        };
        RespCodec {
            decoder: Decoder::new(limits),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> RespLimits {
        self.decoder.limits
    }
}

impl Codec for RespCodec {
    type In = Command;
    type Out = Reply;

    fn decode(&mut self, input: &mut ByteBuf, out: &mut Vec<Command>) -> Result<(), CodecError> {
        self.decoder.decode(input, out)
    }

    /// Decodes what is complete; a request left unfinished is
    /// [`CodecError::Truncated`].
    fn decode_eof(
        &mut self,
        input: &mut ByteBuf,
        out: &mut Vec<Command>,
    ) -> Result<(), CodecError> {
        self.decoder.decode(input, out)?;
        let unfinished = self.decoder.in_request() || !input.is_empty();
        self.decoder.reset();
        if unfinished {
            Err(CodecError::Truncated {
                remaining: input.len(),
            })
        } else {
            Ok(())
        }
    }

    fn encode(&mut self, reply: Reply, out: &mut Encoded) -> Result<(), CodecError> {
        reply.encode_into(out);
        Ok(())
    }

    /// While a bulk is arriving: what to reserve for it, per the
    /// [policy](Self#large-values).
    fn size_hint(&self, input: &ByteBuf) -> Option<usize> {
        self.decoder.size_hint(input)
    }

    fn message_size(reply: &Reply) -> usize {
        reply.encoded_len()
    }
}

/// The reply Redis sends before closing a connection that broke the
/// protocol: `-ERR Protocol error: …` for a [`CodecError::Malformed`] from
/// a [`RespCodec`], byte for byte as Redis sends it; `None` for any other
/// error (Redis closes without an answer then).
pub fn protocol_error_reply(error: &CodecError) -> Option<Reply> {
    let CodecError::Malformed(text) = error else {
        return None;
    };
    if !text.starts_with("Protocol error: ") {
        return None;
    }
    // The texts are ASCII but for the byte of "expected '$', got 'x'",
    // kept as the char of its code: give back the byte.
    let mut reply = b"ERR ".to_vec();
    reply.extend(text.chars().map(|c| u8::try_from(c).unwrap_or(b'?')));
    Some(Reply::Error(Cow::Owned(reply)))
}
