//! Reading a connection's socket: the read loop, its budget, and the end
//! of input.
//!
//! Both triggers stop at the first short read: the socket was drained at
//! that moment, and anything arriving later is reported again, with level
//! triggering because data remains, with edge triggering because Linux
//! queues a new edge for every arrival (so the usual "read until `EAGAIN`"
//! only adds a read that finds nothing). Reading stops at the budget too;
//! edge-triggered sockets are then served again from the ready list, since
//! no new edge would come for data already there.
//!
//! A closing or lingering connection reads on, but throws what it reads
//! away: a peer still sending the request that is being refused can finish
//! and read the answer, instead of both sides waiting on full buffers
//! until a reset cuts the answer off.

use std::io;

use crate::channel::connection::Connection;
use crate::channel::env::ChannelEnv;
use crate::stats::add;

/// Bytes a discarding read takes at most (a buffer on the loop's stack).
const DISCARD_CHUNK: usize = 16 << 10;

impl Connection {
    /// Reads what the socket has, up to the read budget, and passes each
    /// read to the pipeline (or discards it while closing).
    ///
    /// `until_eof` keeps reading past short reads: the event said the peer
    /// closed its side, so the end of stream is there to be read (this is
    /// remembered for later reads of the same channel). `force` reads even
    /// with reading off, to learn why a socket reported hang-up or error.
    pub(crate) fn read(&mut self, env: &mut ChannelEnv, force: bool, until_eof: bool) {
        let core = &mut self.core;
        core.io.read_pending = false;
        core.io.peer_closed |= until_eof;
        let until_eof = core.io.peer_closed;
        let budget = core.config.max_messages_per_read;
        let mut delivered = false;
        if core.io.held_input && core.takes_messages() && core.phase.delivers_input() && !force {
            delivered = true;
            self.guarded(env, |pipeline, core, env| pipeline.resume_input(core, env));
        }
        let mut reads = 0;
        let mut eof = false;
        loop {
            let core = &mut self.core;
            let phase = core.phase;
            if !phase.reads_socket() {
                break;
            }
            let discarding = phase.discards_input();
            if discarding && core.config.lingering.is_none() {
                // Without a lingering close, a closing channel stops reading.
                break;
            }
            if !force && !discarding && !core.reading_enabled() {
                break;
            }
            if reads == budget {
                if !env.level {
                    core.io.read_pending = true;
                    core.serve_again(env);
                }
                break;
            }
            reads += 1;
            add(&env.counters.reads, 1);
            let spliced = if discarding {
                None
            } else {
                self.splice_once(env)
            };
            let outcome = if let Some(outcome) = spliced {
                outcome
            } else if discarding {
                self.discard_once(env)
            } else if self.core.tls.is_some() {
                self.read_tls_once(env, &mut delivered)
            } else if let Some(target) = self
                .pipeline
                .direct_target()
                .filter(|_| !self.core.receiving())
            {
                // A large message announced by the codec: read as much of
                // it as the socket has, straight into its buffer.
                let capacity = target.writable_bytes();
                match self.core.socket.read(target.spare_mut()) {
                    Ok(n) if n > 0 => {
                        target.commit(n);
                        self.core.read_at(env.now);
                        add(&env.counters.bytes_read, n as u64);
                        delivered = true;
                        self.guarded(env, |pipeline, core, env| {
                            pipeline.read_direct(core, env, n)
                        });
                        Ok((n, capacity))
                    }
                    other => other.map(|n| (n, capacity)),
                }
            } else {
                self.read_once(env, &mut delivered)
            };
            match outcome {
                Ok((0, _)) => {
                    eof = true;
                    break;
                }
                Ok((n, capacity)) => {
                    if n < capacity && !until_eof {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => reads -= 1,
                Err(e) => {
                    self.core.fail_io(e);
                    break;
                }
            }
        }
        if delivered {
            self.guarded(env, |pipeline, core, env| pipeline.read_complete(core, env));
        }
        if eof {
            self.input_ended(env);
        }
    }

    /// The peer ended its output: an open connection decodes and delivers
    /// what is left (and, with half-closure, tells the handler); a closing
    /// one has nothing more to wait for.
    fn input_ended(&mut self, env: &mut ChannelEnv) {
        self.core.fail_receive(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the peer closed its side before all the bytes to receive arrived",
        ));
        if self.core.is_handshaking() {
            self.core.handshake_cut_off();
            return;
        }
        if self.core.phase.delivers_input() {
            self.guarded(env, |pipeline, core, env| pipeline.input_closed(core, env));
        }
        let core = &mut self.core;
        core.phase = core.phase.input_ended(core.config.allow_half_closure);
    }

    /// One read into a fresh buffer of the adaptive size, passed to the
    /// pipeline; returns what was read and what could have been.
    fn read_once(
        &mut self,
        env: &mut ChannelEnv,
        delivered: &mut bool,
    ) -> io::Result<(usize, usize)> {
        let core = &mut self.core;
        let mut buf = core.config.allocator.try_buffer(core.recv.next_size())?;
        let capacity = buf.capacity();
        let n = core.socket.read(buf.spare_mut())?;
        if n > 0 {
            buf.commit(n);
            add(&env.counters.bytes_read, n as u64);
            core.recv.record(n, capacity);
            core.read_at(env.now);
            *delivered = true;
            self.guarded(env, |pipeline, core, env| pipeline.read(core, env, buf));
        }
        Ok((n, capacity))
    }

    /// One splice round of a receive into a file (`receive.rs`), if one is
    /// under way on a plain socket and splices; `None` to read otherwise.
    fn splice_once(&mut self, env: &mut ChannelEnv) -> Option<io::Result<(usize, usize)>> {
        let core = &mut self.core;
        if core.tls.is_some() {
            return None;
        }
        let receives = core.receives.as_mut()?;
        let receiving = receives.current().filter(|r| r.splices())?;
        let outcome = receiving.splice_from(&core.socket, env)?;
        if let Ok((n, _)) = outcome
            && n > 0
        {
            crate::channel::idle::read_at(&mut core.idle, env.now);
            receives.end_if_complete();
        }
        Some(outcome)
    }

    /// One read while closing or lingering: the bytes are thrown away.
    fn discard_once(&mut self, env: &mut ChannelEnv) -> io::Result<(usize, usize)> {
        let mut scratch = [0u8; DISCARD_CHUNK];
        let core = &mut self.core;
        let n = core.socket.read(&mut scratch)?;
        if n > 0 {
            add(&env.counters.bytes_read, n as u64);
            core.read_at(env.now);
            core.io.discarded = true;
            let acknowledged = core.output_acknowledged(n, core.phase);
            core.phase = core.phase.discarded(n, env.now, acknowledged);
        }
        Ok((n, DISCARD_CHUNK))
    }
}
