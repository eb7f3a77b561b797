//! Deadline arithmetic that cannot panic: a timeout of `Duration::MAX`
//! means "never", not an overflow that kills an event loop thread.

use std::time::{Duration, Instant};

/// `at + delay`, or an instant about a century after `at` when the sum is
/// not representable: as good as never, and still far from overflowing
/// when more time is added to it.
pub(crate) fn saturating_add(at: Instant, delay: Duration) -> Instant {
    at.checked_add(delay).unwrap_or_else(|| {
        const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
        at.checked_add(CENTURY).unwrap_or(at)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_delays_saturate_far_in_the_future() {
        let now = Instant::now();
        let never = saturating_add(now, Duration::MAX);
        assert!(never > now + Duration::from_secs(50 * 365 * 24 * 3600));
        // And adding to "never" again does not panic either.
        let _ = saturating_add(never, Duration::MAX);
        assert_eq!(
            saturating_add(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }
}
