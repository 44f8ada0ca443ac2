//! REST endpoints: `depth` (snapshots aligned with the diff streams),
//! `exchangeInfo`, `time`, `ping`, with request weights charged against the
//! venue's per-minute budget (429 and `-1003` when exceeded). The private
//! endpoints (listenKeys, orders) are in `private`.

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::HeaderValue;

use crate::config::MarketKind;
use crate::hub::Hub;
use crate::server::{Resp, json, query, venue_error};

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
            (w, Ok(st.market.exchange_info(hub.venue_ms(&st), hub.cfg.limits.rest_weight_limit)))
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
    if st.faults.rest_fail > 0 {
        st.faults.rest_fail -= 1;
        st.counters.snapshots_failed_by_fault += 1;
        return Err(venue_error(
            StatusCode::SERVICE_UNAVAILABLE,
            -1008,
            "Server is currently overloaded with other requests. Please try again in a few minutes.",
        ));
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
    Ok(st.market.depth_body(&copy, s, now))
}
