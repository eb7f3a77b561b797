//! Codecs: the typed layer between a connection's bytes and its handler.
//!
//! A pipeline is one [`Codec`] (bytes ↔ messages), any number of
//! [`Transform`]s stacked on it (messages ↔ messages), and one
//! [`Handler`](crate::Handler) at the top. Inbound, the channel accumulates
//! what it reads and calls [`Codec::decode`]; the decoded messages go up
//! through the transforms to the handler. Outbound, what the handler writes
//! goes down through the transforms and [`Codec::encode`] into the channel's
//! outbound queue.
//!
//! Types connect the layers, so a pipeline that compiles has every message
//! going where it should; nothing is boxed as `dyn Any` on the way.

use std::fmt;

use wharf_buf::{Allocator, ByteBuf, FrozenBuf};

use crate::channel::outbound::OutboundMessage;

/// Why a codec could not decode or encode. A decode error closes the
/// connection after the handler has seen it (see
/// [`Handler::on_error`](crate::Handler::on_error)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// A frame longer than the codec allows.
    TooLong {
        /// The most the codec accepts.
        limit: usize,
        /// How long the frame is (or how far it was read before giving up).
        length: usize,
    },
    /// Bytes that cannot be a valid frame.
    Malformed(String),
    /// The peer closed its side in the middle of a frame.
    Truncated {
        /// Bytes of the unfinished frame.
        remaining: usize,
    },
    /// A message that cannot be encoded.
    Unencodable(String),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::TooLong { limit, length } => {
                write!(f, "frame of {length} bytes exceeds the limit of {limit}")
            }
            CodecError::Malformed(why) => write!(f, "malformed frame: {why}"),
            CodecError::Truncated { remaining } => {
                write!(
                    f,
                    "input closed with {remaining} bytes of an unfinished frame"
                )
            }
            CodecError::Unencodable(why) => write!(f, "cannot encode message: {why}"),
        }
    }
}

impl std::error::Error for CodecError {}

/// Where [`Codec::encode`] puts the bytes of an outbound message.
///
/// The entries join the channel's outbound queue in order; consecutive
/// buffers are written with one `writev`.
#[derive(Debug)]
pub struct Encoded {
    alloc: Allocator,
    entries: Vec<OutboundMessage>,
}

impl Encoded {
    /// An empty sink whose buffers come from `alloc`. The channel makes its
    /// own; this is for testing codecs on their own.
    pub fn new(alloc: Allocator) -> Encoded {
        Encoded {
            alloc,
            entries: Vec::new(),
        }
    }

    /// A sink with `entries` to push into (empty, with their capacity).
    pub(crate) fn with_entries(alloc: Allocator, entries: Vec<OutboundMessage>) -> Encoded {
        debug_assert!(entries.is_empty());
        Encoded { alloc, entries }
    }

    /// The (drained) entries back, with their capacity.
    pub(crate) fn into_entries(self) -> Vec<OutboundMessage> {
        self.entries
    }

    /// A new buffer from the channel's allocator, to fill and
    /// [`push`](Self::push).
    pub fn buffer(&self, capacity: usize) -> ByteBuf {
        self.alloc.buffer(capacity)
    }

    /// The channel's allocator.
    pub fn allocator(&self) -> Allocator {
        self.alloc
    }

    /// Queues a buffer's readable bytes (an empty buffer is skipped).
    pub fn push(&mut self, buf: ByteBuf) {
        if !buf.is_empty() {
            self.entries.push(OutboundMessage::Buf(buf));
        }
    }

    /// Queues shared, immutable bytes (an empty one is skipped).
    pub fn push_frozen(&mut self, buf: FrozenBuf) {
        if !buf.is_empty() {
            self.entries.push(OutboundMessage::Frozen(buf));
        }
    }

    /// Queues any outbound message as it is.
    pub fn push_message(&mut self, message: OutboundMessage) {
        self.entries.push(message);
    }

    /// Takes the queued entries in order, leaving the sink empty.
    pub fn drain(&mut self) -> std::vec::Drain<'_, OutboundMessage> {
        self.entries.drain(..)
    }
}

