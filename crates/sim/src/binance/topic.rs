//! Stream names: syntax check, and the topics the simulator knows how to feed.
//!
//! Like the live venue, a well-formed stream name the simulator does not know
//! is acknowledged and then stays silent; only a syntactically invalid name gets
//! `{"error":{"code":2,"msg":"Invalid request: invalid stream"}}`.

use std::any::Any;

use crate::config::{MarketKind, SymbolSpec};
use crate::hub::Render;
use crate::market::{Market, Names};

use super::encode::{
    avg_price_payload, kline_render, mark_price_payload, mini_ticker_payload, partial_payload, ticker_payload,
};

/// A stream the simulator can feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Topic {
    Trade(String),
    AggTrade(String),
    /// Diff depth at a cadence (ms).
    Depth(String, u64),
    /// Partial book: levels and cadence (ms).
    Partial(String, usize, u64),
    BookTicker(String),
    Ticker(String),
    MiniTicker(String),
    AllMiniTicker,
    /// Rolling-window ticker: `1h`, `4h` or `1d`.
    Rolling(String, &'static str),
    Kline(String, &'static str),
    AvgPrice(String),
    /// Mark price; `true` for the 1 s variant.
    MarkPrice(String, bool),
    AllMarkPrice(bool),
    ForceOrder(String),
    AllForceOrder,
    OptionTrade(String),
    OptionTicker(String),
}

/// Which USD-M/options route serves a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/public`: book data.
    Public,
    /// `/market`: everything else.
    Market,
    /// `/private`: user data.
    Private,
}

pub(crate) const SPOT_KLINES: [&str; 16] =
    ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"];

/// Milliseconds of a kline interval (`1M` is taken as 30 days).
pub(crate) fn interval_ms(i: &str) -> u64 {
    let (n, unit) = i.split_at(i.len() - 1);
    let n: u64 = n.parse().unwrap_or(1);
    n * match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => 30 * 86_400_000,
    }
}

/// The bucket of a kline interval holding `now_ms`: aligned on the epoch
/// (`1w` on the epoch's weekday, `1M` 30 days).
pub(crate) fn bounds(iv: &str, now_ms: u64) -> (u64, u64) {
    let len = interval_ms(iv);
    let open_time = now_ms - now_ms % len;
    (open_time, open_time + len - 1)
}

/// The stream names of a symbol's generated events on a Binance market
/// (options publish their trades on `<symbol>@optionTrade`; `@trade` also
/// turns them on).
pub(crate) fn names(kind: MarketKind, spec: &SymbolSpec) -> Names {
    let lower = spec.name.to_lowercase();
    let trade = format!("{lower}@trade");
    let option_trade = format!("{lower}@optionTrade");
    Names {
        trade: if kind == MarketKind::Options { option_trade.clone() } else { trade.clone() },
        trade_watch: vec![trade.clone(), option_trade],
        user_trade: trade,
        agg: Some(format!("{lower}@aggTrade")),
        book_ticker: Some(format!("{lower}@bookTicker")),
        depth: depth_speeds(kind).iter().map(|(sfx, _)| format!("{lower}@depth{sfx}")).collect(),
        force: format!("{lower}@forceOrder"),
    }
}

/// Syntax accepted by the venue: lower-case symbol part, `@`-separated parts of
/// ASCII alphanumerics and `_ - : + .`, optional leading `!`.
pub(crate) fn is_well_formed(name: &str) -> bool {
    let (bang, body) = match name.strip_prefix('!') {
        Some(b) => (true, b),
        None => (false, name),
    };
    let mut parts = body.split('@');
    let Some(first) = parts.next() else { return false };
    if first.is_empty() || (!bang && first.bytes().any(|b| b.is_ascii_uppercase())) {
        return false;
    }
    let ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-:+.".contains(&b));
    ok(first) && name.contains('@') && parts.all(ok)
}

/// Depth cadences of a market: (`@depth` suffix, ms). The first is the plain name.
pub(crate) fn depth_speeds(kind: MarketKind) -> &'static [(&'static str, u64)] {
    match kind {
        MarketKind::Spot => &[("", 1000), ("@100ms", 100)],
        MarketKind::UsdM | MarketKind::CoinM => &[("", 250), ("@500ms", 500), ("@100ms", 100)],
        MarketKind::Options => &[("", 500), ("@500ms", 500), ("@100ms", 100)],
    }
}

