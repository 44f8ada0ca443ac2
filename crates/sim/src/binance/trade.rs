//! The order methods of the WebSocket APIs, on the order engine (`orders`):
//!
//! - spot (`/ws-api/v3`, binance-spot-api-docs `web-socket-api.md`):
//!   `order.place`, `order.cancel`, `order.cancelReplace`,
//!   `order.amend.keepPriority`, `order.status`, `openOrders.status`,
//!   `openOrders.cancelAll`;
//! - USD-M (`/ws-fapi/v1`, developers.binance.com derivatives
//!   usds-margined-futures/trade/websocket-api): `order.place`,
//!   `order.modify`, `order.cancel`, `order.status` (the venue lists no
//!   open-orders or cancel-all method there).
//!
//! `order.place` and `order.cancelReplace` (spot), `order.place` and
//! `order.modify` (USD-M) count in the account's `ORDERS` limits
//! (`Limits::order_rate_limits`; over one: status 429, `-1015`), and their
//! answers carry those counts in `rateLimits`.

use super::orders::{self, Params, Reject};
use super::rate;
use super::wsapi::{Failure, Reply, done};
use crate::account::{Obj, Scope};
use crate::config::MarketKind;
use crate::hub::Hub;

/// Whether `kind`'s WebSocket API serves order method `method`.
pub(crate) fn serves(kind: MarketKind, method: &str) -> bool {
    match kind {
        MarketKind::Spot => matches!(
            method,
            "order.place"
                | "order.cancel"
                | "order.cancelReplace"
                | "order.amend.keepPriority"
                | "order.status"
                | "openOrders.status"
                | "openOrders.cancelAll"
        ),
        MarketKind::UsdM => matches!(method, "order.place" | "order.modify" | "order.cancel" | "order.status"),
        MarketKind::CoinM | MarketKind::Options => false,
    }
}

fn refused(r: Reject) -> Reply {
    Reply { status: r.0, body: Err(Failure { code: r.1, msg: r.2, data: None }), orders: None }
}

fn answer(r: Result<String, Reject>) -> Reply {
    match r {
        Ok(body) => done(body),
        Err(r) => refused(r),
    }
}

/// Runs order method `method` for `acct` (already authenticated).
pub(crate) fn call(hub: &Hub, acct: usize, method: &str, p: &Params) -> Reply {
    let scope = Scope::of_market(hub.kind());
    let mut st = hub.lock();
    let st = &mut *st;
    let counted = matches!(method, "order.place" | "order.cancelReplace" | "order.modify");
    let counts = if counted {
        match rate::count(hub, st, acct) {
            Ok(c) => Some(c),
            Err(r) => {
                let counts = rate::counts(hub, st, acct);
                return Reply { orders: Some(counts), ..refused(r) };
            }
        }
    } else {
        None
    };
    let mut reply = match method {
        "order.place" => answer(orders::place(hub, st, acct, p, &scope)),
        "order.cancel" => answer(orders::cancel(hub, st, acct, p, &scope)),
        "order.cancelReplace" => cancel_replace(hub, st, acct, p, &scope),
        "order.amend.keepPriority" => answer(orders::amend_keep_priority(hub, st, acct, p)),
        "order.modify" => answer(orders::modify(hub, st, acct, p)),
        "order.status" => answer(orders::status(hub, st, acct, p, &scope)),
        "openOrders.status" => answer(orders::open_orders(hub, st, acct, p, &scope)),
        "openOrders.cancelAll" => answer(orders::cancel_all(hub, st, acct, p, &scope)),
        other => refused((400, -1000, format!("Unknown method '{other}'."))),
    };
    reply.orders = counts;
    reply
}

fn code_msg(r: &Reject) -> String {
    Obj::new().raw("code", r.1).s("msg", &r.2).end()
}

/// `order.cancelReplace`: cancels (`cancelOrderId` / `cancelOrigClientOrderId`,
/// `cancelNewClientOrderId`, `cancelRestrictions`) then places (the
/// `order.place` parameters). The new order's parameters are checked first
/// (a bad one refuses the whole request, nothing canceled); then
/// `STOP_ON_FAILURE` places only after a successful cancel, `ALLOW_FAILURE`
/// places anyway. Both done: 200; one done: 409 `-2021`; none: 400 `-2022`,
/// the outcome of each in `error.data`.
fn cancel_replace(hub: &Hub, st: &mut crate::hub::HubState, acct: usize, p: &Params, scope: &Scope) -> Reply {
    let stop_on_failure = match p.get("cancelReplaceMode") {
        Some("STOP_ON_FAILURE") => true,
        Some("ALLOW_FAILURE") => false,
        Some(_) => {
            return refused((
                400,
                -1100,
                "Illegal characters found in parameter 'cancelReplaceMode'; legal range is 'STOP_ON_FAILURE, ALLOW_FAILURE'."
                    .into(),
            ));
        }
        None => return refused(orders::mandatory("cancelReplaceMode")),
    };
    if let Err(r) = orders::check_new(hub.kind(), st, p) {
        return refused(r);
    }
    if p.get("cancelOrderId").is_none() && p.get("cancelOrigClientOrderId").is_none() {
        return refused((
            400,
            -1102,
            "Param 'cancelOrigClientOrderId' or 'cancelOrderId' must be sent, but both were empty/null!".into(),
        ));
    }
    if p.get("cancelOrderId").is_some_and(|v| v.parse::<u64>().is_err()) {
        return refused((
            400,
            -1100,
            "Illegal characters found in parameter 'cancelOrderId'; legal range is '^[0-9]{1,20}$'.".into(),
        ));
    }
    let mut cancel_p: Vec<(String, String)> = Vec::new();
    for (from, to) in [
        ("symbol", "symbol"),
        ("cancelOrderId", "orderId"),
        ("cancelOrigClientOrderId", "origClientOrderId"),
        ("cancelNewClientOrderId", "newClientOrderId"),
        ("cancelRestrictions", "cancelRestrictions"),
    ] {
        if let Some(v) = p.get(from) {
            cancel_p.push((to.to_string(), v.to_string()));
        }
    }
    let canceled = orders::cancel(hub, st, acct, &Params(cancel_p), scope);
    let placed = match (&canceled, stop_on_failure) {
        (Err(_), true) => None,
        _ => Some(orders::place(hub, st, acct, p, scope)),
    };
    let result = |c: &Result<String, Reject>| if c.is_ok() { "SUCCESS" } else { "FAILURE" };
    let body = |c: &Result<String, Reject>| match c {
        Ok(b) => b.clone(),
        Err(r) => code_msg(r),
    };
    let data = Obj::new()
        .s("cancelResult", result(&canceled))
        .s("newOrderResult", placed.as_ref().map_or("NOT_ATTEMPTED", result))
        .raw("cancelResponse", body(&canceled))
        .raw("newOrderResponse", placed.as_ref().map_or("null".to_string(), body))
        .end();
    match (canceled.is_ok(), placed.as_ref().is_some_and(|r| r.is_ok())) {
        (true, true) => done(data),
        (false, false) => Reply {
            status: 400,
            body: Err(Failure { code: -2022, msg: "Order cancel-replace failed.".into(), data: Some(data) }),
            orders: None,
        },
        _ => Reply {
            status: 409,
            body: Err(Failure { code: -2021, msg: "Order cancel-replace partially failed.".into(), data: Some(data) }),
            orders: None,
        },
    }
}
