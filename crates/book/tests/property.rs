//! Random diff sequences with injected gaps, duplicates and stale snapshots
//! never yield a published book that differs from a reference rebuilt from
//! every change the venue made.

use std::collections::BTreeMap;

use ferrofeed_book::l2::BookSide;
use ferrofeed_book::{BookSync, Phase, SyncConfig, SyncEvent, TreeSide, VecSide};
use ferrofeed_model::Decimal;
use ferrofeed_model::event::{BookDelta, BookSnapshot, Level};
use ferrofeed_model::sequencing::BookSequencing;
use ferrofeed_venues::binance::book::{FuturesSequencing, SpotSequencing};
use ferrofeed_venues::bybit::book::BybitSequencing;
use proptest::prelude::*;

/// One venue change: (is_bid, price ticks, qty lots).
type Change = (bool, u16, u16);

/// The venue's true book after each change, keyed by update id.
struct Truth {
    ids: Vec<u64>,
    books: Vec<(BTreeMap<u16, u16>, BTreeMap<u16, u16>)>,
}

impl Truth {
    fn at(&self, id: u64) -> &(BTreeMap<u16, u16>, BTreeMap<u16, u16>) {
        let i = self.ids.partition_point(|&x| x <= id);
        &self.books[i - 1]
    }
}

fn lvl(p: u16, q: u16) -> Level {
    Level { price: Decimal::new(i64::from(p), 2), qty: Decimal::new(i64::from(q), 1) }
}

fn snapshot(t: &Truth, id: u64) -> BookSnapshot {
    let (b, a) = t.at(id);
    BookSnapshot {
        last_update_id: id,
        bids: b.iter().rev().map(|(&p, &q)| lvl(p, q)).collect(),
        asks: a.iter().map(|(&p, &q)| lvl(p, q)).collect(),
    }
}

fn check<S: BookSide>(m: &BookSync<S>, t: &Truth) {
    let book = m.book().expect("published only while synced");
    let (b, a) = t.at(book.last_update_id());
    let want_b: Vec<Level> = b.iter().rev().map(|(&p, &q)| lvl(p, q)).collect();
    let want_a: Vec<Level> = a.iter().map(|(&p, &q)| lvl(p, q)).collect();
    assert_eq!(book.bids(usize::MAX), want_b, "bids at {}", book.last_update_id());
    assert_eq!(book.asks(usize::MAX), want_a, "asks at {}", book.last_update_id());
}

/// What the venue sends: per diff, its ids and the final quantity of each
/// level it touched.
struct Script {
    truth: Truth,
    diffs: Vec<BookDelta>,
}

fn script(changes: &[Change], windows: &[u8], steps: &[u8], futures: bool) -> Script {
    let mut book = (BTreeMap::new(), BTreeMap::new());
    for p in 0..20u16 {
        book.0.insert(100 + p, 5);
        book.1.insert(200 + p, 5);
    }
    let start = 1_000u64;
    let mut truth = Truth { ids: vec![start], books: vec![book.clone()] };
    let mut diffs = Vec::new();
    let mut id = start;
    let mut prev_u = start;
    let mut i = 0;
    let mut w = 0;
    while i < changes.len() {
        let n = usize::from(windows[w % windows.len()] % 4 + 1).min(changes.len() - i);
        w += 1;
        let first = id + 1;
        let mut touched: BTreeMap<(bool, u16), u16> = BTreeMap::new();
        for &(bid, p, q) in &changes[i..i + n] {
            // Bids below 200, asks from 200: never crossed.
            let price = if bid { 100 + p % 100 } else { 200 + p % 100 };
            let q = q % 8; // 0 removes
            let side = if bid { &mut book.0 } else { &mut book.1 };
            if q == 0 {
                side.remove(&price);
            } else {
                side.insert(price, q);
            }
            touched.insert((bid, price), q);
            id += if futures { u64::from(steps[(i + w) % steps.len()] % 3 + 1) } else { 1 };
            truth.ids.push(id);
            truth.books.push(book.clone());
        }
        i += n;
        let mut bids: Vec<Level> = touched.iter().filter(|((b, _), _)| *b).map(|((_, p), q)| lvl(*p, *q)).collect();
        bids.reverse();
        let asks = touched.iter().filter(|((b, _), _)| !*b).map(|((_, p), q)| lvl(*p, *q)).collect();
        diffs.push(BookDelta {
            first_update_id: first,
            last_update_id: id,
            prev_update_id: futures.then_some(prev_u),
            bids,
            asks,
        });
        prev_u = id;
    }
    Script { truth, diffs }
}

