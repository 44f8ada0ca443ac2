//! REST endpoints: `depth` (snapshots aligned with the diff streams),
//! `exchangeInfo`, `time`, `ping`, with request weights charged against the
//! venue's per-minute budget (429 and `-1003` when exceeded). The private
//! endpoints (listenKeys, orders) are in `private`.

use std::fmt::Write as _;

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::HeaderValue;

use crate::config::MarketKind;
use crate::hub::Hub;
use crate::market::{BookCopy, Market, SymbolState, fmt_dec};
use crate::server::{Resp, json, query};

use super::venue_error;

use super::encode::{dec_p, dec_q, levels_json};

/// Request weight of a depth snapshot (spot: 5/25/50/250; futures: 2/5/10/20).
pub(crate) fn depth_weight(kind: MarketKind, limit: u32) -> u32 {
    if kind == MarketKind::Spot {
        match limit {
            0..=100 => 5,
            101..=500 => 25,
            501..=1000 => 50,
            _ => 250,
        }
    } else {
        match limit {
            0..=50 => 2,
            51..=100 => 5,
            101..=500 => 10,
            _ => 20,
        }
    }
}

pub(crate) fn handle(req: &hyper::Request<Bytes>, hub: &Hub) -> Resp {
    if let Some(r) = crate::binance::private::handle(req, hub) {
        return r;
    }
    let kind = hub.kind();
    let path = req.uri().path();
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::POST {
        return venue_error(StatusCode::METHOD_NOT_ALLOWED, -1000, "Method not allowed.");
    }
    let Some(endpoint) = path.strip_prefix(kind.rest_prefix()) else {
        return venue_error(StatusCode::NOT_FOUND, -1000, "Not found.");
    };
    let q = query(req.uri().query());
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let (weight, body): (u32, Result<String, Resp>) = match endpoint {
        "/ping" => (1, Ok("{}".into())),
        "/time" => {
            let st = hub.lock();
            (1, Ok(format!("{{\"serverTime\":{}}}", hub.venue_ms(&st))))
        }
        "/exchangeInfo" => {
            let st = hub.lock();
            let w = if kind == MarketKind::Spot { 20 } else { 1 };
            (w, Ok(exchange_info(&st.market, hub.venue_ms(&st), hub.cfg.limits.rest_weight_limit)))
        }
        "/depth" => {
            let max = if kind == MarketKind::Spot { 5000 } else { 1000 };
            let limit = match get("limit").map(str::parse::<u32>) {
                None => {
                    if kind == MarketKind::Spot {
                        100
                    } else {
                        500
                    }
                }
                Some(Ok(n)) if (1..=max).contains(&n) => n,
                Some(_) => {
                    return venue_error(
                        StatusCode::BAD_REQUEST,
                        -1100,
                        &format!("Illegal characters found in parameter 'limit'; legal range is 1..={max}."),
                    );
                }
            };
            (depth_weight(kind, limit), depth(hub, get("symbol"), limit))
        }
        _ => return venue_error(StatusCode::NOT_FOUND, -1000, "Not found."),
    };
    let used = match hub.charge_weight(weight) {
        Ok(u) => u,
        Err(retry) => {
            let mut r = venue_error(
                StatusCode::TOO_MANY_REQUESTS,
                -1003,
                &format!(
                    "Too many requests; current limit of IP(127.0.0.1) is {} requests per minute.",
                    hub.cfg.limits.rest_weight_limit
                ),
            );
            if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
                r.headers_mut().insert("retry-after", v);
            }
            return r;
        }
    };
    let mut r = match body {
        Ok(b) => json(StatusCode::OK, Bytes::from(b)),
        Err(r) => r,
    };
    if let Ok(v) = HeaderValue::from_str(&used.to_string()) {
        r.headers_mut().insert("x-mbx-used-weight-1m", v.clone());
        r.headers_mut().insert("x-mbx-used-weight", v);
    }
    r
}

