//! A connection's I/O flags: what it waits for and what it owes the
//! loop, apart from its life cycle ([`Phase`](crate::channel::lifecycle::Phase)).

use crate::sys::epoll::LtInterest;

/// Scheduling state of a connection's I/O: what it waits for, what it owes.
/// (Its life is the [`Phase`](crate::channel::lifecycle::Phase).)
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IoFlags {
    /// A write would block: wait for writability.
    pub waiting_writable: bool,
    /// A file region waits for the blocking-I/O pool to read.
    pub waiting_file: bool,
    /// On the loop's ready list.
    pub queued: bool,
    /// Reading used up its budget (edge-triggered): read again soon.
    pub read_pending: bool,
    /// Flushing used up its spin budget: flush again soon.
    pub flush_pending: bool,
    /// An event said the peer closed its side: read to the end of stream
    /// even past short reads, also when reading resumes from the ready
    /// list (no new edge comes for a FIN already reported).
    pub peer_closed: bool,
    /// The pipeline holds decoded messages that reading was turned off
    /// before it could deliver: deliver them when reading resumes.
    pub held_input: bool,
    /// Input was read and thrown away while closing.
    pub discarded: bool,
    /// The codec stopped in front of bytes the handler takes itself
    /// ([`Codec::input_claimed`](crate::Codec::input_claimed)): nothing
    /// more is read until a receive takes them.
    pub input_claimed: bool,
    /// The handler panicked: it gets no more calls. (Here rather than in
    /// `Connection`, where it took a word of its own.)
    pub poisoned: bool,
    /// The writability flips the handler has been told about.
    /// (The low 32 bits of the count: only changes and their number
    /// matter, and no channel flips 2^32 times between two looks.)
    pub notified_flips: u32,
    /// Bytes queued for output as last counted in the loop's metrics.
    pub outbound_counted: usize,
    /// Level-triggered interest currently registered.
    pub registered: LtInterest,
}
