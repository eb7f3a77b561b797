//! Socket writes that `std` and `mio` do not offer: a gathering send that
//! tells the kernel more data follows at once.

use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;

use nix::sys::socket::{MsgFlags, sendmsg};

/// Writes `iov` to the connected socket `socket` like `writev`, passing
/// `MSG_MORE`: the kernel holds a last partial segment back for the data
/// that follows (a file region sent right after the response head), so
/// head and body leave in one packet, as `TCP_CORK` would do without its
/// two extra `setsockopt` calls. The next send without the flag pushes
/// everything out. `MSG_NOSIGNAL` turns a write to a reset peer into
/// `EPIPE` instead of `SIGPIPE`.
pub(crate) fn send_vectored_more(socket: &impl AsRawFd, iov: &[IoSlice<'_>]) -> io::Result<usize> {
    // nix has no name for MSG_MORE; the bit is Linux's own.
    let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::from_bits_retain(libc::MSG_MORE);
    loop {
        match sendmsg::<()>(socket.as_raw_fd(), iov, &[], flags, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}
