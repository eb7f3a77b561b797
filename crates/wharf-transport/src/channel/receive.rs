//! Receiving into a file: a known number of a channel's input bytes
//! written into a file at an offset (an upload), without passing them
//! through the pipeline, and with `splice(2)` (socket → pipe → file) where
//! it can, so that bulk bytes never reach user space (Java's
//! `FileChannel.transferFrom`, Netty's `spliceTo`).
//!
//! The handler starts a receive with
//! [`Context::receive_file`](crate::Context::receive_file) (or throws the
//! bytes away with [`Context::skip_input`](crate::Context::skip_input)).
//! Bytes the channel already holds (read together with the message that
//! announced the body) are written first; then the socket is read straight
//! into the file: spliced in rounds of at most a pipe's capacity, at most
//! [`ChannelConfig::max_messages_per_read`](crate::ChannelConfig::max_messages_per_read)
//! rounds per event like any read, so one upload does not hold its loop
//! for long. A TLS channel, a receive asked to copy, a file the kernel
//! cannot splice into (`EINVAL`), or a loop out of pipes copies instead:
//! a read into a pooled buffer, then `pwrite`.
//!
//! The handler hears the end as [`UserEvent::Received`](crate::UserEvent::Received):
//! all bytes written, the file given back; or the error that stopped it
//! (the peer closed or reset, the file could not be written). Only then
//! does the codec go on decoding what follows the body.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::channel::env::ChannelEnv;
use crate::channel::socket::Socket;
use crate::relay::PipeLease;
use crate::stats::{LoopCounters, add};

/// Bytes asked for a receive's pipe (the kernel may grant less).
const PIPE_SIZE: usize = 1 << 20;
/// Pipes a loop may hold for receives and relays together, as a relay's
/// default [`RelayConfig::max_pipes`](crate::RelayConfig::max_pipes).
const MAX_PIPES: usize = 512;
/// Below this many bytes still to come, a receive copies: a splice round
/// costs two system calls, a copy one read and one write.
const SPLICE_MIN: u64 = 16 << 10;
/// Bytes moved out of a pipe per copy when a splice into the file failed.
const SALVAGE_CHUNK: usize = 64 << 10;

/// Bytes of a channel's input to store in a file, given to
/// [`Context::receive_file`](crate::Context::receive_file).
///
/// ```
/// use wharf_transport::FileReceive;
///
/// # fn upload(file: std::fs::File) {
/// // The next 1 MiB of input, into the file from its start, copied rather
/// // than spliced (spliced is the default).
/// let receive = FileReceive::new(file, 0, 1 << 20).splice(false);
/// # let _ = receive;
/// # }
/// ```
#[derive(Debug)]
pub struct FileReceive {
    file: File,
    offset: u64,
    len: u64,
    splice: bool,
}

impl FileReceive {
    /// The next `len` bytes of input, into `file` (opened for writing)
    /// from `offset` on.
    pub fn new(file: File, offset: u64, len: u64) -> FileReceive {
        FileReceive {
            file,
            offset,
            len,
            splice: true,
        }
    }

    /// Whether to splice (socket → pipe → file) when the channel and the
    /// file allow it: on by default; off copies through a pooled buffer.
    pub fn splice(mut self, on: bool) -> FileReceive {
        self.splice = on;
        self
    }
}

/// How a receive started with
/// [`Context::receive_file`](crate::Context::receive_file) or
/// [`Context::skip_input`](crate::Context::skip_input) ended: the payload
/// of [`UserEvent::Received`](crate::UserEvent::Received).
pub struct Received {
    /// The file, given back (`None` after `skip_input`).
    pub file: Option<File>,
    /// Bytes written into the file (or skipped).
    pub bytes: u64,
    /// `Ok` once every byte asked for was written; otherwise what stopped
    /// the receive: the peer closed (`UnexpectedEof`) or reset, the channel
    /// closed, the file could not be written, or another receive was
    /// under way (`InvalidInput`). After an error the rest of the body is
    /// still unread: answer and close the channel.
    pub result: io::Result<()>,
}

impl fmt::Debug for Received {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Received")
            .field("file", &self.file.is_some())
            .field("bytes", &self.bytes)
            .field("result", &self.result)
            .finish()
    }
}

/// Where a receive puts its bytes.
#[derive(Debug)]
enum Target {
    File { file: File, splice: bool },
    Skip,
}

/// One receive under way.
#[derive(Debug)]
pub(crate) struct Receiving {
    target: Target,
    /// Where the next byte goes in the file.
    offset: u64,
    /// Bytes still to come.
    left: u64,
    /// Bytes taken so far.
    taken: u64,
    /// The pipe of the splice path, held from round to round.
    pipe: Option<PipeLease>,
    /// Writing the file failed during a splice round.
    failed: Option<io::Error>,
}

impl Receiving {
    pub(crate) fn file(receive: FileReceive) -> Receiving {
        let FileReceive {
            file,
            offset,
            len,
            splice,
        } = receive;
        Receiving {
            target: Target::File { file, splice },
            offset,
            left: len,
            taken: 0,
            pipe: None,
            failed: None,
        }
    }

    pub(crate) fn skip(len: u64) -> Receiving {
        Receiving {
            target: Target::Skip,
            offset: 0,
            left: len,
            taken: 0,
            pipe: None,
            failed: None,
        }
    }

    /// Bytes still to come.
    pub(crate) fn left(&self) -> u64 {
        self.left
    }

