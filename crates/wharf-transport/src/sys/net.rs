//! Socket calls that `std` and `mio` do not offer: a gathering send that
//! never raises `SIGPIPE` and can tell the kernel more data follows at
//! once, and how much of what was sent the peer has not acknowledged.

use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;

use nix::sys::socket::{MsgFlags, send, sendmsg};

/// Writes `iov` to the connected socket `socket` like `writev` (one slice
/// like `write`), but with `MSG_NOSIGNAL`: a write to a peer that has gone
/// fails with `EPIPE` instead of raising `SIGPIPE` in the process.
///
/// With `more`, also `MSG_MORE`: the kernel holds a last partial segment
/// back for the data that follows (a file region sent right after the
/// response head), so head and body leave in one packet, as `TCP_CORK`
/// would do without its two extra `setsockopt` calls. The next send
/// without the flag pushes everything out.
pub(crate) fn send_vectored(
    socket: &impl AsRawFd,
    iov: &[IoSlice<'_>],
    more: bool,
) -> io::Result<usize> {
    let mut flags = MsgFlags::MSG_NOSIGNAL;
    if more {
        // nix has no name for MSG_MORE; the bit is Linux's own.
        flags |= MsgFlags::from_bits_retain(libc::MSG_MORE);
    }
    loop {
        let sent = match iov {
            [one] => send(socket.as_raw_fd(), one, flags),
            _ => sendmsg::<()>(socket.as_raw_fd(), iov, &[], flags, None),
        };
        match sent {
            Err(nix::errno::Errno::EINTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

/// Bytes written to the connected TCP socket `socket` that the peer has
/// not acknowledged yet (`SIOCOUTQ`: sent and unacknowledged, plus not
/// yet sent). Zero means the peer's kernel holds everything written, so
/// closing now cannot lose it to a reset.
pub(crate) fn unacknowledged(socket: &impl AsRawFd) -> io::Result<usize> {
    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ) writes one `int` through the pointer,
    // which points at a live, writable `c_int`; the descriptor is borrowed
    // for the call only.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(queued).unwrap_or(0))
}
