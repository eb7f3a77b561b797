//! Fixtures: a directory to serve under the target's temp dir, and the
//! example's handler served over it in-process, as its `main` wires it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wharf::tls::TlsServer;
use wharf::tls::rustls::ClientConfig;
use wharf::{ReactorMode, Server, TransferStrategy, Trigger};

use crate::client::Client;
use crate::common::Config;
use crate::settings::{Settings, bootstrap};

/// A directory `dir` holding the served `root` (canonical) and whatever
/// tests put next to it; removed when dropped.
#[derive(Debug)]
pub struct Site {
    pub dir: PathBuf,
    pub root: PathBuf,
}

impl Site {
    pub fn new(name: &str) -> Site {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("file_server-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root")).expect("create the site");
        let root = dir.join("root").canonicalize().expect("canonical root");
        Site { dir, root }
    }

    /// Writes `contents` to `rel` under the root (creating directories).
    pub fn write(&self, rel: &str, contents: &[u8]) -> PathBuf {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create directories");
        }
        std::fs::write(&path, contents).expect("write a served file");
        path
    }

    /// Creates directory `rel` under the root.
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let path = self.root.join(rel);
        std::fs::create_dir_all(&path).expect("create a directory");
        path
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How to run one server.
#[derive(Debug, Clone)]
pub struct Spec {
    root: PathBuf,
    config: Config,
    transfer: TransferStrategy,
    directio: u64,
    header_timeout: Duration,
    keepalive_timeout: Duration,
    close_timeout: Duration,
    max_connections: usize,
    open_pool: bool,
    send_buffer: Option<usize>,
    show_hidden: bool,
    upload: bool,
    max_upload: u64,
    open_file_cache: usize,
    name: &'static str,
    /// HTTPS with this server setting, and clients that trust it.
    tls: Option<(TlsServer, Arc<ClientConfig>)>,
}

impl Spec {
    /// Single reactor, edge-triggered, `Auto`, no direct I/O, generous
    /// timeouts, no practical connection limit.
    pub fn new(root: &Path) -> Spec {
        Spec {
            root: root.to_path_buf(),
            config: Config {
                mode: ReactorMode::Single,
                trigger: Trigger::Edge,
                pooled: true,
            },
            transfer: TransferStrategy::Auto,
            directio: 0,
            header_timeout: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            open_pool: false,
            send_buffer: None,
            show_hidden: false,
            upload: false,
            max_upload: 1 << 30,
            open_file_cache: crate::settings::DEFAULT_OPEN_FILE_CACHE,
            name: "fs-test",
            tls: None,
        }
    }

    /// Serves HTTPS with `server`; the test clients trust `client`.
    pub fn tls(mut self, server: TlsServer, client: Arc<ClientConfig>) -> Spec {
        self.tls = Some((server, client));
        self
    }

    pub fn config(mut self, config: Config) -> Spec {
        self.config = config;
        self
    }

    pub fn trigger(mut self, trigger: Trigger) -> Spec {
        self.config.trigger = trigger;
        self
    }

    pub fn transfer(mut self, transfer: TransferStrategy) -> Spec {
        self.transfer = transfer;
        self
    }

    /// Files of at least `threshold` bytes go out with direct I/O.
    pub fn directio(mut self, threshold: u64) -> Spec {
        self.directio = threshold;
        self
    }

    pub fn timeouts(mut self, header: Duration, keepalive: Duration) -> Spec {
        self.header_timeout = header;
        self.keepalive_timeout = keepalive;
        self
    }

    /// How long a response may make no progress before it is reset.
    pub fn close_timeout(mut self, timeout: Duration) -> Spec {
        self.close_timeout = timeout;
        self
    }

    pub fn max_connections(mut self, max: usize) -> Spec {
        self.max_connections = max;
        self
    }

