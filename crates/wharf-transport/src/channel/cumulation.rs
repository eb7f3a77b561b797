//! The codec of one connection with the buffers it works in: the bytes read
//! and not yet decoded (the cumulation) and the messages decoded from them.
//! The collections that decoded and encoded messages pass through are the
//! loop's spares (`spare.rs`) between uses: an idle connection holds none.
//!
//! Large messages arrive in linear time. When the codec knows how long the
//! message at the front is ([`Codec::size_hint`]), the cumulation is
//! reserved at that size once, and while much of it is still missing the
//! channel reads straight into it (a read as large as what is missing, as
//! Redis does for big arguments) instead of through a read buffer and a
//! copy. Without a hint the cumulation grows geometrically.

use wharf_buf::ByteBuf;

use crate::channel::codec::{Codec, CodecError, Encoded};
use crate::channel::connection::ConnCore;
use crate::channel::context::Encoder;
use crate::channel::env::ChannelEnv;
use crate::channel::handler::ChannelError;
use crate::channel::receive::Receiving;
use crate::channel::spare;

/// Below this many missing bytes, reads go through the usual adaptive read
/// buffer; above it, straight into the reserved cumulation.
const DIRECT_READ_MIN: usize = 64 << 10;

/// The codec with the buffers it works in.
pub(crate) struct CodecState<C: Codec> {
    codec: C,
    /// Bytes read and not yet decoded.
    cumulation: ByteBuf,
}

/// What one decode produced: the messages (in the loop's spare `Vec`,
/// which the caller gives back once they are passed on) and how it ended.
/// Messages decoded before an error are passed on before it is reported.
pub(crate) struct Decoded<T> {
    pub messages: Vec<T>,
    pub result: Result<(), CodecError>,
}

impl<C: Codec> CodecState<C> {
    pub(crate) fn new(codec: C) -> Self {
        CodecState {
            codec,
            cumulation: ByteBuf::new(),
        }
    }

    /// Appends `buf` to what is pending (without a copy when nothing is
    /// pending and no room was reserved) and decodes it.
    pub(crate) fn decode(&mut self, core: &mut ConnCore, buf: ByteBuf) -> Decoded<C::In> {
        if self.cumulation.is_empty() && self.cumulation.capacity() < buf.len() {
            self.cumulation = buf;
        } else if let Err(e) = self.cumulation.try_reserve(buf.len()) {
            // No memory for what the peer sent: fail this channel only.
            core.fail_io(e);
            return Decoded {
                messages: Vec::new(),
                result: Ok(()),
            };
        } else {
            self.cumulation.extend_from_slice(&buf);
        }
        self.decode_pending(core)
    }

    /// Passes the front of `buf` to the receive under way, if any (see
    /// `receive.rs`); returns what is left to decode, or `None` when
    /// nothing is: all of it was received, or what follows a receive that
    /// ended waits in the cumulation until the handler has heard of the end.
    pub(crate) fn divert(
        &mut self,
        core: &mut ConnCore,
        env: &ChannelEnv,
        mut buf: ByteBuf,
    ) -> Option<ByteBuf> {
        let Some(receives) = core.receives.as_mut() else {
            return Some(buf);
        };
        if let Some(receiving) = receives.current() {
            match receiving.take(&buf, &env.counters) {
                Ok(n) => buf.skip(n),
                Err(e) => receives.fail(e),
            }
            receives.end_if_complete();
        } else if !receives.has_untold() {
            return Some(buf);
        }
        if !buf.is_empty() {
            if let Err(e) = self.cumulation.try_reserve(buf.len()) {
                core.fail_io(e);
            } else {
                self.cumulation.extend_from_slice(&buf);
            }
        }
        None
    }

    /// Starts a receive: what the cumulation holds of its bytes goes first.
    fn start_receive(
        &mut self,
        mut receiving: Receiving,
        core: &mut ConnCore,
        env: &mut ChannelEnv,
    ) {
        let mut failed = None;
        if !core.receives.as_ref().is_some_and(|r| r.busy()) {
            let held = usize::try_from(receiving.left()).unwrap_or(usize::MAX);
            let front = self.cumulation.split_to(held.min(self.cumulation.len()));
            if let Err(e) = receiving.take(&front, &env.counters) {
                failed = Some(e);
            }
            if self.cumulation.is_empty() {
                self.cumulation = ByteBuf::new();
            }
        }
        core.start_receive(receiving, env);
        if let Some(e) = failed {
            core.fail_receive(e);
        }
    }

