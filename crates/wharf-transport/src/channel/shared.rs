//! The part of a channel that other threads see: its identity, whether it
//! is active and writable, how many bytes wait to be sent, and how many
//! handler tasks are out on its worker.
//!
//! The counts are the cross-thread paths of a channel: a
//! [`ChannelHandle`](crate::ChannelHandle) or a worker counts a write the
//! moment it is made, while the loop may be closing the channel; the last
//! worker task to end wakes a loop that waits for it to close. Both are
//! model-checked with loom (the `tests` module, `--cfg loom`).

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::OnceLock;

use crate::EventLoopHandle;
use crate::channel::config::WaterMark;
use crate::channel::env::ChannelMsg;
pub(crate) use crate::channel::write_account::WriteAccount;
use crate::file_region::{TransferCounters, TransferStats, TransferStrategy};
use crate::sync::{AtomicBool, AtomicUsize, Ordering};
use crate::tls::TlsInfo;
use crate::token::Token;

/// Identifies a channel for its whole life (slab slots are reused, ids are
/// not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u64);

impl std::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

static NEXT_CHANNEL_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A channel's local and peer addresses: 16 bytes for the usual IPv4
/// pair instead of 64 for two `Option<SocketAddr>`, which every channel
/// kept (issue 12, goal 4); other pairs are boxed.
#[derive(Debug)]
pub(crate) enum ChannelAddrs {
    /// Both known, both IPv4.
    V4 {
        local: SocketAddrV4,
        peer: SocketAddrV4,
    },
    /// Neither known (a Unix-domain socket without names).
    Neither,
    /// Anything else.
    Other(Box<(Option<SocketAddr>, Option<SocketAddr>)>),
}

impl ChannelAddrs {
    pub(crate) fn new(local: Option<SocketAddr>, peer: Option<SocketAddr>) -> ChannelAddrs {
        match (local, peer) {
            (Some(SocketAddr::V4(local)), Some(SocketAddr::V4(peer))) => {
                ChannelAddrs::V4 { local, peer }
            }
            (None, None) => ChannelAddrs::Neither,
            pair => ChannelAddrs::Other(Box::new(pair)),
        }
    }

    pub(crate) fn local(&self) -> Option<SocketAddr> {
        match self {
            ChannelAddrs::V4 { local, .. } => Some(SocketAddr::V4(*local)),
            ChannelAddrs::Neither => None,
            ChannelAddrs::Other(pair) => pair.0,
        }
    }

    pub(crate) fn peer(&self) -> Option<SocketAddr> {
        match self {
            ChannelAddrs::V4 { peer, .. } => Some(SocketAddr::V4(*peer)),
            ChannelAddrs::Neither => None,
            ChannelAddrs::Other(pair) => pair.1,
        }
    }
}

/// Input bytes a channel may have on its way to (or waiting on) its worker
/// before the loop stops reading it: a saturated worker slows its peers'
/// reading down instead of queueing without bound.
pub(crate) const WORKER_INPUT_LIMIT: usize = 256 << 10;

/// Handler tasks of one channel out on its worker, whether the loop waits
/// for the last one to end (to close the channel), and how much input the
/// worker has not handled yet.
#[derive(Debug, Default)]
pub(crate) struct WorkerTasks {
    /// Tasks queued or running on the worker, or whose operations are on
    /// their way back to the loop.
    tasks: AtomicUsize,
    /// The loop waits for `tasks` to reach zero to close.
    awaited: AtomicBool,
    /// Bytes read for the worker that it has not finished with.
    input: AtomicUsize,
    /// The loop stopped reading because `input` passed the limit; the
    /// worker wakes it once it has worked the backlog down to half.
    throttled: AtomicBool,
}

impl WorkerTasks {
    /// `n` bytes of input were sent to the worker.
    pub(crate) fn add_input(&self, n: usize) {
        self.input.fetch_add(n, Ordering::AcqRel);
    }

