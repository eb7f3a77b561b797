//! Frames with a length field: Netty's `LengthFieldBasedFrameDecoder` and
//! `LengthFieldPrepender` as one codec.

use std::fmt;

use wharf_buf::{ByteBuf, MAX_CAPACITY};
use wharf_transport::{Codec, CodecError, Encoded};

use crate::sink::{Sink, push_with_prefix};

/// The order of the bytes of a length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ByteOrder {
    /// Most significant byte first: network order, Netty's default.
    #[default]
    BigEndian,
    /// Least significant byte first.
    LittleEndian,
}

impl ByteOrder {
    /// The unsigned value of `field` (at most 8 bytes).
    fn read(self, field: &[u8]) -> u64 {
        let push = |value: u64, &byte: &u8| (value << 8) | u64::from(byte);
        match self {
            ByteOrder::BigEndian => field.iter().fold(0, push),
            ByteOrder::LittleEndian => field.iter().rev().fold(0, push),
        }
    }

    /// The low `len` bytes of `value` in this order (`len` at most 8).
    fn write(self, value: u64, len: usize) -> Option<[u8; 8]> {
        let mut field = [0; 8];
        let dest = field.get_mut(..len)?;
        dest.copy_from_slice(value.to_le_bytes().get(..len)?);
        if self == ByteOrder::BigEndian {
            dest.reverse();
        }
        Some(field)
    }
}

/// Whether `value` fits in an unsigned field of `len` bytes.
fn fits(value: u64, len: usize) -> bool {
    value
        .to_le_bytes()
        .get(len..)
        .is_some_and(|high| high.iter().all(|&b| b == 0))
}

/// A length-field configuration that cannot work, refused by
/// [`LengthFieldBuilder::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    reason: String,
}

