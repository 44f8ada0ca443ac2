//! Binance connection pools against the simulator: sharding under the caps,
//! reference counting, exhaustion, reconnect storms and a property test over
//! random subscribe / unsubscribe / kill / delayed-ack sequences. Timings are
//! printed, never asserted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use ferrofeed::client::{Client, ClientConfig, ClientError, Environment};
use ferrofeed::engine::{BackoffConfig, PoolError};
use ferrofeed::venues::binance::Market;
use ferrofeed_sim::{KillMode, MarketConfig, MarketHandle, MarketKind, Sim, SimConfig, SymbolSpec};
use proptest::prelude::*;

async fn start(kind: MarketKind, symbols: usize) -> (Sim, MarketHandle) {
    let mut m = MarketConfig::new(kind);
    m.symbols = SymbolSpec::synthetic(symbols);
    m.timing.actions_per_sec = 0.05;
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.markets()[0].clone();
    (sim, h)
}

fn market_of(kind: MarketKind) -> Market {
    match kind {
        MarketKind::Spot => Market::Spot,
        MarketKind::UsdM => Market::UsdM,
        MarketKind::CoinM => Market::CoinM,
        MarketKind::Options => Market::Options,
    }
}

fn config(sim: &MarketHandle) -> ClientConfig {
    ClientConfig {
        environment: Environment::Custom { ws: sim.ws_url(), rest: sim.rest_url() },
        backoff: BackoffConfig {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(2),
            ..BackoffConfig::default()
        },
        seed: Some(11),
        ..ClientConfig::default()
    }
}

