//! The key space: string values in shards of `Mutex<HashMap>`, shared by
//! every event loop and worker, with expiry.
//!
//! Sharding keeps loops from queueing on one lock: a key's shard is chosen
//! by its hash, and a command touches one shard at a time. Expiry is lazy
//! (a read of an expired key removes it) plus a periodic sweep that visits
//! one shard per tick, so keys nobody reads again are removed too without
//! ever holding a lock for long. Times are monotonic `Instant`s, so a clock
//! change does not expire or revive keys (absolute `EXAT`/`PXAT` times are
//! converted once, on arrival).

use std::cell::OnceCell;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hashbrown::hash_map::EntryRef;
use hashbrown::{DefaultHashBuilder, HashMap};
use wharf::buf::FrozenBuf;

/// One value and when it expires.
#[derive(Debug)]
struct Entry {
    value: FrozenBuf,
    expires_at: Option<Instant>,
}

impl Entry {
    fn is_expired(&self, now: &Clock) -> bool {
        self.expires_at.is_some_and(|at| at <= now.now())
    }
}

/// The time of one command: read from the system at most once, and only
/// if the command needs it (a key with a time to live, a relative
/// expiry). Most commands touch keys without one and never read it.
#[derive(Debug, Default)]
pub struct Clock(OnceCell<Instant>);

impl Clock {
    /// A clock read on first use.
    pub fn new() -> Clock {
        Clock::default()
    }

    /// A clock that reads `now`.
    pub fn at(now: Instant) -> Clock {
        Clock(OnceCell::from(now))
    }

    /// The command's time.
    pub fn now(&self) -> Instant {
        *self.0.get_or_init(Instant::now)
    }
}

/// One shard's keys. hashbrown rather than std's map for two things std
/// does not give: `entry_ref`, so that a `SET` of a key that exists
/// allocates no key, and foldhash with per-map random seeds, several times
/// cheaper than SipHash on short keys while still seeded (Redis seeds its
/// SipHash too) so a client cannot aim keys at one bucket in advance.
type Shard = HashMap<Box<[u8]>, Entry>;

/// When a `SET` may write (`NX`, `XX` or always).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Always.
    Always,
    /// Only if the key does not exist (`NX`).
    IfAbsent,
    /// Only if it does (`XX`).
    IfPresent,
}

/// What a `SET` does to the key's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No expiry (a plain `SET` clears any).
    Never,
    /// Keep the one the key has (`KEEPTTL`).
    Keep,
    /// Expire at this time.
    At(Instant),
}

/// Why `INCRBY` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncrError {
    /// The value is not an integer (Redis's `string2ll`).
    NotAnInteger,
    /// The result would not fit in an `i64`.
    Overflow,
}

/// `EXPIRE`'s conditions (`NX`, `XX`, `GT`, `LT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpireIf {
    /// Only if the key has no expiry.
    pub nx: bool,
    /// Only if it has one.
    pub xx: bool,
    /// Only if the new expiry is later.
    pub gt: bool,
    /// Only if the new expiry is sooner.
    pub lt: bool,
}

/// The shared key space. Threading: `Send + Sync`, shared by `Arc`;
/// every method locks one shard (`flush_all` and `len` each in turn).
#[derive(Debug)]
pub struct Store {
    shards: Box<[Mutex<Shard>]>,
    /// Picks the shard; a seed of its own, unrelated to the maps'.
    hasher: DefaultHashBuilder,
    /// The next shard the sweep visits.
    sweep_cursor: AtomicUsize,
}

impl Store {
    /// An empty store of `shards` shards (at least one).
    pub fn new(shards: usize) -> Store {
        Store {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            hasher: DefaultHashBuilder::default(),
            sweep_cursor: AtomicUsize::new(0),
        }
    }