impl ConfigError {
    fn new(reason: String) -> ConfigError {
        ConfigError { reason }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid length-field configuration: {}", self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Checks that a length field has a size the codec reads and writes.
fn check_field_length(what: &str, length: usize) -> Result<(), ConfigError> {
    if matches!(length, 1 | 2 | 3 | 4 | 8) {
        Ok(())
    } else {
        Err(ConfigError::new(format!(
            "{what} must be 1, 2, 3, 4 or 8 bytes, not {length}"
        )))
    }
}

/// Cuts frames by a length field in their header and writes messages
/// behind one: Netty's `LengthFieldBasedFrameDecoder` and
/// `LengthFieldPrepender`.
///
/// # Decoding
///
/// Each frame starts with a header that holds an unsigned length field of
/// `length_field_length` bytes (1, 2, 3, 4 or 8) at `length_field_offset`.
/// As in Netty, the whole frame, header included, is
///
/// ```text
/// frame length = field value + length_adjustment + length_field_offset + length_field_length
/// ```
///
/// and once it has arrived, the first `initial_bytes_to_strip` bytes are
/// dropped and the rest is delivered, sharing the memory it was read into.
///
/// * A frame length below `length_field_offset + length_field_length` (a
///   negative adjustment larger than the value) is
///   [`CodecError::Malformed`].
/// * A frame length above `max_frame_length` is [`CodecError::TooLong`] as
///   soon as the length field has arrived (Netty's fail-fast mode): the
///   codec never buffers more than `max_frame_length` bytes plus one read.
///   An 8-byte value is read unsigned, so a value that does not even fit
///   in `usize` is `TooLong` too (Netty reads it signed and calls values
///   from 2⁶³ up `Malformed`); `length` then saturates at `usize::MAX`.
/// * `initial_bytes_to_strip` beyond the frame length is
///   [`CodecError::Malformed`], also reported as soon as the length field
///   has arrived.
/// * Bytes of an unfinished frame at end of input are
///   [`CodecError::Truncated`].
///
/// # Encoding
///
/// A written message goes out behind a length field of
/// `encoder_length_field_length` bytes holding
///
/// ```text
/// message length + encoder_length_adjustment (+ encoder_length_field_length
///                                                if length_includes_length_field_length)
/// ```
///
/// A negative value, or one too large for the field, is
/// [`CodecError::Unencodable`]. The encoder writes the length field only:
/// any other header fields are the caller's to put in the message. Short
/// messages are copied behind the field into one buffer, long ones go out
/// as they are after a small buffer holding it.
///
/// # Defaults
///
/// [`LengthFieldCodec::new(max_frame_length)`](Self::new) and
/// [`builder(max_frame_length)`](Self::builder) start from: a 4-byte
/// big-endian length field at offset 0 that counts the bytes after it
/// (adjustment 0), stripped from delivered frames (`initial_bytes_to_strip`
/// = offset + field length; Netty's constructors default to 0, keeping the
/// header); an encoder writing a field of the decoder's size and byte order
/// with `encoder_length_adjustment = -length_adjustment`, not counting
/// itself. So with the length field at offset 0 and stripped, whatever the
/// field size and adjustment, the decoder reads back exactly the messages
/// the encoder wrote. A `max_frame_length` above
/// [`wharf_buf::MAX_CAPACITY`] (the most a buffer holds) is lowered to it;
/// one below the header admits no frame at all.
///
/// # Netty's examples
///
/// The cases of Netty's `LengthFieldBasedFrameDecoder` javadoc, as builder
/// calls (each is a unit test of this crate):
///
/// 1. 2-byte length at offset 0, header kept:
///    `builder(max).length_field_length(2).initial_bytes_to_strip(0)`;
///    `00 0C "HELLO, WORLD"` → `00 0C "HELLO, WORLD"`.
/// 2. 2-byte length at offset 0, header stripped:
///    `builder(max).length_field_length(2)`;
///    `00 0C "HELLO, WORLD"` → `"HELLO, WORLD"`.
/// 3. 2-byte length counting the whole frame, header kept:
///    `.length_field_length(2).length_adjustment(-2).initial_bytes_to_strip(0)`;
///    `00 0E "HELLO, WORLD"` → `00 0E "HELLO, WORLD"`.
/// 4. 3-byte length after a 2-byte header field, header kept:
///    `.length_field_offset(2).length_field_length(3).initial_bytes_to_strip(0)`;
///    `CA FE 00 00 0C "HELLO, WORLD"` → the same 17 bytes.
/// 5. 3-byte length before a 2-byte header field, header kept:
///    `.length_field_length(3).length_adjustment(2).initial_bytes_to_strip(0)`;
///    `00 00 0C CA FE "HELLO, WORLD"` → the same 17 bytes.
/// 6. 2-byte length at offset 1 in a 4-byte header, first field and length
///    stripped:
///    `.length_field_offset(1).length_field_length(2).length_adjustment(1).initial_bytes_to_strip(3)`;
///    `CA 00 0C FE "HELLO, WORLD"` → `FE "HELLO, WORLD"`.
/// 7. As 6, the length counting the whole frame: adjustment `-3`;
///    `CA 00 10 FE "HELLO, WORLD"` → `FE "HELLO, WORLD"`.
///
/// Threading: a plain `Send` value; one per connection.
///
/// ```
/// use wharf_codec::LengthFieldCodec;
/// use wharf_transport::Codec;
/// use wharf_transport::buf::ByteBuf;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Netty's example 6: `HDR1 | LEN | HDR2 | body`, delivered from HDR2 on.
/// let mut codec = LengthFieldCodec::builder(1024)
///     .length_field_offset(1)
///     .length_field_length(2)
///     .length_adjustment(1)
///     .initial_bytes_to_strip(3)
///     .build()?;
/// let mut input = ByteBuf::new();
/// input.extend_from_slice(b"\xCA\x00\x0C\xFEHELLO, WORLD");
/// let mut frames = Vec::new();
/// codec.decode(&mut input, &mut frames)?;
/// assert_eq!(&frames[0][..], b"\xFEHELLO, WORLD");
/// assert!(input.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct LengthFieldCodec {
    max_frame_length: usize,
    length_field_offset: usize,
    /// `length_field_offset + length_field_length`: Netty's
    /// `lengthFieldEndOffset`, the bytes needed to read the length.
    header_length: usize,
    length_adjustment: i64,
    initial_bytes_to_strip: usize,
    byte_order: ByteOrder,
    encoder_length_field_length: usize,
    encoder_length_adjustment: i128,
    length_includes_length_field_length: bool,
}

impl LengthFieldCodec {
    /// Frames of at most `max_frame_length` bytes (header included) behind
    /// a 4-byte big-endian length at offset 0, delivered without it; written
    /// messages get the same header. See [Defaults](Self#defaults).
    pub fn new(max_frame_length: usize) -> LengthFieldCodec {
        LengthFieldBuilder::new(max_frame_length).assemble(4)
    }

    /// A builder starting from [the defaults](Self#defaults), for frames
    /// of at most `max_frame_length` bytes.
    pub fn builder(max_frame_length: usize) -> LengthFieldBuilder {
        LengthFieldBuilder::new(max_frame_length)
    }

    /// The longest frame accepted, header included.
    pub fn max_frame_length(&self) -> usize {
        self.max_frame_length
    }

