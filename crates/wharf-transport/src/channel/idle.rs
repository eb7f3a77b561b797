//! Idle detection (Netty's `IdleStateHandler`): which of "nothing read",
//! "nothing written", "neither" has lasted its configured time.
//!
//! One timer per connection, armed for the earliest next check. When it
//! fires, the checks that are due compare the time since the last read or
//! write with their timeout: an idle event fires, or the check moves to
//! when it could next be due. Reads and writes only record their time, so
//! busy connections cost no timer operations at all.

use std::time::{Duration, Instant};

use crate::channel::config::IdleConfig;
use crate::channel::handler::IdleState;
use crate::time::saturating_add;

/// The next check of each kind of idleness.
#[derive(Debug, Default)]
pub(crate) struct IdleTracker {
    reader_next: Option<Instant>,
    writer_next: Option<Instant>,
    all_next: Option<Instant>,
    /// When the channel last read anything (since tracking started): kept
    /// here, since only idleness asks (a channel without idle timeouts
    /// keeps no tracker, and no time of its last read).
    pub last_read: Option<Instant>,
}

impl IdleTracker {
    /// Starts tracking at `now`; returns when the first check is due.
    pub(crate) fn start(&mut self, config: IdleConfig, now: Instant) -> Option<Instant> {
        self.reader_next = config.reader.map(|t| saturating_add(now, t));
        self.writer_next = config.writer.map(|t| saturating_add(now, t));
        self.all_next = config.all.map(|t| saturating_add(now, t));
        self.last_read = Some(now);
        self.next_check()
    }

    /// The earliest next check.
    pub(crate) fn next_check(&self) -> Option<Instant> {
        [self.reader_next, self.writer_next, self.all_next]
            .into_iter()
            .flatten()
            .min()
    }

    /// The idle states due at `now`, given the last read and write; moves
    /// each check to when it could next be due.
    pub(crate) fn due(
        &mut self,
        config: IdleConfig,
        now: Instant,
        last_read: Instant,
        last_write: Instant,
    ) -> Vec<IdleState> {
        let mut due = Vec::new();
        let last_any = last_read.max(last_write);
        let checks = [
            (
                &mut self.reader_next,
                config.reader,
                last_read,
                IdleState::ReaderIdle,
            ),
            (
                &mut self.writer_next,
                config.writer,
                last_write,
                IdleState::WriterIdle,
            ),
            (&mut self.all_next, config.all, last_any, IdleState::AllIdle),
        ];
        for (next, timeout, last, state) in checks {
            if check(next, timeout, last, now) {
                due.push(state);
            }
        }
        due
    }
}

/// Something was read at `now`: the tracker, if any, takes note.
pub(crate) fn read_at(tracker: &mut Option<Box<IdleTracker>>, now: Instant) {
    if let Some(idle) = tracker {
        idle.last_read = Some(now);
    }
}

/// Whether a check is due and nothing happened for `timeout` since `last`;
/// moves `next` to the following check.
fn check(
    next: &mut Option<Instant>,
    timeout: Option<Duration>,
    last: Instant,
    now: Instant,
) -> bool {
    let (Some(at), Some(timeout)) = (*next, timeout) else {
        return false;
    };
    if now < at {
        return false;
    }
    if now.saturating_duration_since(last) >= timeout {
        *next = Some(saturating_add(now, timeout));
        true
    } else {
        *next = Some(saturating_add(last, timeout));
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn fires_each_kind_after_its_timeout_and_moves_the_check() {
        let t0 = Instant::now();
        let config = IdleConfig {
            reader: Some(secs(2)),
            writer: Some(secs(3)),
            all: None,
        };
        let mut idle = IdleTracker::default();
        assert_eq!(idle.start(config, t0), Some(t0 + secs(2)));
        // At 2 s nothing was read: reader idle; the writer check is not due.
        assert_eq!(
            idle.due(config, t0 + secs(2), t0, t0),
            [IdleState::ReaderIdle]
        );
        assert_eq!(idle.next_check(), Some(t0 + secs(3)));
        // A write at 2.5 s: at 3 s the writer check moves to 5.5 s.
        let wrote = t0 + Duration::from_millis(2500);
        assert!(idle.due(config, t0 + secs(3), t0, wrote).is_empty());
        assert_eq!(idle.next_check(), Some(t0 + secs(4)));
    }

    #[test]
    fn huge_timeouts_do_not_overflow() {
        let t0 = Instant::now();
        let config = IdleConfig {
            reader: Some(Duration::MAX),
            writer: None,
            all: Some(Duration::MAX),
        };
        let mut idle = IdleTracker::default();
        let next = idle.start(config, t0).expect("a check");
        assert!(idle.due(config, next, t0, t0).len() <= 2);
    }
}
