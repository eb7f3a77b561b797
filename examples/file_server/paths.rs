//! From a request path to an open file under the root, safely.
//!
//! The path is split into segments first and each segment percent-decoded
//! once, so an encoded slash (`%2F`) or backslash cannot create a segment
//! boundary and `%252e` stays the literal name `%2e`. `.` is dropped, `..`
//! removes the previous segment and may never climb above the root. NUL
//! bytes and backslashes are refused. A segment is a file name, bytes
//! rather than text: a name that is not UTF-8 (which a listing links as
//! its percent-encoded bytes) is served like any other.
//!
//! The file is then opened with `openat2(RESOLVE_BENEATH)` relative to the
//! root directory, so the kernel itself refuses a symlink that leads
//! outside, with no gap between checking and opening. `RESOLVE_BENEATH`
//! also refuses every absolute symlink, even one that points inside; those
//! (and everything on kernels without `openat2`, before 5.6) are resolved
//! with `canonicalize`, checked to start with the root, opened, and checked
//! again on the opened descriptor (its `/proc/self/fd` link), so a path
//! swapped between the check and the open is still caught.
//!
//! Every open is `O_NONBLOCK | O_NOCTTY`, and only regular files and
//! directories are served, by the type of the opened descriptor (`fstat`):
//! a plain `open` of a FIFO waits for a writer, which on an event loop
//! stops every connection of the loop, and the shutdown with them (issue 9,
//! point 1). A FIFO, socket or device is 403. Guarded by
//! tests/file_server/special_files.rs
//! `a_fifo_or_socket_is_refused_at_once_and_blocks_nothing`.

use std::ffi::{CStr, OsString};
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nix::fcntl::AtFlags;
use nix::sys::stat::{FileStat, fstatat};
use percent_encoding::{percent_decode_str, percent_encode};
use wharf::transport::sys::fs::open_beneath_nonblocking;

use crate::listing::SEGMENT;

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not a path we can decode: 400.
    BadRequest,
    /// Tries to leave the root, may not be read, or is neither a regular
    /// file nor a directory: 403.
    Forbidden,
    /// Nothing there: 404.
    NotFound,
    /// Out of descriptors or memory for now: 503.
    Busy,
    /// Any other failure to open: 500.
    Failed,
}

impl Refused {
    /// Why opening (or reading) failed with `error`.
    pub fn of(error: &io::Error) -> Refused {
        match error.raw_os_error() {
            // ENXIO and ENODEV: a socket, or a device without a driver.
            Some(
                libc::EXDEV | libc::ELOOP | libc::EACCES | libc::EPERM | libc::ENXIO | libc::ENODEV,
            ) => Refused::Forbidden,
            Some(libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG) => Refused::NotFound,
            // EAGAIN: a lease held by another process, with O_NONBLOCK.
            Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EAGAIN) => Refused::Busy,
            _ => Refused::Failed,
        }
    }
}

/// The decoded, normalized segments of `request_path`: file names.
pub fn segments(request_path: &str) -> Result<Vec<OsString>, Refused> {
    if !request_path.starts_with('/') {
        return Err(Refused::BadRequest);
    }
    let mut segments: Vec<OsString> = Vec::new();
    for raw in request_path.split('/') {
        let decoded: Vec<u8> = percent_decode_str(raw).collect();
        if decoded.contains(&0) {
            return Err(Refused::BadRequest);
        }
        if decoded.contains(&b'/') || decoded.contains(&b'\\') {
            return Err(Refused::Forbidden);
        }
        match decoded.as_slice() {
            b"" | b"." => {}
            b".." => {
                if segments.pop().is_none() {
                    return Err(Refused::Forbidden);
                }
            }
            _ => segments.push(OsString::from_vec(decoded)),
        }
    }
    Ok(segments)
}

/// Whether `request_path` names a directory: it ends with a slash once
/// normalized, because its last segment is empty, `.` or `..` (decoded),
/// as in `/d/`, `/d/.` or `/d/x/..`.
pub fn names_a_directory(request_path: &str) -> bool {
    let last = request_path.rsplit('/').next().unwrap_or_default();
    // At most three decoded bytes matter: no allocation.
    let mut head = [0u8; 3];
    let mut n = 0;
    for byte in percent_decode_str(last).take(3) {
        head[n] = byte;
        n += 1;
    }
    n < 3 && matches!(&head[..n], b"" | b"." | b"..")
}

/// The URL path of `segments`: each percent-encoded, one leading slash
/// (never `//`, which a browser would take for another host), and a
/// trailing one if `dir`.
pub fn url_path(segments: &[OsString], dir: bool) -> String {
    let mut url = String::from("/");
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            url.push('/');
        }
        url.extend(percent_encode(segment.as_bytes(), SEGMENT));
    }
    if dir && !segments.is_empty() {
        url.push('/');
    }
    url
}

/// Whether `openat2` is missing (an old kernel): then resolve by hand.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Gives each root opened a number of its own.
static ROOTS: AtomicU64 = AtomicU64::new(0);

/// The directory served.
#[derive(Debug)]
pub struct Root {
    dir: File,
    path: PathBuf,
    id: u64,
}

