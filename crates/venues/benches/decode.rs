//! Hot-path JSON decoding, measured (issue 5): serde_json vs sonic-rs on our
//! own payload shapes, and the cost of the full `normalize::decode`.
//!
//! Groups (every time is per message, or per decimal string in `decimal`):
//!
//! - `decode/*`: `binance::normalize::decode` as shipped (serde_json; envelope
//!   head, payload head and typed payload, then normalization into `Event`s).
//! - `parse_str/*`: the payload object (the envelope's `data`) into borrowed
//!   structs whose prices stay `&str`: the JSON parser alone.
//! - `parse_dec/*`: the same payload into structs with exact decimals (parsed
//!   with `Decimal::from_str_exact` in the visitor, like `wire::Dec`): what the
//!   crate's typed parse does.
//! - `envelope_dec/*`: the whole combined frame in one pass into
//!   `{stream, data: <typed payload with decimals>}`: what a single-pass hot
//!   path would cost with each parser.
//! - `read/*`: classify and decode, in two passes and in the venue's one
//!   pass (issue 22), Binance and Bybit.
//! - `decimal/*`: `Decimal::from_str` and `from_str_exact` on typical prices
//!   and quantities.
//!
//! The crate's wire structs are private, so the bench declares equivalent
//! borrowed structs. Frames are written here in Binance's shape (combined
//! `/stream` envelope) and Bybit's (`topic`, `type`, `ts`, `data`); the depth
//! diffs carry 10 levels (5 bids, 5 asks).
//!
//! Run: `cargo bench -p ferrofeed-venues --bench decode`.

#![allow(non_snake_case)]

use std::fmt;
use std::hint::black_box;
use std::str::FromStr;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferrofeed_model::event::{EventKind, MarketType};
use ferrofeed_model::rules::{Inbound, VenueRules};
use ferrofeed_venues::VenueSpec;
use ferrofeed_venues::binance::normalize::decode;
use ferrofeed_venues::binance::{BinanceRules, Market};
use ferrofeed_venues::bybit::spec::Bybit;
use ferrofeed_venues::bybit::{BybitRules, Category};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

const RECEIVED_NS: i64 = 1_700_000_000_123_456_789;

/// Spot trade, combined envelope.
const TRADE: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1700000000123,"s":"BTCUSDT","t":3291847561,"p":"67321.45000000","q":"0.00150000","T":1700000000122,"m":true,"M":true}}"#;

/// The simulator's load-stream trade (`ferrofeed bench e2e`), combined envelope.
const LOAD_TRADE: &str = r#"{"stream":"loadusdt@trade","data":{"e":"trade","E":1111111111111111,"s":"LOADUSDT","t":2222222222,"p":"100.00000000","q":"1.00000000","T":1111111111111111,"m":true,"M":true}}"#;

/// Spot depth diff, 5 bids + 5 asks, combined envelope.
const SPOT_DEPTH: &str = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000223,"s":"BTCUSDT","U":45218734001,"u":45218734019,"b":[["67321.44000000","1.20450000"],["67321.10000000","0.00000000"],["67320.98000000","0.35000000"],["67319.50000000","2.11780000"],["67315.00000000","0.00890000"]],"a":[["67321.45000000","0.41230000"],["67321.80000000","0.00000000"],["67322.01000000","1.50000000"],["67325.40000000","0.07120000"],["67330.00000000","3.00000000"]]}}"#;

/// USDⓈ-M depth diff (`T`, `pu`), 5 bids + 5 asks, combined envelope.
const FUT_DEPTH: &str = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000231,"T":1700000000229,"s":"BTCUSDT","U":7812093411203,"u":7812093412987,"pu":7812093411190,"b":[["67318.20","3.512"],["67318.10","0.000"],["67317.90","12.004"],["67316.00","0.250"],["67310.50","1.001"]],"a":[["67318.30","0.870"],["67318.60","0.000"],["67319.00","5.432"],["67320.10","0.015"],["67325.00","2.200"]]}}"#;

/// Spot bookTicker (no `e`, `E`, `T`), combined envelope.
const BOOK_TICKER: &str = r#"{"stream":"btcusdt@bookTicker","data":{"u":45218734020,"s":"BTCUSDT","b":"67321.44000000","B":"1.20450000","a":"67321.45000000","A":"0.41230000"}}"#;

