//! Binance local order-book rules: the sequencing rule per market and the
//! REST snapshot request (path, allowed depths, weight).
//!
//! Spot ([`SpotSequencing`], PROTOCOLS.md §1.5): diffs carry `U..=u`, and the
//! ids of one symbol are consecutive. A diff continues a book at id `n` when
//! `U <= n + 1 <= u`; `u <= n` is already in the book.
//!
//! Futures and options ([`FuturesSequencing`], §2.4): update ids are shared
//! across symbols and jump, so diffs chain through `pu` (the previous diff's
//! `u`). The first diff on a snapshot `n` must satisfy `U <= n <= u`; diffs
//! with `u < n` are older than the snapshot; afterwards `pu` must equal the
//! previous `u`.

use ferrofeed_model::event::BookDelta;
use ferrofeed_model::sequencing::{BookSequencing, Verdict};

use super::Market;

/// Binance spot: consecutive `U..=u` ranges.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpotSequencing;

impl BookSequencing for SpotSequencing {
    fn bridge(&self, snapshot_id: u64, d: &BookDelta) -> Verdict {
        self.follow(snapshot_id, d)
    }

    fn follow(&self, last: u64, d: &BookDelta) -> Verdict {
        if d.last_update_id <= last {
            Verdict::Suppress
        } else if d.first_update_id <= last + 1 {
            Verdict::Accept
        } else {
            Verdict::Recover
        }
    }
}

/// Binance USDⓈ-M, COIN-M and options: the `pu` chain.
#[derive(Debug, Clone, Copy, Default)]
pub struct FuturesSequencing;

impl BookSequencing for FuturesSequencing {
    fn bridge(&self, snapshot_id: u64, d: &BookDelta) -> Verdict {
        if d.last_update_id < snapshot_id {
            Verdict::Suppress
        } else if d.first_update_id <= snapshot_id {
            Verdict::Accept
        } else {
            Verdict::Recover
        }
    }

    fn follow(&self, last: u64, d: &BookDelta) -> Verdict {
        if d.last_update_id <= last {
            Verdict::Suppress
        } else if d.prev_update_id == Some(last) {
            Verdict::Accept
        } else {
            Verdict::Recover
        }
    }
}

/// The sequencing rule of `market`.
pub fn sequencing(market: Market) -> &'static dyn BookSequencing {
    match market {
        Market::Spot => &SpotSequencing,
        Market::UsdM | Market::CoinM | Market::Options => &FuturesSequencing,
    }
}

/// Largest REST snapshot depth: 5000 on spot, 1000 elsewhere.
pub fn max_snapshot_depth(market: Market) -> u32 {
    match market {
        Market::Spot => 5000,
        _ => 1000,
    }
}

/// The REST snapshot request for `symbol` at `depth` levels: path and query,
/// and its request weight. `depth` is clamped to what the market allows (futures
/// and options take only 5, 10, 20, 50, 100, 500 or 1000; the next one up is
/// used).
pub fn snapshot_request(market: Market, symbol: &str, depth: u32) -> (String, u32, u32) {
    let depth = depth.clamp(1, max_snapshot_depth(market));
    let sym = symbol.to_ascii_uppercase();
    match market {
        Market::Spot => {
            let weight = match depth {
                0..=100 => 5,
                101..=500 => 25,
                501..=1000 => 50,
                _ => 250,
            };
            (format!("/api/v3/depth?symbol={sym}&limit={depth}"), weight, depth)
        }
        _ => {
            let depth = [5, 10, 20, 50, 100, 500, 1000].into_iter().find(|&d| d >= depth).unwrap_or(1000);
            let weight = match depth {
                0..=50 => 2,
                51..=100 => 5,
                101..=500 => 10,
                _ => 20,
            };
            let prefix = match market {
                Market::UsdM => "/fapi/v1",
                Market::CoinM => "/dapi/v1",
                _ => "/eapi/v1",
            };
            (format!("{prefix}/depth?symbol={sym}&limit={depth}"), weight, depth)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(first: u64, last: u64, prev: Option<u64>) -> BookDelta {
        BookDelta { first_update_id: first, last_update_id: last, prev_update_id: prev, bids: vec![], asks: vec![] }
    }

    #[test]
    fn spot_bridges_when_the_snapshot_id_plus_one_is_inside_the_range() {
        let s = SpotSequencing;
        assert_eq!(s.bridge(100, &delta(90, 100, None)), Verdict::Suppress);
        assert_eq!(s.bridge(100, &delta(95, 101, None)), Verdict::Accept);
        assert_eq!(s.bridge(100, &delta(101, 101, None)), Verdict::Accept);
        assert_eq!(s.bridge(100, &delta(102, 105, None)), Verdict::Recover);
        assert_eq!(s.follow(101, &delta(102, 102, None)), Verdict::Accept);
        assert_eq!(s.follow(101, &delta(103, 104, None)), Verdict::Recover);
        assert_eq!(s.follow(101, &delta(100, 101, None)), Verdict::Suppress);
    }

    #[test]
    fn futures_bridge_on_the_snapshot_id_then_chain_pu() {
        let f = FuturesSequencing;
        assert_eq!(f.bridge(100, &delta(80, 99, Some(70))), Verdict::Suppress);
        assert_eq!(f.bridge(100, &delta(80, 100, Some(70))), Verdict::Accept);
        assert_eq!(f.bridge(100, &delta(95, 130, Some(90))), Verdict::Accept);
        assert_eq!(f.bridge(100, &delta(101, 130, Some(100))), Verdict::Recover);
        assert_eq!(f.follow(130, &delta(140, 150, Some(130))), Verdict::Accept);
        assert_eq!(f.follow(130, &delta(140, 150, Some(131))), Verdict::Recover);
        assert_eq!(f.follow(130, &delta(120, 130, Some(110))), Verdict::Suppress);
        assert_eq!(f.follow(130, &delta(140, 150, None)), Verdict::Recover);
    }

    #[test]
    fn snapshot_requests_use_the_documented_paths_and_weights() {
        assert_eq!(
            snapshot_request(Market::Spot, "btcusdt", 5000),
            ("/api/v3/depth?symbol=BTCUSDT&limit=5000".into(), 250, 5000)
        );
        assert_eq!(snapshot_request(Market::Spot, "BTCUSDT", 100).1, 5);
        assert_eq!(snapshot_request(Market::Spot, "BTCUSDT", 9999).2, 5000);
        assert_eq!(
            snapshot_request(Market::UsdM, "BTCUSDT", 5000),
            ("/fapi/v1/depth?symbol=BTCUSDT&limit=1000".into(), 20, 1000)
        );
        assert_eq!(
            snapshot_request(Market::CoinM, "BTCUSD_PERP", 60),
            ("/dapi/v1/depth?symbol=BTCUSD_PERP&limit=100".into(), 5, 100)
        );
        assert_eq!(snapshot_request(Market::Options, "BTC-1", 20).1, 2);
    }
}
