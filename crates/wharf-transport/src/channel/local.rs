//! A pipeline run entirely on the event loop: decode, handler, encode, in
//! one call each, with the handler's context acting at once. Each call is
//! one pipeline callback for the handler-time histogram (sampled, see
//! [`metrics`](crate::metrics)).

use std::any::Any;
use std::collections::VecDeque;

use wharf_buf::ByteBuf;

use crate::channel::codec::Codec;
use crate::channel::connection::ConnCore;
use crate::channel::context::{Context, LocalCx};
use crate::channel::cumulation::{CodecState, Decoded};
use crate::channel::env::ChannelEnv;
use crate::channel::handler::{ChannelError, Handler, UserEvent};
use crate::channel::pipeline::{ChannelPipeline, apply_remote_op, unbox_ops};
use crate::channel::receive::Received;
use crate::channel::spare;
use crate::stats::add;

/// Runs `$body` as one timed pipeline callback (when the loop's sampler
/// picks it).
macro_rules! timed {
    ($env:ident, $body:block) => {{
        let started = $env.handler_started();
        $body
        $env.handler_done(started);
    }};
}

/// Codec and handler, both on the event loop.
pub(crate) struct LocalPipeline<C: Codec, H> {
    codec: CodecState<C>,
    handler: H,
    /// Decoded messages not yet delivered because the handler turned
    /// reading off (at most one read's worth).
    held: Held<C::In>,
}

/// Held messages: the exception (the handler turned reading off in the
/// middle of a batch), so boxed, and only while there are any.
#[expect(
    clippy::box_collection,
    reason = "a pointer in every pipeline instead of a VecDeque's 32 bytes: held messages are rare"
)]
struct Held<T>(Option<Box<VecDeque<T>>>);

impl<T> Held<T> {
    fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    fn extend(&mut self, messages: impl Iterator<Item = T>) {
        let mut messages = messages.peekable();
        if messages.peek().is_some() {
            self.0.get_or_insert_with(Box::default).extend(messages);
        }
    }

    fn pop_front(&mut self) -> Option<T> {
        let held = self.0.as_mut()?;
        let msg = held.pop_front();
        if held.is_empty() {
            self.0 = None;
        }
        msg
    }
}

