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
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = nix::fcntl::openat2(root, path, how).map_err(io::Error::from)?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
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
}
