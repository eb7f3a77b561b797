//! The outbound queue as a source of plaintext for a layer that
//! transforms bytes before the socket sees them (TLS): flushed entries
//! are copied (buffers, relayed bytes in a pipe) or read (file regions)
//! into the layer's buffer, in queue order, and leave the queue as they
//! are taken.

use std::io;

use super::{ENTRY_OVERHEAD, OutboundBuffer, OutboundMessage};
use crate::channel::spare;
use crate::file_region::{Step, TransferCx};

/// What one [`OutboundBuffer::take_plaintext`] took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Taken {
    /// Bytes copied into the destination.
    pub bytes: usize,
    /// Weight (bytes plus entry overhead) that left the queue.
    pub released: usize,
    /// A file region at the front waits for the blocking-I/O pool.
    pub file_pending: bool,
}

impl OutboundBuffer {
    /// Fills `dst` from the front of the flushed entries, consuming what
    /// it takes; stops early at the end of the flushed entries or at a
    /// file region whose next bytes are still being read.
    pub(crate) fn take_plaintext(
        &mut self,
        dst: &mut [u8],
        cx: &mut TransferCx<'_>,
    ) -> io::Result<Taken> {
        let mut taken = Taken::default();
        let result = self.fill(dst, cx, &mut taken);
        self.weight -= taken.released;
        spare::give_back_queue(&mut self.entries);
        result.map(|()| taken)
    }

    fn fill(
        &mut self,
        dst: &mut [u8],
        cx: &mut TransferCx<'_>,
        taken: &mut Taken,
    ) -> io::Result<()> {
        while self.flushed > 0 {
            let room = &mut dst[taken.bytes..];
            let Some(front) = self.entries.front_mut() else {
                break;
            };
            let n = match front {
                OutboundMessage::File(region) => {
                    if room.is_empty() && region.remaining() > 0 {
                        break;
                    }
                    match region.read_into(room, cx)? {
                        Step::Sent(n) => n,
                        Step::Pending => {
                            taken.file_pending = true;
                            break;
                        }
                        Step::WouldBlock => break,
                    }
                }
                // Bytes a relay spliced into a pipe: copied out of it.
                OutboundMessage::Spliced(bytes) => match bytes.read_into(room) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                },
                OutboundMessage::Buf(_) | OutboundMessage::Frozen(_) => {
                    let Some(bytes) = front.bytes() else { break };
                    let n = bytes.len().min(room.len());
                    room[..n].copy_from_slice(&bytes[..n]);
                    front.advance(n);
                    n
                }
            };
            taken.bytes += n;
            taken.released += n;
            if front.is_empty() {
                self.entries.pop_front();
                self.flushed -= 1;
                taken.released += ENTRY_OVERHEAD;
            } else if taken.bytes == dst.len() {
                break;
            }
        }
        Ok(())
    }
}