    /// The length of the frame at the front of `input` and of what is left
    /// of it once stripped, when its length field has arrived and passed
    /// the checks.
    fn frame_length(&self, input: &[u8]) -> Result<Option<(usize, usize)>, CodecError> {
        let Some(field) = input.get(self.length_field_offset..self.header_length) else {
            return Ok(None);
        };
        let value = self.byte_order.read(field);
        let header = self.header_length as i128;
        let too_long = |length: usize| CodecError::TooLong {
            limit: self.max_frame_length,
            length,
        };
        let frame = i128::from(value)
            .checked_add(i128::from(self.length_adjustment))
            .and_then(|n| n.checked_add(header))
            .ok_or_else(|| too_long(usize::MAX))?;
        if frame < header {
            return Err(CodecError::Malformed(format!(
                "length field {value} adjusted by {} gives a frame of {frame} bytes, \
                 fewer than the {header} bytes up to the end of the length field",
                self.length_adjustment
            )));
        }
        if frame > self.max_frame_length as i128 {
            return Err(too_long(usize::try_from(frame).unwrap_or(usize::MAX)));
        }
        let frame = usize::try_from(frame).map_err(|_| too_long(usize::MAX))?;
        let body = frame
            .checked_sub(self.initial_bytes_to_strip)
            .ok_or_else(|| {
                CodecError::Malformed(format!(
                    "cannot strip {} bytes from a frame of {frame}",
                    self.initial_bytes_to_strip
                ))
            })?;
        Ok(Some((frame, body)))
    }

    /// The encoder, writing to any sink (see [`Codec::encode`]).
    pub(crate) fn encode_into(
        &mut self,
        msg: ByteBuf,
        out: &mut impl Sink,
    ) -> Result<(), CodecError> {
        let field_length = self.encoder_length_field_length;
        let itself = if self.length_includes_length_field_length {
            field_length as i128
        } else {
            0
        };
        let length = (msg.len() as i128)
            .checked_add(self.encoder_length_adjustment)
            .and_then(|n| n.checked_add(itself));
        let value = length
            .and_then(|n| u64::try_from(n).ok())
            .filter(|&v| fits(v, field_length))
            .ok_or_else(|| {
                CodecError::Unencodable(format!(
                    "the length {} of a {}-byte message does not fit in an unsigned \
                     {field_length}-byte field",
                    length.map_or_else(|| "(overflow)".to_owned(), |n| n.to_string()),
                    msg.len()
                ))
            })?;
        let field = self.byte_order.write(value, field_length);
        let field = field
            .as_ref()
            .and_then(|f| f.get(..field_length))
            .ok_or_else(|| {
                CodecError::Unencodable(format!("a {field_length}-byte length field"))
            })?;
        push_with_prefix(out, field, msg);
        Ok(())
    }
}

impl Codec for LengthFieldCodec {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn decode(&mut self, input: &mut ByteBuf, out: &mut Vec<ByteBuf>) -> Result<(), CodecError> {
        while let Some((frame, body)) = self.frame_length(input)? {
            if input.len() < frame {
                break;
            }
            // `initial_bytes_to_strip + body == frame <= input.len()`.
            input.skip(self.initial_bytes_to_strip);
            out.push(input.split_to(body));
        }
        Ok(())
    }

    fn encode(&mut self, msg: ByteBuf, out: &mut Encoded) -> Result<(), CodecError> {
        self.encode_into(msg, out)
    }

    /// The whole frame, once its length field has arrived.
    fn size_hint(&self, input: &ByteBuf) -> Option<usize> {
        match self.frame_length(input) {
            Ok(Some((frame, _))) => Some(frame),
            _ => None,
        }
    }

    /// The message and the largest length field (8 bytes): this function
    /// cannot see which field size the codec was built with.
    fn message_size(msg: &ByteBuf) -> usize {
        msg.len().saturating_add(8)
    }
}

/// Configures a [`LengthFieldCodec`]; made by
/// [`LengthFieldCodec::builder`]. The parameters are Netty's, by the same
/// names; unset ones keep [the defaults](LengthFieldCodec#defaults).
///
/// ```
/// use wharf_codec::{ByteOrder, LengthFieldCodec};
///
/// // A 2-byte little-endian length that counts itself too.
/// let codec = LengthFieldCodec::builder(65_535)
///     .length_field_length(2)
///     .length_adjustment(-2)
///     .byte_order(ByteOrder::LittleEndian)
///     .build();
/// assert!(codec.is_ok());
/// assert!(LengthFieldCodec::builder(1024).length_field_length(5).build().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct LengthFieldBuilder {
    max_frame_length: usize,
    length_field_offset: usize,
    length_field_length: usize,
    length_adjustment: i64,
    initial_bytes_to_strip: Option<usize>,
    byte_order: ByteOrder,
    encoder_length_field_length: Option<usize>,
    encoder_length_adjustment: Option<i64>,
    length_includes_length_field_length: bool,
}

