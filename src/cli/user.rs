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
use ferrofeed::client::Environment;
use ferrofeed::model::event::EventKind;
use ferrofeed::session::{PrivateClient, PrivateConfig};
use ferrofeed::venues::auth::{Clock, Credentials};
use ferrofeed::venues::registry;
use ferrofeed_sim::Sim;

use super::stream::{Env, parse_env, write_event};

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct UserArgs {
    /// The venue (binance, bybit).
    #[arg(long)]
    venue: String,
    /// The account, as the venue names it (binance: spot, margin,
    /// isolated:SYMBOL, usdm, coinm; bybit: the category its account-wide
    /// items are reported under, linear by default). Default: the venue's
    /// first.
    #[arg(long)]
    account: Option<String>,
    /// The private streams or topics instead of the venue's default set
    /// (bybit: order, execution, position, wallet, or per category such as
    /// order.linear).
    #[arg(long, value_delimiter = ',')]
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

/// The credentials from the environment; the simulator's test account when
/// `sim` and none are set. `ed25519` says which kind the simulator default is.
pub(crate) fn credentials(sim: bool, ed25519: bool) -> anyhow::Result<Credentials> {
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

pub(crate) async fn run_user(a: UserArgs) -> anyhow::Result<()> {
    let sim_env = a.env == Env::Sim;
    let spec = registry::by_name(&a.venue)?;
    let account = match &a.account {
        Some(x) => x.clone(),
        None => spec.accounts().first().context("the venue has no private accounts")?.to_string(),
    };
    let topics: Vec<String> = a.topics.iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
    if topics.iter().any(|t| t.chars().any(|c| c.is_whitespace() || c.is_control())) {
        bail!("--topics: give private topics such as order,execution,position,wallet");
    }
    // The simulator's test account: an HMAC key unless the session needs an
    // Ed25519 one (Binance spot's session.logon).
    let test_creds = |ed25519: bool| {
        if ed25519 {
            Credentials::ed25519_seed(ferrofeed_sim::TEST_API_KEY, ferrofeed_sim::TEST_ED25519_SEED)
        } else {
            Credentials::hmac(ferrofeed_sim::TEST_API_KEY, ferrofeed_sim::TEST_HMAC_SECRET)
        }
    };
    let hmac_ok = test_creds(false)
        .ok()
        .map(|c| spec.session(&account, &Environment::Production, Arc::new(c), Arc::new(Clock::default())));
    let plan_market = match &hmac_ok {
        Some(Ok(p)) => Some((p.market, false)),
        _ => test_creds(true)
            .ok()
            .and_then(|c| {
                spec.session(&account, &Environment::Production, Arc::new(c), Arc::new(Clock::default())).ok()
            })
            .map(|p| (p.market, true)),
    };
    let creds = credentials(sim_env, plan_market.is_some_and(|(_, ed)| ed))?;
    let mut _sim = None;
    let environment = match &a.env {
        Env::Production => Environment::Production,
        Env::Testnet => Environment::Testnet,
        Env::Url(ws) => Environment::custom(ws),
        Env::Sim => {
            let (market, _) = plan_market.with_context(|| format!("{} has no account {account:?}", a.venue))?;
            let sim = Sim::start(super::sim_config_for(&[market])?).await.context("starting the simulator")?;
            let h = sim.markets()[0].clone();
            eprintln!("{}", serde_json::json!({"sim": {"ws": h.ws_url(), "rest": h.rest_url()}}));
            _sim = Some(sim);
            Environment::Custom { ws: h.ws_url(), rest: h.rest_url() }
        }
    };
    let mut source = PrivateClient::new(&a.venue, creds, PrivateConfig { environment, ..PrivateConfig::default() })?;
    source
        .open_with(&account, (!topics.is_empty()).then_some(topics))
        .await
        .with_context(|| format!("opening the {} {account} user stream", a.venue))?;

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
