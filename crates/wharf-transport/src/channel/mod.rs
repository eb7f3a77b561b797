//! Channels: connections on an event loop, the pipeline of codec and
//! handler above each one, and the outbound queue below. Channel code sees
//! its loop only through [`env::ChannelEnv`]; it never reaches into the
//! loop itself.

pub(crate) mod closing;
pub(crate) mod codec;
pub(crate) mod config;
pub(crate) mod connection;
pub(crate) mod context;
pub(crate) mod cumulation;
pub(crate) mod env;
#[cfg(test)]
mod footprint;
pub(crate) mod handle;
pub(crate) mod handler;
pub(crate) mod idle;
pub(crate) mod init;
pub(crate) mod io_flags;
pub(crate) mod lifecycle;
pub(crate) mod local;
pub(crate) mod outbound;
pub(crate) mod pipeline;
pub(crate) mod pooled;
pub(crate) mod rare;
pub(crate) mod reader;
pub(crate) mod receive;
pub(crate) mod receives;
pub(crate) mod recv;
pub(crate) mod shared;
pub(crate) mod socket;
pub(crate) mod spare;
pub(crate) mod timers;
pub(crate) mod tls_io;
pub(crate) mod write_account;
pub(crate) mod writer;
