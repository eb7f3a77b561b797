//! A whole file mapped once and shared by the regions that send from it:
//! an open-file cache keeps one per small file, so that each response's
//! region goes out straight from the page cache in the same `writev` as
//! its head, with no system call to read the file and one copy.
//!
//! The mapping is the file's page cache: a write to the file shows in it
//! at once, so the bytes sent are the file's current ones, as with
//! `sendfile`. It is never read in user space: its pages go to the kernel
//! as an iovec, and if the file shrank under the mapping the kernel's copy
//! fails (a short write, or `EFAULT`) instead of raising `SIGBUS` here.

use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice};

use crate::sys::file::{MapWindow, file_len};

/// A file mapped read-only, whole, for [`FileRegion::with_map`](crate::FileRegion::with_map).
///
/// ```no_run
/// use std::sync::Arc;
/// use wharf_transport::{FileMap, FileRegion};
///
/// let file = Arc::new(std::fs::File::open("index.html")?);
/// let map = Arc::new(FileMap::new(&file)?);
/// let len = map.len();
/// // One map, any number of responses.
/// let region = FileRegion::new(Arc::clone(&file), 0, len).with_map(Arc::clone(&map));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct FileMap {
    window: MapWindow,
    len: u64,
}

impl FileMap {
    /// Maps `file` as long as it is now. An empty file cannot be mapped
    /// (`InvalidInput`); neither can one that is not a regular file.
    pub fn new(file: &File) -> io::Result<FileMap> {
        let len = file_len(file)?;
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an empty file cannot be mapped",
            ));
        }
        let size = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large to map"))?;
        Ok(FileMap {
            window: MapWindow::map(file, 0, size)?,
            len,
        })
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
    /// copy from; `None` unless the mapping holds all of them.
    pub(crate) fn io_slice(&self, pos: u64, len: usize) -> Option<IoSlice<'_>> {
        self.window.io_slice(pos, len)
    }
}

impl fmt::Debug for FileMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileMap").field("len", &self.len).finish()
    }
}
