//! `ferrofeed user`: one account's private events (orders, fills, balances,
//! positions) as normalized JSON lines, Binance or Bybit.
//!
//! Credentials come from the environment only, never from arguments (which
//! any user of the machine can read in the process list):
//! `FERROFEED_API_KEY` with `FERROFEED_API_SECRET` (HMAC-SHA256),
//! `FERROFEED_ED25519_PEM` (a PKCS#8 PEM file path) or `FERROFEED_ED25519_SEED`
//! (64 hex digits). With `--env sim` and none set, the simulator's test
//! account is used.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use ferrofeed::bybit::{BybitConfig, Category, Environment as BybitEnvironment};
use ferrofeed::bybit_feed::{BybitFeed, BybitFeedConfig};
use ferrofeed::model::event::{Event, EventKind};
use ferrofeed::private::{BinancePrivateClient, PrivateAccount, PrivateConfig};
use ferrofeed::venues::auth::{Clock, Credentials};
use ferrofeed_sim::{BybitCategory, MarketConfig, MarketKind, Sim, SimConfig};

use super::stream::{Env, VenueArg, parse_env, rest_of, write_event};

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct UserArgs {
    /// The venue.
    #[arg(long, value_enum)]
    venue: VenueArg,
    /// Binance: the account (spot, margin, isolated:SYMBOL, usdm, coinm).
    /// Bybit: ignored (one private stream covers the account).
    #[arg(long, default_value = "spot")]
    account: String,
    /// Bybit: the private topics (order, execution, position, wallet, or
    /// per category such as order.linear).
    #[arg(long, value_delimiter = ',', default_value = "order,execution,position,wallet")]
    topics: Vec<String>,
    /// Where to connect: production, testnet, sim (the embedded simulator,
    /// with its test account) or a base URL such as ws://127.0.0.1:9400.
    #[arg(long, default_value = "production", value_parser = parse_env)]
    env: Env,
    /// Status events (connected, reconnected, gap, auth_failed, ...) inline on
    /// stdout instead of stderr.
    #[arg(long)]
    status: bool,
    /// Stop after this long (e.g. 30s, 5m); default: until Ctrl-C or SIGTERM.
    #[arg(long, value_parser = crate::parse_duration)]
    duration: Option<Duration>,
}

fn parse_account(s: &str) -> anyhow::Result<PrivateAccount> {
    Ok(match s {
        "spot" => PrivateAccount::Spot,
        "margin" => PrivateAccount::Margin,
        "usdm" => PrivateAccount::UsdM,
        "coinm" => PrivateAccount::CoinM,
        other => match other.strip_prefix("isolated:") {
            Some(sym) if !sym.is_empty() && sym.chars().all(|c| c.is_ascii_alphanumeric()) => {
                PrivateAccount::IsolatedMargin(sym.to_ascii_uppercase())
            }
            _ => bail!("unknown account {other:?} (expected spot, margin, isolated:SYMBOL, usdm or coinm)"),
        },
    })
}

/// The credentials from the environment; the simulator's test account when
/// `sim` and none are set. `ed25519` says which kind the simulator default is.
fn credentials(sim: bool, ed25519: bool) -> anyhow::Result<Credentials> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let key = var("FERROFEED_API_KEY");
    let (secret, pem, seed) =
        (var("FERROFEED_API_SECRET"), var("FERROFEED_ED25519_PEM"), var("FERROFEED_ED25519_SEED"));
    let Some(key) = key else {
        if !sim {
            bail!(
                "no credentials: set FERROFEED_API_KEY and one of FERROFEED_API_SECRET (HMAC), \
                 FERROFEED_ED25519_PEM (a PEM file) or FERROFEED_ED25519_SEED (64 hex digits)"
            );
        }
        let c = if ed25519 {
            Credentials::ed25519_seed(ferrofeed_sim::TEST_API_KEY, ferrofeed_sim::TEST_ED25519_SEED)
        } else {
            Credentials::hmac(ferrofeed_sim::TEST_API_KEY, ferrofeed_sim::TEST_HMAC_SECRET)
        };
        return c.context("the simulator's test credentials");
    };
    match (secret, pem, seed) {
        (Some(s), None, None) => Credentials::hmac(key, s).context("FERROFEED_API_SECRET"),
        (None, Some(path), None) => {
            let text =
                std::fs::read_to_string(&path).with_context(|| format!("reading FERROFEED_ED25519_PEM {path}"))?;
            Credentials::ed25519_pem(key, &text).context("FERROFEED_ED25519_PEM")
        }
        (None, None, Some(hex)) => {
            let bytes: Option<Vec<u8>> = (hex.len() == 64 && hex.is_ascii())
                .then(|| (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect())
                .flatten();
            let seed: [u8; 32] =
                bytes.and_then(|b| b.try_into().ok()).context("FERROFEED_ED25519_SEED must be 64 hex digits")?;
            Credentials::ed25519_seed(key, seed).context("FERROFEED_ED25519_SEED")
        }
        (None, None, None) => {
            bail!(
                "FERROFEED_API_KEY is set but no secret: set FERROFEED_API_SECRET, FERROFEED_ED25519_PEM or FERROFEED_ED25519_SEED"
            )
        }
        _ => bail!("set only one of FERROFEED_API_SECRET, FERROFEED_ED25519_PEM and FERROFEED_ED25519_SEED"),
    }
}

