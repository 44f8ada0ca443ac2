//! Sequence tracking per subscribed stream, across reconnects: every jump
//! becomes a gap, every repeat (rotation overlap, a venue's re-send) is
//! dropped and counted, and a sequence that restarts (a venue-side id reset,
//! or one bogus huge id) is followed after a gap of unknown extent instead of
//! silencing the stream. Only streams the connection subscribed have state:
//! data for any other name is [`Verdict::Unsolicited`].

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::event::Missing;
use crate::venue::{RESTART_WINDOW, Seq, SeqKind};

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// In order: deliver.
    Deliver,
    /// Already delivered (overlap after a rotation, a venue's re-send): drop,
    /// counted in [`SeqTracker::duplicates`].
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
    /// A stream nobody subscribed to: no state is kept for it.
    Unsolicited,
}

#[derive(Debug, Clone)]
struct Track {
    /// The stream's name, shared by every data event of the stream, so a
    /// frame costs no allocation for it.
    name: Arc<str>,
    /// The last number delivered.
    last: Option<u64>,
    /// On a new socket, nothing delivered there yet: a step back cannot be
    /// a re-send (a fresh socket starts with new data), so it is a restart.
    fresh: bool,
    /// Live duplicates in a row.
    dup_run: u32,
    /// After a rotation: the new socket may trail the old one, so its
    /// messages repeat delivered numbers until it catches up.
    catching_up: bool,
}

/// Live messages (not a rotation's overlap) judged duplicates in a row
/// after which the stream is taken as restarted: a venue re-sends a few
/// messages at most, so a long run means the last number was bogus (one
/// huge id) or the sequence restarted within the window.
pub const DUPLICATE_RUN_RESTART: u32 = 64;

/// A fast hasher for the names a connection subscribed (looked up once per
/// frame). Multiplicative over 8-byte words, like rustc's FxHasher: not
/// resistant to chosen collisions, which is sound here because only names
/// this side subscribed are ever inserted; a venue's frame can only look
/// one up.
#[derive(Debug, Default, Clone, Copy)]
pub struct NameHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl NameHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.add(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by stream names (or other small keys this side chose), with
/// [`NameHasher`].
pub type NameMap<K, V> = HashMap<K, V, BuildHasherDefault<NameHasher>>;

/// A data message judged, with its stream's shared name (`None`: not
/// tracked, [`Verdict::Unsolicited`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// What to do with it.
    pub verdict: Verdict,
    /// The stream's name as the tracker holds it.
    pub name: Option<Arc<str>>,
}

/// Last sequence number seen per subscribed stream.
#[derive(Debug, Default, Clone)]
pub struct SeqTracker {
    streams: NameMap<Arc<str>, Track>,
    duplicates: u64,
    /// The last judged message was its stream's first number.
    first_number: bool,
}

impl SeqTracker {
    /// Starts tracking a subscribed stream (no-op when tracked already).
    pub fn track(&mut self, stream: &str) {
        if !self.streams.contains_key(stream) {
            let name: Arc<str> = Arc::from(stream);
            let track = Track { name: name.clone(), last: None, fresh: false, dup_run: 0, catching_up: false };
            self.streams.insert(name, track);
        }
    }

    /// Whether `stream` is subscribed (tracked).
    pub fn is_tracked(&self, stream: &str) -> bool {
        self.streams.contains_key(stream)
    }

    /// Forgets a stream (after an unsubscribe), so a later subscription starts fresh.
    pub fn forget(&mut self, stream: &str) {
        self.streams.remove(stream);
    }

    /// A new socket replaces a lost one: on every stream, a number lower
    /// than the last delivered, as its first message there, is a restart.
    pub fn new_socket(&mut self) {
        for t in self.streams.values_mut() {
            t.fresh = true;
        }
    }

    /// A rotation switched to a new socket that overlaps the old one: on
    /// every stream, its messages are re-sends (never restarts) until one
    /// passes the last delivered number.
    pub fn switched(&mut self) {
        for t in self.streams.values_mut() {
            t.catching_up = true;
            t.fresh = false;
        }
    }

    /// Judges `seq` on `stream`, tracking the stream if it is not yet
    /// (for callers that do not subscribe, such as replays and tests).
    pub fn check(&mut self, stream: &str, seq: Seq) -> Verdict {
        self.track(stream);
        self.judge(stream, Some(seq), false)
    }

    /// Judges a live message on a subscribed stream: [`Verdict::Unsolicited`]
    /// when `stream` is not tracked; unsequenced messages (`None`) are
    /// delivered. With `overlap`, the message is a re-send expected to
    /// repeat delivered numbers (a rotation candidate's held data): a step
    /// back is a duplicate, never a restart.
    pub fn judge(&mut self, stream: &str, seq: Option<Seq>, overlap: bool) -> Verdict {
        self.judge_named(stream, seq, overlap).verdict
    }

