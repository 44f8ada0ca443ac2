//! The Bybit v5 order-entry socket `/v5/trade` (PROTOCOLS.md §5.2b) on the
//! linear market's port, written from docs/v5/websocket/trade/guideline.mdx
//! (bybit-exchange/docs @ 072c197) and live frames quoted in
//! roq-trading/roq-bybit's tests (`test/json_*_2.cpp`, 2025-11).
//!
//! - `{"op":"auth","args":[apiKey, expires, signature]}`: the signature rule
//!   of `/v5/private` (`super::private::check_auth`), answered in this
//!   socket's shape `{"retCode":0,"retMsg":"OK","op":"auth","connId"}`;
//!   refusals use the guideline's auth codes (`10004` invalid sign, `10001`
//!   param error, `20001` repeat auth) and `10003` for an unknown key.
//! - `{"op":"ping"}` → `{"retCode":0,"retMsg":"OK","op":"pong","data":["<ms>"],"connId"}`.
//! - `order.create`, `order.amend`, `order.cancel` (`args`: one request
//!   object) and `order.create-batch`, `order.amend-batch`,
//!   `order.cancel-batch` (`args`: one `{"category","request":[..]}`), with a
//!   request `header` carrying `X-BAPI-TIMESTAMP` (and optionally
//!   `X-BAPI-RECV-WINDOW`, `Referer`). Answers:
//!   `{"reqId","retCode","retMsg","op","data","retExtInfo","header","connId"}`;
//!   `data` is the REST `result` (`{orderId, orderLinkId}`, `{}` when refused;
//!   batches `{"list":[..]}` with one `{code,msg}` per item in
//!   `retExtInfo.list`, and a failed item does not fail the others);
//!   `header` reports the account's rate limit of the op type
//!   (`super::ratelimit`), a `Traceid` and `Timenow`.
//!
//! The orders themselves go through the one engine, `super::order`; their
//! outcome arrives on the account's `/v5/private` topics.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use serde_json::Value;

use crate::account::Obj;
use crate::hub::{ConnEntry, Hub, HubState, Session};
use crate::ws;

use super::encode::js;
use super::items::mix;
use super::order::{self, Category, Done, RECV_WINDOW, Reject};
use super::private::{AuthError, BybitOp, check_auth, log_op};
use super::ratelimit::{self, OpKind, Quota, TOO_MANY};
use super::state_mut;

/// The order-entry WebSocket path.
pub(crate) const PATH: &str = "/v5/trade";

/// `reqId`s remembered per connection to refuse repeats (the oldest are forgotten).
const REQ_IDS_KEPT: usize = 1024;

/// The longest `reqId` ("The length cannot exceed 36 characters").
const MAX_REQ_ID: usize = 36;

/// The trade sockets' own state in the hub.
#[derive(Debug, Default)]
pub(crate) struct TradeState {
    /// Recent `reqId`s of each open connection (at most [`REQ_IDS_KEPT`]).
    req_ids: HashMap<u64, VecDeque<String>>,
    /// Trace ids handed out.
    traces: u64,
}

/// What an order op does to each request object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Create,
    Amend,
    Cancel,
}

/// The order ops: (op type for the rate limit, batch, action).
fn order_op(op: &str) -> Option<(OpKind, bool, Action)> {
    Some(match op {
        "order.create" => (OpKind::Create, false, Action::Create),
        "order.amend" => (OpKind::Amend, false, Action::Amend),
        "order.cancel" => (OpKind::Cancel, false, Action::Cancel),
        "order.create-batch" => (OpKind::CreateBatch, true, Action::Create),
        "order.amend-batch" => (OpKind::AmendBatch, true, Action::Amend),
        "order.cancel-batch" => (OpKind::CancelBatch, true, Action::Cancel),
        _ => return None,
    })
}

fn conn_id(hub: &Hub, conn: u64) -> String {
    format!("sim{:05}-{conn:x}-t", hub.addr.port())
}

/// Who an answer goes to: the request's `reqId` (echoed only when sent), its
/// `op`, the connection.
struct Reply<'a> {
    req_id: Option<&'a str>,
    op: &'a str,
    cid: &'a str,
}

