//! Binance normalization against the real payloads in `../shared/fixtures`
//! (read at test time, never copied): field values, not just success.

use std::path::Path;

use ferrofeed_model::Decimal;
use ferrofeed_model::event::{Event, EventKind, Level, MarketType, Side, Venue};
use ferrofeed_venues::binance::Market;
use ferrofeed_venues::binance::normalize::{DecodeError, decode, decode_into, decode_rest_snapshot};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/");
const RX: i64 = 1_700_000_000_123_456_789;
const MS: i64 = 1_000_000;

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn lv(p: &str, q: &str) -> Level {
    Level { price: d(p), qty: d(q) }
}

fn one(market: Market, frame: &str) -> Event {
    let mut v = decode(market, frame, RX).unwrap_or_else(|e| panic!("{e}: {frame}"));
    assert_eq!(v.len(), 1, "{frame}");
    v.remove(0)
}

fn one_file(market: Market, rel: &str) -> Event {
    one(market, &fixture(rel))
}

fn json(e: &Event) -> serde_json::Value {
    serde_json::to_value(e).expect("serializes")
}

/// Every fixture file that is a frame or a body, with the type(s) it must decode
/// to. A new fixture file fails `every_fixture_file_has_an_expectation` until it
/// is added here.
const TABLE: &[(&str, Market, &str)] = &[
    ("binance_spot/agg_trade.docs.json", Market::Spot, "agg_trade"),
    ("binance_spot/agg_trade.json", Market::Spot, "agg_trade"),
    ("binance_spot/avg_price.docs.json", Market::Spot, "avg_price"),
    ("binance_spot/book_ticker.docs.json", Market::Spot, "top_of_book"),
    ("binance_spot/book_ticker.json", Market::Spot, "top_of_book"),
    ("binance_spot/depth_update.docs.json", Market::Spot, "book_delta"),
    ("binance_spot/depth_update.json", Market::Spot, "book_delta"),
    ("binance_spot/depth_update_empty_side.json", Market::Spot, "book_delta"),
    ("binance_spot/error_responses.docs.jsonl", Market::Spot, "unknown"),
    ("binance_spot/get_property_response.docs.json", Market::Spot, "unknown"),
    ("binance_spot/kline.docs.json", Market::Spot, "kline"),
    ("binance_spot/list_subscriptions_response.docs.json", Market::Spot, "unknown"),
    ("binance_spot/mini_ticker.docs.json", Market::Spot, "ticker"),
    ("binance_spot/partial_depth.docs.json", Market::Spot, "error:no stream"),
    ("binance_spot/rest_depth_snapshot.docs.json", Market::Spot, "rest"),
    ("binance_spot/rest_depth_snapshot.json", Market::Spot, "rest"),
    ("binance_spot/server_shutdown.docs.json", Market::Spot, "unknown"),
    ("binance_spot/server_shutdown_combined.docs.json", Market::Spot, "unknown"),
    ("binance_spot/subscribe_response.docs.json", Market::Spot, "unknown"),
    ("binance_spot/ticker_1h.docs.json", Market::Spot, "ticker"),
    ("binance_spot/ticker_24hr.docs.json", Market::Spot, "ticker"),
    ("binance_spot/trade.docs.json", Market::Spot, "trade"),
    ("binance_spot/unsubscribe_response.docs.json", Market::Spot, "unknown"),
    ("binance_spot/user_balance_update.docs.json", Market::Spot, "user"),
    ("binance_spot/user_balance_update.listenkey.docs.json", Market::Spot, "user"),
    ("binance_spot/user_event_stream_terminated.docs.json", Market::Spot, "user"),
    ("binance_spot/user_execution_report.docs.json", Market::Spot, "user"),
    ("binance_spot/user_execution_report.listenkey.docs.json", Market::Spot, "user"),
    ("binance_spot/user_external_lock_update.docs.json", Market::Spot, "user"),
    ("binance_spot/user_list_status.docs.json", Market::Spot, "user"),
    ("binance_spot/user_list_status.listenkey.docs.json", Market::Spot, "user"),
    ("binance_spot/user_listen_key_expired.docs.json", Market::Spot, "user"),
    ("binance_spot/user_outbound_account_position.docs.json", Market::Spot, "user"),
    ("binance_spot/user_outbound_account_position.listenkey.docs.json", Market::Spot, "user"),
    ("binance_spot/book_sync/BLZETH/depth_updates.jsonl", Market::Spot, "book_delta"),
    ("binance_spot/book_sync/BLZETH/rest_depth_snapshot.json", Market::Spot, "rest"),
    ("binance_spot/book_sync/LRCBTC/depth_updates.jsonl", Market::Spot, "book_delta"),
    ("binance_spot/book_sync/LRCBTC/rest_depth_snapshot.json", Market::Spot, "rest"),
    ("binance_futures/account_update.docs_via_nautilus.json", Market::UsdM, "user"),
    ("binance_futures/agg_trade.json", Market::UsdM, "agg_trade"),
    ("binance_futures/book_ticker.json", Market::UsdM, "top_of_book"),
    ("binance_futures/depth_update.docs_via_nautilus.json", Market::UsdM, "book_delta"),
    ("binance_futures/depth_update.json", Market::UsdM, "book_delta"),
    ("binance_futures/force_order.docs_via_nautilus.json", Market::UsdM, "liquidation"),
    ("binance_futures/kline_open.json", Market::UsdM, "kline"),
    ("binance_futures/mark_price_update.docs_via_nautilus.json", Market::UsdM, "mark_price"),
    ("binance_futures/order_trade_update.docs_via_nautilus.json", Market::UsdM, "user"),
    // Raw (no stream name), so indistinguishable from a diff: see partial_depth_needs_the_stream_name.
    ("binance_futures/partial_depth.docs_via_nautilus.json", Market::UsdM, "book_delta"),
    ("binance_futures/rest_depth_snapshot.json", Market::UsdM, "rest"),
    ("binance_futures/ticker_24hr.docs_via_nautilus.json", Market::UsdM, "ticker"),
    ("binance_futures/book_sync/AKROUSDT/depth_updates.jsonl", Market::UsdM, "book_delta"),
    ("binance_futures/book_sync/AKROUSDT/rest_depth_snapshot.json", Market::UsdM, "rest"),
    ("binance_futures/book_sync/CTKUSDT/depth_updates.jsonl", Market::UsdM, "book_delta"),
    ("binance_futures/book_sync/CTKUSDT/rest_depth_snapshot.json", Market::UsdM, "rest"),
];