/// Delivery faults per diff: 0..=2 normal, 3 drop, 4 duplicate; snapshot lag.
fn run<S: BookSide>(rule: &'static dyn BookSequencing, s: &Script, faults: &[u8], lags: &[u8], max_buffer: usize) {
    let mut m: BookSync<S> = BookSync::new(rule, SyncConfig { max_buffer, max_levels: 10_000 });
    let mut out = Vec::new();
    let mut pending_snapshot: Option<usize> = None; // deliver after this many more diffs
    let mut published_since_resync = false;
    let mut checks = 0;
    for (k, d) in s.diffs.iter().enumerate() {
        let f = faults[k % faults.len()] % 8;
        let copies = match f {
            3 => 0,
            4 => 2,
            _ => 1,
        };
        for _ in 0..copies {
            m.on_delta(d.clone(), &mut out);
        }
        if let Some(n) = pending_snapshot.as_mut() {
            if *n == 0 {
                // The venue's book "now": after the last diff produced. With a
                // lag the snapshot is as old as the diff `lag` back (stale).
                let lag = usize::from(lags[k % lags.len()] % 6);
                let at = if lag == 5 { s.diffs[k.saturating_sub(8)].last_update_id } else { d.last_update_id };
                pending_snapshot = None;
                m.on_snapshot(snapshot(&s.truth, at), &mut out);
            } else {
                *n -= 1;
            }
        }
        for e in out.drain(..) {
            match e {
                SyncEvent::NeedSnapshot => {
                    assert!(pending_snapshot.is_none(), "asked twice for one snapshot");
                    pending_snapshot = Some(usize::from(lags[k % lags.len()] % 3));
                }
                SyncEvent::Synced { last_update_id } => {
                    assert_eq!(m.phase(), Phase::Synced);
                    assert_eq!(m.book().map(|b| b.last_update_id()), Some(last_update_id));
                    check(&m, &s.truth);
                    checks += 1;
                    published_since_resync = true;
                }
                SyncEvent::Applied(_) => {
                    assert!(published_since_resync, "an update before the book was published");
                    check(&m, &s.truth);
                    checks += 1;
                }
                SyncEvent::Resync { .. } => {
                    assert!(m.book().is_none());
                    published_since_resync = false;
                }
            }
        }
    }
    let st = m.stats();
    if std::env::var("BOOK_PROP_DEBUG").is_ok() {
        eprintln!("diffs {} checks {checks} {st:?}", s.diffs.len());
    }
    let dropped = faults.iter().take(s.diffs.len()).filter(|f| *f % 8 == 3).count();
    if dropped == 0 && st.stale_snapshots == 0 {
        assert_eq!(st.gaps, 0);
    }
}

