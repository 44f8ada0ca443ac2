//! The private side's state of one market: trading accounts with balances,
//! futures positions and orders, their listenKeys, and ground-truth counters of
//! the user events produced for each account.
//!
//! Amounts are integers in units of 1e-8 (`AMT`); prices stay in ticks and
//! quantities in lots of their symbol, as in `market`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokio::time::Instant;

use crate::auth::Verifier;
use crate::config::{AccountSpec, MarketKind};
use crate::market::fmt_dec;

/// Decimals of every balance and fee amount.
pub(crate) const AMT: u32 = 8;

/// Finished orders kept per account for `/admin/account`.
const HISTORY: usize = 1000;

/// Whose user data a listenKey, a WS-API subscription or an order belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Scope {
    /// Spot (WS-API logon and signature subscriptions).
    Spot,
    /// Cross margin (its own wallet; listenToken subscriptions).
    Margin,
    /// Isolated margin of one symbol (its own wallet; listenToken subscriptions).
    Isolated(String),
    /// USDⓈ-M futures (`/fapi/v1/listenKey`).
    UsdM,
    /// COIN-M futures (`/dapi/v1/listenKey`).
    CoinM,
}

impl Scope {
    pub(crate) fn name(&self) -> String {
        match self {
            Scope::Spot => "spot".into(),
            Scope::Margin => "margin".into(),
            Scope::Isolated(s) => format!("isolated:{s}"),
            Scope::UsdM => "usdm".into(),
            Scope::CoinM => "coinm".into(),
        }
    }

    /// The scope that trades on a market (where orders and deposits go).
    pub(crate) fn of_market(kind: MarketKind) -> Scope {
        match kind {
            MarketKind::UsdM => Scope::UsdM,
            MarketKind::CoinM => Scope::CoinM,
            _ => Scope::Spot,
        }
    }
}

/// An issued listenKey.
#[derive(Debug, Clone)]
pub(crate) struct ListenKey {
    pub account: usize,
    pub scope: Scope,
    pub expires: Instant,
}

/// A spot balance (or a futures wallet: `free` is the wallet balance).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Balance {
    pub free: i128,
    pub locked: i128,
}

/// A one-way futures position.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Position {
    /// Signed amount in lots (contracts on COIN-M).
    pub amt: i64,
    /// Entry notional in the margin asset (`AMT`): quote on USD-M, base on COIN-M.
    pub cost: i128,
    /// Accumulated realized profit (`AMT`).
    pub realized: i128,
}

/// An order as the account sees it.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub symbol: String,
    pub id: u64,
    pub client_id: String,
    pub buy: bool,
    pub market: bool,
    pub tif: &'static str,
    /// Lots.
    pub qty: i64,
    /// Ticks (0 for MARKET).
    pub price: i64,
    /// Lots filled.
    pub executed: i64,
    /// Cumulative quote (spot, USD-M) or base (COIN-M) notional (`AMT`).
    pub cum_notional: i128,
    /// Σ price × qty of the fills, in ticks × lots (for the average price).
    pub cum_ticks_lots: i128,
    pub status: &'static str,
    pub time_ms: u64,
    pub update_ms: u64,
}

/// One account's state in one market.
#[derive(Debug)]
pub(crate) struct Account {
    pub spec: AccountSpec,
    pub verifier: Verifier,
    pub balances: BTreeMap<String, Balance>,
    pub positions: BTreeMap<String, Position>,
    pub open: BTreeMap<u64, Order>,
    pub history: VecDeque<Order>,
    /// User events produced, by event type (whether or not anyone listened).
    pub events: BTreeMap<String, u64>,
    /// Frames carrying this account's events written to connection queues.
    pub frames_queued: u64,
    pub update_ms: u64,
}

impl Account {
    pub(crate) fn finish(&mut self, o: Order) {
        if self.history.len() >= HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(o);
    }

    pub(crate) fn balance(&mut self, asset: &str) -> &mut Balance {
        self.balances.entry(asset.to_string()).or_default()
    }
}

/// Every account of a market and its listenKeys.
#[derive(Debug)]
pub(crate) struct Accounts {
    pub list: Vec<Account>,
    pub listen_keys: HashMap<String, ListenKey>,
    rng: ChaCha8Rng,
    pub next_order_id: u64,
    pub next_exec_id: u64,
}

