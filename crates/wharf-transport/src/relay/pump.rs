//! Moving bytes between linked channels: the loop takes both connections
//! out of its slab at once, reads one (splicing into a pipe, or copying
//! into a pooled buffer), queues what it read on the other and flushes it
//! there at once, so a pipe is usually empty again before the next read.
//!
//! Reading one side stops at its read budget (edge-triggered, it is served
//! again from the ready list), at a short read, or when the other side is
//! no longer writable (its water marks); that side's flip back to writable
//! serves the first again (`RelayLink::writability_changed`). Level-
//! triggered, the same flips change what the stopped side is registered
//! for, through [`ConnCore::reading_enabled`](crate::channel::connection::ConnCore::reading_enabled).

use std::io;
use std::sync::atomic::Ordering::Relaxed;

use crate::channel::connection::Connection;
use crate::channel::env::{ChannelEnv, Readiness};
use crate::channel::outbound::OutboundMessage;
use crate::reactor::event_loop::{EventLoop, Slot};
use crate::relay::SplicedBytes;
use crate::stats::add;
use crate::token::Token;

/// What one read of a relayed channel gave.
enum Got {
    /// `n` bytes of the `asked`, queued on the partner.
    Bytes { n: usize, asked: usize },
    /// The end of the input.
    End,
}

impl EventLoop {
    /// The two connections of a link, `token`'s first; `None` if `token`
    /// is not linked (or its partner is gone).
    fn pair(
        &mut self,
        token: Token,
    ) -> Option<(&mut Connection, &mut Connection, &mut ChannelEnv)> {
        let peer = match self.slots.get(token) {
            Some(Slot::Conn(conn)) => conn.core.relay.as_ref()?.peer,
            _ => return None,
        };
        match self.slots.get2_mut(token, peer)? {
            (Slot::Conn(a), Slot::Conn(b)) => Some((a, b, &mut self.env)),
            _ => None,
        }
    }

    /// An epoll event for a linked connection: flush what its partner sent
    /// it, pump what it has into its partner, and let the partner pump into
    /// it if it made room.
    pub(crate) fn relay_event(&mut self, token: Token, r: Readiness) {
        let Some((a, b, env)) = self.pair(token) else {
            return self.on_conn(token, |conn, env| conn.on_event(r, env));
        };
        debug_assert!(
            a.core.shared.event_loop.in_event_loop(),
            "relay off its loop"
        );
        let hang_up = r.error || (r.read_closed && r.write_closed);
        if r.writable || r.error {
            a.core.io.waiting_writable = false;
            a.guarded(env, |_, core, env| core.flush(env));
        }
        if r.readable || r.read_closed || hang_up {
            pump(a, b, env, hang_up, r.read_closed || hang_up);
        }
        refill(b, a, env);
        if r.error && !a.core.phase.is_aborting() && !a.core.phase.is_closed() {
            let error = match a.core.socket.take_error() {
                Ok(Some(e)) | Err(e) => e,
                Ok(None) => io::Error::new(io::ErrorKind::ConnectionReset, "the connection failed"),
            };
            a.core.fail_io(error);
        }
        self.settle_pair(token);
    }

    /// A linked connection's turn on the ready list: flush if its spin
    /// budget ran out, pump if its read budget did or it was woken.
    pub(crate) fn relay_ready(&mut self, token: Token) {
        let Some((a, b, env)) = self.pair(token) else {
            return self.on_conn(token, |conn, env| conn.on_ready(env));
        };
        a.core.io.queued = false;
        if a.core.io.flush_pending {
            a.core.io.flush_pending = false;
            a.guarded(env, |_, core, env| core.flush(env));
        }
        pump(a, b, env, false, false);
        refill(b, a, env);
        self.settle_pair(token);
    }

    /// Settles both connections of a link (each may close, and a close
    /// passes on to the other).
    fn settle_pair(&mut self, token: Token) {
        let peer = match self.slots.get(token) {
            Some(Slot::Conn(conn)) => conn.core.relay.as_ref().map(|l| l.peer),
            _ => None,
        };
        self.settle(token);
        if let Some(peer) = peer {
            self.settle(peer);
        }
    }
}

/// `dst` may have made room: if `src` stopped reading for it, read on.
fn refill(src: &mut Connection, dst: &mut Connection, env: &mut ChannelEnv) {
    let parked = src.core.relay.as_ref().is_some_and(|l| l.parked);
    if parked && dst.core.shared.is_writable() {
        pump(src, dst, env, false, false);
    }
}

