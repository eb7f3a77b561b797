//! Pipelines: a codec and a handler put together for one connection, and
//! the two ways the event loop drives them.
//!
//! [`Pipeline`] is what users build: a [`Codec`] (possibly with
//! [`Transform`](crate::Transform)s stacked on it) and a [`Handler`] whose
//! message types match. The loop sees it through [`ChannelPipeline`], and
//! runs it either
//!
//! * entirely on the loop ([`LocalPipeline`]): decode, handler, encode; or
//! * split ([`PooledPipeline`], the worker-pool modes): decode and encode on
//!   the loop, the handler on the worker thread the connection is pinned to.
//!   Events go to the worker in order; what the handler writes comes back to
//!   the loop as one task per handler call.
//!
//! The handler's code is the same either way.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use wharf_buf::ByteBuf;

use crate::channel::codec::{Codec, Encoded, RawBytes};
use crate::channel::config::ChannelConfig;
use crate::channel::connection::ConnCore;
use crate::channel::context::{Context, Encoder, LocalCx, RemoteOp, RemoteOps};
use crate::channel::handler::{ChannelError, Handler, UserEvent};
use crate::channel::shared::ChannelShared;
use crate::reactor::event_loop::LoopServices;
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
    Arc::new(move |shared, config, worker| {
        let Pipeline { codec, handler } = make();
        let codec = CodecState::new(codec, config);
        match worker {
            None => Box::new(LocalPipeline {
                codec,
                handler,
                held: VecDeque::new(),
            }),
            Some(worker) => Box::new(PooledPipeline {
                codec,
                worker,
                shared: Arc::clone(shared),
                remote: Arc::new(Mutex::new(RemoteSide {
                    handler,
                    ops: RemoteOps::new(
                        Arc::clone(shared),
                        C::message_size,
                        config.allocator,
                        config.auto_read,
                    ),
                    held: VecDeque::new(),
                    poisoned: false,
                })),
            }),
        }
    })
}

/// How the event loop drives a connection's pipeline, whatever its types.
pub(crate) trait ChannelPipeline: Send {
    /// The connection is registered.
    fn active(&mut self, core: &mut ConnCore, services: &mut LoopServices);
    /// One read's bytes.
    fn read(&mut self, core: &mut ConnCore, services: &mut LoopServices, buf: ByteBuf);
    /// Reading is back on: deliver the messages held when it went off.
    fn resume_input(&mut self, core: &mut ConnCore, services: &mut LoopServices);
    /// The end of a batch of reads.
    fn read_complete(&mut self, core: &mut ConnCore, services: &mut LoopServices);
    /// The peer shut down its output: decode what is left.
    fn input_closed(&mut self, core: &mut ConnCore, services: &mut LoopServices);
    /// The writable flag flipped.
    fn writability_changed(
        &mut self,
        core: &mut ConnCore,
        services: &mut LoopServices,
        writable: bool,
    );
    /// An idle or timer event.
    fn user_event(&mut self, core: &mut ConnCore, services: &mut LoopServices, event: UserEvent);
    /// A failure.
    fn error(&mut self, core: &mut ConnCore, services: &mut LoopServices, error: ChannelError);
    /// The connection is closed.
    fn inactive(&mut self, core: &mut ConnCore, services: &mut LoopServices);
    /// Operations made off the loop (by a worker or a `ChannelHandle`):
    /// a `Vec<RemoteOp<Out>>`.
    fn remote_ops(
        &mut self,
        core: &mut ConnCore,
        services: &mut LoopServices,
        ops: Box<dyn Any + Send>,
    );
}

/// The codec with the buffers it works in.
struct CodecState<C: Codec> {
    codec: C,
    /// Bytes read and not yet decoded.
    cumulation: ByteBuf,
    decoded: Vec<C::In>,
    encoded: Encoded,
}

impl<C: Codec> CodecState<C> {
    fn new(codec: C, config: &ChannelConfig) -> Self {
        CodecState {
            codec,
            cumulation: ByteBuf::new(),
            decoded: Vec::new(),
            encoded: Encoded::new(config.allocator),
        }
    }

    /// Appends `buf` to what is pending (without a copy when nothing is) and
    /// decodes into `self.decoded`.
    fn decode(&mut self, core: &mut ConnCore, buf: ByteBuf) {
        if self.cumulation.is_empty() {
            self.cumulation = buf;
        } else if let Err(e) = self.cumulation.try_reserve(buf.len()) {
            // No memory for what the peer sent: fail this channel only.
            core.fail_io(e);
            return;
        } else {
            self.cumulation.extend_from_slice(&buf);
        }
        let result = self.codec.decode(&mut self.cumulation, &mut self.decoded);
        self.after_decode(core, result);
    }

