//! The `/admin` HTTP API: ground truth and fault injection. A public contract,
//! documented in `docs/sim.md`.

use std::sync::Arc;
use std::time::Duration;

use hyper::{Method, Request, StatusCode};

use crate::MarketHandle;
use crate::hub::{Hub, KillMode};
use crate::server::{Resp, json, query};

fn ok(v: serde_json::Value) -> Resp {
    json(StatusCode::OK, v.to_string())
}

/// The longest duration an admin call may ask for (about 11.6 days): beyond
/// it a deadline could overflow the clock.
const MAX_ADMIN_SECS: f64 = 1e6;

/// A duration of `v` seconds, if `v` is finite, not negative and at most
/// [`MAX_ADMIN_SECS`].
fn duration(v: f64) -> Option<Duration> {
    (v.is_finite() && (0.0..=MAX_ADMIN_SECS).contains(&v)).then(|| Duration::from_secs_f64(v))
}

/// A frame count: absent is `default`; else a whole number from 0 to
/// [`crate::MAX_FLOOD_FRAMES`].
fn frame_count(v: Option<Result<f64, String>>, default: u64) -> Result<u64, String> {
    match v {
        None => Ok(default.min(crate::MAX_FLOOD_FRAMES)),
        Some(Ok(c)) if c.fract() == 0.0 && (0.0..=crate::MAX_FLOOD_FRAMES as f64).contains(&c) => Ok(c as u64),
        Some(Ok(_)) => Err(format!("counts must be whole numbers between 0 and {}", crate::MAX_FLOOD_FRAMES)),
        Some(Err(e)) => Err(e),
    }
}

fn bad(msg: &str) -> Resp {
    json(StatusCode::BAD_REQUEST, serde_json::json!({ "error": msg }).to_string())
}

