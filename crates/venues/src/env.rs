//! The deployment a client talks to, shared by every venue: one
//! [`Environment`] and one [`Endpoints`], so a venue is chosen at run time
//! without a type per venue.

/// Which deployment to talk to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Environment {
    /// The live venue.
    Production,
    /// The venue's testnet.
    Testnet,
    /// Demo trading (each venue says which of its hosts that is; Binance
    /// spot has its own, Bybit only a private host and mainnet public data).
    Demo,
    /// Explicit base URLs (the simulator, a proxy, a mirror); the venue's
    /// routes and paths are appended.
    Custom {
        /// WebSocket base, e.g. `ws://127.0.0.1:9400`.
        ws: String,
        /// REST base, e.g. `http://127.0.0.1:9400`.
        rest: String,
    },
}

impl Environment {
    /// Whether this is not production.
    pub fn is_sandbox(&self) -> bool {
        !matches!(self, Environment::Production)
    }

    /// A custom deployment on one WebSocket base URL, REST on the same host
    /// and port (`http` for `ws`, `https` for `wss`).
    pub fn custom(ws: &str) -> Environment {
        let ws = ws.trim_end_matches('/').to_string();
        let rest = match ws.strip_prefix("wss://") {
            Some(rest) => format!("https://{rest}"),
            None => format!("http://{}", ws.trim_start_matches("ws://")),
        };
        Environment::Custom { ws, rest }
    }
}

/// WebSocket and REST base URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// WebSocket base (no route, no path).
    pub ws: String,
    /// REST base.
    pub rest: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_derives_the_rest_base() {
        assert_eq!(
            Environment::custom("ws://127.0.0.1:9400/"),
            Environment::Custom { ws: "ws://127.0.0.1:9400".into(), rest: "http://127.0.0.1:9400".into() }
        );
        assert_eq!(
            Environment::custom("wss://proxy.example:443"),
            Environment::Custom { ws: "wss://proxy.example:443".into(), rest: "https://proxy.example:443".into() }
        );
        assert!(Environment::Demo.is_sandbox() && !Environment::Production.is_sandbox());
    }
}
