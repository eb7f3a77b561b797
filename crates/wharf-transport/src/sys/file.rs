//! Moving file bytes to a socket: `sendfile`, `splice` through a pipe,
//! writes from a memory map, and the descriptors these need.
//!
//! Each function makes one system call and returns what it moved; `Ok(0)`
//! from a call that reads the file means the file ended.

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags};

/// Most bytes `sendfile` moves in one call (Linux caps it here: files over
/// 2 GiB are sent in several calls).
pub(crate) const SENDFILE_MAX: usize = 0x7fff_f000;

/// `sendfile(2)` from `file` at `*offset` to `socket`, at most `count`
/// bytes; advances `*offset` by what was sent.
pub(crate) fn sendfile(
    socket: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: &mut i64,
    count: usize,
) -> io::Result<usize> {
    nix::sys::sendfile::sendfile64(socket, file, Some(offset), count.min(SENDFILE_MAX))
        .map_err(io::Error::from)
}

/// A non-blocking pipe for `splice`.
#[derive(Debug)]
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

/// Size asked for the pipe: 1 MiB moves a large file in fewer calls
/// (the kernel may grant less; 64 KiB is the default).
const PIPE_SIZE: i32 = 1 << 20;

impl Pipe {
    pub(crate) fn new() -> io::Result<Pipe> {
        Pipe::with_size(PIPE_SIZE as usize).map(|(pipe, _)| pipe)
    }

    /// A pipe of about `size` bytes (`F_SETPIPE_SZ`, best effort: an
    /// unprivileged process past its pipe quota keeps the default); returns
    /// it with the capacity the kernel granted (`F_GETPIPE_SZ`).
    pub(crate) fn with_size(size: usize) -> io::Result<(Pipe, usize)> {
        let (read, write) =
            nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io::Error::from)?;
        let asked = i32::try_from(size).unwrap_or(i32::MAX);
        let _ = nix::fcntl::fcntl(&write, FcntlArg::F_SETPIPE_SZ(asked));
        let capacity = nix::fcntl::fcntl(&write, FcntlArg::F_GETPIPE_SZ)
            .map_or(64 << 10, |n| usize::try_from(n).unwrap_or(64 << 10));
        Ok((Pipe { read, write }, capacity))
    }

    /// `splice(2)` from the stream socket `socket` into the pipe, at most
    /// `len` bytes; `Ok(0)` is the end of the socket's input.
    pub(crate) fn fill_from_socket(&self, socket: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        nix::fcntl::splice(
            socket,
            None,
            &self.write,
            None,
            len,
            SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK,
        )
        .map_err(io::Error::from)
    }

    /// Reads bytes out of the pipe into `buf` (bytes that must be copied
    /// after all: a layer such as TLS changes them on the way out).
    pub(crate) fn read_into(&self, buf: &mut [u8]) -> io::Result<usize> {
        nix::unistd::read(&self.read, buf).map_err(io::Error::from)
    }

    /// `splice(2)` from `file` at `*offset` into the pipe.
    pub(crate) fn fill_from(
        &self,
        file: BorrowedFd<'_>,
        offset: &mut i64,
        len: usize,
    ) -> io::Result<usize> {
        nix::fcntl::splice(
            file,
            Some(offset),
            &self.write,
            None,
            len,
            SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK,
        )
        .map_err(io::Error::from)
    }

    /// `splice(2)` from the pipe into `file` at `*offset` (advanced by what
    /// was written). The write to the file blocks as a `write` would (page
    /// cache), the pipe side does not.
    pub(crate) fn drain_to_file(
        &self,
        file: BorrowedFd<'_>,
        offset: &mut i64,
        len: usize,
    ) -> io::Result<usize> {
        nix::fcntl::splice(
            &self.read,
            None,
            file,
            Some(offset),
            len,
            SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK,
        )
        .map_err(io::Error::from)
    }

    /// `splice(2)` from the pipe into `socket`. `more` says that more data
    /// follows at once (`SPLICE_F_MORE`, like `MSG_MORE`): the socket may
    /// hold back a partial segment. It must be off for the last bytes, or
    /// they wait for the cork to time out.
    pub(crate) fn drain_to(
        &self,
        socket: BorrowedFd<'_>,
        len: usize,
        more: bool,
    ) -> io::Result<usize> {
        let mut flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
        if more {
            flags |= SpliceFFlags::SPLICE_F_MORE;
        }
        nix::fcntl::splice(&self.read, None, socket, None, len, flags).map_err(io::Error::from)
    }
}

