//! A static HTTP/1.1 file server on wharf.
//!
//! ```text
//! cargo run --release --example file_server                # serves . at http://127.0.0.1:8080
//! cargo run --release --example file_server -- --root /srv/www --mode multi --transfer splice
//! cargo run --release --example file_server -- --tls-cert cert.pem --tls-key key.pem   # HTTPS
//! ```
//!
//! GET and HEAD, keep-alive and pipelining, `Range` (206/416),
//! `If-None-Match`/`If-Modified-Since` (304), `index.html` or an HTML
//! listing for directories, MIME types from the extension, safe paths
//! (nothing outside `--root` is ever served, only regular files and
//! directories), header, keep-alive and stall timeouts, a connection limit
//! that fits the descriptor limit. Files go out with the chosen transfer
//! strategy (sendfile by default); `--directio` sends large files with
//! `O_DIRECT` reads off the event loop. `--tls-cert` and `--tls-key` serve
//! the same over HTTPS (TLS 1.3 and 1.2, ALPN `http/1.1`). `--upload`
//! stores `PUT` bodies under the root (spliced straight into the file,
//! renamed into place once complete; `--max-upload`, 1 GiB by default). Ctrl-C or SIGTERM shuts it down
//! gracefully, a second one at once. The README's file-server section
//! says what it refuses and why.

mod access_log;
mod budget;
mod cache;
mod conditional;
mod deadline;
mod handler;
mod listing;
mod mapped;
#[path = "../common/metrics_args.rs"]
mod metrics_args;
mod opener;
mod paths;
mod range;
#[path = "../common/reactor_args.rs"]
mod reactor_args;
mod registry;
mod respond;
mod serve;
mod settings;
#[path = "../common/tls_args.rs"]
mod tls_args;
mod upload;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    wharf::logging::init();
    serve::main(serve::Args::parse())
}
