//! Binance's signed-request rules: the `timestamp` + `recvWindow` rule
//! against the venue clock, where the signature sits in a query or form body,
//! the WS-API's sorted payload, and the venue's `-2014/-2015/-1021/-1022`
//! errors. Signatures are verified by `crate::auth::Verifier`.
//!
//! Errors carry codes and the venue's messages only, and nothing here logs.

use crate::auth::BadSignature;

/// A refused signed request: the venue's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// No API key header / parameter (`-2014`).
    MissingKey,
    /// The API key is not known (`-2015`).
    UnknownKey,
    /// A mandatory parameter is missing (`-1102`).
    Mandatory(&'static str),
    /// A parameter is not a number (`-1100`).
    Illegal(&'static str),
    /// `recvWindow` over the limit (`-1131`).
    RecvWindowTooLarge(u64),
    /// `timestamp` more than 1000 ms ahead of the server (`-1021`).
    Ahead,
    /// `timestamp` older than `recvWindow` (`-1021`).
    Outside,
    /// The signature does not verify (`-1022`).
    BadSignature,
}

impl AuthError {
    /// The venue's error code.
    pub(crate) fn code(&self) -> i64 {
        match self {
            AuthError::MissingKey => -2014,
            AuthError::UnknownKey => -2015,
            AuthError::Mandatory(_) => -1102,
            AuthError::Illegal(_) => -1100,
            AuthError::RecvWindowTooLarge(_) => -1131,
            AuthError::Ahead | AuthError::Outside => -1021,
            AuthError::BadSignature => -1022,
        }
    }

    /// The venue's message.
    pub(crate) fn msg(&self) -> String {
        match self {
            AuthError::MissingKey => "API-key format invalid.".into(),
            AuthError::UnknownKey => "Invalid API-key, IP, or permissions for action.".into(),
            AuthError::Mandatory(p) => {
                format!("Mandatory parameter '{p}' was not sent, was empty/null, or malformed.")
            }
            AuthError::Illegal(p) => {
                format!("Illegal characters found in parameter '{p}'; legal range is '^[0-9]{{1,20}}$'.")
            }
            AuthError::RecvWindowTooLarge(max) => format!("recvWindow must be less than {max}."),
            AuthError::Ahead => "Timestamp for this request was 1000ms ahead of the server's time.".into(),
            AuthError::Outside => "Timestamp for this request is outside of the recvWindow.".into(),
            AuthError::BadSignature => "Signature for this request is not valid.".into(),
        }
    }

    /// HTTP status on REST (and the WS-API `status`).
    pub(crate) fn http_status(&self) -> u16 {
        match self {
            AuthError::MissingKey | AuthError::UnknownKey => 401,
            _ => 400,
        }
    }
}

impl From<BadSignature> for AuthError {
    fn from(_: BadSignature) -> AuthError {
        AuthError::BadSignature
    }
}

/// The `timestamp` / `recvWindow` rule: refuse a timestamp more than 1000 ms
/// ahead of `server_ms`, or older than `recvWindow` (default 5000 ms, at most
/// `max_recv_window_ms`; decimals allowed). A 16-digit timestamp is taken as
/// microseconds.
pub(crate) fn check_time(
    server_ms: u64,
    timestamp: Option<&str>,
    recv_window: Option<&str>,
    max_recv_window_ms: u64,
) -> Result<(), AuthError> {
    let ts = timestamp.filter(|t| !t.is_empty()).ok_or(AuthError::Mandatory("timestamp"))?;
    let ts: u64 = ts.trim().parse().map_err(|_| AuthError::Illegal("timestamp"))?;
    let ts_ms = if ts >= 100_000_000_000_000 { ts as f64 / 1000.0 } else { ts as f64 };
    let rw = match recv_window.filter(|r| !r.is_empty()) {
        None => 5000.0,
        Some(r) => {
            let v: f64 = r.trim().parse().map_err(|_| AuthError::Illegal("recvWindow"))?;
            if !v.is_finite() || v < 0.0 {
                return Err(AuthError::Illegal("recvWindow"));
            }
            if v > max_recv_window_ms as f64 {
                return Err(AuthError::RecvWindowTooLarge(max_recv_window_ms));
            }
            v
        }
    };
    let server = server_ms as f64;
    if ts_ms > server + 1000.0 {
        return Err(AuthError::Ahead);
    }
    if server - ts_ms > rw {
        return Err(AuthError::Outside);
    }
    Ok(())
}

/// Splits a raw (still percent-encoded) `a=1&b=2` string into the text without
/// its `signature` parameter and the signature's raw value.
pub(crate) fn strip_signature(raw: &str) -> (String, Option<String>) {
    let mut sig = None;
    let kept: Vec<&str> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| match p.split_once('=') {
            Some(("signature", v)) => {
                sig = Some(v.to_string());
                false
            }
            None if *p == "signature" => {
                sig = Some(String::new());
                false
            }
            _ => true,
        })
        .collect();
    (kept.join("&"), sig)
}

/// Percent-decodes a signature value taken from a raw query or form body.
pub(crate) fn decode_component(v: &str) -> String {
    crate::server::query(Some(&format!("x={v}"))).into_iter().next().map(|(_, v)| v).unwrap_or_default()
}

/// The WS-API signature payload: every parameter except `signature`, sorted by
/// name, as `k=v` joined with `&` (strings raw, numbers and booleans as written).
pub(crate) fn sorted_payload(params: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut keys: Vec<&String> = params.keys().filter(|k| *k != "signature").collect();
    keys.sort();
    keys.iter()
        .map(|k| {
            let v = match &params[*k] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A JSON parameter as text (`timestamp` may arrive as a number or a string).
pub(crate) fn param_text(params: &serde_json::Map<String, serde_json::Value>, k: &str) -> Option<String> {
    match params.get(k)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        v => Some(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_rule() {
        let max = 60_000;
        assert_eq!(check_time(10_000, Some("10000"), None, max), Ok(()));
        assert_eq!(check_time(10_000, Some("11000"), None, max), Ok(()));
        assert_eq!(check_time(10_000, Some("11001"), None, max), Err(AuthError::Ahead));
        assert_eq!(check_time(10_000, Some("5000"), None, max), Ok(()));
        assert_eq!(check_time(10_000, Some("4999"), None, max), Err(AuthError::Outside));
        assert_eq!(check_time(10_000, Some("4999"), Some("6000.5"), max), Ok(()));
        assert_eq!(check_time(10_000, Some("1"), Some("60001"), max), Err(AuthError::RecvWindowTooLarge(60_000)));
        assert_eq!(check_time(10_000, None, None, max), Err(AuthError::Mandatory("timestamp")));
        assert_eq!(check_time(10_000, Some("x"), None, max), Err(AuthError::Illegal("timestamp")));
        assert_eq!(check_time(1_700_000_000_000, Some("1700000000000000"), None, max), Ok(()), "microseconds");
    }

    #[test]
    fn signature_is_stripped_from_raw_text() {
        assert_eq!(strip_signature("a=1&signature=ab%2B&b=2"), ("a=1&b=2".into(), Some("ab%2B".into())));
        assert_eq!(strip_signature("a=1"), ("a=1".into(), None));
        assert_eq!(decode_component("ab%2B%3D"), "ab+=");
        let mut m = serde_json::Map::new();
        m.insert("timestamp".into(), 5.into());
        m.insert("apiKey".into(), "K".into());
        m.insert("signature".into(), "zz".into());
        assert_eq!(sorted_payload(&m), "apiKey=K&timestamp=5");
    }
}
