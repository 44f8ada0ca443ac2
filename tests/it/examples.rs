//! Every runnable example in `examples/` runs against the simulator and does
//! what its documentation says. Each runs as a child process until what it
//! should show has been seen (a hang guard of 60 s, not a timing bound), then
//! gets SIGINT and must exit cleanly.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferrofeed::model::Decimal;
use ferrofeed::model::event::{Event, EventKind};
use serde_json::Value;

use crate::nats::{Collector, NatsServer, TempDir, create_stream, feeds_file, read_all, signal, sim};

/// The built example. `cargo test` builds every example before running the
/// tests; `cargo test --test it` does not, so a missing one is built here
/// (after editing an example, run `cargo build --examples` or the whole
/// `cargo test` so this does not run a stale one).
fn example(name: &str) -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_ferrofeed"));
    let path = bin.parent().expect("target dir").join("examples").join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--quiet", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build --example");
        assert!(st.success(), "building example {name}");
    }
    path
}

/// An example running as a child: stdout lines arrive on a channel, stderr
/// is collected; killed on drop.
struct Running {
    child: Option<std::process::Child>,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
    name: String,
}

impl Running {
    fn start(name: &str, args: &[&str]) -> Running {
        let mut child = Command::new(example(name))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn example {name}: {e}"));
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(err), &mut s);
            s
        });
        Running { child: Some(child), lines, stderr, name: name.to_string() }
    }

    /// Reads stdout lines until `done` says enough (it sees every line).
    fn until(&self, mut done: impl FnMut(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if done(&l) {
                        return;
                    }
                }
                Err(e) => panic!("example {} never showed what it should ({e:?})", self.name),
            }
        }
    }

    /// SIGINT (Ctrl-C), then its exit must be clean; returns stderr.
    fn interrupt(mut self) -> String {
        let mut c = self.child.take().expect("running");
        signal(c.id(), "INT");
        let status = c.wait().expect("wait");
        let stderr = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new)).join().expect("stderr");
        assert!(status.success(), "example {} exited with {status}; stderr:\n{stderr}", self.name);
        stderr
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn trades_example_merges_two_venues() {
    let run = Running::start("trades", &["--seconds", "120"]);
    let mut venues = BTreeSet::new();
    let mut n = 0;
    run.until(|l| {
        // "binance:spot BTCUSDT buy 0.5 @ 100.1 id=7"
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f.len(), 7, "a trade line: {l}");
        assert_eq!(f[1], "BTCUSDT", "{l}");
        assert!(f[2] == "buy" || f[2] == "sell", "{l}");
        assert!(f[3].parse::<Decimal>().is_ok_and(|q| q > Decimal::ZERO), "qty: {l}");
        assert_eq!(f[4], "@");
        assert!(f[5].parse::<Decimal>().is_ok_and(|p| p > Decimal::ZERO), "price: {l}");
        assert!(f[6].strip_prefix("id=").is_some_and(|id| !id.is_empty()), "{l}");
        venues.insert(f[0].to_string());
        n += 1;
        venues.len() == 2 && n >= 20
    });
    assert_eq!(venues, BTreeSet::from(["binance:spot".to_string(), "bybit:linear".to_string()]));
    let stderr = run.interrupt();
    // Status events go to stderr as JSON lines: both connections were reported.
    let connected: BTreeSet<String> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Event>(l).ok())
        .filter(|e| matches!(e.kind, EventKind::Connected))
        .map(|e| format!("{}:{}", e.venue.name(), e.market.name()))
        .collect();
    assert_eq!(connected.len(), 2, "{stderr}");
}

/// The top 5 printed: five levels a side, bids falling, asks rising, not
/// crossed, and the book's update id never going back.
fn check_book_line(l: &str, last_id: &mut u64) {
    let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    let side = |k: &str| -> Vec<(Decimal, Decimal)> {
        v[k].as_array()
            .unwrap_or_else(|| panic!("{k}: {l}"))
            .iter()
            .map(|lv| {
                let p = lv[0].as_str().expect("price string").parse().expect("decimal price");
                let q = lv[1].as_str().expect("qty string").parse().expect("decimal qty");
                (p, q)
            })
            .collect()
    };
    let (bids, asks) = (side("bids"), side("asks"));
    assert_eq!((bids.len(), asks.len()), (5, 5), "{l}");
    assert!(bids.windows(2).all(|w| w[0].0 > w[1].0), "bids best first: {l}");
    assert!(asks.windows(2).all(|w| w[0].0 < w[1].0), "asks best first: {l}");
    assert!(bids[0].0 < asks[0].0, "not crossed: {l}");
    assert!(bids.iter().chain(&asks).all(|(_, q)| *q > Decimal::ZERO), "{l}");
    let id = v["update_id"].as_u64().expect("update_id");
    assert!(id >= *last_id, "update ids only grow: {l}");
    *last_id = id;
}

