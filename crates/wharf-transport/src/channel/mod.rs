//! Channels: connections and listeners on an event loop, the pipeline of
//! codec and handler above each connection, and the outbound queue below.

pub(crate) mod acceptor;
pub(crate) mod codec;
pub(crate) mod config;
pub(crate) mod connection;
pub(crate) mod context;
pub(crate) mod handle;
pub(crate) mod handler;
pub(crate) mod init;
pub(crate) mod outbound;
pub(crate) mod pipeline;
pub(crate) mod recv;
pub(crate) mod shared;
