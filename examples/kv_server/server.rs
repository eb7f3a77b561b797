//! The connection handler and the wiring: a RESP pipeline per connection
//! over the shared store, and the periodic expiry sweep on an event loop.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wharf::codec::resp::{Command, Reply, RespCodec, protocol_error_reply};
use wharf::{ChannelError, Context, Handler, Pipeline, Server, ServerBootstrap, UserEvent};

use crate::commands::{After, execute};
use crate::store::Store;

/// How often the sweep visits the next shard (Redis's `hz` of 10).
pub const SWEEP_PERIOD: Duration = Duration::from_millis(100);

/// One connection: runs each command and writes its reply, in order.
///
/// Each reply is written as its own message; replies written while one
/// batch of reads is handled are flushed together when the batch ends.
/// After `QUIT` nothing more is run: the `+OK` is sent and the connection
/// closed. A protocol error gets Redis's `-ERR Protocol error: …` reply
/// before the connection closes.
#[derive(Debug)]
pub struct KvHandler {
    store: Arc<Store>,
    quit: bool,
}

impl KvHandler {
    /// A handler over `store`.
    pub fn new(store: Arc<Store>) -> KvHandler {
        KvHandler { store, quit: false }
    }
}

impl Handler for KvHandler {
    type In = Command;
    type Out = Reply;

    fn on_read(&mut self, ctx: &mut Context<'_, Reply>, command: Command) {
        if self.quit {
            return;
        }
        let (reply, after) = execute(&self.store, command);
        ctx.write(reply);
        if after == After::Close {
            self.quit = true;
            ctx.flush();
            ctx.close();
        }
    }

    fn on_read_complete(&mut self, ctx: &mut Context<'_, Reply>) {
        ctx.flush();
    }

    fn on_user_event(&mut self, ctx: &mut Context<'_, Reply>, event: UserEvent) {
        // Every command is answered as it arrives, so between two reads a
        // connection is always between requests: close it at once.
        if let UserEvent::Shutdown = event {
            ctx.close();
        }
    }

    fn on_error(&mut self, ctx: &mut Context<'_, Reply>, error: &ChannelError) {
        let reply = match error {
            ChannelError::Decode(e) => protocol_error_reply(e),
            _ => None,
        };
        if let Some(reply) = reply {
            ctx.write(reply);
            ctx.flush();
        }
        ctx.close();
    }
}

/// Binds `bootstrap` at `addr` serving `store`, and starts the expiry
/// sweep on the server's first event loop.
pub fn bind(bootstrap: ServerBootstrap, addr: SocketAddr, store: Arc<Store>) -> io::Result<Server> {
    let shared = Arc::clone(&store);
    let server = bootstrap
        .child_handler(move || Pipeline::new(RespCodec::new(), KvHandler::new(Arc::clone(&shared))))
        .bind(addr)?;
    if let Some(first) = server.event_loops().first() {
        first.schedule_at_fixed_rate(SWEEP_PERIOD, SWEEP_PERIOD, move || {
            store.sweep(Instant::now());
        })?;
    }
    Ok(server)
}