#[test]
fn book_example_prints_a_synced_top_five_on_both_venues() {
    for market in ["binance:spot", "bybit:linear"] {
        let run = Running::start("book", &["--market", market, "--every-ms", "50", "--seconds", "120"]);
        let (mut n, mut last_id) = (0, 0);
        run.until(|l| {
            check_book_line(l, &mut last_id);
            n += 1;
            n >= 5
        });
        run.interrupt();
    }
}

#[test]
fn order_example_places_an_order_and_sees_its_fill_on_the_private_stream() {
    // It ends by itself once the fill has arrived on the private stream.
    let out = Command::new(example("order"))
        .env("RUST_LOG", "warn")
        .env_remove("FERROFEED_API_KEY")
        .env_remove("FERROFEED_API_SECRET")
        .output()
        .expect("run the order example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let mut lines = stdout.lines();
    let first: serde_json::Value = serde_json::from_str(lines.next().expect("the answer")).expect("JSON");
    assert_eq!(first["answer"]["answer"], "placed", "{first}");
    let order_id = first["answer"]["order"]["order_id"].as_str().expect("order id").to_string();
    let fills: Vec<String> = first["answer"]["fills"]
        .as_array()
        .expect("fills")
        .iter()
        .map(|f| f["trade_id"].as_str().expect("trade id").to_string())
        .collect();
    assert!(!fills.is_empty(), "a market order fills: {first}");
    let last: Event = serde_json::from_str(lines.last().expect("events")).expect("an event");
    let EventKind::UserTrade(t) = &last.kind else { panic!("it ends on the fill: {stdout}") };
    assert_eq!(t.order_id, order_id);
    assert!(fills.contains(&t.trade_id), "the stream's fill is one the answer reported: {stdout}");
}

#[test]
fn user_data_example_streams_the_accounts_events() {
    // Binance spot (session.logon) and USD-M (a listenKey). The simulator's
    // Bybit pushes nothing for a deposit, so the example's credits show no
    // event there; Bybit's private side is covered by tests/it/user_cli.rs.
    for args in [&["--venue", "binance", "--account", "spot"][..], &["--venue", "binance", "--account", "usdm"][..]] {
        let mut full = args.to_vec();
        full.extend(["--seconds", "120"]);
        let run = Running::start("user_data", &full);
        let mut types = BTreeSet::new();
        run.until(|l| {
            let e: Event = serde_json::from_str(l).unwrap_or_else(|err| panic!("{err}: {l}"));
            assert!(!matches!(e.kind, EventKind::AuthFailed { .. }), "{l}");
            types.insert(e.kind.type_name());
            types.contains("balance_update")
        });
        let stderr = run.interrupt();
        assert!(!stderr.contains(ferrofeed_sim::TEST_API_KEY), "the key never shows: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_consumer_example_reads_what_record_published() {
    let server = NatsServer::start().await;
    let url = server.url();
    create_stream(&url, "FERROFEED", "ferrofeed").await;
    let (sim, h) = sim(50.0).await;
    let dir = TempDir::new("example");
    let cfg = feeds_file(&dir.0, "feeds.toml", &h, "stream = \"FERROFEED\"", &["btcusdt@trade"], &[]);
    let mut rec = Collector::start(&cfg, &url, "a", &[]);
    rec.wait_progress("published", 50).await;
    h.pause_market(true);
    rec.wait_quiet().await;
    rec.finish(true).await;
    let stored = read_all(&url, "FERROFEED", "").await;
    let trades: Vec<(u64, String, String)> = stored
        .iter()
        .filter_map(|m| {
            let e: Event = serde_json::from_slice(&m.payload).ok()?;
            match e.kind {
                EventKind::Trade(t) => Some((m.stream_sequence, t.price.to_string(), t.trade_id)),
                _ => None,
            }
        })
        .collect();
    assert!(trades.len() >= 20, "{} trades stored", trades.len());

    let consumer_url = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        let run =
            Running::start("nats_consumer", &["--url", &consumer_url, "--stream", "FERROFEED", "--seconds", "120"]);
        let mut lines = Vec::new();
        let want = stored.len();
        run.until(|l| {
            lines.push(l.to_string());
            lines.len() == want
        });
        (lines, run.interrupt())
    })
    .await
    .expect("join");
    let (lines, stderr) = out;
    // Every stored message, in stream order, decoded to the typed model.
    let seqs: Vec<u64> = lines.iter().map(|l| l.split(' ').next().unwrap().parse().expect("seq")).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in stream order");
    let printed: Vec<(u64, String, String)> = lines
        .iter()
        .filter(|l| l.contains(" trade "))
        .map(|l| {
            // "<seq> binance:spot BTCUSDT trade <qty> @ <price> id=<id>"
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].parse().unwrap(), f[6].to_string(), f[7].trim_start_matches("id=").to_string())
        })
        .collect();
    assert_eq!(printed, trades, "every trade, with its exact price and id");
    assert!(stderr.contains(&format!("binance:spot:trade={}", trades.len())), "{stderr}");
    drop(sim);
}
