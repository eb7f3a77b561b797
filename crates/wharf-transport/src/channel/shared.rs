//! The part of a channel that other threads see: its identity, whether it
//! is active and writable, and how many bytes wait to be sent.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::channel::config::WaterMark;
use crate::file_region::TransferCounters;
use crate::reactor::handle::EventLoopHandle;

/// Identifies a channel for its whole life (slab slots are reused, ids are
/// not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u64);

impl std::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

static NEXT_CHANNEL_ID: AtomicU64 = AtomicU64::new(1);

/// Shared state of one channel, behind an `Arc`.
#[derive(Debug)]
pub(crate) struct ChannelShared {
    pub id: ChannelId,
    /// The channel's key in its loop's slab.
    pub token: usize,
    pub event_loop: EventLoopHandle,
    pub local_addr: Option<SocketAddr>,
    pub peer_addr: Option<SocketAddr>,
    water_mark: WaterMark,
    /// Bytes queued (with entry overhead) plus estimates of writes on their
    /// way from other threads.
    pending: AtomicUsize,
    writable: AtomicBool,
    /// Times `writable` flipped, so the loop can tell the handler about a
    /// flip even if the flag flipped back before the loop looked.
    flips: AtomicU64,
    active: AtomicBool,
    /// File bytes sent, by strategy.
    pub transfers: TransferCounters,
    /// Handler tasks of this channel queued or running on its worker, or
    /// whose operations are on their way back to the loop.
    worker_tasks: AtomicUsize,
    /// The loop waits for `worker_tasks` to reach zero to close.
    awaiting_workers: AtomicBool,
}

impl ChannelShared {
    pub(crate) fn new(
        token: usize,
        event_loop: EventLoopHandle,
        local_addr: Option<SocketAddr>,
        peer_addr: Option<SocketAddr>,
        water_mark: WaterMark,
    ) -> ChannelShared {
        ChannelShared {
            id: ChannelId(NEXT_CHANNEL_ID.fetch_add(1, Ordering::Relaxed)),
            token,
            event_loop,
            local_addr,
            peer_addr,
            water_mark,
            pending: AtomicUsize::new(0),
            writable: AtomicBool::new(true),
            flips: AtomicU64::new(0),
            active: AtomicBool::new(false),
            transfers: TransferCounters::default(),
            worker_tasks: AtomicUsize::new(0),
            awaiting_workers: AtomicBool::new(false),
        }
    }

    /// Counts `n` more bytes waiting to be sent.
    pub(crate) fn add_pending(&self, n: usize) {
        if n > 0 {
            self.pending.fetch_add(n, Ordering::AcqRel);
            self.update_writability();
        }
    }

    /// Counts `n` fewer bytes waiting to be sent.
    pub(crate) fn release_pending(&self, n: usize) {
        if n > 0 {
            self.pending.fetch_sub(n, Ordering::AcqRel);
            self.update_writability();
        }
    }

    /// Bytes waiting to be sent.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Flips the writable flag with hysteresis: off above the high water
    /// mark, on again below the low one. Retries until the flag agrees with
    /// a fresh look at the count, so concurrent producers and the loop
    /// cannot leave it stale.
    fn update_writability(&self) {
        loop {
            let writable = self.writable.load(Ordering::Acquire);
            let pending = self.pending.load(Ordering::Acquire);
            let want = if writable {
                pending <= self.water_mark.high
            } else {
                pending < self.water_mark.low
            };
            if want == writable {
                return;
            }
            if self
                .writable
                .compare_exchange(writable, want, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.flips.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    /// How many times the writable flag has flipped.
    pub(crate) fn writability_flips(&self) -> u64 {
        self.flips.load(Ordering::Acquire)
    }

    /// Whether the outbound queue is below the high water mark (with
    /// hysteresis, see [`WaterMark`]).
    pub(crate) fn is_writable(&self) -> bool {
        self.writable.load(Ordering::Acquire)
    }

    /// A handler task for this channel was handed to its worker.
    pub(crate) fn worker_task_started(&self) {
        self.worker_tasks.fetch_add(1, Ordering::SeqCst);
    }

    /// A handler task is over (and its operations, if any, applied on the
    /// loop); whether the loop should be woken because it waits for the last
    /// one to close the channel.
    pub(crate) fn worker_task_done(&self) -> bool {
        // SeqCst with `workers_busy`: either the loop sees the count at
        // zero, or this sees the loop waiting (Dekker's pattern).
        self.worker_tasks.fetch_sub(1, Ordering::SeqCst) == 1
            && self.awaiting_workers.load(Ordering::SeqCst)
    }

    /// Whether handler tasks are still in flight on the worker; if so, the
    /// last one to finish wakes the loop.
    pub(crate) fn workers_busy(&self) -> bool {
        self.awaiting_workers.store(true, Ordering::SeqCst);
        self.worker_tasks.load(Ordering::SeqCst) > 0
    }

    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    pub(crate) fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::Release);
    }
}