fn files_under(dir: &Path, out: &mut Vec<String>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            let rel = path.strip_prefix(FIXTURES).expect("under fixtures").to_string_lossy().into_owned();
            // `.jsonc` files are the commented originals: not JSON.
            if rel.ends_with(".json") || rel.ends_with(".jsonl") {
                out.push(rel);
            }
        }
    }
}

#[test]
fn every_fixture_file_has_an_expectation() {
    let mut files = Vec::new();
    files_under(&Path::new(FIXTURES).join("binance_spot"), &mut files);
    files_under(&Path::new(FIXTURES).join("binance_futures"), &mut files);
    files.sort();
    let mut listed: Vec<String> = TABLE.iter().map(|(f, _, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed);
}

#[test]
fn every_fixture_decodes_to_its_type() {
    for &(rel, market, want) in TABLE {
        let text = fixture(rel);
        let frames: Vec<&str> =
            if rel.ends_with(".jsonl") { text.lines().filter(|l| !l.trim().is_empty()).collect() } else { vec![&text] };
        assert!(!frames.is_empty(), "{rel}");
        for frame in frames {
            // The feed's path (decode_into, appending) gives what decode gives.
            let mut into = vec![];
            let appended = decode_into(market, frame, RX, &mut into).map(|()| into);
            assert_eq!(appended, decode(market, frame, RX), "{rel}");
            match want {
                "rest" => {
                    let e = decode_rest_snapshot(market, "SYM", frame, RX).unwrap_or_else(|e| panic!("{rel}: {e}"));
                    assert_eq!(e.kind.type_name(), "book_snapshot", "{rel}");
                }
                "error:no stream" => {
                    let err = decode(market, frame, RX).expect_err(rel);
                    assert!(matches!(err, DecodeError::PartialDepthWithoutStream { .. }), "{rel}: {err}");
                }
                // Private user data (values in tests/it/binance_user_data.rs): one
                // or more user-data events, never `unknown`.
                "user" => {
                    let events = decode(market, frame, RX).unwrap_or_else(|e| panic!("{rel}: {e}"));
                    assert!(!events.is_empty(), "{rel}");
                    for e in &events {
                        let user = [
                            "order_update",
                            "user_trade",
                            "order_list_update",
                            "balance_update",
                            "position_update",
                            "user_stream_ended",
                        ];
                        assert!(user.contains(&e.kind.type_name()), "{rel}: {e:?}");
                        assert_eq!((e.venue, e.receive_ts), (Venue::Binance, RX), "{rel}");
                        assert!(e.exchange_ts.is_some(), "{rel}");
                        if let Some(sym) = e.symbol.as_deref() {
                            assert_eq!(sym, sym.to_ascii_uppercase(), "{rel}");
                        }
                    }
                }
                want => {
                    let events = decode(market, frame, RX).unwrap_or_else(|e| panic!("{rel}: {e}"));
                    assert_eq!(events.len(), 1, "{rel}");
                    let e = &events[0];
                    assert_eq!(e.kind.type_name(), want, "{rel}");
                    assert_eq!((e.venue, e.receive_ts), (Venue::Binance, RX), "{rel}");
                    let v = json(e);
                    assert_eq!(v["type"], want, "{rel}");
                    assert_eq!(v["venue"], "binance", "{rel}");
                    assert_eq!(v["market"], if market == Market::Spot { "spot" } else { "usdm" }, "{rel}");
                    if want != "unknown" {
                        let sym = v["symbol"].as_str().unwrap_or_else(|| panic!("{rel}: no symbol"));
                        assert_eq!(sym, sym.to_ascii_uppercase(), "{rel}");
                    }
                }
            }
        }
    }
}

#[test]
fn trades_carry_exact_values_and_the_taker_side() {
    let e = one_file(Market::Spot, "binance_spot/trade.docs.json");
    assert_eq!((e.market, e.symbol.as_deref()), (MarketType::Spot, Some("BNBBTC")));
    assert_eq!(e.exchange_ts, Some(1_672_515_782_136 * MS));
    let EventKind::Trade(t) = &e.kind else { panic!("{e:?}") };
    assert_eq!(t.trade_id, "12345");
    assert_eq!((t.price, t.qty), (d("0.001"), d("100")));
    // `m: true`: the buyer was the maker, so the taker sold.
    assert_eq!(t.side, Side::Sell);
    let v = json(&e);
    assert_eq!(
        (v["price"].as_str(), v["qty"].as_str(), v["side"].as_str()),
        (Some("0.001"), Some("100"), Some("sell"))
    );
    assert_eq!(v["exchange_ts"], 1_672_515_782_136_000_000_i64);
    assert_eq!(v["receive_ts"], RX);
    assert_eq!(v["trade_id"], "12345");

    let e = one_file(Market::Spot, "binance_spot/agg_trade.json");
    assert_eq!(e.symbol.as_deref(), Some("NKNUSDT"));
    assert_eq!(e.exchange_ts, Some(1_633_998_523_963 * MS));
    let v = json(&e);
    assert_eq!(v["type"], "agg_trade");
    assert_eq!(v["trade_id"], "15683430");
    assert_eq!(v["price"], "0.35280000");
    assert_eq!(v["qty"], "58.00000000");
    assert_eq!(v["side"], "buy");
    assert_eq!((v["first_trade_id"].as_str(), v["last_trade_id"].as_str()), (Some("19862790"), Some("19862790")));

    let e = one_file(Market::Spot, "binance_spot/agg_trade.docs.json");
    let EventKind::AggTrade(a) = &e.kind else { panic!("{e:?}") };
    assert_eq!((a.side, a.first_trade_id.as_str(), a.last_trade_id.as_str()), (Side::Sell, "100", "105"));

    // Futures: `T` (trade time) differs from `E`; exchange_ts is the trade time.
    let e = one_file(Market::UsdM, "binance_futures/agg_trade.json");
    assert_eq!((e.market, e.symbol.as_deref()), (MarketType::UsdM, Some("CTKUSDT")));
    assert_eq!(e.exchange_ts, Some(1_626_992_741_421 * MS));
    let EventKind::AggTrade(a) = &e.kind else { panic!("{e:?}") };
    assert_eq!((a.trade_id.as_str(), a.price, a.qty, a.side), ("16599292", d("1.01100"), d("10"), Side::Buy));
    assert_eq!(json(&e)["price"], "1.01100");
}

#[test]
fn options_trades_use_the_direction_field() {
    let current = r#"{"e":"trade","E":1762856064204,"T":1762856064203,"s":"BTC-251123-126000-C","t":4,"p":"1000","q":"2","X":"MARKET","S":"SELL","m":true}"#;
    let e = one(Market::Options, current);
    assert_eq!((e.market, e.symbol.as_deref()), (MarketType::Options, Some("BTC-251123-126000-C")));
    assert_eq!(e.exchange_ts, Some(1_762_856_064_203 * MS));
    let EventKind::Trade(t) = &e.kind else { panic!("{e:?}") };
    assert_eq!((t.trade_id.as_str(), t.price, t.qty, t.side), ("4", d("1000"), d("2"), Side::Sell));
    let older = r#"{"e":"trade","E":1591677941092,"s":"BTC-200630-9000-P","t":"20","p":"1000","q":"-0.1","b":4611781675939004417,"a":4611781675939004418,"T":1591677567872,"S":"1","X":"TRADE"}"#;
    let EventKind::Trade(t) = one(Market::Options, older).kind else { panic!() };
    assert_eq!((t.trade_id.as_str(), t.qty, t.side), ("20", d("-0.1"), Side::Buy));
}

#[test]
fn depth_diffs_keep_ids_levels_and_removals() {
    let e = one_file(Market::Spot, "binance_spot/depth_update.json");
    assert_eq!(e.symbol.as_deref(), Some("NKNUSDT"));
    assert_eq!(e.exchange_ts, Some(1_633_998_512_568 * MS));
    let EventKind::BookDelta(b) = &e.kind else { panic!("{e:?}") };
    assert_eq!((b.first_update_id, b.last_update_id, b.prev_update_id), (499_869_753, 499_869_754, None));
    assert_eq!(b.bids, vec![lv("0.35170000", "4265.00000000")]);
    assert_eq!(b.asks, vec![lv("0.35290000", "10968.00000000")]);
    let v = json(&e);
    assert_eq!(v["bids"], serde_json::json!([["0.35170000", "4265.00000000"]]));
    assert!(v.get("prev_update_id").is_none());

    let EventKind::BookDelta(b) = one_file(Market::Spot, "binance_spot/depth_update_empty_side.json").kind else {
        panic!()
    };
    assert_eq!((b.bids.len(), b.asks.len()), (3, 0));
    assert_eq!(b.bids[2], lv("0.34640000", "6222.00000000"));

    let e = one_file(Market::UsdM, "binance_futures/depth_update.json");
    assert_eq!(e.exchange_ts, Some(1_626_992_741_024 * MS), "futures: transaction time T");
    let EventKind::BookDelta(b) = &e.kind else { panic!("{e:?}") };
    assert_eq!(
        (b.first_update_id, b.last_update_id, b.prev_update_id),
        (600_859_599_090, 600_859_600_917, Some(600_859_598_061))
    );
    assert_eq!(b.bids[1], lv("7.6090", "0"), "qty 0 removes the level");
    assert_eq!(json(&e)["bids"][1], serde_json::json!(["7.6090", "0"]));
    assert_eq!(json(&e)["prev_update_id"], 600_859_598_061_u64);

    let EventKind::BookDelta(b) = one_file(Market::UsdM, "binance_futures/depth_update.docs_via_nautilus.json").kind
    else {
        panic!()
    };
    assert_eq!((b.first_update_id, b.last_update_id, b.prev_update_id), (157, 160, Some(149)));
}

/// Every line of the book-sync captures is a delta with the right ids, and the
/// ids chain as the venue promises (spot `U == prev u + 1`, futures `pu == prev u`).
#[test]
fn book_sync_sequences_decode_and_chain() {
    let cases = [
        ("binance_spot/book_sync/BLZETH", Market::Spot, "BLZETH", 10, (281_916_627, 281_916_627), 281_916_627),
        ("binance_spot/book_sync/LRCBTC", Market::Spot, "LRCBTC", 15, (259_345_536, 259_345_539), 259_345_543),
        (
            "binance_futures/book_sync/AKROUSDT",
            Market::UsdM,
            "AKROUSDT",
            189,
            (600_859_599_831, 600_859_599_831),
            600_859_605_486,
        ),
        (
            "binance_futures/book_sync/CTKUSDT",
            Market::UsdM,
            "CTKUSDT",
            185,
            (600_859_602_414, 600_859_603_788),
            600_859_618_836,
        ),
    ];
    for (dir, market, sym, lines, first_ids, snapshot_id) in cases {
        let text = fixture(&format!("{dir}/depth_updates.jsonl"));
        let mut prev: Option<u64> = None;
        let mut n = 0;
        for line in text.lines() {
            let e = one(market, line);
            assert_eq!(e.symbol.as_deref(), Some(sym));
            let EventKind::BookDelta(b) = &e.kind else { panic!("{dir}: {e:?}") };
            assert!(b.first_update_id <= b.last_update_id, "{dir}: {line}");
            if n == 0 {
                assert_eq!((b.first_update_id, b.last_update_id), first_ids, "{dir}");
            }
            if let Some(p) = prev {
                match market {
                    Market::Spot => assert_eq!(b.first_update_id, p + 1, "{dir}: {line}"),
                    _ => assert_eq!(b.prev_update_id, Some(p), "{dir}: {line}"),
                }
            }
            if market == Market::Spot {
                assert_eq!(b.prev_update_id, None);
            }
            prev = Some(b.last_update_id);
            n += 1;
        }
        assert_eq!(n, lines, "{dir}");
        let snap = decode_rest_snapshot(market, sym, &fixture(&format!("{dir}/rest_depth_snapshot.json")), RX)
            .unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert_eq!(snap.symbol.as_deref(), Some(sym));
        let EventKind::BookSnapshot(s) = &snap.kind else { panic!("{snap:?}") };
        assert_eq!(s.last_update_id, snapshot_id, "{dir}");
        assert!(!s.bids.is_empty() && !s.asks.is_empty());
        assert!(s.bids[0].price < s.asks[0].price, "{dir}: book uncrossed");
    }
}

#[test]
fn rest_snapshots() {
    let e = decode_rest_snapshot(Market::Spot, "nknusdt", &fixture("binance_spot/rest_depth_snapshot.json"), RX)
        .expect("spot snapshot");
    assert_eq!((e.symbol.as_deref(), e.exchange_ts), (Some("NKNUSDT"), None));
    let EventKind::BookSnapshot(s) = &e.kind else { panic!("{e:?}") };
    assert_eq!(s.last_update_id, 499_869_752);
    assert_eq!((s.bids.len(), s.asks.len()), (609, 1000));
    assert_eq!(s.bids[0], lv("0.35210000", "672.00000000"));
    assert_eq!(json(&e)["bids"][0], serde_json::json!(["0.35210000", "672.00000000"]));

    let e = decode_rest_snapshot(Market::UsdM, "SUSHIUSDT", &fixture("binance_futures/rest_depth_snapshot.json"), RX)
        .expect("futures snapshot");
    assert_eq!(e.exchange_ts, Some(1_626_992_741_261 * MS));
    let EventKind::BookSnapshot(s) = &e.kind else { panic!("{e:?}") };
    assert_eq!((s.last_update_id, s.bids[0]), (600_859_605_926, lv("7.6110", "6")));

    let e = decode_rest_snapshot(Market::Spot, "X", &fixture("binance_spot/rest_depth_snapshot.docs.json"), RX)
        .expect("docs snapshot");
    let EventKind::BookSnapshot(s) = &e.kind else { panic!("{e:?}") };
    assert_eq!((s.last_update_id, s.asks[0]), (1_027_024, lv("4.00000200", "12.00000000")));

    let err = decode_rest_snapshot(Market::Spot, "X", r#"{"code":-1121,"msg":"Invalid symbol."}"#, RX)
        .expect_err("an error body is not a snapshot");
    assert!(err.to_string().contains("lastUpdateId"), "{err}");
    assert_eq!(err.payload(), r#"{"code":-1121,"msg":"Invalid symbol."}"#);
}

#[test]
fn partial_depth_needs_the_stream_name() {
    let raw = fixture("binance_spot/partial_depth.docs.json");
    let err = decode(Market::Spot, &raw, RX).expect_err("no symbol without a stream name");
    assert!(matches!(err, DecodeError::PartialDepthWithoutStream { .. }));
    assert!(err.to_string().contains("stream name"), "{err}");
    assert_eq!(err.payload(), raw);

    let combined = format!(r#"{{"stream":"bnbbtc@depth5@100ms","data":{raw}}}"#);
    let e = one(Market::Spot, &combined);
    assert_eq!((e.symbol.as_deref(), e.exchange_ts), (Some("BNBBTC"), None));
    let EventKind::BookSnapshot(s) = &e.kind else { panic!("{e:?}") };
    assert_eq!(
        (s.last_update_id, s.bids.clone(), s.asks.clone()),
        (160, vec![lv("0.0024", "10")], vec![lv("0.0026", "100")])
    );

    // Futures partial depth has the diff's shape; the stream name makes it a snapshot.
    let fraw = fixture("binance_futures/partial_depth.docs_via_nautilus.json");
    let e = one(Market::UsdM, &format!(r#"{{"stream":"btcusdt@depth5@100ms","data":{fraw}}}"#));
    assert_eq!(e.exchange_ts, Some(1_571_889_248_276 * MS));
    let EventKind::BookSnapshot(s) = &e.kind else { panic!("{e:?}") };
    assert_eq!((s.last_update_id, s.bids.len(), s.asks.len()), (390_497_878, 5, 5));
    assert_eq!((s.bids[0], s.asks[4]), (lv("7403.89", "0.002"), lv("7407.20", "0.175")));
    let EventKind::BookDelta(b) = one(Market::UsdM, &fraw).kind else { panic!("raw: a delta") };
    assert_eq!((b.first_update_id, b.last_update_id, b.prev_update_id), (390_497_796, 390_497_878, Some(390_497_794)));
}

#[test]
fn book_tickers_spot_and_futures() {
    let e = one_file(Market::Spot, "binance_spot/book_ticker.json");
    assert_eq!((e.symbol.as_deref(), e.exchange_ts), (Some("NKNUSDT"), None), "spot sends no time");
    let EventKind::TopOfBook(t) = &e.kind else { panic!("{e:?}") };
    assert_eq!(t.update_id, 499_869_768);
    assert_eq!((t.bid_price, t.bid_qty), (d("0.35210000"), d("672.00000000")));
    assert_eq!((t.ask_price, t.ask_qty), (d("0.35260000"), d("3199.00000000")));
    assert_eq!(json(&e)["exchange_ts"], serde_json::Value::Null);

    let e = one_file(Market::UsdM, "binance_futures/book_ticker.json");
    assert_eq!((e.symbol.as_deref(), e.exchange_ts), (Some("SUSHIUSDT"), Some(1_626_992_741_012 * MS)));
    let v = json(&e);
    assert_eq!(v["update_id"], 600_859_600_576_u64);
    assert_eq!((v["bid_price"].as_str(), v["ask_qty"].as_str()), (Some("7.6110"), Some("297")));
}

#[test]
fn klines_tickers_and_averages() {
    let e = one_file(Market::Spot, "binance_spot/kline.docs.json");
    assert_eq!(e.exchange_ts, Some(1_672_515_782_136 * MS));
    let EventKind::Kline(k) = &e.kind else { panic!("{e:?}") };
    assert_eq!(
        (k.interval.as_str(), k.open_time, k.close_time),
        ("1m", 1_672_515_780_000 * MS, 1_672_515_839_999 * MS)
    );
    assert_eq!((k.open, k.high, k.low, k.close), (d("0.0010"), d("0.0025"), d("0.0015"), d("0.0020")));
    assert_eq!((k.volume, k.quote_volume, k.trades, k.closed), (d("1000"), d("1.0000"), Some(100), false));
    assert_eq!((json(&e)["quote_volume"].as_str(), json(&e)["trades"].as_u64()), (Some("1.0000"), Some(100)));

    let e = one_file(Market::UsdM, "binance_futures/kline_open.json");
    let EventKind::Kline(k) = &e.kind else { panic!("{e:?}") };
    assert_eq!((e.symbol.as_deref(), k.close, k.trades, k.closed), (Some("CTKUSDT"), d("1.01100"), Some(48), false));

    let e = one_file(Market::Spot, "binance_spot/ticker_24hr.docs.json");
    let v = json(&e);
    assert_eq!((v["type"].as_str(), v["window"].as_str()), (Some("ticker"), Some("24h")));
    assert_eq!(
        (v["open"].as_str(), v["high"].as_str(), v["low"].as_str()),
        (Some("0.0010"), Some("0.0025"), Some("0.0010"))
    );
    assert_eq!(
        (v["last_price"].as_str(), v["volume"].as_str(), v["quote_volume"].as_str()),
        (Some("0.0025"), Some("10000"), Some("18"))
    );
    assert_eq!(
        (v["price_change"].as_str(), v["bid_price"].as_str(), v["ask_price"].as_str()),
        (Some("0.0015"), Some("0.0024"), Some("0.0026"))
    );

    let v = json(&one_file(Market::Spot, "binance_spot/mini_ticker.docs.json"));
    assert_eq!((v["window"].as_str(), v["last_price"].as_str()), (Some("24h"), Some("0.0025")));
    assert!(v.get("price_change").is_none() && v.get("bid_price").is_none());

    let v = json(&one_file(Market::Spot, "binance_spot/ticker_1h.docs.json"));
    assert_eq!(
        (v["window"].as_str(), v["price_change"].as_str(), v["last_price"].as_str()),
        (Some("1h"), Some("0.0015"), Some("0.0025"))
    );
    assert!(v.get("bid_price").is_none());

    let v = json(&one_file(Market::UsdM, "binance_futures/ticker_24hr.docs_via_nautilus.json"));
    assert_eq!(
        (v["price_change"].as_str(), v["quote_volume"].as_str()),
        (Some("-131.40000000"), Some("2036102085.69746400"))
    );

    let e = one_file(Market::Spot, "binance_spot/avg_price.docs.json");
    assert_eq!((e.symbol.as_deref(), e.exchange_ts), (Some("BTCUSDT"), Some(1_693_907_033_000 * MS)));
    let v = json(&e);
    assert_eq!(
        (v["type"].as_str(), v["interval"].as_str(), v["price"].as_str()),
        (Some("avg_price"), Some("5m"), Some("25776.86000000"))
    );

    // Rolling windows other than 1h.
    for (e_name, window) in [("4hTicker", "4h"), ("1dTicker", "1d")] {
        let frame = fixture("binance_spot/ticker_1h.docs.json").replace("\"1hTicker\"", &format!("\"{e_name}\""));
        assert_eq!(json(&one(Market::Spot, &frame))["window"], window);
    }
}

#[test]
fn mark_price_and_liquidations() {
    let e = one_file(Market::UsdM, "binance_futures/mark_price_update.docs_via_nautilus.json");
    assert_eq!((e.symbol.as_deref(), e.exchange_ts), (Some("BTCUSDT"), Some(1_562_305_380_000 * MS)));
    let EventKind::MarkPrice(m) = &e.kind else { panic!("{e:?}") };
    assert_eq!((m.mark_price, m.index_price), (d("11794.15000000"), d("11784.62659091")));
    assert_eq!((m.funding_rate, m.next_funding_ts), (Some(d("0.00038167")), Some(1_562_306_400_000 * MS)));
    assert_eq!(json(&e)["funding_rate"], "0.00038167");

    // COIN-M delivery contracts have no funding: `"r":""`, `"T":0`.
    let delivery = r#"{"e":"markPriceUpdate","E":1700000000000,"s":"BTCUSD_250627","p":"65000.10000000","i":"64990.5","P":"64995.2","r":"","T":0}"#;
    let e = one(Market::CoinM, delivery);
    let v = json(&e);
    assert_eq!((v["market"].as_str(), v["mark_price"].as_str()), (Some("coinm"), Some("65000.10000000")));
    assert_eq!(
        (v["funding_rate"].clone(), v["next_funding_ts"].clone()),
        (serde_json::Value::Null, serde_json::Value::Null)
    );

    let e = one_file(Market::UsdM, "binance_futures/force_order.docs_via_nautilus.json");
    assert_eq!((e.symbol.as_deref(), e.exchange_ts), (Some("BTCUSDT"), Some(1_568_014_460_893 * MS)));
    let EventKind::Liquidation(l) = &e.kind else { panic!("{e:?}") };
    assert_eq!((l.side, l.price, l.qty), (Side::Sell, d("9910.00000000"), d("0.014")));
}

/// Options `openInterest` (an array, one element per option of the
/// underlying and expiry; the values of the Binance options docs' example)
/// gives one `open_interest` each, `o` in contracts and `h` in USDT, exact.
/// The same payload on a futures market is not invented into one: no futures
/// stream carries open interest (REST only), so it stays `unknown`.
#[test]
fn options_open_interest_and_none_on_futures() {
    let item =
        r#"{"e":"openInterest","E":1668759300045,"s":"ETH-221125-2700-C","o":"1580.87","h":"1912992.178168204"}"#;
    let other = item.replace("2700-C", "2800-P").replace("1580.87", "0.10");
    let frame = format!(r#"{{"stream":"ethusdt@optionOpenInterest@221125","data":[{item},{other}]}}"#);
    let v = decode(Market::Options, &frame, RX).expect("open interest");
    assert_eq!(v.len(), 2, "{v:?}");
    assert_eq!((v[0].market, v[0].symbol.as_deref()), (MarketType::Options, Some("ETH-221125-2700-C")));
    assert_eq!((v[0].exchange_ts, v[0].receive_ts), (Some(1_668_759_300_045 * MS), RX));
    let EventKind::OpenInterest(oi) = &v[0].kind else { panic!("{v:?}") };
    assert_eq!((oi.open_interest, oi.open_interest_value), (d("1580.87"), Some(d("1912992.178168204"))));
    let line = json(&v[0]);
    assert_eq!(
        (line["type"].as_str(), line["open_interest"].as_str(), line["open_interest_value"].as_str()),
        (Some("open_interest"), Some("1580.87"), Some("1912992.178168204"))
    );
    let EventKind::OpenInterest(oi) = &v[1].kind else { panic!("{v:?}") };
    assert_eq!((v[1].symbol.as_deref(), oi.open_interest.to_string()), (Some("ETH-221125-2800-P"), "0.10".into()));
    // A bad decimal fails the frame, keeping it.
    let bad = frame.replace("1580.87", "1,580");
    assert_eq!(decode(Market::Options, &bad, RX).expect_err("bad decimal").payload(), bad);

    for market in [Market::UsdM, Market::CoinM] {
        let e = one(market, item);
        assert_eq!(e.kind, EventKind::Unknown { raw: item.to_string() }, "{market:?}");
    }
}

#[test]
fn arrays_yield_one_event_per_element() {
    let mini = fixture("binance_spot/mini_ticker.docs.json");
    let other = mini.replace("BNBBTC", "ETHBTC");
    let combined = format!(r#"{{"stream":"!miniTicker@arr","data":[{mini},{other}]}}"#);
    let events = decode(Market::Spot, &combined, RX).expect("array");
    let syms: Vec<_> = events.iter().map(|e| e.symbol.as_deref()).collect();
    assert_eq!(syms, [Some("BNBBTC"), Some("ETHBTC")]);
    assert!(events.iter().all(|e| e.kind.type_name() == "ticker"));
    let raw = format!("[{mini},{other}]");
    assert_eq!(decode(Market::Spot, &raw, RX).expect("raw array").len(), 2);
    assert!(decode(Market::Spot, r#"{"stream":"!miniTicker@arr","data":[]}"#, RX).expect("empty").is_empty());
    // One bad element fails the frame, keeping it.
    let bad = format!(r#"{{"stream":"!miniTicker@arr","data":[{mini},{{"e":"24hrMiniTicker","s":"X"}}]}}"#);
    let err = decode(Market::Spot, &bad, RX).expect_err("bad element");
    assert_eq!(err.payload(), bad);
}

#[test]
fn unknown_event_types_keep_the_payload() {
    let frame = r#"{"stream":"btcusdt@newThing","data":{"e":"newThing","E":1,"s":"btcusdt","x":[1,2]}}"#;
    let e = one(Market::Spot, frame);
    assert_eq!(e.kind, EventKind::Unknown { raw: frame.to_string() });
    assert_eq!(e.symbol.as_deref(), Some("BTCUSDT"));
    let v = json(&e);
    assert_eq!((v["type"].as_str(), v["raw"].as_str()), (Some("unknown"), Some(frame)));
    // Odd header types do not make an unknown payload an error.
    let odd = r#"{"e":7,"s":{"nested":true},"u":[1]}"#;
    assert_eq!(one(Market::Spot, odd).kind, EventKind::Unknown { raw: odd.to_string() });
    let shutdown = fixture("binance_spot/server_shutdown_combined.docs.json");
    assert_eq!(one(Market::Spot, &shutdown).kind, EventKind::Unknown { raw: shutdown.clone() });
}

#[test]
fn malformed_frames_are_errors_that_keep_the_payload() {
    let cases: &[(&str, &str)] = &[
        ("", "malformed"),
        ("not json", "malformed"),
        (r#"{"e":"trade","E":"#, "malformed"),
        ("[1,2]", "malformed"),
        ("42", "malformed"),
        (r#"{"stream":"x@trade","data":[1]}"#, "malformed"),
        (r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"q":"1","T":1,"m":true}"#, "missing field `p`"),
        (r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"abc","q":"1","T":1,"m":true}"#, "invalid decimal \"abc\""),
        (r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":1.5,"q":"1","T":1,"m":true}"#, "invalid type"),
        (r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1","T":1}"#, "missing field `m`"),
        (r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1","T":9223372036854775807,"m":true}"#, "out of range"),
        (r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1"]],"a":[]}"#, "invalid length"),
        (r#"{"e":"depthUpdate","E":1,"s":"X","U":-1,"u":2,"b":[],"a":[]}"#, "invalid value"),
        (r#"{"u":1,"s":"X","b":"1","B":"1","a":"1"}"#, "missing field `A`"),
        (r#"{"e":"kline","E":1,"s":"X","k":{}}"#, "missing field"),
        (r#"{"e":"forceOrder","E":1,"o":{"s":"X","S":"UP","p":"1","q":"1"}}"#, "unknown side"),
        (r#"{"e":"24hrTicker","E":1,"s":"X","o":"1","h":"1","l":"1","c":"1","q":"1"}"#, "missing field `v`"),
    ];
    for (frame, needle) in cases {
        let err = decode(Market::Spot, frame, RX).expect_err(frame);
        assert_eq!(err.payload(), *frame);
        let msg = err.to_string();
        assert!(msg.contains(needle), "{frame}: {msg:?} lacks {needle:?}");
    }
}