#[allow(clippy::result_large_err)] // built once per request, returned straight to hyper
fn depth(hub: &Hub, symbol: Option<&str>, limit: u32) -> Result<String, Resp> {
    let Some(symbol) = symbol else {
        return Err(venue_error(
            StatusCode::BAD_REQUEST,
            -1102,
            "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
        ));
    };
    let mut st = hub.lock();
    if st.faults.rest_rate_limited > 0 {
        st.faults.rest_rate_limited -= 1;
        st.counters.snapshots_failed_by_fault += 1;
        let mut r = venue_error(
            StatusCode::TOO_MANY_REQUESTS,
            -1003,
            "Too many requests; current limit of IP(127.0.0.1) is reached.",
        );
        if let Some(v) = st.faults.rest_retry_after.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            r.headers_mut().insert("retry-after", v);
        }
        return Err(r);
    }
    if st.faults.rest_fail > 0 {
        st.faults.rest_fail -= 1;
        st.counters.snapshots_failed_by_fault += 1;
        return Err(venue_error(
            StatusCode::SERVICE_UNAVAILABLE,
            -1008,
            "Server is currently overloaded with other requests. Please try again in a few minutes.",
        ));
    }
    // The load form's books (stale snapshots are not emulated for them).
    if let Some(body) = super::load::snapshot(hub, symbol, limit) {
        return Ok(body);
    }
    let stale = if st.faults.rest_stale > 0 {
        st.faults.rest_stale -= 1;
        st.counters.snapshots_stale_by_fault += 1;
        true
    } else {
        false
    };
    let now = hub.venue_ms(&st);
    let Some(s) = st.market.symbol(symbol) else {
        return Err(venue_error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol."));
    };
    let copy = match (stale, s.stale_copy()) {
        (true, Some(c)) => {
            let mut c = c.clone();
            c.bids.truncate(limit as usize);
            c.asks.truncate(limit as usize);
            c
        }
        _ => s.copy(limit as usize, now),
    };
    Ok(depth_body(&st.market, &copy, s, now))
}

/// The REST `depth` body for `symbol` (upper case) with `limit` levels.
pub(crate) fn depth_body(m: &Market, copy: &BookCopy, s: &SymbolState, now_ms: u64) -> String {
    let mut p = String::with_capacity(64 + 40 * (copy.bids.len() + copy.asks.len()));
    let _ = write!(p, "{{\"lastUpdateId\":{}", copy.last_update_id);
    if m.kind.is_derivative() {
        let _ = write!(p, ",\"E\":{now_ms},\"T\":{}", now_ms.saturating_sub(3));
    }
    p.push_str(",\"bids\":");
    levels_json(&mut p, m.kind, &s.spec, copy.bids.iter().copied());
    p.push_str(",\"asks\":");
    levels_json(&mut p, m.kind, &s.spec, copy.asks.iter().copied());
    p.push('}');
    p
}

/// `exchangeInfo` body.
pub(crate) fn exchange_info(m: &Market, now_ms: u64, weight_limit: u32) -> String {
    let kind = m.kind;
    let mut syms = Vec::new();
    for s in &m.symbols {
        let spec = &s.spec;
        let mut tick = String::new();
        fmt_dec(&mut tick, 1, spec.price_decimals, dec_p(kind, spec));
        let mut step = String::new();
        fmt_dec(&mut step, 1, spec.qty_decimals, dec_q(kind, spec));
        let filters = serde_json::json!([
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000000.00000000", "stepSize": step},
        ]);
        let mut v = serde_json::json!({
            "symbol": spec.name,
            "status": "TRADING",
            "baseAsset": spec.base,
            "quoteAsset": spec.quote,
            "baseAssetPrecision": 8,
            "quoteAssetPrecision": 8,
            "filters": filters,
        });
        if let Some(o) = v.as_object_mut() {
            match kind {
                MarketKind::Spot => {
                    o.insert("orderTypes".into(), serde_json::json!(["LIMIT", "MARKET"]));
                    o.insert("isSpotTradingAllowed".into(), true.into());
                }
                MarketKind::UsdM | MarketKind::CoinM => {
                    let perp = spec.name.ends_with("_PERP") || kind == MarketKind::UsdM;
                    o.insert("pair".into(), format!("{}{}", spec.base, spec.quote).into());
                    o.insert("contractType".into(), if perp { "PERPETUAL" } else { "CURRENT_QUARTER" }.into());
                    o.insert("pricePrecision".into(), spec.price_decimals.into());
                    o.insert("quantityPrecision".into(), spec.qty_decimals.into());
                    o.insert("marginAsset".into(), if kind == MarketKind::UsdM { "USDT" } else { &spec.base }.into());
                    if kind == MarketKind::CoinM {
                        o.insert("contractSize".into(), if spec.base == "BTC" { 100 } else { 10 }.into());
                        o.insert("contractStatus".into(), "TRADING".into());
                    }
                }
                MarketKind::Options => {
                    o.insert("underlying".into(), format!("{}USDT", spec.base).into());
                    let side = if spec.name.ends_with('C') { "CALL" } else { "PUT" };
                    o.insert("side".into(), side.into());
                    let strike = spec.name.split('-').nth(2).unwrap_or("0");
                    o.insert("strikePrice".into(), strike.into());
                    o.insert("unit".into(), 1.into());
                }
            }
        }
        syms.push(v);
    }
    let info = serde_json::json!({
        "timezone": "UTC",
        "serverTime": now_ms,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit},
        ],
        "exchangeFilters": [],
        if kind == MarketKind::Options { "optionSymbols" } else { "symbols" }: syms,
    });
    info.to_string()
}
