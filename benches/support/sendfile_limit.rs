//! The loopback `sendfile` limit (issue 12 §6): no framework, one std
//! thread with a blocking accepted socket that answers each request byte
//! with the whole region, in `sendfile` calls until all of it is sent. No
//! loop, no readiness, no write budget: the baseline a framework's
//! `sendfile` is held against. It is not a ceiling for the other
//! strategies: on loopback a copying one can beat it (see
//! docs/performance.md, "File transfer strategies").

use std::fs::File;
use std::io::Read;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};

use nix::errno::Errno;
use nix::sys::sendfile::sendfile;

/// The limit's thread name (for `threads_usage`).
pub const THREAD: &str = "ftlimit";

/// The running limit peer, serving one connection.
pub struct SendfileLimit {
    /// The accepted socket (a second handle to it), shut down on drop so
    /// that the thread's read ends.
    socket: TcpStream,
    /// Request reads and `sendfile` calls so far.
    syscalls: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl SendfileLimit {
    /// A limit peer that sends `file`'s first `len` bytes for each
    /// request byte, and a client connected to it.
    pub fn connect(file: Arc<File>, len: u64) -> (SendfileLimit, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
        client.set_nodelay(true).expect("nodelay");
        let (socket, _) = listener.accept().expect("accept");
        // As wharf's children.
        socket.set_nodelay(true).expect("nodelay");
        let syscalls = Arc::new(AtomicU64::new(0));
        let serving = socket.try_clone().expect("clone");
        let counted = Arc::clone(&syscalls);
        let thread = thread::Builder::new()
            .name(THREAD.into())
            .spawn(move || serve(serving, &file, len, &counted))
            .expect("spawn");
        let limit = SendfileLimit {
            socket,
            syscalls,
            thread: Some(thread),
        };
        (limit, client)
    }

    /// Request reads and `sendfile` calls so far.
    pub fn syscalls(&self) -> u64 {
        self.syscalls.load(Ordering::Relaxed)
    }
}

impl Drop for SendfileLimit {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(Shutdown::Both);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads requests until the connection ends; each byte gets `len` bytes
/// of `file` from offset 0.
fn serve(mut socket: TcpStream, file: &File, len: u64, syscalls: &AtomicU64) {
    let mut requests = [0u8; 64];
    loop {
        let n = match socket.read(&mut requests) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        syscalls.fetch_add(1, Ordering::Relaxed);
        for _ in 0..n {
            let mut offset = 0;
            while (offset as u64) < len {
                let count = (len - offset as u64) as usize;
                match sendfile(&socket, file, Some(&mut offset), count) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(Errno::EINTR) => {}
                    Err(_) => return,
                }
                syscalls.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