    /// Whether bytes that followed a receive wait in the cumulation, to be
    /// decoded now: the channel still delivers input and no other
    /// receive's end is still to be told first.
    pub(crate) fn holds_what_followed(&self, core: &ConnCore) -> bool {
        core.phase.delivers_input()
            && self.has_partial_input()
            && !core.receives.as_ref().is_some_and(|r| r.has_untold())
    }

    /// The codec hears that `n` bytes went around it.
    pub(crate) fn input_taken(&mut self, core: &mut ConnCore, n: u64) {
        if n > 0 {
            self.codec.input_taken(n);
        }
        core.io.input_claimed = self.codec.input_claimed();
    }

    /// Decodes what the cumulation holds (after a read straight into it).
    pub(crate) fn decode_pending(&mut self, core: &mut ConnCore) -> Decoded<C::In> {
        let mut messages = spare::take();
        let result = self.codec.decode(&mut self.cumulation, &mut messages);
        Decoded {
            messages,
            result: self.after_decode(core, result),
        }
    }

    /// Decodes what is left at the end of input.
    pub(crate) fn decode_eof(&mut self, core: &mut ConnCore) -> Decoded<C::In> {
        let mut messages = spare::take();
        let result = self.codec.decode_eof(&mut self.cumulation, &mut messages);
        Decoded {
            messages,
            result: self.after_decode(core, result),
        }
    }

    fn after_decode(
        &mut self,
        core: &mut ConnCore,
        result: Result<(), CodecError>,
    ) -> Result<(), CodecError> {
        core.io.input_claimed = self.codec.input_claimed();
        if result.is_err() {
            self.cumulation = ByteBuf::new();
            return result;
        }
        match self.codec.size_hint(&self.cumulation) {
            Some(total) if total > self.cumulation.len() => {
                // Room for the whole message, once (a no-op if there is).
                let missing = total - self.cumulation.len();
                if let Err(e) = self.cumulation.try_reserve(missing) {
                    core.fail_io(e);
                }
            }
            _ if self.cumulation.is_empty() && self.cumulation.capacity() > 0 => {
                // Nothing pending: give the memory back (an idle connection
                // holds no buffer).
                self.cumulation = ByteBuf::new();
            }
            _ => {}
        }
        result
    }

    /// The cumulation, to read straight into, while a large part of a
    /// message the codec announced is still missing (its room reserved).
    pub(crate) fn direct_target(&mut self) -> Option<&mut ByteBuf> {
        (self.cumulation.writable_bytes() >= DIRECT_READ_MIN
            && self.codec.size_hint(&self.cumulation)? >= self.cumulation.len() + DIRECT_READ_MIN)
            .then_some(&mut self.cumulation)
    }

    /// Whether bytes of an unfinished message are waiting.
    pub(crate) fn has_partial_input(&self) -> bool {
        !self.cumulation.is_empty()
    }
}

impl<C: Codec> Encoder<C::Out> for CodecState<C> {
    fn encode_into(&mut self, msg: C::Out, core: &mut ConnCore) {
        if !core.accepts_writes() {
            return;
        }
        // The sink's entries are the loop's spare: a connection keeps none.
        let mut encoded = Encoded::with_entries(core.config.allocator, spare::take_entries());
        match self.codec.encode(msg, &mut encoded) {
            Ok(()) => {
                let gathering = core.gathering();
                for entry in encoded.drain() {
                    let weight = core.out.push(entry, gathering);
                    core.shared.add_pending(weight);
                }
            }
            Err(e) => {
                encoded.drain();
                core.rare().errors.push(ChannelError::Encode(e));
            }
        }
        spare::give_entries(encoded.into_entries());
    }

    fn start_receive(&mut self, receiving: Receiving, core: &mut ConnCore, env: &mut ChannelEnv) {
        CodecState::start_receive(self, receiving, core, env);
    }
}
