//! Lines: frames ended by `\r\n` (Netty's `LineBasedFrameDecoder`, with a
//! line encoder).

use wharf_buf::ByteBuf;
use wharf_transport::{Codec, CodecError, Encoded};

use crate::sink::{Sink, push_with_suffix};

/// The delimiter the encoder writes after every line, in both modes.
const CRLF: &[u8] = b"\r\n";

/// Splits the input into lines and writes lines followed by `\r\n`.
///
/// # Decoding
///
/// * **Strict** ([`new`](Self::new)): a line ends with `\r\n`, as in SMTP,
///   HTTP/1 headers, Redis' inline commands. A `\n` without the `\r` before
///   it is [`CodecError::Malformed`]. A `\r` that is not followed by `\n` is
///   part of the line.
/// * **Lenient** ([`lenient`](Self::lenient)): a line ends with `\r\n` or a
///   bare `\n`, as Netty's `LineBasedFrameDecoder` reads.
///
/// A line is delivered without its delimiter unless
/// [`keep_delimiter`](Self::keep_delimiter) is set; either way it shares the
/// memory it was read into (no copy).
///
/// A line longer than `max_length` bytes (not counting the delimiter) is
/// [`CodecError::TooLong`], reported as soon as more than `max_length`
/// bytes are pending without a delimiter: the codec never buffers more than
/// `max_length + 1` bytes of one line (the `+ 1` being a `\r` that may yet
/// turn out to start the delimiter) plus what the last read brought.
///
/// The search for the delimiter resumes where the previous call stopped,
/// so a line that arrives one byte per read costs O(n), not O(n²).
///
/// # End of input
///
/// Strict: bytes left without a delimiter when the peer closes are
/// [`CodecError::Truncated`]. Lenient: they are delivered as a last line (as
/// `BufRead::lines` does; a trailing `\r` stays in it, since without a `\n`
/// it ends nothing), or [`CodecError::TooLong`] if longer than `max_length`.
///
/// # Encoding
///
/// Every written line goes out followed by `\r\n`, in both modes: what a
/// strict peer requires and a lenient one accepts. A line that contains
/// `\n` is [`CodecError::Unencodable`], since the peer would read it as
/// several lines (the classic header-injection hole); so is a line longer
/// than `max_length`, which a peer with the same limit would refuse. The
/// delimiter is appended in place when the buffer has two spare bytes;
/// otherwise a short line is copied with it into one buffer and a long
/// line goes out as it is, followed by a two-byte buffer.
///
/// Threading: a plain `Send` value; one per connection.
///
/// ```
/// use wharf_codec::LineCodec;
/// use wharf_transport::Codec;
/// use wharf_transport::buf::ByteBuf;
///
/// let mut codec = LineCodec::new(80);
/// let mut input = ByteBuf::new();
/// input.extend_from_slice(b"HELO example.org\r\nQUI");
/// let mut lines = Vec::new();
/// codec.decode(&mut input, &mut lines).unwrap();
/// assert_eq!(lines.len(), 1);
/// assert_eq!(&lines[0][..], b"HELO example.org");
/// assert_eq!(&input[..], b"QUI"); // waits for the rest
/// ```
#[derive(Debug, Clone)]
pub struct LineCodec {
    max_length: usize,
    lenient: bool,
    strip_delimiter: bool,
    /// Bytes at the front of the input already searched for `\n` (none was
    /// there). The input only grows at the back between calls.
    pub(crate) scanned: usize,
}

impl LineCodec {
    /// A strict codec (lines end with `\r\n` only) for lines of at most
    /// `max_length` bytes, delivered without their delimiter.
    pub fn new(max_length: usize) -> LineCodec {
        LineCodec {
            max_length,
            lenient: false,
            strip_delimiter: true,
            scanned: 0,
        }
    }

    /// Also accepts a bare `\n` as the end of a line, and delivers the
    /// bytes left at end of input as a last line.
    pub fn lenient(mut self) -> LineCodec {
        self.lenient = true;
        self
    }

    /// Delivers each line with its delimiter (`\r\n`, or `\n` when lenient
    /// and that is what ended it).
    pub fn keep_delimiter(mut self) -> LineCodec {
        self.strip_delimiter = false;
        self
    }

