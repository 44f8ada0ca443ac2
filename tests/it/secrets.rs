//! Regression tests of issue 18 about credentials and user streams, each
//! named after what it pins, against the simulator (and a `nats-server`
//! started here) over real sockets: no URL, token, listenKey, password or
//! API secret reaches a status message, an error, `Debug` output or a log;
//! a clock error re-syncs instead of ending the user stream; replacing an
//! expired listenKey loses nothing silently.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;

use ferrofeed::client::Environment;
use ferrofeed::engine::{BackoffConfig, RestClient};
use ferrofeed::model::event::{Event, EventKind, Missing};
use ferrofeed::session::{PrivateClient, PrivateConfig};
use ferrofeed::venues::auth::Credentials;
use ferrofeed_sim::{
    BybitCategory, KillMode, MarketConfig, MarketHandle, MarketKind, Sim, SimConfig, TEST_API_KEY, TEST_ED25519_SEED,
    TEST_HMAC_SECRET,
};

async fn sim(m: MarketConfig) -> (Sim, MarketHandle) {
    let mut m = m;
    m.symbols.truncate(1);
    let sim = Sim::start(SimConfig::single(m)).await.expect("sim");
    let h = sim.markets()[0].clone();
    (sim, h)
}

fn config(ws: String, rest: String) -> PrivateConfig {
    PrivateConfig {
        environment: Environment::Custom { ws, rest },
        backoff: BackoffConfig {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
            ..BackoffConfig::default()
        },
        seed: Some(7),
        ..PrivateConfig::default()
    }
}

fn hmac() -> Credentials {
    Credentials::hmac(TEST_API_KEY, TEST_HMAC_SECRET).expect("creds")
}

/// Events until `pred` holds for one of them (returned with everything seen).
async fn until(c: &mut PrivateClient, what: &str, pred: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, c.next())
            .await
            .unwrap_or_else(|_| panic!("no {what} in time; saw {seen:#?}"))
            .unwrap_or_else(|| panic!("the client ended before {what}; saw {seen:#?}"));
        let done = pred(&ev);
        seen.push(ev);
        if done {
            return seen;
        }
    }
}

fn listen_keys(h: &MarketHandle) -> Vec<String> {
    h.account(None).expect("account").listen_keys.into_iter().map(|k| k.listen_key).collect()
}

/// A listenKey connection that cannot be made (here: the WebSocket base is
/// not a ws:// URL) gives up with a reason that names the URL, and that URL
/// carries the key in its path: the `gave_up` event, its `Debug` and the
/// client's `Debug` show the URL with the key masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gave_up_listen_key_connection_never_shows_the_key() {
    let (_sim, h) = sim(MarketConfig::new(MarketKind::UsdM)).await;
    // REST works; the WebSocket base is the REST one (http://): refused as a request.
    let mut c = PrivateClient::new("binance", hmac(), config(h.rest_url(), h.rest_url())).expect("venue");
    c.open("usdm").await.expect("open");
    let seen = until(&mut c, "gave_up", |e| matches!(e.kind, EventKind::GaveUp { .. })).await;
    let keys = listen_keys(&h);
    assert_eq!(keys.len(), 1, "one listenKey was created");
    let EventKind::GaveUp { reason } = &seen.last().expect("seen").kind else { unreachable!() };
    assert!(reason.contains("/ws/***"), "the URL is shown with the key masked: {reason}");
    let shown = format!("{seen:?} {} {c:?}", serde_json::to_string(&seen).expect("json"));
    assert!(!shown.contains(&keys[0]), "the listenKey leaks: {shown}");
    assert!(!shown.contains(TEST_API_KEY), "the API key leaks");
}

fn is_unknown_gap(e: &Event) -> bool {
    matches!(&e.kind, EventKind::Gap(g) if matches!(g.missing, Missing::Unknown { .. }))
}

/// Events until `pred`; an `auth_failed` on the way fails the test at once
/// (the user stream would have ended).
async fn until_no_refusal(c: &mut PrivateClient, what: &str, pred: impl Fn(&Event) -> bool) -> Vec<Event> {
    until(c, what, |e| {
        if let EventKind::AuthFailed { msg } = &e.kind {
            panic!("the user stream ended ({what}): auth_failed {msg}");
        }
        pred(e)
    })
    .await
}

