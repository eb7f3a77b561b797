//! The request parser: Redis's `processMultibulkBuffer` and
//! `processInlineBuffer` as a state machine over the cumulation, with
//! Redis's checks in Redis's order and Redis's texts.
//!
//! Headers and bulks are consumed as soon as they are complete (a bulk is
//! `split_to` off the input, so it shares the memory it was read into);
//! the state remembers the arguments gathered so far and the length of the
//! bulk being received. So while a large bulk arrives, the input holds
//! nothing but that bulk, and [`Decoder::size_hint`] can have the channel
//! reserve exactly its size once (see the policy there).

use std::mem::size_of;

use wharf_buf::ByteBuf;
use wharf_transport::CodecError;

use super::text::{ends_word, is_space, parse_integer, split_args};
use super::{Args, Command, RespLimits};

/// Room reserved for a bulk before any of it has arrived, and the least
/// step while its size is not yet trusted: one maximal read buffer.
pub(crate) const RESERVE_AHEAD: usize = 64 << 10;

/// A bulk is reserved whole once this fraction of it (1/16) has arrived;
/// before that the reservation doubles with what arrives.
pub(crate) const TRUST_DIVISOR: usize = 16;

/// The most arguments a request may have to be parsed in one go (see
/// [`Decoder::whole_request`]), and the longest header line it reads.
const WHOLE_MAX_ARGS: usize = 8;
const WHOLE_MAX_LINE: usize = 32;

/// What one argument costs besides its bytes (its `ByteBuf`), counted
/// against [`RespLimits::max_request_bytes`].
const ARG_OVERHEAD: usize = size_of::<ByteBuf>();

/// Where the parser is between calls.
#[derive(Debug, Default)]
enum State {
    /// The next byte starts a request.
    #[default]
    Idle,
    /// Inside a multibulk request.
    Args {
        /// Bulks still to come, the one being received included.
        remaining: usize,
        /// The bulks received.
        args: Args,
        /// The length of the bulk being received, once its header is read.
        bulk: Option<usize>,
        /// Bytes the request holds so far (with `ARG_OVERHEAD` per bulk).
        held: usize,
    },
}

/// What one step of parsing did.
enum Step {
    /// More input is needed.
    Wait,
    /// Progress without a command (a header, a bulk, an empty request).
    Continue,
    /// A complete command.
    Done(Command),
}

/// The parser of one connection's requests.
#[derive(Debug)]
pub(crate) struct Decoder {
    pub(crate) limits: RespLimits,
    state: State,
    /// Bytes at the front of the input already searched for the end of the
    /// current line (none was there); the input only grows at the back
    /// between calls.
    scanned: usize,
}

/// A Redis protocol error, as `CodecError::Malformed` with Redis's text.
fn protocol_error(what: &str) -> CodecError {
    CodecError::Malformed(format!("Protocol error: {what}"))
}

impl Decoder {
    pub(crate) fn new(limits: RespLimits) -> Decoder {
        Decoder {
            limits,
            state: State::Idle,
            scanned: 0,
        }
    }

    /// Decodes every complete command; on error, starts over (the channel
    /// drops the input and calls no more).
    pub(crate) fn decode(
        &mut self,
        input: &mut ByteBuf,
        out: &mut Vec<Command>,
    ) -> Result<(), CodecError> {
        loop {
            if !self.in_request()
                && input.first() == Some(&b'*')
                && let Some(command) = self.whole_request(input)
            {
                out.push(command);
                continue;
            }
            match self.step(input) {
                Ok(Step::Wait) => return Ok(()),
                Ok(Step::Continue) => {}
                Ok(Step::Done(command)) => out.push(command),
                Err(e) => {
                    self.reset();
                    return Err(e);
                }
            }
        }
    }

    /// Forgets the request in progress.
    pub(crate) fn reset(&mut self) {
        self.state = State::Idle;
        self.scanned = 0;
    }

    /// Whether a request has begun and not ended.
    pub(crate) fn in_request(&self) -> bool {
        matches!(self.state, State::Args { .. })
    }

    fn step(&mut self, input: &mut ByteBuf) -> Result<Step, CodecError> {
        if self.in_request() {
            return self.bulk(input);
        }
        match input.first() {
            None => Ok(Step::Wait),
            Some(b'*') => self.multibulk_header(input),
            Some(_) => self.inline(input),
        }
    }

