//! Level-triggered registration on mio's epoll instance.
//!
//! mio registers every source edge-triggered (`EPOLLET`). For level
//! triggering, wharf adds sockets itself, without `EPOLLET`, to the same
//! epoll instance through a duplicate of mio's registry descriptor (mio 1.2
//! exposes it with `AsRawFd`). The token goes in `epoll_event.u64`, which is
//! what mio reads back as its `Token`, so the events come out of the same
//! `Poll::poll` call. A descriptor is registered by one path only: mio's
//! debug builds reject a `reregister` of a descriptor they did not add.
//!
//! `EPOLLRDHUP` comes with `EPOLLIN`, so mio's `Event::is_read_closed`
//! works; a socket that is not being read asks for neither (a peer's
//! half-close would otherwise be reported again and again). `EPOLLOUT` is
//! asked for only while output is pending, or the loop would wake up for a
//! writable socket forever.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use mio::Registry;
use nix::sys::epoll::{Epoll, EpollEvent, EpollFlags};

/// What a level-triggered registration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LtInterest {
    /// Report readable (and hang-up): `EPOLLIN | EPOLLRDHUP`.
    pub read: bool,
    /// Report writable: `EPOLLOUT`.
    pub write: bool,
}

impl LtInterest {
    fn flags(self) -> EpollFlags {
        // Hang-up and error are always reported by epoll itself.
        let mut flags = EpollFlags::empty();
        if self.read {
            flags |= EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
        }
        if self.write {
            flags |= EpollFlags::EPOLLOUT;
        }
        flags
    }
}

/// mio's epoll instance, seen through a duplicate of its descriptor.
#[derive(Debug)]
pub(crate) struct LevelEpoll {
    epoll: Epoll,
}

impl LevelEpoll {
    /// Duplicates the registry's epoll descriptor.
    pub(crate) fn new(registry: &Registry) -> io::Result<LevelEpoll> {
        let raw = registry.as_raw_fd();
        // SAFETY: `raw` is the epoll descriptor owned by `registry`, which
        // outlives this call; we only borrow it for the `dup`.
        let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
        // F_DUPFD_CLOEXEC: the duplicate refers to the same epoll instance.
        let owned = borrowed.try_clone_to_owned()?;
        Ok(LevelEpoll {
            epoll: Epoll(owned),
        })
    }

    /// Adds `fd` without `EPOLLET`.
    pub(crate) fn add(&self, fd: RawFd, token: u64, interest: LtInterest) -> io::Result<()> {
        let event = EpollEvent::new(interest.flags(), token);
        self.epoll.add(borrow(fd), event).map_err(io::Error::from)
    }

    /// Changes what `fd` is registered for.
    pub(crate) fn modify(&self, fd: RawFd, token: u64, interest: LtInterest) -> io::Result<()> {
        let mut event = EpollEvent::new(interest.flags(), token);
        self.epoll
            .modify(borrow(fd), &mut event)
            .map_err(io::Error::from)
    }

    /// Removes `fd`.
    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.epoll.delete(borrow(fd)).map_err(io::Error::from)
    }
}

fn borrow<'a>(fd: RawFd) -> BorrowedFd<'a> {
    // SAFETY: callers pass the descriptor of a socket they own and keep open
    // for the duration of the call; epoll_ctl does not retain the borrow.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

#[cfg(test)]
mod tests {
    //! Pins what wharf relies on and mio calls "not guaranteed": a raw
    //! epoll registration on mio's instance comes back through mio's
    //! `Events` with its token, level-triggered.

    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    use mio::{Events, Interest, Poll, Token};

    use super::{LevelEpoll, LtInterest};

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        server.set_nonblocking(true).expect("nonblocking");
        (client, server)
    }

    fn tokens(poll: &mut Poll, events: &mut Events) -> Vec<(usize, bool, bool)> {
        poll.poll(events, Some(Duration::from_millis(200)))
            .expect("poll");
        events
            .iter()
            .map(|e| (e.token().0, e.is_readable(), e.is_read_closed()))
            .collect()
    }

    #[test]
    fn level_registration_round_trips_tokens_and_redelivers_unread_data() {
        let mut poll = Poll::new().expect("poll");
        let mut events = Events::with_capacity(8);
        let level = LevelEpoll::new(poll.registry()).expect("dup");
        let (mut client, mut server) = pair();
        let read = LtInterest {
            read: true,
            write: false,
        };
        level.add(server.as_raw_fd(), 42, read).expect("add");

        client.write_all(b"ping").expect("write");
        assert_eq!(tokens(&mut poll, &mut events), [(42, true, false)]);
        // Not read: level-triggered reports it again without new data.
        assert_eq!(tokens(&mut poll, &mut events), [(42, true, false)]);

        let mut buf = [0u8; 16];
        assert_eq!(server.read(&mut buf).expect("read"), 4);
        poll.poll(&mut events, Some(Duration::ZERO)).expect("poll");
        assert!(events.is_empty(), "drained: nothing to report");

        // Interest off: the peer's half-close is not reported (no spin).
        level
            .modify(server.as_raw_fd(), 42, LtInterest::default())
            .expect("modify");
        client
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .expect("poll");
        assert!(events.is_empty());
        // Interest on: EPOLLRDHUP makes mio say "read closed".
        level.modify(server.as_raw_fd(), 42, read).expect("modify");
        assert_eq!(tokens(&mut poll, &mut events), [(42, true, true)]);
        level.delete(server.as_raw_fd()).expect("delete");
    }

    #[test]
    fn edge_registration_through_mio_reports_unread_data_once() {
        let mut poll = Poll::new().expect("poll");
        let mut events = Events::with_capacity(8);
        let (mut client, server) = pair();
        let mut server = mio::net::TcpStream::from_std(server);
        poll.registry()
            .register(&mut server, Token(7), Interest::READABLE)
            .expect("register");
        client.write_all(b"ping").expect("write");
        assert_eq!(tokens(&mut poll, &mut events), [(7, true, false)]);
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .expect("poll");
        assert!(events.is_empty(), "edge-triggered: no new edge, no event");
        client.write_all(b"more").expect("write");
        assert_eq!(tokens(&mut poll, &mut events), [(7, true, false)]);
    }
}
