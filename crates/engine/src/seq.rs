//! Sequence tracking per stream, across reconnects: every jump becomes a gap,
//! every repeat (reconnect or rotation overlap) is suppressed.

use std::collections::HashMap;

use crate::event::Missing;
use crate::venue::{RESTART_WINDOW, Seq, SeqKind};

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// In order: deliver.
    Deliver,
    /// Already delivered (overlap after a reconnect or rotation): drop silently.
    Duplicate,
    /// Deliver, but messages were lost before it.
    Gap {
        /// First missing sequence number.
        from: u64,
        /// Last missing sequence number.
        to: u64,
        /// How many.
        missing: Missing,
    },
}

/// Last sequence number seen per stream.
#[derive(Debug, Default, Clone)]
pub struct SeqTracker {
    last: HashMap<String, u64>,
}

impl SeqTracker {
    /// Judges `seq` on `stream` and records it.
    pub fn check(&mut self, stream: &str, seq: Seq) -> Verdict {
        let Some(last) = self.last.get_mut(stream) else {
            self.last.insert(stream.to_string(), seq.last);
            return Verdict::Deliver;
        };
        if seq.kind == SeqKind::Reset {
            *last = seq.last;
            return Verdict::Deliver;
        }
        if seq.kind == SeqKind::Restartable && seq.last.saturating_add(RESTART_WINDOW) < *last {
            // Too far back for a re-send: the venue restarted the sequence
            // and its reset message was lost.
            *last = seq.last;
            return Verdict::Gap { from: 1, to: seq.first.saturating_sub(1), missing: Missing::Unknown };
        }
        if seq.last <= *last {
            return Verdict::Duplicate;
        }
        if seq.kind == SeqKind::Ordered {
            *last = seq.last;
            return Verdict::Deliver;
        }
        let verdict = match seq.prev {
            // Chained ids (futures depth `pu`): the link must match exactly.
            Some(prev) if prev == *last => Verdict::Deliver,
            Some(_) if seq.first <= *last => Verdict::Deliver, // overlapping re-send
            Some(_) => Verdict::Gap { from: *last + 1, to: seq.first.saturating_sub(1), missing: Missing::Unknown },
            None if seq.first <= *last + 1 => Verdict::Deliver,
            None => Verdict::Gap { from: *last + 1, to: seq.first - 1, missing: Missing::Count(seq.first - 1 - *last) },
        };
        *last = seq.last;
        verdict
    }

    /// Forgets a stream (after an unsubscribe), so a later subscription starts fresh.
    pub fn forget(&mut self, stream: &str) {
        self.last.remove(stream);
    }

    /// The last sequence number seen on `stream`.
    pub fn last(&self, stream: &str) -> Option<u64> {
        self.last.get(stream).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_ids_deliver_jumps_gap_repeats_drop() {
        let mut t = SeqTracker::default();
        assert_eq!(t.check("s", Seq::single(10)), Verdict::Deliver);
        assert_eq!(t.check("s", Seq::single(11)), Verdict::Deliver);
        assert_eq!(t.check("s", Seq::single(15)), Verdict::Gap { from: 12, to: 14, missing: Missing::Count(3) });
        assert_eq!(t.check("s", Seq::single(15)), Verdict::Duplicate);
        assert_eq!(t.check("s", Seq::single(12)), Verdict::Duplicate);
        assert_eq!(t.check("other", Seq::single(1)), Verdict::Deliver);
    }

    #[test]
    fn ranges_and_chains() {
        let mut t = SeqTracker::default();
        let r = Seq::range;
        assert_eq!(t.check("d", r(1, 5)), Verdict::Deliver);
        assert_eq!(t.check("d", r(6, 9)), Verdict::Deliver);
        assert_eq!(t.check("d", r(12, 13)), Verdict::Gap { from: 10, to: 11, missing: Missing::Count(2) });
        let c = Seq::chained;
        assert_eq!(t.check("f", c(100, 120, 90)), Verdict::Deliver);
        assert_eq!(t.check("f", c(125, 140, 120)), Verdict::Deliver);
        assert_eq!(t.check("f", c(150, 160, 145)), Verdict::Gap { from: 141, to: 149, missing: Missing::Unknown });
        t.forget("f");
        assert_eq!(t.check("f", c(1, 2, 0)), Verdict::Deliver);
    }

    #[test]
    fn ordered_numbers_deduplicate_and_resets_restart() {
        let mut t = SeqTracker::default();
        assert_eq!(t.check("b", Seq::ordered(100)), Verdict::Deliver);
        assert_eq!(t.check("b", Seq::ordered(2600)), Verdict::Deliver, "jumps are not gaps");
        assert_eq!(t.check("b", Seq::ordered(2600)), Verdict::Duplicate);
        assert_eq!(t.check("b", Seq::reset(1)), Verdict::Deliver, "a snapshot restarts the sequence");
        assert_eq!(t.check("b", Seq::ordered(2)), Verdict::Deliver);
    }

    #[test]
    fn a_restartable_sequence_stepping_far_back_restarts_after_a_gap() {
        let mut t = SeqTracker::default();
        let r = |u| Seq::restartable(u, u);
        assert_eq!(t.check("o", r(5000)), Verdict::Deliver);
        assert_eq!(t.check("o", r(5001)), Verdict::Deliver);
        // An overlap re-send within the window is a duplicate.
        assert_eq!(t.check("o", r(4500)), Verdict::Duplicate);
        assert_eq!(t.check("o", r(5003)), Verdict::Gap { from: 5002, to: 5002, missing: Missing::Count(1) });
        // The venue restarted at u = 1 and that snapshot was lost.
        assert_eq!(t.check("o", r(3)), Verdict::Gap { from: 1, to: 2, missing: Missing::Unknown });
        assert_eq!(t.check("o", r(4)), Verdict::Deliver);
        // Counted streams never restart: far back is still a duplicate.
        assert_eq!(t.check("c", Seq::range(5000, 5000)), Verdict::Deliver);
        assert_eq!(t.check("c", Seq::range(3, 3)), Verdict::Duplicate);
    }
}
