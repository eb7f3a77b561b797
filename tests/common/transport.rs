//! The same behaviour test over TCP or a Unix-domain socket: where the
//! server listens, and a blocking client of either kind.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use wharf::{Server, ServerBootstrap};

use super::Config;

/// Which kind of socket a test runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Unix,
}

impl Transport {
    /// The configurations a test runs in over this transport: every mode
    /// × trigger × allocator for TCP; for Unix-domain sockets every mode
    /// but reuseport (refused for them), × trigger, pooled.
    pub fn configs(self) -> Vec<Config> {
        match self {
            Transport::Tcp => Config::all(),
            Transport::Unix => Config::all()
                .into_iter()
                .filter(|c| c.pooled && !matches!(c.mode, wharf::ReactorMode::Reuseport { .. }))
                .collect(),
        }
    }

    /// Binds `bootstrap` on loopback port 0, or on a fresh socket path.
    pub fn bind(self, bootstrap: ServerBootstrap) -> Server {
        match self {
            Transport::Tcp => bootstrap.bind("127.0.0.1:0").expect("bind"),
            Transport::Unix => bootstrap.bind_unix(socket_path()).expect("bind_unix"),
        }
    }
}

/// A socket path no other test uses, in the temporary directory.
pub fn socket_path() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("wharf-test-{}-{n}.sock", std::process::id()))
}

/// A blocking client over either transport, with 20 s timeouts.
#[derive(Debug)]
pub enum Client {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Client {
    /// Connects to `server`, wherever it listens.
    pub fn connect(server: &Server) -> Client {
        let client = match server.unix_path() {
            Some(path) => Client::Unix(UnixStream::connect(path).expect("connect (unix)")),
            None => Client::Tcp(super::connect(server.local_addr())),
        };
        let limit = Some(Duration::from_secs(20));
        match &client {
            Client::Tcp(_) => {}
            Client::Unix(s) => {
                s.set_read_timeout(limit).expect("read timeout");
                s.set_write_timeout(limit).expect("write timeout");
            }
        }
        client
    }

    /// A second handle on the same connection.
    pub fn try_clone(&self) -> Client {
        match self {
            Client::Tcp(s) => Client::Tcp(s.try_clone().expect("clone")),
            Client::Unix(s) => Client::Unix(s.try_clone().expect("clone")),
        }
    }

    /// Shuts down one or both directions.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Client::Tcp(s) => s.shutdown(how),
            Client::Unix(s) => s.shutdown(how),
        }
    }

    /// Reads until the stream ends: the bytes read, and `Ok` for an
    /// orderly end of stream or the error that ended it.
    pub fn read_until_closed(&mut self) -> (Vec<u8>, io::Result<()>) {
        let mut data = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match self.read(&mut buf) {
                Ok(0) => return (data, Ok(())),
                Ok(n) => data.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (data, Err(e)),
            }
        }
    }

    /// Reads exactly `n` bytes.
    pub fn read_exact_n(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.read_exact(&mut buf).expect("read the expected bytes");
        buf
    }
}

impl Read for Client {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Client::Tcp(s) => s.read(buf),
            Client::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Client {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Client::Tcp(s) => s.write(buf),
            Client::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
