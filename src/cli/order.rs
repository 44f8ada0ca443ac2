//! `ferrofeed order`: one request of the venue-neutral order API (place,
//! amend, cancel, cancel all, open orders) over the venue's authenticated
//! WebSocket, printed as one JSON line.
//!
//! Credentials come from the environment only (as for `ferrofeed user`);
//! with `--env sim` and none set, the simulator's test account is used.
//!
//! The line is `{"venue","account","request","answer"}` on success, or
//! `{"venue","account","request","error":{kind,message,outcome_unknown,..}}`
//! with exit status 1 when the venue refused the request, or its outcome is
//! unknown, or it was not sent.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use ferrofeed::client::Environment;
use ferrofeed::model::Decimal;
use ferrofeed::model::event::Side;
use ferrofeed::trading::{OrderClient, OrderConfig, OrderError};
use ferrofeed::venues::auth::Credentials;
use ferrofeed::venues::registry;
use ferrofeed::venues::seam::MarketId;
use ferrofeed::venues::trading::{
    AmendOrder, CancelOrder, OrderRef, OrderRequest, OrderType, PlaceOrder, QueryOrder, TimeInForce, TradeError,
};
use ferrofeed_sim::Sim;

use serde_json::json;

use super::stream::{Env, parse_env};

/// Where and as whom.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// The venue.
    #[arg(long)]
    venue: String,
    /// The market, as the venue names it (binance: spot, usdm; bybit:
    /// linear, ...; deribit: inverse, linear, option). Default: the first
    /// market the venue trades.
    #[arg(long)]
    market: Option<String>,
    /// The account, as the venue names it. Default: the venue's first.
    #[arg(long)]
    account: Option<String>,
    /// Where to connect: production, testnet, sim (the embedded simulator,
    /// with its test account) or a base URL such as ws://127.0.0.1:9400
    /// (a running `ferrofeed sim`).
    #[arg(long, default_value = "production", value_parser = parse_env)]
    env: Env,
    /// How long the answer may take; past it the outcome is unknown (e.g.
    /// 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    timeout: Duration,
}

/// The order command.
#[derive(Debug, Subcommand)]
pub(crate) enum OrderCmd {
    /// Place an order: a limit order with --price, a market order without.
    Place {
        #[command(flatten)]
        target: Target,
        /// The instrument, as the venue names it (BTC-PERPETUAL).
        #[arg(long)]
        symbol: String,
        /// buy or sell.
        #[arg(long, value_enum)]
        side: SideArg,
        /// The quantity in the venue's unit for the instrument.
        #[arg(long, value_parser = parse_decimal)]
        qty: Decimal,
        /// The limit price (omit for a market order).
        #[arg(long, value_parser = parse_decimal)]
        price: Option<Decimal>,
        /// The order type; default: limit with --price, else market.
        #[arg(long = "type", value_enum)]
        order_type: Option<TypeArg>,
        /// Time in force.
        #[arg(long, value_enum, default_value = "gtc")]
        tif: TifArg,
        /// Only rest on the book.
        #[arg(long)]
        post_only: bool,
        /// Only reduce a position.
        #[arg(long)]
        reduce_only: bool,
        /// Your id for the order.
        #[arg(long)]
        client_id: Option<String>,
    },
    /// Change an open order's quantity or price.
    Amend {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        which: Which,
        /// The new total quantity.
        #[arg(long, value_parser = parse_decimal)]
        qty: Option<Decimal>,
        /// The new limit price.
        #[arg(long, value_parser = parse_decimal)]
        price: Option<Decimal>,
        /// The order's side, where the venue needs it to amend (Binance:
        /// a price change on spot, any amend on usdm).
        #[arg(long, value_enum)]
        side: Option<SideArg>,
    },
    /// Cancel an open order.
    Cancel {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        which: Which,
    },
    /// Show one order's state.
    Status {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        which: Which,
    },
    /// Cancel every open order (of --symbol, when given).
    CancelAll {
        #[command(flatten)]
        target: Target,
        /// Only this instrument's orders.
        #[arg(long)]
        symbol: Option<String>,
    },
    /// List the open orders of an instrument.
    Open {
        #[command(flatten)]
        target: Target,
        /// The instrument.
        #[arg(long)]
        symbol: String,
    },
}

