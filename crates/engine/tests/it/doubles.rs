//! The Bybit and Deribit test doubles: `classify` on the real fixture files and
//! on synthetic control frames, request batching, and the connection actor
//! end to end against small scripted servers on 127.0.0.1 (client text pings
//! and their pongs, idle detection and reconnect, auth, Deribit's
//! `test_request` duty and a `prev_change_id` break).

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::bybit::{self, Bybit};
use crate::common::deribit::{self, Deribit};
use ferrofeed_engine::seq::{SeqTracker, Verdict};
use ferrofeed_engine::venue::batches;
use ferrofeed_engine::{
    BackoffConfig, ClientPing, ConnectSpec, Connection, ConnectionConfig, Event, EventKind, EventReceiver, Inbound,
    Missing, Native, RequestOp, Seq, VenueRules,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/");

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}{rel}")).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

fn lines(rel: &str) -> Vec<String> {
    fixture(rel).lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect()
}

fn data(stream: &str, seq: Option<Seq>) -> Inbound<'static> {
    Inbound::Data { stream: Cow::Owned(stream.to_string()), seq }
}

fn fifo(op: RequestOp) -> Inbound<'static> {
    Inbound::AckStreams { op: Some(op), streams: Vec::new() }
}

fn chained(change_id: u64, prev: u64) -> Seq {
    Seq::chained(change_id, change_id, prev)
}