    /// [`SeqTracker::judge`], also handing back the stream's shared name
    /// (one lookup, no allocation).
    pub fn judge_named(&mut self, stream: &str, seq: Option<Seq>, overlap: bool) -> Judged {
        let Some(t) = self.streams.get_mut(stream) else {
            return Judged { verdict: Verdict::Unsolicited, name: None };
        };
        let name = Some(t.name.clone());
        let verdict = Self::judge_track(t, &mut self.duplicates, &mut self.first_number, seq, overlap);
        Judged { verdict, name }
    }

    fn judge_track(
        t: &mut Track,
        duplicates: &mut u64,
        first_number: &mut bool,
        seq: Option<Seq>,
        overlap: bool,
    ) -> Verdict {
        let Some(seq) = seq else { return Verdict::Deliver };
        let fresh = std::mem::take(&mut t.fresh);
        let overlap = overlap || t.catching_up;
        let Some(last) = t.last else {
            t.last = Some(seq.last);
            *first_number = true;
            return Verdict::Deliver;
        };
        if seq.kind == SeqKind::Reset {
            t.last = Some(seq.last);
            return Verdict::Deliver;
        }
        // Back at all as the first message of a new socket, too far back for
        // a re-send (consecutive numbers only: ordered ones step by any
        // amount), or duplicates for too long: the venue restarted the
        // sequence (its reset message, if it has one, was lost), or the last
        // number was bogus. Follow the new sequence after a gap of unknown
        // extent.
        let far = seq.kind != SeqKind::Ordered && seq.last.saturating_add(RESTART_WINDOW) < last;
        let stuck = seq.last <= last && t.dup_run + 1 >= DUPLICATE_RUN_RESTART;
        if !overlap && ((fresh && seq.last < last) || far || stuck) {
            t.last = Some(seq.last);
            t.dup_run = 0;
            return Verdict::Gap { from: 1, to: seq.first.saturating_sub(1), missing: Missing::Unknown };
        }
        if seq.last <= last {
            if !overlap {
                t.dup_run += 1;
            }
            *duplicates += 1;
            return Verdict::Duplicate;
        }
        t.dup_run = 0;
        t.catching_up = false;
        t.last = Some(seq.last);
        if seq.kind == SeqKind::Ordered {
            return Verdict::Deliver;
        }
        let next = last.saturating_add(1);
        match seq.prev {
            // Chained ids (futures depth `pu`): the link must match exactly.
            Some(prev) if prev == last => Verdict::Deliver,
            Some(_) if seq.first <= last => Verdict::Deliver, // overlapping re-send
            Some(_) => Verdict::Gap { from: next, to: seq.first.saturating_sub(1), missing: Missing::Unknown },
            None if seq.first <= next => Verdict::Deliver,
            None => {
                let to = seq.first - 1;
                Verdict::Gap { from: next, to, missing: Missing::Count(to - last) }
            }
        }
    }

    /// The last sequence number seen on `stream`.
    pub fn last(&self, stream: &str) -> Option<u64> {
        self.streams.get(stream).and_then(|t| t.last)
    }

    /// Whether the message last judged was the first number seen on its
    /// stream (the stream is sequence-checked from now on); clears it.
    pub fn take_first_number(&mut self) -> bool {
        std::mem::take(&mut self.first_number)
    }

