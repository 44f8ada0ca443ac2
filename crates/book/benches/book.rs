//! Which side storage for the L2 book: a sorted `Vec` (best level last) or a
//! `BTreeMap`. Measures loading a snapshot, applying real captured diffs, and
//! reading the top 20, on the real Binance captures in `../shared/fixtures`
//! (spot LRCBTC, 1000-level snapshot; USD-M AKROUSDT, 188 diffs) and on a
//! synthetic deep book with changes spread over 5000 levels.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ferrofeed_book::l2::{BookSide, L2Book, TreeSide, VecSide};
use ferrofeed_model::Decimal;
use ferrofeed_model::event::{BookDelta, BookSnapshot, EventKind, Level};
use ferrofeed_venues::binance::Market;
use ferrofeed_venues::binance::normalize::{decode, decode_rest_snapshot};

fn fixture(market: Market, dir: &str, symbol: &str) -> (BookSnapshot, Vec<BookDelta>) {
    let base = format!("{}/../../../shared/fixtures/{dir}/book_sync/{symbol}", env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read_to_string(format!("{base}/rest_depth_snapshot.json")).expect("snapshot fixture");
    let EventKind::BookSnapshot(snap) = decode_rest_snapshot(market, symbol, &body, 0).expect("snapshot").kind else {
        panic!("not a snapshot")
    };
    let lines = std::fs::read_to_string(format!("{base}/depth_updates.jsonl")).expect("diff fixture");
    let diffs = lines
        .lines()
        .flat_map(|l| decode(market, l, 0).expect("diff"))
        .filter_map(|e| match e.kind {
            EventKind::BookDelta(d) => Some(d),
            _ => None,
        })
        .collect();
    (snap, diffs)
}

/// 5000 levels a side; 2000 diffs of 10 changes, 80% within 50 ticks of the
/// touch, the rest anywhere.
fn synthetic() -> (BookSnapshot, Vec<BookDelta>) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let lvl = |p: i64, q: i64| Level { price: Decimal::new(p, 2), qty: Decimal::new(q, 3) };
    let bids = (0..5000).map(|i| lvl(1_000_000 - i, 1 + i % 97)).collect();
    let asks = (0..5000).map(|i| lvl(1_000_001 + i, 1 + i % 89)).collect();
    let mut diffs = Vec::new();
    for k in 0..2000u64 {
        let mut b = Vec::new();
        let mut a = Vec::new();
        for _ in 0..10 {
            let r = rnd();
            let off = if r % 10 < 8 { (r >> 8) % 50 } else { (r >> 8) % 5000 } as i64;
            let q = ((r >> 32) % 4) as i64 * 7;
            if r & 1 == 0 {
                b.push(lvl(1_000_000 - off, q));
            } else {
                a.push(lvl(1_000_001 + off, q));
            }
        }
        diffs.push(BookDelta { first_update_id: k, last_update_id: k, prev_update_id: None, bids: b, asks: a });
    }
    (BookSnapshot { last_update_id: 0, bids, asks }, diffs)
}

fn bench_side<S: BookSide>(c: &mut Criterion, name: &str, data: &[(&str, BookSnapshot, Vec<BookDelta>)]) {
    for (set, snap, diffs) in data {
        let mut g = c.benchmark_group(format!("book/{set}"));
        g.bench_function(format!("{name}/load"), |b| {
            b.iter(|| {
                let mut book: L2Book<S> = L2Book::new();
                book.load(snap.last_update_id, black_box(&snap.bids), black_box(&snap.asks));
                book
            })
        });
        let mut loaded: L2Book<S> = L2Book::new();
        loaded.load(snap.last_update_id, &snap.bids, &snap.asks);
        g.bench_function(format!("{name}/apply_all_diffs"), |b| {
            b.iter_batched_ref(
                || loaded.clone(),
                |book| {
                    for d in diffs {
                        book.apply(d.last_update_id, black_box(&d.bids), black_box(&d.asks));
                    }
                },
                criterion::BatchSize::LargeInput,
            )
        });
        g.bench_function(format!("{name}/top20"), |b| b.iter(|| (black_box(&loaded).bids(20), loaded.asks(20))));
        g.finish();
    }
}

fn benches(c: &mut Criterion) {
    let (s1, d1) = fixture(Market::Spot, "binance_spot", "LRCBTC");
    let (s2, d2) = fixture(Market::UsdM, "binance_futures", "AKROUSDT");
    let (s3, d3) = synthetic();
    let data = vec![("spot_LRCBTC", s1, d1), ("usdm_AKROUSDT", s2, d2), ("synthetic_5000", s3, d3)];
    bench_side::<VecSide>(c, "vec", &data);
    bench_side::<TreeSide>(c, "btree", &data);
}

criterion_group!(book, benches);
criterion_main!(book);