pub(crate) async fn handle<B>(req: Request<B>, hub: Arc<Hub>) -> Resp {
    let m = MarketHandle { hub };
    let q = query(req.uri().query());
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let num =
        |k: &str| get(k).map(|v| v.parse::<f64>().map_err(|_| format!("parameter '{k}' must be a number, got {v:?}")));
    let conn = match get("conn").map(str::parse::<u64>) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(_)) => return bad("parameter 'conn' must be a connection id"),
    };
    let mode = match get("mode") {
        None | Some("close") => KillMode::Close,
        Some("reset") => KillMode::Reset,
        Some(other) => return bad(&format!("mode must be close or reset, got {other:?}")),
    };
    let path = req.uri().path();
    let method = req.method().clone();
    match (method, path) {
        (Method::GET, "/admin/stats") => ok(serde_json::to_value(m.stats()).unwrap_or_default()),
        (Method::GET, "/admin/load") => ok(crate::load::plan(&m.hub)),
        (Method::GET, "/admin/connections") => ok(serde_json::to_value(m.connections()).unwrap_or_default()),
        (Method::GET, "/admin/book") => {
            let Some(symbol) = get("symbol") else { return bad("parameter 'symbol' is required") };
            let depth = match num("depth") {
                None => 20,
                Some(Ok(d)) if d >= 1.0 => d as usize,
                Some(Ok(_)) => return bad("depth must be at least 1"),
                Some(Err(e)) => return bad(&e),
            };
            let symbol = symbol.to_uppercase();
            match num("update_id") {
                None => match m.book(&symbol, depth) {
                    Some(b) => ok(serde_json::to_value(b).unwrap_or_default()),
                    None => json(StatusCode::NOT_FOUND, serde_json::json!({"error": "unknown symbol"}).to_string()),
                },
                Some(Ok(id)) if id >= 0.0 => match m.book_at(&symbol, id as u64, depth) {
                    Some(b) => ok(serde_json::to_value(b).unwrap_or_default()),
                    None => json(
                        StatusCode::NOT_FOUND,
                        serde_json::json!({"error": "unknown symbol, or update_id not in the book history"})
                            .to_string(),
                    ),
                },
                Some(Ok(_)) => bad("update_id must be >= 0"),
                Some(Err(e)) => bad(&e),
            }
        }
        (Method::POST, "/admin/bybit_reset") => {
            if m.config().bybit_category().is_none() {
                return bad("not a Bybit market");
            }
            let symbol = get("symbol").map(str::to_uppercase);
            ok(serde_json::json!({ "topics": m.bybit_restart(symbol.as_deref()) }))
        }
        (Method::POST, "/admin/deribit_break") => {
            if m.config().deribit_kind().is_none() {
                return bad("not a Deribit market");
            }
            let symbol = get("symbol").map(str::to_uppercase);
            match m.deribit_break_chain(symbol.as_deref()) {
                0 if symbol.is_some() => bad("no book channel of that symbol is subscribed"),
                n => ok(serde_json::json!({ "channels": n })),
            }
        }
        (Method::POST, "/admin/deribit_credits") => {
            if m.config().deribit_kind().is_none() {
                return bad("not a Deribit market");
            }
            ok(serde_json::json!({ "exhausted": m.deribit_exhaust_credits(conn) }))
        }
        (Method::POST, "/admin/kill") => {
            let private = match get("private") {
                None | Some("false") | Some("0") => false,
                Some("true") | Some("1") => true,
                Some(other) => return bad(&format!("private must be true or false, got {other:?}")),
            };
            let n = match (conn, private) {
                (Some(c), _) => usize::from(m.kill(c, mode)),
                (None, true) => m.kill_private(mode),
                (None, false) => m.kill_all(mode),
            };
            ok(serde_json::json!({ "killed": n }))
        }
        (Method::POST, "/admin/stall") => {
            let d = match num("seconds") {
                Some(Ok(s)) => match duration(s) {
                    Some(d) => d,
                    None => return bad("seconds must be between 0 and 1e6"),
                },
                Some(Err(e)) => return bad(&e),
                None => return bad("parameter 'seconds' is required and must be >= 0"),
            };
            ok(serde_json::json!({ "stalled": m.stall(conn, d) }))
        }
        (Method::POST, "/admin/drop") => {
            let Some(stream) = get("stream") else { return bad("parameter 'stream' is required") };
            let count = match num("count") {
                Some(Ok(c)) if c >= 0.0 => c as u64,
                Some(Err(e)) => return bad(&e),
                _ => 1,
            };
            if let Some(p) = num("probability") {
                return match p {
                    Ok(p) if (0.0..=1.0).contains(&p) => {
                        m.drop_probability(stream, p);
                        ok(serde_json::json!({ "stream": stream, "probability": p }))
                    }
                    Ok(_) => bad("probability must be between 0 and 1"),
                    Err(e) => bad(&e),
                };
            }
            m.drop_next(stream, count);
            ok(serde_json::json!({ "stream": stream, "drop": count }))
        }
        (Method::POST, "/admin/malformed") => ok(serde_json::json!({ "sent": m.send_malformed(conn) })),
        (Method::POST, "/admin/acks") => {
            if let Some(d) = num("delay_ms") {
                match d {
                    Ok(d) if duration(d / 1000.0).is_some() => {
                        m.set_ack_delay(duration(d / 1000.0).unwrap_or_default())
                    }
                    Ok(_) => return bad("delay_ms must be between 0 and 1e9"),
                    Err(e) => return bad(&e),
                }
            }
            if let Some(r) = num("reject") {
                match r {
                    Ok(r) if r >= 0.0 => m.reject_next_acks(r as u64),
                    Ok(_) => return bad("reject must be >= 0"),
                    Err(e) => return bad(&e),
                }
            }
            ok(serde_json::json!({ "ok": true }))
        }
        (Method::POST, "/admin/auth") => match num("ignore") {
            Some(Ok(n)) if n >= 0.0 => {
                m.ignore_auth(n as u64);
                ok(serde_json::json!({ "ok": true }))
            }
            Some(Ok(_)) => bad("ignore must be >= 0"),
            Some(Err(e)) => bad(&e),
            None => bad("parameter 'ignore' is required"),
        },
        (Method::POST, "/admin/snapshots") => {
            match num("rate_limit") {
                Some(Ok(n)) if n >= 0.0 => {
                    m.rate_limit_snapshots(n as u64, get("retry_after"));
                }
                Some(Ok(_)) => return bad("counts must be >= 0"),
                Some(Err(e)) => return bad(&e),
                None => {}
            }
            for (k, f) in [
                ("fail", MarketHandle::fail_snapshots as fn(&MarketHandle, u64)),
                ("stale", MarketHandle::stale_snapshots),
            ] {
                match num(k) {
                    Some(Ok(n)) if n >= 0.0 => f(&m, n as u64),
                    Some(Ok(_)) => return bad("counts must be >= 0"),
                    Some(Err(e)) => return bad(&e),
                    None => {}
                }
            }
            ok(serde_json::json!({ "ok": true }))
        }
        (Method::POST, "/admin/kill_every") => {
            let secs = match num("seconds") {
                Some(Ok(s)) if duration(s).is_some() => s,
                Some(Err(e)) => return bad(&e),
                _ => return bad("parameter 'seconds' is required and must be between 0 and 1e6"),
            };
            let jitter = match num("jitter") {
                None => 0.0,
                Some(Ok(j)) if j >= 0.0 && j <= secs => j,
                Some(Ok(_)) => return bad("jitter must be between 0 and seconds"),
                Some(Err(e)) => return bad(&e),
            };
            if secs == 0.0 {
                m.kill_every(None, mode);
            } else {
                let (period, spread) = (duration(secs).unwrap_or_default(), duration(jitter).unwrap_or_default());
                m.kill_every(Some((period, spread)), mode);
            }
            ok(serde_json::json!({ "ok": true }))
        }
        (Method::POST, "/admin/unsubscribed") => {
            let frames = match frame_count(num("count"), 1000) {
                Ok(c) => c,
                Err(e) => return bad(&e),
            };
            let streams = match frame_count(num("streams"), frames.max(1)) {
                Ok(0) => return bad("streams must be at least 1"),
                Ok(s) => s,
                Err(e) => return bad(&e),
            };
            ok(serde_json::json!({ "connections": m.flood_unsubscribed(conn, frames, streams), "frames": frames }))
        }
        (Method::POST, "/admin/malformed_flood") => match frame_count(num("count"), 1000) {
            Ok(c) => ok(serde_json::json!({ "connections": m.flood_malformed(conn, c), "frames": c })),
            Err(e) => bad(&e),
        },
        (Method::POST, "/admin/oversized") => {
            let bytes = match num("bytes") {
                Some(Ok(b)) if (0.0..=crate::MAX_OVERSIZED_BYTES as f64).contains(&b) => b as usize,
                Some(Ok(_)) => return bad(&format!("bytes must be between 0 and {}", crate::MAX_OVERSIZED_BYTES)),
                Some(Err(e)) => return bad(&e),
                None => return bad("parameter 'bytes' is required"),
            };
            match m.send_oversized(conn, bytes) {
                Ok(n) => ok(serde_json::json!({ "sent": n, "bytes": bytes })),
                Err(e) => bad(&e),
            }
        }
        (Method::POST, "/admin/id_reset") => {
            let to = match num("to") {
                None => 1,
                Some(Ok(t)) if (1.0..=1e15).contains(&t) => t as u64,
                Some(Ok(_)) => return bad("to must be between 1 and 1e15"),
                Some(Err(e)) => return bad(&e),
            };
            let symbol = get("symbol").map(str::to_uppercase);
            match m.reset_ids(symbol.as_deref(), to) {
                0 if symbol.is_some() => bad("unknown symbol"),
                n => ok(serde_json::json!({ "symbols": n, "to": to })),
            }
        }
        (Method::POST, "/admin/shutdown") => ok(serde_json::json!({ "notified": m.server_shutdown() })),
        (Method::POST, "/admin/refuse") => {
            let on = !matches!(get("on"), Some("false") | Some("0"));
            m.refuse_connections(on);
            ok(serde_json::json!({ "refusing": on }))
        }
        (Method::POST, "/admin/pause") => {
            let on = !matches!(get("on"), Some("false") | Some("0"));
            m.pause_market(on);
            ok(serde_json::json!({ "paused": on }))
        }
        (Method::POST, "/admin/clock") => match num("offset_ms") {
            // At most MAX_ADMIN_SECS either way: a venue clock no client could follow is no fault worth a panic.
            Some(Ok(o)) if !(o.is_finite() && o.abs() <= MAX_ADMIN_SECS * 1000.0) => {
                bad(&format!("offset_ms must be finite and within ±{} ms", MAX_ADMIN_SECS * 1000.0))
            }
            Some(Ok(o)) => {
                m.set_clock_offset_ms(o as i64);
                ok(serde_json::json!({ "offset_ms": o as i64 }))
            }
            Some(Err(e)) => bad(&e),
            None => bad("parameter 'offset_ms' is required"),
        },
        (Method::GET, "/admin/account") => match m.account(get("api_key")) {
            Some(a) => ok(serde_json::to_value(a).unwrap_or_default()),
            None => json(StatusCode::NOT_FOUND, serde_json::json!({"error": "no such account"}).to_string()),
        },
        (Method::GET, "/admin/accounts") => ok(serde_json::to_value(m.accounts()).unwrap_or_default()),
        (Method::GET, "/admin/bybit_private") => ok(serde_json::to_value(m.bybit_private_conns()).unwrap_or_default()),
        (Method::POST, "/admin/expire_listen_key") => {
            ok(serde_json::json!({ "expired": m.expire_listen_key(get("key")) }))
        }
        (Method::POST, "/admin/terminate_user_streams") => {
            ok(serde_json::json!({ "terminated": m.terminate_user_streams() }))
        }
        (Method::POST, "/admin/deposit") => {
            let Some(asset) = get("asset") else { return bad("parameter 'asset' is required") };
            let Some(amount) = get("amount") else { return bad("parameter 'amount' is required") };
            match m.deposit_to(get("api_key"), get("scope"), asset, amount) {
                Ok(()) => ok(serde_json::json!({ "asset": asset, "amount": amount })),
                Err(e) => bad(&e),
            }
        }
        (_, p) => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({ "error": format!("no admin endpoint {p} for this method; see docs/sim.md") })
                .to_string(),
        ),
    }
}
