//! Exact accounting of a feed against a ground truth (the simulator's):
//! every id a venue produced on a stream is delivered, or inside a reported
//! gap, or it is a silent loss; ids delivered twice are duplicates. Used by
//! `ferrofeed chaos` and the integration tests (`tests/it/one_feed.rs`); it
//! knows no venue and no simulator: the caller hands it the produced ids'
//! shape ([`Restart`]s, first and last id).
//!
//! A stream's ids are consecutive within an *era*; an id reset (a venue
//! restart) starts a new era from a lower number. [`IdLedger`] follows the
//! eras the truth reports, so a restart is neither a duplicate nor a loss by
//! itself; what was lost around it is attributed like any other loss.

use ferrofeed_model::event::Missing;

/// An id reset of a stream, as the ground truth reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restart {
    /// The last id produced before it (`None`: none).
    pub last_before: Option<u64>,
    /// The first id produced after it (`None`: none yet).
    pub first_after: Option<u64>,
}

/// Gap ranges kept per stream (the oldest are forgotten; a loss they
/// covered long ago is already accounted for).
const MAX_GAPS: usize = 4096;

/// Silent-loss spans kept (the count goes on past them).
const MAX_SPANS: usize = 4096;

/// The accounting of one stream whose messages carry consecutive ids.
#[derive(Debug, Clone, Default)]
pub struct IdLedger {
    first: Option<u64>,
    last: Option<u64>,
    /// Which era the last delivered id is in (0: before any reset).
    era: usize,
    /// Ids delivered (not counting duplicates).
    pub delivered: u64,
    /// Ids delivered again (at or below the last one, in the same era).
    pub duplicates: u64,
    /// Lost ids inside a counted gap the feed reported.
    pub in_gaps: u64,
    /// Lost ids across an unknown-extent gap the feed reported.
    pub across_unknown: u64,
    /// Lost ids no gap reported.
    pub silent: u64,
    /// The spans of silent loss, inclusive (the first 4096).
    pub silent_spans: Vec<(u64, u64)>,
    gaps: Vec<(u64, u64)>,
    unknown: u64,
    unknown_at_last: u64,
}

impl IdLedger {
    /// A gap the feed reported on this stream.
    pub fn gap(&mut self, missing: &Missing) {
        match missing {
            Missing::Range { from, to } => {
                if self.gaps.len() >= MAX_GAPS {
                    self.gaps.remove(0);
                }
                self.gaps.push((*from, *to));
            }
            Missing::Unknown { .. } => self.unknown += 1,
        }
    }

    /// The first and last delivered ids.
    pub fn range(&self) -> (Option<u64>, Option<u64>) {
        (self.first, self.last)
    }

    /// Accounts for the lost ids `from..=to`: inside counted gaps, else
    /// across an unknown-extent gap reported since the last delivery, else
    /// silent.
    fn lost(&mut self, from: u64, to: u64) {
        if from > to {
            return;
        }
        let n = to - from + 1;
        let covered: u64 =
            self.gaps.iter().map(|(a, b)| (*b).min(to).saturating_add(1).saturating_sub((*a).max(from))).sum();
        let covered = covered.min(n);
        self.in_gaps += covered;
        let rest = n - covered;
        if rest == 0 {
            return;
        }
        if self.unknown > self.unknown_at_last {
            self.across_unknown += rest;
        } else {
            self.silent += rest;
            if self.silent_spans.len() < MAX_SPANS {
                self.silent_spans.push((from, to));
            }
        }
    }

    /// The last id of era `e`, if it ended.
    fn era_end(restarts: &[Restart], e: usize) -> Option<Option<u64>> {
        restarts.get(e).map(|r| r.last_before)
    }

