//! Signed requests as the venue checks them: the API key, the signature
//! (HMAC-SHA256 as hex, or Ed25519 as base64) and the `timestamp` +
//! `recvWindow` rule against the venue clock.
//!
//! Secrets and signatures never leave this module: errors carry codes and the
//! venue's messages only, and nothing here logs.

use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::AccountSpec;

/// How one account's requests are verified.
#[derive(Clone)]
pub(crate) struct Verifier {
    hmac: Option<Vec<u8>>,
    ed25519: Option<VerifyingKey>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hmac", &self.hmac.is_some())
            .field("ed25519", &self.ed25519.is_some())
            .finish()
    }
}

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

impl Verifier {
    pub(crate) fn new(spec: &AccountSpec) -> Verifier {
        Verifier {
            hmac: spec.hmac_secret.as_ref().map(|s| s.as_bytes().to_vec()),
            ed25519: spec.ed25519_public_key.and_then(|k| VerifyingKey::from_bytes(&k).ok()),
        }
    }

    pub(crate) fn has_ed25519(&self) -> bool {
        self.ed25519.is_some()
    }

    /// Verifies `signature` over `payload`: 64 hex digits are tried as
    /// HMAC-SHA256 (case-insensitive), anything else as base64 Ed25519.
    /// `ed25519_only` refuses HMAC (as `session.logon` does).
    pub(crate) fn verify(&self, payload: &[u8], signature: &str, ed25519_only: bool) -> Result<(), AuthError> {
        let sig = signature.trim();
        if !ed25519_only
            && sig.len() == 64
            && sig.bytes().all(|b| b.is_ascii_hexdigit())
            && let Some(secret) = &self.hmac
        {
            let Ok(bytes) = hex::decode(sig) else { return Err(AuthError::BadSignature) };
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return Err(AuthError::BadSignature) };
            mac.update(payload);
            return mac.verify_slice(&bytes).map_err(|_| AuthError::BadSignature);
        }
        let Some(key) = &self.ed25519 else { return Err(AuthError::BadSignature) };
        // A `+` that arrived unescaped in a query string was decoded as a space.
        let b64 = sig.replace(' ', "+");
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()) else {
            return Err(AuthError::BadSignature);
        };
        let Ok(arr) = <[u8; 64]>::try_from(bytes.as_slice()) else { return Err(AuthError::BadSignature) };
        key.verify_strict(payload, &Signature::from_bytes(&arr)).map_err(|_| AuthError::BadSignature)
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
    use ed25519_dalek::Signer;

    fn spec() -> AccountSpec {
        let mut a = AccountSpec::ed25519_seed("t", "k", &[9u8; 32]);
        a.hmac_secret = Some("s3cr3t".into());
        a
    }

    #[test]
    fn hmac_and_ed25519_signatures_verify_and_tampering_fails() {
        let v = Verifier::new(&spec());
        let payload = b"symbol=BTCUSDT&timestamp=1";
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cr3t").unwrap();
        mac.update(payload);
        let hex_sig = hex::encode(mac.finalize().into_bytes());
        assert_eq!(v.verify(payload, &hex_sig, false), Ok(()));
        assert_eq!(v.verify(payload, &hex_sig.to_uppercase(), false), Ok(()));
        assert_eq!(v.verify(b"symbol=BTCUSDT&timestamp=2", &hex_sig, false), Err(AuthError::BadSignature));
        assert_eq!(v.verify(payload, &hex_sig, true), Err(AuthError::BadSignature), "logon is Ed25519 only");
        let sk = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(sk.sign(payload).to_bytes());
        assert_eq!(v.verify(payload, &b64, true), Ok(()));
        assert_eq!(v.verify(payload, &b64.replace('+', " "), true), Ok(()));
        assert_eq!(v.verify(b"x", &b64, true), Err(AuthError::BadSignature));
        assert_eq!(v.verify(payload, "not base64!", true), Err(AuthError::BadSignature));
    }

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
