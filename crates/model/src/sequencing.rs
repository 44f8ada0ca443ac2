//! The order-book sequencing seam: a pure rule per venue that says what to do
//! with a book diff given the book's current update id.
//!
//! The book crate's sync state machine drives a [`BookSequencing`]; venue
//! modules implement it. Nothing here keeps state.

use crate::event::BookDelta;

/// What to do with one diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Apply it: it continues the book without a gap.
    Accept,
    /// Drop it: the book already contains it (older than the snapshot, or a
    /// repeat).
    Suppress,
    /// The book cannot be continued from here: data is missing between the
    /// book and this diff. Resynchronize.
    Recover,
}

/// A venue's rule for continuing a local book from a snapshot and from diffs.
pub trait BookSequencing: Send + Sync + std::fmt::Debug {
    /// The first diff to apply on a REST snapshot whose update id is
    /// `snapshot_id`. `Recover` here means the snapshot is older than every
    /// diff still available: fetch a newer one.
    fn bridge(&self, snapshot_id: u64, delta: &BookDelta) -> Verdict;

    /// A diff after the book has applied diffs up to update id `last`.
    fn follow(&self, last: u64, delta: &BookDelta) -> Verdict;
}
