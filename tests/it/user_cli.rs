//! `ferrofeed user` end to end: the binary against a simulator started by the
//! test, credentials from the environment, orders placed through the
//! simulator's signed REST endpoints and coming back as JSON lines; the
//! secrets never appear in the output; a refused key ends the command.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrofeed::engine::RestClient;
use ferrofeed::model::event::{Event, EventKind, Venue};
use ferrofeed::venues::auth::{Credentials, query};
use ferrofeed_sim::{
    BybitCategory, MarketConfig, MarketHandle, MarketKind, Sim, SimConfig, TEST_API_KEY, TEST_HMAC_SECRET,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);

/// Kills the child on drop so a failing test leaves no process behind.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `ferrofeed user`: its stdout and stderr lines on channels.
struct Run {
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
    seen: Vec<String>,
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

impl Run {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrofeed"));
        cmd.arg("user").args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        for k in ["FERROFEED_API_KEY", "FERROFEED_API_SECRET", "FERROFEED_ED25519_PEM", "FERROFEED_ED25519_SEED"] {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = Child(cmd.spawn().expect("spawn ferrofeed user"));
        let out = lines(child.0.stdout.take().expect("stdout"));
        let err = lines(child.0.stderr.take().expect("stderr"));
        Run { child, out, err, seen: Vec::new() }
    }

    /// Reads stdout events (status inline) until `pred` holds for one.
    fn until(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Vec<Event> {
        let mut got = Vec::new();
        loop {
            let line = self.out.recv_timeout(WAIT).unwrap_or_else(|_| {
                let err: Vec<String> = self.err.try_iter().collect();
                panic!("no {what} in time; stdout:\n{}\nstderr:\n{}", self.seen.join("\n"), err.join("\n"))
            });
            self.seen.push(line.clone());
            let ev: Event = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not an event ({e}): {line}"));
            let done = pred(&ev);
            got.push(ev);
            if done {
                return got;
            }
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn sim(m: MarketConfig) -> (Sim, MarketHandle) {
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.markets()[0].clone();
    (sim, h)
}

/// Bybit: a market buy through `POST /v5/order/create`, signed per Bybit v5.
async fn bybit_order(h: &MarketHandle) {
    let creds = Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds");
    let body = serde_json::json!({
        "category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": "0.01",
    })
    .to_string();
    let ts = now_ms();
    let sig = creds.sign(&format!("{ts}{TEST_API_KEY}5000{body}"));
    let req = format!(
        "POST /v5/order/create HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         X-BAPI-API-KEY: {TEST_API_KEY}\r\nX-BAPI-TIMESTAMP: {ts}\r\nX-BAPI-RECV-WINDOW: 5000\r\n\
         X-BAPI-SIGN: {sig}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = TcpStream::connect(h.addr()).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await.expect("answer in time").expect("read");
    let text = String::from_utf8_lossy(&out);
    let v: serde_json::Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap_or(""))
        .unwrap_or_else(|e| panic!("answer {text}: {e}"));
    assert_eq!(v["retCode"], 0, "order refused: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_orders_come_back_as_lines_and_the_secret_never_shows() {
    let mut m = MarketConfig::bybit(BybitCategory::Linear);
    m.symbols.truncate(2);
    let (_sim, h) = sim(m).await;
    let env = [("FERROFEED_API_KEY", TEST_API_KEY), ("FERROFEED_API_SECRET", TEST_HMAC_SECRET)];
    let mut run = Run::start(&["--venue", "bybit", "--env", &h.ws_url(), "--status"], &env);
    let first = tokio::task::block_in_place(|| run.until("connected", |e| matches!(e.kind, EventKind::Connected)));
    assert!(first.iter().all(|e| e.venue == Venue::Bybit));
    bybit_order(&h).await;
    let got = tokio::task::block_in_place(|| run.until("user_trade", |e| matches!(e.kind, EventKind::UserTrade(_))));
    let orders: Vec<_> = got
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::OrderUpdate(o) => Some((e.symbol.clone(), o.status.clone())),
            _ => None,
        })
        .collect();
    assert!(orders.iter().any(|(s, _)| s.as_deref() == Some("BTCUSDT")), "{orders:?}");
    let trade = got.iter().rev().find_map(|e| match &e.kind {
        EventKind::UserTrade(t) => Some(t.clone()),
        _ => None,
    });
    let t = trade.expect("a fill");
    assert!(t.fee.is_some_and(|f| f > ferrofeed::model::Decimal::ZERO) && t.fee_asset.as_deref() == Some("USDT"));
    drop(run.child);
    let err: Vec<String> = run.err.try_iter().collect();
    let all = format!("{}\n{}", run.seen.join("\n"), err.join("\n"));
    assert!(!all.contains(TEST_HMAC_SECRET), "the secret was printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_spot_fills_arrive_with_an_ed25519_key_from_the_environment() {
    let mut m = MarketConfig::new(MarketKind::Spot);
    m.symbols.truncate(2);
    let (_sim, h) = sim(m).await;
    let seed: String = ferrofeed_sim::TEST_ED25519_SEED.iter().map(|b| format!("{b:02x}")).collect();
    let env = [("FERROFEED_API_KEY", TEST_API_KEY), ("FERROFEED_ED25519_SEED", seed.as_str())];
    let mut run = Run::start(&["--venue", "binance", "--account", "spot", "--env", &h.ws_url(), "--status"], &env);
    tokio::task::block_in_place(|| run.until("connected", |e| matches!(e.kind, EventKind::Connected)));
    let creds = Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds");
    let p: Vec<(&str, String)> =
        [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.01"), ("recvWindow", "5000")]
            .iter()
            .map(|(k, v)| (*k, v.to_string()))
            .chain([("timestamp", now_ms().to_string())])
            .collect();
    let q = query(&p);
    let url = format!("{}/api/v3/order?{q}&signature={}", h.rest_url(), creds.sign(&q));
    let answer = RestClient::default().send("POST", &url, &[("X-MBX-APIKEY", TEST_API_KEY)], 1, None).await;
    let v: serde_json::Value = serde_json::from_slice(&answer.expect("order answer")).expect("JSON");
    assert_eq!(v["status"], "FILLED", "{v}");
    let got =
        tokio::task::block_in_place(|| run.until("balance_update", |e| matches!(e.kind, EventKind::BalanceUpdate(_))));
    let fills: Vec<_> = got
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::OrderUpdate(o) => o.fill.clone(),
            _ => None,
        })
        .collect();
    assert!(!fills.is_empty(), "{got:?}");
    assert!(got.iter().all(|e| e.venue == Venue::Binance));
}

#[test]
fn a_refused_key_ends_the_command_and_missing_credentials_are_a_clear_error() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (_sim, h) = rt.block_on(sim(MarketConfig::bybit(BybitCategory::Linear)));
    let env = [("FERROFEED_API_KEY", TEST_API_KEY), ("FERROFEED_API_SECRET", "wrong-secret")];
    let out = Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
        .args(["user", "--venue", "bybit", "--env", &h.ws_url(), "--duration", "20s"])
        .envs(env)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("auth_failed") && err.contains("refused the credentials"), "{err}");
    assert!(!err.contains("wrong-secret"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
        .args(["user", "--venue", "bybit", "--env", &h.ws_url()])
        .env_remove("FERROFEED_API_KEY")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no credentials: set FERROFEED_API_KEY"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
