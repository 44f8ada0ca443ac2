//! `ferrofeed demo`: the embedded simulator, the client, faults injected, and
//! the recovery shown.

use std::time::Duration;

use anyhow::Context;
use ferrofeed_sim::{MarketKind, Sim, SimConfig};
use ferrofeed_venues::binance::{Market, normalize};

use crate::now_ns;

#[derive(Debug, Default)]
struct DemoTally {
    events: std::collections::BTreeMap<&'static str, u64>,
    trades: u64,
    gaps: u64,
    missing: u64,
    reconnects: u64,
    faults: Vec<&'static str>,
    last_price: Option<String>,
    first_id: Option<u64>,
    last_id: Option<u64>,
    btc_trades: u64,
    btc_missing: u64,
}

pub(crate) async fn run_demo(duration: Duration) -> anyhow::Result<()> {
    use ferrofeed::binance::{BinanceClient, BinanceConfig, Environment};
    use ferrofeed::engine::{EventKind, Missing};
    use ferrofeed_model::event::EventKind as Norm;
    use ferrofeed_sim::KillMode;

    let mut cfg = SimConfig::all_markets();
    cfg.markets.truncate(2);
    for m in &mut cfg.markets {
        m.timing.actions_per_sec = 60.0;
    }
    let sim = Sim::start(cfg).await.context("starting the simulator")?;
    let spot = sim.market(MarketKind::Spot).context("spot market")?.clone();
    let usdm = sim.market(MarketKind::UsdM).context("usdm market")?.clone();
    let mut client_cfg = BinanceConfig {
        environment: Environment::Custom { ws: spot.ws_url(), rest: spot.rest_url() },
        ..BinanceConfig::default()
    };
    client_cfg.backoff.initial = Duration::from_millis(200);
    client_cfg.overrides.insert(Market::UsdM, Environment::Custom { ws: usdm.ws_url(), rest: usdm.rest_url() });
    let (mut client, mut events) = BinanceClient::new(client_cfg);
    eprintln!("ferrofeed demo: simulator on {} (spot) and {} (usdm); no network needed", spot.ws_url(), usdm.ws_url());
    let n = client.load_instruments(Market::Spot).await.context("loading spot instruments")?;
    eprintln!("loaded {n} spot instruments from exchangeInfo");
    let spot_streams: Vec<String> =
        ["btcusdt@trade", "ethusdt@trade", "btcusdt@depth@100ms", "btcusdt@bookTicker", "!miniTicker@arr"]
            .map(String::from)
            .to_vec();
    let usdm_streams: Vec<String> = ["btcusdt@aggTrade", "btcusdt@markPrice@1s"].map(String::from).to_vec();
    client.subscribe(Market::Spot, &spot_streams).await?;
    client.subscribe(Market::UsdM, &usdm_streams).await?;
    eprintln!(
        "subscribed {} streams over {} connections; injecting a fault every 3 s (kill, dropped messages, malformed frame)",
        spot_streams.len() + usdm_streams.len(),
        client.active_shards()
    );

    let mut t = DemoTally::default();
    let start = tokio::time::Instant::now();
    let end = start + duration;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut fault_at = start + Duration::from_secs(3);
    let mut fault_no = 0usize;
    use futures_util::StreamExt;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(end) => break,
            _ = tokio::time::sleep_until(fault_at) => {
                fault_at += Duration::from_secs(3);
                let name = match fault_no % 3 {
                    0 => { spot.kill_all(KillMode::Reset); "kill (TCP reset) on spot" }
                    1 => { spot.drop_next("btcusdt@trade", 5); "5 dropped BTCUSDT trades" }
                    _ => { spot.send_malformed(None); "malformed frame on spot" }
                };
                fault_no += 1;
                t.faults.push(name);
                println!("  fault injected: {name}");
            }
            _ = tick.tick() => {
                println!(
                    "t={:>4.1}s connections={} trades={} gaps={} (messages {}) reconnects={} last BTCUSDT {}",
                    start.elapsed().as_secs_f64(), client.active_shards(), t.trades, t.gaps, t.missing, t.reconnects,
                    t.last_price.as_deref().unwrap_or("-")
                );
            }
            ev = events.next() => {
                let Some(ev) = ev else { break };
                let key = match &ev.kind {
                    EventKind::Data { stream, payload, .. } => {
                        let market = if usdm_streams.contains(stream) { Market::UsdM } else { Market::Spot };
                        for e in normalize::decode(market, payload, now_ns()).unwrap_or_default() {
                            if let Norm::Trade(tr) = &e.kind {
                                t.trades += 1;
                                if stream == "btcusdt@trade" {
                                    t.last_price = Some(tr.price.to_string());
                                    let id: u64 = tr.trade_id.parse().unwrap_or(0);
                                    t.first_id.get_or_insert(id);
                                    t.last_id = Some(id);
                                    t.btc_trades += 1;
                                }
                            }
                        }
                        "data"
                    }
                    EventKind::Gap { stream, missing, .. } => {
                        t.gaps += 1;
                        if let Missing::Count(n) = missing {
                            t.missing += n;
                            if stream == "btcusdt@trade" { t.btc_missing += n; }
                        }
                        println!("  gap reported: {:?}", ev.kind);
                        "gap"
                    }
                    EventKind::Reconnected => { t.reconnects += 1; println!("  reconnected (connection {}, epoch {})", ev.conn, ev.epoch); "reconnected" }
                    EventKind::Disconnected { reason } => { println!("  disconnected: {reason}"); "disconnected" }
                    EventKind::Error { msg, .. } => { println!("  error reported, connection kept: {msg}"); "error" }
                    EventKind::Connected => "connected",
                    EventKind::Rotated => "rotated",
                    EventKind::SubscriptionFailed { .. } => "subscription_failed",
                    EventKind::GaveUp { .. } => "gave_up",
                    EventKind::AuthFailed { .. } => "auth_failed",
                    EventKind::Unknown { .. } => "unknown",
                    EventKind::StateChanged(_) => "state",
                };
                *t.events.entry(key).or_default() += 1;
            }
        }
    }
    // Every BTCUSDT trade id between the first and last seen was delivered or
    // reported in a gap: nothing went missing silently.
    let span = match (t.first_id, t.last_id) {
        (Some(a), Some(b)) => b - a + 1,
        _ => 0,
    };
    let unreported = span.saturating_sub(t.btc_trades + t.btc_missing);
    client.disconnect_all().await;
    let summary = serde_json::json!({
        "duration_s": duration.as_secs_f64(),
        "trades": t.trades,
        "gaps": t.gaps,
        "missing_messages_reported": t.missing,
        "reconnects": t.reconnects,
        "faults_injected": t.faults,
        "recovered": t.reconnects > 0 || t.gaps > 0,
        "btcusdt_trade_ids": {"span": span, "delivered": t.btc_trades, "in_gaps": t.btc_missing, "unreported": unreported},
        "events": t.events,
        "book": "synced order books arrive with the books issue",
    });
    println!("{summary}");
    sim.shutdown().await;
    Ok(())
}
