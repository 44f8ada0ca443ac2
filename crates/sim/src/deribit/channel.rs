//! Deribit channel names (PROTOCOLS.md §6.6): what a `public/subscribe` or
//! `private/subscribe` channel asks for. A name that does not parse, names an
//! unknown instrument or an unsupported interval is `None`: the venue drops
//! it silently from the subscribe result.

use crate::config::{DeribitKind, SymbolSpec};

use super::encode::{currency, kind_name};

/// A notification interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Interval {
    /// Every change (authorized connections only: error 13778 otherwise).
    Raw,
    /// Batched per 100 ms.
    Ms100,
    /// Aggregated (the simulator pushes every second).
    Agg2,
}

impl Interval {
    pub(crate) const ALL: [Interval; 3] = [Interval::Raw, Interval::Ms100, Interval::Agg2];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Interval::Raw => "raw",
            Interval::Ms100 => "100ms",
            Interval::Agg2 => "agg2",
        }
    }

    fn parse(s: &str) -> Option<Interval> {
        Interval::ALL.into_iter().find(|i| i.name() == s)
    }

    /// Push cadence in ms before `Timing::scale` (raw: every generator step).
    pub(crate) fn period_ms(self) -> u64 {
        match self {
            Interval::Raw => 0,
            Interval::Ms100 => 100,
            Interval::Agg2 => 1000,
        }
    }
}

/// The chart resolutions of `chart.trades.{instrument}.{resolution}`.
pub(crate) const RESOLUTIONS: [&str; 12] = ["1", "3", "5", "10", "15", "30", "60", "120", "180", "360", "720", "1D"];

/// The depths of grouped books.
const GROUPED_DEPTHS: [usize; 3] = [1, 10, 20];

/// The price indices served.
pub(crate) const INDICES: [&str; 2] = ["btc_usd", "eth_usd"];

/// Which instruments a `kind.currency` selector covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Scope {
    /// One instrument.
    Inst(String),
    /// `{kind}.{currency}`, either of which may be `any`.
    Group { kind: String, currency: String },
}

impl Scope {
    /// Whether the instrument `spec` of a market of `mk` falls in the scope.
    pub(crate) fn covers(&self, mk: DeribitKind, spec: &SymbolSpec) -> bool {
        match self {
            Scope::Inst(n) => *n == spec.name,
            Scope::Group { kind, currency: c } => {
                (kind == "any" || kind == kind_name(mk)) && (c == "any" || c == currency(mk, spec))
            }
        }
    }
}

/// A channel the simulator feeds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Channel {
    /// `book.{inst}.{interval}`: snapshot, then changes with a `change_id` chain.
    Book(String, Interval),
    /// `book.{inst}.none.{depth}.{interval}`: full top-`depth` snapshots.
    Grouped(String, usize, Interval),
    /// `trades.{inst}.{interval}` or `trades.{kind}.{currency}.{interval}`.
    Trades(Scope, Interval),
    /// `ticker.{inst}.{interval}`.
    Ticker(String, Interval),
    /// `quote.{inst}`.
    Quote(String),
    /// `chart.trades.{inst}.{resolution}`.
    Chart(String, &'static str),
    /// `perpetual.{inst}.{interval}` (perpetuals only).
    Perpetual(String, Interval),
    /// `deribit_price_index.{index}`.
    PriceIndex(&'static str),
    /// `user.orders.{scope}.{interval}`.
    UserOrders(Scope, Interval),
    /// `user.trades.{scope}.{interval}`.
    UserTrades(Scope, Interval),
    /// `user.changes.{scope}.{interval}`.
    UserChanges(Scope, Interval),
    /// `user.portfolio.{currency|any}` (lower or upper case).
    Portfolio(String),
}

impl Channel {
    /// Private (`user.*`): needs an authorized connection.
    pub(crate) fn is_private(&self) -> bool {
        matches!(
            self,
            Channel::UserOrders(..) | Channel::UserTrades(..) | Channel::UserChanges(..) | Channel::Portfolio(_)
        )
    }

    /// The interval, for channels that have one.
    pub(crate) fn interval(&self) -> Option<Interval> {
        match self {
            Channel::Book(_, i)
            | Channel::Grouped(_, _, i)
            | Channel::Trades(_, i)
            | Channel::Ticker(_, i)
            | Channel::Perpetual(_, i)
            | Channel::UserOrders(_, i)
            | Channel::UserTrades(_, i)
            | Channel::UserChanges(_, i) => Some(*i),
            _ => None,
        }
    }
}

/// What a market knows, to check channel names against.
pub(crate) struct Known<'a> {
    pub specs: &'a [&'a SymbolSpec],
}

