//! `ferrofeed order` and `ferrofeed user` on Deribit, end to end: the binary
//! against a simulator started by the test. An order placed with `order
//! place` fills against the simulator's book, its typed answer is one JSON
//! line, and the fill arrives in `ferrofeed user`'s output; a refusal is a
//! typed JSON error with exit status 1; `--env sim` runs against an embedded
//! simulator with its test account.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ferrofeed::model::event::{Event, EventKind};
use ferrofeed_sim::{DeribitKind, MarketConfig, Sim, SimConfig, TEST_API_KEY, TEST_HMAC_SECRET};

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

fn ferrofeed(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrofeed"));
    cmd.args(args);
    for k in ["FERROFEED_API_KEY", "FERROFEED_API_SECRET", "FERROFEED_ED25519_PEM", "FERROFEED_ED25519_SEED"] {
        cmd.env_remove(k);
    }
    cmd.env("FERROFEED_API_KEY", TEST_API_KEY).env("FERROFEED_API_SECRET", TEST_HMAC_SECRET);
    cmd
}

/// Runs `ferrofeed order …` to the end: its JSON line and whether it succeeded.
async fn order(args: &[&str]) -> (serde_json::Value, bool) {
    let mut cmd = ferrofeed(&["order"]);
    cmd.args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.expect("join").expect("run ferrofeed order");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_else(|| {
        panic!("no JSON line; stderr: {}", String::from_utf8_lossy(&out.stderr));
    });
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    (v, out.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_placed_from_the_command_line_fills_and_the_fill_reaches_ferrofeed_user() {
    let mut m = MarketConfig::deribit(DeribitKind::Inverse);
    m.symbols.retain(|s| s.name == "BTC-PERPETUAL");
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.deribit(DeribitKind::Inverse).expect("inverse").clone();
    let base = h.ws_url();

    let mut user = ferrofeed(&["user", "--venue", "deribit", "--account", "any", "--env", &base, "--status"]);
    user.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Child(user.spawn().expect("spawn ferrofeed user"));
    let out = lines(child.0.stdout.take().expect("stdout"));
    let _err = lines(child.0.stderr.take().expect("stderr"));
    // Wait until the private stream is subscribed: the simulator counts the session.
    let deadline = std::time::Instant::now() + WAIT;
    while h.deribit_stats().expect("stats").auths == 0 || h.stats().connections_open == 0 {
        assert!(std::time::Instant::now() < deadline, "ferrofeed user connected and authenticated");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut seen = Vec::new();
    loop {
        let line = out.recv_timeout(WAIT).expect("a status line");
        let ev: Event = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not an event ({e}): {line}"));
        seen.push(line);
        if matches!(ev.kind, EventKind::Connected | EventKind::Reconnected) {
            break;
        }
    }

    let (v, ok) = order(&[
        "place",
        "--venue",
        "deribit",
        "--env",
        &base,
        "--symbol",
        "BTC-PERPETUAL",
        "--side",
        "buy",
        "--qty",
        "10",
        "--client-id",
        "cli-1",
    ])
    .await;
    assert!(ok, "{v}");
    assert_eq!((v["venue"].as_str(), v["request"].as_str()), (Some("deribit"), Some("place")), "{v}");
    assert_eq!(v["answer"]["answer"], "placed", "{v}");
    let order_id = v["answer"]["order"]["order_id"].as_str().expect("order id").to_string();
    let fills = v["answer"]["fills"].as_array().expect("fills");
    assert!(!fills.is_empty(), "a market order fills: {v}");
    // Exact decimals: prices are strings.
    assert!(fills.iter().all(|f| f["price"].is_string()), "{v}");

    let deadline = std::time::Instant::now() + WAIT;
    loop {
        assert!(std::time::Instant::now() < deadline, "no user_trade for {order_id}:\n{}", seen.join("\n"));
        let Ok(line) = out.recv_timeout(Duration::from_millis(200)) else { continue };
        seen.push(line.clone());
        let ev: Event = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not an event ({e}): {line}"));
        if let EventKind::UserTrade(t) = &ev.kind
            && t.order_id == order_id
        {
            break;
        }
    }

    // A refusal: typed, with the venue's code, and exit status 1.
    let (v, ok) = order(&[
        "cancel",
        "--venue",
        "deribit",
        "--env",
        &base,
        "--symbol",
        "BTC-PERPETUAL",
        "--order-id",
        "no-such-order",
    ])
    .await;
    assert!(!ok, "{v}");
    assert_eq!(v["error"]["kind"], "refused", "{v}");
    assert_eq!(v["error"]["refusal"], "order_not_found", "{v}");
    assert_eq!(v["error"]["outcome_unknown"], false, "{v}");
    assert!(v["error"]["code"].is_i64(), "{v}");
}

#[tokio::test]
async fn order_env_sim_uses_an_embedded_simulator_and_its_test_account() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrofeed"));
    cmd.args(["order", "open", "--venue", "deribit", "--env", "sim", "--symbol", "BTC-PERPETUAL"]);
    for k in ["FERROFEED_API_KEY", "FERROFEED_API_SECRET"] {
        cmd.env_remove(k);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.expect("join").expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(v["answer"]["answer"], "open_orders", "{v}");
    assert_eq!(v["answer"]["orders"], serde_json::json!([]), "{v}");
}

/// The fixtures directory beside the checkout.
fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/deribit")
}

#[test]
fn book_replay_of_the_captured_deribit_book_has_no_gap() {
    let updates = fixtures().join("book_sync/BTC-24SEP21-8000-P/book.jsonl");
    let frames = std::fs::read_to_string(&updates).expect("the captured book");
    let out = Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
        .args(["book", "replay", "--venue", "deribit", "--market", "option", "--updates"])
        .arg(&updates)
        .output()
        .expect("run book replay");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
    // The first frame is the snapshot; every other one a change applied in chain.
    let changes = frames.lines().filter(|l| !l.trim().is_empty()).count() as u64 - 1;
    assert_eq!(
        (v["applied"].as_u64(), v["gaps"].as_u64(), v["dropped"].as_u64()),
        (Some(changes), Some(0), Some(0)),
        "{v}"
    );
    let last: serde_json::Value =
        serde_json::from_str(frames.lines().rfind(|l| !l.trim().is_empty()).expect("frames")).expect("JSON");
    assert_eq!(v["last_update_id"], last["params"]["data"]["change_id"], "{v}");
}

#[test]
fn decode_turns_a_deribit_trades_frame_into_one_event_per_trade() {
    let pretty = std::fs::read_to_string(fixtures().join("trades.json")).expect("fixture");
    let frame: serde_json::Value = serde_json::from_str(&pretty).expect("JSON");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
        .args(["decode", "--venue", "deribit", "--market", "inverse", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run decode");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{frame}").expect("write the frame");
    }
    let out = child.wait_with_output().expect("decode ends");
    assert!(out.status.success());
    let events: Vec<Event> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not an event ({e}): {l}")))
        .collect();
    let trades = frame["params"]["data"].as_array().expect("trades");
    assert_eq!(events.len(), trades.len());
    for (ev, t) in events.iter().zip(trades) {
        let EventKind::Trade(x) = &ev.kind else { panic!("a trade: {ev:?}") };
        assert_eq!(x.trade_id, t["trade_id"].as_str().expect("id"));
        assert_eq!(x.trade_seq, t["trade_seq"].as_u64());
        // Exact: the decimal prints as the venue wrote the number.
        assert_eq!(x.price.to_string(), t["price"].to_string());
    }
}
