//! Accounting of fills, shared by every venue's order endpoints: what a
//! taker fill does to an account's balances (spot) and one-way futures
//! position (average entry, realized profit, 0.05 % fee in the margin asset),
//! and the notional, entry price and unrealized profit they are computed from.
//!
//! Fees: spot 0.1 % of what is received; futures 0.05 % of the notional in the
//! margin asset. Futures positions are one-way, cross margin, with no margin or
//! leverage checks.

use crate::account::{AMT, Account, dec, rescale};
use crate::config::{MarketKind, SymbolSpec};
use crate::market::Fill;

/// Contract size of a COIN-M symbol in USD (as `exchangeInfo` says).
pub(crate) fn contract_size(spec: &SymbolSpec) -> i128 {
    if spec.base == "BTC" { 100 } else { 10 }
}

pub(crate) fn margin_asset(kind: MarketKind, spec: &SymbolSpec) -> String {
    if kind == MarketKind::CoinM { spec.base.clone() } else { spec.quote.clone() }
}

/// The notional of `q` lots at `p` ticks in the settlement unit (`AMT`): quote
/// on spot and USD-M, base on COIN-M (inverse contracts).
pub(crate) fn notional(kind: MarketKind, spec: &SymbolSpec, p: i64, q: i64) -> i128 {
    if kind == MarketKind::CoinM {
        let num = q as i128 * contract_size(spec) * 10i128.pow(AMT + spec.price_decimals);
        num / (p as i128).max(1)
    } else {
        rescale(p as i128 * q as i128, spec.price_decimals + spec.qty_decimals, AMT)
    }
}

pub(crate) fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

/// Spot: quote spent / base received (or the reverse) minus 0.1 % of what is received.
pub(crate) fn apply_spot_fill(
    a: &mut Account,
    spec: &SymbolSpec,
    buy: bool,
    f: &Fill,
    n: i128,
    touched: &mut Vec<String>,
) -> (i128, String, i128) {
    let q = rescale(f.qty as i128, spec.qty_decimals, AMT);
    push_unique(touched, &spec.base);
    push_unique(touched, &spec.quote);
    if buy {
        let fee = q / 1000;
        a.balance(&spec.quote).free -= n;
        a.balance(&spec.base).free += q - fee;
        (fee, spec.base.clone(), 0)
    } else {
        let fee = n / 1000;
        a.balance(&spec.base).free -= q;
        a.balance(&spec.quote).free += n - fee;
        (fee, spec.quote.clone(), 0)
    }
}

/// Futures: one-way position (average entry), realized profit and the 0.05 %
/// fee go to the wallet of the margin asset.
pub(crate) fn apply_futures_fill(
    kind: MarketKind,
    a: &mut Account,
    spec: &SymbolSpec,
    buy: bool,
    f: &Fill,
    n: i128,
) -> (i128, String, i128) {
    let asset = margin_asset(kind, spec);
    let d = if buy { f.qty } else { -f.qty };
    let pos = a.positions.entry(spec.name.clone()).or_default();
    let mut realized = 0i128;
    if pos.amt == 0 || (pos.amt > 0) == (d > 0) {
        pos.amt += d;
        pos.cost += n;
    } else {
        let closing = d.abs().min(pos.amt.abs());
        let portion = pos.cost * closing as i128 / pos.amt.abs() as i128;
        let exit = n * closing as i128 / f.qty as i128;
        let long = pos.amt > 0;
        let pnl = if kind == MarketKind::CoinM { portion - exit } else { exit - portion };
        realized = if long { pnl } else { -pnl };
        pos.cost -= portion;
        pos.amt += d.signum() * closing;
        let left = d.abs() - closing;
        if left > 0 {
            pos.amt += d.signum() * left;
            pos.cost = n * left as i128 / f.qty as i128;
        }
        if pos.amt == 0 {
            pos.cost = 0;
        }
        pos.realized += realized;
    }
    let fee = n * 5 / 10_000;
    a.balance(&asset).free += realized - fee;
    (fee, asset, realized)
}

/// The entry price of a position with 8 decimals ("0" when flat).
pub(crate) fn entry_price(kind: MarketKind, spec: &SymbolSpec, amt_lots: i64, cost: i128) -> String {
    if amt_lots == 0 || cost == 0 {
        return "0".into();
    }
    let q = amt_lots.unsigned_abs() as i128;
    let v = if kind == MarketKind::CoinM {
        q * contract_size(spec) * 10i128.pow(AMT) * 10i128.pow(8) / cost
    } else {
        cost * 10i128.pow(spec.qty_decimals) * 10i128.pow(8) / (q * 10i128.pow(AMT))
    };
    dec(v, 8, 8)
}

/// Unrealized profit of a position at `mark` ticks (`AMT`).
pub(crate) fn unrealized(kind: MarketKind, spec: &SymbolSpec, amt_lots: i64, cost: i128, mark: i64) -> i128 {
    if amt_lots == 0 {
        return 0;
    }
    let now_value = notional(kind, spec, mark, amt_lots.abs());
    let pnl = if kind == MarketKind::CoinM { cost - now_value } else { now_value - cost };
    if amt_lots > 0 { pnl } else { -pnl }
}
