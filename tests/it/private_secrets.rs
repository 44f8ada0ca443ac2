//! Credentials never leak: a full private session (logon, orders, a killed
//! socket, a keep-alive, an expired and replaced listenKey, shutdown) with
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
use ferrofeed::session::{PrivateClient, PrivateConfig};
use ferrofeed::venues::binance::auth::Credentials;
use ferrofeed_sim::{
    KillMode, MarketConfig, MarketKind, Sim, SimConfig, TEST_API_KEY, TEST_ED25519_SEED, TEST_HMAC_SECRET,
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
    eprintln!("captured {} bytes of logs and Debug output; {} secrets absent", text.len(), secrets.len());
}
