//! How Deribit writes numbers, instruments and the generator's trades.
//!
//! Prices and amounts are JSON numbers (PROTOCOLS.md §6.6), written from the
//! generator's integer ticks and lots as exact decimals with at least one
//! fraction digit (`92288.0`, `10.0`: the captures' float shape). An
//! instrument's tick is `SymbolSpec::tick_multiple × 10^-price_decimals`; its
//! amount per generator lot depends on the kind ([`Inst`]).

use std::fmt::Write as _;

use crate::config::{DeribitKind, SymbolSpec};
use crate::market::{DepthDiff, Encode, Liquidation, SymbolState, fmt_dec};

/// What a Deribit instrument's numbers mean, derived from its spec and kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inst {
    /// Price per generator tick: `tick_mult × 10^-price_scale`.
    pub tick_mult: i64,
    pub price_scale: u32,
    /// Amount per generator lot: `amt_mult × 10^-amt_scale` (inverse: USD of
    /// one contract; linear: base coin; option: contracts).
    pub amt_mult: i64,
    pub amt_scale: u32,
    /// Contracts per lot: `con_mult × 10^-con_scale`.
    pub con_mult: i64,
    pub con_scale: u32,
}

impl Inst {
    /// Inverse: one lot is one contract of 10 USD (BTC) or 1 USD (others)
    /// (legacy.deribit.com/pages/docs/futures: "contract size USD 10"; the
    /// `trades.json` capture: amount 10.0 = contracts 1.0). Linear: one lot is
    /// one contract of `10^-qty_decimals` base coin. Option: one lot is
    /// `10^-qty_decimals` contracts of one coin.
    pub(crate) fn of(kind: DeribitKind, spec: &SymbolSpec) -> Inst {
        let (tick_mult, price_scale) = (spec.tick_multiple.max(1), spec.price_decimals);
        match kind {
            DeribitKind::Inverse => Inst {
                tick_mult,
                price_scale,
                amt_mult: if spec.base == "BTC" { 10 } else { 1 },
                amt_scale: 0,
                con_mult: 1,
                con_scale: 0,
            },
            DeribitKind::Linear => {
                Inst { tick_mult, price_scale, amt_mult: 1, amt_scale: spec.qty_decimals, con_mult: 1, con_scale: 0 }
            }
            DeribitKind::Option => Inst {
                tick_mult,
                price_scale,
                amt_mult: 1,
                amt_scale: spec.qty_decimals,
                con_mult: 1,
                con_scale: spec.qty_decimals,
            },
        }
    }

    /// A price in ticks as a JSON number.
    pub(crate) fn price(&self, ticks: i64) -> String {
        num(ticks as i128 * self.tick_mult as i128, self.price_scale)
    }

    /// An amount in lots as a JSON number.
    pub(crate) fn amount(&self, lots: i64) -> String {
        num(lots as i128 * self.amt_mult as i128, self.amt_scale)
    }

    /// Contracts of `lots` as a JSON number.
    pub(crate) fn contracts(&self, lots: i64) -> String {
        num(lots as i128 * self.con_mult as i128, self.con_scale)
    }

    /// The contract size as a JSON number.
    pub(crate) fn contract_size(&self) -> String {
        num(self.amt_mult as i128 * 10i128.pow(self.con_scale), self.amt_scale)
    }

    /// The price of `ticks` as an `f64` (for derived values only: index, greeks).
    pub(crate) fn price_f64(&self, ticks: i64) -> f64 {
        ticks as f64 * self.tick_mult as f64 / 10f64.powi(self.price_scale as i32)
    }
}

/// `v / 10^scale` as a JSON number with at least one fraction digit and no
/// trailing zeros beyond it (`10.0`, `0.0005`, `-1.5`).
pub(crate) fn num(v: i128, scale: u32) -> String {
    let mut s = String::new();
    fmt_dec(&mut s, v, scale, scale.max(1));
    let keep = s.trim_end_matches('0').len();
    s.truncate(keep);
    if s.ends_with('.') {
        s.push('0');
    }
    s
}

