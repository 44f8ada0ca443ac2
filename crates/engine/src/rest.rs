//! A small REST client for venue snapshots and metadata: HTTPS through rustls
//! (ring), a request timeout, and every request charged against the venue's
//! weight budget before it is sent, so callers never draw a 429 by themselves.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::pacer::WeightBudget;

/// REST failures. Bodies of failed requests are kept.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// The URL could not be used.
    #[error("invalid URL {url:?}: {msg}")]
    Url {
        /// The URL, credentials masked (`redact::url`).
        url: String,
        /// What was wrong.
        msg: String,
    },
    /// Connect, TLS or read failure.
    #[error("request to {url} failed: {msg}")]
    Transport {
        /// The URL, credentials masked (`redact::url`).
        url: String,
        /// What failed.
        msg: String,
    },
    /// No answer in time.
    #[error("request to {url} timed out after {after:?}")]
    Timeout {
        /// The URL, credentials masked (`redact::url`).
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// The body is larger than the client's cap; what arrived is dropped.
    #[error("the answer of {url} is larger than {limit} bytes; not read")]
    TooLarge {
        /// The URL, credentials masked (`redact::url`).
        url: String,
        /// The cap ([`RestClient::with_max_body`]).
        limit: usize,
    },
    /// The venue answered with an error status.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// The URL, credentials masked (`redact::url`).
        url: String,
        /// HTTP status.
        status: u16,
        /// The body, as text.
        body: String,
        /// `Retry-After` in seconds, when sent as a number (429, 418); a number
        /// too large for `u64` reads as `u64::MAX` (see [`retry_after_secs`]).
        retry_after: Option<u64>,
    },
}

impl RestError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            RestError::Url { .. } | RestError::TooLarge { .. } => false,
            RestError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => true,
        }
    }
}

/// Seconds from a `Retry-After` value: delta-seconds, saturating instead of
/// failing on a number too large for `u64`; `None` for an HTTP date or
/// anything else (the caller then waits its own default). Callers still cap
/// what they wait: the venue's number is input, not an instruction.
pub fn retry_after_secs(v: &str) -> Option<u64> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(v.parse().unwrap_or(u64::MAX))
}

/// An HTTPS/HTTP GET client.
#[derive(Debug, Clone)]
pub struct RestClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
    timeout: Duration,
    max_body: usize,
}

/// The largest answer body a client reads by default: 64 MiB (Binance spot's
/// full `exchangeInfo` is the largest known answer, around 20 MiB).
pub const MAX_BODY: usize = 64 << 20;

impl Default for RestClient {
    fn default() -> RestClient {
        RestClient::new(Duration::from_secs(10))
    }
}

impl RestClient {
    /// A client with webpki roots and `timeout` per request.
    pub fn new(timeout: Duration) -> RestClient {
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
        RestClient { client: Client::builder(TokioExecutor::new()).build(https), timeout, max_body: MAX_BODY }
    }

    /// The same client with another cap on answer bodies (bytes): a larger
    /// answer is an error, not a buffer that grows with it.
    pub fn with_max_body(mut self, max_body: usize) -> RestClient {
        self.max_body = max_body;
        self
    }

    /// GETs `url` after charging `weight` to `budget`; returns the body of a 2xx answer.
    pub async fn get(&self, url: &str, weight: u32, budget: Option<&Arc<WeightBudget>>) -> Result<Bytes, RestError> {
        self.send("GET", url, &[], weight, budget).await
    }

    /// Sends `method` (`GET`, `POST`, `PUT`, `DELETE`) to `url` with `headers`
    /// and no body (Binance takes parameters in the query string), after
    /// charging `weight` to `budget`. Header values are never put into errors.
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        weight: u32,
        budget: Option<&Arc<WeightBudget>>,
    ) -> Result<Bytes, RestError> {
        let uri: hyper::Uri =
            url.parse().map_err(|e| RestError::Url { url: crate::redact::url(url), msg: format!("{e}") })?;
        let method: hyper::Method = method
            .parse()
            .map_err(|_| RestError::Url { url: crate::redact::url(url), msg: format!("bad method {method:?}") })?;
        let mut req = hyper::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| RestError::Url { url: crate::redact::url(url), msg: format!("building the request: {e}") })?;
        if let Some(b) = budget {
            b.acquire(weight).await;
        }
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| RestError::Transport { url: crate::redact::url(url), msg: e.to_string() })?;
            let status = resp.status().as_u16();
            let retry_after =
                resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(retry_after_secs);
            let limit = self.max_body;
            let body = http_body_util::Limited::new(resp.into_body(), limit)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        RestError::TooLarge { url: crate::redact::url(url), limit }
                    } else {
                        RestError::Transport { url: crate::redact::url(url), msg: e.to_string() }
                    }
                })?
                .to_bytes();
            if (200..300).contains(&status) {
                Ok(body)
            } else {
                Err(RestError::Status {
                    url: crate::redact::url(url),
                    status,
                    body: String::from_utf8_lossy(&body).into_owned(),
                    retry_after,
                })
            }
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| RestError::Timeout { url: crate::redact::url(url), after: self.timeout })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_numbers_saturating_and_nothing_else() {
        assert_eq!(retry_after_secs("120"), Some(120));
        assert_eq!(retry_after_secs(" 7 "), Some(7));
        assert_eq!(retry_after_secs("99999999999999999999999999"), Some(u64::MAX));
        assert_eq!(retry_after_secs("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after_secs("-5"), None);
        assert_eq!(retry_after_secs(""), None);
    }
}
