//! The key-value server example over real sockets: the example's own
//! modules are compiled in and served in-process, and a small RESP client
//! over `std::net::TcpStream` checks what arrives on the wire.
//!
//! * [`behaviour`]: commands and replies, pipelining (answered in order),
//!   QUIT (answered, then closed, nothing after it run), protocol errors
//!   (Redis's reply, then the close), expiry by the sweep, in every
//!   reactor mode × trigger × allocator.
//! * [`transcript`]: a scripted session, error cases included, compared
//!   reply by reply with what Redis 7 answered to the same script
//!   (recorded in `transcript/`; re-recorded with
//!   `scripts/record_kv_transcript.sh` where Redis is installed), and the
//!   same script through `redis-cli` when it is installed.
//! * [`large`]: a 400 MB `SET` is received into one allocation of its
//!   size and stored without a copy.

#[path = "../../examples/kv_server/commands.rs"]
mod commands;
#[path = "../../examples/kv_server/server.rs"]
mod server;
#[path = "../../examples/kv_server/store.rs"]
mod store;

#[path = "../common/mod.rs"]
mod common;

mod client;

mod behaviour;
mod large;
mod transcript;
