//! The codec of one connection with the buffers it works in: the bytes read
//! and not yet decoded (the cumulation), the messages decoded from them,
//! and the sink encoded messages go through.
//!
//! Large messages arrive in linear time. When the codec knows how long the
//! message at the front is ([`Codec::size_hint`]), the cumulation is
//! reserved at that size once, and while much of it is still missing the
//! channel reads straight into it (a read as large as what is missing, as
//! Redis does for big arguments) instead of through a read buffer and a
//! copy. Without a hint the cumulation grows geometrically.

use wharf_buf::ByteBuf;

use crate::channel::codec::{Codec, CodecError, Encoded};
use crate::channel::config::ChannelConfig;
use crate::channel::connection::ConnCore;
use crate::channel::context::Encoder;
use crate::channel::handler::ChannelError;

/// Below this many missing bytes, reads go through the usual adaptive read
/// buffer; above it, straight into the reserved cumulation.
const DIRECT_READ_MIN: usize = 64 << 10;

/// The codec with the buffers it works in.
pub(crate) struct CodecState<C: Codec> {
    codec: C,
    /// Bytes read and not yet decoded.
    cumulation: ByteBuf,
    /// Messages decoded by the last call, not yet passed on.
    pub decoded: Vec<C::In>,
    encoded: Encoded,
}

impl<C: Codec> CodecState<C> {
    pub(crate) fn new(codec: C, config: &ChannelConfig) -> Self {
        CodecState {
            codec,
            cumulation: ByteBuf::new(),
            decoded: Vec::new(),
            encoded: Encoded::new(config.allocator),
        }
    }

    /// Appends `buf` to what is pending (without a copy when nothing is
    /// pending and no room was reserved) and decodes into `self.decoded`.
    /// A decode error leaves the messages decoded before it in
    /// `self.decoded`, for the caller to deliver before it reports the
    /// error.
    pub(crate) fn decode(&mut self, core: &mut ConnCore, buf: ByteBuf) -> Result<(), CodecError> {
        if self.cumulation.is_empty() && self.cumulation.capacity() < buf.len() {
            self.cumulation = buf;
        } else if let Err(e) = self.cumulation.try_reserve(buf.len()) {
            // No memory for what the peer sent: fail this channel only.
            core.fail_io(e);
            return Ok(());
        } else {
            self.cumulation.extend_from_slice(&buf);
        }
        self.decode_pending(core)
    }

    /// Decodes what the cumulation holds (after a read straight into it).
    pub(crate) fn decode_pending(&mut self, core: &mut ConnCore) -> Result<(), CodecError> {
        let result = self.codec.decode(&mut self.cumulation, &mut self.decoded);
        self.after_decode(core, result)
    }

    /// Decodes what is left at the end of input.
    pub(crate) fn decode_eof(&mut self, core: &mut ConnCore) -> Result<(), CodecError> {
        let result = self
            .codec
            .decode_eof(&mut self.cumulation, &mut self.decoded);
        self.after_decode(core, result)
    }

    fn after_decode(
        &mut self,
        core: &mut ConnCore,
        result: Result<(), CodecError>,
    ) -> Result<(), CodecError> {
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