    /// Decodes what is left at end of input.
    fn decode_eof(&mut self, core: &mut ConnCore) {
        let result = self
            .codec
            .decode_eof(&mut self.cumulation, &mut self.decoded);
        self.after_decode(core, result);
    }

    fn after_decode(&mut self, core: &mut ConnCore, result: Result<(), crate::CodecError>) {
        if let Err(e) = result {
            core.fail_decode(e);
            self.cumulation = ByteBuf::new();
        } else if self.cumulation.is_empty() && self.cumulation.capacity() > 0 {
            // Nothing pending: give the memory back (an idle connection
            // holds no buffer).
            self.cumulation = ByteBuf::new();
        }
    }
}

impl<C: Codec> Encoder<C::Out> for CodecState<C> {
    fn encode_into(&mut self, msg: C::Out, core: &mut ConnCore) {
        if !core.accepts_writes() {
            return;
        }
        match self.codec.encode(msg, &mut self.encoded) {
            Ok(()) => {
                for entry in self.encoded.drain() {
                    let weight = core.out.push(entry);
                    core.shared.add_pending(weight);
                }
            }
            Err(e) => {
                self.encoded.drain();
                core.errors.push_back(ChannelError::Encode(e));
            }
        }
    }
}

/// Applies one operation made off the loop; returns a user event for the
/// handler, if that is what it was.
fn apply_remote_op<O>(
    op: RemoteOp<O>,
    core: &mut ConnCore,
    services: &mut LoopServices,
    encoder: &mut dyn Encoder<O>,
) -> Option<UserEvent> {
    match op {
        RemoteOp::Write(msg, estimate) => {
            core.shared.release_pending(estimate);
            encoder.encode_into(msg, core);
        }
        RemoteOp::Flush => {
            core.out.mark_flushed();
            core.flush(services);
        }
        RemoteOp::Close => core.request_close(),
        RemoteOp::ShutdownOutput => {
            core.out.mark_flushed();
            core.request_shutdown_output();
            core.flush(services);
        }
        RemoteOp::SetAutoRead(on) | RemoteOp::SetAutoReadFromHandle(on) => {
            core.set_auto_read(on, services)
        }
        RemoteOp::Schedule(id, delay, token) => core.insert_user_timer(services, id, delay, token),
        RemoteOp::CancelTimer(id) => core.cancel_user_timer(services, id),
        RemoteOp::UserEvent(event) => return Some(UserEvent::Custom(event)),
    }
    None
}

/// Takes the operations out of the box the loop received.
fn unbox_ops<O: 'static>(ops: Box<dyn Any + Send>) -> Vec<RemoteOp<O>> {
    match ops.downcast::<Vec<RemoteOp<O>>>() {
        Ok(ops) => *ops,
        Err(_) => unreachable!("remote operations of another message type"),
    }
}

/// Codec and handler, both on the event loop.
struct LocalPipeline<C: Codec, H> {
    codec: CodecState<C>,
    handler: H,
    /// Decoded messages not yet delivered because the handler turned
    /// reading off (at most one read's worth).
    held: VecDeque<C::In>,
}

/// A context over a local pipeline's parts (a macro, so the borrows of the
/// codec and the handler stay separate).
macro_rules! local_ctx {
    ($self:ident, $core:ident, $services:ident) => {
        Context::local(LocalCx {
            core: $core,
            services: $services,
            encoder: &mut $self.codec,
            size_of: C::message_size,
        })
    };
}

impl<C, H> LocalPipeline<C, H>
where
    C: Codec,
    H: Handler<In = C::In, Out = C::Out>,
{
    /// Delivers held messages in order, while reading stays on (or all of
    /// them when `all`: the input has ended).
    fn deliver_held(&mut self, core: &mut ConnCore, services: &mut LoopServices, all: bool) {
        while !core.state.abort && !core.state.closed && (all || core.state.auto_read) {
            let Some(msg) = self.held.pop_front() else {
                break;
            };
            self.handler
                .on_read(&mut local_ctx!(self, core, services), msg);
        }
        core.state.held_input = !self.held.is_empty();
    }
}

