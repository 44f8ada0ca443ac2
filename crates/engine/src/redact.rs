//! Redaction for display: the one place that knows how a credential can hide
//! in a URL. Every crate that shows a URL (engine errors and snapshots, the
//! private sessions, the NATS sink, the command line) goes through it, so a
//! URL's userinfo (`nats://user:pass@host`), a credential query parameter
//! (`?listenKey=…`, `?signature=…`) or a token the caller names (a listenKey
//! in a path) never reaches a log, an error or `Debug` output.
//!
//! ```
//! use ferrofeed_engine::redact;
//! assert_eq!(redact::url("nats://user:pass@127.0.0.1:4222"), "nats://***@127.0.0.1:4222");
//! assert_eq!(redact::url("https://x/api?symbol=A&signature=abc"), "https://x/api?symbol=A&signature=***");
//! assert_eq!(redact::text("connecting to ws://k:s@h/ws failed", &["s3cr3t"]), "connecting to ws://***@h/ws failed");
//! ```

/// What replaces a hidden value.
pub const MASK: &str = "***";

/// Query parameters whose value is a credential (compared ignoring case and
/// `-`/`_`).
const SECRET_PARAMS: &[&str] = &[
    "listenkey",
    "token",
    "accesstoken",
    "authtoken",
    "signature",
    "sign",
    "apikey",
    "key",
    "secret",
    "apisecret",
    "password",
    "pass",
    "passwd",
    "pwd",
    "auth",
    "jwt",
    "xmbxapikey",
];

fn is_secret_param(name: &str) -> bool {
    let norm: String = name.chars().filter(|c| *c != '-' && *c != '_').flat_map(char::to_lowercase).collect();
    SECRET_PARAMS.contains(&norm.as_str())
}

/// `url` for display: userinfo becomes `***` (`nats://***@host:4222`), the
/// values of credential query parameters become `***`. Several URLs
/// separated by commas (a NATS server list) are each redacted. Anything that
/// does not parse as a URL is returned with the same rules applied as far as
/// they go; nothing here panics.
pub fn url(url: &str) -> String {
    if url.contains(',') {
        return url.split(',').map(one_url).collect::<Vec<_>>().join(",");
    }
    one_url(url)
}

fn one_url(u: &str) -> String {
    let (scheme, rest) = match u.find("://") {
        Some(i) => (&u[..i + 3], &u[i + 3..]),
        None => ("", u),
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("{MASK}{}", &authority[at..]),
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if is_secret_param(k) => format!("{k}={MASK}"),
                    _ => pair.to_string(),
                })
                .collect();
            let mut t = format!("{path}?{}", query.join("&"));
            if let Some(f) = fragment {
                t.push('#');
                t.push_str(f);
            }
            t
        }
        None => tail.to_string(),
    };
    format!("{scheme}{authority}{tail}")
}

/// Free text (an error message, a status reason) for display: every URL in
/// it redacted as by [`url`], and every non-empty string of `secrets` (a
/// listenKey, a token, a password) replaced by `***` wherever it appears.
pub fn text(s: &str, secrets: &[&str]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        // The URL starts after the last delimiter before `://` and ends at the
        // next one.
        let is_delim = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '(' | ')' | '`');
        let start = rest[..i].rfind(is_delim).map_or(0, |d| d + rest[d..].chars().next().map_or(1, char::len_utf8));
        let end = rest[i..].find(is_delim).map_or(rest.len(), |e| i + e);
        out.push_str(&rest[..start]);
        out.push_str(&url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(secret) {
            out = out.replace(secret, MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_and_credential_parameters_are_masked() {
        let cases = [
            ("nats://user:pass@127.0.0.1:4222", "nats://***@127.0.0.1:4222"),
            ("nats://tok@h:4222", "nats://***@h:4222"),
            ("nats://a:b@h1:1,nats://c:d@h2:2", "nats://***@h1:1,nats://***@h2:2"),
            ("u:p@h:4222", "***@h:4222"),
            ("wss://fstream.binance.com/ws/btcusdt@trade", "wss://fstream.binance.com/ws/btcusdt@trade"),
            ("wss://x/stream?streams=a@trade/b@depth", "wss://x/stream?streams=a@trade/b@depth"),
            ("https://x/sapi/v1/userDataStream?listenKey=abc", "https://x/sapi/v1/userDataStream?listenKey=***"),
            ("https://x/a?timestamp=1&signature=ff#f", "https://x/a?timestamp=1&signature=***#f"),
            ("https://x/a?X-MBX-APIKEY=k&api_key=k2", "https://x/a?X-MBX-APIKEY=***&api_key=***"),
            ("http://u:p@proxy:8080/", "http://***@proxy:8080/"),
            ("", ""),
            ("://@", "://***@"),
            ("no url at all", "no url at all"),
        ];
        for (raw, shown) in cases {
            assert_eq!(url(raw), shown, "{raw}");
        }
    }

    #[test]
    fn urls_and_named_secrets_inside_text_are_masked() {
        assert_eq!(
            text("connect failed: \"wss://h/ws/KEY123\" (nats://u:p@h:1) KEY123", &["KEY123", ""]),
            "connect failed: \"wss://h/ws/***\" (nats://***@h:1) ***"
        );
        assert_eq!(text("é nats://u:p@h é", &[]), "é nats://***@h é");
        assert_eq!(text("a://", &[]), "a://");
    }
}