impl Reply<'_> {
    fn head(&self, code: i64, msg: &str) -> String {
        let mut s = String::from("{");
        if let Some(r) = self.req_id {
            s.push_str("\"reqId\":");
            s.push_str(&js(r));
            s.push(',');
        }
        s.push_str(&format!("\"retCode\":{code},\"retMsg\":{},\"op\":{}", js(msg), js(self.op)));
        s
    }

    /// `{reqId?, retCode, retMsg, op, connId}` (auth, decode and op errors).
    fn plain(&self, code: i64, msg: &str) -> String {
        format!("{},\"connId\":{}}}", self.head(code, msg), js(self.cid))
    }

    /// `{reqId?, retCode, retMsg, op, data, retExtInfo, header?, connId}`.
    fn order(&self, code: i64, msg: &str, data: &str, ext: &str, header: Option<&str>) -> String {
        let mut s = format!("{},\"data\":{data},\"retExtInfo\":{ext}", self.head(code, msg));
        if let Some(h) = header {
            s.push_str(",\"header\":");
            s.push_str(h);
        }
        s.push_str(&format!(",\"connId\":{}}}", js(self.cid)));
        s
    }
}

/// Answers one text frame of a `/v5/trade` connection: (reply frame, success).
pub(crate) fn answer(hub: &Hub, conn: u64, text: &str) -> (Option<Bytes>, bool) {
    let cid = conn_id(hub, conn);
    let (op, code, msg, frame) = respond(hub, conn, &cid, text);
    log_op(hub, conn, true, BybitOp { op, success: code == 0, ret_msg: msg });
    (Some(ws::encode(ws::op::TEXT, frame.as_bytes())), code == 0)
}

/// (op, retCode, retMsg, reply text).
fn respond(hub: &Hub, conn: u64, cid: &str, text: &str) -> (String, i64, String, String) {
    let decode_error = |why: String| {
        let msg = format!("Failed to decode incoming data: {why}");
        let frame = Reply { req_id: None, op: "", cid }.plain(10001, &msg);
        (String::new(), 10001, msg, frame)
    };
    let v: Value = match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return decode_error("not an object".into()),
        Err(e) => return decode_error(e.to_string()),
    };
    let req_id: Option<String> = match v.get("reqId") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let op: String = v.get("op").and_then(Value::as_str).unwrap_or("").chars().take(64).collect();
    let r = Reply { req_id: req_id.as_deref(), op: &op, cid };
    let (code, msg, frame) = match op.as_str() {
        "ping" => {
            let now = {
                let st = hub.lock();
                hub.venue_ms(&st)
            };
            let pong = Reply { req_id: r.req_id, op: "pong", cid };
            let frame = format!("{},\"data\":[\"{now}\"],\"connId\":{}}}", pong.head(0, "OK"), js(cid));
            (0, "OK".to_string(), frame)
        }
        "auth" => {
            let (code, msg) = auth(hub, conn, &v);
            (code, msg.to_string(), r.plain(code, msg))
        }
        o => match order_op(o) {
            Some(what) => order_request(hub, conn, &r, what, &v),
            None => {
                let msg = "op type is not found";
                (10404, msg.to_string(), r.plain(10404, msg))
            }
        },
    };
    (op, code, msg, frame)
}

/// `auth`: one account per connection; a second `auth` is `20001`.
fn auth(hub: &Hub, conn: u64, v: &Value) -> (i64, &'static str) {
    if hub.lock().conns.get(&conn).is_some_and(|c| c.session.is_some()) {
        return (20001, "Repeat auth");
    }
    match check_auth(hub, v) {
        Ok((account, now)) => {
            if let Some(c) = hub.lock().conns.get_mut(&conn) {
                c.session = Some(Session { account, since_ms: now });
            }
            (0, "OK")
        }
        Err(AuthError::Params | AuthError::Expired) => (10001, "Params Error"),
        Err(AuthError::UnknownKey) => (10003, "API key is invalid."),
        Err(AuthError::BadSign) => (10004, "Invalid sign"),
    }
}

/// Whether `conn` sent `id` before (then it is refused); remembers it.
fn repeated(st: &mut HubState, conn: u64, id: &str) -> bool {
    let HubState { conns, venue, .. } = st;
    let Some(t) = state_mut(venue.as_mut()).map(|b| &mut b.trade) else { return false };
    if !t.req_ids.contains_key(&conn) {
        // A new connection: forget those that closed.
        let open: &HashMap<u64, ConnEntry> = conns;
        t.req_ids.retain(|c, _| open.contains_key(c));
    }
    let ids = t.req_ids.entry(conn).or_default();
    if ids.iter().any(|x| x == id) {
        return true;
    }
    if ids.len() >= REQ_IDS_KEPT {
        ids.pop_front();
    }
    ids.push_back(id.to_string());
    false
}

