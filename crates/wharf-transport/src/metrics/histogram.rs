//! A histogram with power-of-two buckets, recorded by one thread and read
//! by any: what the loops and workers use for durations (handler time,
//! loop lag) and counts (events per poll).
//!
//! Recording is a plain load and store on two atomics (the bucket and the
//! sum), as the loop's counters are, so it costs no locked instruction;
//! a reader on another thread may see the bucket and the sum of one value
//! a moment apart, which a histogram's reader does not notice. Buckets
//! double: bucket `k` counts the values in `(2^(k-1), 2^k]` (bucket 0 the
//! values 0 and 1), so 40 of them span a nanosecond to nine minutes with
//! at most a factor of two between a value and its bucket's bound, which
//! is what latency histograms are read for (HdrHistogram's log buckets,
//! Prometheus's exponential ones).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::stats::add;

/// Buckets of a histogram; the last one also takes every larger value.
pub const BUCKETS: usize = 40;

/// The recording side: owned by the structure of one loop or worker,
/// written by its thread only.
#[derive(Debug)]
pub(crate) struct LogHistogram {
    buckets: [AtomicU64; BUCKETS],
    sum: AtomicU64,
}

impl Default for LogHistogram {
    fn default() -> Self {
        LogHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
        }
    }
}

/// The bucket of `value`: the smallest `k` with `value <= 2^k`.
#[inline]
pub(crate) fn bucket_of(value: u64) -> usize {
    let k = if value <= 1 {
        0
    } else {
        (u64::BITS - (value - 1).leading_zeros()) as usize
    };
    k.min(BUCKETS - 1)
}

impl LogHistogram {
    /// Records one value (by the owning thread only).
    #[inline]
    pub(crate) fn record(&self, value: u64) {
        add(&self.buckets[bucket_of(value)], 1);
        add(&self.sum, value);
    }

    /// What has been recorded so far.
    pub(crate) fn snapshot(&self) -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|k| self.buckets[k].load(Relaxed)),
            sum: self.sum.load(Relaxed),
        }
    }
}

/// A snapshot of a histogram: counts in power-of-two buckets and the sum
/// of the values recorded.
///
/// Bucket `k` counts the values in `(2^(k-1), 2^k]`, bucket 0 the values 0
/// and 1; the last bucket counts everything above its lower bound too.
/// Durations are in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Histogram {
    buckets: [u64; BUCKETS],
    sum: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: [0; BUCKETS],
            sum: 0,
        }
    }
}

impl Histogram {
    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The sum of the values recorded.
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// The mean of the values recorded (0 when none was).
    pub fn mean(&self) -> f64 {
        match self.count() {
            0 => 0.0,
            n => self.sum as f64 / n as f64,
        }
    }

    /// The upper bound of bucket `k`: `2^k` (`u64::MAX` for the last).
    pub fn bucket_bound(k: usize) -> u64 {
        if k + 1 >= BUCKETS { u64::MAX } else { 1 << k }
    }

    /// The count of each bucket with its upper bound, in order (not
    /// cumulative).
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.buckets
            .iter()
            .enumerate()
            .map(|(k, &n)| (Histogram::bucket_bound(k), n))
    }

    /// How many values were at most `bound` (exact when `bound` is a
    /// bucket bound, a power of two).
    pub fn count_at_most(&self, bound: u64) -> u64 {
        self.buckets()
            .take_while(|&(b, _)| b <= bound)
            .map(|(_, n)| n)
            .sum()
    }

    /// An upper bound of the `q` quantile (`0.0..=1.0`): the bound of the
    /// bucket it falls in, so at most twice the true value. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let count = self.count();
        if count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bound, n) in self.buckets() {
            seen += n;
            if seen >= rank {
                return bound;
            }
        }
        u64::MAX
    }

    /// Adds `other`'s counts to this one (the histograms of several loops
    /// as one).
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.sum += other.sum;
    }

    /// What was recorded between `earlier` and this snapshot.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|k| self.buckets[k].saturating_sub(earlier.buckets[k])),
            sum: self.sum.saturating_sub(earlier.sum),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_bucket_of_the_next_power_of_two() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(2), 1);
        assert_eq!(bucket_of(3), 2);
        assert_eq!(bucket_of(4), 2);
        assert_eq!(bucket_of(5), 3);
        assert_eq!(bucket_of(1024), 10);
        assert_eq!(bucket_of(1025), 11);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        for k in 1..BUCKETS - 1 {
            let bound = Histogram::bucket_bound(k);
            assert_eq!(bucket_of(bound), k, "the bound {bound} is in its bucket");
            assert_eq!(bucket_of(bound + 1), k + 1, "{} is in the next", bound + 1);
        }
    }

    #[test]
    fn a_snapshot_counts_sums_and_bounds_quantiles_within_a_factor_of_two() {
        let h = LogHistogram::default();
        for v in 1..=1000u64 {
            h.record(v);
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 1000);
        assert_eq!(s.sum(), 500_500);
        assert!((s.mean() - 500.5).abs() < 1e-9);
        for q in [0.01, 0.5, 0.9, 0.99, 1.0] {
            let truth = (q * 1000.0f64).ceil() as u64;
            let bound = s.quantile(q);
            assert!(
                bound >= truth && bound < 2 * truth.max(1),
                "q{q}: {bound} for {truth}"
            );
        }
        assert_eq!(s.count_at_most(512), 512);
        assert_eq!(s.count_at_most(u64::MAX), 1000);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }

    #[test]
    fn merge_and_since_are_bucketwise() {
        let a = LogHistogram::default();
        a.record(3);
        let before = a.snapshot();
        a.record(100);
        let mut total = a.snapshot();
        assert_eq!(total.since(&before).count(), 1);
        assert_eq!(total.since(&before).sum(), 100);
        total.merge(&before);
        assert_eq!(total.count(), 3);
        assert_eq!(total.sum(), 106);
    }
}