impl Accounts {
    pub(crate) fn new(specs: &[AccountSpec], seed: u64) -> Accounts {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xacc0_0000);
        let list = specs
            .iter()
            .map(|spec| {
                let balances = spec
                    .balances
                    .iter()
                    .filter_map(|(a, v)| Some((a.clone(), Balance { free: parse_dec(v, AMT).ok()?, locked: 0 })))
                    .collect();
                Account {
                    verifier: Verifier::new(spec),
                    spec: spec.clone(),
                    balances,
                    positions: BTreeMap::new(),
                    open: BTreeMap::new(),
                    history: VecDeque::new(),
                    events: BTreeMap::new(),
                    frames_queued: 0,
                    update_ms: 0,
                }
            })
            .collect();
        let next_order_id = rng.random_range(1_000_000u64..9_000_000);
        let next_exec_id = rng.random_range(10_000_000u64..90_000_000);
        Accounts { list, listen_keys: HashMap::new(), rng, next_order_id, next_exec_id }
    }

    pub(crate) fn by_api_key(&self, key: &str) -> Option<usize> {
        self.list.iter().position(|a| a.spec.api_key == key)
    }

    /// A random alphanumeric string (listenKeys: 64, client order ids: 22).
    pub(crate) fn token(&mut self, len: usize) -> String {
        const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..len).map(|_| ALPHA[self.rng.random_range(0..ALPHA.len())] as char).collect()
    }

    /// The active key of (account, scope), if any.
    pub(crate) fn active_key(&self, account: usize, scope: &Scope) -> Option<String> {
        self.listen_keys.iter().find(|(_, k)| k.account == account && k.scope == *scope).map(|(s, _)| s.clone())
    }
}

/// Parses a non-negative decimal into an integer with `decimals` fraction
/// digits; `Err(true)` when it has more (non-zero) digits than that, `Err(false)`
/// when it is not a decimal at all.
pub(crate) fn parse_dec(s: &str, decimals: u32) -> Result<i128, bool> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if (int.is_empty() && frac.is_empty())
        || int.len() > 20
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(false);
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > decimals as usize {
        return Err(true);
    }
    let int: i128 = if int.is_empty() { 0 } else { int.parse().map_err(|_| false)? };
    let mut f: i128 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| false)? };
    f *= 10i128.pow(decimals - frac.len() as u32);
    int.checked_mul(10i128.pow(decimals)).and_then(|v| v.checked_add(f)).ok_or(false)
}

/// `v` with `from` decimals rescaled to `to` decimals (truncating).
pub(crate) fn rescale(v: i128, from: u32, to: u32) -> i128 {
    if to >= from { v * 10i128.pow(to - from) } else { v / 10i128.pow(from - to) }
}

/// An `AMT` amount as the venue writes balances: 8 decimals.
pub(crate) fn amt(v: i128) -> String {
    let mut s = String::new();
    fmt_dec(&mut s, v, AMT, AMT);
    s
}

/// A decimal with `decimals` digits, or `"0"` for zero (futures style).
pub(crate) fn dec_or_zero(v: i128, scale: u32, decimals: u32) -> String {
    if v == 0 {
        return "0".into();
    }
    let mut s = String::new();
    fmt_dec(&mut s, v, scale, decimals);
    s
}

/// A decimal with `decimals` digits.
pub(crate) fn dec(v: i128, scale: u32, decimals: u32) -> String {
    let mut s = String::new();
    fmt_dec(&mut s, v, scale, decimals);
    s
}

/// Builds a JSON object with keys in the order given (as the venue writes them).
#[derive(Debug)]
pub(crate) struct Obj(String);

