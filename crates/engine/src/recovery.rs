//! How long a connection took to recover: from losing a socket to the first
//! data on the next one. A fixed set of buckets, so the statistic has a
//! bounded size however long the connection lives.

use std::time::Duration;

/// Upper bounds of the histogram's buckets, in milliseconds (1-2-5 steps);
/// a last, unbounded bucket holds anything slower.
pub const RECOVERY_BUCKETS_MS: [u64; 16] =
    [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 60_000, 300_000];

/// Recovery times of one connection (or, merged, of many).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    /// Recoveries measured.
    pub count: u64,
    /// Their total.
    pub sum: Duration,
    /// The slowest.
    pub max: Duration,
    /// The latest.
    pub last: Option<Duration>,
    /// Counts per bucket of [`RECOVERY_BUCKETS_MS`], plus one for slower ones.
    pub buckets: [u64; RECOVERY_BUCKETS_MS.len() + 1],
}

impl RecoveryStats {
    /// Records one recovery.
    pub fn record(&mut self, d: Duration) {
        self.count += 1;
        self.sum = self.sum.saturating_add(d);
        self.max = self.max.max(d);
        self.last = Some(d);
        let ms = d.as_millis();
        let i = RECOVERY_BUCKETS_MS.iter().position(|&b| ms <= u128::from(b)).unwrap_or(RECOVERY_BUCKETS_MS.len());
        self.buckets[i] += 1;
    }

    /// Adds another connection's recoveries.
    pub fn merge(&mut self, o: &RecoveryStats) {
        self.count += o.count;
        self.sum = self.sum.saturating_add(o.sum);
        self.max = self.max.max(o.max);
        if o.last.is_some() {
            self.last = o.last;
        }
        for (a, b) in self.buckets.iter_mut().zip(o.buckets) {
            *a += b;
        }
    }

    /// The bucket bound at or below which a fraction `q` (0..=1) of the
    /// recoveries fell (`None` with none; the maximum for the last bucket).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(match RECOVERY_BUCKETS_MS.get(i) {
                    Some(&ms) => Duration::from_millis(ms).min(self.max),
                    None => self.max,
                });
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_bucket_bounds_capped_by_the_maximum() {
        let mut r = RecoveryStats::default();
        assert_eq!(r.quantile(0.5), None);
        for ms in [3, 4, 40, 45, 48, 700] {
            r.record(Duration::from_millis(ms));
        }
        assert_eq!(r.count, 6);
        assert_eq!(r.quantile(0.5), Some(Duration::from_millis(50)));
        assert_eq!(r.quantile(0.99), Some(Duration::from_millis(700)), "the last bucket is capped by the maximum");
        assert_eq!(r.quantile(0.0), Some(Duration::from_millis(5)));
        let mut all = RecoveryStats::default();
        all.merge(&r);
        all.record(Duration::from_secs(3600));
        assert_eq!(all.buckets[RECOVERY_BUCKETS_MS.len()], 1);
        assert_eq!(all.quantile(1.0), Some(Duration::from_secs(3600)));
    }
}
