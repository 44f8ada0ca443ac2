//! The subcommands that run a feed: each file is a thin layer over the
//! library (it parses arguments, starts things, prints).

pub(crate) mod bench;
pub(crate) mod demo;
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

/// The next event of whichever feed has one (`None` when one has shut down
/// or neither runs): the Binance `Feed` and the `BybitFeed` side by side.
pub(crate) async fn next_event(
    binance: &mut ferrofeed::feed::Feed,
    bybit: &mut ferrofeed::bybit_feed::BybitFeed,
    binance_on: bool,
    bybit_on: bool,
) -> Option<ferrofeed::model::event::Event> {
    tokio::select! {
        ev = binance.next(), if binance_on => ev,
        ev = bybit.next(), if bybit_on => ev,
        else => None,
    }
}