/// Bybit: every delta carries one consecutive `u` and the venue sends
/// snapshots on the stream, in order with the deltas: one after subscribing,
/// one after every resubscribe (the answer to `NeedSnapshot`, after a lag of
/// some deltas), and some unprompted. Faults: drops and duplicates.
fn run_stream<S: BookSide>(s: &Script, faults: &[u8], lags: &[u8], max_buffer: usize) {
    /// Checks the events of one call against the machine right after it.
    fn observe<S: BookSide>(
        m: &BookSync<S>,
        out: &mut Vec<SyncEvent>,
        t: &Truth,
        resubscribed: &mut Option<usize>,
        published: &mut bool,
        lag: u8,
    ) {
        for e in out.drain(..) {
            match e {
                SyncEvent::NeedSnapshot => {
                    assert!(resubscribed.is_none(), "asked twice for one snapshot");
                    *resubscribed = Some(usize::from(lag % 3));
                }
                SyncEvent::Synced { last_update_id } => {
                    assert_eq!(m.phase(), Phase::Synced);
                    assert_eq!(m.book().map(|b| b.last_update_id()), Some(last_update_id));
                    check(m, t);
                    *published = true;
                }
                SyncEvent::Applied(_) => {
                    assert!(*published, "an update before the book was published");
                    check(m, t);
                }
                SyncEvent::Resync { .. } => {
                    assert!(m.book().is_none());
                    *published = false;
                }
            }
        }
    }

    let mut m: BookSync<S> = BookSync::new(&BybitSequencing, SyncConfig { max_buffer, max_levels: 10_000 });
    let mut out = Vec::new();
    let mut resubscribed: Option<usize> = None; // snapshot after this many more deltas
    let mut published = false;
    let start = s.truth.ids[0];
    m.on_stream_snapshot(snapshot(&s.truth, start), &mut out);
    observe(&m, &mut out, &s.truth, &mut resubscribed, &mut published, 0);
    assert!(published);
    for (k, d) in s.diffs.iter().enumerate() {
        let f = faults[k % faults.len()] % 8;
        let lag = lags[k % lags.len()];
        let copies = match f {
            3 => 0,
            4 => 2,
            _ => 1,
        };
        for _ in 0..copies {
            m.on_delta(d.clone(), &mut out);
            observe(&m, &mut out, &s.truth, &mut resubscribed, &mut published, lag);
        }
        let unprompted = f == 5 && lag.is_multiple_of(4);
        let answered = match resubscribed.as_mut() {
            Some(0) => true,
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        };
        if answered || unprompted {
            // Any stream snapshot answers an outstanding resubscribe.
            resubscribed = None;
            // In stream order: the venue's book after the last delta it produced.
            m.on_stream_snapshot(snapshot(&s.truth, d.last_update_id), &mut out);
            observe(&m, &mut out, &s.truth, &mut resubscribed, &mut published, lag);
        }
    }
    let dropped = faults.iter().take(s.diffs.len()).filter(|f| *f % 8 == 3).count();
    if dropped == 0 {
        let st = m.stats();
        assert_eq!((st.gaps, st.resyncs), (0, 0));
        assert_eq!(m.phase(), Phase::Synced);
    }
}

