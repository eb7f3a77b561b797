//! The transfer strategies of a [`FileRegion`], one step each: sendfile,
//! splice through a pipe, a mapped window written out, and read + write.

use std::io::{self, IoSlice};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

use super::{CHUNK, FileRegion, Step, TransferCx, TransferStrategy, WINDOW};
use crate::channel::socket::Socket;
use crate::sys::file::{MapWindow, Pipe, file_len, page_size, sendfile};
use crate::sys::net::send_vectored;

impl FileRegion {
    pub(super) fn sendfile_step(
        &mut self,
        socket: &Socket,
        cx: &TransferCx<'_>,
    ) -> io::Result<Step> {
        let mut offset = i64::try_from(self.cursor())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset beyond i64"))?;
        match sendfile(
            socket.as_fd(),
            self.file.as_fd(),
            &mut offset,
            self.want(cx),
        ) {
            Ok(0) => Err(self.truncated()),
            Ok(n) => Ok(self.sent(n, TransferStrategy::Sendfile, 1, cx)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                cx.channel_stats.add(TransferStrategy::Sendfile, 0, 1);
                cx.loop_stats.add(TransferStrategy::Sendfile, 0, 1);
                Ok(Step::WouldBlock)
            }
            Err(e) => Err(e),
        }
    }

    pub(super) fn splice_step(
        &mut self,
        socket: &Socket,
        cx: &mut TransferCx<'_>,
    ) -> io::Result<Step> {
        let strategy = TransferStrategy::Splice;
        // Bytes left in the pipe by an earlier step go first.
        if let Some((pipe, in_pipe)) = self.pipe.take() {
            let more = self.remaining() > in_pipe as u64;
            return match pipe.drain_to(socket.as_fd(), in_pipe, more) {
                Ok(n) => {
                    self.keep_or_return_pipe(pipe, in_pipe - n, cx);
                    Ok(self.sent(n, strategy, 1, cx))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.pipe = Some((pipe, in_pipe));
                    Ok(Step::WouldBlock)
                }
                Err(e) => Err(e),
            };
        }
        let pipe = match cx.pipe.take() {
            Some(pipe) => pipe,
            None => Pipe::new()?,
        };
        let mut offset = i64::try_from(self.cursor())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset beyond i64"))?;
        let filled = match pipe.fill_from(self.file.as_fd(), &mut offset, self.want(cx)) {
            Ok(0) => {
                *cx.pipe = Some(pipe);
                return Err(self.truncated());
            }
            Ok(n) => n,
            Err(e) => {
                *cx.pipe = Some(pipe);
                return Err(e);
            }
        };
        let more = self.remaining() > filled as u64;
        match pipe.drain_to(socket.as_fd(), filled, more) {
            Ok(n) => {
                self.keep_or_return_pipe(pipe, filled - n, cx);
                Ok(self.sent(n, strategy, 2, cx))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // The bytes wait in the pipe, which this region keeps.
                self.pipe = Some((pipe, filled));
                cx.loop_stats.add(strategy, 0, 2);
                cx.channel_stats.add(strategy, 0, 2);
                Ok(Step::WouldBlock)
            }
            Err(e) => Err(e),
        }
    }

    /// Keeps a pipe that still holds bytes; gives an empty one back to the
    /// loop for the next region.
    pub(super) fn keep_or_return_pipe(&mut self, pipe: Pipe, left: usize, cx: &mut TransferCx<'_>) {
        if left > 0 {
            self.pipe = Some((pipe, left));
        } else if cx.pipe.is_none() {
            *cx.pipe = Some(pipe);
        }
    }

    pub(super) fn mmap_step(&mut self, socket: &Socket, cx: &TransferCx<'_>) -> io::Result<Step> {
        let strategy = TransferStrategy::MmapWrite;
        let pos = self.cursor();
        let mut syscalls = 1;
        if !self.map.as_ref().is_some_and(|m| m.covers(pos)) {
            self.map = None;
            // Never map past the end of the file: a short file fails here,
            // cleanly, instead of faulting later.
            let len = file_len(&self.file)?;
            if pos >= len {
                return Err(self.truncated());
            }
            let start = pos - pos % page_size();
            let end = (self.position + self.count).min(len).min(start + WINDOW);
            self.map = Some(MapWindow::map(&self.file, start, (end - start) as usize)?);
            syscalls += 1;
        }
        let Some(map) = &self.map else {
            return Err(io::Error::other("file window not mapped"));
        };
        match map.write_to(socket.as_fd(), pos, self.want(cx)) {
            Ok(0) => Err(self.truncated()),
            Ok(n) => Ok(self.sent(n, strategy, syscalls, cx)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Step::WouldBlock),
            // The file shrank under the mapping.
            Err(e) if e.raw_os_error() == Some(libc::EFAULT) => Err(self.truncated()),
            Err(e) => Err(e),
        }
    }

    pub(super) fn read_write_step(
        &mut self,
        socket: &Socket,
        cx: &TransferCx<'_>,
    ) -> io::Result<Step> {
        let want = self.want(cx).min(CHUNK);
        let mut buf = cx.allocator.try_buffer(want)?;
        let n = self
            .file
            .read_at(&mut buf.spare_mut()[..want], self.cursor())?;
        if n == 0 {
            return Err(self.truncated());
        }
        buf.commit(n);
        cx.loop_stats.add(TransferStrategy::ReadWrite, 0, 1);
        cx.channel_stats.add(TransferStrategy::ReadWrite, 0, 1);
        self.pending = Some(buf);
        self.send_pending(socket, cx)
    }

    /// Writes bytes already read from the file.
    pub(super) fn send_pending(
        &mut self,
        socket: &Socket,
        cx: &TransferCx<'_>,
    ) -> io::Result<Step> {
        let Some(buf) = &mut self.pending else {
            return Ok(Step::Sent(0));
        };
        match send_vectored(socket, &[IoSlice::new(buf)], false) {
            Ok(n) => {
                buf.skip(n);
                if buf.is_empty() {
                    self.pending = None;
                }
                Ok(self.sent(n, TransferStrategy::ReadWrite, 1, cx))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Step::WouldBlock),
            Err(e) => Err(e),
        }
    }
}