    /// A small multibulk request that has arrived whole (what pipelining
    /// clients send), parsed in one pass without the step-by-step state:
    /// `None` unless every check of the steps would pass, so that the
    /// steps, taken instead, give the same command or Redis's error. It
    /// reads at most [`WHOLE_MAX_ARGS`] header lines of at most
    /// [`WHOLE_MAX_LINE`] bytes and is tried once per request (an
    /// unfinished one is then taken over by the steps), so a peer cannot
    /// make it scan the same bytes again and again.
    fn whole_request(&mut self, input: &mut ByteBuf) -> Option<Command> {
        let bytes: &[u8] = input;
        let limits = self.limits;
        // A header line starting at `from`: the end of its number, and
        // where what follows it starts (one byte after the `\r`).
        let line = |from: usize| -> Option<(usize, usize)> {
            let window = WHOLE_MAX_LINE.min(limits.max_inline_len.saturating_add(1));
            let rest = bytes.get(from..)?;
            let cr = rest
                .get(..window.min(rest.len()))?
                .iter()
                .position(|&b| b == b'\r')?;
            let next = from + cr + 2;
            (cr <= limits.max_inline_len && next <= bytes.len()).then_some((from + cr, next))
        };
        let (cr, mut at) = line(0)?;
        let count = usize::try_from(parse_integer(bytes.get(1..cr)?)?).ok()?;
        if count == 0 || count > WHOLE_MAX_ARGS || count > limits.max_multibulk_len {
            return None;
        }
        let mut bulks = [(0, 0); WHOLE_MAX_ARGS];
        let mut held = 0usize;
        for bulk in bulks.iter_mut().take(count) {
            if bytes.get(at) != Some(&b'$') {
                return None;
            }
            let (cr, next) = line(at)?;
            let len = usize::try_from(parse_integer(bytes.get(at + 1..cr)?)?).ok()?;
            held = held.saturating_add(len).saturating_add(ARG_OVERHEAD);
            let end = next.checked_add(len)?.checked_add(2)?;
            if len > limits.max_bulk_len || held > limits.max_request_bytes || end > bytes.len() {
                return None;
            }
            *bulk = (next, len);
            at = end;
        }
        let mut args = Args::with_capacity(count);
        let mut taken = 0;
        for &(start, len) in bulks.iter().take(count) {
            input.skip(start - taken);
            args.push(input.split_to(len));
            taken = start + len;
        }
        input.skip(at - taken);
        self.scanned = 0;
        Some(Command::from_parts(args, false))
    }

    /// The position of the first `delimiter` in `input` (searching on from
    /// where the last call stopped), or `None` if it has not arrived. A
    /// line longer than the inline limit fails with `too_big`, whether or
    /// not its end has arrived, so that the outcome does not depend on how
    /// the bytes were cut into reads.
    fn find(
        &mut self,
        input: &[u8],
        delimiter: u8,
        too_big: &str,
    ) -> Result<Option<usize>, CodecError> {
        let start = self.scanned.min(input.len());
        let found = input
            .get(start..)
            .and_then(|rest| rest.iter().position(|&b| b == delimiter))
            .map(|i| start + i);
        let pending = found.unwrap_or(input.len());
        self.scanned = pending;
        if pending > self.limits.max_inline_len {
            return Err(protocol_error(too_big));
        }
        Ok(found)
    }

    /// A header line `<type><number>\r`, with one more byte after the `\r`
    /// (Redis skips it without looking): the number's bytes and the
    /// header's length, once it has arrived.
    fn header_line(
        &mut self,
        input: &[u8],
        too_big: &str,
    ) -> Result<Option<(usize, usize)>, CodecError> {
        match self.find(input, b'\r', too_big)? {
            Some(cr) if cr + 2 <= input.len() => {
                self.scanned = 0;
                Ok(Some((cr, cr + 2)))
            }
            _ => Ok(None),
        }
    }

    /// `*<count>\r\n`: the start of a multibulk request.
    fn multibulk_header(&mut self, input: &mut ByteBuf) -> Result<Step, CodecError> {
        let Some((cr, length)) = self.header_line(input, "too big mbulk count string")? else {
            return Ok(Step::Wait);
        };
        let count = input
            .get(1..cr)
            .and_then(parse_integer)
            .filter(|&n| n <= i64::from(i32::MAX))
            .ok_or_else(|| protocol_error("invalid multibulk length"))?;
        if count > 0 && count as u64 > self.limits.max_multibulk_len as u64 {
            return Err(protocol_error("invalid multibulk length"));
        }
        input.skip(length);
        let Ok(count) = usize::try_from(count) else {
            // Zero or negative: an empty request, skipped as Redis does.
            return Ok(Step::Continue);
        };
        if count == 0 {
            return Ok(Step::Continue);
        }
        self.state = State::Args {
            remaining: count,
            // As Redis: room for at most 1024 up front, growing as bulks
            // arrive, so a large announced count costs nothing until then.
            args: Args::with_capacity(count.min(1024)),
            bulk: None,
            held: 0,
        };
        Ok(Step::Continue)
    }

