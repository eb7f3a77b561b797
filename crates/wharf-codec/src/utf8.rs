//! Text: a transform between frames of bytes and `String`s.

use wharf_buf::{Allocator, ByteBuf};
use wharf_transport::{CodecError, Transform};

/// Decodes each frame as UTF-8 into a `String`, and writes `String`s as
/// their bytes: stack it on a framing codec with
/// [`CodecExt::stack`](wharf_transport::CodecExt::stack).
///
/// A frame that is not valid UTF-8 is [`CodecError::Malformed`] (which
/// closes the connection); nothing is replaced or skipped. Decoding copies
/// the frame once, into the `String`. Encoding copies the string into a
/// buffer from the default allocator (a transform cannot see the
/// channel's; a string too large for a buffer is
/// [`CodecError::Unencodable`]), with two spare bytes so that a [`LineCodec`](crate::LineCodec)
/// below appends its `\r\n` in place.
///
/// Threading: a stateless `Send` value.
///
/// ```
/// use wharf_codec::{LineCodec, Utf8};
/// use wharf_transport::{CodecExt, Context, Handler, Pipeline};
///
/// /// Answers every line with its length.
/// struct Count;
///
/// impl Handler for Count {
///     type In = String;
///     type Out = String;
///
///     fn on_read(&mut self, ctx: &mut Context<'_, String>, line: String) {
///         ctx.write(format!("{} characters", line.chars().count()));
///     }
///
///     fn on_read_complete(&mut self, ctx: &mut Context<'_, String>) {
///         ctx.flush();
///     }
/// }
///
/// let make = || Pipeline::new(LineCodec::new(1024).stack(Utf8), Count);
/// let _pipeline = make();
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Utf8;

/// Spare room left after an encoded string: a line delimiter.
const SPARE: usize = 2;

impl Transform for Utf8 {
    type Below = ByteBuf;
    type In = String;
    type Out = String;
    type BelowOut = ByteBuf;

    fn decode(&mut self, frame: ByteBuf, out: &mut Vec<String>) -> Result<(), CodecError> {
        match std::str::from_utf8(&frame) {
            Ok(text) => {
                out.push(text.to_owned());
                Ok(())
            }
            Err(e) => Err(CodecError::Malformed(format!(
                "invalid UTF-8 after {} bytes of a {}-byte frame",
                e.valid_up_to(),
                frame.len()
            ))),
        }
    }

    fn encode(&mut self, text: String, out: &mut Vec<ByteBuf>) -> Result<(), CodecError> {
        let mut buf = Allocator::default()
            .try_buffer(text.len().saturating_add(SPARE))
            .map_err(|e| CodecError::Unencodable(format!("a {}-byte string: {e}", text.len())))?;
        buf.extend_from_slice(text.as_bytes());
        out.push(buf);
        Ok(())
    }

    fn message_size(text: &String) -> usize {
        text.len()
    }
}
