//! The `ferrofeed` command.
//!
//! Subcommands available now: `sim` (the exchange simulator) and `demo` (until
//! the connection engine lands: the simulator plus a short printout of what it
//! produced). `stream`, `record`, `replay`, `decode`, `book` and `bench` arrive
//! with their issues.

#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use ferrofeed_sim::{LoadConfig, MarketConfig, MarketKind, Sim, SimConfig, SymbolSpec};

#[derive(Debug, Parser)]
#[command(name = "ferrofeed", version, about = "Resilient, lossless crypto-exchange WebSocket feeds")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the Binance exchange simulator on loopback until Ctrl-C.
    ///
    /// Prints one JSON line per market with its WebSocket and REST base URLs, then
    /// serves. Fault injection and ground truth: the /admin API on each port
    /// (docs/sim.md).
    ///
    /// Example: ferrofeed sim --port-base 9400 --seed 7 --markets spot,usdm
    #[command(verbatim_doc_comment)]
    Sim(SimArgs),
    /// Show the system working offline: runs the simulator and prints what it produced.
    ///
    /// Example: ferrofeed demo --duration 5s
    #[command(verbatim_doc_comment)]
    Demo {
        /// How long to run, e.g. `10s`, `500ms`, `2m`.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        duration: Duration,
    },
}

#[derive(Debug, clap::Args)]
struct SimArgs {
    /// First port; markets get consecutive ports in the order spot, usdm, coinm, options.
    /// Default: free ports chosen by the OS.
    #[arg(long)]
    port_base: Option<u16>,
    /// Seed of the market-data generator (same seed, same data sequence).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Markets to serve, comma separated: spot, usdm, coinm, options.
    #[arg(long, value_delimiter = ',', default_value = "spot,usdm,coinm,options")]
    markets: Vec<String>,
    /// Replace the default symbols with N synthetic ones (S0000USDT, ...).
    #[arg(long)]
    synthetic_symbols: Option<usize>,
    /// Multiply every data cadence (0.1 = ten times faster).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Serve a load stream `loadusdt@trade` of N sequenced frames on every market.
    #[arg(long)]
    load_messages: Option<u64>,
    /// Load stream rate in frames per second (default: as fast as the client reads).
    #[arg(long, requires = "load_messages")]
    load_rate: Option<u64>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).map(|i| s.split_at(i)).unwrap_or((s, "s"));
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}: expected e.g. 10s, 500ms, 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit {unit:?} in {s:?}: use ms, s, m or h")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn sim_config(a: &SimArgs) -> anyhow::Result<SimConfig> {
    if !(a.time_scale > 0.0 && a.time_scale.is_finite()) {
        bail!("--time-scale must be a positive number, got {}", a.time_scale);
    }
    let mut markets = Vec::new();
    for name in &a.markets {
        let kind = MarketKind::from_name(name.trim())
            .with_context(|| format!("unknown market {name:?}: expected spot, usdm, coinm or options"))?;
        let mut m = MarketConfig::new(kind);
        if let Some(n) = a.synthetic_symbols {
            m.symbols = SymbolSpec::synthetic(n);
        }
        m.timing.scale = a.time_scale;
        if let Some(n) = a.load_messages {
            m.load = Some(LoadConfig::new(n, a.load_rate));
        }
        markets.push(m);
    }
    let mut cfg = SimConfig::all_markets();
    cfg.markets = markets;
    cfg.seed = a.seed;
    if let Some(p) = a.port_base {
        cfg = cfg.with_port_base(p);
    }
    Ok(cfg)
}

async fn run_sim(a: SimArgs) -> anyhow::Result<()> {
    let sim = Sim::start(sim_config(&a)?).await.context("binding the simulator's ports")?;
    for m in sim.markets() {
        println!(
            "{}",
            serde_json::json!({"venue": "binance", "market": m.kind().name(), "ws": m.ws_url(), "rest": m.rest_url()})
        );
    }
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    sim.shutdown().await;
    Ok(())
}

async fn run_demo(duration: Duration) -> anyhow::Result<()> {
    let mut cfg = SimConfig::all_markets();
    cfg.markets.truncate(2);
    let sim = Sim::start(cfg).await.context("starting the simulator")?;
    let spot = sim.market(MarketKind::Spot).context("spot market")?;
    eprintln!("ferrofeed demo: simulator up ({} spot, {} usdm)", spot.ws_url(), sim.markets()[1].ws_url());
    eprintln!("(the live client view arrives with the connection engine; this shows the simulator's ground truth)");
    tokio::time::sleep(duration).await;
    if let Some(b) = spot.book("BTCUSDT", 5) {
        println!("BTCUSDT true book at update id {}:", b.last_update_id);
        for (bid, ask) in b.bids.iter().zip(b.asks.iter()) {
            println!("  bid {:>16} x {:<14} ask {:>16} x {}", bid[0], bid[1], ask[0], ask[1]);
        }
    }
    let stats = spot.stats();
    println!("{}", serde_json::json!({"market": stats.market, "connections_open": stats.connections_open}));
    sim.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Sim(a) => run_sim(a).await,
        Cmd::Demo { duration } => run_demo(duration).await,
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrofeed: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_reject_garbage() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5parsecs").is_err());
    }
}