impl LengthFieldBuilder {
    fn new(max_frame_length: usize) -> LengthFieldBuilder {
        LengthFieldBuilder {
            max_frame_length,
            length_field_offset: 0,
            length_field_length: 4,
            length_adjustment: 0,
            initial_bytes_to_strip: None,
            byte_order: ByteOrder::BigEndian,
            encoder_length_field_length: None,
            encoder_length_adjustment: None,
            length_includes_length_field_length: false,
        }
    }

    /// The longest frame accepted, header included (at most
    /// [`wharf_buf::MAX_CAPACITY`]; larger values are lowered to it).
    pub fn max_frame_length(mut self, bytes: usize) -> LengthFieldBuilder {
        self.max_frame_length = bytes;
        self
    }

    /// Where the length field starts in the header (default 0).
    pub fn length_field_offset(mut self, bytes: usize) -> LengthFieldBuilder {
        self.length_field_offset = bytes;
        self
    }

    /// The size of the length field the decoder reads: 1, 2, 3, 4 or 8
    /// (default 4). Also the encoder's, unless
    /// [`encoder_length_field_length`](Self::encoder_length_field_length)
    /// is set.
    pub fn length_field_length(mut self, bytes: usize) -> LengthFieldBuilder {
        self.length_field_length = bytes;
        self
    }

    /// Added to the field's value to get the bytes that follow the length
    /// field (default 0). For example `-2` when a 2-byte field counts the
    /// whole frame, or the size of header fields after the length that it
    /// does not count.
    pub fn length_adjustment(mut self, bytes: i64) -> LengthFieldBuilder {
        self.length_adjustment = bytes;
        self
    }

    /// Bytes dropped from the front of each decoded frame (default: up to
    /// the end of the length field; Netty's default is 0).
    pub fn initial_bytes_to_strip(mut self, bytes: usize) -> LengthFieldBuilder {
        self.initial_bytes_to_strip = Some(bytes);
        self
    }

    /// The byte order of the length field, read and written (default
    /// big-endian).
    pub fn byte_order(mut self, order: ByteOrder) -> LengthFieldBuilder {
        self.byte_order = order;
        self
    }

    /// The size of the length field the encoder writes: 1, 2, 3, 4 or 8
    /// (default: the decoder's).
    pub fn encoder_length_field_length(mut self, bytes: usize) -> LengthFieldBuilder {
        self.encoder_length_field_length = Some(bytes);
        self
    }

    /// Added to the message length to get the value the encoder writes
    /// (default: minus [`length_adjustment`](Self::length_adjustment), so
    /// that the decoder reads back what the encoder wrote).
    pub fn encoder_length_adjustment(mut self, bytes: i64) -> LengthFieldBuilder {
        self.encoder_length_adjustment = Some(bytes);
        self
    }

    /// Whether the written length counts the length field itself (default
    /// false), on top of the encoder's adjustment.
    pub fn length_includes_length_field_length(mut self, includes: bool) -> LengthFieldBuilder {
        self.length_includes_length_field_length = includes;
        self
    }

    /// The codec, or why this configuration cannot work: a field size other
    /// than 1, 2, 3, 4 or 8, or an offset so large that the header does not
    /// fit in `usize`.
    pub fn build(self) -> Result<LengthFieldCodec, ConfigError> {
        check_field_length("length_field_length", self.length_field_length)?;
        if let Some(bytes) = self.encoder_length_field_length {
            check_field_length("encoder_length_field_length", bytes)?;
        }
        let header_length = self
            .length_field_offset
            .checked_add(self.length_field_length)
            .ok_or_else(|| {
                ConfigError::new(format!(
                    "length_field_offset {} leaves no room for the length field",
                    self.length_field_offset
                ))
            })?;
        Ok(self.assemble(header_length))
    }

    /// The codec, from a checked configuration.
    fn assemble(self, header_length: usize) -> LengthFieldCodec {
        LengthFieldCodec {
            max_frame_length: self.max_frame_length.min(MAX_CAPACITY),
            length_field_offset: self.length_field_offset,
            header_length,
            length_adjustment: self.length_adjustment,
            initial_bytes_to_strip: self.initial_bytes_to_strip.unwrap_or(header_length),
            byte_order: self.byte_order,
            encoder_length_field_length: self
                .encoder_length_field_length
                .unwrap_or(self.length_field_length),
            encoder_length_adjustment: self.encoder_length_adjustment.map_or(
                i128::from(self.length_adjustment).saturating_neg(),
                i128::from,
            ),
            length_includes_length_field_length: self.length_includes_length_field_length,
        }
    }
}