impl Root {
    /// Opens the root directory `path`.
    pub fn open(path: &Path) -> io::Result<Root> {
        let path = path.canonicalize()?;
        let dir = File::open(&path)?;
        if !dir.metadata()?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", path.display()),
            ));
        }
        let id = ROOTS.fetch_add(1, Ordering::Relaxed);
        Ok(Root { dir, path, id })
    }

    /// A number no other root of this process has.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The status of what `relative` (a path under the root) leads to,
    /// symlinks followed: one `fstatat`, for the open-file cache to see
    /// whether a cached file is still what the path names. It refuses
    /// nothing (a symlink may lead anywhere): compare what it says with
    /// a descriptor that was opened safely.
    pub fn stat(&self, relative: &CStr) -> io::Result<FileStat> {
        fstatat(&self.dir, relative, AtFlags::empty()).map_err(io::Error::from)
    }

    /// Where the root is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `segments` (from [`segments`]) under the root, without
    /// waiting: a regular file or a directory, and its metadata.
    pub fn open_file(&self, segments: &[OsString]) -> Result<(File, Metadata), Refused> {
        let file = self.open_any(segments)?;
        let meta = file.metadata().map_err(|e| Refused::of(&e))?;
        if meta.is_file() || meta.is_dir() {
            Ok((file, meta))
        } else {
            Err(Refused::Forbidden)
        }
    }

    /// Opens `segments` under the root, whatever is there.
    fn open_any(&self, segments: &[OsString]) -> Result<File, Refused> {
        let relative: PathBuf = if segments.is_empty() {
            PathBuf::from(".")
        } else {
            segments.iter().collect()
        };
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            match open_beneath_nonblocking(&self.dir, &relative) {
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                }
                // Left the root, or met an absolute symlink: check by hand.
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
                other => return other.map_err(|e| Refused::of(&e)),
            }
        }
        let real = self
            .path
            .join(&relative)
            .canonicalize()
            .map_err(|e| Refused::of(&e))?;
        if !real.starts_with(&self.path) {
            return Err(Refused::Forbidden);
        }
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(real)
            .map_err(|e| Refused::of(&e))?;
        // Where the descriptor really leads, whatever changed meanwhile.
        let opened = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(|_| Refused::Forbidden)?;
        if !opened.starts_with(&self.path) {
            return Err(Refused::Forbidden);
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(names: &[&str]) -> Vec<OsString> {
        names.iter().map(OsString::from).collect()
    }

    #[test]
    fn segments_are_decoded_once_and_never_climb_out() {
        assert_eq!(segments("/"), Ok(vec![]));
        assert_eq!(segments("/sub/../sub/./a.txt"), Ok(s(&["sub", "a.txt"])));
        assert_eq!(segments("/sub/%61.txt"), Ok(s(&["sub", "a.txt"])));
        assert_eq!(segments("/%252e%252e/x"), Ok(s(&["%2e%2e", "x"])));
        assert_eq!(segments("//evil.example/.."), Ok(vec![]));
        for bad in [
            "/../x",
            "/%2e%2e/x",
            "/sub/../../x",
            "/..%2fx",
            "/%2e%2e%5cx",
            "/a\\b",
        ] {
            assert_eq!(segments(bad), Err(Refused::Forbidden), "{bad}");
        }
        assert_eq!(segments("/a%00b"), Err(Refused::BadRequest));
        assert_eq!(
            segments("/%ff%fe"),
            Ok(vec![OsString::from_vec(b"\xff\xfe".to_vec())]),
            "names are bytes"
        );
        assert_eq!(segments("relative"), Err(Refused::BadRequest));
    }

    #[test]
    fn paths_that_end_in_a_slash_once_normalized_name_directories() {
        for dir in [
            "/",
            "/d/",
            "/d//",
            "/d/.",
            "/d/%2e",
            "/d/x/..",
            "/d/x/%2E%2e",
        ] {
            assert!(names_a_directory(dir), "{dir}");
        }
        for file in ["/a.txt", "/d/a", "/d/.a", "/d/..a", "/d/%2e%2e%2e"] {
            assert!(!names_a_directory(file), "{file}");
        }
    }

    #[test]
    fn url_paths_have_one_leading_slash() {
        assert_eq!(url_path(&[], true), "/");
        assert_eq!(url_path(&s(&["evil.example"]), true), "/evil.example/");
        assert_eq!(url_path(&s(&["a b", "c"]), false), "/a%20b/c");
    }

    #[test]
    fn files_open_only_under_the_root() {
        let dir = std::env::temp_dir().join(format!("wharf-paths-{}", std::process::id()));
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("sub")).expect("dirs");
        std::fs::write(root.join("sub/a.txt"), b"a").expect("file");
        std::fs::write(dir.join("secret"), b"s").expect("secret");
        let _ = std::os::unix::fs::symlink(dir.join("secret"), root.join("escape"));
        let _ = std::os::unix::fs::symlink(root.join("sub/a.txt"), root.join("absolute-in"));
        let _ = std::os::unix::fs::symlink("../../secret", root.join("sub/relative-out"));
        let root = Root::open(&root).expect("root");
        assert!(
            root.open_file(&s(&["absolute-in"])).is_ok(),
            "an absolute symlink that stays inside"
        );
        assert_eq!(
            root.open_file(&s(&["sub", "relative-out"])).err(),
            Some(Refused::Forbidden)
        );
        assert!(root.open_file(&s(&["sub", "a.txt"])).is_ok());
        assert!(root.open_file(&[]).is_ok(), "the root itself");
        assert_eq!(
            root.open_file(&s(&["escape"])).err(),
            Some(Refused::Forbidden)
        );
        assert_eq!(
            root.open_file(&s(&["missing"])).err(),
            Some(Refused::NotFound)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