/// Parses a stream name into a topic, given a symbol lookup on lower-case names.
/// `None` means well-formed but unknown (acknowledged, silent).
pub(crate) fn parse(kind: MarketKind, name: &str, known: impl Fn(&str) -> bool) -> Option<Topic> {
    let deriv = kind.is_derivative();
    match name {
        "!miniTicker@arr" => return Some(Topic::AllMiniTicker),
        "!forceOrder@arr" if deriv && kind != MarketKind::Options => return Some(Topic::AllForceOrder),
        "!markPrice@arr" if matches!(kind, MarketKind::UsdM) => return Some(Topic::AllMarkPrice(false)),
        "!markPrice@arr@1s" if matches!(kind, MarketKind::UsdM) => return Some(Topic::AllMarkPrice(true)),
        _ => {}
    }
    let (sym, rest) = name.split_once('@')?;
    if !known(sym) {
        return None;
    }
    let s = sym.to_string();
    let speed = |suffix: &str| depth_speeds(kind).iter().find(|(sfx, _)| *sfx == suffix).map(|(_, ms)| *ms);
    if kind == MarketKind::Options {
        match rest {
            "optionTrade" | "trade" => return Some(Topic::OptionTrade(s)),
            "optionTicker" | "ticker" => return Some(Topic::OptionTicker(s)),
            _ => {}
        }
    }
    let topic = match rest {
        "trade" if kind != MarketKind::Options => Topic::Trade(s),
        "aggTrade" if kind != MarketKind::Options => Topic::AggTrade(s),
        "bookTicker" => Topic::BookTicker(s),
        "ticker" => Topic::Ticker(s),
        "miniTicker" => Topic::MiniTicker(s),
        "avgPrice" if kind == MarketKind::Spot => Topic::AvgPrice(s),
        "markPrice" if matches!(kind, MarketKind::UsdM | MarketKind::CoinM) => Topic::MarkPrice(s, false),
        "markPrice@1s" if matches!(kind, MarketKind::UsdM | MarketKind::CoinM) => Topic::MarkPrice(s, true),
        "forceOrder" if matches!(kind, MarketKind::UsdM | MarketKind::CoinM) => Topic::ForceOrder(s),
        "ticker_1h" if kind == MarketKind::Spot => Topic::Rolling(s, "1h"),
        "ticker_4h" if kind == MarketKind::Spot => Topic::Rolling(s, "4h"),
        "ticker_1d" if kind == MarketKind::Spot => Topic::Rolling(s, "1d"),
        _ => {
            if let Some(iv) = rest.strip_prefix("kline_") {
                let iv = SPOT_KLINES.iter().find(|k| **k == iv && (kind == MarketKind::Spot || **k != "1s"))?;
                Topic::Kline(s, iv)
            } else if let Some(d) = rest.strip_prefix("depth") {
                let (levels, suffix) = match d.find('@') {
                    Some(i) => (&d[..i], &d[i..]),
                    None => (d, ""),
                };
                let ms = speed(suffix)?;
                match levels {
                    "" => Topic::Depth(s, ms),
                    "5" => Topic::Partial(s, 5, ms),
                    "10" => Topic::Partial(s, 10, ms),
                    "20" => Topic::Partial(s, 20, ms),
                    _ => return None,
                }
            } else {
                return None;
            }
        }
    };
    Some(topic)
}

impl Topic {
    /// The route that serves this topic on routed markets. USD-M `@trade`
    /// (undocumented there) is on `/public`: live reports after the 2026-04-23
    /// split have it delivering on unrouted connections, which only get
    /// `/public` streams (binance/binance-public-data#472,
    /// binance/binance-connector-python#526), and ccxt maps it to `public`.
    pub(crate) fn route(&self) -> Route {
        match self {
            Topic::Depth(..)
            | Topic::Partial(..)
            | Topic::BookTicker(_)
            | Topic::Trade(_)
            | Topic::OptionTrade(_)
            | Topic::OptionTicker(_) => Route::Public,
            _ => Route::Market,
        }
    }

    /// Cadence (ms) of snapshot-style topics rendered by the hub's timers; `None`
    /// for event-driven topics fed by the generator.
    pub(crate) fn period_ms(&self, kind: MarketKind) -> Option<u64> {
        let deriv = kind.is_derivative();
        Some(match self {
            Topic::Partial(_, _, ms) => *ms,
            Topic::Ticker(_) | Topic::MiniTicker(_) => match kind {
                MarketKind::Spot | MarketKind::Options => 1000,
                MarketKind::UsdM => 2000,
                MarketKind::CoinM => 500,
            },
            Topic::OptionTicker(_) | Topic::AllMiniTicker | Topic::Rolling(..) | Topic::AvgPrice(_) => 1000,
            Topic::Kline(_, iv) => {
                if deriv {
                    250
                } else if *iv == "1s" {
                    1000
                } else {
                    2000
                }
            }
            Topic::MarkPrice(_, fast) | Topic::AllMarkPrice(fast) => {
                if *fast {
                    1000
                } else {
                    3000
                }
            }
            _ => return None,
        })
    }
}

