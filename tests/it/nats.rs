//! The NATS JetStream sink end to end: real `nats-server` processes (each test
//! starts its own on a free loopback port with `-js -sd <tempdir>`), the real
//! simulator in-process, `ferrofeed record --sink` collectors and `ferrofeed
//! tail` as child processes. Every check is against the simulator's ground
//! truth (`MarketHandle::stream_stats`: produced, first and last id); no
//! timing is asserted.
//!
//! Needs `nats-server` on the PATH; `scripts/test` provisions it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrofeed::model::event::{Event, EventKind, Missing};
use ferrofeed::sink::nats::{Deliver, NatsConfig, NatsReader, NatsSink, StoredMessage};
use ferrofeed_sim::{MarketConfig, MarketHandle, MarketKind, Sim, SimConfig};

// ---------------------------------------------------------------------------
// Fixtures

/// A directory removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "ferrofeed-nats-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Sends `signal` to a process we started, by its id.
pub(crate) fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
}

/// A `nats-server -js` of our own on a free loopback port; killed on drop.
pub(crate) struct NatsServer {
    child: Option<std::process::Child>,
    port: u16,
    dir: TempDir,
}

impl NatsServer {
    pub(crate) async fn start() -> NatsServer {
        let found = Command::new("nats-server").arg("--version").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "nats-server is not installed: run the tests with `scripts/test`, which provisions it"
        );
        let mut s = NatsServer { child: None, port: free_port(), dir: TempDir::new("server") };
        s.spawn().await;
        s
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.0.join("server.log"))
            .expect("server log");
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(self.dir.0.join("store"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {}: {}", self.port, self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops it gracefully (SIGTERM: JetStream flushes its files) and waits.
    async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("server.log")).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The spot simulator with busy books.
pub(crate) async fn sim(actions_per_sec: f64) -> (Sim, MarketHandle) {
    let mut mc = MarketConfig::new(MarketKind::Spot);
    mc.timing.actions_per_sec = actions_per_sec;
    let sim = Sim::start(SimConfig::single(mc)).await.expect("sim");
    let h = sim.market(MarketKind::Spot).expect("spot").clone();
    (sim, h)
}

/// A feeds file for the simulator's spot market.
pub(crate) fn feeds_file(
    dir: &Path,
    name: &str,
    h: &MarketHandle,
    nats: &str,
    streams: &[&str],
    books: &[&str],
) -> PathBuf {
    let list = |v: &[&str]| v.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ");
    let text = format!(
        "[nats]\n{nats}\n\n[[feed]]\nvenue = \"binance\"\nmarket = \"spot\"\nenv = \"custom\"\nws = {:?}\nrest = {:?}\nstreams = [{}]\nbooks = [{}]\n",
        h.ws_url(),
        h.rest_url(),
        list(streams),
        list(books)
    );
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write feeds file");
    p
}

/// A `ferrofeed record --sink` child: stderr lines collected, stdout (the
/// summary) read at exit; killed on drop.
pub(crate) struct Collector {
    child: Option<std::process::Child>,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Collector {
    pub(crate) fn start(config: &Path, url: &str, name: &str, extra: &[&str]) -> Collector {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
            .arg("record")
            .arg("--config")
            .arg(config)
            .args(["--sink", url, "--collector", name, "--progress-interval", "100ms"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferrofeed record");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (lines, err) = (stderr.clone(), child.stderr.take().expect("stderr"));
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let mut out = child.stdout.take().expect("stdout");
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        Collector { child: Some(child), stderr, stdout: Some(stdout) }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
    }

    /// The last value of `key=` on a progress line (`nats: published=`...).
    fn progress(&self, key: &str) -> Option<u64> {
        let lines = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().rev().find_map(|l| {
            let i = l.find(&format!(" {key}="))?;
            l[i + key.len() + 2..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
        })
    }

    /// Waits until its progress line shows `key` at `min` or more.
    pub(crate) async fn wait_progress(&self, key: &str, min: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.progress(key).is_none_or(|n| n < min) {
            assert!(Instant::now() < deadline, "no progress line with {key} >= {min}; stderr:\n{}", self.stderr());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `received=` stops moving (three progress lines alike).
    pub(crate) async fn wait_quiet(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut last, mut same) = (None, 0);
        loop {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let now = self.progress("received");
            same = if now == last { same + 1 } else { 0 };
            last = now;
            if same >= 3 {
                return;
            }
            assert!(Instant::now() < deadline, "the collector never went quiet; stderr:\n{}", self.stderr());
        }
    }

    /// `kill -9`.
    async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = tokio::task::spawn_blocking(move || c.wait()).await;
        }
    }

    /// Waits for it to exit (after SIGTERM, or at the end of `--duration`)
    /// and returns its summary line.
    pub(crate) async fn finish(&mut self, term: bool) -> serde_json::Value {
        let mut c = self.child.take().expect("running");
        if term {
            signal(c.id(), "TERM");
        }
        let status = tokio::task::spawn_blocking(move || c.wait()).await.expect("join").expect("wait");
        let out = self.stdout.take().expect("stdout").join().expect("stdout thread");
        assert!(status.success(), "record failed ({status}); stderr:\n{}", self.stderr());
        serde_json::from_str(out.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("summary: {e}: {out:?}; stderr:\n{}", self.stderr()))
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Creates the stream (the test's readiness check too) with the settings of
/// the feeds files below.
pub(crate) async fn create_stream(url: &str, stream: &str, prefix: &str) {
    let cfg = NatsConfig {
        url: url.into(),
        stream: stream.into(),
        subject_prefix: prefix.into(),
        collector: "test".into(),
        ..NatsConfig::default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match NatsSink::connect(cfg.clone()).await {
            Ok(s) => {
                let _ = s.close(Duration::from_secs(1)).await;
                return;
            }
            Err(e) => assert!(Instant::now() < deadline, "JetStream not ready: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Everything stored under `filter`.
pub(crate) async fn read_all(url: &str, stream: &str, filter: &str) -> Vec<StoredMessage> {
    let mut r = NatsReader::open(url, stream, filter, Deliver::All).await.expect("reader");
    let mut v = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(3), r.next()).await {
        let m = m.expect("message");
        let last = m.pending == 0;
        v.push(m);
        if last {
            break;
        }
    }
    v
}

fn event(m: &StoredMessage) -> Event {
    serde_json::from_slice(&m.payload).unwrap_or_else(|e| panic!("{}: not an event: {e}", m.subject))
}

/// The sequence ids of the stored events of one stream: trade and aggregate
/// ids, or a depth stream's final update ids (with its first ids).
#[derive(Debug, Default)]
struct Seen {
    trades: BTreeMap<String, Vec<u64>>,
    aggs: BTreeMap<String, Vec<u64>>,
    deltas: BTreeMap<String, Vec<(u64, u64)>>,
}

fn collect(msgs: &[StoredMessage]) -> Seen {
    let mut s = Seen::default();
    for m in msgs {
        let ev = event(m);
        let sym = ev.symbol.clone().unwrap_or_default().to_ascii_lowercase();
        match &ev.kind {
            EventKind::Trade(t) => s.trades.entry(sym).or_default().push(t.trade_id.parse().expect("id")),
            EventKind::AggTrade(t) => s.aggs.entry(sym).or_default().push(t.trade_id.parse().expect("id")),
            EventKind::BookDelta(d) => s.deltas.entry(sym).or_default().push((d.first_update_id, d.last_update_id)),
            _ => {}
        }
    }
    s
}

/// Checks a list of ids against the simulator's ground truth: exactly
/// `first_id..=last_id`, each once (`missing` holds ids reported lost).
fn check_ids(h: &MarketHandle, stream: &str, ids: &[u64], missing: &BTreeSet<u64>) -> (u64, u64) {
    let truth = h.stream_stats(stream).unwrap_or_else(|| panic!("{stream}: no ground truth"));
    let (first, last) = (truth.first_id.expect("first id"), truth.last_id.expect("last id"));
    assert_eq!(last - first + 1, truth.produced, "{stream}: the simulator's ids are consecutive");
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    let unique: BTreeSet<u64> = sorted.iter().copied().collect();
    assert_eq!(unique.len(), sorted.len(), "{stream}: an event was stored twice");
    assert!(unique.is_disjoint(missing), "{stream}: an event reported lost was stored");
    let all: BTreeSet<u64> = unique.union(missing).copied().collect();
    let want: BTreeSet<u64> = (first..=last).collect();
    if all != want {
        let lost: Vec<u64> = want.difference(&all).take(10).copied().collect();
        let extra: Vec<u64> = all.difference(&want).take(10).copied().collect();
        panic!(
            "{stream}: {} stored + {} reported lost != {} produced ({first}..={last}); unaccounted {lost:?}, unexpected {extra:?}",
            unique.len(),
            missing.len(),
            truth.produced
        );
    }
    (truth.produced, unique.len() as u64)
}

// ---------------------------------------------------------------------------
// Tests

/// Two collectors on the same streams into one stream; one is `kill -9`ed
/// midway. The stream holds every event the simulator produced exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_standby_collectors_store_every_event_once() {
    let server = NatsServer::start().await;
    let url = server.url();
    create_stream(&url, "HOT", "ferrofeed").await;
    let (sim, h) = sim(150.0).await;
    let dir = TempDir::new("hot");
    let streams = ["btcusdt@trade", "ethusdt@trade", "btcusdt@aggTrade", "ethusdt@depth@100ms"];
    let cfg =
        feeds_file(&dir.0, "feeds.toml", &h, "stream = \"HOT\"\nduplicate_window = \"2m\"", &streams, &["BTCUSDT"]);

    let mut a = Collector::start(&cfg, &url, "a", &[]);
    a.wait_progress("published", 200).await;
    let mut b = Collector::start(&cfg, &url, "b", &[]);
    b.wait_progress("received", 1000).await; // both carry the same events now
    let a_published = a.progress("published").unwrap_or(0);
    a.kill().await;
    let after_kill = b.progress("received").unwrap_or(0);
    b.wait_progress("received", after_kill + 1000).await; // b alone for a while
    h.pause_market(true);
    b.wait_quiet().await;
    let summary = b.finish(true).await;

    let msgs = read_all(&url, "HOT", "ferrofeed.binance.spot.>").await;
    let data: Vec<StoredMessage> = msgs.iter().filter(|m| !m.subject.contains(".status.")).cloned().collect();
    let seen = collect(&data);
    let none = BTreeSet::new();
    let mut figures = Vec::new();
    for (stream, ids) in [
        ("btcusdt@trade", &seen.trades["btcusdt"]),
        ("ethusdt@trade", &seen.trades["ethusdt"]),
        ("btcusdt@aggTrade", &seen.aggs["btcusdt"]),
    ] {
        figures.push((stream, check_ids(&h, stream, ids, &none)));
    }
    // The depth stream: every diff once, chained without a hole (spot: U = previous u + 1).
    let truth = h.stream_stats("ethusdt@depth@100ms").expect("depth truth");
    let deltas = &seen.deltas["ethusdt"];
    assert_eq!(deltas.len() as u64, truth.produced, "ethusdt@depth@100ms: stored diffs");
    assert!(deltas.windows(2).all(|w| w[1].0 == w[0].1 + 1), "depth diffs chain");
    assert_eq!(deltas.last().map(|d| d.1), truth.last_id);
    // Every stored message has its own id; the local book made it too.
    let ids: BTreeSet<&str> = data.iter().filter_map(|m| m.msg_id.as_deref()).collect();
    assert_eq!(ids.len(), data.len(), "a message id stored twice");
    assert!(data.iter().any(|m| m.subject == "ferrofeed.binance.spot.book_snapshot.BTCUSDT"));
    // Both collectors' status events are there, on their own subjects.
    for c in ["a", "b"] {
        assert!(msgs.iter().any(|m| m.subject == format!("ferrofeed.binance.spot.status.{c}")), "status of {c}");
    }
    assert_eq!((summary["nats_failed"].as_u64(), summary["nats_unconfirmed"].as_u64()), (Some(0), Some(0)));
    let dups = summary["nats_duplicates"].as_u64().unwrap_or(0);
    assert!(dups > 0, "b's duplicates were dropped by JetStream: {summary}");

    // The same through `ferrofeed tail`.
    let out = Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
        .args(["tail", &url, "--stream", "HOT", "--subject", "ferrofeed.binance.spot.trade.>", "--no-follow"])
        .output()
        .expect("tail");
    assert!(out.status.success(), "tail: {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Event> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("event line")).collect();
    let trades = seen.trades.values().map(Vec::len).sum::<usize>();
    assert_eq!(lines.len(), trades, "tail prints every stored trade");
    eprintln!(
        "hot standby: {figures:?} (produced, stored); a published {a_published} before kill -9; b: {} published, {dups} duplicates dropped",
        summary["nats_published"]
    );
    sim.shutdown().await;
}

/// `--shard 0/2` and `--shard 1/2` cover the feeds file with no overlap, as
/// the collectors say and as what they published shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_cover_the_universe_once() {
    let server = NatsServer::start().await;
    let url = server.url();
    let (sim, h) = sim(200.0).await;
    let dir = TempDir::new("shard");
    let symbols = ["btcusdt", "ethusdt", "bnbusdt", "solusdt"];
    let streams: Vec<String> = symbols
        .iter()
        .flat_map(|s| [format!("{s}@trade"), format!("{s}@aggTrade"), format!("{s}@bookTicker")])
        .collect();
    let stream_refs: Vec<&str> = streams.iter().map(String::as_str).collect();
    let books = ["BTCUSDT", "ETHUSDT"];
    let mut universe: BTreeSet<String> = streams.iter().map(|s| format!("spot:{s}")).collect();
    universe.extend(books.iter().map(|b| format!("spot:{b}")));

    let mut collectors = Vec::new();
    for k in 0..2 {
        let (stream, prefix) = (format!("SHARD{k}"), format!("s{k}"));
        create_stream(&url, &stream, &prefix).await;
        let nats = format!("stream = {stream:?}\nsubject_prefix = {prefix:?}");
        let cfg = feeds_file(&dir.0, &format!("feeds{k}.toml"), &h, &nats, &stream_refs, &books);
        collectors.push(Collector::start(&cfg, &url, &format!("shard{k}"), &["--shard", &format!("{k}/2")]));
    }
    for c in &collectors {
        c.wait_progress("published", 3000).await; // every stream and book has had events by then
    }
    let mut claimed = Vec::new();
    for (k, c) in collectors.iter_mut().enumerate() {
        let summary = c.finish(true).await;
        let s = &summary["shard"];
        assert_eq!(s["shard"], format!("{k}/2"));
        let mut items: BTreeSet<String> = BTreeSet::new();
        for v in s["streams"].as_array().into_iter().chain(s["books"].as_array()).flatten() {
            items.insert(v.as_str().expect("item").to_string());
        }
        assert_eq!(summary["nats_failed"].as_u64(), Some(0));
        // What it published names only its own items, and all of them.
        let msgs = read_all(&url, &format!("SHARD{k}"), &format!("s{k}.binance.spot.>")).await;
        let mut published = BTreeSet::new();
        for m in msgs.iter().filter(|m| !m.subject.contains(".status.")) {
            let ev = event(m);
            let sym = ev.symbol.clone().unwrap_or_default();
            let lower = sym.to_ascii_lowercase();
            published.insert(match &ev.kind {
                EventKind::Trade(_) => format!("spot:{lower}@trade"),
                EventKind::AggTrade(_) => format!("spot:{lower}@aggTrade"),
                EventKind::TopOfBook(_) => format!("spot:{lower}@bookTicker"),
                EventKind::BookSnapshot(_) | EventKind::BookUpdate(_) => format!("spot:{sym}"),
                other => panic!("unexpected {}", other.type_name()),
            });
        }
        assert_eq!(published, items, "shard {k}: published streams = its share");
        claimed.push(items);
    }
    assert!(claimed[0].is_disjoint(&claimed[1]), "overlap: {:?}", claimed[0].intersection(&claimed[1]));
    let union: BTreeSet<String> = claimed[0].union(&claimed[1]).cloned().collect();
    assert_eq!(union, universe, "the shards cover the universe");
    eprintln!("shards: 0/2 carries {}, 1/2 carries {} of {}", claimed[0].len(), claimed[1].len(), universe.len());
    sim.shutdown().await;
}

/// nats-server restarted mid-run with a small local buffer: the sink
/// reconnects, and the events not stored are exactly those it reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_losses_equal_the_reported_count() {
    let mut server = NatsServer::start().await;
    let url = server.url();
    create_stream(&url, "RESTART", "ferrofeed").await;
    let (sim, h) = sim(150.0).await;
    let dir = TempDir::new("restart");
    let streams = ["btcusdt@trade", "ethusdt@trade"];
    let nats = "stream = \"RESTART\"\nbuffer = 300\nmax_in_flight = 64\nack_timeout = \"1s\"\nclose_timeout = \"20s\"";
    let cfg = feeds_file(&dir.0, "feeds.toml", &h, nats, &streams, &[]);
    let mut c = Collector::start(&cfg, &url, "solo", &[]);
    c.wait_progress("published", 300).await;

    server.stop().await;
    // Down long enough for more than `buffer` events to arrive.
    let at_stop = c.progress("received").unwrap_or(0);
    c.wait_progress("received", at_stop + 1500).await;
    server.spawn().await;
    c.wait_progress("reconnects", 1).await;
    let at_restart = c.progress("received").unwrap_or(0);
    c.wait_progress("received", at_restart + 500).await; // stored again after the restart
    h.pause_market(true);
    c.wait_quiet().await;
    let summary = c.finish(true).await;

    // Loss reports: gap events on the status subject, with the trade ids.
    let msgs = read_all(&url, "RESTART", "ferrofeed.binance.spot.>").await;
    let mut missing: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for m in msgs.iter().filter(|m| m.subject == "ferrofeed.binance.spot.status.solo") {
        if let EventKind::Gap(g) = event(m).kind
            && let Some(subject) = g.stream.strip_prefix("nats:")
        {
            let Missing::Range { from, to } = g.missing else { panic!("trade losses are ranges: {g:?}") };
            missing.entry(subject.to_string()).or_default().extend(from..=to);
        }
    }
    let data: Vec<StoredMessage> = msgs.iter().filter(|m| !m.subject.contains(".status.")).cloned().collect();
    let seen = collect(&data);
    let (mut produced, mut stored, mut reported) = (0, 0, 0);
    for (stream, sym) in [("btcusdt@trade", "BTCUSDT"), ("ethusdt@trade", "ETHUSDT")] {
        let lost = missing.remove(&format!("ferrofeed.binance.spot.trade.{sym}")).unwrap_or_default();
        let (p, s) = check_ids(&h, stream, &seen.trades[&sym.to_ascii_lowercase()], &lost);
        produced += p;
        stored += s;
        reported += lost.len() as u64;
    }
    assert!(missing.is_empty(), "losses reported on other subjects: {missing:?}");
    let failed = summary["nats_failed_by_type"]["trade"].as_u64().unwrap_or(0);
    assert_eq!(failed, reported, "the summary counts what the reports list: {summary}");
    assert_eq!(produced, stored + failed);
    assert!(failed > 0, "the outage overflowed the 300-event buffer: {summary}");
    assert_eq!(summary["nats_unconfirmed"].as_u64(), Some(0));
    assert!(summary["nats_disconnects"].as_u64() >= Some(1) && summary["nats_reconnects"].as_u64() >= Some(1));
    eprintln!(
        "restart: produced {produced} = stored {stored} + reported lost {failed}; duplicates {}, retries {}",
        summary["nats_duplicates"], summary["nats_retries"]
    );
    sim.shutdown().await;
}

/// A server that stops answering (SIGSTOP: the socket stays open, nothing is
/// acknowledged) and then resumes: every unacknowledged publish is retried
/// with its id, and each event is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_publishes_are_retried_and_stored_once() {
    let server = NatsServer::start().await;
    let cfg = NatsConfig {
        url: server.url(),
        stream: "RETRY".into(),
        ack_timeout: Duration::from_millis(300),
        max_in_flight: 50,
        collector: "r".into(),
        ..NatsConfig::default()
    };
    let mut sink = NatsSink::connect(cfg).await.expect("sink");
    let trade = |id: u64| -> Event {
        serde_json::from_str(&format!(
            r#"{{"type":"trade","trade_id":"{id}","price":"1.5","qty":"2","side":"buy","venue":"binance","market":"spot","symbol":"BTCUSDT","exchange_ts":{id},"receive_ts":1}}"#
        ))
        .expect("event")
    };
    for id in 1..=200 {
        sink.publish(&trade(id));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.stats().published < 200 {
        assert!(Instant::now() < deadline, "not stored: {:?}", sink.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(server.pid(), "STOP");
    for id in 201..=500 {
        sink.publish(&trade(id));
    }
    while sink.stats().retries < 100 {
        assert!(Instant::now() < deadline, "no retries: {:?}", sink.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(server.pid(), "CONT");
    let (stats, reports) = sink.close(Duration::from_secs(20)).await;
    assert!(reports.is_empty(), "{reports:?}");
    assert_eq!((stats.failed, stats.unconfirmed), (0, 0), "{stats:?}");
    assert_eq!(stats.published + stats.duplicates, 500, "{stats:?}");
    let msgs = read_all(&server.url(), "RETRY", "ferrofeed.>").await;
    let ids: Vec<u64> = collect(&msgs).trades["btcusdt"].clone();
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!((ids.len(), unique.len()), (500, 500), "each event stored once");
    assert_eq!(unique, (1..=500).collect::<BTreeSet<u64>>());
    assert!(stats.duplicates > 0, "the retries were recognised as duplicates: {stats:?}");
    eprintln!("retry: 500 events, {} retries, {} duplicates dropped, stored once", stats.retries, stats.duplicates);
}