impl Obj {
    pub(crate) fn new() -> Obj {
        Obj(String::from("{"))
    }

    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        let _ = write!(self.0, "\"{k}\":");
    }

    /// A string value (escaped).
    pub(crate) fn s(mut self, k: &str, v: &str) -> Obj {
        self.key(k);
        self.0.push_str(&serde_json::Value::from(v).to_string());
        self
    }

    /// A number, boolean or pre-encoded JSON value.
    pub(crate) fn raw(mut self, k: &str, v: impl std::fmt::Display) -> Obj {
        self.key(k);
        let _ = write!(self.0, "{v}");
        self
    }

    pub(crate) fn end(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// `/admin/account` ground truth for one account.
#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    /// The account's name.
    pub name: String,
    /// Its API key (the secret is never shown).
    pub api_key: String,
    /// Balances by asset: `free` and `locked` (futures: `free` is the wallet balance).
    pub balances: BTreeMap<String, BalanceView>,
    /// Futures positions by symbol.
    pub positions: BTreeMap<String, PositionView>,
    /// Open orders.
    pub open_orders: Vec<OrderView>,
    /// The last finished orders (at most 1000).
    pub orders: Vec<OrderView>,
    /// User events produced for the account, by event type (`executionReport`,
    /// `outboundAccountPosition`, `balanceUpdate`, `ORDER_TRADE_UPDATE`,
    /// `ACCOUNT_UPDATE`, `listenKeyExpired`, `eventStreamTerminated`),
    /// counted once per event whether or not a connection received it.
    pub events: BTreeMap<String, u64>,
    /// Total events produced (the sum of `events`).
    pub events_total: u64,
    /// Frames carrying these events queued to connections (one event can go to
    /// several connections, or to none).
    pub frames_queued: u64,
    /// Active listenKeys: key, scope, and ms until expiry.
    pub listen_keys: Vec<ListenKeyView>,
}

/// A balance.
#[derive(Debug, Clone, Serialize)]
pub struct BalanceView {
    /// Free (spot) or wallet (futures) balance, 8 decimals.
    pub free: String,
    /// Locked by open orders, 8 decimals.
    pub locked: String,
}

/// A futures position.
#[derive(Debug, Clone, Serialize)]
pub struct PositionView {
    /// Signed amount.
    pub amount: String,
    /// Entry price.
    pub entry_price: String,
    /// Accumulated realized profit, 8 decimals.
    pub realized: String,
}

/// An order.
#[derive(Debug, Clone, Serialize)]
pub struct OrderView {
    /// Symbol.
    pub symbol: String,
    /// Order id.
    pub order_id: u64,
    /// Client order id.
    pub client_order_id: String,
    /// BUY or SELL.
    pub side: String,
    /// LIMIT or MARKET.
    pub r#type: String,
    /// Status (NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED).
    pub status: String,
    /// Quantity.
    pub orig_qty: String,
    /// Filled quantity.
    pub executed_qty: String,
    /// Limit price ("0" for MARKET).
    pub price: String,
    /// Cumulative notional (quote; base on COIN-M), 8 decimals.
    pub cum_notional: String,
}

/// An active listenKey.
#[derive(Debug, Clone, Serialize)]
pub struct ListenKeyView {
    /// The key.
    pub listen_key: String,
    /// `spot`, `margin`, `isolated:<SYMBOL>`, `usdm`, `coinm`.
    pub scope: String,
    /// Milliseconds until it expires.
    pub expires_in_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(parse_dec("1.5", 3), Ok(1500));
        assert_eq!(parse_dec("0.001", 3), Ok(1));
        assert_eq!(parse_dec("0.0010000", 3), Ok(1));
        assert_eq!(parse_dec("0.0001", 3), Err(true));
        assert_eq!(parse_dec(".5", 1), Ok(5));
        assert_eq!(parse_dec("5.", 1), Ok(50));
        assert_eq!(parse_dec("-1", 1), Err(false));
        assert_eq!(parse_dec("1e5", 1), Err(false));
        assert_eq!(parse_dec("", 1), Err(false));
        assert_eq!(parse_dec(".", 1), Err(false));
        assert_eq!(parse_dec("99999999999999999999999", 8), Err(false));
        assert_eq!(rescale(12345, 5, 8), 12345000);
        assert_eq!(rescale(12345, 9, 8), 1234);
        assert_eq!(dec_or_zero(0, 3, 3), "0");
        assert_eq!(dec_or_zero(1, 3, 3), "0.001");
        assert_eq!(amt(100_000_000), "1.00000000");
    }

    #[test]
    fn objects_keep_key_order_and_escape() {
        let o = Obj::new().s("e", "x\"y").raw("E", 5).raw("w", true).raw("N", "null").end();
        assert_eq!(o, r#"{"e":"x\"y","E":5,"w":true,"N":null}"#);
    }
}
