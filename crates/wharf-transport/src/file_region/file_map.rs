//! A whole file mapped once and shared by the regions that send from it:
//! an open-file cache keeps one per small file, so that each response's
//! region goes out straight from the page cache in the same `writev` as
//! its head, with no system call to read the file and one copy.
//!
//! The mapping is the file's page cache: a write to the file shows in it
//! at once, so the bytes sent are the file's current ones, as with
//! `sendfile`. It is never read in user space: its pages go to the kernel
//! as an iovec. If the file shrank under the mapping, the kernel's copy
//! from pages past the new end fails (a short write, or `EFAULT`) instead
//! of raising `SIGBUS` here; but bytes past the new end *within its last
//! page* read as zeros, and are sent as such. So a map is for files that
//! do not shrink while they are served, or whose caller checks (the file
//! server compares each cached file's size and times with one `fstatat`
//! per request before it sends).

use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice};
use std::sync::Arc;

use super::FileRegion;
use crate::sys::file::{MapWindow, file_len};

/// A file mapped read-only, whole, to send small regions of it from (see
/// the module docs): [`region`](Self::region) makes them.
///
/// ```no_run
/// use std::sync::Arc;
/// use wharf_transport::FileMap;
///
/// let map = Arc::new(FileMap::new(std::fs::File::open("index.html")?)?);
/// // One map, any number of responses.
/// let region = map.region(0, map.len());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct FileMap {
    file: Arc<File>,
    window: MapWindow,
    len: u64,
}

impl FileMap {
    /// Maps `file` as long as it is now. An empty file cannot be mapped
    /// (`InvalidInput`); neither can one that is not a regular file.
    pub fn new(file: impl Into<Arc<File>>) -> io::Result<FileMap> {
        let file = file.into();
        let len = file_len(&file)?;
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an empty file cannot be mapped",
            ));
        }
        let size = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large to map"))?;
        let window = MapWindow::map(&file, 0, size)?;
        Ok(FileMap { file, window, len })
    }

    /// `count` bytes of the mapped file from `position`, as a region that
    /// sends from this map when it is small (at most 16 KiB, strategy
    /// `Auto`) and follows buffers, in their `writev`: no system call to
    /// read it. Otherwise (larger, another strategy, or past what was
    /// mapped) it is sent from the file like any region.
    pub fn region(self: &Arc<Self>, position: u64, count: u64) -> FileRegion {
        FileRegion::new(Arc::clone(&self.file), position, count).with_map(Arc::clone(self))
    }

    /// Bytes mapped: the file's length when it was mapped.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing is mapped (never: an empty file cannot be mapped).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `len` bytes from file offset `pos`, as an iovec for the kernel to
    /// copy from; `None` unless the mapping holds all of them. Only ever
    /// handed to a send: never dereferenced or formatted (`IoSlice`
    /// derefs to bytes, and reading pages past a shrunk file's end raises
    /// `SIGBUS`).
    pub(crate) fn io_slice(&self, pos: u64, len: usize) -> Option<IoSlice<'_>> {
        self.window.io_slice(pos, len)
    }
}

impl fmt::Debug for FileMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileMap").field("len", &self.len).finish()
    }
}