    /// Whether the worker has so much input that the loop should stop
    /// reading; marks the loop as waiting to be told when it may go on.
    pub(crate) fn saturated(&self) -> bool {
        if self.input.load(Ordering::Acquire) < WORKER_INPUT_LIMIT {
            return false;
        }
        self.throttled.swap(true, Ordering::AcqRel);
        // Look again after raising the flag (read-modify-write, as in
        // `busy`): either the worker's release is seen here, or it sees
        // the flag and wakes the loop.
        self.input.fetch_add(0, Ordering::AcqRel) >= WORKER_INPUT_LIMIT
    }

    /// The worker finished with `n` bytes of input; whether the loop must
    /// be woken to read again.
    pub(crate) fn input_done(&self, n: usize) -> bool {
        let left = self.input.fetch_sub(n, Ordering::AcqRel) - n;
        left <= WORKER_INPUT_LIMIT / 2 && self.throttled.swap(false, Ordering::AcqRel)
    }

    /// A handler task was handed to the worker.
    pub(crate) fn started(&self) {
        self.tasks.fetch_add(1, Ordering::SeqCst);
    }

    /// A handler task is over (and its operations, if any, applied on the
    /// loop); whether the loop must be woken because it waits for the last
    /// one.
    pub(crate) fn done(&self) -> bool {
        // Read-modify-writes on both sides (Dekker's pattern without
        // relying on sequential consistency): either the loop's look at the
        // count comes after this decrement and sees zero, or it comes
        // before, and then its `awaited` flag is visible here.
        self.tasks.fetch_sub(1, Ordering::AcqRel) == 1
            && self.awaited.fetch_or(false, Ordering::AcqRel)
    }

    /// Whether tasks are still out; if so, the last one to end wakes the
    /// loop.
    pub(crate) fn busy(&self) -> bool {
        self.awaited.swap(true, Ordering::AcqRel);
        self.tasks.fetch_add(0, Ordering::AcqRel) > 0
    }
}

/// What a channel's shared state makes only when first needed: the TLS
/// details once the handshake settles them, the per-strategy file
/// counters at the first file transfer. One box for both: most channels
/// need neither, and pay a pointer and a flag instead of 160 bytes
/// (issue 12, goal 4).
#[derive(Debug, Default)]
pub(crate) struct ChannelExtras(OnceLock<Box<Extras>>);

#[derive(Debug, Default)]
struct Extras {
    tls: OnceLock<TlsInfo>,
    transfers: TransferCounters,
}

impl ChannelExtras {
    fn made(&self) -> &Extras {
        self.0.get_or_init(Box::default)
    }

    /// Counts file bytes and system calls of this channel.
    pub(crate) fn add(&self, strategy: TransferStrategy, bytes: usize, syscalls: u64) {
        self.made().transfers.add(strategy, bytes, syscalls);
    }

    /// The file counters of this channel.
    pub(crate) fn snapshot(&self) -> TransferStats {
        self.0
            .get()
            .map_or_else(TransferStats::default, |e| e.transfers.snapshot())
    }
}

/// Shared state of one channel, behind an `Arc`.
#[derive(Debug)]
pub(crate) struct ChannelShared {
    pub id: ChannelId,
    /// The channel's token on its loop.
    pub token: Token,
    pub event_loop: EventLoopHandle,
    addrs: ChannelAddrs,
    pub writes: WriteAccount,
    pub worker: WorkerTasks,
    active: AtomicBool,
    /// Reading is on (the handler's switch): an atomic, so that a handler
    /// on a worker turning it off stops the loop's very next read.
    auto_read: AtomicBool,
    /// File bytes sent, by strategy, and the TLS details, when any.
    pub extras: ChannelExtras,
}