impl<C, H> ChannelPipeline for LocalPipeline<C, H>
where
    C: Codec,
    H: Handler<In = C::In, Out = C::Out>,
{
    fn active(&mut self, core: &mut ConnCore, services: &mut LoopServices) {
        self.handler
            .on_active(&mut local_ctx!(self, core, services));
    }

    fn read(&mut self, core: &mut ConnCore, services: &mut LoopServices, buf: ByteBuf) {
        self.codec.decode(core, buf);
        self.held.extend(self.codec.decoded.drain(..));
        self.deliver_held(core, services, false);
    }

    fn resume_input(&mut self, core: &mut ConnCore, services: &mut LoopServices) {
        self.deliver_held(core, services, false);
    }

    fn read_complete(&mut self, core: &mut ConnCore, services: &mut LoopServices) {
        self.handler
            .on_read_complete(&mut local_ctx!(self, core, services));
    }

    fn input_closed(&mut self, core: &mut ConnCore, services: &mut LoopServices) {
        self.codec.decode_eof(core);
        self.held.extend(self.codec.decoded.drain(..));
        // No more input will come to wait for: everything received goes.
        self.deliver_held(core, services, true);
        if core.config.allow_half_closure {
            self.handler
                .on_input_shutdown(&mut local_ctx!(self, core, services));
        }
    }

    fn writability_changed(
        &mut self,
        core: &mut ConnCore,
        services: &mut LoopServices,
        writable: bool,
    ) {
        self.handler
            .on_writability_changed(&mut local_ctx!(self, core, services), writable);
    }

    fn user_event(&mut self, core: &mut ConnCore, services: &mut LoopServices, event: UserEvent) {
        self.handler
            .on_user_event(&mut local_ctx!(self, core, services), event);
    }

    fn error(&mut self, core: &mut ConnCore, services: &mut LoopServices, error: ChannelError) {
        self.handler
            .on_error(&mut local_ctx!(self, core, services), &error);
    }

    fn inactive(&mut self, core: &mut ConnCore, services: &mut LoopServices) {
        self.handler
            .on_inactive(&mut local_ctx!(self, core, services));
    }

    fn remote_ops(
        &mut self,
        core: &mut ConnCore,
        services: &mut LoopServices,
        ops: Box<dyn Any + Send>,
    ) {
        for op in unbox_ops::<C::Out>(ops) {
            if let Some(event) = apply_remote_op(op, core, services, &mut self.codec) {
                self.handler
                    .on_user_event(&mut local_ctx!(self, core, services), event);
            }
        }
    }
}

/// The handler's side of a pooled pipeline, on its worker thread.
struct RemoteSide<H: Handler> {
    handler: H,
    ops: RemoteOps<H::Out>,
    /// Decoded messages waiting for the handler to turn reading back on.
    held: VecDeque<H::In>,
    /// The handler panicked: it gets no more events.
    poisoned: bool,
}

/// Codec on the loop, handler on a worker thread.
struct PooledPipeline<C: Codec, H: Handler> {
    codec: CodecState<C>,
    worker: WorkerRef,
    remote: Arc<Mutex<RemoteSide<H>>>,
    shared: Arc<ChannelShared>,
}

/// Counts one worker task of a channel, from when it is handed to the
/// worker until its operations are applied on the loop. A task that posts
/// no operations (or never runs, because the pool is gone) ends its count
/// when it is dropped, and wakes the loop if that was the last one of a
/// channel waiting to close.
struct TaskCount {
    shared: Arc<ChannelShared>,
    /// The count now travels with the operations posted to the loop.
    handed_off: bool,
}

impl TaskCount {
    fn start(shared: &Arc<ChannelShared>) -> TaskCount {
        shared.worker_task_started();
        TaskCount {
            shared: Arc::clone(shared),
            handed_off: false,
        }
    }
}

impl Drop for TaskCount {
    fn drop(&mut self) {
        if !self.handed_off && self.shared.worker_task_done() {
            let (token, id) = (self.shared.token, self.shared.id);
            self.shared
                .event_loop
                .submit(Box::new(move |el| el.settle_channel(token, id)));
        }
    }
}

impl<H: Handler> RemoteSide<H> {
    /// Delivers held messages in order while reading is on (or all of them
    /// when `all`: the input has ended); returns whether any went.
    fn deliver_held(&mut self, all: bool) -> bool {
        let mut delivered = false;
        while all || self.ops.reading {
            let Some(msg) = self.held.pop_front() else {
                break;
            };
            delivered = true;
            self.handler
                .on_read(&mut Context::remote(&mut self.ops), msg);
        }
        delivered
    }
}