/// Reads `src` into `dst` as far as the budget, the socket and `dst`'s
/// room go. `force` reads even while `dst` is full (a hung-up socket must
/// be read to its end to learn what happened); `until_eof` reads past short
/// reads (the peer closed its side).
fn pump(
    src: &mut Connection,
    dst: &mut Connection,
    env: &mut ChannelEnv,
    force: bool,
    until_eof: bool,
) {
    if !src.core.phase.delivers_input() {
        // Closing or lingering: the usual read, which discards.
        return src.read(env, force, until_eof);
    }
    let core = &mut src.core;
    core.io.read_pending = false;
    core.io.peer_closed |= until_eof;
    let until_eof = core.io.peer_closed;
    let budget = core.config.max_messages_per_read;
    let mut reads = 0;
    let mut ended = false;
    loop {
        let Some(link) = &mut src.core.relay else {
            return;
        };
        link.parked = false;
        if !dst.core.accepts_writes() {
            // The partner is going (reset, or lingering after a close):
            // what this side reads has nowhere to go.
            src.core.request_close();
            break;
        }
        if !force && !dst.core.shared.is_writable() {
            link.parked = true;
            break;
        }
        if reads == budget {
            if !env.level {
                src.core.io.read_pending = true;
                src.core.serve_again(env);
            }
            break;
        }
        reads += 1;
        add(&env.counters.reads, 1);
        match read_once(src, dst, env) {
            Ok(Got::End) => {
                ended = true;
                break;
            }
            Ok(Got::Bytes { n, asked }) => {
                if n < asked && !until_eof {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => reads -= 1,
            Err(e) => {
                src.core.fail_io(e);
                break;
            }
        }
    }
    if ended {
        input_ended(src, dst, env);
    }
}

/// One read of `src`, queued on `dst` and flushed there.
fn read_once(src: &mut Connection, dst: &mut Connection, env: &mut ChannelEnv) -> io::Result<Got> {
    let Some(link) = &mut src.core.relay else {
        return Ok(Got::End);
    };
    let relay = std::sync::Arc::clone(&link.relay);
    let counters = &relay.counters;
    if link.splicing {
        match env
            .pipes
            .lease(relay.config.pipe_size, relay.config.max_pipes)
        {
            Some(mut lease) => {
                let asked = lease.capacity();
                let n = lease.fill_from(&src.core.socket, asked)?;
                counters.splices.fetch_add(1, Relaxed);
                if n == 0 {
                    return Ok(Got::End);
                }
                counters.spliced_bytes.fetch_add(n as u64, Relaxed);
                link.learn(n);
                got(
                    src,
                    dst,
                    env,
                    n,
                    OutboundMessage::Spliced(SplicedBytes::new(lease)),
                );
                return Ok(Got::Bytes { n, asked });
            }
            None => {
                counters.pipe_shortages.fetch_add(1, Relaxed);
            }
        }
    }
    let core = &mut src.core;
    let mut buf = core.config.allocator.try_buffer(core.recv.next_size())?;
    let asked = buf.capacity();
    let n = core.socket.read(buf.spare_mut())?;
    if n == 0 {
        return Ok(Got::End);
    }
    buf.commit(n);
    core.recv.record(n, asked);
    counters.copies.fetch_add(1, Relaxed);
    counters.copied_bytes.fetch_add(n as u64, Relaxed);
    if let Some(link) = &mut core.relay {
        link.learn(n);
    }
    got(src, dst, env, n, OutboundMessage::Buf(buf));
    Ok(Got::Bytes { n, asked })
}

/// `n` bytes read from `src` as `msg`: queue them on `dst` and flush.
fn got(
    src: &mut Connection,
    dst: &mut Connection,
    env: &mut ChannelEnv,
    n: usize,
    msg: OutboundMessage,
) {
    src.core.read_at(env.now);
    add(&env.counters.bytes_read, n as u64);
    let core = &mut dst.core;
    let weight = core.out.push(msg, core.gathering());
    core.shared.add_pending(weight);
    core.out.mark_flushed();
    dst.guarded(env, |_, core, env| core.flush(env));
}

/// `src`'s input ended: shut `dst`'s output once what it has queued is
/// sent; the other direction goes on.
fn input_ended(src: &mut Connection, dst: &mut Connection, env: &mut ChannelEnv) {
    let core = &mut src.core;
    core.phase = core.phase.input_ended(true);
    if let Some(link) = &core.relay {
        link.relay.counters.half_closes.fetch_add(1, Relaxed);
    }
    dst.guarded(env, |_, core, env| core.request_shutdown_output(env));
}
