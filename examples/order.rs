//! An order placed over the venue's WebSocket and its fill: the typed answer
//! of the order API, then the same fill as it arrives on the private stream.
//!
//! ```console
//! $ cargo run --example order                                   # Deribit on the simulator
//! $ cargo run --example order -- --side sell --qty 20
//! $ FERROFEED_API_KEY=... FERROFEED_API_SECRET=... \
//!     cargo run --example order -- --env testnet --qty 10
//! ```
//!
//! It places a market order (it fills at once) and prints the answer, then
//! prints the account's private events until the fill has arrived there too
//! (or `--seconds`, or Ctrl-C). Credentials come from the environment only
//! (`FERROFEED_API_KEY`, `FERROFEED_API_SECRET`); on the simulator its test
//! account is used. A request whose answer was lost says its outcome is
//! unknown: look at the open orders before trying again.

use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use ferrofeed::client::Environment;
use ferrofeed::model::Decimal;
use ferrofeed::model::event::{EventKind, Side};
use ferrofeed::session::{Credentials, PrivateClient, PrivateConfig};
use ferrofeed::trading::{OrderClient, OrderConfig};
use ferrofeed::venues::trading::{OrderAnswer, OrderType, PlaceOrder, TimeInForce};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Env {
    /// The bundled simulator, started inside this process, with its test account.
    Sim,
    /// The venue's testnet.
    Testnet,
    /// The real venue.
    Production,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SideArg {
    Buy,
    Sell,
}

/// An order and its fill.
#[derive(Debug, Parser)]
struct Args {
    /// Where to connect.
    #[arg(long, value_enum, default_value = "sim")]
    env: Env,
    /// The venue (one with an order API: deribit).
    #[arg(long, default_value = "deribit")]
    venue: String,
    /// The account.
    #[arg(long, default_value = "any")]
    account: String,
    /// The instrument.
    #[arg(long, default_value = "BTC-PERPETUAL")]
    symbol: String,
    /// buy or sell.
    #[arg(long, value_enum, default_value = "buy")]
    side: SideArg,
    /// The quantity, in the venue's unit (Deribit BTC-PERPETUAL: USD, a multiple of 10).
    #[arg(long, default_value = "10")]
    qty: Decimal,
    /// Stop after this many seconds (default: once the fill arrived, or Ctrl-C).
    #[arg(long)]
    seconds: Option<u64>,
}

fn credentials(env: Env) -> anyhow::Result<Credentials> {
    if let Env::Sim = env {
        use ferrofeed::sim::{TEST_API_KEY, TEST_HMAC_SECRET};
        return Ok(Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET)?);
    }
    let key = std::env::var("FERROFEED_API_KEY").context("FERROFEED_API_KEY is not set")?;
    let secret = std::env::var("FERROFEED_API_SECRET").context("FERROFEED_API_SECRET is not set")?;
    Ok(Credentials::hmac(key, secret)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let environment = match args.env {
        Env::Testnet => Environment::Testnet,
        _ => Environment::Production,
    };
    let mut user = PrivateClient::new(
        &args.venue,
        credentials(args.env)?,
        PrivateConfig { environment: environment.clone(), ..PrivateConfig::default() },
    )?;
    let mut sim = None;
    let mut environment = environment;
    let market = user.market_of(&args.account)?;
    if let Env::Sim = args.env {
        let s = ferrofeed::simulated::start(&[market]).await?;
        environment = ferrofeed::simulated::environment(&s, market)?;
        user.set_environment(environment.clone());
        sim = Some(s);
    }
    // The private stream first, so the fill cannot arrive before it listens.
    user.open(&args.account).await?;
    let orders = OrderClient::connect(
        market,
        &args.account,
        credentials(args.env)?,
        OrderConfig { environment, ..OrderConfig::default() },
    )
    .await?;

    let stop = {
        let seconds = args.seconds;
        async move {
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
        }
    };
    tokio::pin!(stop);
    // Wait until the private stream is subscribed before trading.
    while !user.is_active(&args.account) {
        tokio::select! {
            ev = user.next() => if ev.is_none() { anyhow::bail!("the private stream ended") },
            () = &mut stop => return Ok(()),
        }
    }

    let answer = orders
        .place(PlaceOrder {
            symbol: args.symbol.clone(),
            side: match args.side {
                SideArg::Buy => Side::Buy,
                SideArg::Sell => Side::Sell,
            },
            order_type: OrderType::Market,
            qty: args.qty,
            price: None,
            time_in_force: TimeInForce::Ioc,
            post_only: false,
            reduce_only: false,
            client_order_id: Some("ferrofeed-example".into()),
        })
        .await;
    let order_id = match &answer {
        Ok(a) => {
            println!("{}", serde_json::json!({ "answer": a }));
            match a {
                OrderAnswer::Placed { order, .. } => order.order_id.clone(),
                _ => String::new(),
            }
        }
        Err(e) => {
            println!("{}", serde_json::json!({ "error": e.to_string(), "outcome_unknown": e.outcome_unknown() }));
            anyhow::bail!("the order was not placed: {e}");
        }
    };
    loop {
        tokio::select! {
            ev = user.next() => {
                let Some(ev) = ev else { break };
                println!("{}", serde_json::to_string(&ev)?);
                if matches!(&ev.kind, EventKind::UserTrade(t) if t.order_id == order_id) && args.seconds.is_none() {
                    break;
                }
            }
            () = &mut stop => break,
        }
    }
    orders.close().await;
    user.shutdown().await;
    drop(sim);
    Ok(())
}