/// Classifies each fixture and compares with the expectation, reporting every mismatch at once.
fn check_table(venue: &dyn VenueRules, table: &[(&str, Inbound<'static>)]) {
    let mut wrong = Vec::new();
    for (file, want) in table {
        let text = fixture(file);
        let got = venue.classify(&text);
        let same = match (&got, want) {
            // The parser's message is not part of the contract.
            (Inbound::Malformed(_), Inbound::Malformed(_)) => true,
            (g, w) => g == w,
        };
        if !same {
            wrong.push(format!("{file}: got {got:?}, want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{} misclassified:\n{}", venue.name(), wrong.join("\n"));
}

fn check_frames(venue: &dyn VenueRules, table: &[(&str, Inbound<'static>)]) {
    let mut wrong = Vec::new();
    for (frame, want) in table {
        let got = venue.classify(frame);
        let same = match (&got, want) {
            (Inbound::Malformed(_), Inbound::Malformed(_)) => true,
            (g, w) => g == w,
        };
        if !same {
            wrong.push(format!("{frame}\n  got {got:?}\n  want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{} misclassified:\n{}", venue.name(), wrong.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Bybit: classification

#[test]
fn bybit_classifies_every_real_fixture() {
    let ob = |seq| data("orderbook.200.BTCUSDT", Some(bybit::ordered(seq)));
    let table = [
        ("bybit_v5/orderbook_snapshot.linear.json", ob(753_843_911_359)),
        ("bybit_v5/orderbook_delta.linear.json", ob(753_843_913_870)),
        ("bybit_v5/orderbook_snapshot.spot.json", ob(112_488_545_843)),
        ("bybit_v5/public_trade.linear.json", data("publicTrade.BTCUSDT", None)),
        ("bybit_v5/kline.linear.json", data("kline.1.BTCUSDT", None)),
        ("bybit_v5/kline.spot.json", data("kline.1.BTCUSDT", None)),
        ("bybit_v5/tickers_snapshot.linear.json", data("tickers.BTCUSDT", None)),
        ("bybit_v5/tickers_delta.linear.json", data("tickers.BTCUSDT", None)),
        // Captured without a req_id (spot: absent; linear: ""): the oldest subscribe (FIFO).
        ("bybit_v5/subscribe_response.linear.json", fifo(RequestOp::Subscribe)),
        ("bybit_v5/subscribe_response.spot.json", fifo(RequestOp::Subscribe)),
        ("bybit_v5/docs/subscribe_response.spot.docs.json", Inbound::Ack { id: 10001 }),
        ("bybit_v5/docs/subscribe_response.linear.docs.json", fifo(RequestOp::Subscribe)),
        ("bybit_v5/docs/subscribe_response.private.docs.json", fifo(RequestOp::Subscribe)),
        // Option: confirmed by the topics named.
        (
            "bybit_v5/docs/subscribe_response.option.docs.json",
            Inbound::AckStreams { op: None, streams: vec!["orderbook.100.BTC-6JAN23-18000-C".into()] },
        ),
        ("bybit_v5/docs/pong.spot.docs.json", Inbound::Pong),
        ("bybit_v5/docs/pong.linear.docs.json", Inbound::Pong),
        ("bybit_v5/docs/pong.option.docs.json", Inbound::Pong),
        ("bybit_v5/docs/pong.private.docs.json", Inbound::Pong),
        ("bybit_v5/docs/auth_response.docs.json", Inbound::AuthOk),
        ("bybit_v5/docs/orderbook_delta.docs.json", data("orderbook.50.BTCUSDT", Some(bybit::ordered(66_544_703_342)))),
        ("bybit_v5/docs/public_trade.docs.json", data("publicTrade.BTCUSDT", None)),
        ("bybit_v5/docs/kline.docs.json", data("kline.5.BTCUSDT", None)),
        ("bybit_v5/docs/all_liquidation.docs.json", data("allLiquidation.ROSEUSDT", None)),
        ("bybit_v5/docs/tickers.spot.docs.json", data("tickers.BTCUSDT", None)),
        ("bybit_v5/docs/tickers.LinearPerpetual.docs.json", data("tickers.BTCUSDT", None)),
        ("bybit_v5/docs/tickers.LinearFutures.docs.json", data("tickers.BTC-26DEC25", None)),
        ("bybit_v5/docs/tickers.option.docs.json", data("tickers.BTC-6JAN23-17500-C", None)),
        ("bybit_v5/docs/order.docs.json", data("order", None)),
        ("bybit_v5/docs/execution.docs.json", data("execution", None)),
        ("bybit_v5/docs/execution_fast.docs.json", data("execution.fast", None)),
        ("bybit_v5/docs/position.docs.json", data("position", None)),
        ("bybit_v5/docs/wallet.docs.json", data("wallet", None)),
        // The docs example has `...` placeholders: not JSON.
        ("bybit_v5/docs/orderbook_snapshot.docs.jsonc", Inbound::Malformed(String::new())),
    ];
    check_table(&Bybit::default(), &table);
}

#[test]
fn bybit_classifies_control_frames() {
    let handler = "error:handler not found,topic:orderbook.50.NOPEUSDT";
    let table = [
        (
            r#"{"success":true,"ret_msg":"subscribe","conn_id":"c1","req_id":"7","op":"subscribe"}"#,
            Inbound::Ack { id: 7 },
        ),
        (r#"{"success":true,"ret_msg":"","conn_id":"c1","req_id":"8","op":"unsubscribe"}"#, Inbound::Ack { id: 8 }),
        // A numeric req_id is read too.
        (r#"{"success":true,"ret_msg":"","req_id":12,"op":"subscribe"}"#, Inbound::Ack { id: 12 }),
        (
            r#"{"success":false,"ret_msg":"error:handler not found,topic:orderbook.50.NOPEUSDT","conn_id":"c1","req_id":"9","op":"subscribe"}"#,
            Inbound::Rejected {
                id: Some(9),
                code: 0,
                msg: handler.into(),
                streams: vec!["orderbook.50.NOPEUSDT".into()],
            },
        ),
        (
            r#"{"success":false,"ret_msg":"args size >10","conn_id":"c1","req_id":"3","op":"subscribe"}"#,
            Inbound::Rejected { id: Some(3), code: 0, msg: "args size >10".into(), streams: vec![] },
        ),
        // The first subscription keeps flowing: an ack, not a failure.
        (
            r#"{"success":false,"ret_msg":"error:already subscribed,topic:publicTrade.BTCUSDT","req_id":"4","op":"subscribe"}"#,
            Inbound::Ack { id: 4 },
        ),
        // A failure whose req_id is not ours still surfaces (as an engine error).
        (
            r#"{"success":false,"ret_msg":"error:invalid op","conn_id":"c1","op":"subscribe"}"#,
            Inbound::Rejected { id: None, code: 0, msg: "error:invalid op".into(), streams: vec![] },
        ),
        (
            r#"{"success":false,"ret_msg":"Failed to decode incoming data: x","conn_id":"c1"}"#,
            Inbound::Rejected { id: None, code: 0, msg: "Failed to decode incoming data: x".into(), streams: vec![] },
        ),
        (
            r#"{"success":true,"conn_id":"c","data":{"failTopics":["orderbook.100.X"],"successTopics":[]},"type":"COMMAND_RESP"}"#,
            Inbound::Rejected {
                id: None,
                code: 0,
                msg: r#"failTopics: ["orderbook.100.X"]"#.into(),
                streams: vec!["orderbook.100.X".into()],
            },
        ),
        (r#"{"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}"#, Inbound::Pong),
        (r#"{"success":true,"ret_msg":"pong","conn_id":"c","req_id":"","op":"ping"}"#, Inbound::Pong),
        (r#"{"args":["1672916271846"],"op":"pong"}"#, Inbound::Pong),
        // Our own ping echoed back is not a pong.
        (r#"{"op":"ping"}"#, Inbound::Unknown),
        (r#"{"success":true,"ret_msg":"","op":"auth","conn_id":"c"}"#, Inbound::AuthOk),
        (
            r#"{"success":false,"ret_msg":"Params Error","op":"auth","conn_id":"c"}"#,
            Inbound::AuthFailed { msg: "Params Error".into() },
        ),
        (
            r#"{"op":"auth","success":false,"retCode":10003,"retMsg":"Invalid apikey","conn_id":"c"}"#,
            Inbound::AuthFailed { msg: "Invalid apikey".into() },
        ),
        (r#"{"hello":"world"}"#, Inbound::Unknown),
        ("not json", Inbound::Malformed(String::new())),
    ];
    check_frames(&Bybit::default(), &table);
}

#[test]
fn bybit_encodes_requests_with_string_req_ids_and_reads_them_back() {
    let b = Bybit::default();
    let streams = vec!["orderbook.50.BTCUSDT".to_string(), "publicTrade.BTCUSDT".to_string()];
    let sub: Value = serde_json::from_str(&b.encode_subscribe(42, &streams)).unwrap();
    assert_eq!(sub, json!({"op": "subscribe", "args": streams, "req_id": "42"}));
    let unsub: Value = serde_json::from_str(&b.encode_unsubscribe(43, &streams)).unwrap();
    assert_eq!(unsub, json!({"op": "unsubscribe", "args": streams, "req_id": "43"}));
    // The server echoes the req_id string; classify reads it back as the number.
    let ack =
        json!({"success": true, "ret_msg": "subscribe", "conn_id": "c", "req_id": sub["req_id"], "op": "subscribe"});
    assert_eq!(b.classify(&ack.to_string()), Inbound::Ack { id: 42 });

    let hb = b.heartbeat();
    assert_eq!(hb.client_ping, ClientPing::Text(r#"{"op":"ping"}"#.into()));
    assert_eq!(hb.interval, Duration::from_secs(20));
    assert_eq!(b.limits().max_streams_per_request, 10);
    assert_eq!(b.auth_request(1), None);
    assert!(b.on_connect(&mut || 1).is_empty());

    let frame = r#"{"op":"auth","args":["key",1700000000000,"sig"]}"#.to_string();
    let private = Bybit { auth: Some(frame.clone()), ..Bybit::default() };
    assert_eq!(private.auth_request(5), Some(frame));
}

/// The recorded linear book (snapshot + 413 deltas) passes the engine's tracker
/// without a gap or a drop; the two naive encodings do not.
#[test]
fn bybit_book_replay_uses_seq_for_order_not_gaps() {
    let b = Bybit::default();
    let frames = lines("bybit_v5/book_sync/linear_BTCUSDT/orderbook.jsonl");
    assert_eq!(frames.len(), 414);
    let mut t = SeqTracker::default();
    let mut last = 0;
    for (i, f) in frames.iter().enumerate() {
        let Inbound::Data { stream, seq: Some(seq) } = b.classify(f) else { panic!("frame {i}: not sequenced data") };
        assert_eq!(stream, "orderbook.200.BTCUSDT");
        assert!(seq.last > last, "frame {i}: seq not increasing");
        last = seq.last;
        assert_eq!(t.check(&stream, seq), Verdict::Deliver, "frame {i}");
    }
    assert_eq!(t.last("orderbook.200.BTCUSDT"), Some(last));
    // A replay of an already delivered frame (reconnect or rotation overlap) is dropped.
    let Inbound::Data { seq: Some(seq), .. } = b.classify(&frames[200]) else { unreachable!() };
    assert_eq!(t.check("orderbook.200.BTCUSDT", seq), Verdict::Duplicate);

    // A restart snapshot (u = 1) with a later cross sequence is delivered...
    let restart = json!({"topic": "orderbook.200.BTCUSDT", "type": "snapshot", "ts": 1, "data":
        {"s": "BTCUSDT", "b": [], "a": [], "u": 1, "seq": last + 10}});
    let Inbound::Data { seq: Some(seq), .. } = b.classify(&restart.to_string()) else { panic!("restart snapshot") };
    assert_eq!(t.check("orderbook.200.BTCUSDT", seq), Verdict::Deliver);
    // ...where tracking `u` as consecutive would take it for a restart of
    // unknown extent (a gap where nothing was lost),
    let mut by_u = SeqTracker::default();
    by_u.check("ob", Seq::single(15_077_364));
    assert!(matches!(by_u.check("ob", Seq::single(1)), Verdict::Gap { .. }));
    // and taking `seq` as consecutive reports a gap on the very first delta.
    let mut by_seq = SeqTracker::default();
    by_seq.check("ob", Seq::single(753_843_911_359));
    assert!(matches!(by_seq.check("ob", Seq::single(753_843_913_870)), Verdict::Gap { .. }));
}

#[test]
fn batches_split_25_bybit_topics_into_requests_of_at_most_10() {
    let b = Bybit::default();
    let topics: Vec<String> = (0..25).map(|i| format!("publicTrade.SYM{i:02}USDT")).collect();
    let got = batches(&b, &topics, 1);
    assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 5]);
    assert_eq!(got.concat(), topics, "every topic once, in order");
    for (i, batch) in got.iter().enumerate() {
        let req: Value = serde_json::from_str(&b.encode_subscribe(i as u64 + 1, batch)).unwrap();
        assert_eq!(req["args"].as_array().unwrap().len(), batch.len());
        assert!(b.encode_subscribe(1, batch).len() <= b.limits().max_request_bytes);
    }
    // The byte limit splits as well when it binds first.
    let tight = Bybit { max_streams_per_request: 100, ..Bybit::default() };
    let long: Vec<String> = (0..25).map(|i| format!("orderbook.1000.{}{i:02}", "X".repeat(1000))).collect();
    let split = batches(&tight, &long, 1);
    assert!(split.len() > 1);
    assert!(split.iter().all(|b| tight.encode_subscribe(1, b).len() <= tight.limits().max_request_bytes));
    assert_eq!(split.concat(), long);
}

// ---------------------------------------------------------------------------------------------
// Deribit: classification

#[test]
fn deribit_classifies_every_real_fixture() {
    let table = [
        ("deribit/book_snapshot.json", data("book.ETH-30JUL21-2800-C.raw", Some(Seq::reset(13_169_025_645)))),
        (
            "deribit/book_change.json",
            data("book.BTC-24SEP21-8000-P.raw", Some(chained(33_195_894_355, 33_195_894_164))),
        ),
        ("deribit/book_grouped.json", data("book.BTC-PERPETUAL.none.10.100ms", Some(Seq::reset(136_725_664_747)))),
        ("deribit/chart_trades.json", data("chart.trades.BTC-PERPETUAL.1", None)),
        ("deribit/quote.json", data("quote.BTC-PERPETUAL", None)),
        ("deribit/ticker_perpetual.json", data("ticker.BTC-PERPETUAL.100ms", None)),
        ("deribit/trades.json", data("trades.BTC-PERPETUAL.100ms", None)),
        ("deribit/user_portfolio.json", data("user.portfolio.any", None)),
        ("deribit/volatility_index.json", data("deribit_volatility_index.btc_usd", None)),
        ("deribit/heartbeat_test_request.json", Inbound::Reply(deribit::test_reply())),
        (
            "deribit/error_too_many_requests.json",
            Inbound::Rejected { id: Some(1), code: 10028, msg: "too_many_requests".into(), streams: vec![] },
        ),
        ("deribit/subscribe_response.json", Inbound::Ack { id: 0 }),
        ("deribit/private_buy_response.json", Inbound::Ack { id: 3 }),
        ("deribit/private_sell_response.json", Inbound::Ack { id: 4 }),
        ("deribit/private_edit_response.json", Inbound::Ack { id: 7 }),
        ("deribit/private_cancel_response.json", Inbound::Ack { id: 11 }),
    ];
    check_table(&Deribit::default(), &table);
}

#[test]
fn deribit_classifies_control_frames() {
    let test_ok = format!(r#"{{"jsonrpc":"2.0","id":{},"result":{{"version":"1.2.26"}}}}"#, deribit::TEST_ID);
    let table = [
        (r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}"#, Inbound::Pong),
        (
            r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#,
            Inbound::Reply(deribit::test_reply()),
        ),
        (r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"other"}}"#, Inbound::Unknown),
        (test_ok.as_str(), Inbound::Pong),
        (
            r#"{"jsonrpc":"2.0","id":1,"result":"ok","usIn":1,"usOut":2,"usDiff":1,"testnet":true}"#,
            Inbound::Ack { id: 1 },
        ),
        (r#"{"jsonrpc":"2.0","id":2,"result":["book.BTC-PERPETUAL.100ms"]}"#, Inbound::Ack { id: 2 }),
        // Unknown channels are dropped silently: nothing subscribed is a failure.
        (
            r#"{"jsonrpc":"2.0","id":5,"result":[]}"#,
            Inbound::Rejected {
                id: Some(5),
                code: 0,
                msg: "no channel subscribed (result: [])".into(),
                streams: vec![],
            },
        ),
        (
            r#"{"jsonrpc":"2.0","id":6,"error":{"code":13778,"message":"raw_subscriptions_not_available_for_unauthorized"}}"#,
            Inbound::Rejected {
                id: Some(6),
                code: 13778,
                msg: "raw_subscriptions_not_available_for_unauthorized".into(),
                streams: vec![],
            },
        ),
        (
            r#"{"jsonrpc":"2.0","error":{"code":11050,"message":"bad_request","data":"invalid json"}}"#,
            Inbound::Rejected { id: None, code: 11050, msg: "bad_request".into(), streams: vec![] },
        ),
        (
            r#"{"jsonrpc":"2.0","id":9,"error":{"code":-32601,"message":"Method not found"}}"#,
            Inbound::Rejected { id: Some(9), code: -32601, msg: "Method not found".into(), streams: vec![] },
        ),
        (r#"{"jsonrpc":"2.0","result":"ok"}"#, Inbound::Unknown),
        (r#"{"jsonrpc":"2.0","method":"subscription","params":{"data":{}}}"#, Inbound::Unknown),
        (r#"{"jsonrpc":"2.0","method":"something_else","params":{}}"#, Inbound::Unknown),
        ("{", Inbound::Malformed(String::new())),
    ];
    check_frames(&Deribit::default(), &table);
}

#[test]
fn deribit_encodes_set_heartbeat_subscribe_and_the_test_reply() {
    let d = Deribit::default();
    let mut n = 40;
    let frames = d.on_connect(&mut || {
        n += 1;
        n
    });
    assert_eq!(frames.len(), 1);
    let hb: Value = serde_json::from_str(&frames[0]).unwrap();
    assert_eq!(hb, json!({"jsonrpc": "2.0", "id": 41, "method": "public/set_heartbeat", "params": {"interval": 30}}));

    let chans = vec!["book.BTC-PERPETUAL.100ms".to_string()];
    let sub: Value = serde_json::from_str(&d.encode_subscribe(5, &chans)).unwrap();
    assert_eq!(sub, json!({"jsonrpc": "2.0", "id": 5, "method": "public/subscribe", "params": {"channels": chans}}));
    let unsub: Value = serde_json::from_str(&d.encode_unsubscribe(6, &chans)).unwrap();
    assert_eq!(unsub["method"], "public/unsubscribe");
    let private = vec!["user.portfolio.any".to_string(), "book.BTC-PERPETUAL.100ms".to_string()];
    let psub: Value = serde_json::from_str(&d.encode_subscribe(7, &private)).unwrap();
    assert_eq!(psub["method"], "private/subscribe");

    let reply: Value = serde_json::from_str(&deribit::test_reply()).unwrap();
    assert_eq!(reply, json!({"jsonrpc": "2.0", "id": deribit::TEST_ID, "method": "public/test", "params": {}}));
    let heartbeat = d.heartbeat();
    assert_eq!(heartbeat.client_ping, ClientPing::None);
    assert_eq!(heartbeat.interval, Duration::from_secs(30));
    assert!(heartbeat.idle_timeout > heartbeat.interval * 2);
    assert_eq!(d.auth_request(1), None);
}

/// The recorded book (snapshot + 30 changes) chains without a gap; a break in
/// `prev_change_id` is a gap of unknown size; a later snapshot resyncs silently.
#[test]
fn deribit_book_replay_chains_and_breaks() {
    let d = Deribit::default();
    let stream = "book.BTC-24SEP21-8000-P.raw";
    let mut t = SeqTracker::default();
    let frames = lines("deribit/book_sync/BTC-24SEP21-8000-P/book.jsonl");
    assert_eq!(frames.len(), 31);
    for (i, f) in frames.iter().enumerate() {
        let Inbound::Data { stream: s, seq: Some(seq) } = d.classify(f) else { panic!("frame {i}: not sequenced") };
        assert_eq!(s, stream);
        assert_eq!(t.check(stream, seq), Verdict::Deliver, "frame {i}");
    }
    assert_eq!(t.last(stream), Some(33_195_898_166));
    let note = |prev: Option<u64>, id: u64, kind: &str| {
        let mut data = json!({"type": kind, "timestamp": 1, "instrument_name": "BTC-24SEP21-8000-P",
            "change_id": id, "bids": [], "asks": []});
        if let Some(p) = prev {
            data["prev_change_id"] = json!(p);
        }
        json!({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": stream, "data": data}}).to_string()
    };
    let seq_of = |f: &str| match d.classify(f) {
        Inbound::Data { seq: Some(s), .. } => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        t.check(stream, seq_of(&note(Some(33_195_898_200), 33_195_898_250, "change"))),
        Verdict::Gap { from: 33_195_898_167, to: 33_195_898_249, missing: Missing::Unknown }
    );
    assert_eq!(t.check(stream, seq_of(&note(Some(33_195_898_250), 33_195_898_260, "change"))), Verdict::Deliver);
    // A fresh snapshot (after a resubscribe or reconnect) is a resync point, not a gap.
    assert_eq!(t.check(stream, seq_of(&note(None, 33_195_999_000, "snapshot"))), Verdict::Deliver);
    assert_eq!(t.check(stream, seq_of(&note(Some(33_195_999_000), 33_195_999_001, "change"))), Verdict::Deliver);
}

// ---------------------------------------------------------------------------------------------
// End to end: scripted servers on 127.0.0.1

type Ws = WebSocketStream<TcpStream>;

async fn listen() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/ws", l.local_addr().expect("addr"));
    (l, url)
}

async fn recv_text(ws: &mut Ws) -> Option<String> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(t)) => return Some(t.as_str().to_owned()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn send_text(ws: &mut Ws, text: String) -> bool {
    ws.send(Message::Text(text.into())).await.is_ok()
}

fn config(url: &str) -> ConnectionConfig {
    let mut cfg = ConnectionConfig::new(ConnectSpec::new(url));
    cfg.seed = Some(1);
    cfg.backoff = BackoffConfig {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
        ..BackoffConfig::default()
    };
    cfg
}

/// The next event, skipping lifecycle notes.
async fn next_event(rx: &mut EventReceiver) -> Event {
    loop {
        let ev = tokio::time::timeout(WAIT, rx.recv()).await.expect("no event within 10 s").expect("events ended");
        if !matches!(ev.kind, EventKind::StateChanged(_)) {
            return ev;
        }
    }
}

fn expect_data(ev: &Event, stream: &str, seq: Option<Seq>) -> String {
    match &ev.kind {
        EventKind::Data { stream: s, seq: q, payload, .. } if &**s == stream && *q == seq => payload.clone(),
        other => panic!("expected data on {stream} with {seq:?}, got {other:?}"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum AuthReply {
    Accept,
    Refuse,
}

/// What the scripted Bybit server does.
#[derive(Debug)]
struct BybitScript {
    /// Frames pushed after the first successful subscribe ack.
    push: Vec<String>,
    /// How `op:"auth"` is answered.
    auth: AuthReply,
    /// The first connection reads everything and never sends a byte.
    silent_first: bool,
}

/// What the scripted Bybit server saw.
#[derive(Debug, Default)]
struct BybitLog {
    conns: AtomicUsize,
    pings: AtomicUsize,
    frames: Mutex<Vec<Value>>,
}

impl BybitLog {
    fn frames(&self) -> Vec<Value> {
        self.frames.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn spawn_bybit(listener: TcpListener, script: BybitScript) -> Arc<BybitLog> {
    let log = Arc::new(BybitLog::default());
    let (script, out) = (Arc::new(script), log.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let n = log.conns.fetch_add(1, Ordering::SeqCst) + 1;
            let (script, log) = (script.clone(), log.clone());
            tokio::spawn(async move {
                if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
                    bybit_session(ws, n, &script, &log).await;
                }
            });
        }
    });
    out
}

async fn bybit_session(mut ws: Ws, conn: usize, script: &BybitScript, log: &BybitLog) {
    let mut pushed = false;
    while let Some(text) = recv_text(&mut ws).await {
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("client sent non-JSON {text:?}: {e}"));
        log.frames.lock().unwrap_or_else(|p| p.into_inner()).push(v.clone());
        let op = v["op"].as_str().unwrap_or_default();
        if op == "ping" {
            let k = log.pings.fetch_add(1, Ordering::SeqCst);
            if script.silent_first && conn == 1 {
                continue;
            }
            // Alternate the spot shape and the option/private shape.
            let pong = if k.is_multiple_of(2) {
                json!({"success": true, "ret_msg": "pong", "conn_id": "sim", "op": "ping"})
            } else {
                json!({"args": ["1672916271846"], "op": "pong"})
            };
            if !send_text(&mut ws, pong.to_string()).await {
                return;
            }
            continue;
        }
        if script.silent_first && conn == 1 {
            continue;
        }
        let reply = match op {
            "auth" => match script.auth {
                AuthReply::Accept => json!({"success": true, "ret_msg": "", "op": "auth", "conn_id": "sim"}),
                AuthReply::Refuse => {
                    json!({"success": false, "ret_msg": "Params Error", "op": "auth", "conn_id": "sim"})
                }
            },
            "subscribe" => {
                let args: Vec<&str> = v["args"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                match args.iter().find(|a| a.contains("NOPE")) {
                    Some(bad) => json!({"success": false, "ret_msg": format!("error:handler not found,topic:{bad}"),
                        "conn_id": "sim", "req_id": v["req_id"], "op": "subscribe"}),
                    None => json!({"success": true, "ret_msg": "subscribe", "conn_id": "sim",
                        "req_id": v["req_id"], "op": "subscribe"}),
                }
            }
            _ => continue,
        };
        let ok = reply["success"] == json!(true) && op == "subscribe";
        if !send_text(&mut ws, reply.to_string()).await {
            return;
        }
        if ok && !pushed {
            pushed = true;
            for f in &script.push {
                if !send_text(&mut ws, f.clone()).await {
                    return;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_end_to_end_pings_acks_data_and_a_refused_topic() {
    let (listener, url) = listen().await;
    let snapshot = fixture("bybit_v5/orderbook_snapshot.linear.json").trim().to_string();
    let delta = fixture("bybit_v5/orderbook_delta.linear.json").trim().to_string();
    let trade = fixture("bybit_v5/public_trade.linear.json").trim().to_string();
    let kline = fixture("bybit_v5/kline.linear.json").trim().to_string();
    // The delta is pushed twice: the repeat must be suppressed by its `seq`.
    let push = vec![snapshot.clone(), delta.clone(), trade.clone(), delta.clone(), kline.clone()];
    let log = spawn_bybit(listener, BybitScript { push, auth: AuthReply::Accept, silent_first: false });

    let venue = Bybit {
        ping_interval: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(800),
        ..Bybit::default()
    };
    let streams = vec!["orderbook.200.BTCUSDT".to_string(), "publicTrade.BTCUSDT".to_string()];
    let (conn, mut rx) = Connection::spawn(Native::new(), Arc::new(venue), config(&url), streams.clone()).unwrap();

    let ev = next_event(&mut rx).await;
    assert_eq!(ev, Event { conn: 0, epoch: 1, kind: EventKind::Connected });
    let ob = "orderbook.200.BTCUSDT";
    assert_eq!(expect_data(&next_event(&mut rx).await, ob, Some(bybit::ordered(753_843_911_359))), snapshot);
    assert_eq!(expect_data(&next_event(&mut rx).await, ob, Some(bybit::ordered(753_843_913_870))), delta);
    assert_eq!(expect_data(&next_event(&mut rx).await, "publicTrade.BTCUSDT", None), trade);
    // Data for a topic nobody subscribed is dropped and reported once, with its frame.
    match next_event(&mut rx).await.kind {
        EventKind::Error { msg, raw } => {
            assert!(msg.contains("kline.1.BTCUSDT") && msg.contains("did not subscribe"), "{msg}");
            assert_eq!(raw, kline);
        }
        other => panic!("expected the unsolicited kline reported, got {other:?}"),
    }
    assert_eq!(conn.snapshot().unsolicited, 1);

    // Client pings keep coming, each answered (two pong shapes): ten of them
    // take longer than the idle timeout, which answered pings keep quiet.
    let before = log.pings.load(Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + WAIT;
    while log.pings.load(Ordering::SeqCst) < before + 10 {
        assert!(tokio::time::Instant::now() < deadline, "pings stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A refused topic: the next event must be its failure, so nothing else
    // (no Unknown for a pong, no idle disconnect) happened meanwhile.
    conn.subscribe(vec!["orderbook.50.NOPEUSDT".into()]).await.unwrap();
    let ev = next_event(&mut rx).await;
    assert_eq!(
        ev.kind,
        EventKind::SubscriptionFailed {
            stream: "orderbook.50.NOPEUSDT".into(),
            code: 0,
            msg: "error:handler not found,topic:orderbook.50.NOPEUSDT".into(),
        }
    );

    let frames = log.frames();
    let subs: Vec<&Value> = frames.iter().filter(|f| f["op"] == "subscribe").collect();
    assert_eq!(subs.len(), 2, "{subs:?}");
    assert_eq!(subs[0]["args"], json!(streams));
    for s in &subs {
        let id = s["req_id"].as_str().unwrap_or_else(|| panic!("req_id must be a string: {s}"));
        assert!(id.parse::<u64>().is_ok(), "{s}");
    }
    assert!(frames.iter().filter(|f| f["op"] == "ping").all(|f| *f == json!({"op": "ping"})));
    assert_eq!(log.conns.load(Ordering::SeqCst), 1);
    assert!(tokio::time::timeout(WAIT, conn.close()).await.expect("close in time"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_silent_server_is_caught_by_the_idle_timeout_then_reconnected() {
    let (listener, url) = listen().await;
    let log = spawn_bybit(listener, BybitScript { push: Vec::new(), auth: AuthReply::Accept, silent_first: true });
    let venue = Bybit {
        ping_interval: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(300),
        ..Bybit::default()
    };
    let start = Instant::now();
    let (conn, mut rx) = Connection::spawn(Native::new(), Arc::new(venue), config(&url), Vec::new()).unwrap();

    assert_eq!(next_event(&mut rx).await, Event { conn: 0, epoch: 1, kind: EventKind::Connected });
    let ev = next_event(&mut rx).await;
    let elapsed = start.elapsed();
    match &ev.kind {
        EventKind::Disconnected { reason } => assert!(reason.contains("stale"), "{reason}"),
        other => panic!("expected the idle timeout, got {other:?}"),
    }
    assert_eq!(ev.epoch, 1);
    assert!(elapsed >= Duration::from_millis(250) && elapsed < WAIT, "idle detection after {elapsed:?}");
    assert_eq!(next_event(&mut rx).await, Event { conn: 0, epoch: 2, kind: EventKind::Reconnected });
    assert!(log.conns.load(Ordering::SeqCst) >= 2);

    // The second socket is answered and stays up across several idle timeouts.
    let pings = log.pings.load(Ordering::SeqCst);
    assert!(tokio::time::timeout(Duration::from_millis(700), rx.recv()).await.is_err(), "no event while answered");
    assert!(log.pings.load(Ordering::SeqCst) > pings);
    assert!(tokio::time::timeout(WAIT, conn.close()).await.expect("close in time"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_private_connection_authenticates_before_subscribing() {
    let (listener, url) = listen().await;
    let log = spawn_bybit(listener, BybitScript { push: Vec::new(), auth: AuthReply::Accept, silent_first: false });
    let auth = r#"{"op":"auth","args":["api-key",1700000005000,"0f3c"]}"#.to_string();
    let venue = Bybit { auth: Some(auth.clone()), ..Bybit::default() };
    let (conn, mut rx) =
        Connection::spawn(Native::new(), Arc::new(venue), config(&url), vec!["order".into(), "execution".into()])
            .unwrap();
    assert_eq!(next_event(&mut rx).await, Event { conn: 0, epoch: 1, kind: EventKind::Connected });
    let ops: Vec<Value> = log.frames().iter().map(|f| f["op"].clone()).collect();
    assert_eq!(ops, vec![json!("auth"), json!("subscribe")]);
    assert_eq!(log.frames()[0], serde_json::from_str::<Value>(&auth).unwrap());
    assert!(tokio::time::timeout(WAIT, conn.close()).await.expect("close in time"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_refused_auth_is_terminal() {
    let (listener, url) = listen().await;
    let log = spawn_bybit(listener, BybitScript { push: Vec::new(), auth: AuthReply::Refuse, silent_first: false });
    let venue = Bybit { auth: Some(r#"{"op":"auth","args":["k",1,"s"]}"#.into()), ..Bybit::default() };
    let (_conn, mut rx) =
        Connection::spawn(Native::new(), Arc::new(venue), config(&url), vec!["order".into()]).unwrap();
    assert_eq!(next_event(&mut rx).await.kind, EventKind::AuthFailed { msg: "Params Error".into() });
    let end = tokio::time::timeout(WAIT, rx.recv()).await.expect("the actor stops");
    assert_eq!(end, None);
    assert!(log.frames().iter().all(|f| f["op"] != "subscribe"));
    assert_eq!(log.conns.load(Ordering::SeqCst), 1);
}

/// What the scripted Deribit server observed, in order.
#[derive(Debug, PartialEq)]
enum Seen {
    /// The first frame: method and heartbeat interval.
    First(String, Value),
    /// A `public/test` after our `test_request`: its id and params.
    Test(Value, Value),
    /// A subscribe request's channels.
    Subscribe(Value),
}

fn book(channel: &str, kind: &str, change_id: u64, prev: Option<u64>) -> String {
    let mut data = json!({"type": kind, "timestamp": 1_700_000_000_000u64, "instrument_name": "BTC-PERPETUAL",
        "change_id": change_id, "bids": [["new", 50_000.0, 10.0]], "asks": []});
    if let Some(p) = prev {
        data["prev_change_id"] = json!(p);
    }
    json!({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}}).to_string()
}

async fn deribit_session(mut ws: Ws, seen: mpsc::UnboundedSender<Seen>) {
    let Some(first) = recv_text(&mut ws).await else { return };
    let v: Value = serde_json::from_str(&first).expect("JSON");
    let _ = seen.send(Seen::First(v["method"].as_str().unwrap_or_default().into(), v["params"]["interval"].clone()));
    if v["method"] != "public/set_heartbeat" {
        return; // the test fails on the report above
    }
    let ok =
        json!({"jsonrpc": "2.0", "id": v["id"], "result": "ok", "usIn": 1, "usOut": 2, "usDiff": 1, "testnet": true});
    for frame in [
        ok,
        json!({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "heartbeat"}}),
        json!({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}),
    ] {
        if !send_text(&mut ws, frame.to_string()).await {
            return;
        }
    }
    while let Some(text) = recv_text(&mut ws).await {
        let v: Value = serde_json::from_str(&text).expect("JSON");
        let mut out = Vec::new();
        match v["method"].as_str().unwrap_or_default() {
            "public/test" => {
                let _ = seen.send(Seen::Test(v["id"].clone(), v["params"].clone()));
                out.push(json!({"jsonrpc": "2.0", "id": v["id"], "result": {"version": "1.2.26"}}).to_string());
            }
            "public/subscribe" => {
                let chans = v["params"]["channels"].clone();
                let _ = seen.send(Seen::Subscribe(chans.clone()));
                out.push(json!({"jsonrpc": "2.0", "id": v["id"], "result": chans}).to_string());
                let ch = chans[0].as_str().unwrap_or_default();
                out.push(book(ch, "snapshot", 1000, None));
                out.push(book(ch, "change", 1005, Some(1000)));
                out.push(book(ch, "change", 1010, Some(1005)));
                out.push(book(ch, "change", 1030, Some(1020))); // 1010 → 1020 lost
                out.push(book(ch, "change", 1040, Some(1030)));
            }
            _ => {}
        }
        for f in out {
            if !send_text(&mut ws, f).await {
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deribit_end_to_end_heartbeat_duty_subscribe_and_a_change_id_break() {
    let (listener, url) = listen().await;
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tx = seen_tx.clone();
            tokio::spawn(async move {
                if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
                    deribit_session(ws, tx).await;
                }
            });
        }
    });
    let venue = Deribit { heartbeat_secs: 10, idle_timeout: WAIT, ..Deribit::default() };
    let ch = "book.BTC-PERPETUAL.100ms";
    let (conn, mut rx) = Connection::spawn(Native::new(), Arc::new(venue), config(&url), vec![ch.into()]).unwrap();

    assert_eq!(next_event(&mut rx).await, Event { conn: 0, epoch: 1, kind: EventKind::Connected });
    expect_data(&next_event(&mut rx).await, ch, Some(Seq::reset(1000)));
    expect_data(&next_event(&mut rx).await, ch, Some(chained(1005, 1000)));
    expect_data(&next_event(&mut rx).await, ch, Some(chained(1010, 1005)));
    let gap = next_event(&mut rx).await;
    assert_eq!(gap.kind, EventKind::Gap { stream: ch.into(), from: 1011, to: 1029, missing: Missing::Unknown });
    expect_data(&next_event(&mut rx).await, ch, Some(chained(1030, 1020)));
    expect_data(&next_event(&mut rx).await, ch, Some(chained(1040, 1030)));

    let mut got = Vec::new();
    while got.len() < 3 {
        got.push(tokio::time::timeout(WAIT, seen.recv()).await.expect("server report in time").expect("server alive"));
    }
    assert_eq!(got[0], Seen::First("public/set_heartbeat".into(), json!(10)), "set_heartbeat must come first");
    assert!(got.contains(&Seen::Subscribe(json!([ch]))), "{got:?}");
    assert!(got.contains(&Seen::Test(json!(deribit::TEST_ID), json!({}))), "test_request unanswered: {got:?}");

    // The plain heartbeat, the set_heartbeat "ok" and the public/test result
    // produced no Unknown or Error events: the queue holds nothing more.
    assert!(tokio::time::timeout(Duration::from_millis(200), rx.recv()).await.is_err(), "unexpected event");
    assert!(tokio::time::timeout(WAIT, conn.close()).await.expect("close in time"));
}
