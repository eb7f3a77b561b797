//! The framework's metrics, and their Prometheus exposition.
//!
//! This module exists so that a wharf server can be watched the way
//! servers are watched: [`Server::metrics`](crate::Server::metrics) gives
//! snapshots of every loop's and worker's counters, gauges and histograms
//! and of the allocator (the types are
//! [`wharf_transport::metrics`]'s, re-exported here); [`render`] writes a
//! snapshot in Prometheus's text format through the Prometheus project's
//! own client crate, and [`serve`] answers `GET /metrics` with it on a
//! listener of its own, served by a small wharf server.
//!
//! ```no_run
//! use wharf::prelude::*;
//! use wharf::transport::handlers::Echo;
//!
//! let server = ServerBootstrap::new()
//!     .child_handler(|| Pipeline::bytes(Echo))
//!     .bind("127.0.0.1:7007")?;
//! let exporter = wharf::metrics::serve("127.0.0.1:9100", server.metrics_handle())?;
//! // curl http://127.0.0.1:9100/metrics
//! let total = server.metrics().total();
//! println!("{} messages decoded", total.stats.messages_decoded);
//! # drop(exporter);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What is exposed
//!
//! Every series has the prefix `wharf_`. Loop figures carry a `loop` label
//! (the loop's id; add them up with `sum` for the server), worker figures
//! a `worker` label:
//!
//! | series | type | what |
//! |---|---|---|
//! | `connections`, `max_connections` | gauge | open connections of the server, its limit |
//! | `loop_connections`, `outbound_queued_bytes` | gauge | per loop: open channels, bytes queued for output |
//! | `polls_total`, `events_total`, `reads_total`, `read_bytes_total`, `writes_total`, `written_bytes_total`, `epoll_ctl_total`, `tasks_total`, `timers_total`, `wakeups_total` | counter | per loop: what it did |
//! | `accepts_total`, `connections_opened_total`, `connections_closed_total`, `connections_refused_total`, `accept_backoffs_total`, `shutdown_aborts_total` | counter | per loop: connections |
//! | `messages_decoded_total`, `writability_flips_total`, `backpressure_pauses_total` | counter | per loop: messages, backpressure |
//! | `events_per_poll` | histogram | per loop: readiness events per `epoll_wait` |
//! | `handler_seconds`, `loop_lag_seconds` | histogram | per loop: a pipeline callback's time (sampled), an iteration's time |
//! | `worker_tasks_total`, `worker_handler_seconds` | counter, histogram | per worker |
//! | `allocator_*` | counter, gauge | the buffer pool: chunks and bytes mapped, bytes in use, allocations, cache hits and misses, cross-thread returns |

mod exporter;
mod prometheus;

pub use exporter::serve;
pub use prometheus::{CONTENT_TYPE, render};
pub use wharf_transport::metrics::*;
