//! Pipes for splicing between sockets: a bounded pool per event loop, and
//! the bytes in transit that hold one.
//!
//! `splice(2)` moves bytes between two sockets only through a pipe: socket
//! → pipe, then pipe → socket, with no copy through user space. A pipe is
//! two descriptors and some kernel memory, so a loop keeps a bounded number
//! of them: a pipe is leased for one read, travels in the destination
//! channel's outbound queue as [`SplicedBytes`], and comes back to the
//! pool's shelf once it is empty. A lease the pool cannot give (its limit
//! reached, or no descriptor left) is `None`, and the relay copies through
//! a pooled buffer instead: running out of pipes never fails a connection.
//! Receiving into a file ([`Context::receive_file`](crate::Context::receive_file))
//! leases from the same pool: socket → pipe, then pipe → file.
//!
//! Threading: a pool belongs to one loop; its shelf is behind a mutex only
//! so that bytes in transit stay `Send` (the lock is never contended).

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::channel::socket::Socket;
use crate::sys::file::Pipe;

/// Empty pipes a loop keeps for reuse; more are closed when they come back.
const SHELF_MAX: usize = 32;

/// The pipes of one loop.
#[derive(Debug, Default)]
pub(crate) struct PipeShelf {
    /// Empty pipes ready for a lease, with their capacity.
    free: Mutex<Vec<(Pipe, usize)>>,
    /// Pipes that exist: on the shelf or in transit.
    live: AtomicUsize,
    /// Leases refused (the limit or descriptors ran out).
    refused: AtomicUsize,
}

impl PipeShelf {
    /// An empty pipe of about `size` bytes, if fewer than `max` exist or
    /// one is on the shelf; `None` when the pool is exhausted or the kernel
    /// refuses a new pipe (the caller copies instead).
    pub(crate) fn lease(self: &Arc<Self>, size: usize, max: usize) -> Option<PipeLease> {
        let shelved = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some((pipe, capacity)) = shelved {
            return Some(PipeLease::new(pipe, capacity, self));
        }
        if self.live.load(Ordering::Relaxed) >= max {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        match Pipe::with_size(size) {
            Ok((pipe, capacity)) => {
                self.live.fetch_add(1, Ordering::Relaxed);
                Some(PipeLease::new(pipe, capacity, self))
            }
            Err(e) => {
                if self.refused.fetch_add(1, Ordering::Relaxed) == 0 {
                    log::warn!("no pipe for splicing ({e}); copying instead");
                }
                None
            }
        }
    }

    /// Pipes that exist now (on the shelf or holding bytes in transit).
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Leases refused so far.
    #[cfg(test)]
    pub(crate) fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }

    /// Takes back an empty pipe, or closes it if the shelf is full.
    fn give_back(&self, pipe: Pipe, capacity: usize) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < SHELF_MAX {
            free.push((pipe, capacity));
        } else {
            drop(free);
            self.closed();
        }
    }

    /// A pipe was closed.
    fn closed(&self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    /// Closes the shelved pipes (an idle loop gives its resources back).
    pub(crate) fn trim(&self) {
        let pipes = std::mem::take(&mut *self.free.lock().unwrap_or_else(|e| e.into_inner()));
        for _ in pipes {
            self.closed();
        }
    }
}

/// A leased pipe and how many bytes it holds; back to its shelf (empty) or
/// closed (with bytes nobody will send) when dropped.
pub(crate) struct PipeLease {
    pipe: Option<Pipe>,
    capacity: usize,
    held: usize,
    shelf: Arc<PipeShelf>,
}

impl fmt::Debug for PipeLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeLease")
            .field("capacity", &self.capacity)
            .field("held", &self.held)
            .finish()
    }
}

impl PipeLease {
    fn new(pipe: Pipe, capacity: usize, shelf: &Arc<PipeShelf>) -> PipeLease {
        PipeLease {
            pipe: Some(pipe),
            capacity,
            held: 0,
            shelf: Arc::clone(shelf),
        }
    }

    /// What the pipe holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Splices up to `len` bytes from `socket` into the (empty) pipe.
    pub(crate) fn fill_from(&mut self, socket: &Socket, len: usize) -> io::Result<usize> {
        let Some(pipe) = &self.pipe else {
            return Ok(0);
        };
        let n = pipe.fill_from_socket(socket.as_fd(), len.min(self.capacity))?;
        self.held += n;
        Ok(n)
    }
}

