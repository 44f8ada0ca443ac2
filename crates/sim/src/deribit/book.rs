//! Deribit order-book channels (PROTOCOLS.md §6.6, §6.7).
//!
//! `book.{inst}.{interval}` keeps the whole book it last sent: each push
//! diffs the true book against it and sends the levels that appeared
//! (`new`), changed (`change`) or left (`delete`, amount 0). Its `change_id`
//! is the true book's update id, which jumps by several per change (the
//! generator's derivative ids), so the ids increase but are not contiguous;
//! `prev_change_id` is the id the channel last sent. A new subscriber gets
//! that view as a `snapshot` (no `prev_change_id`), in order before the
//! channel's next change. The chain-break fault makes the next change carry
//! a `prev_change_id` the channel never sent. After each message the channel
//! records its top 50 levels by `change_id` (`book_at`).
//!
//! `book.{inst}.none.{depth}.{interval}` sends the full top `depth` levels
//! (`[price, amount]`, no `type`) whenever they change.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;

use crate::config::DeribitKind;
use crate::market::{BookCopy, HISTORY_DEPTH, SymbolState};

use super::encode::{Inst, js, notification};

/// One `book.{inst}.{interval}` channel: what it last sent.
#[derive(Debug)]
pub(crate) struct BookChan {
    /// The instrument.
    pub inst: String,
    /// The last message's `change_id`.
    pub change_id: u64,
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    /// The next change carries a `prev_change_id` never sent (the fault).
    pub break_next: bool,
    /// The view after each message, by `change_id` (ascending).
    history: VecDeque<BookCopy>,
}

impl BookChan {
    pub(crate) fn new(s: &SymbolState, now_ms: u64) -> BookChan {
        let mut c = BookChan {
            inst: s.spec.name.clone(),
            change_id: s.update_id,
            bids: s.bids.clone(),
            asks: s.asks.clone(),
            break_next: false,
            history: VecDeque::new(),
        };
        c.record(s.history_cap, now_ms);
        c
    }

    fn record(&mut self, cap: usize, now_ms: u64) {
        if cap == 0 {
            return;
        }
        if self.history.back().is_some_and(|c| c.last_update_id >= self.change_id) {
            // Ids restarted (the id-reset fault): the history is ordered by id.
            self.history.clear();
        }
        while self.history.len() >= cap {
            self.history.pop_front();
        }
        self.history.push_back(BookCopy {
            last_update_id: self.change_id,
            bids: self.bids.iter().rev().take(HISTORY_DEPTH).map(|(p, q)| (*p, *q)).collect(),
            asks: self.asks.iter().take(HISTORY_DEPTH).map(|(p, q)| (*p, *q)).collect(),
            taken_ms: now_ms,
        });
    }

    /// The view right after the message with `change_id`, if still kept.
    pub(crate) fn at(&self, change_id: u64) -> Option<&BookCopy> {
        let i = self.history.binary_search_by_key(&change_id, |c| c.last_update_id).ok()?;
        self.history.get(i)
    }

    /// The snapshot a new subscriber of `channel` gets: the view last sent.
    pub(crate) fn snapshot(&self, kind: DeribitKind, s: &SymbolState, channel: &str, now_ms: u64) -> String {
        let inst = Inst::of(kind, &s.spec);
        let bids: Vec<(&str, i64, i64)> = self.bids.iter().rev().map(|(p, q)| ("new", *p, *q)).collect();
        let asks: Vec<(&str, i64, i64)> = self.asks.iter().map(|(p, q)| ("new", *p, *q)).collect();
        let mut d = String::with_capacity(64 + 32 * (bids.len() + asks.len()));
        let _ = write!(
            d,
            "{{\"type\":\"snapshot\",\"timestamp\":{now_ms},\"instrument_name\":{},\"change_id\":{},\"bids\":",
            js(&self.inst),
            self.change_id
        );
        actions(&mut d, &inst, &bids);
        d.push_str(",\"asks\":");
        actions(&mut d, &inst, &asks);
        d.push('}');
        notification(channel, &d)
    }

