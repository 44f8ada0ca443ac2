//! The sync state machine for one instrument's book.
//!
//! ```text
//!             diff (buffered)             snapshot bridges          diff follows
//! Awaiting ────────────────► Awaiting ─────────────────► Synced ─────────────► Synced
//!   ▲  │ snapshot older than           │ snapshot newer than           │ gap
//!   │  │ every buffered diff:          ▼ every buffered diff           │
//!   │  └─ NeedSnapshot again        Bridging ── first diff bridges ──► Synced
//!   └──────────────── Resync + NeedSnapshot ◄───────────────────────────┘
//! ```
//!
//! The machine is driven by three calls: [`BookSync::on_delta`] for every diff
//! of the instrument, [`BookSync::on_snapshot`] when a requested snapshot
//! arrives, [`BookSync::invalidate`] when the caller learns of lost data
//! itself (the connection reported a gap). It answers with [`SyncEvent`]s.
//!
//! Venues that send snapshots on the stream itself, in order with the diffs
//! (Bybit: after every subscribe, at any time, and after a restart with
//! `u == 1`), call [`BookSync::on_stream_snapshot`] instead: such a snapshot
//! is the whole book at that point of the stream, so it replaces the book in
//! any phase and the machine is in sync at once. A `NeedSnapshot` is then
//! answered either with a REST snapshot (`on_snapshot`) or by resubscribing,
//! which makes the venue send one on the stream.

use std::collections::VecDeque;

use ferrofeed_model::event::{BookDelta, BookSnapshot};
use ferrofeed_model::sequencing::{BookSequencing, Verdict};

use crate::l2::{BookSide, L2Book, VecSide};

/// Bounds of one book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConfig {
    /// Diffs buffered while waiting for a snapshot. When full the oldest is
    /// dropped (counted in [`SyncStats::buffer_dropped`]); if the snapshot then
    /// cannot be bridged, a newer one is requested.
    pub max_buffer: usize,
    /// Levels kept per side; worse levels beyond this are removed (counted in
    /// [`SyncStats::trimmed`]). They are outside any snapshot anyway.
    pub max_levels: usize,
}

impl Default for SyncConfig {
    fn default() -> SyncConfig {
        SyncConfig { max_buffer: 4096, max_levels: 10_000 }
    }
}

/// Where the machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Buffering diffs until a snapshot arrives.
    Awaiting,
    /// Holding a snapshot newer than every diff seen; waiting for the diff
    /// that continues it.
    Bridging,
    /// In sync: the book equals the venue's at its update id.
    Synced,
}

/// What the caller must do or may publish.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncEvent {
    /// Fetch a REST snapshot and pass it to [`BookSync::on_snapshot`]. Asked
    /// once per fetch: not again until that snapshot (or a failure, see
    /// [`BookSync::snapshot_failed`]) comes back.
    NeedSnapshot,
    /// The book is in sync at `last_update_id` (after the bridging diff and
    /// any buffered diffs); publish the whole book.
    Synced {
        /// The book's update id.
        last_update_id: u64,
    },
    /// A diff was applied to the synced book; publish it.
    Applied(BookDelta),
    /// The book was in sync and is not any more; nothing may be published
    /// until the next `Synced`.
    Resync {
        /// Why.
        reason: String,
        /// The id the book was in sync at.
        last_update_id: u64,
    },
}

/// Counters of one book.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Diffs applied to the book (buffered ones included).
    pub applied: u64,
    /// Diffs already contained in the book (older than the snapshot, repeats).
    pub suppressed: u64,
    /// Gaps found in the diff sequence (each one is a resync).
    pub gaps: u64,
    /// Times the book left sync (gaps and invalidations).
    pub resyncs: u64,
    /// Snapshots received.
    pub snapshots: u64,
    /// Snapshots too old to bridge (a newer one was requested).
    pub stale_snapshots: u64,
    /// Buffered diffs dropped because the buffer was full.
    pub buffer_dropped: u64,
    /// Levels removed beyond `max_levels`.
    pub trimmed: u64,
}