/// A context over a local pipeline's parts (a macro, so the borrows of the
/// codec and the handler stay separate).
macro_rules! local_ctx {
    ($self:ident, $core:ident, $env:ident) => {
        Context::local(LocalCx {
            core: $core,
            env: $env,
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
    pub(crate) fn new(codec: CodecState<C>, handler: H) -> Self {
        LocalPipeline {
            codec,
            handler,
            held: Held(None),
        }
    }

    /// Delivers held messages in order, while reading stays on (or all of
    /// them when `all`: the input has ended).
    fn deliver_held(&mut self, core: &mut ConnCore, env: &mut ChannelEnv, all: bool) {
        while core.phase.delivers_input() && (all || core.takes_messages()) {
            let Some(msg) = self.held.pop_front() else {
                break;
            };
            self.handler.on_read(&mut local_ctx!(self, core, env), msg);
        }
        core.io.held_input = !self.held.is_empty();
    }

    /// Delivers what the codec decoded, in order, while reading stays on
    /// (or all of it when `all`); holds the rest, behind any held before.
    fn deliver_fresh(
        &mut self,
        core: &mut ConnCore,
        env: &mut ChannelEnv,
        mut decoded: Vec<C::In>,
        all: bool,
    ) {
        add(&env.counters.messages_decoded, decoded.len() as u64);
        if !self.held.is_empty() {
            self.held.extend(decoded.drain(..));
            spare::give(decoded);
            self.deliver_held(core, env, all);
            return;
        }
        let mut fresh = decoded.drain(..);
        // Whether reading stays on is asked only while messages are left
        // (it reads shared flags; the usual batch is one message).
        while fresh.len() > 0 && core.phase.delivers_input() && (all || core.takes_messages()) {
            let Some(msg) = fresh.next() else {
                break;
            };
            self.handler.on_read(&mut local_ctx!(self, core, env), msg);
        }
        if fresh.len() > 0 {
            self.held.extend(fresh);
        } else {
            drop(fresh);
        }
        core.io.held_input = !self.held.is_empty();
        spare::give(decoded);
    }

    /// Delivers what a decode produced (as far as reading stays on), then
    /// reports its error, if any: messages before a malformed one count.
    fn deliver_decoded(
        &mut self,
        core: &mut ConnCore,
        env: &mut ChannelEnv,
        decoded: Decoded<C::In>,
    ) {
        self.deliver_fresh(core, env, decoded.messages, false);
        if let Err(e) = decoded.result {
            core.fail_decode(e);
        }
    }
}

impl<C, H> ChannelPipeline for LocalPipeline<C, H>
where
    C: Codec,
    H: Handler<In = C::In, Out = C::Out>,
{
    fn active(&mut self, core: &mut ConnCore, env: &mut ChannelEnv) {
        timed!(env, {
            self.handler.on_active(&mut local_ctx!(self, core, env));
        });
    }

    fn read(&mut self, core: &mut ConnCore, env: &mut ChannelEnv, buf: ByteBuf) {
        let Some(buf) = self.codec.divert(core, env, buf) else {
            return;
        };
        timed!(env, {
            let result = self.codec.decode(core, buf);
            self.deliver_decoded(core, env, result);
        });
    }

    fn direct_target(&mut self) -> Option<&mut ByteBuf> {
        self.codec.direct_target()
    }

    fn read_direct(&mut self, core: &mut ConnCore, env: &mut ChannelEnv, _read: usize) {
        timed!(env, {
            let result = self.codec.decode_pending(core);
            self.deliver_decoded(core, env, result);
        });
    }

    fn resume_input(&mut self, core: &mut ConnCore, env: &mut ChannelEnv) {
        timed!(env, {
            self.deliver_held(core, env, false);
        });
    }

    fn read_complete(&mut self, core: &mut ConnCore, env: &mut ChannelEnv) {
        timed!(env, {
            self.handler
                .on_read_complete(&mut local_ctx!(self, core, env));
        });
    }

    fn input_closed(&mut self, core: &mut ConnCore, env: &mut ChannelEnv) {
        timed!(env, {
            let decoded = self.codec.decode_eof(core);
            // No more input will come to wait for: everything received goes.
            self.deliver_fresh(core, env, decoded.messages, true);
            if let Err(e) = decoded.result {
                core.fail_decode(e);
            }
            if core.config.allow_half_closure {
                self.handler
                    .on_input_shutdown(&mut local_ctx!(self, core, env));
            }
        });
    }

    fn writability_changed(&mut self, core: &mut ConnCore, env: &mut ChannelEnv, writable: bool) {
        timed!(env, {
            self.handler
                .on_writability_changed(&mut local_ctx!(self, core, env), writable);
        });
    }

    fn user_event(&mut self, core: &mut ConnCore, env: &mut ChannelEnv, event: UserEvent) {
        timed!(env, {
            self.handler
                .on_user_event(&mut local_ctx!(self, core, env), event);
        });
    }

    fn error(&mut self, core: &mut ConnCore, env: &mut ChannelEnv, error: ChannelError) {
        timed!(env, {
            self.handler
                .on_error(&mut local_ctx!(self, core, env), &error);
        });
    }

    fn inactive(&mut self, core: &mut ConnCore, env: &mut ChannelEnv) {
        timed!(env, {
            self.handler.on_inactive(&mut local_ctx!(self, core, env));
        });
    }

    fn remote_ops(&mut self, core: &mut ConnCore, env: &mut ChannelEnv, ops: Box<dyn Any + Send>) {
        for op in unbox_ops::<C::Out>(ops) {
            if let Some(event) = apply_remote_op(op, core, env, &mut self.codec) {
                self.handler
                    .on_user_event(&mut local_ctx!(self, core, env), event);
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
        timed!(env, {
            self.codec.input_taken(core, taken);
            self.handler.on_user_event(
                &mut local_ctx!(self, core, env),
                UserEvent::Received(received),
            );
            if self.codec.holds_what_followed(core) {
                // What followed the received bytes, held back until now: a
                // batch of its own, ended like any other.
                let result = self.codec.decode_pending(core);
                self.deliver_decoded(core, env, result);
                self.handler
                    .on_read_complete(&mut local_ctx!(self, core, env));
            }
        });
        core.resume_reading(env);
    }
}
