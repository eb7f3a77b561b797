//! Ready-made handlers: an echo, and a proxy that relays to an upstream.

mod proxy;

use wharf_buf::ByteBuf;

use crate::{Context, Handler};

pub use proxy::{ProxyHandler, ProxyStats, TcpProxy};

/// Writes every byte it reads back to the peer, flushing once per batch of
/// reads, and stops reading while the peer is not keeping up (the outbound
/// queue is above its high water mark) so that a client that sends without
/// reading cannot make the server buffer without bound.
///
/// ```
/// use wharf_transport::{handlers::Echo, Pipeline};
///
/// let make = || Pipeline::bytes(Echo::default());
/// # let _ = make();
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl Handler for Echo {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
        ctx.write(msg);
    }

    fn on_read_complete(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        ctx.flush();
        if !ctx.is_writable() {
            ctx.set_auto_read(false);
        }
    }

    fn on_writability_changed(&mut self, ctx: &mut Context<'_, ByteBuf>, writable: bool) {
        ctx.set_auto_read(writable);
    }
}
