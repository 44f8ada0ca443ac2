//! `ferrofeed order --venue binance|bybit --market …` and `ferrofeed user`,
//! end to end (issue 21): the binary against a simulator started by the test.
//! An order placed with `order place` is one typed JSON line and its fill
//! arrives in a running `ferrofeed user` for the same account as `user_trade`
//! (and `order_update`); a refusal is a typed JSON error with exit status 1.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferrofeed::model::event::{Event, EventKind};
use ferrofeed_sim::{
    BybitCategory, MarketConfig, MarketHandle, MarketKind, Sim, SimConfig, TEST_API_KEY, TEST_ED25519_SEED,
    TEST_HMAC_SECRET,
};

const WAIT: Duration = Duration::from_secs(30);

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn lines(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// The binary with the test account's key: HMAC, or Ed25519 (the seed as hex).
fn ferrofeed(args: &[&str], ed25519: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrofeed"));
    cmd.args(args);
    for k in ["FERROFEED_API_KEY", "FERROFEED_API_SECRET", "FERROFEED_ED25519_PEM", "FERROFEED_ED25519_SEED"] {
        cmd.env_remove(k);
    }
    cmd.env("FERROFEED_API_KEY", TEST_API_KEY);
    if ed25519 {
        cmd.env("FERROFEED_ED25519_SEED", hex::encode(TEST_ED25519_SEED));
    } else {
        cmd.env("FERROFEED_API_SECRET", TEST_HMAC_SECRET);
    }
    cmd
}

async fn order(args: Vec<String>) -> (serde_json::Value, bool) {
    let args: Vec<&str> = std::iter::once("order").chain(args.iter().map(String::as_str)).collect();
    let mut cmd = ferrofeed(&args, false);
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.expect("join").expect("run ferrofeed order");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_else(|| {
        panic!("no JSON line; stderr: {}", String::from_utf8_lossy(&out.stderr));
    });
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    (v, out.status.success())
}

fn args(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

/// Starts `ferrofeed user` and waits for its connection.
fn user(venue: &str, account: &str, base: &str, ed25519: bool) -> (Child, mpsc::Receiver<String>, Vec<String>) {
    let mut cmd = ferrofeed(&["user", "--venue", venue, "--account", account, "--env", base, "--status"], ed25519);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Child(cmd.spawn().expect("spawn ferrofeed user"));
    let out = lines(child.0.stdout.take().expect("stdout"));
    let _ = lines(child.0.stderr.take().expect("stderr"));
    let mut seen = Vec::new();
    loop {
        let line = out.recv_timeout(WAIT).unwrap_or_else(|_| panic!("no connection: {seen:?}"));
        let ev: Event = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not an event ({e}): {line}"));
        seen.push(line);
        if matches!(ev.kind, EventKind::Connected) {
            return (child, out, seen);
        }
    }
}

/// Reads `ferrofeed user`'s lines until a `user_trade` of `order_id`;
/// returns whether an `order_update` of it came too.
fn fill_of(out: &mpsc::Receiver<String>, seen: &mut Vec<String>, order_id: &str) -> bool {
    let deadline = Instant::now() + WAIT;
    let mut update = false;
    loop {
        assert!(Instant::now() < deadline, "no user_trade for {order_id}:\n{}", seen.join("\n"));
        let Ok(line) = out.recv_timeout(Duration::from_millis(200)) else { continue };
        seen.push(line.clone());
        let ev: Event = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not an event ({e}): {line}"));
        match &ev.kind {
            EventKind::OrderUpdate(o) if o.order_id == order_id => update = true,
            EventKind::UserTrade(t) if t.order_id == order_id => return update,
            _ => {}
        }
    }
}

async fn start(m: MarketConfig) -> (Sim, MarketHandle) {
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.markets()[0].clone();
    (sim, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_spot_orders_from_the_command_line_reach_ferrofeed_user() {
    let mut m = MarketConfig::new(MarketKind::Spot);
    m.symbols.retain(|s| s.name == "BTCUSDT");
    let (_sim, h) = start(m).await;
    let base = h.ws_url();
    // Spot user data logs on with the Ed25519 key; the order command signs
    // each request with the HMAC key of the same account.
    let (_child, out, mut seen) = user("binance", "spot", &base, true);
    let (v, ok) = order(args(&[
        "place",
        "--venue",
        "binance",
        "--market",
        "spot",
        "--env",
        &base,
        "--symbol",
        "BTCUSDT",
        "--side",
        "buy",
        "--qty",
        "0.01",
        "--client-id",
        "cli-1",
    ]))
    .await;
    assert!(ok, "{v}");
    assert_eq!(
        (v["venue"].as_str(), v["market"].as_str(), v["account"].as_str()),
        (Some("binance"), Some("spot"), Some("spot"))
    );
    assert_eq!(v["answer"]["answer"], "placed", "{v}");
    assert_eq!(v["answer"]["order"]["status"], "FILLED", "{v}");
    // The venue's order-rate limits as its answer reported them.
    let limits = v["rate_limits"].as_array().unwrap_or_else(|| panic!("rate limits: {v}"));
    assert!(
        limits.iter().any(|l| l["limit"]["name"] == "ORDERS" && l["limit"]["window"] == 10_000 && l["used"] == 1),
        "{v}"
    );
    let order_id = v["answer"]["order"]["order_id"].as_str().expect("order id").to_string();
    assert!(fill_of(&out, &mut seen, &order_id), "order_update before user_trade:\n{}", seen.join("\n"));

    // A refusal: typed, with the venue's code, exit status 1.
    let (v, ok) = order(args(&[
        "cancel",
        "--venue",
        "binance",
        "--market",
        "spot",
        "--env",
        &base,
        "--symbol",
        "BTCUSDT",
        "--order-id",
        "1",
    ]))
    .await;
    assert!(!ok, "{v}");
    assert_eq!(
        (v["error"]["kind"].as_str(), v["error"]["refusal"].as_str()),
        (Some("refused"), Some("order_not_found")),
        "{v}"
    );
    assert_eq!(v["error"]["outcome_unknown"], false, "{v}");
    // Refused before sending: off the tick size of the instrument list.
    let (v, ok) = order(args(&[
        "place", "--venue", "binance", "--market", "spot", "--env", &base, "--symbol", "BTCUSDT", "--side", "buy",
        "--qty", "0.01", "--price", "1000.001",
    ]))
    .await;
    assert!(!ok, "{v}");
    assert_eq!(v["error"]["kind"], "invalid", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_usdm_and_bybit_linear_orders_from_the_command_line_reach_ferrofeed_user() {
    let mut m = MarketConfig::new(MarketKind::UsdM);
    m.symbols.retain(|s| s.name == "BTCUSDT");
    let (_sim, h) = start(m).await;
    let base = h.ws_url();
    let (_child, out, mut seen) = user("binance", "usdm", &base, false);
    let (v, ok) = order(args(&[
        "place", "--venue", "binance", "--market", "usdm", "--env", &base, "--symbol", "BTCUSDT", "--side", "sell",
        "--qty", "0.01",
    ]))
    .await;
    assert!(ok, "{v}");
    assert_eq!(v["account"], "usdm", "the account follows the market: {v}");
    let order_id = v["answer"]["order"]["order_id"].as_str().expect("order id").to_string();
    fill_of(&out, &mut seen, &order_id);

    let mut m = MarketConfig::bybit(BybitCategory::Linear);
    m.symbols.retain(|s| s.name == "BTCUSDT");
    let (_sim2, h) = start(m).await;
    let base = h.ws_url();
    let (_child2, out, mut seen) = user("bybit", "linear", &base, false);
    let (v, ok) = order(args(&[
        "place",
        "--venue",
        "bybit",
        "--market",
        "linear",
        "--env",
        &base,
        "--symbol",
        "BTCUSDT",
        "--side",
        "buy",
        "--qty",
        "0.01",
        "--client-id",
        "cli-bybit",
    ]))
    .await;
    assert!(ok, "{v}");
    assert_eq!(v["answer"]["answer"], "accepted", "{v}");
    assert_eq!(v["answer"]["client_order_id"], "cli-bybit", "{v}");
    let order_id = v["answer"]["order_id"].as_str().expect("order id").to_string();
    assert!(fill_of(&out, &mut seen, &order_id), "order_update before user_trade:\n{}", seen.join("\n"));
}
