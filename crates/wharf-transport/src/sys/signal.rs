//! Waiting for Ctrl-C or `SIGTERM` without a signal handler, and keeping
//! `SIGPIPE` away from event loops.
//!
//! [`block_termination_signals`] masks `SIGINT` and `SIGTERM` in the calling
//! thread, and so in every thread it starts afterwards; one thread then
//! waits for them with [`wait_for_termination`] (`sigwait`) and can shut a
//! server down in an orderly way, which a handler running in signal context
//! could not.

use std::io;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

fn termination_set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set
}

/// Masks `SIGINT` and `SIGTERM` in this thread (call it first in `main`,
/// before starting any thread, so every thread inherits the mask).
pub fn block_termination_signals() -> io::Result<()> {
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&termination_set()), None)
        .map_err(io::Error::from)
}

/// Blocks until `SIGINT` or `SIGTERM` arrives; returns its name.
pub fn wait_for_termination() -> io::Result<&'static str> {
    let signal = termination_set().wait().map_err(io::Error::from)?;
    Ok(signal.as_str())
}

/// Blocks `SIGPIPE` in the calling thread. Event loops call it when they
/// start: `sendfile(2)` and `splice(2)` cannot carry `MSG_NOSIGNAL`, and a
/// program may have restored `SIGPIPE`'s default action (Rust's runtime
/// ignores it only in Rust binaries). A write to a peer that has gone then
/// fails with `EPIPE` on that channel, and the signal stays pending on the
/// loop thread, harmless, instead of killing the process.
pub(crate) fn block_sigpipe() -> io::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGPIPE);
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(io::Error::from)
}