/// Bybit linear trade (`publicTrade`, one trade), in the venue's shape.
const BYBIT_TRADE: &str = r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1700000000123,"data":[{"T":1700000000122,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"67321.40","L":"PlusTick","i":"6f1c2d3e-4a5b-5c6d-8e9f-0a1b2c3d4e5f","BT":false,"RPI":false,"seq":123456789012}]}"#;

/// The simulator's Bybit load-stream trade (`ferrofeed bench e2e --venue bybit`, linear).
const BYBIT_LOAD_TRADE: &str = r#"{"topic":"publicTrade.LOADUSDT","type":"snapshot","ts":1111111111111,"data":[{"T":1111111111111,"s":"LOADUSDT","S":"Buy","v":"0.001","p":"100.00","L":"PlusTick","i":"2222222222222","BT":false,"RPI":false,"seq":2222222222222}]}"#;

/// Bybit linear order-book delta, 5 bids + 5 asks (`cts` after `data`, as the venue sends it).
const BYBIT_DELTA: &str = r#"{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1700000000231,"data":{"s":"BTCUSDT","b":[["67318.20","3.512"],["67318.10","0"],["67317.90","12.004"],["67316.00","0.250"],["67310.50","1.001"]],"a":[["67318.30","0.870"],["67318.60","0"],["67319.00","5.432"],["67320.10","0.015"],["67325.00","2.200"]],"u":15076953,"seq":753843913870},"cts":1700000000229}"#;

/// Typical price/quantity strings (spot 8 dp, futures short).
const DECIMALS: [&str; 8] =
    ["67321.45000000", "0.00150000", "0.35280000", "4265.00000000", "7.6110", "3.512", "67318.20", "0.00000000"];

// ---- borrowed structs, prices as &str (parser only) ----

// Fields are only there to be parsed; the result goes to `black_box`.
#[allow(dead_code)]
#[derive(Deserialize)]
struct TradeS<'a> {
    e: &'a str,
    E: i64,
    s: &'a str,
    t: u64,
    p: &'a str,
    q: &'a str,
    T: i64,
    m: bool,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct DepthS<'a> {
    e: &'a str,
    E: i64,
    #[serde(default)]
    T: Option<i64>,
    s: &'a str,
    U: u64,
    u: u64,
    #[serde(default)]
    pu: Option<i64>,
    #[serde(borrow)]
    b: Vec<[&'a str; 2]>,
    #[serde(borrow)]
    a: Vec<[&'a str; 2]>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct BookTickerS<'a> {
    u: u64,
    s: &'a str,
    b: &'a str,
    B: &'a str,
    a: &'a str,
    A: &'a str,
}

// ---- the same with exact decimals (mirrors the crate's wire structs) ----

/// Like `wire::Dec`: an exact decimal from a JSON string.
struct Dec(#[allow(dead_code)] Decimal);

impl<'de> Deserialize<'de> for Dec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dec, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dec, E> {
                Decimal::from_str_exact(v).map(Dec).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct TradeD<'a> {
    e: &'a str,
    E: i64,
    s: &'a str,
    t: u64,
    p: Dec,
    q: Dec,
    T: i64,
    m: bool,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct DepthD<'a> {
    e: &'a str,
    E: i64,
    #[serde(default)]
    T: Option<i64>,
    s: &'a str,
    U: u64,
    u: u64,
    #[serde(default)]
    pu: Option<i64>,
    b: Vec<(Dec, Dec)>,
    a: Vec<(Dec, Dec)>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct BookTickerD<'a> {
    u: u64,
    s: &'a str,
    b: Dec,
    B: Dec,
    a: Dec,
    A: Dec,
}

/// The combined `/stream` envelope with a typed payload.
#[allow(dead_code)]
#[derive(Deserialize)]
struct Env<'a, T> {
    stream: &'a str,
    data: T,
}

/// A Bybit trade item with exact decimals (what a serde one-pass reader would parse).
#[allow(dead_code)]
#[derive(Deserialize)]
struct BybitTradeD<'a> {
    T: i64,
    s: &'a str,
    S: &'a str,
    v: Dec,
    p: Dec,
    i: &'a str,
}

/// Bybit order-book data with exact decimals.
#[allow(dead_code)]
#[derive(Deserialize)]
struct BybitBookD<'a> {
    s: &'a str,
    b: Vec<(Dec, Dec)>,
    a: Vec<(Dec, Dec)>,
    u: u64,
    seq: Option<u64>,
}

