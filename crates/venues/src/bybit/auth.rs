//! Bybit private-stream authentication (PROTOCOLS.md §5.4).
//!
//! `{"req_id":"<n>","op":"auth","args":["<apiKey>", <expires>, "<signature>"]}`
//! where `expires` is a venue time in milliseconds a little in the future and
//! `signature` is the lower-case hex HMAC-SHA256 of `GET/realtime<expires>`
//! under the API secret. The frame is built afresh on every connect (the
//! engine asks for it through `VenueRules::auth_request`), so a reconnect
//! never replays an expired signature. Credentials are the shared
//! [`crate::auth::Credentials`]; nothing here logs or returns the secret.

use crate::auth::Credentials;

/// The signing payload for `expires` (ms).
pub fn payload(expires_ms: i64) -> String {
    format!("GET/realtime{expires_ms}")
}

/// The auth frame with request id `id`, valid until `expires_ms`.
pub fn auth_frame(creds: &Credentials, id: u64, expires_ms: i64) -> String {
    let signature = creds.sign(&payload(expires_ms));
    serde_json::json!({
        "req_id": id.to_string(),
        "op": "auth",
        "args": [creds.api_key(), expires_ms, signature],
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HMAC-SHA256("secret", "GET/realtime1662350400000"), computed
    /// independently (`printf 'GET/realtime1662350400000' | openssl dgst
    /// -sha256 -hmac secret`).
    #[test]
    fn signs_get_realtime_expires() {
        let c = Credentials::hmac("key", "secret").unwrap();
        let f: serde_json::Value = serde_json::from_str(&auth_frame(&c, 3, 1_662_350_400_000)).unwrap();
        assert_eq!(f["op"], "auth");
        assert_eq!(f["req_id"], "3");
        assert_eq!(f["args"][0], "key");
        assert_eq!(f["args"][1], 1_662_350_400_000_i64);
        assert_eq!(f["args"][2].as_str().unwrap(), c.sign("GET/realtime1662350400000"));
        assert_eq!(f["args"][2].as_str().unwrap(), EXPECTED);
    }

    const EXPECTED: &str = "d7ca36fea9ef1287007fd4b15af961e91d419a3d3f3ccbdf23585170ac116cd4";
}
