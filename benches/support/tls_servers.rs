//! The servers of the TLS comparisons: wharf's echo over TLS in a reactor
//! mode, and tokio-rustls's echo on tokio's multi-threaded runtime (the
//! Rust peer), with the same certificate, rustls version and ring
//! provider, in-process on loopback.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wharf::tls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use wharf::tls::{TlsServer, certified_key_from_pem};
use wharf::transport::handlers::Echo;
use wharf::{Pipeline, ReactorMode, Server, ServerBootstrap, Trigger};

use crate::certs::TestCerts;

/// Thread-name prefix of every server thread (to measure their CPU time).
pub const TLS_THREADS: &str = "tls-srv";

/// A certificate for `localhost` and the configurations built on it.
pub struct TlsSetup {
    pub certs: TestCerts,
    pub server: TlsServer,
    pub client: Arc<ClientConfig>,
}

impl TlsSetup {
    pub fn new() -> TlsSetup {
        let certs = TestCerts::new(&["localhost"], |_, _| {});
        let leaf = &certs.leaves[0];
        let key = certified_key_from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes())
            .expect("certificate and key");
        let server = TlsServer::builder()
            .certificate(key)
            .build()
            .expect("TLS server settings");
        let mut roots = RootCertStore::empty();
        roots.add(certs.ca_der.clone()).expect("CA root");
        let client = Arc::new(
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .expect("TLS 1.3")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        );
        TlsSetup {
            certs,
            server,
            client,
        }
    }
}

impl Default for TlsSetup {
    fn default() -> TlsSetup {
        TlsSetup::new()
    }
}

/// A TLS echo server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsTarget {
    Wharf {
        mode: ReactorMode,
        trigger: Trigger,
    },
    /// tokio-rustls on tokio's multi-threaded runtime with this many
    /// worker threads.
    TokioRustls {
        threads: usize,
    },
}

impl TlsTarget {
    /// wharf with two I/O threads (or one, single), and tokio-rustls with
    /// two worker threads.
    pub fn all() -> Vec<TlsTarget> {
        let mut all: Vec<TlsTarget> = [
            ReactorMode::Single,
            ReactorMode::MultiReactor {
                sub_reactors: 2,
                workers: 0,
            },
            ReactorMode::Reuseport { reactors: 2 },
        ]
        .into_iter()
        .map(|mode| TlsTarget::Wharf {
            mode,
            trigger: Trigger::Edge,
        })
        .collect();
        all.push(TlsTarget::TokioRustls { threads: 2 });
        all
    }

    /// `wharf-single`, `wharf-multi2`, `tokio-rustls`, …
    pub fn name(&self) -> String {
        match self {
            TlsTarget::Wharf { mode, .. } => format!("wharf-{}", mode_name(*mode)),
            TlsTarget::TokioRustls { .. } => "tokio-rustls".to_string(),
        }
    }

    /// Starts the server on a free loopback port.
    pub fn start(&self, setup: &TlsSetup) -> TlsRunning {
        match *self {
            TlsTarget::Wharf { mode, trigger } => {
                let server = ServerBootstrap::new()
                    .mode(mode)
                    .trigger(trigger)
                    .thread_name(TLS_THREADS)
                    .tls(setup.server.clone())
                    .child_handler(|| Pipeline::bytes(Echo))
                    .bind("127.0.0.1:0")
                    .expect("bind the wharf TLS server");
                TlsRunning::Wharf(server)
            }
            TlsTarget::TokioRustls { threads } => TlsRunning::Tokio(TokioRustlsEcho::start(
                threads,
                setup.server.config().clone(),
            )),
        }
    }
}

fn mode_name(mode: ReactorMode) -> String {
    match mode {
        ReactorMode::Single => "single".to_string(),
        ReactorMode::WorkerPool { workers } => format!("pool{workers}"),
        ReactorMode::MultiReactor {
            sub_reactors,
            workers: 0,
        } => format!("multi{sub_reactors}"),
        ReactorMode::MultiReactor {
            sub_reactors,
            workers,
        } => format!("multi{sub_reactors}+{workers}w"),
        ReactorMode::Reuseport { reactors } => format!("reuseport{reactors}"),
    }
}

/// A running TLS server.
pub enum TlsRunning {
    Wharf(Server),
    Tokio(TokioRustlsEcho),
}

impl TlsRunning {
    pub fn addr(&self) -> SocketAddr {
        match self {
            TlsRunning::Wharf(s) => s.local_addr(),
            TlsRunning::Tokio(t) => t.addr,
        }
    }

    pub fn stop(self) {
        match self {
            TlsRunning::Wharf(mut s) => {
                let _ = s.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
            }
            TlsRunning::Tokio(t) => drop(t),
        }
    }
}

/// tokio-rustls's echo: accept, handshake, then the read / write_all loop
/// on the TLS stream, one task per connection.
pub struct TokioRustlsEcho {
    pub addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TokioRustlsEcho {
    fn start(threads: usize, config: Arc<ServerConfig>) -> TokioRustlsEcho {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(TLS_THREADS)
            .enable_io()
            .build()
            .expect("tokio runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the tokio-rustls server");
        let addr = listener.local_addr().expect("address");
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        runtime.spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let _ = socket.set_nodelay(true);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        let n = match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if tls.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        if tls.flush().await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        TokioRustlsEcho {
            addr,
            runtime: Some(runtime),
        }
    }
}

impl Drop for TokioRustlsEcho {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// CPU time (user + system) of the TLS server threads.
pub fn tls_server_cpu_time() -> Duration {
    wharf::transport::sys::limits::threads_usage(TLS_THREADS).0
}
