//! Credentials never leak: a full private session (logon, orders, a killed
//! socket, a keep-alive, an expired and replaced listenKey, margin
//! listenTokens issued, renewed and resubscribed after a kill, orders over
//! the Binance WebSocket APIs and Bybit's trade socket, shutdown) with
//! every log at TRACE (our crates and the third-party ones, through the `log`
//! bridge) captured, plus the `Debug` output of every event, error, config and
//! credential type, contains neither the API key, the secrets nor any
//! listenKey, raw or hex-encoded.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ferrofeed::client::Environment;
use ferrofeed::engine::BackoffConfig;
use ferrofeed::model::event::EventKind;
use ferrofeed::model::event::Side;
use ferrofeed::session::{PrivateClient, PrivateConfig};
use ferrofeed::trading::{OrderClient, OrderConfig};
use ferrofeed::venues::binance::auth::Credentials;
use ferrofeed::venues::registry;
use ferrofeed::venues::trading::{CancelOrder, OrderRef, OrderType, PlaceOrder, TimeInForce};
use ferrofeed_sim::{
    BybitCategory, KillMode, MarketConfig, MarketKind, Sim, SimConfig, TEST_API_KEY, TEST_ED25519_SEED,
    TEST_HMAC_SECRET,
};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

async fn next_until(c: &mut PrivateClient, out: &mut Capture, pred: impl Fn(&EventKind) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ev = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), c.next())
            .await
            .expect("event in time")
            .expect("open");
        writeln!(out, "{ev:?}").unwrap();
        writeln!(out, "{}", serde_json::to_string(&ev).unwrap()).unwrap();
        if pred(&ev.kind) {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_any_output() {
    let mut cap = Capture::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(cap.clone())
        .with_ansi(false)
        .try_init()
        .expect("the only subscriber in this test binary");
    tracing::trace!("capture works");

    let mut cfg = SimConfig::all_markets();
    cfg.markets.retain(|m| matches!(m.kind, MarketKind::Spot | MarketKind::UsdM));
    for m in &mut cfg.markets {
        m.symbols.truncate(1);
    }
    let _: Option<&MarketConfig> = cfg.markets.first();
    let sim = Sim::start(cfg).await.expect("sim");
    let spot = sim.market(MarketKind::Spot).expect("spot").clone();
    let usdm = sim.market(MarketKind::UsdM).expect("usdm").clone();
    let conf = |ws: String, rest: String| PrivateConfig {
        environment: Environment::Custom { ws, rest },
        backoff: BackoffConfig {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
            ..BackoffConfig::default()
        },
        keepalive: Some(Duration::from_millis(300)),
        ..PrivateConfig::default()
    };

    // Spot: Ed25519 logon, a deposit, a killed socket and a new logon.
    let creds = Credentials::ed25519_seed(TEST_API_KEY, TEST_ED25519_SEED).expect("creds");
    writeln!(cap, "{creds:?} {creds:#?}").unwrap();
    let spot_cfg = conf(spot.ws_url(), spot.rest_url());
    writeln!(cap, "{spot_cfg:?}").unwrap();
    let mut s = PrivateClient::new("binance", creds, spot_cfg).expect("venue");
    s.open("spot").await.expect("open spot");
    writeln!(cap, "{s:?}").unwrap();
    next_until(&mut s, &mut cap, |k| matches!(k, EventKind::Connected)).await;
    spot.deposit(None, "USDT", "1").expect("deposit");
    next_until(&mut s, &mut cap, |k| matches!(k, EventKind::BalanceUpdate(_))).await;
    spot.kill_private(KillMode::Reset);
    next_until(&mut s, &mut cap, |k| matches!(k, EventKind::Gap(_))).await;
    spot.deposit(None, "USDT", "1").expect("deposit");
    next_until(&mut s, &mut cap, |k| matches!(k, EventKind::BalanceUpdate(_))).await;

    // USD-M: HMAC listenKey, keep-alives, an expiry and a new key, shutdown.
    let hmac = Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds");
    writeln!(cap, "{hmac:?}").unwrap();
    let mut f = PrivateClient::new("binance", hmac, conf(usdm.ws_url(), usdm.rest_url())).expect("venue");
    f.open("usdm").await.expect("open usdm");
    next_until(&mut f, &mut cap, |k| matches!(k, EventKind::Connected)).await;
    let mut keys: Vec<String> =
        usdm.account(None).expect("account").listen_keys.into_iter().map(|k| k.listen_key).collect();
    writeln!(cap, "{f:?}").unwrap();
    usdm.expire_listen_key(None);
    next_until(&mut f, &mut cap, |k| matches!(k, EventKind::Connected)).await;
    keys.extend(usdm.account(None).expect("account").listen_keys.into_iter().map(|k| k.listen_key));
    usdm.deposit(None, "USDT", "2").expect("deposit");
    next_until(&mut f, &mut cap, |k| matches!(k, EventKind::BalanceUpdate(_))).await;
    // Let a few keep-alives go out.
    let until = Instant::now() + Duration::from_millis(800);
    while Instant::now() < until {
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(100), f.next()).await {
            writeln!(cap, "{ev:?}").unwrap();
        }
    }
    assert!(f.stats().keepalives >= 1, "{:?}", f.stats());
    writeln!(cap, "{:?}", f.stats()).unwrap();
    // Errors carry no secrets either.
    let bad = Credentials::hmac(TEST_API_KEY, "wrong-secret-value-123").expect("creds");
    let mut b = PrivateClient::new("binance", bad, conf(usdm.ws_url(), usdm.rest_url())).expect("venue");
    if let Err(e) = b.open("usdm").await {
        writeln!(cap, "{e} {e:?}").unwrap();
    }
    // Margin by listenToken: tokens issued with signed REST calls, renewed on
    // the connection, a killed socket resubscribed with a fresh one.
    let hmac = Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds");
    let margin_cfg = PrivateConfig {
        token_validity: Some(Duration::from_millis(1200)),
        keepalive: Some(Duration::from_millis(100)),
        ..conf(spot.ws_url(), spot.rest_url())
    };
    let mut mg = PrivateClient::new("binance", hmac, margin_cfg).expect("venue");
    mg.open("margin").await.expect("open margin");
    next_until(&mut mg, &mut cap, |k| matches!(k, EventKind::Connected)).await;
    spot.deposit_to(None, Some("margin"), "USDT", "1").expect("deposit");
    next_until(&mut mg, &mut cap, |k| matches!(k, EventKind::BalanceUpdate(_))).await;
    spot.kill_private(KillMode::Reset);
    next_until(&mut mg, &mut cap, |k| matches!(k, EventKind::Gap(_))).await;
    let until = Instant::now() + Duration::from_secs(10);
    while mg.stats().listen_tokens_renewed < 2 && Instant::now() < until {
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(100), mg.next()).await {
            writeln!(cap, "{ev:?}").unwrap();
        }
    }
    assert!(mg.stats().listen_tokens_renewed >= 2, "{:?}", mg.stats());
    writeln!(cap, "{mg:?} {:?}", mg.stats()).unwrap();

    // Orders over the WebSocket APIs: Binance spot signing every request
    // (HMAC), USD-M likewise, Bybit's trade socket; answers, refusals, errors.
    let order_cfg = |ws: String, rest: String| OrderConfig {
        environment: Environment::Custom { ws, rest },
        backoff: BackoffConfig { initial: Duration::from_millis(50), ..BackoffConfig::default() },
        ..OrderConfig::default()
    };
    let buy = |symbol: &str, qty: &str| PlaceOrder {
        symbol: symbol.into(),
        side: Side::Buy,
        order_type: OrderType::Market,
        qty: qty.parse().expect("qty"),
        price: None,
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        reduce_only: false,
        client_order_id: Some("secret-test".into()),
    };
    let symbol = "BTCUSDT".to_string();
    for (market, h, creds) in [
        ("binance:spot", &spot, Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds")),
        ("binance:spot", &spot, Credentials::ed25519_seed(TEST_API_KEY, TEST_ED25519_SEED).expect("creds")),
        ("binance:usdm", &usdm, Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds")),
    ] {
        let id = registry::parse_market(market).expect("market");
        let account = if market.ends_with("spot") { "spot" } else { "usdm" };
        let o = OrderClient::connect(id, account, creds, order_cfg(h.ws_url(), h.rest_url())).await.expect("orders");
        writeln!(cap, "{o:?}").unwrap();
        let a = o.place(buy(&symbol, "0.001")).await;
        writeln!(cap, "{a:?}").unwrap();
        assert!(a.is_ok(), "{market}: {a:?}");
        let gone = CancelOrder { symbol: symbol.clone(), order: OrderRef::OrderId("1".into()) };
        let e = o.cancel(gone).await;
        writeln!(cap, "{e:?}").unwrap();
        let e = e.expect_err("refused");
        assert!(e.refusal().is_some(), "{market}: a venue refusal, got {e}");
        writeln!(cap, "{e}").unwrap();
        o.close().await;
    }
    let bad = Credentials::hmac(TEST_API_KEY, "wrong-secret-value-123").expect("creds");
    let e = OrderClient::connect(
        registry::parse_market("binance:spot").expect("market"),
        "spot",
        bad,
        order_cfg(spot.ws_url(), spot.rest_url()),
    )
    .await;
    if let Ok(o) = &e {
        let r = o.place(buy(&symbol, "0.001")).await;
        writeln!(cap, "{r:?}").unwrap();
        if let Err(e) = r {
            writeln!(cap, "{e}").unwrap();
        }
    }
    writeln!(cap, "{:?}", e.as_ref().err()).unwrap();
    let mut bcfg = MarketConfig::bybit(BybitCategory::Linear);
    bcfg.symbols.truncate(1);
    let bsym = bcfg.symbols[0].name.clone();
    let bsim = Sim::start(SimConfig::single(bcfg)).await.expect("bybit sim");
    let bh = bsim.markets()[0].clone();
    let creds = Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds");
    let o = OrderClient::connect(
        registry::parse_market("bybit:linear").expect("market"),
        "linear",
        creds,
        order_cfg(bh.ws_url(), bh.rest_url()),
    )
    .await
    .expect("bybit orders");
    writeln!(cap, "{o:?}").unwrap();
    let a = o.place(buy(&bsym, "0.01")).await;
    writeln!(cap, "{a:?}").unwrap();
    assert!(a.is_ok(), "bybit: {a:?}");
    let e = o.place(buy(&bsym, "1000000")).await.expect_err("refused");
    assert!(e.refusal().is_some(), "bybit: a venue refusal, got {e}");
    writeln!(cap, "{e:?} {e}").unwrap();
    o.close().await;
    mg.shutdown().await;
    f.shutdown().await;
    s.shutdown().await;

    let text = String::from_utf8_lossy(&cap.0.lock().unwrap()).into_owned();
    if let Ok(path) = std::env::var("FERROFEED_SECRETS_DUMP") {
        let _ = std::fs::write(path, &text);
    }
    assert!(text.contains("capture works"), "the capture works");
    assert!(text.contains("<redacted>"), "Debug of credentials says <redacted>");
    assert!(keys.len() == 2 && keys[0] != keys[1], "{}", keys.len());
    let seed_hex = hex::encode(TEST_ED25519_SEED);
    let seed_b64 = base64::engine::general_purpose::STANDARD.encode(TEST_ED25519_SEED);
    let mut secrets = vec![
        TEST_API_KEY.to_string(),
        TEST_HMAC_SECRET.to_string(),
        seed_hex,
        seed_b64,
        "wrong-secret-value-123".into(),
    ];
    secrets.extend(keys);
    for secret in &secrets {
        let hexed = hex::encode(secret.as_bytes());
        assert!(!text.contains(secret.as_str()), "a secret appears in the output ({} bytes captured)", text.len());
        assert!(!text.contains(&hexed), "a hex-encoded secret appears in the output");
    }
    // Signatures (64 hex digits for HMAC, 88 base64 characters for
    // Ed25519) and listenTokens (70 base64 characters) are made per request
    // and never known to the test: no long run of their alphabet may appear.
    let mut run = 0usize;
    for (i, c) in text.char_indices() {
        if c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=' {
            run += 1;
            assert!(run < 60, "a signature- or token-like run appears: {:?}", &text[i + 1 - run.min(i + 1)..=i]);
        } else {
            run = 0;
        }
    }
    for (i, _) in text.match_indices("signature") {
        let after: String = text[i + "signature".len()..].chars().take(6).collect();
        assert!(
            !after.trim_start_matches(['"', ':', '=', ' ']).starts_with(|c: char| c.is_ascii_alphanumeric()),
            "a signature value appears: {after:?}"
        );
    }
    eprintln!("captured {} bytes of logs and Debug output; {} secrets absent", text.len(), secrets.len());
}