/// Binance `-1021` (timestamp outside recvWindow) on a logon is the clock,
/// not the key: the venue clock jumps 60 s after the session opened, the
/// socket is lost, the next `session.logon` is refused with -1021; the client
/// measures the clock again, logs on again on a new connection, reports the
/// outage as a gap of unknown extent, and the stream delivers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timestamp_refused_logon_resyncs_the_clock_and_logs_on_again() {
    let (_sim, h) = sim(MarketConfig::new(MarketKind::Spot)).await;
    let creds = Credentials::ed25519_seed(TEST_API_KEY, TEST_ED25519_SEED).expect("creds");
    let mut c = PrivateClient::new("binance", creds, config(h.ws_url(), h.rest_url())).expect("venue");
    c.open("spot").await.expect("open");
    until_no_refusal(&mut c, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
    h.set_clock_offset_ms(60_000);
    assert_eq!(h.kill_private(KillMode::Reset), 1);
    let seen = until_no_refusal(&mut c, "a new logon", |e| matches!(e.kind, EventKind::Connected)).await;
    assert!(seen.iter().any(is_unknown_gap), "the outage is a gap: {seen:#?}");
    assert!((c.clock().offset_ms() - 60_000).abs() < 5_000, "measured again: {}", c.clock().offset_ms());
    assert_eq!((c.stats().clock_resyncs, c.stats().auth_failures), (1, 0), "{:?}", c.stats());
    h.deposit(None, "USDT", "1").expect("deposit");
    until_no_refusal(&mut c, "balance_update", |e| matches!(e.kind, EventKind::BalanceUpdate(_))).await;
    c.shutdown().await;
}

/// The Bybit private client measures the venue clock (`GET
/// /v5/market/time`) before signing `auth`, and measures it again when an
/// `auth` is refused: a venue clock 60 s ahead, before opening and again
/// after a lost socket, never ends the stream; a refusal with the clock
/// right (a bad secret) stays final (`a_bad_secret_gives_one_auth_failed_*`
/// in tests/it/bybit_private.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_private_auth_follows_the_venue_clock() {
    let (_sim, h) = sim(MarketConfig::bybit(BybitCategory::Linear)).await;
    h.set_clock_offset_ms(60_000);
    let mut c = PrivateClient::new("bybit", hmac(), config(h.ws_url(), h.rest_url())).expect("venue");
    c.open("linear").await.expect("open");
    until_no_refusal(&mut c, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
    assert!((c.clock().offset_ms() - 60_000).abs() < 5_000, "measured before auth: {}", c.clock().offset_ms());
    h.set_clock_offset_ms(120_000);
    assert_eq!(h.kill_private(KillMode::Reset), 1);
    let seen = until_no_refusal(&mut c, "a new auth", |e| matches!(e.kind, EventKind::Connected)).await;
    assert!(seen.iter().any(is_unknown_gap), "the outage is a gap: {seen:#?}");
    assert_eq!((c.stats().clock_resyncs, c.stats().auth_failures), (1, 0), "{:?}", c.stats());
    let conns = h.bybit_private_conns();
    assert_eq!(conns.last().and_then(|c| c.api_key.as_deref()), Some(TEST_API_KEY), "authenticated: {conns:?}");
    c.shutdown().await;
}

/// An expired listenKey is replaced by a new key on a new connection: the
/// events the old connection delivered before the expiry all arrive, then a
/// gap of unknown extent (the user stream has no sequence numbers, so what
/// the venue sent between the two sockets cannot be counted), then the new
/// connection's events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_listen_key_reports_a_gap_and_keeps_what_the_old_connection_delivered() {
    let (_sim, h) = sim(MarketConfig::new(MarketKind::UsdM)).await;
    let mut c = PrivateClient::new("binance", hmac(), config(h.ws_url(), h.rest_url())).expect("venue");
    c.open("usdm").await.expect("open");
    until_no_refusal(&mut c, "connected", |e| matches!(e.kind, EventKind::Connected)).await;
    let old = listen_keys(&h);
    // Deposits queued on the old connection, then the expiry, nothing read yet.
    const N: usize = 20;
    for _ in 0..N {
        h.deposit(None, "USDT", "1").expect("deposit");
    }
    assert_eq!(h.expire_listen_key(None), 1);
    let seen = until_no_refusal(&mut c, "the new connection", |e| matches!(e.kind, EventKind::Connected)).await;
    let gap = seen.iter().position(is_unknown_gap).unwrap_or_else(|| panic!("no gap reported: {seen:#?}"));
    let ended = seen.iter().position(|e| matches!(e.kind, EventKind::UserStreamEnded { .. })).expect("expiry seen");
    let deposits: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.kind, EventKind::BalanceUpdate(_)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(deposits.len(), N, "every deposit of the old connection is delivered: {seen:#?}");
    assert!(deposits.iter().all(|i| *i < ended) && ended < gap, "old events, the expiry, then the gap");
    assert_eq!(c.stats().listen_keys_replaced, 1);
    let new = listen_keys(&h);
    assert!(new.len() == 1 && new != old, "a new key");
    h.deposit(None, "USDT", "1").expect("deposit");
    until_no_refusal(&mut c, "balance_update on the new key", |e| matches!(e.kind, EventKind::BalanceUpdate(_))).await;
    c.shutdown().await;
}

