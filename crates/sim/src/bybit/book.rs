//! Bybit order-book topics (`orderbook.<depth>.<SYMBOL>`).
//!
//! Order-book topics keep what they last sent (the top `depth` levels): each
//! flush diffs the true book's top levels against it, so a delta carries the
//! changed levels, levels that left the window as size `"0"` and levels that
//! entered it. `u` grows by one per message of the topic, `seq` is the book's
//! update id (comparable across depths). A new subscriber gets that view as a
//! `snapshot` (same `u`), in order before the topic's next delta. The restart
//! fault makes the next message of a topic a `snapshot` with `u = 1`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;

use crate::config::{BybitCategory, SymbolSpec};
use crate::market::{BookCopy, HISTORY_DEPTH, Market, SymbolState};

use super::encode::{head, levels_json};

/// The order-book depths served on spot, linear and inverse.
const DEPTHS: [usize; 4] = [1, 50, 200, 1000];

/// The order-book depths served on option.
const OPTION_DEPTHS: [usize; 2] = [25, 100];

/// The order-book depths of a category.
pub(crate) fn depths(cat: BybitCategory) -> &'static [usize] {
    if cat == BybitCategory::Option { &OPTION_DEPTHS } else { &DEPTHS }
}

/// Push cadence (ms, before scaling) of `orderbook.<depth>`.
pub(crate) fn book_period_ms(depth: usize) -> u64 {
    match depth {
        1 => 10,
        25 | 50 => 20,
        100 | 200 => 100,
        _ => 200,
    }
}

/// One `orderbook.<depth>.<SYMBOL>` topic: what it last sent.
#[derive(Debug)]
pub(crate) struct BookTopic {
    /// The last message's `u`.
    pub u: u64,
    /// The last message's `seq`.
    pub seq: u64,
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    /// When the last message was rendered (venue ms).
    last_ms: u64,
    /// The next message is a restart snapshot with `u = 1`.
    pub restart: bool,
    /// The view after each message, keyed by `u` (ascending).
    history: VecDeque<BookCopy>,
}

impl BookTopic {
    pub(crate) fn new(s: &SymbolState, depth: usize, name: &str, now_ms: u64) -> BookTopic {
        // A fixed, name-derived start keeps runs reproducible.
        let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        let (bids, asks) = top(s, depth);
        let mut t = BookTopic {
            u: 1_000_000 + h % 50_000_000,
            seq: s.update_id,
            bids,
            asks,
            last_ms: now_ms,
            restart: false,
            history: VecDeque::new(),
        };
        t.record(s.history_cap, now_ms);
        t
    }

    fn record(&mut self, cap: usize, now_ms: u64) {
        if cap == 0 {
            return;
        }
        if self.history.back().is_some_and(|c| c.last_update_id >= self.u) {
            self.history.clear();
        }
        while self.history.len() >= cap {
            self.history.pop_front();
        }
        self.history.push_back(BookCopy {
            last_update_id: self.u,
            bids: self.bids.iter().rev().take(HISTORY_DEPTH).map(|(p, q)| (*p, *q)).collect(),
            asks: self.asks.iter().take(HISTORY_DEPTH).map(|(p, q)| (*p, *q)).collect(),
            taken_ms: now_ms,
        });
    }

    /// The view right after the message with `u`, if still in the history.
    pub(crate) fn at(&self, u: u64) -> Option<&BookCopy> {
        let i = self.history.binary_search_by_key(&u, |c| c.last_update_id).ok()?;
        self.history.get(i)
    }
}

fn top(s: &SymbolState, depth: usize) -> (BTreeMap<i64, i64>, BTreeMap<i64, i64>) {
    (
        s.bids.iter().rev().take(depth).map(|(p, q)| (*p, *q)).collect(),
        s.asks.iter().take(depth).map(|(p, q)| (*p, *q)).collect(),
    )
}

pub(crate) fn book_topic(symbol: &str, depth: usize) -> String {
    format!("orderbook.{depth}.{symbol}")
}

pub(crate) fn book_payload(
    cat: BybitCategory,
    spec: &SymbolSpec,
    name: &str,
    kind: &str,
    t: &BookTopic,
    now_ms: u64,
) -> String {
    book_payload_levels(cat, spec, name, kind, t.bids.iter().rev(), t.asks.iter(), t.u, t.seq, now_ms)
}