/// A snapshot-style topic (tickers, klines, partial depth, mark prices, ...)
/// rendered on its timer, with its own previous final update id (the partial
/// depth's `pu`).
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// What it renders.
    pub topic: Topic,
    /// The last update id it sent.
    pub last_u: u64,
}

impl Render for Snapshot {
    fn render(&mut self, m: &mut Market, _venue: &mut (dyn Any + Send), now_ms: u64) -> Vec<(String, Option<u64>)> {
        render(m, &self.topic, now_ms, &mut self.last_u)
    }
}

fn render(m: &mut Market, topic: &Topic, now_ms: u64, last_u: &mut u64) -> Vec<(String, Option<u64>)> {
    let kind = m.kind;
    match topic {
        Topic::Partial(sym, levels, _) => {
            let Some(s) = m.by_lower(sym) else { return vec![] };
            let p = partial_payload(kind, s, *levels, now_ms, last_u);
            vec![(p, Some(s.update_id))]
        }
        Topic::Ticker(sym) | Topic::OptionTicker(sym) => {
            m.by_lower(sym).map(|s| vec![(ticker_payload(kind, s, now_ms, None), None)]).unwrap_or_default()
        }
        Topic::Rolling(sym, w) => {
            m.by_lower(sym).map(|s| vec![(ticker_payload(kind, s, now_ms, Some(w)), None)]).unwrap_or_default()
        }
        Topic::MiniTicker(sym) => {
            m.by_lower(sym).map(|s| vec![(mini_ticker_payload(kind, s, now_ms), None)]).unwrap_or_default()
        }
        Topic::AllMiniTicker => {
            let mut p = String::from("[");
            for (i, s) in m.symbols.iter().enumerate() {
                if i > 0 {
                    p.push(',');
                }
                p.push_str(&mini_ticker_payload(kind, s, now_ms));
            }
            p.push(']');
            vec![(p, None)]
        }
        Topic::AvgPrice(sym) => m.by_lower(sym).map(|s| vec![(avg_price_payload(s, now_ms), None)]).unwrap_or_default(),
        Topic::MarkPrice(sym, _) => {
            m.by_lower(sym).map(|s| vec![(mark_price_payload(kind, s, now_ms), None)]).unwrap_or_default()
        }
        Topic::AllMarkPrice(_) => {
            let mut p = String::from("[");
            for (i, s) in m.symbols.iter().enumerate() {
                if i > 0 {
                    p.push(',');
                }
                p.push_str(&mark_price_payload(kind, s, now_ms));
            }
            p.push(']');
            vec![(p, None)]
        }
        Topic::Kline(sym, iv) => {
            let Some(s) = m.by_lower_mut(sym) else { return vec![] };
            kline_render(kind, s, iv, now_ms)
        }
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_matches_the_venue() {
        for ok in
            ["btcusdt@trade", "btcusdt@depth@100ms", "!miniTicker@arr", "btcusdt@kline_1m", "btcusdt@naoExisteStream"]
        {
            assert!(is_well_formed(ok), "{ok}");
        }
        for bad in ["@@@lixo###", "BTCUSDT@trade", "btcusdt", "btcusdt@", "btc usdt@trade", ""] {
            assert!(!is_well_formed(bad), "{bad}");
        }
    }

    #[test]
    fn parses_known_topics_per_market() {
        let known = |s: &str| s == "btcusdt";
        assert_eq!(parse(MarketKind::Spot, "btcusdt@depth@100ms", known), Some(Topic::Depth("btcusdt".into(), 100)));
        assert_eq!(parse(MarketKind::Spot, "btcusdt@depth", known), Some(Topic::Depth("btcusdt".into(), 1000)));
        assert_eq!(parse(MarketKind::UsdM, "btcusdt@depth", known), Some(Topic::Depth("btcusdt".into(), 250)));
        assert_eq!(
            parse(MarketKind::UsdM, "btcusdt@depth10@500ms", known),
            Some(Topic::Partial("btcusdt".into(), 10, 500))
        );
        assert_eq!(parse(MarketKind::Spot, "btcusdt@kline_1s", known), Some(Topic::Kline("btcusdt".into(), "1s")));
        assert_eq!(parse(MarketKind::UsdM, "btcusdt@kline_1s", known), None);
        assert_eq!(parse(MarketKind::Spot, "ethusdt@trade", known), None);
        assert_eq!(parse(MarketKind::Spot, "btcusdt@markPrice", known), None);
        assert_eq!(interval_ms("15m"), 900_000);
    }
}