/// The Bybit envelope with a typed payload: a serde one-pass reader.
#[allow(dead_code)]
#[derive(Deserialize)]
struct BybitEnv<'a, T> {
    topic: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    ts: i64,
    #[serde(default)]
    cts: Option<i64>,
    data: T,
}

/// The `data` object of a combined frame (what the typed parse sees).
fn payload(frame: &str) -> &str {
    let start = frame.find("\"data\":").expect("combined frame") + "\"data\":".len();
    &frame[start..frame.len() - 1]
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

/// Checks once that every frame takes the success path we mean to time.
fn sanity() {
    let one = |market, frame| {
        let mut v = decode(market, frame, RECEIVED_NS).expect("frame decodes");
        assert_eq!(v.len(), 1);
        v.remove(0).kind
    };
    assert!(matches!(one(Market::Spot, TRADE), EventKind::Trade(_)));
    assert!(matches!(one(Market::Spot, SPOT_DEPTH), EventKind::BookDelta(ref d) if d.bids.len() + d.asks.len() == 10));
    assert!(matches!(one(Market::UsdM, FUT_DEPTH), EventKind::BookDelta(ref d) if d.prev_update_id.is_some()));
    assert!(matches!(one(Market::Spot, BOOK_TICKER), EventKind::TopOfBook(_)));
    for f in [TRADE, SPOT_DEPTH, FUT_DEPTH, BOOK_TICKER] {
        let p = payload(f);
        assert!(p.starts_with('{') && p.ends_with('}'), "{p}");
    }
}

fn bench_decode(c: &mut Criterion) {
    sanity();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    for (name, market, frame) in FRAMES {
        g.bench_function(name, |b| b.iter(|| decode(market, black_box(frame), RECEIVED_NS)));
    }
    g.finish();
}

/// Every frame the groups time, with its market.
const FRAMES: [(&str, Market, &str); 5] = [
    ("trade", Market::Spot, TRADE),
    ("load_trade", Market::Spot, LOAD_TRADE),
    ("spot_depth10", Market::Spot, SPOT_DEPTH),
    ("futures_depth10", Market::UsdM, FUT_DEPTH),
    ("book_ticker", Market::Spot, BOOK_TICKER),
];

/// `BinanceRules::classify`, what the connection actor runs on every frame
/// (stream name and sequence numbers).
fn bench_classify(c: &mut Criterion) {
    let mut g = c.benchmark_group("classify");
    g.throughput(Throughput::Elements(1));
    for (name, market, frame) in FRAMES {
        let rules = BinanceRules::new(market);
        g.bench_function(name, |b| b.iter(|| rules.classify(black_box(frame))));
    }
    let rules = BybitRules::public(Category::Linear);
    for (name, frame) in BYBIT_FRAMES {
        assert!(matches!(rules.classify(frame), Inbound::Data { .. }), "{name}");
        g.bench_function(name, |b| b.iter(|| rules.classify(black_box(frame))));
    }
    g.finish();
}

/// What the connection does per frame since issue 22 (`read`: classify and
/// decode in one pass, `Decoder::read`) against what it and the feed did
/// before (`two_pass`: `classify`, then `decode_into`), events into a
/// reused vector in both.
fn bench_read(c: &mut Criterion) {
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Elements(1));
    for (name, market, frame) in FRAMES {
        let rules = BinanceRules::new(market);
        let mt = if market == Market::UsdM { MarketType::Linear } else { MarketType::Spot };
        let mut out = Vec::with_capacity(4);
        g.bench_function(format!("{name}/two_pass"), |b| {
            b.iter(|| {
                out.clear();
                let inbound = rules.classify(black_box(frame));
                let r = ferrofeed_venues::binance::normalize::decode_into(market, frame, RECEIVED_NS, &mut out);
                (matches!(black_box(inbound), ferrofeed_model::rules::Inbound::Data { .. }), r.is_ok())
            })
        });
        let mut decoder = ferrofeed_venues::binance::spec::Binance.decoder(mt);
        g.bench_function(format!("{name}/one_pass"), |b| {
            b.iter(|| {
                out.clear();
                let read = decoder.read(&rules, black_box(frame), RECEIVED_NS, &mut out);
                (
                    matches!(black_box(read.inbound), ferrofeed_model::rules::Inbound::Data { .. }),
                    read.decoded.is_some(),
                )
            })
        });
    }
    // Bybit (linear): `two_pass` is the seam's default `read`
    // (`classify_then_decode`: `BybitRules::classify`, then the serde
    // decoder), `one_pass` Bybit's `Decoder::read`.
    let rules = BybitRules::public(Category::Linear);
    for (name, frame) in BYBIT_FRAMES {
        let mut out = Vec::with_capacity(4);
        let mut decoder = Bybit.decoder(MarketType::Linear);
        assert_eq!(decoder.read(&rules, frame, RECEIVED_NS, &mut out).decoded, Some(Ok(())));
        assert_eq!(out.len(), 1, "{name}");
        g.bench_function(format!("{name}/two_pass"), |b| {
            b.iter(|| {
                out.clear();
                let read = ferrofeed_venues::seam::classify_then_decode(
                    decoder.as_mut(),
                    &rules,
                    black_box(frame),
                    RECEIVED_NS,
                    &mut out,
                );
                (matches!(black_box(read.inbound), Inbound::Data { .. }), read.decoded.is_some())
            })
        });
        g.bench_function(format!("{name}/one_pass"), |b| {
            b.iter(|| {
                out.clear();
                let read = decoder.read(&rules, black_box(frame), RECEIVED_NS, &mut out);
                (matches!(black_box(read.inbound), Inbound::Data { .. }), read.decoded.is_some())
            })
        });
    }
    g.finish();
}

