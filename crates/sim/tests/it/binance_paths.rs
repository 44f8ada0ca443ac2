//! Binance stream paths take any name, as the venue does: a client may
//! connect to `/ws/<anything>` or `/stream?streams=<anything>` and then
//! `SUBSCRIBE`; an unknown or ill-formed name simply delivers nothing.

use crate::common::{connect, next_where, send, start};
use ferrofeed_sim::{MarketConfig, MarketKind};
use serde_json::json;

fn busy() -> MarketConfig {
    let mut m = MarketConfig::new(MarketKind::Spot);
    m.symbols.truncate(1);
    m.timing.actions_per_sec = 200.0;
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_stream_name_upgrades_and_subscribe_decides_what_flows() {
    let (_sim, m) = start(busy()).await;

    // A raw connection named after no stream: accepted, subscribed to nothing.
    let mut raw = connect(&format!("{}/ws/not_a_stream", m.ws_url())).await;
    send(&mut raw, json!({"method": "LIST_SUBSCRIPTIONS", "id": 1})).await;
    assert_eq!(next_where(&mut raw, |v| v.get("id").is_some()).await, json!({"result": [], "id": 1}));
    send(&mut raw, json!({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 2})).await;
    assert_eq!(next_where(&mut raw, |v| v.get("id").is_some()).await, json!({"result": null, "id": 2}));
    let t = next_where(&mut raw, |v| v.get("e").is_some()).await;
    assert_eq!((t["e"].as_str(), t["s"].as_str()), (Some("trade"), Some("BTCUSDT")), "{t}");

    // A combined connection named after no stream: its envelope once subscribed.
    let mut comb = connect(&format!("{}/stream?streams=foo", m.ws_url())).await;
    send(&mut comb, json!({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 1})).await;
    assert_eq!(next_where(&mut comb, |v| v.get("id").is_some()).await, json!({"result": null, "id": 1}));
    let a = next_where(&mut comb, |v| v.get("stream").is_some()).await;
    assert_eq!((a["stream"].as_str(), a["data"]["e"].as_str()), (Some("btcusdt@aggTrade"), Some("aggTrade")), "{a}");

    // Well-formed names in the URL still stream from the handshake on; the
    // others are ignored.
    let mut mixed = connect(&format!("{}/stream?streams=BTCUSDT@trade/btcusdt@trade/x", m.ws_url())).await;
    let d = next_where(&mut mixed, |v| v.get("stream").is_some()).await;
    assert_eq!(d["stream"], "btcusdt@trade");
    send(&mut mixed, json!({"method": "LIST_SUBSCRIPTIONS", "id": 3})).await;
    assert_eq!(next_where(&mut mixed, |v| v.get("id").is_some()).await, json!({"result": ["btcusdt@trade"], "id": 3}));
    assert_eq!(m.stats().counters.connections_accepted, 3);
}
