//! Files that are not regular files or directories (issue 9, point 1): a
//! FIFO, a Unix socket, a FIFO where `index.html` would be. Opening a FIFO
//! without `O_NONBLOCK` waits for a writer, on the thread that opens it: a
//! request for one must neither hang nor stop the loop (or worker) that
//! serves other connections, nor keep the server from shutting down.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::common::{self, Config};
use crate::site::{Site, Spec};

/// Makes a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    let c_path = CString::new(path.as_os_str().as_bytes()).expect("a path without NUL");
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) };
    assert_eq!(
        rc,
        0,
        "mkfifo {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// When dropped (also when a test fails), opens the FIFO for writing until
/// no reader waits on it: a server thread stuck in `open` is let go, so
/// the server can be shut down and the test ends.
struct ReleaseReaders(PathBuf);

impl Drop for ReleaseReaders {
    fn drop(&mut self) {
        for _ in 0..16 {
            let writer = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.0);
            if writer.is_err() {
                // ENXIO: no reader is waiting.
                break;
            }
        }
    }
}

/// GET or HEAD `target` on a fresh connection: its status, or a failure
/// that says the server did not answer.
fn status_of(running: &crate::site::Running, method: &str, target: &str, what: &str) -> u16 {
    let mut client = running.client();
    client.read_timeout(Duration::from_secs(3));
    client.send(&crate::client::request(method, target, &[]));
    match client.response(method == "HEAD") {
        Ok(response) => response.status,
        Err(e) => {
            panic!("{what}: {method} {target}: no answer within 3 s ({e}): the server is stuck")
        }
    }
}

#[test]
fn a_fifo_or_socket_is_refused_at_once_and_blocks_nothing() {
    let site = Site::new("fifo");
    site.write("a.txt", b"hi\n");
    site.mkdir("fifo-index");
    let fifo = site.root.join("fifo");
    mkfifo(&fifo);
    mkfifo(&site.root.join("fifo-index/index.html"));
    let _socket =
        std::os::unix::net::UnixListener::bind(site.root.join("sock")).expect("a Unix socket");
    let configs = Config::all().into_iter().filter(|c| c.pooled).collect();
    common::for_each(configs, |config| {
        for pool in [false, true] {
            refuse_special_files(&site, &fifo, config, pool);
        }
    });
}

fn refuse_special_files(site: &Site, fifo: &Path, config: Config, pool: bool) {
    {
        let what = format!("{config}, open pool {pool}");
        let running = Spec::new(&site.root).config(config).open_pool(pool).start();
        // Declared after the server: dropped, and so run, before it.
        let _release = (
            ReleaseReaders(fifo.to_path_buf()),
            ReleaseReaders(site.root.join("fifo-index/index.html")),
        );
        // A connection that is being served when the FIFO is asked for.
        let mut other = running.client();
        assert_eq!(other.get("/a.txt").body, b"hi\n", "{what}");

        let started = Instant::now();
        assert_eq!(status_of(&running, "GET", "/fifo", &what), 403, "{what}");
        assert_eq!(status_of(&running, "HEAD", "/fifo", &what), 403, "{what}");
        assert_eq!(status_of(&running, "GET", "/sock", &what), 403, "{what}");
        // A FIFO named index.html is no index: the directory is listed.
        assert_eq!(
            status_of(&running, "GET", "/fifo-index/", &what),
            200,
            "{what}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{what}: the refusals took {:?}",
            started.elapsed()
        );
        // The other connection, the listing and new clients are served.
        other.read_timeout(Duration::from_secs(3));
        assert_eq!(other.get("/a.txt").body, b"hi\n", "{what}");
        let listing = Client::connect(running.server.local_addr()).get("/").text();
        assert!(listing.contains("./fifo\""), "{what}: {listing}");

        // And the server shuts down without anyone writing to the FIFO.
        drop(other);
        let mut server = running.server;
        let started = Instant::now();
        server
            .shutdown_gracefully(Duration::ZERO, Duration::from_secs(5))
            .expect("shut down");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{what}: the shutdown took {:?}",
            started.elapsed()
        );
    }
}