    /// Bytes taken so far.
    pub(crate) fn taken(&self) -> u64 {
        self.taken
    }

    /// Why writing the file failed during a splice round, once.
    pub(crate) fn take_failure(&mut self) -> Option<io::Error> {
        self.failed.take()
    }

    /// Takes the front of `bytes` that belongs to the receive (all of it,
    /// up to what is left) into the file; returns how many it took.
    pub(crate) fn take(&mut self, bytes: &[u8], counters: &LoopCounters) -> io::Result<usize> {
        let n = bytes
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if let Target::File { file, .. } = &self.target {
            write_all_at(file, &bytes[..n], self.offset, counters)?;
        }
        self.offset += n as u64;
        self.left -= n as u64;
        self.taken += n as u64;
        Ok(n)
    }

    /// Whether the socket should be spliced into the file for the next
    /// bytes (a plain socket: the caller checks).
    pub(crate) fn splices(&self) -> bool {
        matches!(self.target, Target::File { splice: true, .. }) && self.left >= SPLICE_MIN
    }

    /// One splice round: socket → pipe, then pipe → file. Returns the bytes
    /// read from the socket and how many were asked (a short round means
    /// the socket is drained); `Ok((0, _))` is the end of input, an error
    /// the socket's. A file that cannot be written fails the receive, not
    /// the channel (see [`Receives::end_if_complete`](crate::channel::receives::Receives::end_if_complete)). Without a pipe
    /// (none left, no descriptors) the receive copies from then on and
    /// this returns `None`.
    pub(crate) fn splice_from(
        &mut self,
        socket: &Socket,
        env: &ChannelEnv,
    ) -> Option<io::Result<(usize, usize)>> {
        if self.pipe.is_none() {
            self.pipe = env.pipes.lease(PIPE_SIZE, MAX_PIPES);
        }
        let Some(pipe) = self.pipe.as_mut() else {
            self.copy_from_now_on();
            return None;
        };
        let asked = pipe
            .capacity()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = match pipe.fill_from(socket, asked) {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        };
        if n == 0 {
            return Some(Ok((0, asked)));
        }
        add(&env.counters.bytes_read, n as u64);
        if let Err(e) = self.empty_pipe(&env.counters) {
            self.failed = Some(e);
        }
        Some(Ok((n, asked)))
    }

    /// Moves what the pipe holds into the file: spliced, or, when the file
    /// refuses splices, copied out of the pipe (and copied from then on).
    fn empty_pipe(&mut self, counters: &LoopCounters) -> io::Result<()> {
        let (Some(pipe), Target::File { file, splice }) = (self.pipe.as_mut(), &mut self.target)
        else {
            return Ok(());
        };
        let before = self.offset;
        let mut calls = 0;
        let result = pipe.drain_to_file(file, &mut self.offset, &mut calls);
        add(&counters.receive_splices, calls);
        let written = self.offset - before;
        add(&counters.received_bytes, written);
        self.left -= written;
        self.taken += written;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // A file system without splice writes: copy what the pipe
                // holds, and copy from now on.
                *splice = false;
                let mut chunk = vec![0u8; SALVAGE_CHUNK.min(pipe.held())];
                while pipe.held() > 0 {
                    let n = pipe.read_out(&mut chunk)?;
                    write_all_at(file, &chunk[..n], self.offset, counters)?;
                    self.offset += n as u64;
                    self.left -= n as u64;
                    self.taken += n as u64;
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn copy_from_now_on(&mut self) {
        if let Target::File { splice, .. } = &mut self.target {
            *splice = false;
        }
    }

    /// The end of the receive, as the handler hears it.
    pub(crate) fn end(self, result: io::Result<()>) -> Received {
        Received {
            file: match self.target {
                Target::File { file, .. } => Some(file),
                Target::Skip => None,
            },
            bytes: self.taken,
            result,
        }
    }
}

/// `pwrite`s all of `bytes` into `file` at `offset`, counted.
fn write_all_at(
    file: &File,
    mut bytes: &[u8],
    mut offset: u64,
    counters: &LoopCounters,
) -> io::Result<()> {
    while !bytes.is_empty() {
        add(&counters.receive_writes, 1);
        match file.write_at(bytes, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                add(&counters.received_bytes, n as u64);
                bytes = &bytes[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::channel::receives::Receives;

    fn temp_file() -> (File, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "wharf-receive-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("temp file");
        (file, path)
    }

    #[test]
    fn takes_only_what_belongs_to_it_at_its_offset() {
        let (file, path) = temp_file();
        let counters = LoopCounters::default();
        let mut r = Receiving::file(FileReceive::new(file, 3, 5));
        assert_eq!(r.take(b"abc", &counters).unwrap(), 3);
        assert_eq!(
            r.take(b"defgh", &counters).unwrap(),
            2,
            "two more belong to it"
        );
        assert_eq!(counters.snapshot().received_bytes, 5);
        assert_eq!(counters.snapshot().receive_writes, 2);
        assert_eq!(r.left(), 0);
        let mut receives = Receives::default();
        receives.start(r);
        let (done, taken) = receives.next_ended().expect("ended");
        assert_eq!((done.bytes, taken), (5, 5));
        assert!(done.result.is_ok());
        let mut content = Vec::new();
        File::open(&path)
            .unwrap()
            .read_to_end(&mut content)
            .unwrap();
        assert_eq!(content, b"\0\0\0abcde");
        let _ = std::fs::remove_file(path);
    }
}
