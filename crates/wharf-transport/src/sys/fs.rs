//! Opening a file strictly inside a directory, for servers that map
//! request paths to files.

use std::fs::File;
use std::io;
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};

/// Opens `path` (relative) for reading beneath the directory `root`, in one
/// `openat2(2)` call with `RESOLVE_BENEATH`: the kernel refuses (`EXDEV`)
/// any `..` or symlink, absolute or relative, that would leave `root`,
/// with no window between a check and the open. Symlinks that stay inside
/// are followed; `/proc`-style magic links are refused.
///
/// Fails with `ENOSYS` on kernels before 5.6; callers then fall back to
/// resolving the path themselves.
pub fn open_beneath(root: &File, path: &Path) -> io::Result<File> {
    open_beneath_with(root, path, OFlag::empty())
}

/// [`open_beneath`] with `O_NONBLOCK | O_NOCTTY`: the open itself never
/// waits (a FIFO without a writer, a device) and never gives the process a
/// controlling terminal. What was opened may be anything; check its type on
/// the descriptor (`File::metadata`, an `fstat`) before using it. The flag
/// stays on the descriptor, which changes nothing for regular files and
/// directories.
pub fn open_beneath_nonblocking(root: &File, path: &Path) -> io::Result<File> {
    open_beneath_with(root, path, OFlag::O_NONBLOCK | OFlag::O_NOCTTY)
}

fn open_beneath_with(root: &File, path: &Path, extra: OFlag) -> io::Result<File> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | extra)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = nix::fcntl::openat2(root, path, how).map_err(io::Error::from)?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileTypeExt;

    use super::*;

    #[test]
    fn nothing_outside_the_root_opens() {
        let dir = std::env::temp_dir().join(format!("wharf-beneath-{}", std::process::id()));
        let root_path = dir.join("root");
        std::fs::create_dir_all(root_path.join("sub")).expect("dirs");
        std::fs::write(root_path.join("sub/a"), b"a").expect("file");
        std::fs::write(dir.join("secret"), b"s").expect("secret");
        let _ = std::os::unix::fs::symlink(dir.join("secret"), root_path.join("out"));
        let _ = std::os::unix::fs::symlink("sub/a", root_path.join("in"));
        let root = File::open(&root_path).expect("root");
        let open = |p: &str| open_beneath(&root, Path::new(p));
        match open("sub/a") {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => return, // old kernel
            other => assert!(other.is_ok(), "{other:?}"),
        }
        assert!(open("in").is_ok(), "a symlink inside stays allowed");
        for bad in ["../secret", "sub/../../secret", "out", "/etc/passwd"] {
            let error = open(bad).expect_err(bad);
            assert_eq!(error.raw_os_error(), Some(libc::EXDEV), "{bad}: {error}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_fifo_opens_at_once_without_a_writer() {
        let dir = std::env::temp_dir().join(format!("wharf-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        nix::unistd::mkfifo(&dir.join("fifo"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let root = File::open(&dir).expect("root");
        match open_beneath_nonblocking(&root, Path::new("fifo")) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {}
            other => {
                let file = other.expect("open the FIFO");
                assert!(file.metadata().expect("fstat").file_type().is_fifo());
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
