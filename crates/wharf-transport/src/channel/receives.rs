//! A channel's receives into files (see [`receive`](crate::channel::receive)):
//! the one under way, those ended that the handler has not heard of yet,
//! and the connection's side of them (starting one, ending one, an end of
//! input held back until the handler has heard).

use std::collections::VecDeque;
use std::io;

use crate::channel::connection::ConnCore;
use crate::channel::env::ChannelEnv;
use crate::channel::receive::{Received, Receiving};

/// A channel's receives: the one under way, and those ended that the
/// handler has not heard of yet. Boxed in the connection only while there
/// are any.
#[derive(Debug, Default)]
pub(crate) struct Receives {
    current: Option<Receiving>,
    ended: VecDeque<Received>,
    /// Bytes received in full that the codec has not been told of.
    taken: u64,
    /// The end of input came (a TLS `close_notify`) while what preceded it
    /// waited for a receive: reported when reading resumes. (Here, not in
    /// every connection's flags: only a receive makes it wait.)
    pub eof_pending: bool,
}

impl Receives {
    /// Starts `receiving`, unless one is under way (or ended untold): that
    /// one goes on, and this one ends at once with `InvalidInput`.
    pub(crate) fn start(&mut self, receiving: Receiving) {
        if self.busy() {
            let error = io::Error::new(
                io::ErrorKind::InvalidInput,
                "a receive is already under way on this channel",
            );
            self.ended.push_back(receiving.end(Err(error)));
            return;
        }
        self.current = Some(receiving);
        self.end_if_complete();
    }

    /// The receive under way, if any.
    pub(crate) fn current(&mut self) -> Option<&mut Receiving> {
        self.current.as_mut()
    }

    /// Whether a receive is under way.
    pub(crate) fn is_receiving(&self) -> bool {
        self.current.is_some()
    }

    /// Whether a receive is under way or ended without the handler having
    /// heard: another one now would take bytes meant for what follows.
    pub(crate) fn busy(&self) -> bool {
        self.current.is_some() || !self.ended.is_empty()
    }

    /// Whether ended receives wait to be told.
    pub(crate) fn has_untold(&self) -> bool {
        !self.ended.is_empty()
    }

    /// Ends the receive under way if all its bytes are in, or if writing
    /// its file failed.
    pub(crate) fn end_if_complete(&mut self) {
        if let Some(error) = self.current.as_mut().and_then(|r| r.take_failure()) {
            return self.fail(error);
        }
        if self.current.as_ref().is_some_and(|r| r.left() == 0) {
            let done = self.current.take().expect("a receive");
            self.taken += done.taken();
            self.ended.push_back(done.end(Ok(())));
        }
    }

    /// Ends the receive under way with `error`.
    pub(crate) fn fail(&mut self, error: io::Error) {
        if let Some(receiving) = self.current.take() {
            self.ended.push_back(receiving.end(Err(error)));
        }
    }

    /// The next ended receive to tell the handler of, with the bytes the
    /// codec must hear were taken around it.
    pub(crate) fn next_ended(&mut self) -> Option<(Received, u64)> {
        let received = self.ended.pop_front()?;
        Some((received, std::mem::take(&mut self.taken)))
    }

    /// Whether nothing is under way or left to tell.
    pub(crate) fn is_idle(&self) -> bool {
        self.current.is_none() && self.ended.is_empty() && !self.eof_pending
    }
}

impl ConnCore {
    /// Whether a receive into a file (or a skip) is under way.
    pub(crate) fn receiving(&self) -> bool {
        self.receives.as_ref().is_some_and(|r| r.is_receiving())
    }

    /// Starts a receive of input around the pipeline (see `receive.rs`).
    pub(crate) fn start_receive(&mut self, receiving: Receiving, env: &mut ChannelEnv) {
        self.receives
            .get_or_insert_with(Box::default)
            .start(receiving);
        self.resume_reading(env);
    }

    /// Whether input read waits for a receive: the codec claims bytes
    /// no receive takes yet, or a receive ended untold (what followed its
    /// bytes is parked). A receive under way is not waiting: an end of
    /// input cuts it short.
    pub(crate) fn input_waits_for_receive(&self) -> bool {
        !self.receiving() && (self.io.input_claimed || self.receives.is_some())
    }

    /// Remembers an end of input that waits for a receive's end to be told.
    pub(crate) fn hold_eof(&mut self) {
        self.receives.get_or_insert_with(Box::default).eof_pending = true;
    }

    /// Takes an end of input held back by [`hold_eof`](Self::hold_eof).
    pub(crate) fn take_held_eof(&mut self) -> bool {
        self.receives
            .as_mut()
            .is_some_and(|r| std::mem::take(&mut r.eof_pending))
    }

    /// Whether an end of input waits to be read.
    pub(crate) fn eof_held(&self) -> bool {
        self.receives.as_ref().is_some_and(|r| r.eof_pending)
    }

    /// Ends the receive under way, if any, with `error`.
    pub(crate) fn fail_receive(&mut self, error: io::Error) {
        if let Some(receives) = &mut self.receives {
            receives.fail(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_receive_is_refused_and_the_first_goes_on() {
        let mut receives = Receives::default();
        receives.start(Receiving::skip(10));
        receives.start(Receiving::skip(4));
        let (refused, taken) = receives.next_ended().expect("the refusal");
        assert_eq!(
            refused.result.unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(taken, 0);
        assert_eq!(receives.current().map(|r| r.left()), Some(10));
        receives.fail(io::ErrorKind::UnexpectedEof.into());
        let (cut, _) = receives.next_ended().expect("the cut receive");
        assert_eq!(cut.result.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert!(receives.is_idle());
    }
}