    /// A bulk header `$<len>\r\n` or a bulk's bytes and `\r\n`.
    fn bulk(&mut self, input: &mut ByteBuf) -> Result<Step, CodecError> {
        let State::Args { bulk: None, .. } = self.state else {
            return Ok(self.bulk_body(input));
        };
        let Some((cr, length)) = self.header_line(input, "too big bulk count string")? else {
            return Ok(Step::Wait);
        };
        let first = input.first().copied().unwrap_or(b'$');
        if first != b'$' {
            // Redis prints the byte as it is, newlines as spaces; a byte
            // over 0x7F is kept as the char of that code (Latin-1), which
            // `protocol_error_reply` turns back into the byte.
            let shown = match first {
                b'\r' | b'\n' => ' ',
                b => char::from(b),
            };
            return Err(protocol_error(&format!("expected '$', got '{shown}'")));
        }
        let len = input
            .get(1..cr)
            .and_then(parse_integer)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= self.limits.max_bulk_len)
            .ok_or_else(|| protocol_error("invalid bulk length"))?;
        let State::Args { bulk, held, .. } = &mut self.state else {
            return Ok(Step::Continue);
        };
        let would_hold = held.saturating_add(len).saturating_add(ARG_OVERHEAD);
        if would_hold > self.limits.max_request_bytes {
            return Err(CodecError::TooLong {
                limit: self.limits.max_request_bytes,
                length: would_hold,
            });
        }
        input.skip(length);
        *bulk = Some(len);
        Ok(Step::Continue)
    }

    /// The bytes of the bulk whose header was read, once they are all in.
    fn bulk_body(&mut self, input: &mut ByteBuf) -> Step {
        let State::Args {
            remaining,
            args,
            bulk,
            held,
        } = &mut self.state
        else {
            return Step::Continue;
        };
        let Some(len) = *bulk else {
            return Step::Continue;
        };
        if input.len() < len.saturating_add(2) {
            return Step::Wait;
        }
        args.push(input.split_to(len));
        // Redis skips the two bytes after a bulk without looking at them.
        input.skip(2);
        *held = held.saturating_add(len).saturating_add(ARG_OVERHEAD);
        *bulk = None;
        *remaining -= 1;
        if *remaining > 0 {
            return Step::Continue;
        }
        let args = std::mem::take(args);
        self.state = State::Idle;
        Step::Done(Command::from_parts(args, false))
    }

    /// An inline command: a line of arguments separated by blanks.
    fn inline(&mut self, input: &mut ByteBuf) -> Result<Step, CodecError> {
        let Some(newline) = self.find(input, b'\n', "too big inline request")? else {
            return Ok(Step::Wait);
        };
        self.scanned = 0;
        let line = input.get(..newline).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let args = if line.iter().any(|&b| matches!(b, b'"' | b'\'' | 0)) {
            let words =
                split_args(line).ok_or_else(|| protocol_error("unbalanced quotes in request"))?;
            let alloc = input.allocator();
            let args = words
                .iter()
                .map(|word| {
                    let mut arg = alloc.buffer(word.len());
                    arg.extend_from_slice(word);
                    arg
                })
                .collect();
            input.skip(newline + 1);
            args
        } else {
            let line_len = line.len();
            plain_words(input, line_len, newline + 1)
        };
        if args.is_empty() {
            return Ok(Step::Continue);
        }
        Ok(Step::Done(Command::from_parts(args, true)))
    }

    /// How many bytes the input must hold for the next step, while a bulk
    /// is being received; see [`RespCodec`](super::RespCodec#large-values)
    /// for the policy.
    pub(crate) fn size_hint(&self, input: &ByteBuf) -> Option<usize> {
        let State::Args {
            bulk: Some(len), ..
        } = self.state
        else {
            return None;
        };
        let whole = len.saturating_add(2);
        let arrived = input.len();
        if whole <= RESERVE_AHEAD || arrived >= whole / TRUST_DIVISOR {
            Some(whole)
        } else {
            Some(arrived.saturating_mul(2).max(RESERVE_AHEAD).min(whole))
        }
    }
}

/// The arguments of an inline line without quotes or NULs, which
/// `sdssplitargs` would return unchanged: views of the input (no copy, no
/// allocation), as the bulks of an array request are. The line is the
/// first `line_len` bytes of the input; `consumed` bytes (the line and its
/// end) are taken off it.
fn plain_words(input: &mut ByteBuf, line_len: usize, consumed: usize) -> Args {
    let mut args = Args::new();
    // Bytes of the line still at the front of the input.
    let mut left = line_len;
    loop {
        let line = input.get(..left).unwrap_or_default();
        let Some(start) = line.iter().position(|&b| !is_space(b)) else {
            break;
        };
        let end = line
            .get(start..)
            .unwrap_or_default()
            .iter()
            .position(|&b| ends_word(b))
            .map_or(left, |n| start + n);
        input.skip(start);
        args.push(input.split_to(end - start));
        left -= end;
    }
    input.skip(consumed - (line_len - left));
    args
}
