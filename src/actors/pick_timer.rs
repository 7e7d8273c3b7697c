//! How long the router's picks take, measured in the process: a count, a mean and a p99.

use std::time::Duration;

/// Resolution of the histogram.
const BUCKET_NS: u64 = 100;
/// Buckets up to 200 µs; slower picks land in the last one.
const BUCKETS: usize = 2000;

/// A fixed histogram of pick durations (no allocation per pick).
pub struct PickTimer {
    count: u64,
    total_ns: u64,
    buckets: Box<[u32; BUCKETS]>,
}

impl Default for PickTimer {
    fn default() -> Self {
        Self {
            count: 0,
            total_ns: 0,
            buckets: Box::new([0; BUCKETS]),
        }
    }
}

/// A summary of the picks so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PickTimes {
    /// Picks measured.
    pub count: u64,
    /// Their mean duration.
    pub mean: Duration,
    /// 99% of picks took at most this (to the histogram's 100 ns resolution).
    pub p99: Duration,
}

impl PickTimer {
    /// Counts one pick that took `took`.
    pub fn record(&mut self, took: Duration) {
        let ns = took.as_nanos().min(u128::from(u64::MAX)) as u64;
        self.count += 1;
        self.total_ns = self.total_ns.saturating_add(ns);
        let at = ((ns / BUCKET_NS) as usize).min(BUCKETS - 1);
        self.buckets[at] = self.buckets[at].saturating_add(1);
    }

    /// The summary so far.
    pub fn summary(&self) -> PickTimes {
        if self.count == 0 {
            return PickTimes::default();
        }
        let rank = (self.count * 99).div_ceil(100);
        let mut seen = 0u64;
        let mut p99 = BUCKETS as u64 * BUCKET_NS;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                p99 = (i as u64 + 1) * BUCKET_NS;
                break;
            }
        }
        PickTimes {
            count: self.count,
            mean: Duration::from_nanos(self.total_ns / self.count),
            p99: Duration::from_nanos(p99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_p99_follow_the_samples() {
        let mut t = PickTimer::default();
        assert_eq!(t.summary().count, 0);
        for _ in 0..99 {
            t.record(Duration::from_nanos(1_000));
        }
        t.record(Duration::from_micros(50));
        let s = t.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.mean, Duration::from_nanos((99 * 1_000 + 50_000) / 100));
        assert_eq!(s.p99, Duration::from_nanos(1_100));
        // Two slow outliers in 102 push the 99th percentile into the overflow bucket.
        t.record(Duration::from_secs(1));
        t.record(Duration::from_secs(1));
        assert_eq!(t.summary().p99, Duration::from_micros(200));
    }
}