// ---------------------------------------------------------------------------
// The binary at RUST_LOG=trace: no secret in any form on stdout or stderr.

/// A `ferrofeed` child at `RUST_LOG=trace`: every stdout and stderr line on
/// one channel (and kept), killed on drop.
struct Bin {
    child: std::process::Child,
    rx: mpsc::Receiver<String>,
    all: Vec<String>,
}

impl Bin {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Bin {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrofeed"));
        cmd.args(args).env("RUST_LOG", "trace").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for k in ["FERROFEED_NATS_USER", "FERROFEED_NATS_PASSWORD", "FERROFEED_NATS_TOKEN", "FERROFEED_NATS_CREDS"] {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn ferrofeed");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        for r in [Box::new(out) as Box<dyn std::io::Read + Send>, Box::new(err)] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Bin { child, rx, all: Vec::new() }
    }

    /// Reads lines until `pred` holds for one (returned); panics after 30 s.
    fn until(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.all.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no {what} in time; last lines:\n{}", self.tail()),
            }
        }
    }

    /// Waits for the exit (30 s at most) and reads everything it printed.
    fn finish(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(Instant::now() < deadline, "did not exit; last lines:\n{}", self.tail());
            if let Ok(line) = self.rx.recv_timeout(Duration::from_millis(50)) {
                self.all.push(line);
            }
        };
        // The readers end with the pipes.
        while let Ok(line) = self.rx.recv_timeout(Duration::from_secs(5)) {
            self.all.push(line);
        }
        status
    }

    fn stop(&mut self) {
        let _ = Command::new("kill").arg("-INT").arg(self.child.id().to_string()).status();
        self.finish();
    }

    fn tail(&self) -> String {
        self.all[self.all.len().saturating_sub(40)..].join("\n")
    }

    fn text(&self) -> String {
        self.all.join("\n")
    }
}

impl Drop for Bin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails if `text` holds any of `secrets` raw, hex, base64 or URL-encoded.
fn assert_no_secret(what: &str, text: &str, secrets: &[&str]) {
    assert!(text.len() > 1000, "{what}: the trace output was captured ({} bytes)", text.len());
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let forms = [
            secret.to_string(),
            hex::encode(secret.as_bytes()),
            base64::engine::general_purpose::STANDARD.encode(secret.as_bytes()),
            secret.replace(':', "%3A").replace('@', "%40"),
        ];
        for form in forms {
            if let Some(at) = text.find(&form) {
                let from = text[..at].char_indices().rev().nth(120).map_or(0, |(i, _)| i);
                panic!("{what}: a secret is printed (…{}…)", &text[from..at]);
            }
        }
    }
}

async fn admin_json(rest: &str, method: &str, path: &str) -> serde_json::Value {
    let body = RestClient::default().send(method, &format!("{rest}{path}"), &[], 1, None).await.expect("admin call");
    serde_json::from_slice(&body).expect("admin JSON")
}

/// `ferrofeed user --env sim` at TRACE: the listenKey session's whole life
/// (create, events, expiry and a new key, a killed socket, shutdown) prints
/// neither the API secret nor any listenKey.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_at_trace_prints_no_secret_and_no_listen_key() {
    let mut run = Bin::start(&["user", "--venue", "binance", "--account", "usdm", "--env", "sim", "--status"], &[]);
    let sim_line = tokio::task::block_in_place(|| run.until("the simulator's address", |l| l.starts_with("{\"sim\"")));
    let v: serde_json::Value = serde_json::from_str(&sim_line).expect("sim line");
    let rest = v["sim"]["rest"].as_str().expect("rest").to_string();
    tokio::task::block_in_place(|| run.until("connected", |l| l.contains("\"type\":\"connected\"")));
    let mut keys: Vec<String> = Vec::new();
    let mut note_keys = |a: &serde_json::Value| {
        for k in a["listen_keys"].as_array().into_iter().flatten() {
            keys.extend(k["listen_key"].as_str().map(str::to_string));
        }
    };
    note_keys(&admin_json(&rest, "GET", "/admin/account").await);
    admin_json(&rest, "POST", "/admin/deposit?asset=USDT&amount=1").await;
    tokio::task::block_in_place(|| run.until("balance_update", |l| l.contains("\"type\":\"balance_update\"")));
    admin_json(&rest, "POST", "/admin/expire_listen_key").await;
    tokio::task::block_in_place(|| run.until("the new key's connection", |l| l.contains("\"type\":\"connected\"")));
    note_keys(&admin_json(&rest, "GET", "/admin/account").await);
    admin_json(&rest, "POST", "/admin/kill?mode=reset").await;
    tokio::task::block_in_place(|| run.until("reconnected", |l| l.contains("\"type\":\"reconnected\"")));
    admin_json(&rest, "POST", "/admin/deposit?asset=USDT&amount=1").await;
    tokio::task::block_in_place(|| run.until("balance_update", |l| l.contains("\"type\":\"balance_update\"")));
    tokio::task::block_in_place(|| run.stop());
    keys.dedup();
    assert!(keys.len() >= 2, "two listenKeys were used: {}", keys.len());
    let mut secrets = vec![TEST_HMAC_SECRET];
    secrets.extend(keys.iter().map(String::as_str));
    assert_no_secret("ferrofeed user", &run.text(), &secrets);
}

