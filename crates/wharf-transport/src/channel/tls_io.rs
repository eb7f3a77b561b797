//! A connection's I/O when it speaks TLS: reads go through the session
//! (handshake, then records opened in place) before the pipeline sees
//! them; flushes seal the queue's plaintext into records before the socket
//! sees them; `close_notify` precedes the end of output; a handshake that
//! fails or times out fails the channel with [`ChannelError::Tls`].
//!
//! Until the handshake is done the handler is not active: it hears
//! nothing, and the loop's events (a graceful shutdown, say) close the
//! connection instead of reaching it.

use std::io;

use crate::channel::connection::{ConnCore, Connection};
use crate::channel::env::{ChannelEnv, ChannelTimer};
use crate::channel::handler::ChannelError;
use crate::channel::lifecycle::{Output, Phase};
use crate::channel::writer::transfer_cx;
use crate::stats::add;
use crate::time::saturating_add;
use crate::tls::TlsError;
use crate::tls::session::Sealing;

impl Connection {
    /// Starts the handshake of a TLS connection: its timeout runs, and a
    /// client sends its hello.
    pub(crate) fn start_handshake(&mut self, env: &mut ChannelEnv) {
        let core = &mut self.core;
        let Some(tls) = &mut core.tls else { return };
        let at = saturating_add(env.now, tls.handshake_timeout());
        let timer = env.schedule(at, core.shared.token, ChannelTimer::Handshake);
        core.rare.get_or_insert_with(Box::default).handshake_timer = Some(timer);
        if let Err(e) = tls.start(core.config.allocator) {
            core.fail_tls(e);
            return;
        }
        core.flush(env);
    }

    /// One read of a TLS connection: ciphertext into the session's
    /// buffer, plaintext (if a record completed) to the pipeline. Returns
    /// what was read and what could have been; `(0, _)` also when the
    /// peer's `close_notify` ended its input.
    pub(crate) fn read_tls_once(
        &mut self,
        env: &mut ChannelEnv,
        delivered: &mut bool,
    ) -> io::Result<(usize, usize)> {
        let core = &mut self.core;
        if core.take_held_eof() {
            return Ok((0, 0));
        }
        let allocator = core.config.allocator;
        let want = core.recv.next_size();
        let Some(tls) = &mut core.tls else {
            return Ok((0, 0));
        };
        let buf = tls.read_buffer(want, allocator)?;
        let capacity = buf.writable_bytes();
        let n = core.socket.read(buf.spare_mut())?;
        if n == 0 {
            return Ok((0, capacity));
        }
        buf.commit(n);
        add(&env.counters.bytes_read, n as u64);
        core.recv.record(n, capacity);
        crate::channel::idle::read_at(&mut core.idle, env.now);
        let received = match tls.receive(allocator) {
            Ok(received) => received,
            Err(e) => {
                core.fail_tls(e);
                return Ok((n, capacity));
            }
        };
        core.shared.add_pending(received.queued);
        if tls.has_output() {
            // Handshake messages, or the answer to a key update.
            core.flush(env);
        }
        if let Some(info) = received.established {
            if let Some(id) = core.rare_mut().and_then(|r| r.handshake_timer.take()) {
                env.cancel(id);
            }
            core.shared.set_tls(info);
            self.activate(env);
            // What the handler wrote in `on_active` goes out now.
            self.core.flush(env);
        }
        if let Some(plaintext) = received.plaintext
            && self.core.phase.delivers_input()
        {
            *delivered = true;
            self.guarded(env, |pipeline, core, env| {
                pipeline.read(core, env, plaintext)
            });
        }
        if received.peer_closed {
            if self.core.input_waits_for_receive() {
                // Plaintext before the end is parked behind a receive the
                // handler has not heard the end of: end the input after it.
                self.core.hold_eof();
                return Ok((n, capacity));
            }
            return Ok((0, capacity));
        }
        Ok((n, capacity))
    }

