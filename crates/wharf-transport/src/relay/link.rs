//! Pairing and unpairing: the relay state each linked channel carries, the
//! link made on the loop, and what a channel's end does to its partner.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::channel::connection::Connection;
use crate::channel::env::ChannelEnv;
use crate::channel::shared::ChannelShared;
use crate::reactor::event_loop::{EventLoop, Slot};
use crate::relay::{RelayShared, SpliceMode};
use crate::token::Token;

/// With `Auto`, small reads in a row after which a direction copies again.
const SMALL_READS_TO_COPY: u8 = 4;

/// The relay state of one linked channel: its partner, and how the
/// direction from this channel to the partner moves its bytes.
#[derive(Debug)]
pub(crate) struct RelayLink {
    /// The partner's token on the same loop.
    pub peer: Token,
    /// The partner's shared state: its writability gates reading here.
    pub peer_shared: Arc<ChannelShared>,
    pub relay: Arc<RelayShared>,
    /// Reads from this channel splice (the direction carries bulk data).
    pub splicing: bool,
    /// Small splices in a row (with `Auto`).
    small: u8,
    /// Reading stopped because the partner was not writable.
    pub parked: bool,
}

impl RelayLink {
    fn new(peer: Token, peer_shared: Arc<ChannelShared>, relay: Arc<RelayShared>) -> RelayLink {
        let splicing = relay.config.splice == SpliceMode::Always;
        RelayLink {
            peer,
            peer_shared,
            relay,
            splicing,
            small: 0,
            parked: false,
        }
    }

    /// Whether this channel may be read now: its partner takes more.
    pub(crate) fn reading_enabled(&self) -> bool {
        self.peer_shared.is_writable()
    }

    /// Learns from a read of `n` bytes whether to splice the next one.
    pub(crate) fn learn(&mut self, n: usize) {
        let config = &self.relay.config;
        if config.splice != SpliceMode::Auto {
            return;
        }
        if !self.splicing {
            self.splicing = n >= config.splice_threshold;
            self.small = 0;
        } else if n < config.splice_threshold / 8 {
            self.small += 1;
            if self.small >= SMALL_READS_TO_COPY {
                self.splicing = false;
                self.small = 0;
            }
        } else {
            self.small = 0;
        }
    }

    /// This channel's writability flipped: when it can take more, its
    /// partner (which stopped reading for it) is served again.
    pub(crate) fn writability_changed(&self, writable: bool, env: &mut ChannelEnv) {
        if writable {
            env.serve_again(self.peer);
        }
    }
}

impl Connection {
    /// Unlinks the channel because its partner closed: reset as the
    /// partner was, or close gracefully (after sending what is queued).
    fn partner_closed(&mut self, aborted: bool) {
        let core = &mut self.core;
        let Some(link) = core.relay.take() else {
            return;
        };
        if aborted {
            link.relay.counters.resets.fetch_add(1, Relaxed);
            self.reset();
        } else {
            core.request_close();
        }
    }

    /// Closes with a reset (`SO_LINGER` 0), dropping what is queued.
    fn reset(&mut self) {
        let core = &mut self.core;
        let _ = socket2::SockRef::from(&core.socket).set_linger(Some(Duration::ZERO));
        core.phase = core.phase.aborted();
    }
}

/// The loop's side: linking, and passing on a channel's end.
impl EventLoop {
    /// Links the channels `a` and `b` describe, if both are still open on
    /// this loop; otherwise closes the one that is.
    pub(crate) fn relay_link(
        &mut self,
        a: &Arc<ChannelShared>,
        b: &Arc<ChannelShared>,
        relay: Arc<RelayShared>,
    ) {
        let open = |el: &EventLoop, token: Token| match el.slots.get(token) {
            Some(Slot::Conn(conn)) => {
                conn.core.phase.delivers_input()
                    && conn.core.accepts_writes()
                    && conn.core.relay.is_none()
                    && !conn.is_poisoned()
            }
            _ => false,
        };
        let tls = |el: &EventLoop, token: Token| matches!(el.slots.get(token), Some(Slot::Conn(conn)) if conn.core.tls.is_some());
        if tls(self, a.token) || tls(self, b.token) {
            // Raw socket bytes are ciphertext there: relaying them would
            // bypass the layer (`Relay::link` refuses what it can see).
            log::error!("relay: a TLS channel cannot be relayed; closing both");
            for token in [a.token, b.token] {
                self.on_conn(token, |conn, _| conn.core.request_close());
            }
            return;
        }
        if !(open(self, a.token) && open(self, b.token)) {
            // One side ended before the link: a relayed channel reads
            // nothing before it is linked, so it ended in an error (a
            // reset, most likely) and what it had sent was not relayed.
            // The other side hears a reset too, not an orderly end.
            for token in [a.token, b.token] {
                self.on_conn(token, |conn, _| {
                    relay.counters.resets.fetch_add(1, Relaxed);
                    conn.reset();
                });
            }
            return;
        }
        relay.counters.links.fetch_add(1, Relaxed);
        for (token, peer) in [(a.token, b), (b.token, a)] {
            let link = RelayLink::new(peer.token, Arc::clone(peer), Arc::clone(&relay));
            self.on_conn(token, |conn, env| {
                if conn.pipeline.has_partial_input() {
                    log::warn!(
                        "relay: channel {} had read bytes its pipeline still holds; they are \
                         not relayed (bootstrap relayed channels with auto_read(false))",
                        conn.core.shared.id
                    );
                }
                conn.core.relay = Some(Box::new(link));
                // Bytes may be waiting in the socket already: no new edge
                // comes for them.
                conn.core.io.read_pending = true;
                conn.core.serve_again(env);
            });
        }
    }

    /// Resets the channel `shared` describes, if it is still open on this
    /// loop: the side whose partner failed before the two were linked.
    pub(crate) fn relay_reset(&mut self, shared: &Arc<ChannelShared>, relay: &RelayShared) {
        self.on_conn(shared.token, |conn, _| {
            if Arc::ptr_eq(&conn.core.shared, shared) && !conn.core.phase.is_closed() {
                relay.counters.resets.fetch_add(1, Relaxed);
                conn.reset();
            }
        });
    }

    /// A linked channel closed: its partner follows (reset if it was
    /// aborted, gracefully otherwise).
    pub(crate) fn relay_partner_closed(&mut self, peer: Token, aborted: bool) {
        self.on_conn(peer, |conn, _| conn.partner_closed(aborted));
    }
}
