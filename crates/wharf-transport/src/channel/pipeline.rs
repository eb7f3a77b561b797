//! Pipelines: a codec and a handler put together for one connection, and
//! the two ways the event loop drives them.
//!
//! [`Pipeline`] is what users build: a [`Codec`] (possibly with
//! [`Transform`](crate::Transform)s stacked on it) and a [`Handler`] whose
//! message types match. The loop sees it through [`ChannelPipeline`], and
//! runs it either
//!
//! * entirely on the loop (`LocalPipeline`): decode, handler, encode; or
//! * split (`PooledPipeline`, the worker-pool modes): decode and encode on
//!   the loop, the handler on the worker thread the connection is pinned to.
//!   Events go to the worker in order; what the handler writes comes back to
//!   the loop as one task per handler call.
//!
//! The handler's code is the same either way.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use wharf_buf::ByteBuf;

use crate::channel::codec::{Codec, RawBytes};
use crate::channel::config::ChannelConfig;
use crate::channel::connection::ConnCore;
use crate::channel::context::{Encoder, RemoteOp};
use crate::channel::cumulation::CodecState;
use crate::channel::env::ChannelEnv;
use crate::channel::handler::{ChannelError, Handler, UserEvent};
use crate::channel::local::LocalPipeline;
use crate::channel::pooled::PooledPipeline;
use crate::channel::receive::Received;
use crate::channel::shared::ChannelShared;
use crate::worker::WorkerRef;

/// A codec and a handler for one connection.
///
/// Bootstraps take a closure that makes one per connection:
///
/// ```
/// use wharf_transport::{Context, Handler, Pipeline};
/// use wharf_transport::buf::ByteBuf;
///
/// /// Sends every byte back.
/// struct Echo;
///
/// impl Handler for Echo {
///     type In = ByteBuf;
///     type Out = ByteBuf;
///
///     fn on_read(&mut self, ctx: &mut Context<'_, ByteBuf>, msg: ByteBuf) {
///         ctx.write(msg);
///     }
///
///     fn on_read_complete(&mut self, ctx: &mut Context<'_, ByteBuf>) {
///         ctx.flush();
///     }
/// }
///
/// let make = || Pipeline::bytes(Echo);
/// let _pipeline = make();
/// ```
pub struct Pipeline<C, H> {
    codec: C,
    handler: H,
}

impl<C, H> fmt::Debug for Pipeline<C, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("codec", &std::any::type_name::<C>())
            .field("handler", &std::any::type_name::<H>())
            .finish()
    }
}

impl<C, H> Pipeline<C, H>
where
    C: Codec,
    H: Handler<In = C::In, Out = C::Out>,
{
    /// `codec` below, `handler` on top.
    pub fn new(codec: C, handler: H) -> Self {
        Pipeline { codec, handler }
    }
}

impl<H> Pipeline<RawBytes, H>
where
    H: Handler<In = ByteBuf, Out = ByteBuf>,
{
    /// `handler` over the raw bytes, without framing.
    pub fn bytes(handler: H) -> Self {
        Pipeline::new(RawBytes, handler)
    }
}

/// Makes a connection's pipeline: what bootstraps keep.
pub(crate) type PipelineFactory = Arc<
    dyn Fn(&Arc<ChannelShared>, &ChannelConfig, Option<WorkerRef>) -> Box<dyn ChannelPipeline>
        + Send
        + Sync,
>;

/// A factory from a user closure; the connection gets a local or a pooled
/// pipeline depending on whether a worker is given.
pub(crate) fn factory<C, H, F>(make: F) -> PipelineFactory
where
    C: Codec,
    H: Handler<In = C::In, Out = C::Out>,
    F: Fn() -> Pipeline<C, H> + Send + Sync + 'static,
{
    factory_on_loop(move |_| make())
}

/// A factory from a user closure that is told the id of the event loop the
/// connection is registered on (see
/// [`ServerBootstrap::child_handler_on_loop`](crate::ServerBootstrap::child_handler_on_loop)).
pub(crate) fn factory_on_loop<C, H, F>(make: F) -> PipelineFactory
where
    C: Codec,
    H: Handler<In = C::In, Out = C::Out>,
    F: Fn(usize) -> Pipeline<C, H> + Send + Sync + 'static,
{
    Arc::new(move |shared, config, worker| {
        let Pipeline { codec, handler } = make(shared.event_loop.id());
        let codec = CodecState::new(codec);
        match worker {
            None => Box::new(LocalPipeline::new(codec, handler)),
            Some(worker) => Box::new(PooledPipeline::new(codec, handler, worker, shared, config)),
        }
    })
}

