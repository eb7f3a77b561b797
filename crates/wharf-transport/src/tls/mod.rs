//! TLS as a layer of every channel's pipeline, between the socket and the
//! codec: handlers and codecs are the same over TLS and plain TCP; a
//! bootstrap chooses with [`ServerBootstrap::tls`](crate::ServerBootstrap::tls)
//! or [`Bootstrap::tls`](crate::Bootstrap::tls).
//!
//! * The handshake is rustls's (TLS 1.3 and 1.2, ALPN, SNI, session
//!   tickets), driven through its unbuffered API on the channel's loop,
//!   with a timeout (default 10 s). The handler's
//!   [`on_active`](crate::Handler::on_active) comes once it is done, with
//!   [`Context::tls`](crate::Context::tls) telling what was negotiated; a
//!   failed handshake reaches the handler as
//!   [`ChannelError::Tls`](crate::ChannelError::Tls) and `on_inactive`,
//!   without `on_active`.
//! * Records after the handshake are sealed and opened in place in the
//!   channel's pooled buffers (see `records.rs`), with the keys rustls's
//!   kernel-connection API hands over; no allocation per record.
//! * `close_notify` is sent when a channel closes or shuts its output
//!   down, and a received one ends the input like a FIN.
//! * [`FileRegion`](crate::FileRegion)s cannot be `sendfile`d through a
//!   user-space record layer: under TLS every strategy reads the file in
//!   record-sized pieces into the output batch (bounded memory, any file
//!   size), only while the channel is writable. [`kernel_tls_available`]
//!   tells whether the kernel could take the record layer over.

mod config;
mod error;
mod handshake;
mod info;
mod kernel;
mod records;
pub(crate) mod session;
mod sni;
mod traffic;
mod verify;

pub use config::{
    DEFAULT_HANDSHAKE_TIMEOUT, TlsClient, TlsClientBuilder, TlsServer, TlsServerBuilder,
    certified_key_from_pem, load_certified_key,
};
pub use error::TlsError;
pub use info::TlsInfo;
pub use kernel::kernel_tls_available;
/// rustls, whose configuration types [`TlsServer::from_config`] and
/// [`TlsClient::from_config`] take.
pub use rustls;
