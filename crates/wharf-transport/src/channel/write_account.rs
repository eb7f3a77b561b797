//! A channel's outbound account: the bytes waiting to be sent, counted
//! from any thread the moment a write is made, and the writable flag the
//! water marks derive from them (with the count of its flips).

use crate::channel::config::WaterMark;
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Bytes waiting to be sent and the writable flag they drive.
#[derive(Debug)]
pub(crate) struct WriteAccount {
    water_mark: WaterMark,
    /// Bytes queued (with entry overhead) plus estimates of writes on their
    /// way from other threads.
    pending: AtomicUsize,
    writable: AtomicBool,
    /// Times `writable` flipped, so the loop can tell the handler about a
    /// flip even if the flag flipped back before the loop looked.
    flips: AtomicU64,
}

impl WriteAccount {
    pub(crate) fn new(water_mark: WaterMark) -> WriteAccount {
        WriteAccount {
            water_mark,
            pending: AtomicUsize::new(0),
            writable: AtomicBool::new(true),
            flips: AtomicU64::new(0),
        }
    }

    /// Counts `n` more bytes waiting to be sent.
    pub(crate) fn add(&self, n: usize) {
        if n > 0 {
            self.pending.fetch_add(n, Ordering::AcqRel);
            self.update_writability();
        }
    }

    /// Counts `n` fewer bytes waiting to be sent.
    pub(crate) fn release(&self, n: usize) {
        if n > 0 {
            let before = self.pending.fetch_sub(n, Ordering::AcqRel);
            debug_assert!(before >= n, "released {n} of {before} pending bytes");
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
    pub(crate) fn flips(&self) -> u64 {
        self.flips.load(Ordering::Acquire)
    }

    /// Whether the outbound queue is below the high water mark (with
    /// hysteresis, see [`WaterMark`]).
    pub(crate) fn is_writable(&self) -> bool {
        self.writable.load(Ordering::Acquire)
    }
}