/// The Bybit frames the `read` and `classify` groups time.
const BYBIT_FRAMES: [(&str, &str); 3] =
    [("bybit_trade", BYBIT_TRADE), ("bybit_load_trade", BYBIT_LOAD_TRADE), ("bybit_book_delta10", BYBIT_DELTA)];

/// One frame/payload type timed with both parsers.
macro_rules! both {
    ($g:expr, $name:literal, $ty:ty, $text:expr) => {{
        let text: &str = $text;
        serde_json::from_str::<$ty>(text).expect("serde_json parses");
        sonic_rs::from_str::<$ty>(text).expect("sonic-rs parses");
        $g.bench_function(concat!($name, "/serde_json"), |b| b.iter(|| serde_json::from_str::<$ty>(black_box(text))));
        $g.bench_function(concat!($name, "/sonic_rs"), |b| b.iter(|| sonic_rs::from_str::<$ty>(black_box(text))));
    }};
}

fn bench_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_str");
    g.throughput(Throughput::Elements(1));
    both!(g, "trade", TradeS<'_>, payload(TRADE));
    both!(g, "spot_depth10", DepthS<'_>, payload(SPOT_DEPTH));
    both!(g, "futures_depth10", DepthS<'_>, payload(FUT_DEPTH));
    both!(g, "book_ticker", BookTickerS<'_>, payload(BOOK_TICKER));
    g.finish();

    let mut g = c.benchmark_group("parse_dec");
    g.throughput(Throughput::Elements(1));
    both!(g, "trade", TradeD<'_>, payload(TRADE));
    both!(g, "spot_depth10", DepthD<'_>, payload(SPOT_DEPTH));
    both!(g, "futures_depth10", DepthD<'_>, payload(FUT_DEPTH));
    both!(g, "book_ticker", BookTickerD<'_>, payload(BOOK_TICKER));
    g.finish();

    let mut g = c.benchmark_group("envelope_dec");
    g.throughput(Throughput::Elements(1));
    both!(g, "trade", Env<'_, TradeD<'_>>, TRADE);
    both!(g, "spot_depth10", Env<'_, DepthD<'_>>, SPOT_DEPTH);
    both!(g, "futures_depth10", Env<'_, DepthD<'_>>, FUT_DEPTH);
    both!(g, "book_ticker", Env<'_, BookTickerD<'_>>, BOOK_TICKER);
    both!(g, "bybit_trade", BybitEnv<'_, Vec<BybitTradeD<'_>>>, BYBIT_TRADE);
    both!(g, "bybit_book_delta10", BybitEnv<'_, BybitBookD<'_>>, BYBIT_DELTA);
    g.finish();
}

fn bench_decimal(c: &mut Criterion) {
    let mut g = c.benchmark_group("decimal");
    g.throughput(Throughput::Elements(DECIMALS.len() as u64));
    g.bench_function("from_str_x8", |b| {
        b.iter(|| {
            for s in DECIMALS {
                let _ = black_box(Decimal::from_str(black_box(s)));
            }
        })
    });
    g.bench_function("from_str_exact_x8", |b| {
        b.iter(|| {
            for s in DECIMALS {
                let _ = black_box(Decimal::from_str_exact(black_box(s)));
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_classify, bench_decode, bench_read, bench_parse, bench_decimal
}
criterion_main!(benches);