    /// The next change of `channel`, if the true book moved since the last one.
    pub(crate) fn render(
        &mut self,
        kind: DeribitKind,
        s: &SymbolState,
        channel: &str,
        now_ms: u64,
    ) -> Option<(String, u64)> {
        let bids = diff(&self.bids, &s.bids, true);
        let asks = diff(&self.asks, &s.asks, false);
        if bids.is_empty() && asks.is_empty() {
            return None;
        }
        let prev = if std::mem::take(&mut self.break_next) { self.change_id.wrapping_add(1) } else { self.change_id };
        self.change_id = s.update_id;
        self.bids.clone_from(&s.bids);
        self.asks.clone_from(&s.asks);
        self.record(s.history_cap, now_ms);
        let inst = Inst::of(kind, &s.spec);
        let mut d = String::with_capacity(160 + 32 * (bids.len() + asks.len()));
        let _ = write!(
            d,
            "{{\"type\":\"change\",\"timestamp\":{now_ms},\"prev_change_id\":{prev},\"instrument_name\":{},\"change_id\":{},\"bids\":",
            js(&self.inst),
            self.change_id
        );
        actions(&mut d, &inst, &bids);
        d.push_str(",\"asks\":");
        actions(&mut d, &inst, &asks);
        d.push('}');
        Some((notification(channel, &d), self.change_id))
    }
}

/// The level actions turning `old` into `new`, best first.
fn diff(old: &BTreeMap<i64, i64>, new: &BTreeMap<i64, i64>, bids: bool) -> Vec<(&'static str, i64, i64)> {
    let mut out: Vec<(&'static str, i64, i64)> = Vec::new();
    for (p, q) in old {
        match new.get(p) {
            None => out.push(("delete", *p, 0)),
            Some(n) if n != q => out.push(("change", *p, *n)),
            Some(_) => {}
        }
    }
    for (p, q) in new {
        if !old.contains_key(p) {
            out.push(("new", *p, *q));
        }
    }
    out.sort_by_key(|(_, p, _)| if bids { -*p } else { *p });
    out
}

fn actions(out: &mut String, inst: &Inst, levels: &[(&str, i64, i64)]) {
    out.push('[');
    for (i, (a, p, q)) in levels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "[\"{a}\",{},{}]", inst.price(*p), inst.amount(*q));
    }
    out.push(']');
}

/// `[price, amount]` levels as JSON.
pub(crate) fn pairs(out: &mut String, inst: &Inst, levels: &[(i64, i64)]) {
    out.push('[');
    for (i, (p, q)) in levels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "[{},{}]", inst.price(*p), inst.amount(*q));
    }
    out.push(']');
}

/// Bids and asks, best first.
type Top = (Vec<(i64, i64)>, Vec<(i64, i64)>);

/// One grouped book channel: the top levels it last sent.
#[derive(Debug, Default)]
pub(crate) struct GroupedChan {
    last: Option<Top>,
}

impl GroupedChan {
    /// The channel's message now: `force` sends it even if nothing changed
    /// (a new subscriber's first message); else only when the top changed.
    pub(crate) fn render(
        &mut self,
        kind: DeribitKind,
        s: &SymbolState,
        depth: usize,
        channel: &str,
        now_ms: u64,
        force: bool,
    ) -> Option<(String, u64)> {
        let copy = s.copy(depth, now_ms);
        let top = (copy.bids, copy.asks);
        if !force && self.last.as_ref() == Some(&top) {
            return None;
        }
        let inst = Inst::of(kind, &s.spec);
        let mut d = String::with_capacity(96 + 24 * depth * 2);
        let _ = write!(
            d,
            "{{\"instrument_name\":{},\"timestamp\":{now_ms},\"change_id\":{},\"bids\":",
            js(&s.spec.name),
            s.update_id
        );
        pairs(&mut d, &inst, &top.0);
        d.push_str(",\"asks\":");
        pairs(&mut d, &inst, &top.1);
        d.push('}');
        if !force {
            // A new subscriber's first message leaves the others' view alone.
            self.last = Some(top);
        }
        Some((notification(channel, &d), s.update_id))
    }
}

/// The book a client of a `book.{symbol}.*` channel holds right after the
/// message with `change_id`, top `depth` levels: from any of the symbol's
/// book channels that still keeps it.
pub(crate) fn book_at(
    books: &HashMap<String, BookChan>,
    symbol: &str,
    change_id: u64,
    depth: usize,
) -> Option<BookCopy> {
    books.values().filter(|b| b.inst == symbol).find_map(|b| {
        let mut c = b.at(change_id)?.clone();
        c.bids.truncate(depth);
        c.asks.truncate(depth);
        Some(c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_name_new_changed_and_deleted_levels_best_first() {
        let old: BTreeMap<i64, i64> = [(10, 1), (11, 2), (12, 3)].into();
        let new: BTreeMap<i64, i64> = [(10, 1), (11, 5), (13, 4)].into();
        assert_eq!(diff(&old, &new, true), vec![("new", 13, 4), ("delete", 12, 0), ("change", 11, 5)]);
        assert_eq!(diff(&old, &new, false), vec![("change", 11, 5), ("delete", 12, 0), ("new", 13, 4)]);
        assert!(diff(&old, &old, true).is_empty());
    }
}
