//! The codec of one connection with the buffers it works in: the bytes read
//! and not yet decoded (the cumulation), the messages decoded from them,
//! and the sink encoded messages go through.

use wharf_buf::ByteBuf;

use crate::channel::codec::{Codec, CodecError, Encoded};
use crate::channel::config::ChannelConfig;
use crate::channel::connection::ConnCore;
use crate::channel::context::Encoder;
use crate::channel::handler::ChannelError;

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

    /// Appends `buf` to what is pending (without a copy when nothing is)
    /// and decodes into `self.decoded`. A decode error leaves the messages
    /// decoded before it in `self.decoded`, for the caller to deliver
    /// before it reports the error.
    pub(crate) fn decode(&mut self, core: &mut ConnCore, buf: ByteBuf) -> Result<(), CodecError> {
        if self.cumulation.is_empty() {
            self.cumulation = buf;
        } else if let Err(e) = self.cumulation.try_reserve(buf.len()) {
            // No memory for what the peer sent: fail this channel only.
            core.fail_io(e);
            return Ok(());
        } else {
            self.cumulation.extend_from_slice(&buf);
        }
        let result = self.codec.decode(&mut self.cumulation, &mut self.decoded);
        self.after_decode(result)
    }

    /// Decodes what is left at the end of input.
    pub(crate) fn decode_eof(&mut self) -> Result<(), CodecError> {
        let result = self
            .codec
            .decode_eof(&mut self.cumulation, &mut self.decoded);
        self.after_decode(result)
    }

    fn after_decode(&mut self, result: Result<(), CodecError>) -> Result<(), CodecError> {
        if result.is_err() {
            self.cumulation = ByteBuf::new();
        } else if self.cumulation.is_empty() && self.cumulation.capacity() > 0 {
            // Nothing pending: give the memory back (an idle connection
            // holds no buffer).
            self.cumulation = ByteBuf::new();
        }
        result
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