/// One instrument's book and its sync state.
#[derive(Debug)]
pub struct BookSync<S: BookSide = VecSide> {
    rule: &'static dyn BookSequencing,
    cfg: SyncConfig,
    phase: Phase,
    snapshot_pending: bool,
    buffer: VecDeque<BookDelta>,
    book: L2Book<S>,
    stats: SyncStats,
}

impl<S: BookSide> BookSync<S> {
    /// A machine that has not seen anything yet; it asks for a snapshot with
    /// its first diff.
    pub fn new(rule: &'static dyn BookSequencing, cfg: SyncConfig) -> BookSync<S> {
        BookSync {
            rule,
            cfg,
            phase: Phase::Awaiting,
            snapshot_pending: false,
            buffer: VecDeque::new(),
            book: L2Book::new(),
            stats: SyncStats::default(),
        }
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The book, only while it is in sync.
    pub fn book(&self) -> Option<&L2Book<S>> {
        (self.phase == Phase::Synced).then_some(&self.book)
    }

    /// Counters.
    pub fn stats(&self) -> SyncStats {
        self.stats
    }

    /// Diffs waiting for a snapshot.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Whether a snapshot has been asked for and not yet delivered.
    pub fn snapshot_pending(&self) -> bool {
        self.snapshot_pending
    }

    /// One diff of the instrument, in arrival order.
    pub fn on_delta(&mut self, d: BookDelta, out: &mut Vec<SyncEvent>) {
        match self.phase {
            Phase::Awaiting => {
                self.push_buffer(d);
                self.request(out);
            }
            Phase::Bridging => match self.rule.bridge(self.book.last_update_id(), &d) {
                Verdict::Suppress => self.stats.suppressed += 1,
                Verdict::Accept => {
                    self.apply(&d);
                    self.phase = Phase::Synced;
                    out.push(SyncEvent::Synced { last_update_id: self.book.last_update_id() });
                }
                Verdict::Recover => {
                    // The stream moved past the snapshot before any diff could
                    // continue it: the snapshot is too old.
                    self.stats.stale_snapshots += 1;
                    self.book.clear();
                    self.phase = Phase::Awaiting;
                    self.push_buffer(d);
                    self.request(out);
                }
            },
            Phase::Synced => match self.rule.follow(self.book.last_update_id(), &d) {
                Verdict::Accept => {
                    self.apply(&d);
                    out.push(SyncEvent::Applied(d));
                }
                Verdict::Suppress => self.stats.suppressed += 1,
                Verdict::Recover => {
                    self.stats.gaps += 1;
                    let reason = gap_reason(self.book.last_update_id(), &d);
                    self.lose_sync(reason, out);
                    self.push_buffer(d);
                    self.request(out);
                }
            },
        }
    }

    /// The snapshot asked for by [`SyncEvent::NeedSnapshot`].
    pub fn on_snapshot(&mut self, snap: BookSnapshot, out: &mut Vec<SyncEvent>) {
        self.snapshot_pending = false;
        self.stats.snapshots += 1;
        if self.phase != Phase::Awaiting {
            // Not asked for (a late answer after sync was regained another way).
            return;
        }
        self.book.load(snap.last_update_id, &snap.bids, &snap.asks);
        self.stats.trimmed += self.book.truncate(self.cfg.max_levels) as u64;
        // Skip what the snapshot already holds, then the first remaining diff
        // must bridge it.
        while let Some(d) = self.buffer.front() {
            match self.rule.bridge(snap.last_update_id, d) {
                Verdict::Suppress => {
                    self.stats.suppressed += 1;
                    self.buffer.pop_front();
                }
                Verdict::Recover => {
                    self.stats.stale_snapshots += 1;
                    self.book.clear();
                    self.request(out);
                    return;
                }
                Verdict::Accept => {
                    let d = self.buffer.pop_front().expect("front exists");
                    self.apply(&d);
                    self.phase = Phase::Synced;
                    break;
                }
            }
        }
        if self.phase != Phase::Synced {
            self.phase = Phase::Bridging;
            return;
        }
        // Replay the rest of the buffer; a gap inside it starts over.
        while let Some(d) = self.buffer.pop_front() {
            match self.rule.follow(self.book.last_update_id(), &d) {
                Verdict::Accept => self.apply(&d),
                Verdict::Suppress => self.stats.suppressed += 1,
                Verdict::Recover => {
                    self.stats.gaps += 1;
                    self.book.clear();
                    self.phase = Phase::Awaiting;
                    self.buffer.push_front(d);
                    self.request(out);
                    return;
                }
            }
        }
        out.push(SyncEvent::Synced { last_update_id: self.book.last_update_id() });
    }

    /// A snapshot the venue sent on the stream, in order with the diffs: the
    /// whole book at `snap.last_update_id`, replacing whatever the machine
    /// holds (a restarted venue may send a lower id). Buffered diffs are older
    /// than it and are dropped (counted as suppressed); the machine is in sync
    /// and publishes the book. It answers an outstanding
    /// [`SyncEvent::NeedSnapshot`] (the caller resubscribed); a REST snapshot
    /// still in flight is ignored when it arrives while the book is in sync.
    pub fn on_stream_snapshot(&mut self, snap: BookSnapshot, out: &mut Vec<SyncEvent>) {
        self.snapshot_pending = false;
        self.stats.snapshots += 1;
        self.stats.suppressed += self.buffer.len() as u64;
        self.buffer.clear();
        self.book.load(snap.last_update_id, &snap.bids, &snap.asks);
        self.stats.trimmed += self.book.truncate(self.cfg.max_levels) as u64;
        self.phase = Phase::Synced;
        out.push(SyncEvent::Synced { last_update_id: self.book.last_update_id() });
    }

    /// The requested snapshot could not be fetched; the caller will retry.
    /// Makes the machine ask again on the next call.
    pub fn snapshot_failed(&mut self, out: &mut Vec<SyncEvent>) {
        self.snapshot_pending = false;
        if self.phase == Phase::Awaiting {
            self.request(out);
        }
    }

    /// Data of this instrument was lost somewhere the sequence numbers may not
    /// show (the connection reported a gap): drop the book and start over.
    pub fn invalidate(&mut self, reason: &str, out: &mut Vec<SyncEvent>) {
        if self.phase == Phase::Synced {
            self.lose_sync(reason.to_string(), out);
        } else {
            self.book.clear();
            self.phase = Phase::Awaiting;
        }
        self.buffer.clear();
        // A new snapshot is fetched with the next diff, so it is newer than
        // whatever was lost.
    }

    fn lose_sync(&mut self, reason: String, out: &mut Vec<SyncEvent>) {
        self.stats.resyncs += 1;
        out.push(SyncEvent::Resync { reason, last_update_id: self.book.last_update_id() });
        self.book.clear();
        self.phase = Phase::Awaiting;
    }

    fn apply(&mut self, d: &BookDelta) {
        self.book.apply(d.last_update_id, &d.bids, &d.asks);
        self.stats.applied += 1;
        let (b, a) = self.book.depth();
        if b.max(a) > self.cfg.max_levels {
            self.stats.trimmed += self.book.truncate(self.cfg.max_levels) as u64;
        }
    }

    fn push_buffer(&mut self, d: BookDelta) {
        if self.buffer.len() >= self.cfg.max_buffer.max(1) {
            self.buffer.pop_front();
            self.stats.buffer_dropped += 1;
        }
        self.buffer.push_back(d);
    }

    fn request(&mut self, out: &mut Vec<SyncEvent>) {
        if !self.snapshot_pending {
            self.snapshot_pending = true;
            out.push(SyncEvent::NeedSnapshot);
        }
    }
}

fn gap_reason(last: u64, d: &BookDelta) -> String {
    match d.prev_update_id {
        Some(pu) => {
            format!("gap: book at {last}, next diff has pu {pu} (U {}, u {})", d.first_update_id, d.last_update_id)
        }
        None => format!("gap: expected first_update_id {}, got {}", last + 1, d.first_update_id),
    }
}