impl Known<'_> {
    fn inst(&self, name: &str) -> Option<&SymbolSpec> {
        self.specs.iter().copied().find(|s| s.name == name)
    }

    /// A `{kind}.{currency}` selector as Deribit spells it.
    fn group(&self, kind: &str, cur: &str) -> Option<Scope> {
        const KINDS: [&str; 7] = ["future", "option", "spot", "future_combo", "option_combo", "combo", "any"];
        const CURRENCIES: [&str; 6] = ["BTC", "ETH", "USDC", "USDT", "EURR", "any"];
        (KINDS.contains(&kind) && CURRENCIES.contains(&cur))
            .then(|| Scope::Group { kind: kind.to_string(), currency: cur.to_string() })
    }

    /// `{inst}` or `{kind}.{currency}` followed by `.{interval}`.
    fn scoped(&self, rest: &str) -> Option<(Scope, Interval)> {
        let (sel, iv) = rest.rsplit_once('.')?;
        let iv = Interval::parse(iv)?;
        if let Some(s) = self.inst(sel) {
            return Some((Scope::Inst(s.name.clone()), iv));
        }
        let (k, c) = sel.split_once('.')?;
        Some((self.group(k, c)?, iv))
    }

    /// Parses a channel name; `None` is dropped silently.
    pub(crate) fn parse(&self, name: &str) -> Option<Channel> {
        let (head, rest) = name.split_once('.')?;
        let one = |r: &str| -> Option<(String, Interval)> {
            let (inst, iv) = r.rsplit_once('.')?;
            Some((self.inst(inst)?.name.clone(), Interval::parse(iv)?))
        };
        match head {
            "book" => {
                let parts: Vec<&str> = rest.split('.').collect();
                match parts.as_slice() {
                    [inst, iv] => Some(Channel::Book(self.inst(inst)?.name.clone(), Interval::parse(iv)?)),
                    [inst, "none", depth, iv] => {
                        let d: usize = depth.parse().ok().filter(|d| GROUPED_DEPTHS.contains(d))?;
                        (d.to_string() == *depth).then_some(()).and_then(|_| {
                            Some(Channel::Grouped(self.inst(inst)?.name.clone(), d, Interval::parse(iv)?))
                        })
                    }
                    _ => None,
                }
            }
            "trades" => self.scoped(rest).map(|(s, i)| Channel::Trades(s, i)),
            "ticker" => one(rest).map(|(s, i)| Channel::Ticker(s, i)),
            "quote" => Some(Channel::Quote(self.inst(rest)?.name.clone())),
            "chart" => {
                let r = rest.strip_prefix("trades.")?;
                let (inst, res) = r.rsplit_once('.')?;
                let res = RESOLUTIONS.iter().find(|x| **x == res)?;
                Some(Channel::Chart(self.inst(inst)?.name.clone(), res))
            }
            "perpetual" => {
                let (inst, iv) = one(rest)?;
                inst.ends_with("-PERPETUAL").then_some(Channel::Perpetual(inst, iv))
            }
            "deribit_price_index" => INDICES.iter().find(|i| **i == rest).map(|i| Channel::PriceIndex(i)),
            "user" => {
                let (what, r) = rest.split_once('.')?;
                match what {
                    "orders" => self.scoped(r).map(|(s, i)| Channel::UserOrders(s, i)),
                    "trades" => self.scoped(r).map(|(s, i)| Channel::UserTrades(s, i)),
                    "changes" => self.scoped(r).map(|(s, i)| Channel::UserChanges(s, i)),
                    "portfolio" => {
                        let c = r.to_uppercase();
                        (c == "ANY" || ["BTC", "ETH", "USDC", "USDT"].contains(&c.as_str()))
                            .then(|| Channel::Portfolio(if c == "ANY" { "any".into() } else { c }))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_parse_like_the_venue_and_unknown_ones_drop() {
        let perp = SymbolSpec::with_tick("BTC-PERPETUAL", "BTC", "USD", 1, 5, 0, 97_000.0);
        let fut = SymbolSpec::with_tick("BTC-25JUN27", "BTC", "USD", 1, 5, 0, 97_000.0);
        let specs = [&perp, &fut];
        let k = Known { specs: &specs };
        assert_eq!(k.parse("book.BTC-PERPETUAL.100ms"), Some(Channel::Book("BTC-PERPETUAL".into(), Interval::Ms100)));
        assert_eq!(
            k.parse("book.BTC-PERPETUAL.none.10.100ms"),
            Some(Channel::Grouped("BTC-PERPETUAL".into(), 10, Interval::Ms100))
        );
        assert_eq!(
            k.parse("trades.future.BTC.raw"),
            Some(Channel::Trades(Scope::Group { kind: "future".into(), currency: "BTC".into() }, Interval::Raw))
        );
        assert_eq!(k.parse("chart.trades.BTC-PERPETUAL.1D"), Some(Channel::Chart("BTC-PERPETUAL".into(), "1D")));
        assert_eq!(k.parse("perpetual.BTC-PERPETUAL.100ms").map(|c| c.interval()), Some(Some(Interval::Ms100)));
        assert_eq!(k.parse("deribit_price_index.btc_usd"), Some(Channel::PriceIndex("btc_usd")));
        assert_eq!(k.parse("user.portfolio.btc"), Some(Channel::Portfolio("BTC".into())));
        assert!(k.parse("user.orders.any.any.raw").is_some_and(|c| c.is_private()));
        for bad in [
            "book.ETH-PERPETUAL.100ms",
            "book.BTC-PERPETUAL.10ms",
            "book.BTC-PERPETUAL.none.5.100ms",
            "book.BTC-PERPETUAL.none.010.100ms",
            "perpetual.BTC-25JUN27.100ms",
            "trades.future.DOGE.raw",
            "chart.trades.BTC-PERPETUAL.2",
            "deribit_price_index.sol_usd",
            "nope.BTC-PERPETUAL",
            "quote",
            "",
        ] {
            assert_eq!(k.parse(bad), None, "{bad}");
        }
        let s = Scope::Group { kind: "future".into(), currency: "any".into() };
        assert!(s.covers(DeribitKind::Inverse, &perp) && !s.covers(DeribitKind::Option, &perp));
    }
}
