//! A file sent in chunks that pass through the handler: Netty's
//! `ChunkedFile` with the part of `ChunkedWriteHandler` that matters.
//!
//! A [`FileRegion`](crate::FileRegion) never shows its bytes to anyone:
//! that is what makes it fast. A handler that must see or change them
//! (compress, encrypt, frame them in a protocol of its own) reads the file
//! in chunks into pooled buffers instead, and only while the channel is
//! writable, so a slow peer holds at most the high water mark plus one
//! chunk of the file in memory, however large the file.
//!
//! The reads are ordinary `pread`s on the thread that runs the handler (the
//! event loop, or a worker in the pooled modes): cheap while the file is in
//! the page cache. Files that are not belong on a `FileRegion` with direct
//! I/O, which reads on the blocking-I/O pool.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use wharf_buf::{Allocator, ByteBuf};

use crate::channel::context::Context;

/// Default bytes per chunk (Netty's `ChunkedFile`: 8 KiB; larger chunks
/// mean fewer reads and writes for the same bytes).
pub const DEFAULT_CHUNK_SIZE: usize = 64 << 10;

/// A range of a file, read chunk by chunk into pooled buffers.
///
/// ```no_run
/// use wharf_transport::buf::ByteBuf;
/// use wharf_transport::{ChunkedFile, Context, Handler};
///
/// /// Sends a file upper-cased, at the pace the peer reads.
/// struct Shout(Option<ChunkedFile>);
///
/// impl Shout {
///     fn pump(&mut self, ctx: &mut Context<'_, ByteBuf>) {
///         let Some(file) = &mut self.0 else { return };
///         match file.write_while_writable(ctx, |mut chunk| {
///             chunk.make_ascii_uppercase();
///             chunk
///         }) {
///             Ok(true) => ctx.close(),  // all sent
///             Ok(false) => {}           // more when writable again
///             Err(_) => ctx.close(),    // unreadable or truncated file
///         }
///     }
/// }
///
/// impl Handler for Shout {
///     type In = ByteBuf;
///     type Out = ByteBuf;
///
///     fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
///         self.0 = ChunkedFile::open("/etc/hostname").ok();
///         self.pump(ctx);
///     }
///
///     fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {}
///
///     fn on_writability_changed(&mut self, ctx: &mut Context<'_, ByteBuf>, writable: bool) {
///         if writable {
///             self.pump(ctx);
///         }
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct ChunkedFile {
    file: Arc<File>,
    position: u64,
    end: u64,
    chunk_size: usize,
}

impl ChunkedFile {
    /// `count` bytes of `file` from `position`, in chunks of
    /// [`DEFAULT_CHUNK_SIZE`].
    pub fn new(file: impl Into<Arc<File>>, position: u64, count: u64) -> ChunkedFile {
        ChunkedFile {
            file: file.into(),
            position,
            end: position.saturating_add(count),
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }

    /// The whole file at `path`.
    pub fn open(path: impl AsRef<Path>) -> io::Result<ChunkedFile> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(ChunkedFile::new(file, 0, len))
    }

    /// Reads chunks of `bytes` (at least 1).
    pub fn with_chunk_size(mut self, bytes: usize) -> ChunkedFile {
        self.chunk_size = bytes.max(1);
        self
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> u64 {
        self.end - self.position
    }

    /// Whether every byte has been read.
    pub fn is_end_of_input(&self) -> bool {
        self.position == self.end
    }

    /// Reads the next chunk into a buffer from `allocator`; `None` at the
    /// end. A file that ends before the range does (it was truncated, or
    /// the range was too long) is an `UnexpectedEof` error, never a short
    /// or empty chunk that would leave the peer waiting.
    pub fn next_chunk(&mut self, allocator: Allocator) -> io::Result<Option<ByteBuf>> {
        if self.is_end_of_input() {
            return Ok(None);
        }
        let want = usize::try_from(self.remaining())
            .unwrap_or(usize::MAX)
            .min(self.chunk_size);
        let mut buf = allocator.try_buffer(want)?;
        while buf.len() < want {
            let missing = want - buf.len();
            match self
                .file
                .read_at(&mut buf.spare_mut()[..missing], self.position)
            {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "file ended at byte {}, before the chunked range's end at {}",
                            self.position, self.end
                        ),
                    ));
                }
                Ok(n) => {
                    buf.commit(n);
                    self.position += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(buf))
    }

    /// Writes chunks, each passed through `map`, while the channel is
    /// writable, and flushes. Returns `Ok(true)` once the last chunk is
    /// written, `Ok(false)` when the channel became unwritable first: call
    /// again from
    /// [`Handler::on_writability_changed`](crate::Handler::on_writability_changed).
    pub fn write_while_writable<O>(
        &mut self,
        ctx: &mut Context<'_, O>,
        mut map: impl FnMut(ByteBuf) -> O,
    ) -> io::Result<bool>
    where
        O: Send + 'static,
    {
        let result = loop {
            if self.is_end_of_input() {
                break Ok(true);
            }
            if !ctx.is_writable() {
                break Ok(false);
            }
            match self.next_chunk(ctx.allocator()) {
                Ok(Some(chunk)) => ctx.write(map(chunk)),
                Ok(None) => break Ok(true),
                Err(e) => break Err(e),
            }
        };
        ctx.flush();
        result
    }
}