/// Turns a connection's bytes into messages, and messages into bytes.
///
/// The channel keeps what it has read but not yet decoded (a "cumulation",
/// as Netty's `ByteToMessageDecoder`): each read is appended (without a copy
/// when nothing is pending) and `decode` is called with all of it.
///
/// Between two calls the input only grows at the back: the channel appends
/// new bytes and never removes any, so a codec may remember how far it has
/// already looked. After a decode error the channel discards the input and
/// calls the codec no more; the handler hears of it in
/// [`on_error`](crate::Handler::on_error), where it may still write an
/// answer before the close.
///
/// A frame split over several reads needs nothing special: `decode`
/// leaves the incomplete frame in `input` and is called again when more
/// bytes arrive. To receive a large frame in one allocation, announce its
/// length with [`size_hint`](Self::size_hint) once its header is in: the
/// channel reserves the whole frame and reads straight into it. A complete
/// example (a length-prefixed binary protocol, partial frames, an error
/// answered before the close) is the `wharf` crate's "Writing a codec" and
/// `examples/length_prefixed.rs`.
///
/// Threading: a codec lives on its channel's event loop and is called from
/// there only.
pub trait Codec: Send + 'static {
    /// Messages decoded from the bytes, delivered upwards.
    type In: Send + 'static;
    /// Messages written from above, encoded here.
    type Out: Send + 'static;

    /// Decodes every complete message at the front of `input` into `out`,
    /// consuming its bytes (`split_to` shares them without copying). Bytes
    /// of an incomplete message stay in `input`; the channel calls again
    /// when more arrive.
    ///
    /// An error closes the connection; messages already in `out` are
    /// delivered first.
    fn decode(&mut self, input: &mut ByteBuf, out: &mut Vec<Self::In>) -> Result<(), CodecError>;

    /// The peer closed its side: decode what is left. By default, decodes
    /// as usual and reports any bytes left over as a truncated frame.
    fn decode_eof(
        &mut self,
        input: &mut ByteBuf,
        out: &mut Vec<Self::In>,
    ) -> Result<(), CodecError> {
        self.decode(input, out)?;
        if input.is_empty() {
            Ok(())
        } else {
            Err(CodecError::Truncated {
                remaining: input.len(),
            })
        }
    }

    /// Encodes one message into `out`.
    fn encode(&mut self, msg: Self::Out, out: &mut Encoded) -> Result<(), CodecError>;

    /// How many bytes `input` must hold for the next message to be
    /// complete, if the codec knows (a length header read, the body still
    /// arriving); `None` if it does not. Asked after every decode.
    ///
    /// The channel then makes room for the whole message at once and, for
    /// a large one, reads the rest of it straight into that buffer: a
    /// 400 MB frame is received into one allocation of its size, in time
    /// linear in its length, instead of growing through a chain of copies.
    /// A codec that has consumed the header itself (keeping the length in
    /// its own state) answers for the body still to come, also while
    /// `input` is empty. Only lengths within the codec's own limit should
    /// be announced: the channel reserves what it is told.
    fn size_hint(&self, input: &ByteBuf) -> Option<usize> {
        let _ = input;
        None
    }

    /// Whether decoding stopped in front of bytes the handler takes itself:
    /// a body the codec announced in the message it just decoded (an HTTP
    /// upload, say) for the handler to store with
    /// [`Context::receive_file`](crate::Context::receive_file) or throw
    /// away with [`Context::skip_input`](crate::Context::skip_input).
    /// Asked after every decode; the default is never.
    ///
    /// While this is `true` the channel reads nothing more: the input stays
    /// as it is (bounded, whatever the peer sends) until the handler takes
    /// the bytes, or closes the channel. A codec that claims input must
    /// leave it in `input` untouched and decode nothing past it, until
    /// [`input_taken`](Self::input_taken) says the bytes are gone.
    fn input_claimed(&self) -> bool {
        false
    }

    /// `n` bytes at the front of the input were taken around the codec (by
    /// [`Context::receive_file`](crate::Context::receive_file) or
    /// [`Context::skip_input`](crate::Context::skip_input)): the codec goes
    /// on decoding after them.
    fn input_taken(&mut self, n: u64) {
        let _ = n;
    }

    /// About how many bytes `msg` will take once encoded. Writes made off
    /// the event loop (worker threads, [`ChannelHandle`](crate::ChannelHandle)s)
    /// count this against the water marks until they are encoded, so a
    /// producer on another thread sees backpressure at once. The default is
    /// Netty's estimate for a message of unknown size: 8 bytes.
    fn message_size(msg: &Self::Out) -> usize {
        let _ = msg;
        8
    }
}

/// A message-to-message layer stacked on a codec with
/// [`CodecExt::stack`]: Netty's `MessageToMessageCodec`.
pub trait Transform: Send + 'static {
    /// What the layer below decodes.
    type Below: Send + 'static;
    /// What this layer passes up.
    type In: Send + 'static;
    /// What the layer above writes.
    type Out: Send + 'static;
    /// What this layer writes down.
    type BelowOut: Send + 'static;

    /// Turns one message from below into any number of messages for above.
    fn decode(&mut self, msg: Self::Below, out: &mut Vec<Self::In>) -> Result<(), CodecError>;

    /// Turns one message from above into any number of messages for below.
    fn encode(&mut self, msg: Self::Out, out: &mut Vec<Self::BelowOut>) -> Result<(), CodecError>;

    /// As [`Codec::message_size`].
    fn message_size(msg: &Self::Out) -> usize {
        let _ = msg;
        8
    }
}