    /// Whether requests are answered on an open pool (as for a root on a
    /// network file system) rather than on the handler's thread.
    pub fn open_pool(mut self, on: bool) -> Spec {
        self.open_pool = on;
        self
    }

    /// The server sockets' `SO_SNDBUF`.
    pub fn send_buffer(mut self, bytes: usize) -> Spec {
        self.send_buffer = Some(bytes);
        self
    }

    /// Whether dotfiles are listed and served (`--show-hidden`).
    pub fn show_hidden(mut self, show: bool) -> Spec {
        self.show_hidden = show;
        self
    }

    /// Whether `PUT` stores bodies under the root (`--upload`).
    pub fn upload(mut self, on: bool) -> Spec {
        self.upload = on;
        self
    }

    /// The largest upload accepted (`--max-upload`).
    pub fn max_upload(mut self, bytes: u64) -> Spec {
        self.max_upload = bytes;
        self
    }

    /// Files each thread keeps in its open-file cache (0: off).
    pub fn open_file_cache(mut self, files: usize) -> Spec {
        self.open_file_cache = files;
        self
    }

    /// The prefix of the server's thread names.
    pub fn name(mut self, name: &'static str) -> Spec {
        self.name = name;
        self
    }

    /// Binds to a free loopback port and serves.
    pub fn start(self) -> Running {
        let root = crate::paths::Root::open(&self.root).expect("open the root");
        let settings = Arc::new(Settings {
            transfer: self.transfer,
            directio: self.directio,
            header_timeout: self.header_timeout,
            keepalive_timeout: self.keepalive_timeout,
            close_timeout: self.close_timeout,
            max_connections: self.max_connections,
            show_hidden: self.show_hidden,
            upload: self.upload,
            max_upload: self.max_upload,
            open_file_cache: self.open_file_cache,
            open_pool: self
                .open_pool
                .then(|| crate::opener::OpenPool::start(2).expect("start an open pool")),
            tls: self.tls.as_ref().map(|(server, _)| server.clone()),
            ..Settings::new(root)
        });
        let mut base = self.config.server().thread_name(self.name);
        if let Some(bytes) = self.send_buffer {
            base = base.option(wharf::SocketOption::SendBuffer(bytes));
        }
        let server = bootstrap(base, &settings)
            .bind("127.0.0.1:0")
            .expect("bind the file server");
        Running {
            server,
            settings,
            tls_client: self.tls.map(|(_, client)| client),
        }
    }
}

/// A server running the example's handler.
#[derive(Debug)]
pub struct Running {
    pub server: Server,
    pub settings: Arc<Settings>,
    /// Set when the server speaks HTTPS.
    pub tls_client: Option<Arc<ClientConfig>>,
}

impl Running {
    /// A new connection (over TLS if the server speaks it).
    pub fn client(&self) -> Client {
        match &self.tls_client {
            Some(config) => Client::connect_tls(self.server.local_addr(), Arc::clone(config)),
            None => Client::connect(self.server.local_addr()),
        }
    }

    /// Connections the handler counts as open.
    pub fn open(&self) -> usize {
        self.settings.connections.open()
    }

    /// Waits until the handler counts `n` open connections.
    pub fn wait_open(&self, n: usize) {
        crate::common::wait_until(
            Duration::from_secs(5),
            &format!("{n} open connections"),
            || self.open() == n,
        );
    }
}

/// `len` bytes of a per-`seed` pattern (see `common::pattern`).
pub fn data(seed: u64, len: usize) -> Vec<u8> {
    crate::common::pattern(seed, len)
}

/// Descriptors this process holds open on `path`.
pub fn descriptors_on(path: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|fds| {
            fds.filter_map(|fd| fd.ok())
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .filter(|target| target == path)
                .count()
        })
        .unwrap_or(0)
}

/// Mappings of `path` in this process.
pub fn mappings_of(path: &Path) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let name = path.to_string_lossy();
    maps.lines().filter(|line| line.ends_with(&*name)).count()
}