impl PipeLease {
    /// Bytes the pipe holds.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Splices what the pipe holds into `file` at `*offset` (advanced by
    /// what was written); returns the bytes written. On an error, what the
    /// pipe still holds stays there (see [`read_out`](Self::read_out)).
    /// `calls` counts the `splice` calls made.
    pub(crate) fn drain_to_file(
        &mut self,
        file: &File,
        offset: &mut u64,
        calls: &mut u64,
    ) -> io::Result<usize> {
        let Some(pipe) = &self.pipe else {
            return Ok(0);
        };
        let mut written = 0;
        while self.held > 0 {
            let mut at = i64::try_from(*offset).map_err(|_| io::ErrorKind::FileTooLarge)?;
            *calls += 1;
            match pipe.drain_to_file(file.as_fd(), &mut at, self.held) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.held -= n;
                    *offset += n as u64;
                    written += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(written)
    }

    /// Copies bytes out of the pipe into `buf` (what a failed splice into a
    /// file left behind); returns the bytes taken.
    pub(crate) fn read_out(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(pipe) = &self.pipe else {
            return Ok(0);
        };
        let len = buf.len().min(self.held);
        if len == 0 {
            return Ok(0);
        }
        let n = pipe.read_into(&mut buf[..len])?;
        self.held -= n;
        Ok(n)
    }
}

impl Drop for PipeLease {
    fn drop(&mut self) {
        if let Some(pipe) = self.pipe.take() {
            if self.held == 0 {
                self.shelf.give_back(pipe, self.capacity);
            } else {
                drop(pipe);
                self.shelf.closed();
            }
        }
    }
}

/// Bytes waiting in a kernel pipe on their way from one channel's socket to
/// another's (see [`Relay`](crate::Relay)): written with `splice(2)`, never
/// copied through user space. Only a relay makes them; they reach a
/// channel's outbound queue as [`OutboundMessage::Spliced`](crate::OutboundMessage::Spliced).
pub struct SplicedBytes {
    lease: PipeLease,
}

impl fmt::Debug for SplicedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SplicedBytes")
            .field("len", &self.lease.held)
            .finish()
    }
}

impl SplicedBytes {
    /// The bytes of a filled pipe.
    pub(crate) fn new(lease: PipeLease) -> SplicedBytes {
        SplicedBytes { lease }
    }

    /// Bytes left to send.
    pub fn len(&self) -> usize {
        self.lease.held
    }

    /// Whether everything was sent.
    pub fn is_empty(&self) -> bool {
        self.lease.held == 0
    }

    /// Splices what the pipe holds into `socket`; `more` says more data
    /// follows at once (`SPLICE_F_MORE`). Returns the bytes the socket took.
    pub(crate) fn drain_to(&mut self, socket: &Socket, more: bool) -> io::Result<usize> {
        let lease = &mut self.lease;
        let Some(pipe) = &lease.pipe else {
            return Ok(0);
        };
        let n = pipe.drain_to(socket.as_fd(), lease.held, more)?;
        lease.held -= n;
        Ok(n)
    }

    /// Copies what the pipe holds into `buf`, as far as it goes (for a
    /// channel whose bytes pass through a layer such as TLS). Returns the
    /// bytes taken.
    pub(crate) fn read_into(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let lease = &mut self.lease;
        let Some(pipe) = &lease.pipe else {
            return Ok(0);
        };
        let len = buf.len().min(lease.held);
        if len == 0 {
            return Ok(0);
        }
        let n = pipe.read_into(&mut buf[..len])?;
        lease.held -= n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    use super::*;

    fn pair() -> (Socket, UnixStream) {
        let (a, b) = UnixStream::pair().expect("socketpair");
        a.set_nonblocking(true).expect("non-blocking");
        (Socket::Unix(mio::net::UnixStream::from_std(a)), b)
    }

    #[test]
    fn pipes_are_bounded_reused_and_closed_when_they_hold_unsent_bytes() {
        let shelf = Arc::new(PipeShelf::default());
        let a = shelf.lease(64 << 10, 2).expect("first");
        let b = shelf.lease(64 << 10, 2).expect("second");
        assert!(shelf.lease(64 << 10, 2).is_none(), "the limit holds");
        assert_eq!(shelf.refused(), 1);
        drop(a);
        assert_eq!(shelf.live(), 2, "an empty pipe goes back to the shelf");
        let c = shelf.lease(64 << 10, 2).expect("reused from the shelf");
        // A pipe that still holds bytes is closed, not shelved.
        let (src, mut peer) = pair();
        peer.write_all(b"in transit").expect("write");
        let mut held = c;
        assert_eq!(held.fill_from(&src, 1 << 20).expect("splice"), 10);
        drop(SplicedBytes::new(held));
        assert_eq!(shelf.live(), 1, "closed with its bytes");
        drop(b);
        shelf.trim();
        assert_eq!(shelf.live(), 0, "trim closes the shelved pipes");
    }

    #[test]
    fn spliced_bytes_arrive_whole_and_in_order() {
        let shelf = Arc::new(PipeShelf::default());
        let (src, mut writer) = pair();
        let (dst, mut reader) = pair();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let feeder = std::thread::spawn(move || writer.write_all(&sent).expect("write"));
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 20];
        while got.len() < data.len() {
            let mut lease = shelf.lease(64 << 10, 4).expect("pipe");
            let n = match lease.fill_from(&src, lease.capacity()) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("fill: {e}"),
            };
            assert!(n > 0, "end of stream before the data");
            let mut bytes = SplicedBytes::new(lease);
            while !bytes.is_empty() {
                let sent = bytes.drain_to(&dst, false).expect("drain");
                reader.read_exact(&mut buf[..sent]).expect("read");
                got.extend_from_slice(&buf[..sent]);
            }
        }
        feeder.join().expect("feeder");
        assert!(got == data);
    }
}
