//! Binance's wire protocols for spot, USDⓈ-M, COIN-M and options, as the
//! [`Binance`] dialect: stream names and payloads (`topic`, `encode`), paths
//! and upgrade checks (`paths`), control messages and subscriptions
//! (`control`), REST (`rest`), the private side (`private`: listenKeys and
//! signed REST; `token`: margin listenTokens; `orders`: the order engine;
//! `user`: user-event delivery; `wsapi`: the WebSocket APIs, spot and USD-M;
//! `trade`: their order methods; `rate`: the `ORDERS` limits; `state`: what
//! a market keeps besides the generator; `auth`: the signed-request rules)
//! and the load stream (`load`).
//!
//! Written from the venue's documentation and captures only; it shares nothing
//! with the client's wire code.

pub(crate) mod auth;
pub(crate) mod control;
pub(crate) mod encode;
pub(crate) mod load;
pub(crate) mod orders;
pub(crate) mod paths;
pub(crate) mod private;
pub(crate) mod rate;
pub(crate) mod rest;
pub(crate) mod state;
pub(crate) mod token;
pub(crate) mod topic;
pub(crate) mod trade;
pub(crate) mod user;
pub(crate) mod wsapi;

use std::any::Any;
use std::collections::HashSet;

use bytes::Bytes;
use hyper::{Method, Request, StatusCode};

use crate::account::{ListenKey, Scope, dec};
use crate::config::{LoadConfig, MarketConfig, MarketKind, SymbolSpec, Timing};
use crate::dialect::{Dialect, Envelope, Refusal, WsTarget};
use crate::hub::{ConnEntry, ConnKind, Hub, HubState};
use crate::load::LoadForm;
use crate::market::{Emit, Market, Streams};
use crate::server::{Resp, json};
use crate::ws;

/// `{"code":..,"msg":..}`, the venue's REST error body.
pub(crate) fn venue_error(status: StatusCode, code: i64, msg: &str) -> Resp {
    json(status, serde_json::json!({ "code": code, "msg": msg }).to_string())
}

/// A Binance market's generator: the venue's depth cadences and stream
/// names; `forceOrder` flushed every second, also to `!forceOrder@arr`.
pub(crate) fn new_market(kind: MarketKind, symbols: &[SymbolSpec], seed: u64, timing: &Timing, now_ms: u64) -> Market {
    let depth_ms: Vec<u64> = topic::depth_speeds(kind).iter().map(|(_, ms)| *ms).collect();
    let names = |spec: &SymbolSpec| topic::names(kind, spec);
    let streams =
        Streams { depth_ms: &depth_ms, liquidation_ms: 1000, all_liquidations: Some("!forceOrder@arr"), names: &names };
    Market::new(kind, symbols, seed, timing, now_ms, &streams)
}

/// Binance, for every [`MarketKind`] (the market's kind picks the shapes).
#[derive(Debug)]
pub(crate) struct Binance;

impl Dialect for Binance {
    fn market(&self, cfg: &MarketConfig, seed: u64, now_ms: u64) -> Market {
        new_market(cfg.kind, &cfg.symbols, seed, &cfg.timing, now_ms)
    }

    fn tick(&self, market: &mut Market, now_ms: u64, elapsed_ms: u64, tracked: &HashSet<String>, out: &mut Vec<Emit>) {
        let enc = encode::Encoder { kind: market.kind };
        market.tick(&enc, now_ms, elapsed_ms, tracked, out);
    }

    fn load(&self, market: &MarketConfig, cfg: &LoadConfig) -> Vec<LoadForm> {
        load::forms(market.kind, cfg)
    }

    fn envelope(&self) -> Option<Envelope> {
        Some(Envelope { head: "{\"stream\":\"", mid: "\",\"data\":", tail: "}" })
    }

    fn route(&self, hub: &Hub, path: &str, query: Option<&str>) -> Option<WsTarget> {
        paths::route(hub, path, query)
    }

    fn refuse(&self, hub: &Hub, why: Refusal) -> Resp {
        paths::refuse(hub, why)
    }

    fn admit(&self, hub: &Hub, target: &WsTarget) -> Option<Resp> {
        paths::admit(hub, target)
    }

    fn opened(&self, hub: &Hub, conn: u64, target: &WsTarget) {
        let streams = paths::url_streams(&target.streams);
        if !streams.is_empty() {
            let _ = control::subscribe(hub, conn, &streams);
        }
    }

    fn answer(&self, hub: &Hub, conn: u64, kind: ConnKind, text: &str) -> (Option<Bytes>, bool) {
        if kind.tag == paths::WS_API {
            if text.contains("\"session.logon\"") && hub.swallow_auth() {
                return (None, true);
            }
            let (text, ok) = wsapi::answer(hub, conn, text);
            (Some(ws::encode(ws::op::TEXT, text.as_bytes())), ok)
        } else {
            let (frame, ok) = control::answer(hub, conn, text);
            (Some(frame), ok)
        }
    }

