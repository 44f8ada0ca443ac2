//! Bybit local order-book rules (PROTOCOLS.md §5.7).
//!
//! The venue sends the book on the stream: a `snapshot` after every
//! subscribe (and whenever it chooses; `orderbook.1` sends only snapshots),
//! then `delta`s. Each message carries the topic's update id `u`; deltas of
//! one topic are consecutive (`u == previous u + 1`: the recorded linear
//! BTCUSDT book has 413 deltas and no break). The docs state no gap rule;
//! consecutive `u` is what clients rely on. A message with `u == 1` is a
//! snapshot after a service restart whatever its `type` (the decoder turns it
//! into a `book_snapshot`).
//!
//! [`BybitSequencing`] continues a book at id `n` with the delta whose
//! `u == n + 1` and drops a repeat of `u == n`. Anything else asks for
//! recovery: a jump is a lost delta, and `u < n` can only follow a venue
//! restart whose `u == 1` snapshot was lost (one connection delivers a
//! topic in order, and every snapshot resets the book), so treating it as
//! already applied would freeze the book until `u` climbed past `n` again.
//! A REST snapshot (`bridge`) is different: deltas it already holds
//! (`u <= n`) are dropped. Snapshots from the stream reset the book directly
//! (`BookSync::on_stream_snapshot`); a `NeedSnapshot` is answered by
//! resubscribing the topic (the venue then sends a snapshot) or, for the
//! 1000-level topic only, by the REST snapshot (`snapshot_request`), whose
//! `u` continues that topic's.

use ferrofeed_model::event::BookDelta;
use ferrofeed_model::sequencing::{BookSequencing, Verdict};

/// Bybit: one consecutive update id per delta.
#[derive(Debug, Clone, Copy, Default)]
pub struct BybitSequencing;

impl BookSequencing for BybitSequencing {
    fn bridge(&self, snapshot_id: u64, d: &BookDelta) -> Verdict {
        if d.last_update_id <= snapshot_id {
            Verdict::Suppress
        } else if d.first_update_id <= snapshot_id.saturating_add(1) {
            Verdict::Accept
        } else {
            Verdict::Recover
        }
    }

    fn follow(&self, last: u64, d: &BookDelta) -> Verdict {
        if d.last_update_id == last {
            Verdict::Suppress
        } else if d.last_update_id > last && d.first_update_id <= last.saturating_add(1) {
            Verdict::Accept
        } else {
            Verdict::Recover
        }
    }
}

/// The rule, for `BookSync::new`.
pub fn sequencing() -> &'static dyn BookSequencing {
    &BybitSequencing
}

/// The depths a category serves (`orderbook.{depth}.{symbol}`): spot,
/// linear and inverse 1, 50, 200, 1000; option 25, 100.
pub fn depths(category: super::Category) -> &'static [u32] {
    match category {
        super::Category::Option => &[25, 100],
        _ => &[1, 50, 200, 1000],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(u: u64) -> BookDelta {
        BookDelta { first_update_id: u, last_update_id: u, prev_update_id: None, bids: vec![], asks: vec![] }
    }

    #[test]
    fn consecutive_u_continues_a_repeat_is_dropped_a_jump_or_a_step_back_recovers() {
        let s = BybitSequencing;
        assert_eq!(s.bridge(100, &delta(100)), Verdict::Suppress);
        assert_eq!(s.bridge(100, &delta(99)), Verdict::Suppress);
        assert_eq!(s.bridge(100, &delta(101)), Verdict::Accept);
        assert_eq!(s.bridge(100, &delta(102)), Verdict::Recover);
        assert_eq!(s.follow(101, &delta(102)), Verdict::Accept);
        assert_eq!(s.follow(101, &delta(104)), Verdict::Recover);
        assert_eq!(s.follow(101, &delta(101)), Verdict::Suppress);
        // Backwards: a restart whose u = 1 snapshot was lost.
        assert_eq!(s.follow(101, &delta(2)), Verdict::Recover);
        assert_eq!(s.follow(u64::MAX, &delta(u64::MAX)), Verdict::Suppress);
        assert_eq!(depths(crate::bybit::Category::Option), &[25, 100]);
    }
}
