//! What every connection of the server shares, and the bootstrap that
//! wires the server: the example's `main` and the tests use the same.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use wharf::codec::HttpServerCodec;
use wharf::tls::TlsServer;
use wharf::{Lingering, Pipeline, ServerBootstrap, TransferStrategy};

use crate::handler::FileServer;
use crate::opener::OpenPool;
use crate::paths::Root;
use crate::registry::Connections;

/// How long a connection closed while its client still sends lingers.
const LINGER: Duration = Duration::from_secs(2);

/// Files each thread keeps open by default.
pub const DEFAULT_OPEN_FILE_CACHE: usize = 1000;

/// What every connection of the server shares.
#[derive(Debug)]
pub struct Settings {
    /// The directory served.
    pub root: Root,
    /// How files reach the socket.
    pub transfer: TransferStrategy,
    /// Files at least this long are read with direct I/O (0: never).
    pub directio: u64,
    /// How long a request head may take to arrive.
    pub header_timeout: Duration,
    /// How long a kept-alive connection may sit idle.
    pub keepalive_timeout: Duration,
    /// How long a response may make no write progress before the
    /// connection is reset (the transport's close timeout, for closing
    /// connections and kept-alive ones alike).
    pub close_timeout: Duration,
    /// Connections served at once; more are answered 503.
    pub max_connections: usize,
    /// Whether to print an access-log line per response.
    pub log: bool,
    /// Whether dotfiles (`.git`, `.env`) are listed and served; by default
    /// they are not listed and are answered 404.
    pub show_hidden: bool,
    /// The connections open now.
    pub connections: Connections,
    /// Where opens that may block run: `None` on the handler's own thread
    /// (local file systems), else on this pool (see [`crate::opener`]).
    pub open_pool: Option<OpenPool>,
    /// HTTPS instead of HTTP, if set.
    pub tls: Option<TlsServer>,
    /// Whether `PUT` stores request bodies under the root (`--upload`); off: 405.
    pub upload: bool,
    /// The largest upload accepted (`--max-upload`, default 1 GiB); larger: 413.
    pub max_upload: u64,
    /// Files each thread keeps open in its open-file cache
    /// (`--open-file-cache`, default 1000; 0: off). See [`crate::cache`].
    pub open_file_cache: usize,
}

impl Settings {
    /// The defaults for serving `root`: `Auto` transfers, no direct I/O,
    /// 10 s for a request head, 60 s of keep-alive, 10 000 connections,
    /// no access log, dotfiles hidden, plain HTTP, no uploads, an
    /// open-file cache of 1000 files per thread.
    pub fn new(root: Root) -> Settings {
        Settings {
            root,
            transfer: TransferStrategy::Auto,
            directio: 0,
            header_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            log: false,
            show_hidden: false,
            connections: Connections::default(),
            open_pool: None,
            tls: None,
            upload: false,
            max_upload: 1 << 30,
            open_file_cache: DEFAULT_OPEN_FILE_CACHE,
        }
    }
}

/// `base` (mode, trigger, allocator, thread names) serving the file server
/// described by `settings`: the HTTP codec and a [`FileServer`] per
/// connection. The example's `main` and the tests wire it the same way.
pub fn bootstrap(base: ServerBootstrap, settings: &Arc<Settings>) -> ServerBootstrap {
    let shared = Arc::clone(settings);
    // A response whose reader takes nothing for the close timeout is reset,
    // kept alive or not (issue 9, point 4). A connection closed while its
    // client still sends lingers 2 s at most: a descriptor held while the
    // server may be short of them should not be held long.
    let lingering = Lingering {
        timeout: LINGER,
        ..Lingering::default()
    };
    let base = match &settings.tls {
        Some(tls) => base.tls(tls.clone()),
        None => base,
    };
    base.close_timeout(settings.close_timeout)
        .write_timeout(Some(settings.close_timeout))
        .lingering_close(Some(lingering))
        .child_handler(move || {
            let codec = HttpServerCodec::new();
            // Uploads are received into their files by the transport, not
            // read into memory by the codec.
            let codec = if shared.upload {
                codec.hand_over_bodies(|method| method == Method::PUT)
            } else {
                codec
            };
            Pipeline::new(codec, FileServer::new(Arc::clone(&shared)))
        })
}
