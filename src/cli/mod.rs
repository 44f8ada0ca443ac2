//! The subcommands that run a feed: each file is a thin layer over the
//! library (it parses arguments, starts things, prints).

pub(crate) mod bench;
pub(crate) mod chaos;
pub(crate) mod demo;
pub(crate) mod export;
pub(crate) mod order;
pub(crate) mod record;
pub(crate) mod signal;
pub(crate) mod stream;
pub(crate) mod tail;
pub(crate) mod user;

/// Starts the Prometheus endpoint when `addr` is given and prints its URL on
/// standard error as `{"metrics":"http://ADDR/metrics"}`.
pub(crate) async fn start_metrics(
    addr: Option<std::net::SocketAddr>,
    stats: ferrofeed::feed::SharedStats,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    use anyhow::Context;
    let Some(addr) = addr else { return Ok(None) };
    let (bound, task) = ferrofeed::metrics::serve(addr, stats)
        .await
        .with_context(|| format!("binding the metrics endpoint on {addr}"))?;
    eprintln!("{}", serde_json::json!({ "metrics": format!("http://{bound}/metrics") }));
    Ok(Some(task))
}

/// Parses `VENUE:MARKET` (`binance:usdm`, `bybit:linear`) through the
/// venue registry.
pub(crate) fn parse_market(s: &str) -> anyhow::Result<ferrofeed::client::MarketId> {
    Ok(ferrofeed::venues::registry::parse_market(s)?)
}

/// The market `market` of the venue named `venue`, through the registry.
pub(crate) fn venue_market(venue: &str, market: &str) -> anyhow::Result<ferrofeed::client::MarketId> {
    Ok(ferrofeed::venues::registry::by_name(venue)?.parse_market(market)?)
}

/// Parses `--url VENUE:MARKET=URL` (`binance:spot=ws://127.0.0.1:9400`):
/// that market connects to URL (REST on the same host and port).
pub(crate) fn parse_url_override(s: &str) -> Result<(ferrofeed::client::MarketId, String), String> {
    let (market, url) = s.split_once('=').ok_or_else(|| format!("{s:?} is not VENUE:MARKET=URL"))?;
    let market = parse_market(market).map_err(|e| format!("{s:?}: {e:#}"))?;
    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
        return Err(format!("{s:?}: the URL must start with ws:// or wss://"));
    }
    Ok((market, url.trim_end_matches('/').to_string()))
}

/// The simulated markets behind `markets`: one simulator market per client
/// market, each on its own port.
pub(crate) fn sim_config_for(markets: &[ferrofeed::client::MarketId]) -> anyhow::Result<ferrofeed_sim::SimConfig> {
    Ok(ferrofeed::simulated::config_for(markets)?)
}

/// The client environment of every simulated market, keyed by the client's
/// market.
pub(crate) fn sim_overrides(
    sim: &ferrofeed_sim::Sim,
) -> anyhow::Result<std::collections::BTreeMap<ferrofeed::client::MarketId, ferrofeed::client::Environment>> {
    Ok(ferrofeed::simulated::environments(sim)?)
}