    /// The handshake timer fired: a connection still handshaking fails.
    pub(crate) fn handshake_timed_out(&mut self) {
        let core = &mut self.core;
        if let Some(rare) = core.rare_mut() {
            rare.handshake_timer = None;
        }
        if let Some(tls) = &core.tls
            && tls.is_handshaking()
        {
            let timeout = tls.handshake_timeout();
            core.fail_tls(TlsError::HandshakeTimeout(timeout));
        }
    }
}

impl ConnCore {
    /// Whether the TLS handshake is still going on.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }

    /// Records a TLS failure: the handler hears of it, the alert the
    /// session queued gets one attempt at the socket (a peer that reads
    /// learns why), and the connection is closed without sending what is
    /// queued. A client connect waiting for the handshake hears the error.
    pub(crate) fn fail_tls(&mut self, error: TlsError) {
        if self.phase.is_aborting() || self.phase.is_closed() {
            return;
        }
        if let Some(tls) = &mut self.tls {
            let _ = tls.write_to(&self.socket);
        }
        if let Some(hook) = self.take_on_active() {
            hook.call(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                error.clone(),
            )));
        }
        self.phase = self.phase.aborted();
        self.rare().errors.push(ChannelError::Tls(error));
    }

    /// The peer ended its input while the handshake was still going on.
    pub(crate) fn handshake_cut_off(&mut self) {
        self.fail_tls(TlsError::protocol(
            "the peer closed the connection during the handshake",
        ));
    }

    /// Flushes a TLS connection: waiting ciphertext first, then the
    /// queue's plaintext sealed batch by batch, within the spin budget;
    /// `true` once everything is written (with a half-close's
    /// `close_notify`).
    pub(crate) fn flush_tls(&mut self, env: &mut ChannelEnv) -> bool {
        let mut spins = 0;
        loop {
            let Some(tls) = &mut self.tls else {
                return true;
            };
            if tls.has_output() {
                if spins == self.config.write_spin_count {
                    self.io.flush_pending = true;
                    self.serve_again(env);
                    return false;
                }
                spins += 1;
                add(&env.counters.writes, 1);
                match tls.write_to(&self.socket) {
                    Ok(Some((bytes, released))) => {
                        add(&env.counters.bytes_written, bytes as u64);
                        self.shared.release_pending(released);
                        if bytes > 0 {
                            self.last_write = env.now;
                        }
                    }
                    Ok(None) => {
                        self.io.waiting_writable = true;
                        return false;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.fail_io(e);
                        return false;
                    }
                }
                continue;
            }
            if tls.is_open() && self.out.has_flushed() {
                let mut cx = transfer_cx(&self.config, &self.shared, env);
                match tls.seal_from(&mut self.out, &mut cx, self.config.allocator) {
                    Ok(Sealing::Sealed(_)) => continue,
                    Ok(Sealing::Idle) => {}
                    Ok(Sealing::FilePending) => {
                        self.io.waiting_file = true;
                        return false;
                    }
                    Err(e) => {
                        self.fail_io(e);
                        return false;
                    }
                }
            }
            if let Phase::Open {
                output: Output::ShutRequested,
                ..
            } = self.phase
                && !self.out.has_flushed()
                && !tls.close_notify_queued()
            {
                // A half-close: close_notify, then the FIN.
                tls.close_notify(self.config.allocator);
                continue;
            }
            return !self.output_waiting();
        }
    }

    /// A closing connection sent everything: its `close_notify` goes out
    /// before the close. `true` while it is still on its way.
    pub(crate) fn close_notify_pending(&mut self, env: &mut ChannelEnv) -> bool {
        let Some(tls) = &mut self.tls else {
            return false;
        };
        if tls.is_open() && !tls.close_notify_queued() {
            tls.close_notify(self.config.allocator);
            self.flush(env);
        }
        self.tls.as_ref().is_some_and(|t| t.has_output())
    }
}
