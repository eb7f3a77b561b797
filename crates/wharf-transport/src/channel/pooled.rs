//! A pipeline split across threads (the worker-pool modes): decode and
//! encode on the event loop, the handler on the worker thread the
//! connection is pinned to. Events go to the worker in order; what the
//! handler does comes back to the loop as one message per handler call.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use wharf_buf::ByteBuf;

use crate::channel::codec::Codec;
use crate::channel::config::ChannelConfig;
use crate::channel::connection::ConnCore;
use crate::channel::context::{Context, RemoteOp, RemoteOps};
use crate::channel::cumulation::{CodecState, Decoded};
use crate::channel::env::{ChannelEnv, ChannelMsg};
use crate::channel::handler::{ChannelError, Handler, UserEvent};
use crate::channel::pipeline::{ChannelPipeline, apply_remote_op, unbox_ops};
use crate::channel::receive::Received;
use crate::channel::shared::ChannelShared;
use crate::channel::spare;
use crate::stats::add;
use crate::worker::WorkerRef;

/// The handler's side of a pooled pipeline, on its worker thread.
pub(crate) struct RemoteSide<H: Handler> {
    handler: H,
    ops: RemoteOps<H::Out>,
    /// Decoded messages waiting for the handler to turn reading back on.
    held: VecDeque<H::In>,
    /// The handler panicked: it gets no more events.
    poisoned: bool,
}

/// Codec on the loop, handler on a worker thread.
pub(crate) struct PooledPipeline<C: Codec, H: Handler> {
    codec: CodecState<C>,
    worker: WorkerRef,
    remote: Arc<Mutex<RemoteSide<H>>>,
    shared: Arc<ChannelShared>,
    /// Bytes read since the last batch went to the worker.
    unsent_input: usize,
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
        shared.worker.started();
        TaskCount {
            shared: Arc::clone(shared),
            handed_off: false,
        }
    }
}

impl Drop for TaskCount {
    fn drop(&mut self) {
        if !self.handed_off {
            self.shared.worker_task_done();
        }
    }
}