async fn settle(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.is_settled() {
        assert!(Instant::now() < deadline, "subscriptions did not settle: {:?}", client.snapshots().len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What the simulator holds: stream → number of connections holding it.
fn server_side(sim: &MarketHandle) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for c in sim.connections() {
        for s in c.subscriptions {
            *m.entry(s).or_default() += 1;
        }
    }
    m
}

/// The lower bound the simulator's limits allow for subscribing: control
/// messages per connection beyond what fits in the first message window, at the
/// venue's rate; connections proceed in parallel.
fn floor_seconds(client: &Client, per_request: usize, msgs_per_sec: usize) -> f64 {
    client
        .snapshots()
        .iter()
        .map(|s| {
            let in_url = s.url.split_once("?streams=").map_or(0, |(_, q)| q.split('/').count());
            let msgs = (s.streams.len() - in_url).div_ceil(per_request);
            msgs.saturating_sub(msgs_per_sec) as f64 / msgs_per_sec as f64
        })
        .fold(0.0, f64::max)
}

async fn shard_many(kind: MarketKind, symbols: usize, kinds: &[&str], expect_conns: usize) {
    shard_many_with(kind, symbols, kinds, expect_conns, 8000).await;
}

async fn shard_many_with(kind: MarketKind, symbols: usize, kinds: &[&str], expect_conns: usize, url_bytes: usize) {
    let (_sim, sim) = start(kind, symbols).await;
    let market = market_of(kind);
    let (mut client, _events) = Client::new(ClientConfig { max_url_bytes: Some(url_bytes), ..config(&sim) });
    let streams: Vec<String> = sim
        .config()
        .symbols
        .iter()
        .flat_map(|s| kinds.iter().map(move |k| format!("{}@{k}", s.name.to_lowercase())))
        .collect();
    let t = Instant::now();
    client.subscribe(market, &streams).await.unwrap();
    settle(&client).await;
    let took = t.elapsed().as_secs_f64();
    let limit = sim.config().limits.max_incoming_msgs;
    let floor = floor_seconds(&client, 200, limit);
    println!(
        "{kind:?}: {} streams over {} connections in {took:.3} s (floor from the simulator's limits: {floor:.3} s; URL up to {url_bytes} B)",
        streams.len(),
        client.active_shards()
    );
    assert_eq!(client.active_shards_for(market), expect_conns);
    let held = server_side(&sim);
    assert_eq!(held.len(), streams.len(), "every stream held server-side");
    assert!(held.values().all(|n| *n == 1), "each stream on exactly one connection");
    let c = sim.stats().counters;
    assert_eq!(c.rate_limit_closes, 0);
    assert_eq!(c.over_cap_rejections, 0);
    assert!(c.max_streams_on_a_connection as usize <= sim.config().limits.max_streams_per_conn);
    assert_eq!(c.connection_attempts_rejected, 0);
    let stats = client.rate_limit_stats();
    assert!(stats.streams.iter().all(|(_, n, cap)| n <= cap));
    assert!(stats.messages.iter().all(|(_, used, limit)| used <= limit));
    assert!(client.is_connected() && client.is_connected_for(market));
    client.disconnect_all().await;
    assert_eq!(client.active_shards(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_spot_streams_take_five_connections_within_the_limits() {
    shard_many(MarketKind::Spot, 1000, &["trade", "aggTrade", "bookTicker", "depth", "depth@100ms"], 5).await;
}

/// The same without streams in the URL: every stream needs a SUBSCRIBE, paced
/// under the venue's message limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_spot_streams_by_subscribe_messages_only() {
    shard_many_with(MarketKind::Spot, 1000, &["trade", "aggTrade", "bookTicker", "depth", "depth@100ms"], 5, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_usdm_book_streams_take_five_public_connections() {
    shard_many(MarketKind::UsdM, 1000, &["bookTicker", "depth", "depth@100ms", "depth@500ms", "depth5"], 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_shard_at_two_hundred_streams_per_connection() {
    shard_many(
        MarketKind::Options,
        200,
        &["optionTrade", "bookTicker", "depth@100ms", "depth5@100ms", "optionTicker"],
        5,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usdm_streams_are_routed_to_public_and_market_endpoints() {
    let (_sim, sim) = start(MarketKind::UsdM, 3).await;
    let (mut client, _events) = Client::new(config(&sim));
    let s = ["s0000usdt@depth@100ms", "s0000usdt@aggTrade", "s0001usdt@markPrice@1s", "s0001usdt@bookTicker"]
        .map(String::from);
    client.subscribe(Market::UsdM, &s).await.unwrap();
    settle(&client).await;
    let mut urls: Vec<String> = client.urls().into_iter().map(|(_, u)| u).collect();
    urls.sort();
    assert_eq!(urls.len(), 2);
    assert!(urls[0].contains("/market/stream?streams="), "{urls:?}");
    assert!(urls[1].contains("/public/stream?streams="), "{urls:?}");
    assert!(client.is_sandbox());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_exhaustion_is_a_clear_error_and_freed_capacity_is_reused() {
    let (_sim, sim) = start(MarketKind::Spot, 20).await;
    let mut cfg = config(&sim);
    cfg.max_streams_per_conn = Some(10);
    cfg.max_connections_per_pool = Some(1);
    let (mut client, _events) = Client::new(cfg);
    let streams: Vec<String> = (0..11).map(|i| format!("s{i:04}usdt@trade")).collect();
    let err = client.subscribe(Market::Spot, &streams).await.unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::Pool(PoolError::Exhausted { connections: 1, per_connection: 10, requested: 11, free: 10 })
        ),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("pool exhausted: 1 connections × 10 streams"), "{err}");
    assert!(client.subscriptions().is_empty(), "a refused request changes nothing");
    client.subscribe(Market::Spot, &streams[..10]).await.unwrap();
    client.unsubscribe(Market::Spot, &streams[..1]).await.unwrap();
    client.subscribe(Market::Spot, &streams[10..]).await.unwrap();
    settle(&client).await;
    assert_eq!(client.active_shards(), 1);
    let held = server_side(&sim);
    assert!(!held.contains_key(&streams[0]) && held.contains_key(&streams[10]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_symbols_are_refused_before_anything_is_sent() {
    let (_sim, sim) = start(MarketKind::Spot, 5).await;
    let (mut client, _events) = Client::new(config(&sim));
    assert_eq!(client.load_instruments(Market::Spot).await.unwrap(), 5);
    let reg = client.instruments(Market::Spot).unwrap();
    let inst = reg.get("S0003USDT").unwrap();
    assert_eq!(inst.tick_size.unwrap().normalize().to_string(), "0.0001");
    assert_eq!(inst.step_size.unwrap().normalize().to_string(), "0.01");
    let err = client.subscribe(Market::Spot, &["s0000usdt@trade".into(), "nopeusdt@trade".into()]).await.unwrap_err();
    assert!(matches!(&err, ClientError::UnknownSymbol(u) if u.symbol == "NOPEUSDT"), "{err:?}");
    assert!(err.to_string().contains("not listed in exchangeInfo"), "{err}");
    // Refused before anything was planned: no connection exists to connect.
    assert!(client.snapshots().is_empty(), "no connection was started");
    assert_eq!(sim.stats().counters.connections_accepted, 0, "nothing was sent");
    assert!(client.subscriptions().is_empty());
    client.subscribe(Market::Spot, &["s0000usdt@trade".into(), "!miniTicker@arr".into()]).await.unwrap();
    settle(&client).await;
    let stats = client.rate_limit_stats();
    assert!(
        stats
            .rest_weight
            .iter()
            .any(|(m, used, limit)| *m == Market::Spot.into() && *used == Some(20) && *limit == 6000),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_of_a_stream_cost_one_subscription() {
    let (_sim, sim) = start(MarketKind::Spot, 5).await;
    let (mut client, _events) = Client::new(config(&sim));
    let a = vec!["s0000usdt@trade".to_string()];
    client.subscribe(Market::Spot, &a).await.unwrap();
    client.subscribe(Market::Spot, &a).await.unwrap();
    settle(&client).await;
    assert_eq!(server_side(&sim).get(&a[0]), Some(&1));
    client.unsubscribe(Market::Spot, &a).await.unwrap();
    settle(&client).await;
    assert_eq!(server_side(&sim).get(&a[0]), Some(&1), "one consumer left");
    client.unsubscribe(Market::Spot, &a).await.unwrap();
    settle(&client).await;
    // The venue applies the unsubscribe when it reads it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server_side(&sim).contains_key(&a[0]) {
        assert!(Instant::now() < deadline, "the venue still holds {}", a[0]);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(client.subscriptions_for(Market::Spot).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_storm_restores_every_subscription_without_429_or_1008() {
    let (_sim, sim) = start(MarketKind::Spot, 40).await;
    let mut cfg = config(&sim);
    cfg.max_streams_per_conn = Some(10);
    let (mut client, _events) = Client::new(cfg);
    let streams: Vec<String> = sim
        .config()
        .symbols
        .iter()
        .flat_map(|s| {
            ["trade", "aggTrade", "bookTicker", "depth", "depth@100ms"]
                .map(|k| format!("{}@{k}", s.name.to_lowercase()))
        })
        .collect();
    client.subscribe(Market::Spot, &streams).await.unwrap();
    settle(&client).await;
    assert_eq!(client.active_shards(), 20);
    let before: BTreeSet<u64> = sim.connections().iter().map(|c| c.id).collect();
    assert_eq!(sim.kill_all(KillMode::Reset), 20);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let conns = sim.connections();
        if conns.len() == 20 && conns.iter().all(|c| !before.contains(&c.id)) && client.is_settled() {
            break;
        }
        assert!(Instant::now() < deadline, "storm not recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held = server_side(&sim);
    assert_eq!(held.keys().cloned().collect::<BTreeSet<_>>(), streams.iter().cloned().collect::<BTreeSet<_>>());
    let c = sim.stats().counters;
    assert_eq!((c.connection_attempts_rejected, c.rate_limit_closes), (0, 0));
    let opened: BTreeSet<u64> = sim.connections().iter().map(|c| c.opened_ms).collect();
    println!("storm: 20 reconnects opened over {} distinct ms", opened.len());
    assert!(opened.len() > 1, "first attempts are jittered, not simultaneous");
}

/// One random operation on the pool or the simulator.
#[derive(Debug, Clone)]
enum Op {
    Subscribe(Vec<usize>),
    Unsubscribe(Vec<usize>),
    Kill(usize),
    AckDelay(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec(0usize..30, 1..8).prop_map(Op::Subscribe),
        3 => proptest::collection::vec(0usize..30, 1..8).prop_map(Op::Unsubscribe),
        1 => (0usize..8).prop_map(Op::Kill),
        1 => (0u64..60).prop_map(Op::AckDelay),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// After quiescence, the simulator's server-side subscriptions equal the
    /// desired set, each stream once, and no connection ever exceeded its cap.
    #[test]
    fn server_side_subscriptions_converge_to_the_desired_set(ops in proptest::collection::vec(op(), 1..14)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let (_sim, sim) = start(MarketKind::Spot, 10).await;
            let mut cfg = config(&sim);
            cfg.max_streams_per_conn = Some(4);
            cfg.backoff.initial = Duration::from_millis(20);
            let (mut client, _events) = Client::new(cfg);
            let universe: Vec<String> = sim
                .config()
                .symbols
                .iter()
                .flat_map(|s| ["trade", "aggTrade", "bookTicker"].map(|k| format!("{}@{k}", s.name.to_lowercase())))
                .collect();
            let mut refs: BTreeMap<String, usize> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Subscribe(ix) => {
                        let s: Vec<String> = ix.iter().map(|i| universe[*i].clone()).collect();
                        client.subscribe(Market::Spot, &s).await.unwrap();
                        for x in s { *refs.entry(x).or_default() += 1; }
                    }
                    Op::Unsubscribe(ix) => {
                        let s: Vec<String> = ix.iter().map(|i| universe[*i].clone()).collect();
                        client.unsubscribe(Market::Spot, &s).await.unwrap();
                        for x in s {
                            if let Some(n) = refs.get_mut(&x) {
                                *n -= 1;
                                if *n == 0 { refs.remove(&x); }
                            }
                        }
                    }
                    Op::Kill(k) => {
                        let conns = sim.connections();
                        if !conns.is_empty() { sim.kill(conns[k % conns.len()].id, KillMode::Reset); }
                    }
                    Op::AckDelay(ms) => sim.set_ack_delay(Duration::from_millis(ms)),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            sim.set_ack_delay(Duration::ZERO);
            settle(&client).await;
            // Let in-flight kills and resubscriptions finish.
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let held = server_side(&sim);
                let want: BTreeSet<String> = refs.keys().cloned().collect();
                let ok = held.keys().cloned().collect::<BTreeSet<_>>() == want && held.values().all(|n| *n == 1);
                if ok && client.is_settled() { break; }
                assert!(Instant::now() < deadline, "did not converge: held {held:?}, want {want:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(client.subscriptions_for(Market::Spot), refs.keys().cloned().collect::<Vec<_>>());
            let c = sim.stats().counters;
            assert!(c.max_streams_on_a_connection <= 4, "cap exceeded: {}", c.max_streams_on_a_connection);
            assert_eq!(c.rate_limit_closes, 0);
        });
    }
}
