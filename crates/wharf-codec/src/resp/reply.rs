//! What a RESP2 server writes: [`Reply`] and its encoding. Small replies
//! and the framing of large values are copied into one buffer; values
//! over the copy limit go out as the shared bytes they are, and constant
//! replies (`+OK`, `+PONG`, `$-1`, `:0`, `:1`) cost no buffer at all.

use std::borrow::Cow;

use wharf_buf::FrozenBuf;

use crate::sink::{COPY_LIMIT, Pieces, Sink};

/// One RESP2 reply, as a Redis server sends it.
///
/// Simple strings and errors are bytes (RESP is binary: Redis echoes what
/// a client sent in its error messages); a `\r` or `\n` in them is sent as
/// a space, as Redis does for its formatted errors, so that a reply can
/// never break the framing. An error's text starts with its code:
/// `Reply::error("ERR syntax error")` goes out as `-ERR syntax error\r\n`.
///
/// Threading: a plain `Send` value.
///
/// ```
/// use wharf_codec::resp::Reply;
/// use wharf_transport::buf::FrozenBuf;
///
/// let reply = Reply::Array(vec![
///     Reply::bulk(FrozenBuf::from_static(b"value")),
///     Reply::Null,
///     Reply::Integer(-7),
/// ]);
/// assert_eq!(reply.to_bytes(), b"*3\r\n$5\r\nvalue\r\n$-1\r\n:-7\r\n");
/// assert_eq!(Reply::ok().to_bytes(), b"+OK\r\n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+text\r\n`.
    Simple(Cow<'static, [u8]>),
    /// `-text\r\n`; the text starts with the error code (`ERR`, `WRONGTYPE`).
    Error(Cow<'static, [u8]>),
    /// `:n\r\n`.
    Integer(i64),
    /// `$len\r\nbytes\r\n`: a binary-safe string, sent without a copy when
    /// it is over [`COPY_LIMIT`](crate::sink::COPY_LIMIT).
    Bulk(FrozenBuf),
    /// `$-1\r\n`: the null bulk string (a missing key).
    Null,
    /// `*-1\r\n`: the null array.
    NullArray,
    /// `*n\r\n` and the elements.
    Array(Vec<Reply>),
    /// Bytes that already are RESP, sent as they are (a constant reply,
    /// or one encoded before).
    Encoded(FrozenBuf),
}

/// `n` in decimal, without allocating.
struct Decimal {
    digits: [u8; 20],
    len: usize,
}

impl Decimal {
    /// Digits written from the back by hand: `write!` goes through the
    /// formatting machinery, a measurable part of a small `GET`'s reply.
    fn new(n: i64) -> Decimal {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut magnitude = n.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (magnitude % 10) as u8;
            magnitude /= 10;
            if magnitude == 0 {
                break;
            }
        }
        if n < 0 {
            at -= 1;
            digits[at] = b'-';
        }
        digits.copy_within(at.., 0);
        Decimal {
            digits,
            len: digits.len() - at,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        self.digits.get(..self.len).unwrap_or_default()
    }
}

/// Bytes of `n` in decimal.
fn decimal_len(n: i64) -> usize {
    Decimal::new(n).len
}

/// `len` as an `i64` for a header (lengths are far below `i64::MAX`).
fn header_number(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

impl Reply {
    /// `+OK`.
    pub const fn ok() -> Reply {
        Reply::Encoded(FrozenBuf::from_static(b"+OK\r\n"))
    }

    /// `+PONG`.
    pub const fn pong() -> Reply {
        Reply::Encoded(FrozenBuf::from_static(b"+PONG\r\n"))
    }

    /// A simple string.
    pub fn simple(text: impl Into<Vec<u8>>) -> Reply {
        Reply::Simple(Cow::Owned(text.into()))
    }

    /// A simple string that is a constant: no allocation to build it.
    pub const fn static_simple(text: &'static str) -> Reply {
        Reply::Simple(Cow::Borrowed(text.as_bytes()))
    }

    /// An error; `text` starts with its code (`"ERR syntax error"`).
    pub fn error(text: impl Into<Vec<u8>>) -> Reply {
        Reply::Error(Cow::Owned(text.into()))
    }

    /// An error that is a constant: no allocation to build it.
    pub const fn static_error(text: &'static str) -> Reply {
        Reply::Error(Cow::Borrowed(text.as_bytes()))
    }

    /// A bulk string holding `value` (shared, not copied).
    pub fn bulk(value: impl Into<FrozenBuf>) -> Reply {
        Reply::Bulk(value.into())
    }

    /// An integer reply; `:0` and `:1`, the commonest, are constants.
    pub const fn integer(n: i64) -> Reply {
        match n {
            0 => Reply::Encoded(FrozenBuf::from_static(b":0\r\n")),
            1 => Reply::Encoded(FrozenBuf::from_static(b":1\r\n")),
            n => Reply::Integer(n),
        }
    }

    /// The bytes this reply is sent as (a copy; for tests and tools).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.append_to(&mut out);
        out
    }

    /// How many bytes the reply takes on the wire.
    pub fn encoded_len(&self) -> usize {
        self.sizes().0
    }

    /// The reply's size on the wire, and the part of it that is copied
    /// (everything but bulk values over the copy limit and encoded bytes
    /// over it).
    fn sizes(&self) -> (usize, usize) {
        let framed = |len: usize| 3 + decimal_len(header_number(len)) + 2;
        match self {
            Reply::Simple(text) | Reply::Error(text) => {
                let n = 1 + text.len() + 2;
                (n, n)
            }
            Reply::Integer(n) => {
                let n = 1 + decimal_len(*n) + 2;
                (n, n)
            }
            Reply::Bulk(value) => {
                let frame = framed(value.len());
                let copied = if value.len() <= COPY_LIMIT {
                    value.len()
                } else {
                    0
                };
                (frame + value.len(), frame + copied)
            }
            Reply::Null | Reply::NullArray => (5, 5),
            Reply::Array(items) => {
                let header = 1 + decimal_len(header_number(items.len())) + 2;
                items.iter().fold((header, header), |(all, copied), item| {
                    let (a, c) = item.sizes();
                    (all.saturating_add(a), copied.saturating_add(c))
                })
            }
            Reply::Encoded(bytes) => {
                let copied = if bytes.len() <= COPY_LIMIT {
                    bytes.len()
                } else {
                    0
                };
                (bytes.len(), copied)
            }
        }
    }

    /// Appends the wire bytes to `out` (the reference encoding the sink
    /// encoding is tested against).
    fn append_to(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(text) => line(out, b'+', text),
            Reply::Error(text) => line(out, b'-', text),
            Reply::Integer(n) => number_line(out, b':', *n),
            Reply::Bulk(value) => {
                number_line(out, b'$', header_number(value.len()));
                out.extend_from_slice(value);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Null => out.extend_from_slice(b"$-1\r\n"),
            Reply::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(items) => {
                number_line(out, b'*', header_number(items.len()));
                for item in items {
                    item.append_to(out);
                }
            }
            Reply::Encoded(bytes) => out.extend_from_slice(bytes),
        }
    }

    /// Encodes the reply into `out`: one buffer for everything small,
    /// large values queued as they are in between.
    pub fn encode_into<S: Sink + ?Sized>(self, out: &mut S) {
        if let Reply::Encoded(bytes) = self {
            // A constant or pre-encoded reply goes as it is: no copy.
            out.push_frozen(bytes);
            return;
        }
        let (_, copied) = self.sizes();
        let mut pieces = Pieces::new(out, copied);
        self.write_pieces(&mut pieces);
        pieces.finish();
    }

    fn write_pieces<S: Sink + ?Sized>(self, pieces: &mut Pieces<'_, S>) {
        match self {
            Reply::Simple(text) => text_piece(pieces, b'+', &text),
            Reply::Error(text) => text_piece(pieces, b'-', &text),
            Reply::Integer(n) => number_piece(pieces, b':', n),
            Reply::Bulk(value) => {
                number_piece(pieces, b'$', header_number(value.len()));
                pieces.frozen(value);
                pieces.copy(b"\r\n");
            }
            Reply::Null => pieces.copy(b"$-1\r\n"),
            Reply::NullArray => pieces.copy(b"*-1\r\n"),
            Reply::Array(items) => {
                number_piece(pieces, b'*', header_number(items.len()));
                for item in items {
                    item.write_pieces(pieces);
                }
            }
            Reply::Encoded(bytes) => pieces.frozen(bytes),
        }
    }
}

/// `prefix text \r\n` into the pieces.
fn text_piece<S: Sink + ?Sized>(pieces: &mut Pieces<'_, S>, prefix: u8, text: &[u8]) {
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        let mut cleaned = Vec::with_capacity(text.len() + 3);
        line(&mut cleaned, prefix, text);
        pieces.copy(&cleaned);
    } else {
        pieces.copy(&[prefix]);
        pieces.copy(text);
        pieces.copy(b"\r\n");
    }
}

/// `prefix n \r\n` into the pieces.
fn number_piece<S: Sink + ?Sized>(pieces: &mut Pieces<'_, S>, prefix: u8, n: i64) {
    pieces.copy(&[prefix]);
    pieces.copy(Decimal::new(n).as_bytes());
    pieces.copy(b"\r\n");
}

/// `prefix text \r\n`, with any `\r` or `\n` in the text sent as a space.
fn line(out: &mut Vec<u8>, prefix: u8, text: &[u8]) {
    out.push(prefix);
    out.extend(
        text.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// `prefix n \r\n`.
fn number_line(out: &mut Vec<u8>, prefix: u8, n: i64) {
    out.push(prefix);
    out.extend_from_slice(Decimal::new(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}
