//! The registry of one event loop: a slab of what is registered on it
//! (listeners, connections, connects in progress), addressed by tokens that
//! carry a generation.
//!
//! A slab reuses the key of a removed entry for the next one. Everything
//! that names an entry later (an epoll event already fetched, a ready-list
//! entry, a task posted from another thread, a timer) could then reach the
//! entry that took the key over: a proxy's event for the connection it just
//! closed, delivered to the connection accepted a moment later in the same
//! slot. So a [`Token`] is the key *and* the generation the entry was
//! inserted with, and a lookup with a token of an earlier generation finds
//! nothing. Stale events are impossible, not merely unlikely.

use slab::Slab;

use crate::token::Token;

/// Entries of one loop, each with the generation it was inserted with.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    slab: Slab<(u32, T)>,
    next_generation: u32,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            slab: Slab::new(),
            next_generation: 0,
        }
    }
}

impl<T> Slots<T> {
    /// The token the next [`insert`](Self::insert) will return.
    pub(crate) fn next_token(&self) -> Token {
        Token::new(self.slab.vacant_key(), self.next_generation)
    }

    /// Inserts `value`; returns its token.
    pub(crate) fn insert(&mut self, value: T) -> Token {
        let token = self.next_token();
        let generation = self.next_generation;
        // The waker's generation is never handed out.
        self.next_generation = match generation.wrapping_add(1) {
            u32::MAX => 0,
            next => next,
        };
        let key = self.slab.insert((generation, value));
        debug_assert_eq!(key, token.key());
        token
    }

    /// The entry `token` names, if it is still the one inserted with it.
    pub(crate) fn get(&self, token: Token) -> Option<&T> {
        match self.slab.get(token.key()) {
            Some((generation, value)) if *generation == token.generation() => Some(value),
            _ => None,
        }
    }

    /// As [`get`](Self::get), mutably.
    pub(crate) fn get_mut(&mut self, token: Token) -> Option<&mut T> {
        match self.slab.get_mut(token.key()) {
            Some((generation, value)) if *generation == token.generation() => Some(value),
            _ => None,
        }
    }

    /// The entries two distinct tokens name, both at once.
    pub(crate) fn get2_mut(&mut self, a: Token, b: Token) -> Option<(&mut T, &mut T)> {
        match self.slab.get2_mut(a.key(), b.key())? {
            ((ga, va), (gb, vb)) if *ga == a.generation() && *gb == b.generation() => {
                Some((va, vb))
            }
            _ => None,
        }
    }

    /// Removes the entry `token` names, if it is still there.
    pub(crate) fn remove(&mut self, token: Token) -> Option<T> {
        self.get(token)?;
        Some(self.slab.remove(token.key()).1)
    }

    /// The tokens of every entry.
    pub(crate) fn tokens(&self) -> Vec<Token> {
        self.slab
            .iter()
            .map(|(key, (generation, _))| Token::new(key, *generation))
            .collect()
    }

    /// How many entries there are.
    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Gives back the memory of a slab that has shrunk to a fraction of its
    /// capacity (after a crowd of connections left).
    pub(crate) fn shrink(&mut self) {
        if self.slab.capacity() > 64 && self.slab.len() < self.slab.capacity() / 4 {
            self.slab.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_of_a_removed_entry_does_not_reach_the_entry_that_reused_its_key() {
        let mut slots = Slots::default();
        let old = slots.insert("old");
        assert_eq!(slots.remove(old), Some("old"));
        let new = slots.insert("new");
        assert_eq!(old.key(), new.key(), "the slab reuses the key");
        assert_ne!(old, new);
        assert_eq!(slots.get(old), None);
        assert_eq!(slots.get_mut(old), None);
        assert_eq!(slots.remove(old), None);
        assert_eq!(slots.get(new), Some(&"new"));
    }

    #[test]
    fn next_token_is_what_insert_returns() {
        let mut slots = Slots::default();
        for i in 0..10 {
            let expected = slots.next_token();
            assert_eq!(slots.insert(i), expected);
        }
    }

    #[test]
    fn tokens_survive_the_round_trip_through_epoll_values() {
        let mut slots = Slots::default();
        let token = slots.insert(());
        assert_eq!(Token::from_mio(token.to_mio()), token);
        assert_eq!(token.as_u64() as usize, token.to_mio().0);
    }

    #[test]
    fn generations_wrap_without_ever_making_the_waker_token() {
        let mut slots: Slots<()> = Slots {
            slab: Slab::new(),
            next_generation: u32::MAX - 1,
        };
        let a = slots.insert(());
        assert_eq!(a.generation(), u32::MAX - 1);
        slots.remove(a);
        let b = slots.insert(());
        assert_eq!(b.generation(), 0, "u32::MAX is skipped");
        assert_ne!(b, Token::WAKER);
        slots.remove(b);
        // A slot whose key is all ones still needs generation u32::MAX to
        // collide with the waker, and that generation is never handed out.
        assert_ne!(Token::new(u32::MAX as usize, 0), Token::WAKER);
    }

    #[test]
    fn shrinking_gives_back_capacity_after_a_crowd_left() {
        let mut slots = Slots::default();
        let tokens: Vec<Token> = (0..10_000).map(|i| slots.insert(i)).collect();
        for token in &tokens[10..] {
            slots.remove(*token);
        }
        slots.shrink();
        // Slab cannot move entries, so it keeps up to the highest key in use.
        assert!(slots.slab.capacity() < 10_000, "{}", slots.slab.capacity());
        for (i, token) in tokens[..10].iter().enumerate() {
            assert_eq!(slots.get(*token), Some(&i));
        }
    }
}