/// Where the private events come from.
enum Source {
    Binance(Box<BinancePrivateClient>),
    Bybit(Box<BybitFeed>),
}

impl Source {
    async fn next(&mut self) -> Option<Event> {
        match self {
            Source::Binance(c) => c.next().await,
            Source::Bybit(f) => f.next().await,
        }
    }

    async fn shutdown(&mut self) {
        match self {
            Source::Binance(c) => c.shutdown().await,
            Source::Bybit(f) => f.shutdown().await,
        }
    }
}

fn sim_kind(a: &PrivateAccount) -> MarketKind {
    match a {
        PrivateAccount::UsdM => MarketKind::UsdM,
        PrivateAccount::CoinM => MarketKind::CoinM,
        _ => MarketKind::Spot,
    }
}

pub(crate) async fn run_user(a: UserArgs) -> anyhow::Result<()> {
    let sim_env = a.env == Env::Sim;
    let mut _sim = None;
    let mut source = match a.venue {
        VenueArg::Binance => {
            let account = parse_account(&a.account)?;
            let creds = credentials(sim_env, account == PrivateAccount::Spot)?;
            let environment = match &a.env {
                Env::Production => ferrofeed::binance::Environment::Production,
                Env::Testnet => ferrofeed::binance::Environment::Testnet,
                Env::Url(ws) => ferrofeed::binance::Environment::Custom { ws: ws.clone(), rest: rest_of(ws) },
                Env::Sim => {
                    let sim = Sim::start(SimConfig::single(MarketConfig::new(sim_kind(&account))))
                        .await
                        .context("starting the simulator")?;
                    let h = sim.markets()[0].clone();
                    eprintln!("{}", serde_json::json!({"sim": {"ws": h.ws_url(), "rest": h.rest_url()}}));
                    _sim = Some(sim);
                    ferrofeed::binance::Environment::Custom { ws: h.ws_url(), rest: h.rest_url() }
                }
            };
            let mut c = BinancePrivateClient::new(creds, PrivateConfig { environment, ..PrivateConfig::default() });
            c.open(account.clone()).await.with_context(|| format!("opening the {account:?} user stream"))?;
            Source::Binance(Box::new(c))
        }
        VenueArg::Bybit => {
            let creds = credentials(sim_env, false)?;
            let environment = match &a.env {
                Env::Production => BybitEnvironment::Production,
                Env::Testnet => BybitEnvironment::Testnet,
                Env::Url(ws) => BybitEnvironment::Custom { ws: ws.clone(), rest: rest_of(ws) },
                Env::Sim => {
                    let sim = Sim::start(SimConfig::single(MarketConfig::bybit(BybitCategory::Linear)))
                        .await
                        .context("starting the simulator")?;
                    let h = sim.markets()[0].clone();
                    eprintln!("{}", serde_json::json!({"sim": {"ws": h.ws_url(), "rest": h.rest_url()}}));
                    _sim = Some(sim);
                    BybitEnvironment::Custom { ws: h.ws_url(), rest: h.rest_url() }
                }
            };
            let topics: Vec<String> = a.topics.iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
            if topics.is_empty() || topics.iter().any(|t| t.chars().any(|c| c.is_whitespace() || c.is_control())) {
                bail!("--topics: give private topics such as order,execution,position,wallet");
            }
            let cfg = BybitConfig { environment, ..BybitConfig::default() };
            let fc = BybitFeedConfig { client: cfg, private_category: Category::Linear, ..BybitFeedConfig::default() };
            let mut f = BybitFeed::with_credentials(fc, Arc::new(creds), Arc::new(Clock::default()));
            f.subscribe_private(&topics).await.context("subscribing the private topics")?;
            Source::Bybit(Box::new(f))
        }
    };

    let tty = std::io::stdout().is_terminal();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let deadline = async {
        match a.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let signal = crate::cli::signal::shutdown();
    tokio::pin!(signal);
    let result: anyhow::Result<()> = loop {
        tokio::select! {
            ev = source.next() => {
                let Some(ev) = ev else { break Ok(()) };
                let refused = matches!(&ev.kind, EventKind::AuthFailed { .. });
                let written = write_event(&ev, a.status, tty, &mut out).and_then(|()| out.flush());
                if let Err(e) = written {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        break Ok(());
                    }
                    break Err(e.into());
                }
                // A refused credential is terminal: the connection is not retried.
                if refused && let EventKind::AuthFailed { msg } = ev.kind {
                    break Err(anyhow::anyhow!("the venue refused the credentials: {msg}"));
                }
            }
            _ = &mut deadline => break Ok(()),
            _ = &mut signal => break Ok(()),
        }
    };
    let _ = out.flush();
    drop(out);
    source.shutdown().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_parse_and_bad_ones_say_why() {
        assert_eq!(parse_account("isolated:btcusdt").unwrap(), PrivateAccount::IsolatedMargin("BTCUSDT".into()));
        assert_eq!(parse_account("usdm").unwrap(), PrivateAccount::UsdM);
        for bad in ["", "futures", "isolated:", "isolated:BTC/USDT"] {
            assert!(parse_account(bad).is_err(), "{bad}");
        }
    }
}