    /// A delivered id. `restarts` are the stream's id resets so far, oldest
    /// first (the truth at the time of the call).
    pub fn on_id(&mut self, id: u64, restarts: &[Restart]) {
        let Some(last) = self.last else {
            self.first = Some(id);
            self.last = Some(id);
            self.delivered = 1;
            self.unknown_at_last = self.unknown;
            return;
        };
        let end = Self::era_end(restarts, self.era);
        let in_era = id > last && end.is_none_or(|e| e.is_some_and(|e| id <= e));
        if in_era {
            self.lost(last + 1, id - 1);
        } else {
            // A later era that holds `id`: its first id is at most `id`,
            // and it ended at or after `id` (or has not ended).
            let later = (self.era + 1..=restarts.len()).find(|k| {
                let first = restarts[k - 1].first_after;
                let end = Self::era_end(restarts, *k);
                first.is_some_and(|f| f <= id) && end.is_none_or(|e| e.is_some_and(|e| id <= e))
            });
            let Some(k) = later else {
                self.duplicates += 1;
                return;
            };
            // The rest of the era it was in, every era skipped, and the
            // start of the new one.
            if let Some(Some(e)) = end {
                self.lost(last + 1, e);
            }
            for skipped in self.era + 1..k {
                if let (Some(f), Some(Some(e))) = (restarts[skipped - 1].first_after, Self::era_end(restarts, skipped))
                {
                    self.lost(f, e);
                }
            }
            if let Some(f) = restarts[k - 1].first_after {
                self.lost(f, id.saturating_sub(1));
            }
            self.era = k;
        }
        self.delivered += 1;
        self.last = Some(id);
        self.unknown_at_last = self.unknown;
    }

    /// Closes the account at the end of a run: what was produced before the
    /// first delivery (`first_produced`) and after the last one (up to
    /// `last_produced`, the truth's last id, in the last era) is lost too.
    pub fn finish(&mut self, first_produced: Option<u64>, last_produced: Option<u64>, restarts: &[Restart]) {
        match (self.first, first_produced) {
            (Some(first), Some(fp)) if fp < first => self.lost(fp, first - 1),
            _ => {}
        }
        let Some(last) = self.last else {
            if let (Some(fp), Some(lp)) = (first_produced, last_produced) {
                if restarts.is_empty() {
                    self.lost(fp, lp);
                } else {
                    // Nothing delivered across resets: every era is lost.
                    self.silent_spans.push((fp, lp));
                }
            }
            return;
        };
        if self.era < restarts.len() {
            if let Some(Some(e)) = Self::era_end(restarts, self.era) {
                self.lost(last + 1, e);
            }
            for k in self.era + 1..=restarts.len() {
                let first = restarts[k - 1].first_after;
                let end = Self::era_end(restarts, k).unwrap_or(last_produced);
                if let (Some(f), Some(e)) = (first, end) {
                    self.lost(f, e);
                }
            }
        } else if let Some(lp) = last_produced {
            self.lost(last + 1, lp);
        }
    }

    /// Ids accounted for: delivered, in gaps, across unknown gaps, or silent.
    pub fn accounted(&self) -> u64 {
        self.delivered + self.in_gaps + self.across_unknown + self.silent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofeed_model::event::UnknownExtent;

    const UNKNOWN: Missing = Missing::Unknown { missing: UnknownExtent::Unknown };

    #[test]
    fn jumps_are_in_gaps_across_unknown_or_silent() {
        let mut l = IdLedger::default();
        l.on_id(10, &[]);
        l.gap(&Missing::Range { from: 11, to: 12 });
        l.on_id(13, &[]);
        l.gap(&UNKNOWN);
        l.on_id(20, &[]);
        l.on_id(22, &[]);
        l.on_id(22, &[]);
        l.finish(Some(10), Some(24), &[]);
        assert_eq!((l.delivered, l.in_gaps, l.across_unknown, l.silent, l.duplicates), (4, 2, 6, 3, 1));
        assert_eq!(l.silent_spans, vec![(21, 21), (23, 24)]);
        assert_eq!(l.accounted(), 15);
    }

    #[test]
    fn a_reset_starts_a_new_era_and_losses_around_it_are_attributed() {
        let r = [Restart { last_before: Some(105), first_after: Some(1) }];
        let mut l = IdLedger::default();
        l.on_id(100, &r[..0]);
        l.on_id(101, &r[..0]);
        l.gap(&UNKNOWN);
        l.on_id(3, &r);
        l.on_id(4, &r);
        l.on_id(4, &r);
        l.finish(Some(100), Some(5), &r);
        // 102..=105 and 1..=2 across the unknown gap; 5 silent at the end.
        assert_eq!((l.delivered, l.across_unknown, l.silent, l.duplicates), (4, 6, 1, 1));
        assert_eq!(l.accounted(), 6 + 5);
    }

    #[test]
    fn a_stream_silenced_after_a_reset_is_silent_loss() {
        let r = [Restart { last_before: Some(50), first_after: Some(1) }];
        let mut l = IdLedger::default();
        l.on_id(49, &[]);
        l.on_id(50, &[]);
        l.finish(Some(49), Some(30), &r);
        assert_eq!((l.delivered, l.silent), (2, 30));
    }
}