/// `send(2)` of `len` bytes at `ptr` (inside a file mapping) to `socket`,
/// with `MSG_NOSIGNAL` (a peer that has gone is `EPIPE`, not `SIGPIPE`).
/// Used through [`MapWindow::write_to`].
///
/// The mapping is never read in user space: the kernel copies from it, and
/// if the file shrank under the mapping the copy fails with `EFAULT`
/// instead of raising `SIGBUS` in this process.
///
/// # Safety
///
/// `ptr..ptr + len` must lie inside a live mapping.
unsafe fn write_from_mapping(
    socket: BorrowedFd<'_>,
    ptr: *const u8,
    len: usize,
) -> io::Result<usize> {
    // SAFETY: the caller guarantees the range is mapped for the duration of
    // the call; send(2) only reads it, and reports a vanished page as EFAULT.
    let n = unsafe { libc::send(socket.as_raw_fd(), ptr.cast(), len, libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Reopens `file` with `O_DIRECT` (through `/proc/self/fd`), for reads that
/// bypass the page cache. Fails where the file system refuses `O_DIRECT`.
pub(crate) fn reopen_direct(file: &File) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(format!("/proc/self/fd/{}", file.as_fd().as_raw_fd()))
}

/// The file's current length.
pub(crate) fn file_len(file: &File) -> io::Result<u64> {
    Ok(file.metadata()?.len())
}

/// A window of a file mapped read-only, for `mmap` + `write` and for the
/// small regions of a [`FileMap`](crate::FileMap). A raw mapping: no Rust
/// slice is ever made of it, since a page past the end of a file that
/// shrank faults when read; only the kernel reads it (see
/// `write_from_mapping`).
#[derive(Debug)]
pub(crate) struct MapWindow {
    map: memmap2::MmapRaw,
    /// File offset of the first mapped byte (page aligned).
    start: u64,
}

impl MapWindow {
    /// Maps `len` bytes of `file` from `start` (a multiple of the page
    /// size).
    pub(crate) fn map(file: &File, start: u64, len: usize) -> io::Result<MapWindow> {
        let map = memmap2::MmapOptions::new()
            .offset(start)
            .len(len)
            .map_raw_read_only(file)?;
        Ok(MapWindow { map, start })
    }

    /// Whether the window holds the byte at file offset `pos`.
    pub(crate) fn covers(&self, pos: u64) -> bool {
        pos >= self.start && pos < self.start + self.map.len() as u64
    }

    /// Bytes of the window from file offset `pos` on.
    pub(crate) fn available(&self, pos: u64) -> usize {
        if self.covers(pos) {
            (self.start + self.map.len() as u64 - pos) as usize
        } else {
            0
        }
    }

    /// `len` bytes from file offset `pos` as an iovec, without making a
    /// Rust reference to them (a page past the end of a file that shrank
    /// would fault on a read); `None` unless the window holds them all.
    pub(crate) fn io_slice(&self, pos: u64, len: usize) -> Option<IoSlice<'_>> {
        if len == 0 || self.available(pos) < len {
            return None;
        }
        let iov = libc::iovec {
            iov_base: self.map.as_ptr().wrapping_add((pos - self.start) as usize) as *mut _,
            iov_len: len,
        };
        // SAFETY: `IoSlice` is documented to be ABI-compatible with `iovec`
        // on Unix; it holds the pointer and length only (no reference), and
        // its lifetime is tied to `&self`, which keeps the mapping alive.
        // The kernel alone reads through it (see `write_from_mapping`).
        Some(unsafe { std::mem::transmute::<libc::iovec, IoSlice<'_>>(iov) })
    }

    /// Writes up to `len` bytes from file offset `pos` to `socket`.
    pub(crate) fn write_to(
        &self,
        socket: BorrowedFd<'_>,
        pos: u64,
        len: usize,
    ) -> io::Result<usize> {
        let len = len.min(self.available(pos));
        if len == 0 {
            return Ok(0);
        }
        let ptr = self.map.as_ptr().wrapping_add((pos - self.start) as usize);
        // SAFETY: `ptr..ptr + len` lies inside the live mapping, checked by
        // `available` above.
        unsafe { write_from_mapping(socket, ptr, len) }
    }
}

/// The page size, for mapping offsets.
pub(crate) fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |n| n as u64)
}