/// The request `header`'s timestamp against the venue clock.
fn check_header(v: &Value, now: u64) -> Result<(), Reject> {
    let h =
        v.get("header").and_then(Value::as_object).ok_or_else(|| (10001, "params error: header is required".into()))?;
    let num = |k: &str| match h.get(k) {
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    let ts = num("X-BAPI-TIMESTAMP").ok_or_else(|| (10001, "params error: X-BAPI-TIMESTAMP invalid".into()))?;
    let rw = match h.get("X-BAPI-RECV-WINDOW") {
        None | Some(Value::Null) => RECV_WINDOW,
        Some(_) => {
            num("X-BAPI-RECV-WINDOW").ok_or_else(|| (10001, "params error: X-BAPI-RECV-WINDOW invalid".into()))?
        }
    };
    order::check_timestamp(ts, rw, now)
}

/// The one object of `args`.
fn the_arg(v: &Value) -> Result<&Value, Reject> {
    match v.get("args").and_then(Value::as_array).map(Vec::as_slice) {
        Some([a @ Value::Object(_)]) => Ok(a),
        _ => Err((10001, "params error: args must be an array of one object".into())),
    }
}

fn check_category(arg: &Value) -> Result<(), Reject> {
    order::category(arg).map_err(|c| match c {
        Category::Missing => (10001, "params error: category is required".into()),
        Category::Unsupported => (10404, "category is not correct/supported".into()),
    })
}

/// The `header` of an order answer.
fn header_json(q: &Quota, trace: u64, now: u64) -> String {
    Obj::new()
        .s("X-Bapi-Limit", &q.limit.to_string())
        .s("X-Bapi-Limit-Status", &q.remaining.to_string())
        .s("X-Bapi-Limit-Reset-Timestamp", &q.reset_ms.to_string())
        .s("Traceid", &format!("{:016x}{:016x}", mix(trace ^ 0x7ace), mix(trace)))
        .s("Timenow", &now.to_string())
        .end()
}

fn run(action: Action, hub: &Hub, st: &mut HubState, acct: usize, item: &Value) -> Result<Done, Reject> {
    match action {
        Action::Create => order::place(hub, st, acct, item),
        Action::Amend => order::amend(hub, st, acct, item),
        Action::Cancel => order::cancel(hub, st, acct, item),
    }
}

/// A string field of a request object as sent (`""` when absent).
fn sent<'a>(item: &'a Value, k: &str) -> &'a str {
    item.get(k).and_then(Value::as_str).unwrap_or("")
}

/// One item of a batch answer's `data.list`.
fn batch_item(action: Action, item: &Value, done: Option<&Done>) -> String {
    let o = Obj::new().s("category", "linear").s("symbol", sent(item, "symbol"));
    match (action, done) {
        (Action::Create, Some(d)) => {
            o.s("orderId", &d.order_id).s("orderLinkId", &d.link).s("createAt", &d.created_ms.to_string()).end()
        }
        (Action::Create, None) => {
            o.s("orderId", "").s("orderLinkId", sent(item, "orderLinkId")).s("createAt", "").end()
        }
        (_, Some(d)) => o.s("orderId", &d.order_id).s("orderLinkId", &d.link).end(),
        (_, None) => o.s("orderId", sent(item, "orderId")).s("orderLinkId", sent(item, "orderLinkId")).end(),
    }
}