    /// The longest line accepted, without its delimiter.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Whether a bare `\n` ends a line too.
    pub fn is_lenient(&self) -> bool {
        self.lenient
    }

    /// Whether lines are delivered without their delimiter.
    pub fn strips_delimiter(&self) -> bool {
        self.strip_delimiter
    }

    /// Takes the next complete line off the front of `input`, if there is
    /// one.
    fn next_line(&mut self, input: &mut ByteBuf) -> Result<Option<ByteBuf>, CodecError> {
        let start = self.scanned.min(input.len());
        let found = input
            .get(start..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'));
        let Some(pos) = found else {
            self.scanned = input.len();
            // A `\r` at the very end may be the first half of the
            // delimiter; everything else is already part of the line.
            let pending = input.strip_suffix(b"\r").map_or(input.len(), <[u8]>::len);
            self.check_length(pending)?;
            return Ok(None);
        };
        self.scanned = 0;
        // `pos < input.len() - start`: no overflow.
        let newline = start + pos;
        let before = input.get(..newline).unwrap_or_default();
        let (content, delimiter) = match before.strip_suffix(b"\r") {
            Some(line) => (line.len(), CRLF.len()),
            None => (newline, 1),
        };
        // Length first, so that the error does not depend on how the bytes
        // were split into reads (see the pending check above).
        self.check_length(content)?;
        if delimiter == 1 && !self.lenient {
            return Err(CodecError::Malformed(format!(
                "line ended by a bare \\n after {content} bytes (expected \\r\\n)"
            )));
        }
        if self.strip_delimiter {
            let line = input.split_to(content);
            input.skip(delimiter);
            Ok(Some(line))
        } else {
            Ok(Some(input.split_to(newline + 1)))
        }
    }

    /// `TooLong` if a line of `length` bytes is over the limit.
    fn check_length(&self, length: usize) -> Result<(), CodecError> {
        if length > self.max_length {
            Err(CodecError::TooLong {
                limit: self.max_length,
                length,
            })
        } else {
            Ok(())
        }
    }

    /// Decodes every complete line; on error, forgets how far it searched
    /// (the channel drops the input).
    fn decode_lines(
        &mut self,
        input: &mut ByteBuf,
        out: &mut Vec<ByteBuf>,
    ) -> Result<(), CodecError> {
        loop {
            match self.next_line(input) {
                Ok(Some(line)) => out.push(line),
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.scanned = 0;
                    return Err(e);
                }
            }
        }
    }

    /// The encoder, writing to any sink (see [`Codec::encode`]).
    pub(crate) fn encode_into(
        &mut self,
        line: ByteBuf,
        out: &mut impl Sink,
    ) -> Result<(), CodecError> {
        if line.len() > self.max_length {
            return Err(CodecError::Unencodable(format!(
                "a line of {} bytes exceeds the limit of {}",
                line.len(),
                self.max_length
            )));
        }
        if let Some(at) = line.iter().position(|&b| b == b'\n') {
            return Err(CodecError::Unencodable(format!(
                "a line cannot contain \\n (found at byte {at})"
            )));
        }
        push_with_suffix(out, line, CRLF);
        Ok(())
    }
}

impl Codec for LineCodec {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn decode(&mut self, input: &mut ByteBuf, out: &mut Vec<ByteBuf>) -> Result<(), CodecError> {
        self.decode_lines(input, out)
    }

    fn decode_eof(
        &mut self,
        input: &mut ByteBuf,
        out: &mut Vec<ByteBuf>,
    ) -> Result<(), CodecError> {
        self.decode_lines(input, out)?;
        self.scanned = 0;
        if input.is_empty() {
            return Ok(());
        }
        if !self.lenient {
            return Err(CodecError::Truncated {
                remaining: input.len(),
            });
        }
        self.check_length(input.len())?;
        out.push(input.split());
        Ok(())
    }

    fn encode(&mut self, line: ByteBuf, out: &mut Encoded) -> Result<(), CodecError> {
        self.encode_into(line, out)
    }

    /// The line and its `\r\n`.
    fn message_size(line: &ByteBuf) -> usize {
        line.len().saturating_add(CRLF.len())
    }
}
