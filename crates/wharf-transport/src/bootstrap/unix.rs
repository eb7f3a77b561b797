//! Unix-domain stream listeners: binding on a path, the stale socket file a
//! crashed run left behind, and removing the file when the server ends.
//!
//! A Unix-domain socket lives as a file. A server that was killed leaves
//! its file behind, and the next `bind` on the path fails with "address in
//! use" although nothing listens. So before binding, a socket file already
//! at the path is probed with a connect: refused means nobody listens and
//! the file is stale, and it is replaced; a connect that succeeds means a
//! running server owns the path, and the bind fails (`AddrInUse`) without
//! touching it. Anything at the path that is not a socket (a regular file,
//! a directory) is never removed. When the server ends, it removes the
//! file it created, if the path still names that very file.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Type};

use crate::bootstrap::ReactorMode;
use crate::bootstrap::options::SocketOptions;
use crate::reactor::listener::Listener;

/// The socket file a server created; removed when dropped, if the path
/// still names it (a socket, with the same device and inode: inode numbers
/// are reused, so a file of another type in its place is not it).
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    /// The path the server listens on.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(meta) = fs::symlink_metadata(&self.path)
            && meta.file_type().is_socket()
            && meta.dev() == self.dev
            && meta.ino() == self.ino
        {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Refuses what cannot work on a Unix-domain socket, naming the option.
pub(crate) fn check_unix_config(mode: ReactorMode, options: &SocketOptions) -> io::Result<()> {
    if let ReactorMode::Reuseport { .. } = mode {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "mode: the reuseport mode needs SO_REUSEPORT, which Unix-domain sockets do not \
             have; use single, pool or multi with bind_unix",
        ));
    }
    if options.reuse_port {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "option ReusePort: Unix-domain sockets do not balance with SO_REUSEPORT",
        ));
    }
    Ok(())
}

/// Clears the way for a bind on `path`: a stale socket file is removed,
/// a live one (or anything that is not a socket) is an error.
fn clear_stale(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; not replacing it",
                path.display()
            ),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{}: a running server listens on it", path.display()),
        )),
        // Nobody accepts on it: left by a run that ended without cleaning up.
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            log::info!("replacing the stale socket file {}", path.display());
            fs::remove_file(path)
        }
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("{}: cannot tell whether it is in use: {e}", path.display()),
        )),
    }
}

/// A non-blocking Unix-domain stream listener on `path`, with the
/// bootstrap's backlog and buffer sizes.
pub(crate) fn bind_unix(
    path: &Path,
    options: &SocketOptions,
) -> io::Result<(Listener, SocketFile)> {
    clear_stale(path)?;
    let addr = SockAddr::unix(path)?;
    let socket = socket2::Socket::new(Domain::UNIX, Type::STREAM, None)?;
    if let Some(n) = options.recv_buffer {
        socket.set_recv_buffer_size(n)?;
    }
    if let Some(n) = options.send_buffer {
        socket.set_send_buffer_size(n)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr)?;
    let meta = fs::symlink_metadata(path)?;
    let file = SocketFile {
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    // From here on `file` removes what the bind created if listen fails.
    socket.listen(options.backlog)?;
    let std: std::os::unix::net::UnixListener = socket.into();
    Ok((Listener::Unix(mio::net::UnixListener::from_std(std)), file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wharf-unix-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn a_stale_socket_file_is_replaced_and_a_live_one_is_not() {
        let dir = dir("stale");
        let path = dir.join("s.sock");
        let options = SocketOptions::default();
        // A file left by a listener that is gone.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        assert!(path.exists(), "std leaves the file behind");
        let (live, file) = bind_unix(&path, &options).expect("a stale file is replaced");
        let error = bind_unix(&path, &options).expect_err("a live socket is kept");
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse, "{error}");
        drop(live);
        drop(file);
        assert!(!path.exists(), "the server removes its file");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_path_that_is_not_a_socket_is_never_removed() {
        let dir = dir("regular");
        let path = dir.join("data");
        fs::write(&path, b"keep me").expect("file");
        let error = bind_unix(&path, &SocketOptions::default()).expect_err("not a socket");
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists, "{error}");
        assert_eq!(fs::read(&path).expect("still there"), b"keep me");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_replaced_meanwhile_is_not_removed_by_the_old_server() {
        let dir = dir("replaced");
        let path = dir.join("s.sock");
        let (listener, file) = bind_unix(&path, &SocketOptions::default()).expect("bind");
        drop(listener);
        fs::remove_file(&path).expect("remove");
        fs::write(&path, b"someone else's").expect("file");
        drop(file);
        assert!(path.exists(), "another file at the path stays");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn reuseport_is_refused_for_unix_sockets() {
        let error = check_unix_config(
            ReactorMode::Reuseport { reactors: 2 },
            &SocketOptions::default(),
        )
        .expect_err("reuseport");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(error.to_string().starts_with("mode:"), "{error}");
    }
}
