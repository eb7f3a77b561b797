//! The token that names a registered socket everywhere: in epoll events,
//! on a loop's ready list, in tasks posted to a channel and in timers. It
//! is a slot key plus a generation (see `reactor::slots`), so a token that
//! outlived its entry names nothing.

const _: () = assert!(
    usize::BITS == 64,
    "tokens pack a key and a generation into 64 bits"
);

/// A slot key and its generation, packed into the `usize` epoll carries
/// (`epoll_event.u64`, mio's `Token`): key in the low 32 bits, generation in
/// the high 32. The all-ones value is the loop's waker and never a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Token(usize);

impl Token {
    /// The waker's token: a generation no slot is given.
    pub(crate) const WAKER: Token = Token(usize::MAX);

    pub(crate) fn new(key: usize, generation: u32) -> Token {
        debug_assert!(key <= u32::MAX as usize, "slot key beyond 32 bits");
        Token(((generation as usize) << 32) | key)
    }

    /// The token of an epoll event.
    pub(crate) fn from_mio(token: mio::Token) -> Token {
        Token(token.0)
    }

    /// The value registered with epoll.
    pub(crate) fn to_mio(self) -> mio::Token {
        mio::Token(self.0)
    }

    /// The value registered with raw epoll (level-triggered).
    pub(crate) fn as_u64(self) -> u64 {
        self.0 as u64
    }

    pub(crate) fn key(self) -> usize {
        self.0 & u32::MAX as usize
    }

    pub(crate) fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}