/// Which order: by the venue's id or yours.
#[derive(Debug, Args)]
pub(crate) struct Which {
    /// The instrument.
    #[arg(long)]
    symbol: String,
    /// The venue's order id.
    #[arg(long, conflicts_with = "client_id", required_unless_present = "client_id")]
    order_id: Option<String>,
    /// The client order id given at placement.
    #[arg(long)]
    client_id: Option<String>,
}

impl Which {
    fn order(&self) -> OrderRef {
        match (&self.order_id, &self.client_id) {
            (Some(id), _) => OrderRef::OrderId(id.clone()),
            (None, Some(c)) => OrderRef::ClientOrderId(c.clone()),
            // clap requires one of them.
            (None, None) => OrderRef::OrderId(String::new()),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum SideArg {
    Buy,
    Sell,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum TypeArg {
    Limit,
    Market,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum TifArg {
    Gtc,
    Ioc,
    Fok,
}

fn parse_decimal(s: &str) -> Result<Decimal, String> {
    s.trim().parse::<Decimal>().map_err(|e| format!("{s:?} is not a decimal number: {e}"))
}

impl OrderCmd {
    fn split(self) -> (Target, OrderRequest) {
        match self {
            OrderCmd::Place {
                target,
                symbol,
                side,
                qty,
                price,
                order_type,
                tif,
                post_only,
                reduce_only,
                client_id,
            } => {
                let order_type = order_type.map_or(
                    if price.is_some() { OrderType::Limit } else { OrderType::Market },
                    |t| match t {
                        TypeArg::Limit => OrderType::Limit,
                        TypeArg::Market => OrderType::Market,
                    },
                );
                let req = OrderRequest::Place(PlaceOrder {
                    symbol,
                    side: match side {
                        SideArg::Buy => Side::Buy,
                        SideArg::Sell => Side::Sell,
                    },
                    order_type,
                    qty,
                    price,
                    time_in_force: match tif {
                        TifArg::Gtc => TimeInForce::Gtc,
                        TifArg::Ioc => TimeInForce::Ioc,
                        TifArg::Fok => TimeInForce::Fok,
                    },
                    post_only,
                    reduce_only,
                    client_order_id: client_id,
                });
                (target, req)
            }
            OrderCmd::Amend { target, which, qty, price, side } => {
                let side = side.map(|s| match s {
                    SideArg::Buy => Side::Buy,
                    SideArg::Sell => Side::Sell,
                });
                let req = OrderRequest::Amend(AmendOrder {
                    side,
                    symbol: which.symbol.clone(),
                    order: which.order(),
                    qty,
                    price,
                });
                (target, req)
            }
            OrderCmd::Cancel { target, which } => {
                (target, OrderRequest::Cancel(CancelOrder { symbol: which.symbol.clone(), order: which.order() }))
            }
            OrderCmd::Status { target, which } => {
                (target, OrderRequest::Status(QueryOrder { symbol: which.symbol.clone(), order: which.order() }))
            }
            OrderCmd::CancelAll { target, symbol } => (target, OrderRequest::CancelAll { symbol }),
            OrderCmd::Open { target, symbol } => (target, OrderRequest::OpenOrders { symbol }),
        }
    }
}

/// The error's JSON object.
fn error_json(e: &OrderError) -> serde_json::Value {
    let kind = match e {
        OrderError::Trade(TradeError::Refused(_)) => "refused",
        OrderError::Trade(TradeError::Invalid { .. }) => "invalid",
        OrderError::Trade(TradeError::Answer { .. }) => "unreadable_answer",
        OrderError::Call(_) => "not_answered",
        OrderError::RateGuard(_) => "rate_guard",
        OrderError::Seam(_) | OrderError::Private(_) | OrderError::Connect(_) | OrderError::Instruments { .. } => {
            "connection"
        }
    };
    let mut v = json!({"kind": kind, "message": e.to_string(), "outcome_unknown": e.outcome_unknown()});
    if let Some(r) = e.refusal() {
        v["code"] = json!(r.code);
        v["venue_message"] = json!(r.message);
        v["refusal"] = json!(r.kind);
        if let Some(d) = &r.detail {
            v["detail"] = json!(d);
        }
    }
    v
}

pub(crate) async fn run(cmd: OrderCmd) -> anyhow::Result<()> {
    let (target, request) = cmd.split();
    let spec = registry::by_name(&target.venue)?;
    let trading = spec.trading().with_context(|| format!("{} has no order API yet", target.venue))?;
    let market = match &target.market {
        Some(m) => spec.parse_market(m)?,
        None => MarketId::new(spec.venue(), *trading.markets().first().context("the venue trades no market")?),
    };
    // The default account: the one named like the market (binance usdm,
    // bybit linear), else the venue's first.
    let account = match &target.account {
        Some(a) => a.clone(),
        None => {
            let name = spec.market_name(market.market);
            let listed = spec.accounts();
            listed
                .iter()
                .find(|a| **a == name)
                .or(listed.first())
                .context("the venue has no private accounts")?
                .to_string()
        }
    };
    let sim_env = target.env == Env::Sim;
    // The simulator's test account: an HMAC key unless the connection needs
    // an Ed25519 one (Binance's session.logon).
    let test_plan = |ed25519: bool| {
        let c = if ed25519 {
            Credentials::ed25519_seed(ferrofeed_sim::TEST_API_KEY, ferrofeed_sim::TEST_ED25519_SEED)
        } else {
            Credentials::hmac(ferrofeed_sim::TEST_API_KEY, ferrofeed_sim::TEST_HMAC_SECRET)
        };
        let c = c.context("the simulator's test credentials")?;
        let clock = std::sync::Arc::new(ferrofeed::venues::auth::Clock::default());
        anyhow::Ok(trading.plan(market.market, &account, &Environment::Production, std::sync::Arc::new(c), clock)?)
    };
    let (plan, ed25519) = match test_plan(false) {
        Ok(p) => (p, false),
        Err(_) => (test_plan(true)?, true),
    };
    let creds = super::user::credentials(sim_env, ed25519)?;
    let mut _sim = None;
    let environment = match &target.env {
        Env::Production => Environment::Production,
        Env::Testnet => Environment::Testnet,
        Env::Url(ws) => Environment::custom(ws),
        Env::Sim => {
            let sim = Sim::start(super::sim_config_for(&[plan.market])?).await.context("starting the simulator")?;
            let h = sim.markets()[0].clone();
            eprintln!("{}", json!({"sim": {"ws": h.ws_url(), "rest": h.rest_url()}}));
            _sim = Some(sim);
            Environment::Custom { ws: h.ws_url(), rest: h.rest_url() }
        }
    };
    let cfg = OrderConfig { environment, timeout: target.timeout, ..OrderConfig::default() };
    let name = request.name();
    let head =
        json!({"venue": target.venue, "market": spec.market_name(market.market), "account": account, "request": name});
    let mut limits = Vec::new();
    let result = match OrderClient::connect(market, &account, creds, cfg).await {
        Ok(client) => {
            let r = client.request(request).await;
            limits = client.rate_limits();
            client.close().await;
            r
        }
        Err(e) => Err(e),
    };
    let mut line = head;
    // The venue's order-rate limits as counted after this request.
    if !limits.is_empty() {
        line["rate_limits"] = serde_json::to_value(&limits)?;
    }
    let failed = match &result {
        Ok(answer) => {
            line["answer"] = serde_json::to_value(answer)?;
            false
        }
        Err(e) => {
            line["error"] = error_json(e);
            true
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    if failed {
        bail!("the {name} request failed (see the JSON line)");
    }
    Ok(())
}