/// A codec with a transform stacked on top, made by [`CodecExt::stack`].
///
/// If the transform fails on one message of a batch, the messages decoded
/// after it in that batch are dropped: the error closes the connection.
#[derive(Debug)]
pub struct Stacked<C: Codec, T> {
    codec: C,
    transform: T,
    below_in: Vec<C::In>,
    below_out: Vec<C::Out>,
}

impl<C, T> Codec for Stacked<C, T>
where
    C: Codec,
    T: Transform<Below = C::In, BelowOut = C::Out>,
{
    type In = T::In;
    type Out = T::Out;

    fn decode(&mut self, input: &mut ByteBuf, out: &mut Vec<T::In>) -> Result<(), CodecError> {
        let result = self.codec.decode(input, &mut self.below_in);
        for msg in self.below_in.drain(..) {
            self.transform.decode(msg, out)?;
        }
        result
    }

    fn decode_eof(&mut self, input: &mut ByteBuf, out: &mut Vec<T::In>) -> Result<(), CodecError> {
        let result = self.codec.decode_eof(input, &mut self.below_in);
        for msg in self.below_in.drain(..) {
            self.transform.decode(msg, out)?;
        }
        result
    }

    fn encode(&mut self, msg: T::Out, out: &mut Encoded) -> Result<(), CodecError> {
        self.transform.encode(msg, &mut self.below_out)?;
        for msg in self.below_out.drain(..) {
            self.codec.encode(msg, out)?;
        }
        Ok(())
    }

    fn size_hint(&self, input: &ByteBuf) -> Option<usize> {
        self.codec.size_hint(input)
    }

    fn input_claimed(&self) -> bool {
        self.codec.input_claimed()
    }

    fn input_taken(&mut self, n: u64) {
        self.codec.input_taken(n)
    }

    fn message_size(msg: &T::Out) -> usize {
        T::message_size(msg)
    }
}

/// Stacking transforms on codecs.
pub trait CodecExt: Codec + Sized {
    /// This codec with `transform` on top.
    ///
    /// ```
    /// use wharf_transport::{CodecError, CodecExt, RawBytes, Transform};
    /// use wharf_transport::buf::ByteBuf;
    ///
    /// /// Upper-cases what comes in, writes bytes as they are.
    /// struct Shout;
    ///
    /// impl Transform for Shout {
    ///     type Below = ByteBuf;
    ///     type In = Vec<u8>;
    ///     type Out = ByteBuf;
    ///     type BelowOut = ByteBuf;
    ///
    ///     fn decode(&mut self, msg: ByteBuf, out: &mut Vec<Vec<u8>>) -> Result<(), CodecError> {
    ///         out.push(msg.to_ascii_uppercase());
    ///         Ok(())
    ///     }
    ///
    ///     fn encode(&mut self, msg: ByteBuf, out: &mut Vec<ByteBuf>) -> Result<(), CodecError> {
    ///         out.push(msg);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let _codec = RawBytes.stack(Shout);
    /// ```
    fn stack<T>(self, transform: T) -> Stacked<Self, T>
    where
        T: Transform<Below = Self::In, BelowOut = Self::Out>,
    {
        Stacked {
            codec: self,
            transform,
            below_in: Vec::new(),
            below_out: Vec::new(),
        }
    }
}

impl<C: Codec> CodecExt for C {}

/// No framing: every read is passed up as it came, and written buffers go
/// out as they are. What an echo server or a proxy wants.
#[derive(Debug, Default, Clone, Copy)]
pub struct RawBytes;

impl Codec for RawBytes {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn decode(&mut self, input: &mut ByteBuf, out: &mut Vec<ByteBuf>) -> Result<(), CodecError> {
        if !input.is_empty() {
            out.push(std::mem::take(input));
        }
        Ok(())
    }

    fn encode(&mut self, msg: ByteBuf, out: &mut Encoded) -> Result<(), CodecError> {
        out.push(msg);
        Ok(())
    }

    fn message_size(msg: &ByteBuf) -> usize {
        msg.len()
    }
}

/// Raw bytes in, any [`OutboundMessage`] out: buffers, shared bytes or
/// file regions, for a handler that sends files without a protocol around
/// them.
#[derive(Debug, Default, Clone, Copy)]
pub struct RawMessages;

impl Codec for RawMessages {
    type In = ByteBuf;
    type Out = OutboundMessage;

    fn decode(&mut self, input: &mut ByteBuf, out: &mut Vec<ByteBuf>) -> Result<(), CodecError> {
        RawBytes.decode(input, out)
    }

    fn encode(&mut self, msg: OutboundMessage, out: &mut Encoded) -> Result<(), CodecError> {
        out.push_message(msg);
        Ok(())
    }

    fn message_size(msg: &OutboundMessage) -> usize {
        msg.len()
    }
}