    /// Repeats dropped so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Streams tracked.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Whether no stream is tracked.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
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
        // Counted streams restart the same way: far back is no re-send.
        assert_eq!(t.check("c", Seq::range(5000, 5000)), Verdict::Deliver);
        assert!(matches!(t.check("c", Seq::range(3, 3)), Verdict::Gap { missing: Missing::Unknown, .. }));
    }

    #[test]
    fn a_new_socket_stepping_back_is_a_restart_not_a_silenced_stream() {
        let mut t = SeqTracker::default();
        assert_eq!(t.check("t", Seq::single(500)), Verdict::Deliver);
        assert_eq!(t.check("t", Seq::single(501)), Verdict::Deliver);
        t.new_socket();
        // The venue restarted its ids while the socket was down.
        assert_eq!(
            t.judge("t", Some(Seq::single(3)), false),
            Verdict::Gap { from: 1, to: 2, missing: Missing::Unknown }
        );
        assert_eq!(t.judge("t", Some(Seq::single(4)), false), Verdict::Deliver);
        // Only the first message of a socket may step back that little.
        assert_eq!(t.judge("t", Some(Seq::single(2)), false), Verdict::Duplicate);
        assert_eq!(t.duplicates(), 1);
        // A rotation's new socket may trail the old one by any amount: its
        // repeats are duplicates until it catches up, however many.
        for id in 5..2000 {
            assert_eq!(t.check("t", Seq::single(id)), Verdict::Deliver);
        }
        t.switched();
        for id in 1..1999 {
            assert_eq!(t.judge("t", Some(Seq::single(id)), false), Verdict::Duplicate, "{id}");
        }
        assert_eq!(t.judge("t", Some(Seq::single(2000)), false), Verdict::Deliver);
        // Caught up: live rules again.
        assert!(matches!(t.judge("t", Some(Seq::single(3)), false), Verdict::Gap { .. }));
    }

    #[test]
    fn one_huge_id_does_not_silence_the_stream() {
        let mut t = SeqTracker::default();
        assert_eq!(t.check("t", Seq::single(1000)), Verdict::Deliver);
        let v = t.check("t", Seq::single(u64::MAX));
        assert!(matches!(v, Verdict::Gap { from: 1001, .. }), "{v:?}");
        // No overflow at the top of the range, and the real ids come back.
        assert_eq!(t.check("t", Seq::single(u64::MAX)), Verdict::Duplicate);
        assert!(matches!(t.check("t", Seq::single(1001)), Verdict::Gap { missing: Missing::Unknown, .. }));
        assert_eq!(t.check("t", Seq::single(1002)), Verdict::Deliver);
        // A rotation's held re-sends may step far back: duplicates, not restarts.
        assert_eq!(t.judge("t", Some(Seq::single(1)), true), Verdict::Duplicate);
        // Ordered numbers step by any amount: a bogus huge one is left after
        // a run of duplicates.
        assert_eq!(t.check("o", Seq::ordered(5_000_000)), Verdict::Deliver);
        assert_eq!(t.check("o", Seq::ordered(4_000_000)), Verdict::Duplicate, "far back, yet within its kind");
        assert!(matches!(t.check("o", Seq::ordered(u64::MAX)), Verdict::Deliver));
        for i in 1..DUPLICATE_RUN_RESTART as u64 {
            assert_eq!(t.check("o", Seq::ordered(5_000_000 + i)), Verdict::Duplicate);
        }
        let v = t.check("o", Seq::ordered(5_000_100));
        assert!(matches!(v, Verdict::Gap { missing: Missing::Unknown, .. }), "{v:?}");
        assert_eq!(t.check("o", Seq::ordered(5_000_101)), Verdict::Deliver);
    }

    #[test]
    fn every_frame_of_a_stream_shares_one_name() {
        let mut t = SeqTracker::default();
        t.track("btcusdt@trade");
        let a = t.judge_named("btcusdt@trade", Some(Seq::single(1)), false);
        let b = t.judge_named("btcusdt@trade", Some(Seq::single(2)), false);
        assert_eq!((a.verdict, b.verdict), (Verdict::Deliver, Verdict::Deliver));
        let (a, b) = (a.name.expect("tracked"), b.name.expect("tracked"));
        assert_eq!(&*a, "btcusdt@trade");
        assert!(Arc::ptr_eq(&a, &b), "one allocation per stream, not per frame");
        let c = t.judge_named("ethusdt@trade", Some(Seq::single(1)), false);
        assert_eq!(c, Judged { verdict: Verdict::Unsolicited, name: None });
    }

    #[test]
    fn the_name_hasher_tells_names_apart() {
        use std::hash::BuildHasher;
        let h = BuildHasherDefault::<NameHasher>::default();
        let names =
            ["a", "b", "ab", "ba", "btcusdt@trade", "btcusdt@trade2", "ethusdt@trade", "", "12345678", "123456789"];
        let hashes: std::collections::BTreeSet<u64> = names.iter().map(|n| h.hash_one(n)).collect();
        assert_eq!(hashes.len(), names.len());
        let mut m: NameMap<String, usize> = NameMap::default();
        for (i, n) in names.iter().enumerate() {
            m.insert(n.to_string(), i);
        }
        for (i, n) in names.iter().enumerate() {
            assert_eq!(m.get(*n), Some(&i));
        }
    }

    #[test]
    fn only_subscribed_streams_have_state() {
        let mut t = SeqTracker::default();
        t.track("a");
        assert_eq!(t.judge("b", Some(Seq::single(1)), false), Verdict::Unsolicited);
        assert_eq!(t.judge("b", None, false), Verdict::Unsolicited);
        assert_eq!(t.judge("a", None, false), Verdict::Deliver);
        assert_eq!(t.len(), 1);
        t.forget("a");
        assert!(t.is_empty());
    }
}