impl<C, H> PooledPipeline<C, H>
where
    C: Codec,
    H: Handler<In = C::In, Out = C::Out>,
{
    /// Runs `f` with the handler on the connection's worker, then sends
    /// what the handler did back to the loop.
    fn post(&self, f: impl FnOnce(&mut H, &mut Context<'_, H::Out>) + Send + 'static) {
        self.post_side(move |side| f(&mut side.handler, &mut Context::remote(&mut side.ops)));
    }

    /// Runs `f` on the connection's worker, delivers the held messages if
    /// reading is on, then sends what the handler did back to the loop. A
    /// handler that panics is closed and gets no more events.
    fn post_side(&self, f: impl FnOnce(&mut RemoteSide<H>) + Send + 'static) {
        let remote = Arc::clone(&self.remote);
        let task = TaskCount::start(&self.shared);
        self.worker.run(move || {
            // The whole guard moves here (not just the field assigned below),
            // so that it ends with the task, on the worker.
            let mut task = task;
            let mut side = remote
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if side.poisoned {
                return;
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let side = &mut *side;
                f(side);
                if side.deliver_held(false) {
                    // Held messages end like any batch of reads.
                    side.handler
                        .on_read_complete(&mut Context::remote(&mut side.ops));
                }
            }));
            if outcome.is_err() {
                log::error!(
                    "handler of channel {} panicked on a worker thread; closing the channel",
                    side.ops.shared.id
                );
                side.poisoned = true;
                side.ops.ops.push(RemoteOp::Close);
            }
            // The loop ends the count once it has applied the operations.
            task.handed_off = side.ops.send(true);
        });
    }
}

impl<C, H> ChannelPipeline for PooledPipeline<C, H>
where
    C: Codec,
    H: Handler<In = C::In, Out = C::Out>,
{
    fn active(&mut self, _core: &mut ConnCore, _services: &mut LoopServices) {
        self.post(|handler, ctx| handler.on_active(ctx));
    }

    fn read(&mut self, core: &mut ConnCore, _services: &mut LoopServices, buf: ByteBuf) {
        self.codec.decode(core, buf);
        if !self.codec.decoded.is_empty() {
            let batch = std::mem::take(&mut self.codec.decoded);
            // As far as reading stays on; the loop's read-complete follows.
            self.post_side(move |side| {
                side.held.extend(batch);
                side.deliver_held(false);
            });
        }
    }

    fn resume_input(&mut self, _core: &mut ConnCore, _services: &mut LoopServices) {
        // Messages are held on the worker, which delivers them when the
        // handler (or, through `remote_ops`, a handle) turns reading on.
    }

    fn read_complete(&mut self, _core: &mut ConnCore, _services: &mut LoopServices) {
        self.post(|handler, ctx| handler.on_read_complete(ctx));
    }

    fn input_closed(&mut self, core: &mut ConnCore, _services: &mut LoopServices) {
        self.codec.decode_eof(core);
        let batch = std::mem::take(&mut self.codec.decoded);
        let half_closure = core.config.allow_half_closure;
        self.post_side(move |side| {
            side.held.extend(batch);
            // No more input will come to wait for: everything received goes.
            side.deliver_held(true);
            if half_closure {
                side.handler
                    .on_input_shutdown(&mut Context::remote(&mut side.ops));
            }
        });
    }

    fn writability_changed(
        &mut self,
        _core: &mut ConnCore,
        _services: &mut LoopServices,
        writable: bool,
    ) {
        self.post(move |handler, ctx| handler.on_writability_changed(ctx, writable));
    }

    fn user_event(&mut self, _core: &mut ConnCore, _services: &mut LoopServices, event: UserEvent) {
        self.post(move |handler, ctx| handler.on_user_event(ctx, event));
    }

    fn error(&mut self, _core: &mut ConnCore, _services: &mut LoopServices, error: ChannelError) {
        self.post(move |handler, ctx| handler.on_error(ctx, &error));
    }

    fn inactive(&mut self, _core: &mut ConnCore, _services: &mut LoopServices) {
        self.post(|handler, ctx| handler.on_inactive(ctx));
    }

    fn remote_ops(
        &mut self,
        core: &mut ConnCore,
        services: &mut LoopServices,
        ops: Box<dyn Any + Send>,
    ) {
        for op in unbox_ops::<C::Out>(ops) {
            if let RemoteOp::SetAutoReadFromHandle(on) = op {
                // Tell the worker, which holds the decoded messages. (The
                // handler's own changes took effect there already; echoing
                // them back could undo a later change it made.)
                self.post_side(move |side| side.ops.reading = on);
            }
            if let Some(event) = apply_remote_op(op, core, services, &mut self.codec) {
                self.post(move |handler, ctx| handler.on_user_event(ctx, event));
            }
        }
    }
}
