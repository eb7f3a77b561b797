//! The RESP codec: requests decoded in every form and however they are cut
//! into reads, replies encoded byte for byte, Redis's error texts, the
//! reservation policy for large bulks, and hostile input.

use wharf_buf::ByteBuf;
use wharf_transport::{Codec, CodecError};

use super::buf;
use crate::resp::{RespCodec, RespLimits};

mod decode;
mod encode;
mod errors;
mod hostile;

/// What a connection's handler would have seen: each command's arguments,
/// then the error that closed the connection, if any.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) commands: Vec<Vec<Vec<u8>>>,
    pub(crate) error: Option<CodecError>,
}

impl Seen {
    #[track_caller]
    pub(crate) fn ok(self) -> Vec<Vec<Vec<u8>>> {
        assert_eq!(self.error, None, "after commands {:?}", self.commands);
        self.commands
    }
}

/// The most a peer may make the channel reserve for a bulk when `arrived`
/// bytes of it are in: the documented policy's bound.
fn reserve_bound(arrived: usize) -> usize {
    (64 << 10).max(16 * arrived + 16)
}

/// Runs `chunks` through a codec with `limits` as the transport does: a
/// read becomes the cumulation when nothing is pending, else is appended;
/// after each decode the size hint is honoured (room reserved). Checks
/// that the input never grows and that the hint keeps to the policy.
pub(crate) fn run<'a>(limits: RespLimits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Seen {
    let mut codec = RespCodec::with_limits(limits);
    let mut cumulation = ByteBuf::new();
    let mut decoded = Vec::new();
    let mut commands = Vec::new();
    let mut take = |decoded: &mut Vec<crate::resp::Command>| {
        commands.extend(
            decoded
                .drain(..)
                .map(|c| c.args().iter().map(|a| a.to_vec()).collect::<Vec<_>>()),
        )
    };
    for chunk in chunks {
        if chunk.is_empty() {
            continue;
        }
        if cumulation.is_empty() && cumulation.capacity() < chunk.len() {
            cumulation = buf(chunk);
        } else {
            cumulation.extend_from_slice(chunk);
        }
        let before = cumulation.len();
        let result = codec.decode(&mut cumulation, &mut decoded);
        assert!(cumulation.len() <= before, "the input grew");
        take(&mut decoded);
        if let Err(error) = result {
            return Seen {
                commands,
                error: Some(error),
            };
        }
        match codec.size_hint(&cumulation) {
            Some(total) => {
                assert!(
                    total <= reserve_bound(cumulation.len()),
                    "a hint of {total} with {} bytes in",
                    cumulation.len()
                );
                if total > cumulation.len() {
                    cumulation.reserve(total - cumulation.len());
                }
            }
            None if cumulation.is_empty() => cumulation = ByteBuf::new(),
            None => {}
        }
    }
    let result = codec.decode_eof(&mut cumulation, &mut decoded);
    take(&mut decoded);
    Seen {
        commands,
        error: result.err(),
    }
}

/// `data` in one read, one byte per read and in reads of `sizes`, with
/// the default limits; asserts that the three agree (the error's kind
/// and text too) and returns what the single read gave.
#[track_caller]
pub(crate) fn run_three_ways(limits: RespLimits, data: &[u8], sizes: &[usize]) -> Seen {
    let whole = run(limits, [data]);
    let bytes = run(limits, super::bytewise(data));
    let random = run(limits, super::chunked(data, sizes));
    assert_eq!(bytes, whole, "one byte per read vs one read");
    assert_eq!(random, whole, "reads of {sizes:?} vs one read");
    whole
}

/// Decodes `data` three ways with the default limits.
#[track_caller]
pub(crate) fn decode(data: &[u8]) -> Seen {
    run_three_ways(RespLimits::default(), data, &[3, 1, 7, 64])
}

/// An array request of `args`, as clients send it.
pub(crate) fn request(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// `args` as owned vectors, to compare with what was decoded.
pub(crate) fn args(args: &[&[u8]]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.to_vec()).collect()
}
