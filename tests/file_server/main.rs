//! The static file server example, black-box over HTTP/1.1: the example's
//! own modules are compiled in (so their unit tests run here too) and
//! served in-process, and a small client over `std::net::TcpStream` checks
//! what arrives on the wire.
//!
//! * [`transfers`]: every transfer strategy (and direct I/O) × trigger
//!   sends files of 0 B to 64 MiB byte-identical; every reactor mode
//!   serves sequential and concurrent clients; ranges past 2 and 4 GiB of
//!   a sparse file; a file truncated under a transfer ends only that
//!   response, and no loop spins afterwards.
//! * [`semantics`]: `Range` (206/416, `If-Range`), HEAD (never a body,
//!   whatever the status), conditional requests (304).
//! * [`connections`]: pipelining, keep-alive and `Connection: close` in
//!   HTTP/1.1 and 1.0, half-closing clients, clients that pipeline without
//!   reading, the connection limit (503).
//! * [`listing_page`]: directory listings as a person expects them (sizes,
//!   times, directories first, sorting, the parent link); dotfiles hidden
//!   and answered 404 unless shown, in every mode × trigger.
//! * [`safety`]: traversal attempts never leave the root; redirects stay
//!   on the site; index pages and escaped listings for directories.
//! * [`special_files`]: a FIFO or a socket is refused (403) at once, and
//!   neither stalls a loop nor the shutdown, in every mode × trigger.
//! * [`errors`]: malformed and refused requests get their status and a
//!   close, and the server goes on serving.
//! * [`shutdown`]: idle connections close as soon as a graceful shutdown
//!   begins; the responses its deadline cuts are counted.
//! * [`https`]: the same over TLS: files of 0 B to 64 MiB byte-identical
//!   with every strategy (each falls back to copying into the records),
//!   ranges, HEAD, conditionals, listings in every mode × trigger, and
//!   `close_notify` before the close.
//! * [`timeouts`]: slowloris gets 408, idle kept-alive connections close,
//!   and the keep-alive timer does not run while a response is sent.
//! * [`uploads`]: `PUT` with `--upload` (issue 11 §2): bodies of 0 B to
//!   256 MiB stored byte-identical (201, then 204) in every mode × trigger;
//!   aborted uploads leave no file and no temporary; nothing outside the
//!   root is ever written; 405, 409, 411, 413 (before the body) and
//!   `Expect: 100-continue`; concurrent uploads of one path leave exactly
//!   one body; a replaced file's GET in progress is not disturbed.
//!
//! * [`open_file_cache`]: files served again from the open-file cache
//!   (issue 12 §3) are never stale: changed, rewritten, replaced,
//!   truncated, deleted, a swapped symlink, an upload, in every mode ×
//!   trigger, GET and HEAD.
//!
//! Bodies are compared byte for byte with the files (a `memcmp`, faster in
//! a debug build than any hash computed here). No test sleeps to wait for
//! the server; the sleeps that remain pace slow clients or bound the window
//! in which something must not happen.

// The example's modules, at the crate root as in the example (they name
// each other `crate::…`).
#[path = "../../examples/file_server/access_log.rs"]
mod access_log;
#[path = "../../examples/file_server/budget.rs"]
#[allow(dead_code)] // `Budget::for_process` is for the example's start-up.
mod budget;
#[path = "../../examples/file_server/cache.rs"]
mod cache;
#[path = "../../examples/file_server/conditional.rs"]
mod conditional;
#[path = "../../examples/file_server/deadline.rs"]
mod deadline;
#[path = "../../examples/file_server/handler.rs"]
mod handler;
#[path = "../../examples/file_server/listing.rs"]
mod listing;
#[path = "../../examples/file_server/mapped.rs"]
mod mapped;
#[path = "../../examples/file_server/opener.rs"]
#[allow(dead_code)] // `opens_may_block` is for the example's start-up.
mod opener;
#[path = "../../examples/file_server/paths.rs"]
#[allow(dead_code)] // `Root::path` is for the example's banner only.
mod paths;
#[path = "../../examples/file_server/range.rs"]
mod range;
#[path = "../../examples/file_server/registry.rs"]
mod registry;
#[path = "../../examples/file_server/respond.rs"]
mod respond;
#[path = "../../examples/file_server/settings.rs"]
mod settings;
#[path = "../../examples/file_server/upload.rs"]
mod upload;

#[path = "../common/mod.rs"]
mod common;

mod client;
mod site;

mod connections;
mod errors;
mod https;
mod listing_page;
mod open_file_cache;
mod safety;
mod semantics;
mod shutdown;
mod special_files;
mod timeouts;
mod transfers;
mod upload_refusals;
mod uploads;