/// An `f64` as a JSON number with `d` decimals (at least one), `0.0` when
/// not finite.
pub(crate) fn float(x: f64, d: usize) -> String {
    if !x.is_finite() {
        return "0.0".into();
    }
    let mut s = format!("{x:.d$}");
    if s.contains('.') {
        let keep = s.trim_end_matches('0').len();
        s.truncate(keep);
    }
    if s.ends_with('.') || !s.contains('.') {
        if !s.contains('.') {
            s.push('.');
        }
        s.push('0');
    }
    s
}

/// A JSON string literal.
pub(crate) fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A notification: `{"jsonrpc":"2.0","method":"subscription","params":{"channel","data"}}`.
pub(crate) fn notification(channel: &str, data: &str) -> String {
    let mut p = String::with_capacity(data.len() + channel.len() + 80);
    p.push_str("{\"jsonrpc\":\"2.0\",\"method\":\"subscription\",\"params\":{\"channel\":");
    p.push_str(&js(channel));
    p.push_str(",\"data\":");
    p.push_str(data);
    p.push_str("}}");
    p
}

/// The Deribit instrument kind of a market's instruments in channel names
/// (`trades.{kind}.{currency}`): perpetuals count as futures.
pub(crate) fn kind_name(kind: DeribitKind) -> &'static str {
    match kind {
        DeribitKind::Inverse | DeribitKind::Linear => "future",
        DeribitKind::Option => "option",
    }
}

/// The currency of an instrument in channel names: the settlement coin
/// (the base of inverse contracts and options, the quote of linear ones).
pub(crate) fn currency(kind: DeribitKind, spec: &SymbolSpec) -> &str {
    match kind {
        DeribitKind::Linear => &spec.quote,
        DeribitKind::Inverse | DeribitKind::Option => &spec.base,
    }
}

/// The index price of an instrument in USD: the mid of perpetuals and
/// futures less 2 basis points; for options the underlying's configured price.
pub(crate) fn index_price(kind: DeribitKind, s: &SymbolState) -> f64 {
    let inst = Inst::of(kind, &s.spec);
    match kind {
        DeribitKind::Option => crate::config::spot_price(&s.spec.base).unwrap_or(1.0),
        _ => inst.price_f64(s.mid()) * 0.9998,
    }
}

/// The mark price: the mid, on the tick grid of two extra decimals.
pub(crate) fn mark_price(kind: DeribitKind, s: &SymbolState) -> String {
    let inst = Inst::of(kind, &s.spec);
    let (b, _, a, _) = s.top;
    if b == 0 || a == 0 {
        return inst.price(s.last);
    }
    num((b as i128 + a as i128) * inst.tick_mult as i128 * 50, inst.price_scale + 2)
}

/// A stable, venue-unique trade id for `trade_seq` of `symbol`.
pub(crate) fn trade_id(symbol: &str, seq: u64) -> String {
    let h = symbol.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    format!("{}", (100 + h % 800) * 1_000_000_000 + seq % 1_000_000_000)
}

