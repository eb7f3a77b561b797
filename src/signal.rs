//! Waiting for Ctrl-C or `SIGTERM` to shut a server down in order.
//!
//! A server's `main` masks the termination signals before it starts any
//! thread (so every thread inherits the mask and none is interrupted),
//! binds, then waits for a signal on its own thread and shuts down
//! gracefully: no signal handler runs in signal context, so the shutdown
//! can take locks, log and join threads. Every example server does this.
//!
//! ```no_run
//! use std::time::Duration;
//! use wharf::prelude::*;
//! use wharf::transport::handlers::Echo;
//!
//! fn main() -> std::io::Result<()> {
//!     // First, before any thread starts.
//!     wharf::signal::block_termination_signals()?;
//!     let mut server = ServerBootstrap::new()
//!         .child_handler(|| Pipeline::bytes(Echo))
//!         .bind("127.0.0.1:7007")?;
//!     let signal = wharf::signal::wait_for_termination()?;
//!     eprintln!("{signal}: shutting down");
//!     server.shutdown_gracefully(Duration::from_millis(500), Duration::from_secs(5))
//! }
//! ```
//!
//! A second signal during the shutdown is delivered to the next
//! [`wait_for_termination`]; the file server exits at once on it.

pub use wharf_transport::sys::signal::{block_termination_signals, wait_for_termination};
