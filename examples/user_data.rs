//! Private user data: one account's order updates, fills with their fees,
//! balances and positions, as events of the same model as market data.
//!
//! ```console
//! $ cargo run --example user_data                                   # Binance spot on the simulator
//! $ cargo run --example user_data -- --venue bybit --account linear
//! $ FERROFEED_API_KEY=... FERROFEED_ED25519_PEM=key.pem \
//!     cargo run --example user_data -- --env production --account spot
//! ```
//!
//! Credentials come from the environment only: `FERROFEED_API_KEY` with
//! `FERROFEED_API_SECRET` (HMAC) or `FERROFEED_ED25519_PEM` (a PEM file;
//! Binance spot needs Ed25519 for `session.logon`). They are held in
//! `secrecy` types and never reach a log, an error or a `Debug` output. On
//! the simulator the example uses its test account and credits it 10 USDT
//! a second, so balance events flow without trading (on Binance; the
//! simulator's Bybit, like the venue's deposit path it does not emulate,
//! pushes nothing for a credit, so there events come from trading only).
//!
//! Each event prints as one JSON line (docs/events.md).

use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use ferrofeed::client::Environment;
use ferrofeed::model::event::EventKind;
use ferrofeed::session::{Credentials, PrivateClient, PrivateConfig};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Env {
    /// The bundled simulator, started inside this process, with its test account.
    Sim,
    /// The venue's testnet.
    Testnet,
    /// The real venue.
    Production,
}

/// One account's private events.
#[derive(Debug, Parser)]
struct Args {
    /// Where to connect.
    #[arg(long, value_enum, default_value = "sim")]
    env: Env,
    /// The venue: binance or bybit.
    #[arg(long, default_value = "binance")]
    venue: String,
    /// The account: binance spot, margin, isolated:SYMBOL, usdm, coinm;
    /// bybit linear, spot, inverse, option.
    #[arg(long, default_value = "spot")]
    account: String,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    seconds: Option<u64>,
}

/// The simulator's test account: Ed25519 for Binance (every account type
/// accepts it), HMAC for Bybit.
fn sim_credentials(venue: &str) -> anyhow::Result<Credentials> {
    use ferrofeed::sim::{TEST_API_KEY, TEST_ED25519_SEED, TEST_HMAC_SECRET};
    Ok(match venue {
        "bybit" => Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET)?,
        _ => Credentials::ed25519_seed(TEST_API_KEY, TEST_ED25519_SEED)?,
    })
}

fn env_credentials() -> anyhow::Result<Credentials> {
    let key = std::env::var("FERROFEED_API_KEY").context("FERROFEED_API_KEY is not set")?;
    if let Ok(secret) = std::env::var("FERROFEED_API_SECRET") {
        return Ok(Credentials::hmac(key, secret)?);
    }
    let pem_path = std::env::var("FERROFEED_ED25519_PEM")
        .context("set FERROFEED_API_SECRET (HMAC) or FERROFEED_ED25519_PEM (a PEM file)")?;
    let pem = std::fs::read_to_string(&pem_path).with_context(|| format!("reading {pem_path}"))?;
    Ok(Credentials::ed25519_pem(key, &pem)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let creds = match args.env {
        Env::Sim => sim_credentials(&args.venue)?,
        Env::Testnet | Env::Production => env_credentials()?,
    };
    let environment = match args.env {
        Env::Testnet => Environment::Testnet,
        _ => Environment::Production,
    };
    let mut user = PrivateClient::new(&args.venue, creds, PrivateConfig { environment, ..PrivateConfig::default() })?;

    let mut sim = None;
    if let Env::Sim = args.env {
        // The market the account's session runs on is the one to simulate.
        let market = user.market_of(&args.account)?;
        let s = ferrofeed::simulated::start(&[market]).await?;
        user.set_environment(ferrofeed::simulated::environment(&s, market)?);
        sim = Some(s);
    }
    // Authenticates (session.logon, a listenKey, or Bybit's auth) and subscribes.
    user.open(&args.account).await?;

    let mut credit = tokio::time::interval(Duration::from_secs(1));
    // Ctrl-C, or --seconds if given.
    let seconds = args.seconds;
    let stop = async move {
        let deadline = async {
            match seconds {
                Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = deadline => {}
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            e = user.next() => {
                let Some(event) = e else { break };
                println!("{}", serde_json::to_string(&event)?);
                if let EventKind::AuthFailed { msg } = &event.kind {
                    // A refused key is terminal: it is not retried.
                    anyhow::bail!("the venue refused the credentials: {msg}");
                }
            }
            _ = credit.tick(), if sim.is_some() => {
                // Something to see without trading: a deposit on the simulator.
                if let Some(h) = sim.as_ref().and_then(|s: &ferrofeed::sim::Sim| s.markets().first()) {
                    h.deposit(None, "USDT", "10").map_err(anyhow::Error::msg)?;
                }
            }
            () = &mut stop => break,
        }
    }
    user.shutdown().await;
    if let Some(s) = sim {
        s.shutdown().await;
    }
    Ok(())
}
