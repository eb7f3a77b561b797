//! What enters and leaves a loop's registry: sockets registered with epoll
//! and put in the slab as channels or listeners, and channels deregistered
//! and closed (muduo's `updateChannel` / `removeChannel`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::channel::connection::{ConnCore, Connection};
use crate::channel::init::ChannelInit;
use crate::channel::shared::ChannelShared;
use crate::channel::socket::Socket;
use crate::reactor::acceptor::{Acceptor, AcceptorTarget};
use crate::reactor::event_loop::{EventLoop, Slot};
use crate::reactor::listener::Listener;
use crate::stats::{add, shift};
use crate::sys::epoll::LtInterest;
use crate::tls::session::TlsSession;
use crate::token::Token;

impl EventLoop {
    /// Registers an accepted or connected socket as a new channel and makes
    /// it active; returns its token. The connection is already counted in
    /// the bootstrap's `live` (by whoever admitted it); this counts it on
    /// the loop.
    pub(crate) fn register_connection(
        &mut self,
        stream: Socket,
        peer: Option<SocketAddr>,
        init: &Arc<ChannelInit>,
    ) -> Option<Token> {
        self.shared.connections.fetch_add(1, Ordering::AcqRel);
        self.register_counted(stream, peer, init)
    }

    /// `register_connection` for a connection already counted on this loop
    /// (by the acceptor that chose the loop, so that least-connections
    /// balancing sees hand-offs still in flight).
    pub(crate) fn register_counted(
        &mut self,
        mut stream: Socket,
        peer: Option<SocketAddr>,
        init: &Arc<ChannelInit>,
    ) -> Option<Token> {
        debug_assert!(self.on_loop_thread(), "registration off the loop thread");
        if let Err(e) = init.options.apply_to_stream(&stream) {
            log::warn!(error:% = e; "setting socket options on a new connection: {e}");
        }
        let token = self.slots.next_token();
        let interest = LtInterest {
            read: init.config.auto_read,
            write: false,
        };
        if let Err(e) = self.poller.register(&mut stream, token, interest) {
            log::warn!(error:% = e; "registering a new connection: {e}");
            self.shared.connections.fetch_sub(1, Ordering::AcqRel);
            init.live.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let shared = Arc::new(ChannelShared::new(
            token,
            self.env.event_loop.clone(),
            stream.local_addr(),
            peer.or_else(|| stream.peer_addr()),
            init.config.water_mark,
            init.config.auto_read,
        ));
        let worker = init
            .workers
            .as_ref()
            .and_then(|pool| pool.worker_for(&shared, self.env.event_loop.clone()));
        let pipeline = (init.factory)(&shared, &init.config, worker);
        let (shared_id, peer) = (shared.id, shared.peer_addr());
        let mut core = ConnCore::new(stream, shared, Arc::clone(&init.config), self.env.now);
        core.io.registered = interest;
        if let Some(setup) = &init.tls {
            match TlsSession::new(setup) {
                Ok(session) => core.tls = Some(Box::new(session)),
                Err(e) => core.fail_tls(e),
            }
        }
        log::trace!(
            channel = shared_id.0, event_loop = self.shared.id, peer:?;
            "channel {shared_id} opened"
        );
        let conn = Connection::new(core, pipeline, Arc::clone(&init.live));
        let inserted = self.slots.insert(Slot::Conn(conn));
        debug_assert_eq!(inserted, token);
        add(&self.env.counters.connections_opened, 1);
        self.idle.track(init.config.allocator);
        self.on_conn(token, |conn, env| conn.start(env));
        Some(token)
    }

    /// Registers a listening socket whose connections go to `target`.
    pub(crate) fn register_listener(
        &mut self,
        mut listener: Listener,
        target: AcceptorTarget,
        init: Arc<ChannelInit>,
    ) -> io::Result<Token> {
        let token = self.slots.next_token();
        self.poller.register_listener(&mut listener, token, true)?;
        let inserted = self
            .slots
            .insert(Slot::Listener(Acceptor::new(listener, target, init)));
        debug_assert_eq!(inserted, token);
        Ok(token)
    }

    /// Removes a listener: it stops accepting and its socket closes.
    pub(crate) fn remove_listener(&mut self, token: Token) {
        if let Some(Slot::Listener(mut acceptor)) = self.slots.remove(token) {
            let _ = self.poller.deregister(&mut acceptor.listener);
        }
    }

    /// Closes a connection now: deregister it, then let it finish (drop
    /// what is queued, cancel its timers, tell the handler, close the
    /// socket).
    pub(crate) fn close(&mut self, token: Token) {
        let Some(Slot::Conn(mut conn)) = self.slots.remove(token) else {
            return;
        };
        let _ = self.poller.deregister(&mut conn.core.socket);
        self.shared.connections.fetch_sub(1, Ordering::AcqRel);
        add(&self.env.counters.connections_closed, 1);
        let channel = conn.core.shared.id;
        log::trace!(channel = channel.0, event_loop = self.shared.id; "channel {channel} closed");
        let counted = conn.core.io.outbound_counted;
        shift(&self.env.counters.outbound_queued, -(counted as i64));
        let partner = conn.core.relay.take().map(|link| link.peer);
        let aborted = conn.core.phase.is_aborting() || conn.is_poisoned();
        conn.finish(&mut self.env);
        self.apply_timer_ops();
        if let Some(peer) = partner {
            // A relayed channel's end passes on to its partner.
            self.relay_partner_closed(peer, aborted);
        }
    }

    /// Closes a connection at once, dropping what it has queued, or fails
    /// a connect in progress with `why`; listeners are left alone.
    pub(crate) fn abort_channel(&mut self, token: Token, why: &str) {
        match self.slots.get_mut(token) {
            Some(Slot::Conn(conn)) => {
                conn.abort();
                self.close(token);
            }
            Some(Slot::Connecting(_)) => self.fail_connect(
                token,
                io::Error::new(io::ErrorKind::Interrupted, why.to_string()),
            ),
            _ => {}
        }
    }

    /// Closes whatever is left when the loop ends.
    pub(crate) fn teardown(&mut self) {
        for token in self.slots.tokens() {
            if let Some(Slot::Listener(_)) = self.slots.get(token) {
                self.remove_listener(token);
            } else {
                self.abort_channel(token, "event loop stopped");
            }
        }
        self.timers.clear();
        self.drain_tasks();
    }
}

impl Drop for EventLoop {
    /// A loop that ends by a panic (a bug in wharf, not a handler's: those
    /// are caught per channel) drops its sockets on the way out; they are
    /// reset, so that no peer takes a response cut off mid-way for a
    /// complete one.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let (event_loop, channels) = (self.shared.id, self.slots.len());
        log::error!(
            event_loop, channels;
            "event loop {event_loop} panicked; resetting its {channels} channel(s)"
        );
        for token in self.slots.tokens() {
            if let Some(Slot::Conn(conn)) = self.slots.get(token) {
                let socket = socket2::SockRef::from(&conn.core.socket);
                let _ = socket.set_linger(Some(std::time::Duration::ZERO));
            }
        }
    }
}
