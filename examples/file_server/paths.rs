//! From a request path to a file under the root, safely.
//!
//! The path is split into segments first and each segment percent-decoded
//! once, so an encoded slash (`%2F`) or backslash cannot create a segment
//! boundary and `%252e` stays the literal name `%2e`. `.` is dropped, `..`
//! removes the previous segment and may never climb above the root. NUL
//! bytes and backslashes are refused. The result is then resolved with
//! `canonicalize`, and a path that a symlink leads outside the root is
//! refused as well: nothing outside `--root` is ever served.

use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not a path we can decode: 400.
    BadRequest,
    /// Tries to leave the root: 403.
    Forbidden,
    /// Nothing there: 404.
    NotFound,
}

/// The file system path for `request_path` under `root` (which must be
/// canonical), following symlinks only if they stay inside the root.
pub fn resolve(root: &Path, request_path: &str) -> Result<PathBuf, Refused> {
    if !request_path.starts_with('/') {
        return Err(Refused::BadRequest);
    }
    let mut segments: Vec<String> = Vec::new();
    for raw in request_path.split('/') {
        let decoded = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| Refused::BadRequest)?;
        if decoded.contains('\0') {
            return Err(Refused::BadRequest);
        }
        if decoded.contains('/') || decoded.contains('\\') || raw.contains('\\') {
            return Err(Refused::Forbidden);
        }
        match decoded.as_ref() {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(Refused::Forbidden);
                }
            }
            name => segments.push(name.to_string()),
        }
    }
    let mut path = root.to_path_buf();
    for segment in &segments {
        path.push(segment);
    }
    let real = path.canonicalize().map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => Refused::Forbidden,
        _ => Refused::NotFound,
    })?;
    if real.starts_with(root) {
        Ok(real)
    } else {
        Err(Refused::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_attempts_never_leave_the_root() {
        let dir = std::env::temp_dir().join(format!("wharf-paths-{}", std::process::id()));
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("sub")).expect("dirs");
        std::fs::write(root.join("sub/a.txt"), b"a").expect("file");
        std::fs::write(dir.join("secret"), b"s").expect("secret");
        let _ = std::os::unix::fs::symlink(dir.join("secret"), root.join("escape"));
        let root = root.canonicalize().expect("canonical");
        let ok = |p: &str| resolve(&root, p);
        assert_eq!(ok("/sub/a.txt"), Ok(root.join("sub/a.txt")));
        assert_eq!(ok("/sub/../sub/./a.txt"), Ok(root.join("sub/a.txt")));
        assert_eq!(ok("/sub/%61.txt"), Ok(root.join("sub/a.txt")));
        for bad in [
            "/../secret",
            "/%2e%2e/secret",
            "/sub/../../secret",
            "/..%2fsecret",
            "/%2e%2e%2fsecret",
            "/%2e%2e%5csecret",
            "/sub\\..\\..\\secret",
            "/escape",
        ] {
            assert_eq!(ok(bad), Err(Refused::Forbidden), "{bad}");
        }
        assert_eq!(ok("/%252e%252e/secret"), Err(Refused::NotFound));
        assert_eq!(ok("/sub/a.txt%00.html"), Err(Refused::BadRequest));
        assert_eq!(ok("/%ff"), Err(Refused::BadRequest));
        assert_eq!(ok("relative"), Err(Refused::BadRequest));
        assert_eq!(ok("/missing"), Err(Refused::NotFound));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
