//! The poller of one event loop: a `mio::Poll`, and the level-triggered
//! path onto the same epoll instance.
//!
//! With [`Trigger::Edge`] sockets go through mio (`EPOLLET`), registered
//! once for reading and writing. With [`Trigger::Level`] they are added
//! without `EPOLLET` through [`LevelEpoll`], and their interest changes with
//! the channel's state. Either way the events come back from `Poll::poll`.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use mio::event::Source;
use mio::{Events, Interest, Poll};

use crate::channel::config::Trigger;
use crate::sys::epoll::{LevelEpoll, LtInterest};
use crate::token::Token as SlotToken;

/// Polls readiness for one loop.
#[derive(Debug)]
pub(crate) struct Poller {
    poll: Poll,
    level: Option<LevelEpoll>,
}

impl Poller {
    pub(crate) fn new(trigger: Trigger) -> io::Result<Poller> {
        let poll = Poll::new()?;
        let level = match trigger {
            Trigger::Edge => None,
            Trigger::Level => Some(LevelEpoll::new(poll.registry())?),
        };
        Ok(Poller { poll, level })
    }

    pub(crate) fn waker(&self) -> io::Result<mio::Waker> {
        mio::Waker::new(self.poll.registry(), SlotToken::WAKER.to_mio())
    }

    /// Registers a socket. Edge: for reading and writing, once and for all.
    /// Level: for `interest`.
    pub(crate) fn register<S: Source + AsRawFd>(
        &self,
        source: &mut S,
        token: SlotToken,
        interest: LtInterest,
    ) -> io::Result<()> {
        match &self.level {
            None => self.poll.registry().register(
                source,
                token.to_mio(),
                Interest::READABLE | Interest::WRITABLE,
            ),
            Some(level) => level.add(source.as_raw_fd(), token.as_u64(), interest),
        }
    }

    /// Registers a listening socket for readability.
    pub(crate) fn register_listener<S: Source + AsRawFd>(
        &self,
        source: &mut S,
        token: SlotToken,
        accepting: bool,
    ) -> io::Result<()> {
        match &self.level {
            None => self
                .poll
                .registry()
                .register(source, token.to_mio(), Interest::READABLE),
            Some(level) => level.add(
                source.as_raw_fd(),
                token.as_u64(),
                LtInterest {
                    read: accepting,
                    write: false,
                },
            ),
        }
    }

    /// Changes a level-triggered registration; nothing to do for edge.
    pub(crate) fn modify<S: AsRawFd>(
        &self,
        source: &S,
        token: SlotToken,
        interest: LtInterest,
    ) -> io::Result<()> {
        match &self.level {
            None => Ok(()),
            Some(level) => level.modify(source.as_raw_fd(), token.as_u64(), interest),
        }
    }

    /// Removes a socket, through the path that added it.
    pub(crate) fn deregister<S: Source + AsRawFd>(&self, source: &mut S) -> io::Result<()> {
        match &self.level {
            None => self.poll.registry().deregister(source),
            Some(level) => level.delete(source.as_raw_fd()),
        }
    }

    /// Whether registrations are level-triggered.
    pub(crate) fn is_level(&self) -> bool {
        self.level.is_some()
    }

    /// Waits for events (`None`: without a time limit).
    pub(crate) fn poll(
        &mut self,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        self.poll.poll(events, timeout)
    }
}