impl ChannelShared {
    pub(crate) fn new(
        token: Token,
        event_loop: EventLoopHandle,
        local_addr: Option<SocketAddr>,
        peer_addr: Option<SocketAddr>,
        water_mark: WaterMark,
        auto_read: bool,
    ) -> ChannelShared {
        ChannelShared {
            id: ChannelId(NEXT_CHANNEL_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
            token,
            event_loop,
            addrs: ChannelAddrs::new(local_addr, peer_addr),
            writes: WriteAccount::new(water_mark),
            worker: WorkerTasks::default(),
            active: AtomicBool::new(false),
            auto_read: AtomicBool::new(auto_read),
            extras: ChannelExtras::default(),
        }
    }

    /// The local address of the connection.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.addrs.local()
    }

    /// The peer's address.
    pub(crate) fn peer_addr(&self) -> Option<SocketAddr> {
        self.addrs.peer()
    }

    /// Counts `n` more bytes waiting to be sent.
    pub(crate) fn add_pending(&self, n: usize) {
        self.writes.add(n);
    }

    /// Counts `n` fewer bytes waiting to be sent.
    pub(crate) fn release_pending(&self, n: usize) {
        self.writes.release(n);
    }

    /// Bytes waiting to be sent.
    pub(crate) fn pending(&self) -> usize {
        self.writes.pending()
    }

    /// Whether the outbound queue is below the high water mark.
    pub(crate) fn is_writable(&self) -> bool {
        self.writes.is_writable()
    }

    /// A worker task of this channel is over; wakes the loop if it waits
    /// for the last one.
    pub(crate) fn worker_task_done(&self) {
        if self.worker.done() {
            self.post(ChannelMsg::WorkerDone);
        }
    }

    /// Sends `msg` to the channel on its loop; if the loop has ended, the
    /// message gives back what it holds.
    pub(crate) fn post(&self, msg: ChannelMsg) {
        if let Err(msg) = self.event_loop.post_to_channel(self.token, msg) {
            msg.abandon();
        }
    }

    /// Whether the handler wants reading on.
    pub(crate) fn auto_read(&self) -> bool {
        self.auto_read.load(Ordering::Acquire)
    }