/// Changes, window sizes, id steps, delivery faults, snapshot lags.
type Case = (Vec<Change>, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec((any::<bool>(), any::<u16>(), any::<u16>()), 1..400),
        prop::collection::vec(any::<u8>(), 1..50),
        prop::collection::vec(any::<u8>(), 1..50),
        prop::collection::vec(any::<u8>(), 1..80),
        prop::collection::vec(any::<u8>(), 1..30),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn spot_books_never_differ_from_the_reference((changes, windows, steps, faults, lags) in case()) {
        let s = script(&changes, &windows, &steps, false);
        run::<VecSide>(&SpotSequencing, &s, &faults, &lags, 4096);
        run::<TreeSide>(&SpotSequencing, &s, &faults, &lags, 3);
    }

    #[test]
    fn futures_books_never_differ_from_the_reference((changes, windows, steps, faults, lags) in case()) {
        let s = script(&changes, &windows, &steps, true);
        run::<VecSide>(&FuturesSequencing, &s, &faults, &lags, 4096);
        run::<TreeSide>(&FuturesSequencing, &s, &faults, &lags, 3);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn bybit_books_never_differ_from_the_reference((changes, _windows, steps, faults, lags) in case()) {
        // One change per delta: Bybit's `u` advances by one per message.
        let s = script(&changes, &[0], &steps, false);
        assert!(s.diffs.iter().all(|d| d.first_update_id == d.last_update_id));
        run_stream::<VecSide>(&s, &faults, &lags, 4096);
        run_stream::<TreeSide>(&s, &faults, &lags, 3);
    }
}

/// Bybit without faults: the subscribe snapshot syncs at once, every delta
/// applies, an unprompted snapshot mid-stream and a restart snapshot (`u`
/// back to 1) each replace the book without a resync.
#[test]
fn bybit_stream_snapshots_reset_the_book() {
    let changes: Vec<Change> = (0..300u16).map(|i| (i % 2 == 0, i.wrapping_mul(31), i % 7 + 1)).collect();
    let s = script(&changes, &[0], &[0], false);
    let mut m: BookSync = BookSync::new(&BybitSequencing, SyncConfig::default());
    let mut out = Vec::new();
    // A delta before any snapshot waits for one.
    m.on_delta(s.diffs[0].clone(), &mut out);
    assert_eq!(out, vec![SyncEvent::NeedSnapshot]);
    out.clear();
    m.on_stream_snapshot(snapshot(&s.truth, s.diffs[0].last_update_id), &mut out);
    assert_eq!(out, vec![SyncEvent::Synced { last_update_id: s.diffs[0].last_update_id }]);
    assert!(!m.snapshot_pending());
    out.clear();
    for d in &s.diffs[1..150] {
        m.on_delta(d.clone(), &mut out);
    }
    m.on_stream_snapshot(snapshot(&s.truth, s.diffs[149].last_update_id), &mut out);
    for d in &s.diffs[150..] {
        m.on_delta(d.clone(), &mut out);
    }
    check(&m, &s.truth);
    assert!(out.iter().all(|e| !matches!(e, SyncEvent::Resync { .. } | SyncEvent::NeedSnapshot)));
    let st = m.stats();
    assert_eq!((st.applied, st.gaps, st.resyncs, st.snapshots), (s.diffs.len() as u64 - 1, 0, 0, 2));
    // The venue restarted: a snapshot at u = 1, then u = 2 continues it.
    out.clear();
    let restart = BookSnapshot { last_update_id: 1, bids: vec![lvl(150, 3)], asks: vec![lvl(250, 4)] };
    m.on_stream_snapshot(restart, &mut out);
    assert_eq!(out, vec![SyncEvent::Synced { last_update_id: 1 }]);
    let next = BookDelta {
        first_update_id: 2,
        last_update_id: 2,
        prev_update_id: None,
        bids: vec![lvl(151, 1)],
        asks: vec![],
    };
    out.clear();
    m.on_delta(next.clone(), &mut out);
    assert_eq!(out, vec![SyncEvent::Applied(next)]);
    let book = m.book().expect("in sync");
    assert_eq!((book.best_bid(), book.best_ask()), (Some(lvl(151, 1)), Some(lvl(250, 4))));
}

/// Without faults every diff after the bridge is applied and the final book
/// is the venue's.
#[test]
fn clean_sequences_sync_once_and_apply_everything() {
    let changes: Vec<Change> = (0..500u16).map(|i| (i % 3 == 0, i.wrapping_mul(7919), i % 11)).collect();
    for futures in [false, true] {
        let s = script(&changes, &[1, 2, 3], &[0, 1, 2], futures);
        let rule: &'static dyn BookSequencing = if futures { &FuturesSequencing } else { &SpotSequencing };
        let mut m: BookSync = BookSync::new(rule, SyncConfig::default());
        let mut out = Vec::new();
        m.on_delta(s.diffs[0].clone(), &mut out);
        m.on_delta(s.diffs[1].clone(), &mut out);
        assert_eq!(out, vec![SyncEvent::NeedSnapshot]);
        out.clear();
        // The snapshot lands between diff 1 and 2: diff 0 is suppressed.
        m.on_snapshot(snapshot(&s.truth, s.diffs[0].last_update_id), &mut out);
        assert_eq!(out, vec![SyncEvent::Synced { last_update_id: s.diffs[1].last_update_id }]);
        for d in &s.diffs[2..] {
            m.on_delta(d.clone(), &mut out);
        }
        check(&m, &s.truth);
        let st = m.stats();
        // Spot drops the diff whose u equals the snapshot id; futures applies
        // it again (U <= lastUpdateId <= u bridges), which is harmless.
        let suppressed = u64::from(!futures);
        let want = (s.diffs.len() as u64 - suppressed, suppressed, 0, 0);
        assert_eq!((st.applied, st.suppressed, st.gaps, st.resyncs), want);
    }
}
