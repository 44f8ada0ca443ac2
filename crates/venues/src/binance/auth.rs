//! Binance credentials and request signing: the shared [`crate::auth`]
//! types, re-exported under their Binance paths. Signatures follow the
//! venue's rule (PROTOCOLS.md §1.6): the payload is the request's parameters
//! as `k=v` joined with `&` ([`query`] in request order for REST,
//! [`sorted_query`] sorted by name for the WebSocket API), signed with
//! HMAC-SHA256 (lower-case hex) or Ed25519 (base64).

pub use crate::auth::{Clock, CredentialError, Credentials, KeyKind, query, sorted_query};
