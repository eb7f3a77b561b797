//! Writing a connection's outbound queue to its socket: as much as the
//! socket takes now, within the spin budget, resuming on writability, and
//! shutting the write side down once a half-close's queue is sent (TLS
//! connections go through `tls_io.rs` on the way).

use std::io;
use std::sync::Arc;

use crate::channel::config::ChannelConfig;
use crate::channel::connection::ConnCore;
use crate::channel::env::ChannelEnv;
use crate::channel::lifecycle::{Output, Phase};
use crate::channel::outbound::Written;
use crate::channel::shared::ChannelShared;
use crate::file_region::TransferCx;
use crate::stats::add;

impl ConnCore {
    /// Writes flushed entries until the queue is drained, the socket would
    /// block, a file region waits for the disk, or the spin budget is used
    /// up (then the loop flushes again on its next iteration, after serving
    /// other sockets). A TLS connection seals them into records first.
    pub(crate) fn flush(&mut self, env: &mut ChannelEnv) {
        if self.phase.is_aborting()
            || self.phase.is_closed()
            || self.io.waiting_writable
            || self.io.waiting_file
        {
            return;
        }
        let drained = if self.tls.is_some() {
            self.flush_tls(env)
        } else {
            self.flush_plain(env)
        };
        if !drained {
            return;
        }
        self.io.flush_pending = false;
        if let Phase::Open {
            output: Output::ShutRequested,
            ..
        } = self.phase
        {
            self.shut_output();
        }
    }

    /// Whether output waits to be written: flushed entries, or records
    /// sealed from them.
    pub(crate) fn output_waiting(&self) -> bool {
        self.out.has_flushed() || self.tls.as_ref().is_some_and(|t| t.has_output())
    }

    /// `flush` of a plain connection; `true` once the queue is drained.
    fn flush_plain(&mut self, env: &mut ChannelEnv) -> bool {
        let mut spins = 0;
        while self.out.has_flushed() {
            if spins == self.config.write_spin_count {
                self.io.flush_pending = true;
                self.serve_again(env);
                return false;
            }
            spins += 1;
            let mut cx = transfer_cx(&self.config, &self.shared, env);
            let written = self.out.write_to(&self.socket, &mut cx);
            add(&env.counters.writes, 1);
            match written {
                Ok(Written::Progress(progress)) => {
                    add(&env.counters.bytes_written, progress.bytes as u64);
                    self.shared.release_pending(progress.released);
                    if progress.bytes > 0 {
                        self.last_write = env.now;
                    } else if progress.released == 0 {
                        // Nothing moved and nothing was dropped: wait for
                        // the socket rather than spin.
                        self.io.waiting_writable = true;
                        return false;
                    }
                }
                Ok(Written::WouldBlock) => {
                    self.io.waiting_writable = true;
                    return false;
                }
                Ok(Written::Pending) => {
                    self.io.waiting_file = true;
                    return false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail_io(e);
                    return false;
                }
            }
        }
        true
    }

    /// Shuts down the write side (everything queued was sent).
    fn shut_output(&mut self) {
        self.phase = self.phase.output_shut();
        if let Err(e) = self.socket.shutdown_write()
            && e.kind() != io::ErrorKind::NotConnected
        {
            self.fail_io(e);
        }
    }
}

/// What a file region needs for one step on this connection.
pub(crate) fn transfer_cx<'a>(
    config: &'a ChannelConfig,
    shared: &'a Arc<ChannelShared>,
    env: &'a mut ChannelEnv,
) -> TransferCx<'a> {
    TransferCx {
        default: config.transfer,
        allocator: config.allocator,
        pipe: &mut env.pipe,
        loop_stats: &env.transfers,
        channel_stats: &shared.extras,
        max_bytes: config.max_bytes_per_write,
        channel: shared,
    }
}