    fn shard(&self, key: &[u8]) -> MutexGuard<'_, Shard> {
        let index = (self.hasher.hash_one(key) % self.shards.len() as u64) as usize;
        lock(&self.shards[index])
    }

    /// The live entry of `key` in `shard`, removing it if it has expired.
    fn live<'a>(shard: &'a mut Shard, key: &[u8], now: &Clock) -> Option<&'a mut Entry> {
        if shard.get(key).is_some_and(|e| e.is_expired(now)) {
            shard.remove(key);
        }
        shard.get_mut(key)
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8], now: &Clock) -> Option<FrozenBuf> {
        let mut shard = self.shard(key);
        match shard.get(key) {
            Some(e) if !e.is_expired(now) => Some(e.value.clone()),
            Some(_) => {
                shard.remove(key);
                None
            }
            None => None,
        }
    }

    /// `SET`: writes `value` if `condition` holds. Returns whether it
    /// wrote, and the value the key had.
    pub fn set(
        &self,
        key: &[u8],
        value: FrozenBuf,
        condition: Condition,
        expiry: Expiry,
        now: &Clock,
    ) -> (bool, Option<FrozenBuf>) {
        let mut shard = self.shard(key);
        let allowed = |live: bool| match condition {
            Condition::Always => true,
            Condition::IfAbsent => !live,
            Condition::IfPresent => live,
        };
        match shard.entry_ref(key) {
            EntryRef::Occupied(mut occupied) => {
                let live = !occupied.get().is_expired(now);
                if !allowed(live) {
                    return (false, live.then(|| occupied.get().value.clone()));
                }
                let entry = occupied.get_mut();
                let expires_at = match expiry {
                    Expiry::Never => None,
                    Expiry::Keep if live => entry.expires_at,
                    Expiry::Keep => None,
                    Expiry::At(at) => Some(at),
                };
                // The old value is handed back, to be dropped outside the lock.
                let old = std::mem::replace(entry, Entry { value, expires_at });
                (true, live.then_some(old.value))
            }
            EntryRef::Vacant(vacant) => {
                if !allowed(false) {
                    return (false, None);
                }
                let expires_at = match expiry {
                    Expiry::At(at) => Some(at),
                    Expiry::Never | Expiry::Keep => None,
                };
                vacant.insert_with_key(key.into(), Entry { value, expires_at });
                (true, None)
            }
        }
    }

    /// Removes `key`; whether it existed.
    pub fn remove(&self, key: &[u8], now: &Clock) -> bool {
        let mut shard = self.shard(key);
        Store::live(&mut shard, key, now).is_some() && shard.remove(key).is_some()
    }

    /// Whether `key` exists.
    pub fn contains(&self, key: &[u8], now: &Clock) -> bool {
        Store::live(&mut self.shard(key), key, now).is_some()
    }

    /// `INCRBY`: adds `delta` to the integer value of `key` (0 if absent),
    /// keeping its expiry, and returns the result.
    pub fn incr_by(&self, key: &[u8], delta: i64, now: &Clock) -> Result<i64, IncrError> {
        let mut shard = self.shard(key);
        let entry = Store::live(&mut shard, key, now);
        let current = match &entry {
            Some(e) => {
                wharf::codec::resp::parse_integer(&e.value).ok_or(IncrError::NotAnInteger)?
            }
            None => 0,
        };
        let result = current.checked_add(delta).ok_or(IncrError::Overflow)?;
        let text: Vec<u8> = result.to_string().into_bytes();
        let value = bytes_buf(&text);
        match entry {
            Some(e) => e.value = value,
            None => {
                shard.insert(
                    key.into(),
                    Entry {
                        value,
                        expires_at: None,
                    },
                );
            }
        }
        Ok(result)
    }

    /// `EXPIRE`: sets `key` to expire in `ttl` (`None`: already past, so
    /// the key is deleted) if the conditions hold; whether it did.
    pub fn expire(&self, key: &[u8], ttl: Option<Duration>, cond: ExpireIf, now: &Clock) -> bool {
        let mut shard = self.shard(key);
        let Some(entry) = Store::live(&mut shard, key, now) else {
            return false;
        };
        let when = ttl.and_then(|t| now.now().checked_add(t));
        let current = entry.expires_at;
        // `None` for `when` is "in the past": earlier than any expiry.
        let refused = (cond.nx && current.is_some())
            || (cond.xx && current.is_none())
            || (cond.gt && current.is_none_or(|c| when.is_none_or(|w| w <= c)))
            || (cond.lt && current.is_some_and(|c| when.is_some_and(|w| w >= c)));
        if refused {
            return false;
        }
        match when {
            Some(at) if ttl.is_some_and(|t| !t.is_zero()) => entry.expires_at = Some(at),
            _ => {
                shard.remove(key);
            }
        }
        true
    }

    /// `TTL`: -2 if absent, -1 without expiry, else the seconds left,
    /// rounded as Redis rounds them.
    pub fn ttl(&self, key: &[u8], now: &Clock) -> i64 {
        match Store::live(&mut self.shard(key), key, now) {
            None => -2,
            Some(Entry {
                expires_at: None, ..
            }) => -1,
            Some(Entry {
                expires_at: Some(at),
                ..
            }) => {
                let ms = at.saturating_duration_since(now.now()).as_millis();
                i64::try_from((ms + 500) / 1000).unwrap_or(i64::MAX)
            }
        }
    }

    /// The number of keys (expired ones not yet removed included, as
    /// Redis's `DBSIZE` counts them).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Removes every key.
    pub fn flush_all(&self) {
        for shard in self.shards.iter() {
            // Dropped outside the lock: freeing many values takes time.
            let old = std::mem::take(&mut *lock(shard));
            drop(old);
        }
    }

    /// Removes the expired keys of the next shard in turn; returns how
    /// many. Called periodically from an event loop.
    pub fn sweep(&self, now: Instant) -> usize {
        let now = Clock::at(now);
        let index = self.sweep_cursor.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        let mut shard = lock(&self.shards[index]);
        let before = shard.len();
        shard.retain(|_, e| !e.is_expired(&now));
        before - shard.len()
    }
}

/// Locks a shard; a panic elsewhere cannot leave a map half-written
/// (every update is one `insert` or `remove`), so a poisoned lock is used
/// as it is.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

/// `bytes` in a buffer of their own size, frozen.
pub fn bytes_buf(bytes: &[u8]) -> FrozenBuf {
    let mut buf = wharf::buf::Allocator::default().buffer(bytes.len().max(1));
    buf.extend_from_slice(bytes);
    buf.freeze()
}