/// One order op: (retCode, retMsg, reply text).
fn order_request(
    hub: &Hub,
    conn: u64,
    r: &Reply<'_>,
    (kind, batch, action): (OpKind, bool, Action),
    v: &Value,
) -> (i64, String, String) {
    let refuse = |(code, msg): Reject| {
        let frame = r.order(code, &msg, "{}", "{}", None);
        (code, msg, frame)
    };
    let mut guard = hub.lock();
    let st = &mut *guard;
    let now = hub.venue_ms(st);
    let Some(acct) = st.conns.get(&conn).and_then(|c| c.session).map(|s| s.account) else {
        return refuse((10003, "Request not authorized".into()));
    };
    if let Some(id) = r.req_id {
        if id.chars().count() > MAX_REQ_ID {
            return refuse((10001, format!("params error: reqId longer than {MAX_REQ_ID} characters")));
        }
        if repeated(st, conn, id) {
            return refuse((20006, "reqId is duplicated".into()));
        }
    }
    if let Err(e) = check_header(v, now) {
        return refuse(e);
    }
    let arg = match the_arg(v) {
        Ok(a) => a,
        Err(e) => return refuse(e),
    };
    if let Err(e) = check_category(arg) {
        return refuse(e);
    }
    if !batch {
        let q = ratelimit::charge(hub, st, acct, kind, 1);
        let header = header_json(&q, next_trace(st), now);
        let result =
            if q.granted == 0 { Err((TOO_MANY.0, TOO_MANY.1.to_string())) } else { run(action, hub, st, acct, arg) };
        return match result {
            Ok(d) => {
                let data = Obj::new().s("orderId", &d.order_id).s("orderLinkId", &d.link).end();
                (0, "OK".into(), r.order(0, "OK", &data, "{}", Some(&header)))
            }
            Err((code, msg)) => {
                let frame = r.order(code, &msg, "{}", "{}", Some(&header));
                (code, msg, frame)
            }
        };
    }
    let max = hub.cfg.limits.bybit_max_batch;
    let items = match arg.get("request").and_then(Value::as_array) {
        Some(items) if !items.is_empty() && items.len() <= max => items,
        _ => return refuse((10001, format!("params error: request must hold 1 to {max} orders"))),
    };
    // A batch consumes one per order; the orders past the limit fail.
    let q = ratelimit::charge(hub, st, acct, kind, items.len() as u32);
    let header = header_json(&q, next_trace(st), now);
    let (mut list, mut ext) = (Vec::with_capacity(items.len()), Vec::with_capacity(items.len()));
    for (i, item) in items.iter().enumerate() {
        let result = if i as u32 >= q.granted {
            Err((TOO_MANY.0, TOO_MANY.1.to_string()))
        } else if !item.is_object() {
            Err((10001, "params error: each request must be an object".to_string()))
        } else {
            run(action, hub, st, acct, item)
        };
        let (code, msg) = match &result {
            Ok(_) => (0, "OK".to_string()),
            Err((c, m)) => (*c, m.clone()),
        };
        list.push(batch_item(action, item, result.as_ref().ok()));
        ext.push(Obj::new().raw("code", code).s("msg", &msg).end());
    }
    let data = format!("{{\"list\":[{}]}}", list.join(","));
    let ext = format!("{{\"list\":[{}]}}", ext.join(","));
    (0, "OK".into(), r.order(0, "OK", &data, &ext, Some(&header)))
}

fn next_trace(st: &mut HubState) -> u64 {
    match state_mut(st.venue.as_mut()) {
        Some(b) => {
            b.trade.traces += 1;
            b.trade.traces
        }
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_have_the_guideline_shapes() {
        let r = Reply { req_id: Some("test-005"), op: "order.create", cid: "c1" };
        let v: Value = serde_json::from_str(&r.order(0, "OK", r#"{"orderId":"x","orderLinkId":""}"#, "{}", Some("{}")))
            .expect("json");
        let keys: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
        let mut want = vec!["reqId", "retCode", "retMsg", "op", "data", "retExtInfo", "header", "connId"];
        want.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, want);
        let v: Value =
            serde_json::from_str(&Reply { req_id: None, op: "auth", cid: "c1" }.plain(0, "OK")).expect("json");
        assert_eq!(v, serde_json::json!({"retCode":0,"retMsg":"OK","op":"auth","connId":"c1"}));
        let q = Quota { granted: 1, limit: 10, remaining: 9, reset_ms: 5 };
        let h: Value = serde_json::from_str(&header_json(&q, 1, 6)).expect("json");
        assert_eq!(h["X-Bapi-Limit"], "10");
        assert_eq!(h["X-Bapi-Limit-Status"], "9");
        assert_eq!(h["X-Bapi-Limit-Reset-Timestamp"], "5");
        assert_eq!(h["Timenow"], "6");
        assert_eq!(h["Traceid"].as_str().map(str::len), Some(32));
    }

    #[test]
    fn ops() {
        assert_eq!(order_op("order.cancel-batch"), Some((OpKind::CancelBatch, true, Action::Cancel)));
        assert_eq!(order_op("order.query"), None);
    }
}