/// One trade object of `trades.*` (keys as the `trades.json` capture, plus
/// `iv` on options, `liquidation` on some futures trades, and combo legs on
/// some option trades).
pub(crate) fn trade_object(kind: DeribitKind, s: &SymbolState, price: i64, qty: i64, buy: bool, now_ms: u64) -> String {
    let inst = Inst::of(kind, &s.spec);
    let seq = s.trade_id;
    let mut p = String::with_capacity(320);
    let _ = write!(
        p,
        "{{\"timestamp\":{now_ms},\"price\":{},\"amount\":{},\"direction\":\"{}\",\"index_price\":{},\"instrument_name\":{},\"trade_seq\":{seq},\"mark_price\":{},\"tick_direction\":{},\"contracts\":{}",
        inst.price(price),
        inst.amount(qty),
        if buy { "buy" } else { "sell" },
        float(index_price(kind, s), 2),
        js(&s.spec.name),
        mark_price(kind, s),
        s.tick_dir & 3,
        inst.contracts(qty),
    );
    if kind == DeribitKind::Option {
        let iv = 50.0 + (seq % 97) as f64 / 10.0;
        let _ = write!(p, ",\"iv\":{}", float(iv, 2));
        if seq.is_multiple_of(13) {
            let _ = write!(p, ",\"combo_id\":\"BTC-CS-25JUN27-100000_105000\",\"combo_trade_id\":\"{}\"", seq / 13);
        }
    } else if seq.is_multiple_of(29) {
        let flag = ["T", "M", "MT"][(seq / 29 % 3) as usize];
        let _ = write!(p, ",\"liquidation\":\"{flag}\"");
    }
    let _ = write!(p, ",\"trade_id\":\"{}\"}}", trade_id(&s.spec.name, seq));
    p
}

/// Writes the generator's events for one Deribit market: only trades (as
/// bare trade objects on the symbol's canonical `trades.{inst}.raw` stream,
/// which the dialect then fans out to every trade channel). Deribit markets
/// name no aggregate-trade, book-ticker, diff-depth or liquidation stream of
/// the generator (books are channels of their own; liquidations are a flag
/// on trades), so those are never called and write nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encoder {
    /// The market's kind.
    pub kind: DeribitKind,
}

impl Encode for Encoder {
    fn trade(&self, s: &SymbolState, price: i64, qty: i64, buy: bool, now_ms: u64) -> String {
        trade_object(self.kind, s, price, qty, buy, now_ms)
    }

    fn agg_trade(&self, _: &SymbolState, _: i64, _: i64, _: u64, _: bool, _: u64) -> String {
        String::new()
    }

    fn book_ticker(&self, _: &SymbolState, _: u64) -> String {
        String::new()
    }

    fn depth_diff(&self, _: &SymbolState, _: &DepthDiff<'_>, _: u64) -> String {
        String::new()
    }

    fn liquidation(&self, _: &SymbolState, _: &Liquidation, _: u64) -> String {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_one_fraction_digit_and_are_exact() {
        assert_eq!(num(922_885, 1), "92288.5");
        assert_eq!(num(922_880, 1), "92288.0");
        assert_eq!(num(10, 0), "10.0");
        assert_eq!(num(5, 4), "0.0005");
        assert_eq!(num(-15, 1), "-1.5");
        assert_eq!(float(0.5, 4), "0.5");
        assert_eq!(float(3.0, 2), "3.0");
        assert_eq!(float(f64::NAN, 2), "0.0");
    }

    #[test]
    fn instruments_scale_ticks_and_lots() {
        let perp = SymbolSpec::with_tick("BTC-PERPETUAL", "BTC", "USD", 1, 5, 0, 97_000.0);
        let i = Inst::of(DeribitKind::Inverse, &perp);
        assert_eq!(i.price(perp.start_price_ticks), "97000.0");
        assert_eq!(i.price(194_001), "97000.5");
        assert_eq!((i.amount(3), i.contracts(3), i.contract_size()), ("30.0".into(), "3.0".into(), "10.0".into()));
        let opt = SymbolSpec::with_tick("BTC-25JUN27-100000-C", "BTC", "BTC", 4, 5, 1, 0.05);
        let o = Inst::of(DeribitKind::Option, &opt);
        assert_eq!((o.price(101), o.amount(3), o.contracts(3)), ("0.0505".into(), "0.3".into(), "0.3".into()));
        let lin = SymbolSpec::with_tick("BTC_USDC-PERPETUAL", "BTC", "USDC", 0, 1, 4, 97_000.0);
        let l = Inst::of(DeribitKind::Linear, &lin);
        assert_eq!(
            (l.amount(25), l.contracts(25), l.contract_size()),
            ("0.0025".into(), "25.0".into(), "0.0001".into())
        );
    }
}