    /// Turns the handler's reading switch.
    pub(crate) fn set_auto_read(&self, on: bool) {
        self.auto_read.store(on, Ordering::Release);
    }

    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    pub(crate) fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::Release);
    }

    /// What the TLS handshake settled (set once, before the channel is
    /// active).
    pub(crate) fn set_tls(&self, info: TlsInfo) {
        let _ = self.extras.made().tls.set(info);
    }

    /// What the TLS handshake settled, on a TLS channel.
    pub(crate) fn tls(&self) -> Option<&TlsInfo> {
        self.extras.0.get()?.tls.get()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn addresses_come_back_as_given() {
        let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let v4b: SocketAddr = "10.0.0.2:65535".parse().unwrap();
        let v6: SocketAddr = "[::1%3]:443".parse().unwrap();
        for (local, peer) in [
            (Some(v4), Some(v4b)),
            (Some(v4), Some(v6)),
            (Some(v6), None),
            (None, Some(v4)),
            (None, None),
        ] {
            let addrs = ChannelAddrs::new(local, peer);
            assert_eq!((addrs.local(), addrs.peer()), (local, peer));
        }
        assert!(size_of::<ChannelAddrs>() <= 16);
    }

    #[test]
    fn writability_flips_with_hysteresis_between_the_water_marks() {
        let a = WriteAccount::new(WaterMark { low: 10, high: 20 });
        a.add(20);
        assert!(a.is_writable(), "at the high mark: still writable");
        a.add(1);
        assert!(!a.is_writable(), "above the high mark");
        a.release(6);
        assert!(!a.is_writable(), "between the marks: stays unwritable");
        a.release(5);
        assert!(!a.is_writable(), "at the low mark: still unwritable");
        a.release(1);
        assert!(a.is_writable(), "below the low mark");
        a.add(6);
        assert!(a.is_writable(), "between the marks: stays writable");
        assert_eq!(a.flips(), 2);
        assert_eq!(a.pending(), 15);
    }

    #[test]
    fn a_saturated_worker_pauses_reading_until_it_is_down_to_half() {
        let w = WorkerTasks::default();
        w.add_input(WORKER_INPUT_LIMIT - 1);
        assert!(!w.saturated());
        w.add_input(1);
        assert!(w.saturated(), "at the limit");
        assert!(!w.input_done(1000), "above half: no wake-up yet");
        assert!(
            w.input_done(WORKER_INPUT_LIMIT / 2),
            "down to half: wake the loop"
        );
        assert!(!w.input_done(1), "once");
        assert!(!w.saturated());
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Model checks of the cross-thread counts of a channel.

    use loom::sync::{Arc, Mutex};

    use super::*;

    /// Every interleaving with up to three preemptions (loom's advice: most
    /// bugs need no more), so the models finish in seconds.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(f);
    }

    /// A write made through a handle while the loop closes the channel:
    /// whichever comes first, every byte counted is released, and the
    /// writable flag ends where the count says.
    #[test]
    fn a_handle_write_racing_a_close_releases_everything_it_counted() {
        model(|| {
            let account = Arc::new(WriteAccount::new(WaterMark { low: 4, high: 8 }));
            // The loop's task queue, and whether the channel is still open.
            let queue = Arc::new(Mutex::new((Vec::<usize>::new(), true)));
            let handle = {
                let (account, queue) = (account.clone(), queue.clone());
                loom::thread::spawn(move || {
                    // ChannelHandle::write: count the estimate, then post.
                    account.add(10);
                    queue.lock().unwrap().0.push(10);
                })
            };
            // The loop: some bytes were queued by the handler itself.
            account.add(3);
            // It closes the channel: the queue's weight is discarded.
            {
                let mut q = queue.lock().unwrap();
                q.1 = false;
            }
            account.release(3);
            handle.join().unwrap();
            // Then it runs its tasks: writes for a closed channel are
            // dropped and their estimates released.
            let posted: Vec<usize> = std::mem::take(&mut queue.lock().unwrap().0);
            for estimate in posted {
                account.release(estimate);
            }
            assert_eq!(account.pending(), 0);
            assert!(account.is_writable(), "the flag agrees with the count");
            assert_eq!(
                account.flips() % 2,
                0,
                "every flip off was followed by one on"
            );
        });
    }

    /// Two producers pushing over the high mark while the loop drains: the
    /// flag is never left stale.
    #[test]
    fn concurrent_producers_and_the_loop_leave_the_flag_consistent() {
        model(|| {
            let account = Arc::new(WriteAccount::new(WaterMark { low: 2, high: 4 }));
            let producers: Vec<_> = (0..2)
                .map(|_| {
                    let account = account.clone();
                    loom::thread::spawn(move || account.add(3))
                })
                .collect();
            for p in producers {
                p.join().unwrap();
            }
            assert!(!account.is_writable(), "6 bytes are above the high mark");
            account.release(5);
            assert!(account.is_writable(), "1 byte is below the low mark");
        });
    }

    /// The loop waits for the channel's worker tasks before closing: either
    /// it sees none left, or the last task tells it. Never both missed.
    #[test]
    fn the_last_worker_task_wakes_a_loop_waiting_to_close() {
        model(|| {
            let tasks = Arc::new(WorkerTasks::default());
            tasks.started();
            let woken = Arc::new(loom::sync::atomic::AtomicBool::new(false));
            let worker = {
                let (tasks, woken) = (tasks.clone(), woken.clone());
                loom::thread::spawn(move || {
                    if tasks.done() {
                        woken.store(true, Ordering::SeqCst);
                    }
                })
            };
            let busy = tasks.busy();
            worker.join().unwrap();
            assert!(
                !busy || woken.load(Ordering::SeqCst),
                "the loop waits, and nobody will wake it"
            );
        });
    }
}
