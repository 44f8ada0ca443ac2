//! `GET /v5/market/time`: the venue clock (with the `/admin/clock` offset),
//! which a client measures before signing a private `auth`.

use hyper::{Method, StatusCode};

use crate::hub::Hub;
use crate::server::{Resp, json};

/// The server-time path (every category's port serves it).
pub(crate) const PATH: &str = "/v5/market/time";

/// `{"retCode":0,"retMsg":"OK","result":{"timeSecond","timeNano"},"retExtInfo":{},"time":ms}`.
pub(crate) fn answer(hub: &Hub, method: &Method) -> Resp {
    if *method != Method::GET {
        return json(StatusCode::METHOD_NOT_ALLOWED, r#"{"retCode":10001,"retMsg":"Method not allowed"}"#);
    }
    let now = {
        let st = hub.lock();
        hub.venue_ms(&st)
    };
    json(
        StatusCode::OK,
        format!(
            "{{\"retCode\":0,\"retMsg\":\"OK\",\"result\":{{\"timeSecond\":\"{}\",\"timeNano\":\"{}\"}},\"retExtInfo\":{{}},\"time\":{now}}}",
            now / 1000,
            u128::from(now) * 1_000_000
        ),
    )
}