/// How the event loop drives a connection's pipeline, whatever its types.
pub(crate) trait ChannelPipeline: Send {
    /// The connection is registered.
    fn active(&mut self, core: &mut ConnCore, env: &mut ChannelEnv);
    /// One read's bytes.
    fn read(&mut self, core: &mut ConnCore, env: &mut ChannelEnv, buf: ByteBuf);
    /// The buffer a large message is being assembled in, while much of it
    /// is missing: the next read goes straight into it.
    fn direct_target(&mut self) -> Option<&mut ByteBuf>;
    /// A read of `read` bytes went straight into the
    /// [`direct_target`](Self::direct_target).
    fn read_direct(&mut self, core: &mut ConnCore, env: &mut ChannelEnv, read: usize);
    /// Reading is back on: deliver the messages held when it went off.
    fn resume_input(&mut self, core: &mut ConnCore, env: &mut ChannelEnv);
    /// The end of a batch of reads.
    fn read_complete(&mut self, core: &mut ConnCore, env: &mut ChannelEnv);
    /// The peer shut down its output: decode what is left.
    fn input_closed(&mut self, core: &mut ConnCore, env: &mut ChannelEnv);
    /// The writable flag flipped.
    fn writability_changed(&mut self, core: &mut ConnCore, env: &mut ChannelEnv, writable: bool);
    /// An idle or timer event.
    fn user_event(&mut self, core: &mut ConnCore, env: &mut ChannelEnv, event: UserEvent);
    /// A failure.
    fn error(&mut self, core: &mut ConnCore, env: &mut ChannelEnv, error: ChannelError);
    /// The connection is closed.
    fn inactive(&mut self, core: &mut ConnCore, env: &mut ChannelEnv);
    /// Operations made off the loop (by a worker or a `ChannelHandle`):
    /// a `Vec<RemoteOp<Out>>`.
    fn remote_ops(&mut self, core: &mut ConnCore, env: &mut ChannelEnv, ops: Box<dyn Any + Send>);
    /// Whether bytes of an unfinished message are waiting: the peer was in
    /// the middle of sending one.
    fn has_partial_input(&self) -> bool;
    /// A receive around the codec ended (`receive.rs`): the codec hears
    /// that `taken` bytes went around it, the handler hears `received`,
    /// then what followed the bytes is decoded.
    fn receive_ended(
        &mut self,
        core: &mut ConnCore,
        env: &mut ChannelEnv,
        received: Received,
        taken: u64,
    );
}

/// Applies one operation made off the loop; returns a user event for the
/// handler, if that is what it was.
pub(crate) fn apply_remote_op<O>(
    op: RemoteOp<O>,
    core: &mut ConnCore,
    env: &mut ChannelEnv,
    encoder: &mut dyn Encoder<O>,
) -> Option<UserEvent> {
    match op {
        RemoteOp::Write(msg, estimate) => {
            // The real bytes are counted before the estimate is given back:
            // in between, the count would dip and flip the channel writable
            // for a moment, long enough for a worker to take that for room
            // and write another large reply.
            encoder.encode_into(msg, core);
            core.shared.release_pending(estimate);
        }
        RemoteOp::Flush => {
            core.out.mark_flushed();
            core.flush(env);
        }
        RemoteOp::Close => core.request_close(),
        RemoteOp::ShutdownOutput => core.request_shutdown_output(env),
        // The handler on its worker switched reading itself, at once (the
        // switch is shared): the loop only follows. Storing `on` here would
        // undo a later switch the worker made meanwhile, and the messages
        // it then held back would wait for good.
        RemoteOp::ReadingSwitched => core.resume_reading(env),
        RemoteOp::SetAutoReadFromHandle(on) => core.set_auto_read(on, env),
        RemoteOp::Schedule(id, delay, token) => core.insert_user_timer(env, id, delay, token),
        RemoteOp::CancelTimer(id) => core.cancel_user_timer(env, id),
        RemoteOp::UserEvent(event) => return Some(UserEvent::Custom(event)),
        RemoteOp::Receive(receiving) => encoder.start_receive(receiving, core, env),
    }
    None
}

/// Takes the operations out of the box the loop received.
pub(crate) fn unbox_ops<O: 'static>(ops: Box<dyn Any + Send>) -> Vec<RemoteOp<O>> {
    match ops.downcast::<Vec<RemoteOp<O>>>() {
        Ok(ops) => *ops,
        Err(_) => unreachable!("remote operations of another message type"),
    }
}
