//! The `ferrofeed` binary, run as a user would.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
}

/// Kills the child on drop so a failing test leaves no process behind.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_prints_one_json_line_per_market_and_serves_trades() {
    let mut child = Child(
        bin()
            .args(["sim", "--markets", "spot,usdm", "--seed", "3"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ferrofeed sim"),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut markets = Vec::new();
    for _ in 0..2 {
        let line = lines.next().expect("a line").expect("utf-8");
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
        assert_eq!(v["venue"], "binance");
        assert!(v["ws"].as_str().unwrap().starts_with("ws://127.0.0.1:"));
        assert!(v["rest"].as_str().unwrap().starts_with("http://127.0.0.1:"));
        markets.push(v);
    }
    assert_eq!(markets[0]["market"], "spot");
    assert_eq!(markets[1]["market"], "usdm");
    let url = format!("{}/ws/btcusdt@trade", markets[0]["ws"].as_str().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
    let msg = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Ok(Message::Text(t))) = ws.next().await {
                return t.to_string();
            }
        }
    })
    .await
    .expect("a trade in time");
    let v: serde_json::Value = serde_json::from_str(&msg).unwrap();
    assert_eq!(v["e"], "trade");
    assert_eq!(v["s"], "BTCUSDT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_serves_bybit_markets_with_their_own_json_lines() {
    let mut child = Child(
        bin()
            .args(["sim", "--markets", "usdm,bybit-linear,bybit-spot", "--seed", "3"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ferrofeed sim"),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut markets = Vec::new();
    for _ in 0..3 {
        let line = lines.next().expect("a line").expect("utf-8");
        markets.push(serde_json::from_str::<serde_json::Value>(&line).expect("JSON line"));
    }
    assert_eq!((&markets[0]["venue"], &markets[0]["market"]), (&"binance".into(), &"usdm".into()));
    for (m, category) in markets[1..].iter().zip(["linear", "spot"]) {
        assert_eq!((&m["venue"], m["market"].as_str()), (&"bybit".into(), Some(category)), "{m}");
        let ws = m["ws"].as_str().unwrap();
        assert!(ws.starts_with("ws://127.0.0.1:"), "{m}");
        assert_eq!(m["url"].as_str(), Some(format!("{ws}/v5/public/{category}").as_str()), "{m}");
        assert!(m["rest"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{m}");
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(markets[1]["url"].as_str().unwrap()).await.expect("connect");
    let sub = r#"{"op":"subscribe","req_id":"1","args":["publicTrade.BTCUSDT"]}"#;
    futures_util::SinkExt::send(&mut ws, Message::Text(sub.into())).await.expect("send");
    let trade = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Ok(Message::Text(t))) = ws.next().await {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                if v["topic"] == "publicTrade.BTCUSDT" {
                    return v;
                }
            }
        }
    })
    .await
    .expect("a trade in time");
    assert_eq!(trade["data"][0]["s"], "BTCUSDT");
}

#[test]
fn bad_arguments_are_clear_errors_not_panics() {
    let out = bin().args(["sim", "--markets", "spot,moon"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown market \"moon\""), "{err}");
    assert!(err.contains("bybit-linear"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let out = bin().args(["demo", "--duration", "soon"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid duration"), "{err}");

    let out = bin().args(["sim", "--time-scale", "-1"]).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn demo_runs_offline_recovers_from_a_fault_and_reports_no_silent_loss() {
    // stdout is a pipe: progress lines and a JSON summary instead of the live view.
    let out = bin().args(["demo", "--duration", "4s"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value =
        serde_json::from_str(text.lines().last().expect("a summary line")).expect("the last line is JSON");
    assert!(summary["trades"].as_u64().unwrap() > 0, "{summary}");
    let book = &summary["book"];
    assert_eq!((book["market"].as_str(), book["symbol"].as_str()), (Some("spot"), Some("BTCUSDT")), "{summary}");
    assert_eq!(book["synced"], true, "{summary}");
    assert!(book["last_update_id"].as_u64().unwrap() > 0, "{summary}");
    assert!(book["best_bid"]["price"].is_string() && book["best_ask"]["price"].is_string(), "{summary}");
    assert_eq!(summary["faults"][0]["fault"], "kill (TCP reset) on spot", "{summary}");
    assert!(summary["faults_recovered"].as_u64().unwrap() >= 1, "{summary}");
    assert!(summary["reconnects"].as_u64().unwrap() >= 1, "the kill was recovered: {summary}");
    assert_eq!(summary["btcusdt_trade_ids"]["unreported"], 0, "{summary}");
    assert_eq!(summary["unreported"], 0, "{summary}");
    assert!(text.contains("fault injected"), "{text}");
}
