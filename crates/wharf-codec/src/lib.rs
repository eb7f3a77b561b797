//! Framing codecs for wharf: the decoders and encoders most protocols start
//! from, so that a handler sees whole messages instead of whatever each
//! read happened to return.
//!
//! TCP delivers a stream of bytes, not messages: one read may hold half a
//! frame, or three frames and the start of a fourth. The transport keeps
//! what it has read but not yet decoded (the cumulation) and hands it to a
//! [`Codec`](wharf_transport::Codec); the codecs here cut it into frames
//! without copying (each frame shares the memory it was read into) and put
//! frames back together on the way out.
//!
//! * [`LineCodec`]: lines ended by `\r\n` (or also a bare `\n`, when
//!   lenient), Netty's `LineBasedFrameDecoder` with a line encoder.
//! * [`LengthFieldCodec`]: frames with a length field, Netty's
//!   `LengthFieldBasedFrameDecoder` and `LengthFieldPrepender` in one type.
//! * [`Utf8`]: a [`Transform`](wharf_transport::Transform) that turns
//!   frames into `String`s and back, stacked on either codec.
//! * [`HttpServerCodec`]: HTTP/1.1 requests in (whole, with their bodies,
//!   or as an [`HttpError`] to answer), [`HttpResponse`]s out, with file
//!   bodies sent without copying.
//! * [`resp`]: the Redis protocol (RESP2), server side: requests as
//!   arrays of bulk strings or inline commands in, replies out, with
//!   Redis's limits and error texts, and large values received into one
//!   buffer of their size.
//! * [`sink`]: the encoding helpers every codec here uses, public for
//!   yours: a message behind a header or before a delimiter, or made of
//!   many pieces, copying the small parts together and sending the large
//!   ones as they are.
//!
//! # Hostile input
//!
//! Every byte a decoder sees comes from the peer. Malformed, oversized or
//! truncated input is reported as a [`CodecError`](wharf_transport::CodecError)
//! (which closes the connection), never as a panic, and no decoder buffers
//! more than its configured limit before failing: a peer cannot make the
//! cumulation grow past `max_length` (lines) or `max_frame_length` (length
//! fields) plus one read. The HTTP codec delivers refused requests as
//! [`HttpError`] messages instead, so that the handler can answer with the
//! right status before closing; its bounds are the [`HttpLimits`].
//!
//! # Threading
//!
//! Codecs are plain `Send` values owned by one channel and called from its
//! event loop only, as the [`Codec`](wharf_transport::Codec) trait says; the
//! bootstrap's pipeline closure makes a fresh one per connection.
//!
//! ```
//! use wharf_codec::{LengthFieldCodec, LineCodec, Utf8};
//! use wharf_transport::CodecExt;
//!
//! // Text lines of at most 1 KiB, as `String`s.
//! let _chat = LineCodec::new(1024).stack(Utf8);
//! // Frames behind a 4-byte big-endian length, at most 1 MiB each.
//! let _rpc = LengthFieldCodec::new(1 << 20);
//! ```

mod http;
mod length_field;
mod line;
pub mod resp;
pub mod sink;
mod utf8;

#[cfg(test)]
mod tests;

pub use self::http::{
    Body, EncodedFields, HttpError, HttpLimits, HttpRequest, HttpResponse, HttpServerCodec,
};
pub use length_field::{ByteOrder, ConfigError, LengthFieldBuilder, LengthFieldCodec};
pub use line::LineCodec;
pub use utf8::Utf8;