impl<H: Handler> RemoteSide<H> {
    /// Delivers held messages in order while the handler takes them (or
    /// all of them when `all`: the input has ended, unless the handler
    /// closed the channel); returns whether any went.
    fn deliver_held(&mut self, all: bool) -> bool {
        let mut delivered = false;
        while !self.ops.closed && (all || self.ops.delivering()) {
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
    pub(crate) fn new(
        codec: CodecState<C>,
        handler: H,
        worker: WorkerRef,
        shared: &Arc<ChannelShared>,
        config: &ChannelConfig,
    ) -> Self {
        PooledPipeline {
            codec,
            worker,
            unsent_input: 0,
            shared: Arc::clone(shared),
            remote: Arc::new(Mutex::new(RemoteSide {
                handler,
                ops: RemoteOps::new(
                    Arc::clone(shared),
                    C::message_size,
                    config.allocator,
                    config.backpressure,
                ),
                held: VecDeque::new(),
                poisoned: false,
            })),
        }
    }

    /// Sends what a decode produced to the worker, counting the input it
    /// came from against the worker's backlog (past its limit the loop
    /// stops reading until the worker has caught up), then reports the
    /// decode's error, if any.
    fn send_decoded(&mut self, core: &mut ConnCore, env: &ChannelEnv, decoded: Decoded<C::In>) {
        let Decoded {
            messages: batch,
            result,
        } = decoded;
        if batch.is_empty() {
            spare::give(batch);
        } else {
            add(&env.counters.messages_decoded, batch.len() as u64);
            let input = std::mem::take(&mut self.unsent_input);
            self.shared.worker.add_input(input);
            // As far as the handler takes them; the loop's read-complete
            // follows.
            self.post_side(move |side| {
                side.held.extend(batch);
                side.deliver_held(false);
                let shared = &side.ops.shared;
                if shared.worker.input_done(input) {
                    shared.post(ChannelMsg::WorkerDone);
                }
            });
        }
        if let Err(e) = result {
            core.fail_decode(e);
        }
    }

    /// Tells the handler on its worker that a receive ended.
    fn post_received(&self, received: Received) {
        self.post_side(move |side| {
            side.ops.receives = side.ops.receives.saturating_sub(1);
            side.handler.on_user_event(
                &mut Context::remote(&mut side.ops),
                UserEvent::Received(received),
            );
        });
    }

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
                let channel = side.ops.shared.id;
                log::error!(
                    channel = channel.0;
                    "handler of channel {channel} panicked on a worker thread; closing the channel"
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
    fn active(&mut self, _core: &mut ConnCore, _env: &mut ChannelEnv) {
        self.post(|handler, ctx| handler.on_active(ctx));
    }

    fn read(&mut self, core: &mut ConnCore, env: &mut ChannelEnv, buf: ByteBuf) {
        let Some(buf) = self.codec.divert(core, env, buf) else {
            return;
        };
        self.unsent_input += buf.len();
        let result = self.codec.decode(core, buf);
        self.send_decoded(core, env, result);
    }

    fn direct_target(&mut self) -> Option<&mut ByteBuf> {
        self.codec.direct_target()
    }

    fn read_direct(&mut self, core: &mut ConnCore, env: &mut ChannelEnv, read: usize) {
        self.unsent_input += read;
        let result = self.codec.decode_pending(core);
        self.send_decoded(core, env, result);
    }

    fn resume_input(&mut self, _core: &mut ConnCore, _env: &mut ChannelEnv) {
        // Messages are held on the worker, which delivers them when the
        // handler (or, through `remote_ops`, a handle) turns reading on.
    }

    fn read_complete(&mut self, _core: &mut ConnCore, _env: &mut ChannelEnv) {
        self.post(|handler, ctx| handler.on_read_complete(ctx));
    }

    fn input_closed(&mut self, core: &mut ConnCore, env: &mut ChannelEnv) {
        let Decoded {
            messages: batch,
            result,
        } = self.codec.decode_eof(core);
        add(&env.counters.messages_decoded, batch.len() as u64);
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
        if let Err(e) = result {
            core.fail_decode(e);
        }
    }

    fn writability_changed(&mut self, _core: &mut ConnCore, _env: &mut ChannelEnv, writable: bool) {
        self.post(move |handler, ctx| handler.on_writability_changed(ctx, writable));
    }

    fn user_event(&mut self, _core: &mut ConnCore, _env: &mut ChannelEnv, event: UserEvent) {
        match event {
            UserEvent::Received(received) => self.post_received(received),
            event => self.post(move |handler, ctx| handler.on_user_event(ctx, event)),
        }
    }

    fn error(&mut self, _core: &mut ConnCore, _env: &mut ChannelEnv, error: ChannelError) {
        self.post(move |handler, ctx| handler.on_error(ctx, &error));
    }

    fn inactive(&mut self, _core: &mut ConnCore, _env: &mut ChannelEnv) {
        self.post_side(|side| {
            // Receives asked for as the channel closed never reached the
            // loop: they end here, before `on_inactive`.
            for _ in 0..std::mem::take(&mut side.ops.receives) {
                let received = Received {
                    file: None,
                    bytes: 0,
                    result: Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "the channel closed before the receive started",
                    )),
                };
                side.handler.on_user_event(
                    &mut Context::remote(&mut side.ops),
                    UserEvent::Received(received),
                );
            }
            side.handler
                .on_inactive(&mut Context::remote(&mut side.ops));
        });
    }

    fn remote_ops(&mut self, core: &mut ConnCore, env: &mut ChannelEnv, ops: Box<dyn Any + Send>) {
        for op in unbox_ops::<C::Out>(ops) {
            if let RemoteOp::SetAutoReadFromHandle(on) = op {
                // Tell the worker, which holds the decoded messages. (The
                // handler's own changes took effect there already; echoing
                // them back could undo a later change it made.)
                // (`on` is in the shared switch already; the task is a
                // nudge that lets the worker deliver what it holds.)
                let _ = on;
                self.post_side(|_| {});
            }
            if let Some(event) = apply_remote_op(op, core, env, &mut self.codec) {
                self.post(move |handler, ctx| handler.on_user_event(ctx, event));
            }
        }
    }

    fn has_partial_input(&self) -> bool {
        self.codec.has_partial_input()
    }

    fn receive_ended(
        &mut self,
        core: &mut ConnCore,
        env: &mut ChannelEnv,
        received: Received,
        taken: u64,
    ) {
        self.codec.input_taken(core, taken);
        self.post_received(received);
        if self.codec.holds_what_followed(core) {
            // What followed the received bytes, held back until now.
            let result = self.codec.decode_pending(core);
            self.send_decoded(core, env, result);
            self.post(|handler, ctx| handler.on_read_complete(ctx));
        }
        core.resume_reading(env);
    }
}