/// A `nats-server -js` with user/password authentication on a free port;
/// killed on drop.
struct AuthNats {
    child: std::process::Child,
    port: u16,
    dir: PathBuf,
}

impl AuthNats {
    fn start(user: &str, pass: &str) -> AuthNats {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let dir = std::env::temp_dir().join(format!("ferrofeed-secrets-nats-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "--user", user, "--pass", pass, "-sd"])
            .arg(dir.join("store"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is installed (apt-get install nats-server; .ci/run does it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        AuthNats { child, port, dir }
    }
}

impl Drop for AuthNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn feeds_file(dir: &Path, h: &MarketHandle) -> PathBuf {
    let text = format!(
        "[nats]\nstream = \"SECRETS\"\n\n[[feed]]\nvenue = \"binance\"\nmarket = \"spot\"\nenv = \"custom\"\nws = {:?}\nrest = {:?}\nstreams = [\"btcusdt@trade\"]\n",
        h.ws_url(),
        h.rest_url(),
    );
    let p = dir.join("feeds.toml");
    std::fs::write(&p, text).expect("feeds file");
    p
}

/// NATS credentials never show: `record --sink nats://user:pass@…` at TRACE
/// prints the URL only as `nats://***@…` (stderr and the summary JSON),
/// `tail` takes its credentials from the environment (so they stay out of
/// the process list) and prints no secret either, and a refused password is
/// an error that does not name it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_credentials_come_from_the_environment_and_never_show() {
    const PASS: &str = "pw-6f1c2a9e-not-for-logs";
    const WRONG: &str = "pw-wrong-0d93b1-not-for-logs";
    let nats = tokio::task::block_in_place(|| AuthNats::start("alice", PASS));
    let (_sim, h) = sim(MarketConfig::new(MarketKind::Spot)).await;
    let feeds = feeds_file(&nats.dir, &h);
    let url = format!("nats://alice:{PASS}@127.0.0.1:{}", nats.port);
    let feeds = feeds.to_str().expect("path");
    let mut rec = Bin::start(&["record", "--config", feeds, "--sink", &url, "--progress-interval", "100ms"], &[]);
    tokio::task::block_in_place(|| {
        rec.until("a published event", |l| {
            l.split("published=").nth(1).and_then(|v| v.split(' ').next()).is_some_and(|n| n != "0")
        })
    });
    tokio::task::block_in_place(|| rec.stop());
    let summary = rec.all.iter().rev().find(|l| l.starts_with('{') && l.contains("nats_url")).expect("summary");
    let v: serde_json::Value = serde_json::from_str(summary).expect("summary JSON");
    assert_eq!(v["nats_url"], format!("nats://***@127.0.0.1:{}", nats.port));
    assert!(rec.text().contains(&format!("NATS nats://***@127.0.0.1:{}", nats.port)), "stderr names the URL redacted");
    assert_no_secret("ferrofeed record", &rec.text(), &[PASS]);

    let bare = format!("nats://127.0.0.1:{}", nats.port);
    let args = ["tail", &bare, "--stream", "SECRETS", "--no-follow", "--count", "3"];
    let mut tail = Bin::start(&args, &[("FERROFEED_NATS_USER", "alice"), ("FERROFEED_NATS_PASSWORD", PASS)]);
    let status = tokio::task::block_in_place(|| tail.finish());
    assert!(status.success(), "tail with credentials from the environment: {}", tail.tail());
    let events = tail.all.iter().filter(|l| l.starts_with("{\"type\":")).count();
    assert!(events >= 1, "tail printed the recorded events: {}", tail.tail());
    assert_no_secret("ferrofeed tail", &tail.text(), &[PASS]);

    let wrong = format!("nats://alice:{WRONG}@127.0.0.1:{}", nats.port);
    let mut refused = Bin::start(&["tail", &wrong, "--stream", "SECRETS", "--no-follow"], &[]);
    let status = tokio::task::block_in_place(|| refused.finish());
    assert!(!status.success(), "a wrong password is refused");
    let text = refused.text();
    assert!(text.contains("nats://***@127.0.0.1"), "the error names the server redacted: {text}");
    for secret in [WRONG, PASS] {
        assert!(!text.contains(secret), "the refused password is printed: {text}");
    }
}