    /// The 5 (spot) or 10 (futures) messages a second are the market
    /// streams' rule (web-socket-streams.md "WebSocket Limits"); the
    /// WebSocket APIs limit requests by weight and `ORDERS` instead
    /// (web-socket-api.md "Rate limits"), which `wsapi` enforces.
    fn limits_incoming(&self, kind: ConnKind) -> bool {
        kind.tag != paths::WS_API
    }

    fn shutdown_notice(&self, conn: &ConnEntry, now_ms: u64) -> String {
        let raw = format!("{{\"e\":\"serverShutdown\",\"E\":{now_ms}}}");
        if conn.kind.tag == paths::WS_API {
            format!("{{\"event\":{raw}}}")
        } else if conn.combined {
            format!("{{\"stream\":\"!serverShutdown\",\"data\":{raw}}}")
        } else {
            raw
        }
    }

    fn rest_precheck(&self, _hub: &Hub, method: &Method, _path: &str) -> Option<Resp> {
        (![Method::GET, Method::POST, Method::PUT, Method::DELETE].contains(method))
            .then(|| venue_error(StatusCode::METHOD_NOT_ALLOWED, -1000, "Method not allowed."))
    }

    fn body_too_large(&self) -> Resp {
        venue_error(StatusCode::PAYLOAD_TOO_LARGE, -1000, "Request body too large or unreadable.")
    }

    fn rest(&self, hub: &Hub, req: &Request<Bytes>) -> Resp {
        rest::handle(req, hub)
    }

    fn book_levels(&self, cfg: &MarketConfig, spec: &SymbolSpec, levels: &[(i64, i64)]) -> Vec<[String; 2]> {
        let (pd, qd) = (encode::dec_p(cfg.kind, spec), encode::dec_q(cfg.kind, spec));
        levels
            .iter()
            .map(|(p, q)| [dec(*p as i128, spec.price_decimals, pd), dec(*q as i128, spec.qty_decimals, qd)])
            .collect()
    }

    fn venue_state(&self) -> Box<dyn Any + Send> {
        Box::new(state::BinanceState::default())
    }

    fn expire_listen_keys(&self, hub: &Hub, st: &mut HubState, which: &dyn Fn(&str, &ListenKey) -> bool) -> usize {
        user::expire_listen_keys(hub, st, which)
    }

    fn timers(&self, hub: &Hub, st: &mut HubState) {
        token::expire(hub, st);
    }

    fn terminate_user_streams(&self, hub: &Hub, st: &mut HubState) -> usize {
        wsapi::terminate_all(hub, st)
    }

    fn deposit(&self, hub: &Hub, st: &mut HubState, account: usize, asset: &str, amount: i128) {
        orders::deposit(hub, st, account, &Scope::of_market(hub.kind()), asset, amount);
    }

    /// Spot markets: `margin` (cross margin) or `isolated:<SYMBOL>` (a listed symbol).
    fn deposit_scoped(
        &self,
        hub: &Hub,
        st: &mut HubState,
        account: usize,
        scope: &str,
        asset: &str,
        amount: i128,
    ) -> Result<(), String> {
        let scope = match (hub.kind(), scope) {
            (MarketKind::Spot, "margin") => Scope::Margin,
            (MarketKind::Spot, s) if s.starts_with("isolated:") => {
                let sym = s["isolated:".len()..].to_ascii_uppercase();
                if st.market.symbol(&sym).is_none() {
                    return Err(format!("no symbol {sym:?} on this market"));
                }
                Scope::Isolated(sym)
            }
            (MarketKind::Spot, "spot") => Scope::Spot,
            (_, s) => {
                return Err(format!("scope must be margin or isolated:<SYMBOL> on a Binance spot market, got {s:?}"));
            }
        };
        orders::deposit(hub, st, account, &scope, asset, amount);
        Ok(())
    }

    /// `flood<k>usdt@trade`: a well-formed name of a symbol no market lists.
    fn unsubscribed_frame(&self, combined: bool, k: u64, id: u64, now_ms: u64) -> String {
        let raw = format!(
            "{{\"e\":\"trade\",\"E\":{now_ms},\"s\":\"FLOOD{k}USDT\",\"t\":{id},\"p\":\"1.00\",\"q\":\"1.00\",\"T\":{now_ms},\"m\":true,\"M\":true}}"
        );
        if combined { format!("{{\"stream\":\"flood{k}usdt@trade\",\"data\":{raw}}}") } else { raw }
    }

    /// An event of a type no stream carries on `oversized@pad`, padded.
    fn oversized_frame(&self, combined: bool, bytes: usize, now_ms: u64) -> Option<String> {
        let (head, tail) = if combined {
            (format!("{{\"stream\":\"oversized@pad\",\"data\":{{\"e\":\"pad\",\"E\":{now_ms},\"p\":\""), "\"}}")
        } else {
            (format!("{{\"e\":\"pad\",\"E\":{now_ms},\"p\":\""), "\"}")
        };
        let pad = bytes.checked_sub(head.len() + tail.len())?;
        let mut out = String::with_capacity(bytes);
        out.push_str(&head);
        out.extend(std::iter::repeat_n('x', pad));
        out.push_str(tail);
        Some(out)
    }
}