#[allow(clippy::too_many_arguments)] // private helper, plain values
fn book_payload_levels<'a>(
    cat: BybitCategory,
    spec: &SymbolSpec,
    name: &str,
    kind: &str,
    bids: impl Iterator<Item = (&'a i64, &'a i64)>,
    asks: impl Iterator<Item = (&'a i64, &'a i64)>,
    u: u64,
    seq: u64,
    now_ms: u64,
) -> String {
    let mut p = String::with_capacity(256);
    head(&mut p, cat, name, kind, now_ms, seq);
    let _ = write!(p, "{{\"s\":\"{}\",\"b\":", spec.name);
    levels_json(&mut p, cat, spec, bids);
    p.push_str(",\"a\":");
    levels_json(&mut p, cat, spec, asks);
    let _ = write!(p, ",\"u\":{u},\"seq\":{seq}}},\"cts\":{}}}", now_ms.saturating_sub(1));
    p
}

/// The next message of `orderbook.<depth>.<sym>`, if there is one: a delta
/// of what changed in the window (a snapshot on depth 1, which re-sends its
/// unchanged book every 3 s with the same `u`), or the restart snapshot.
pub(crate) fn render_book(
    m: &Market,
    books: &mut HashMap<String, BookTopic>,
    cat: BybitCategory,
    sym: &str,
    depth: usize,
    now_ms: u64,
) -> Vec<(String, Option<u64>)> {
    let Some(s) = m.symbol(sym) else { return vec![] };
    let name = book_topic(sym, depth);
    let resend_ms = m.timing.cadence(3000).as_millis() as u64;
    let Some(t) = books.get_mut(&name) else { return vec![] };
    let (bids, asks) = top(s, depth);
    if t.restart {
        t.restart = false;
        t.u = 1;
        t.seq = s.update_id;
        t.bids = bids;
        t.asks = asks;
        t.last_ms = now_ms;
        t.record(s.history_cap, now_ms);
        return vec![(book_payload(cat, &s.spec, &name, "snapshot", t, now_ms), Some(t.u))];
    }
    let diff = |old: &BTreeMap<i64, i64>, new: &BTreeMap<i64, i64>| -> BTreeMap<i64, i64> {
        let mut d: BTreeMap<i64, i64> = old.keys().filter(|p| !new.contains_key(p)).map(|p| (*p, 0)).collect();
        d.extend(new.iter().filter(|(p, q)| old.get(p) != Some(q)).map(|(p, q)| (*p, *q)));
        d
    };
    let db = diff(&t.bids, &bids);
    let da = diff(&t.asks, &asks);
    if db.is_empty() && da.is_empty() {
        if depth == 1 && now_ms.saturating_sub(t.last_ms) >= resend_ms {
            t.last_ms = now_ms;
            return vec![(book_payload(cat, &s.spec, &name, "snapshot", t, now_ms), Some(t.u))];
        }
        return vec![];
    }
    t.u += 1;
    t.seq = s.update_id.max(t.seq + 1);
    t.bids = bids;
    t.asks = asks;
    t.last_ms = now_ms;
    t.record(s.history_cap, now_ms);
    let p = if depth == 1 {
        book_payload(cat, &s.spec, &name, "snapshot", t, now_ms)
    } else {
        book_payload_levels(cat, &s.spec, &name, "delta", db.iter().rev(), da.iter(), t.u, t.seq, now_ms)
    };
    vec![(p, Some(t.u))]
}

/// The book a client of `orderbook.<d>.<symbol>` holds right after the
/// message with `u`: the smallest tracked depth `d >= depth` whose history
/// holds `u`, truncated to `depth`.
pub(crate) fn book_at(
    books: &HashMap<String, BookTopic>,
    cat: BybitCategory,
    symbol: &str,
    u: u64,
    depth: usize,
) -> Option<BookCopy> {
    let ds = depths(cat);
    let max = *ds.last()?;
    ds.iter().filter(|d| **d >= depth.min(max)).find_map(|d| {
        let mut c = books.get(&book_topic(symbol, *d))?.at(u)?.clone();
        c.bids.truncate(depth);
        c.asks.truncate(depth);
        Some(c)
    })
}
