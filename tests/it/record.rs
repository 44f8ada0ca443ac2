//! `ferrofeed record` and `ferrofeed replay`, run as a user would: the real
//! binary against the in-process simulator, real sockets, real files, `kill -9`
//! and SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferrofeed::model::event::Event;

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

/// A running `ferrofeed record`: its stderr lines arrive on a channel, its
/// stdout is collected.
struct Recording {
    child: Child,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Recording {
    fn start(config: &Path, out: &Path, extra: &[&str]) -> Recording {
        let mut child = Child(
            bin()
                .arg("record")
                .arg("--config")
                .arg(config)
                .arg("--out")
                .arg(out)
                .args(extra)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn ferrofeed record"),
        );
        let (tx, rx) = mpsc::channel();
        let err = child.0.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut out = child.0.stdout.take().expect("stdout");
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        Recording { child, stderr: rx, seen: Vec::new(), stdout: Some(stdout) }
    }

    /// Waits for a progress line with at least `min` acknowledged records;
    /// returns the count it shows.
    fn wait_acknowledged(&mut self, min: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.stderr.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no progress line with acknowledged >= {min} in time; stderr so far:\n{}", self.seen.join("\n"))
            });
            self.seen.push(line.clone());
            if let Some(n) = field(&line, "acknowledged=")
                && n >= min
            {
                return n;
            }
        }
    }

    /// Waits for the exit (20 s at most); returns the status, stdout and stderr.
    fn wait(mut self) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.0.try_wait().expect("try_wait") {
                break s;
            }
            assert!(Instant::now() < deadline, "ferrofeed record did not exit in time");
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = self.stdout.take().expect("stdout").join().expect("stdout thread");
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(l);
        }
        (status, stdout, self.seen.join("\n"))
    }
}

/// `name=N` in a progress line.
fn field(line: &str, name: &str) -> Option<u64> {
    let rest = &line[line.find(name)? + name.len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferrofeed-test-record-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn write_config(dir: &Path) -> PathBuf {
    let p = dir.join("feeds.toml");
    std::fs::write(
        &p,
        r#"
[sim]
seed = 5
actions_per_sec = 200.0

[[feed]]
venue = "binance"
market = "spot"
env = "sim"
streams = ["btcusdt@trade", "ethusdt@trade"]
books = ["BTCUSDT"]

[[feed]]
venue = "binance"
market = "usdm"
env = "sim"
streams = ["btcusdt@aggTrade"]
"#,
    )
    .expect("write config");
    p
}

/// Every capture file under `dir`, in name order.
fn capture_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let mut v: Vec<_> = std::fs::read_dir(d).expect("read_dir").map(|e| e.expect("entry").path()).collect();
        v.sort();
        for p in v {
            if p.is_dir() {
                walk(&p, out);
            } else if p.to_string_lossy().ends_with(".jsonl.zst") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out
}

/// Decodes a whole file with the zstd crate (fails on any torn or corrupt
/// frame) and checks every line is an event.
fn decode_file(p: &Path) -> Vec<String> {
    let bytes = std::fs::read(p).expect("read capture");
    let text = zstd::decode_all(&bytes[..]).unwrap_or_else(|e| panic!("{}: does not decode fully: {e}", p.display()));
    let text = String::from_utf8(text).expect("UTF-8");
    assert!(text.is_empty() || text.ends_with('\n'), "{}: ends mid-line", p.display());
    let lines: Vec<String> = text.lines().map(String::from).collect();
    for (i, l) in lines.iter().enumerate() {
        let _: Event = serde_json::from_str(l).unwrap_or_else(|e| panic!("{} line {}: {e}: {l}", p.display(), i + 1));
    }
    lines
}

fn newest(dir: &Path, market: &str) -> PathBuf {
    capture_files(dir)
        .into_iter()
        .rfind(|p| p.to_string_lossy().contains(&format!("binance/{market}/")))
        .unwrap_or_else(|| panic!("no {market} file"))
}

fn append(p: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new().append(true).open(p).expect("open").write_all(bytes).expect("append");
}

fn summary(stdout: &str) -> serde_json::Value {
    let line = stdout.lines().last().unwrap_or_else(|| panic!("no summary line in {stdout:?}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("summary is not JSON: {e}: {line}"))
}

#[test]
fn kill_9_then_restart_truncates_torn_tails_and_keeps_every_acknowledged_record() {
    let dir = tmpdir("kill9");
    let cfg = write_config(&dir);
    let out = dir.join("out");
    let fast = ["--flush-interval", "100ms", "--flush-records", "50", "--progress-interval", "100ms"];

    let mut run = Recording::start(&cfg, &out, &fast);
    let acked = run.wait_acknowledged(300);
    run.child.0.kill().expect("kill -9");
    let (status, stdout, _) = run.wait();
    assert!(!status.success());
    assert!(stdout.is_empty(), "no summary after kill -9: {stdout}");

    // Tear both markets' newest files deterministically: half a zstd frame on
    // spot, bytes that are no zstd at all on usdm.
    let (spot, usdm) = (newest(&out, "spot"), newest(&out, "usdm"));
    let (spot_len, usdm_len) = (std::fs::metadata(&spot).unwrap().len(), std::fs::metadata(&usdm).unwrap().len());
    let frame = zstd::encode_all(&b"{\"type\":\"connected\"}\n".repeat(20)[..], 3).unwrap();
    let half = &frame[..frame.len() / 2];
    append(&spot, half);
    let garbage = b"not a zstd frame, just garbage\n";
    append(&usdm, garbage);

    let run = Recording::start(&cfg, &out, &["--duration", "1s", "--flush-interval", "100ms"]);
    let (status, stdout, stderr) = run.wait();
    assert!(status.success(), "restart failed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let s = summary(&stdout);
    let repaired = s["repaired"].as_array().expect("repaired");
    for (file, len, appended) in [(&spot, spot_len, half.len()), (&usdm, usdm_len, garbage.len())] {
        let rel = file.strip_prefix(&out).unwrap().to_string_lossy().replace('\\', "/");
        let r = repaired
            .iter()
            .find(|r| r["file"] == rel.as_str())
            .unwrap_or_else(|| panic!("{rel} not reported as repaired: {s}"));
        // A torn frame left by the kill itself (if any) is cut along with ours.
        assert!(r["truncated_bytes"].as_u64().unwrap() >= appended as u64, "{r}");
        assert!(r["kept_bytes"].as_u64().unwrap() <= len, "{r}");
        assert!(r["problem"].as_str().unwrap().contains("at byte offset"), "{r}");
        assert!(stderr.contains(&format!("repaired {rel}: kept ")), "{stderr}");
    }
    assert!(s["acknowledged"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["acknowledged"], s["received"]);

    // Every file decodes completely into events, and nothing acknowledged was lost.
    let files = capture_files(&out);
    let mut all = Vec::new();
    for f in &files {
        all.extend(decode_file(f));
    }
    let second = s["acknowledged"].as_u64().unwrap();
    assert!(all.len() as u64 >= acked + second, "{} records on disk < {acked} + {second} acknowledged", all.len());

    // replay --speed max prints exactly those lines, in file order.
    let r = bin().args(["replay", "--speed", "max"]).arg(&out).output().expect("replay");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let printed: Vec<String> = String::from_utf8(r.stdout).unwrap().lines().map(String::from).collect();
    assert_eq!(printed.len(), all.len());
    assert!(printed == all, "replay output differs from the files");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_stops_cleanly_with_everything_acknowledged_and_a_summary() {
    let dir = tmpdir("sigterm");
    let cfg = write_config(&dir);
    let out = dir.join("out");
    let mut run = Recording::start(&cfg, &out, &["--progress-interval", "100ms"]);
    run.wait_acknowledged(1);
    let pid = run.child.0.id().to_string();
    let st = Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
    assert!(st.success());
    let (status, stdout, stderr) = run.wait();
    assert!(status.success(), "exit {status:?}: {stderr}");
    let s = summary(&stdout);
    assert_eq!(s["stopped_by"], "signal", "{s}");
    let acked = s["acknowledged"].as_u64().unwrap();
    assert!(acked > 0);
    assert_eq!((s["received"].as_u64(), s["pending"].as_u64()), (Some(acked), Some(0)), "{s}");
    assert!(s["markets"]["binance/spot"]["records"].as_u64().unwrap() > 0, "{s}");
    assert!(s["gaps"].is_u64() && s["compression_ratio"].as_f64().unwrap() > 1.0, "{s}");
    let mut total = 0;
    for f in capture_files(&out) {
        let rel = f.strip_prefix(&out).unwrap().to_string_lossy().replace('\\', "/");
        let n = decode_file(&f).len() as u64;
        assert_eq!(s["files"][&rel]["records"].as_u64(), Some(n), "{rel}: {s}");
        total += n;
    }
    assert_eq!(total, acked);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Binance and Bybit feeds in one file: both venues are recorded into their
/// own directories (two simulated Bybit categories on their own ports), the
/// Bybit book is kept live, and replay reads it all back.
#[test]
fn bybit_and_binance_feeds_record_side_by_side_and_replay() {
    let dir = tmpdir("bybit");
    let cfg = dir.join("feeds.toml");
    std::fs::write(
        &cfg,
        r#"
[sim]
seed = 3
actions_per_sec = 200.0

[[feed]]
venue = "bybit"
market = "linear"
env = "sim"
streams = ["publicTrade.BTCUSDT", "tickers.BTCUSDT"]
books = ["BTCUSDT"]

[[feed]]
venue = "bybit"
market = "spot"
env = "sim"
streams = ["publicTrade.ETHUSDT"]

[[feed]]
venue = "binance"
market = "spot"
env = "sim"
streams = ["btcusdt@trade"]
"#,
    )
    .expect("write config");
    let out = dir.join("out");
    let mut run = Recording::start(&cfg, &out, &["--progress-interval", "100ms", "--duration", "4s"]);
    run.wait_acknowledged(1);
    let (status, stdout, stderr) = run.wait();
    assert!(status.success(), "exit {status:?}: {stderr}");
    let s = summary(&stdout);
    assert_eq!(s["stopped_by"], "duration", "{s}");
    for m in ["bybit/linear", "bybit/spot", "binance/spot"] {
        assert!(s["markets"][m]["records"].as_u64().unwrap_or(0) > 0, "{m}: {s}");
    }
    let mut types: std::collections::BTreeMap<(String, String), usize> = Default::default();
    for f in capture_files(&out) {
        let rel = f.strip_prefix(&out).unwrap().to_string_lossy().replace('\\', "/");
        for l in decode_file(&f) {
            let ev: Event = serde_json::from_str(&l).unwrap();
            let dir = format!("{}/{}/", ev.venue.name(), ev.market.name());
            assert!(rel.starts_with(&dir), "{rel} holds a {dir} event: {l}");
            *types.entry((dir, ev.kind.type_name().to_string())).or_default() += 1;
        }
    }
    for (m, t) in [
        ("bybit/linear/", "trade"),
        ("bybit/linear/", "ticker"),
        ("bybit/linear/", "mark_price"),
        ("bybit/linear/", "open_interest"),
        ("bybit/linear/", "book_snapshot"),
        ("bybit/linear/", "book_update"),
        ("bybit/spot/", "trade"),
        ("binance/spot/", "trade"),
    ] {
        assert!(types.get(&(m.to_string(), t.to_string())).copied().unwrap_or(0) > 0, "no {m} {t}: {types:?}");
    }
    assert!(!types.keys().any(|(_, t)| t == "error"), "{types:?}");
    // Replay reads both venues back.
    let replay = bin().args(["replay", "--speed", "max"]).arg(&out).output().expect("replay");
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    let text = String::from_utf8(replay.stdout).expect("UTF-8");
    assert!(text.lines().any(|l| l.contains("\"venue\":\"bybit\"")));
    assert!(text.lines().any(|l| l.contains("\"venue\":\"binance\"")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_paces_reports_bad_input_and_config_errors_are_clear() {
    let dir = tmpdir("errors");
    // Three events 5 ms apart in one file, then a torn frame.
    let lines: Vec<String> = (0..3)
        .map(|i| {
            format!(
                "{{\"type\":\"connected\",\"venue\":\"binance\",\"market\":\"spot\",\"exchange_ts\":null,\"receive_ts\":{}}}",
                1_795_326_911_000_000_000i64 + i * 5_000_000
            )
        })
        .collect();
    let file = dir.join("05.jsonl.zst");
    let mut bytes = zstd::encode_all(format!("{}\n", lines.join("\n")).as_bytes(), 3).unwrap();
    std::fs::write(&file, &bytes).unwrap();
    for speed in ["1", "10", "max"] {
        let r = bin().args(["replay", "--speed", speed]).arg(&file).output().unwrap();
        assert!(r.status.success());
        assert_eq!(String::from_utf8(r.stdout).unwrap().lines().collect::<Vec<_>>(), lines);
    }
    let good = bytes.len();
    bytes.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd, 0x00]);
    std::fs::write(&file, &bytes).unwrap();
    let r = bin().args(["replay", "--speed", "max"]).arg(&file).output().unwrap();
    assert!(!r.status.success());
    assert_eq!(String::from_utf8(r.stdout).unwrap().lines().count(), 3);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("05.jsonl.zst") && err.contains(&format!("byte offset {good}")), "{err}");

    // A missing file: a clear error, nothing printed.
    let missing = dir.join("missing.jsonl.zst");
    let r = bin().args(["replay", "--speed", "max"]).arg(&file).arg(&missing).output().unwrap();
    assert!(!r.status.success() && r.stdout.is_empty());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("missing.jsonl.zst") && err.contains("No such file"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let r = bin().args(["replay", "--speed", "fast"]).arg(&file).output().unwrap();
    assert!(!r.status.success() && String::from_utf8_lossy(&r.stderr).contains("invalid speed"));

    // Config errors name the file and what is wrong; nothing is recorded.
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "[[feed]]\nvenue = \"binance\"\nmarket = \"spot\"\nenv = \"prod\"\nstreams = [\"x@trade\"]\n")
        .unwrap();
    let out = dir.join("out");
    let r = bin().arg("record").arg("--config").arg(&cfg).arg("--out").arg(&out).output().unwrap();
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("bad.toml") && err.contains("unknown env \"prod\""), "{err}");
    std::fs::write(&cfg, "[[feed]]\nvenue = \"binance\"\nmarket = [\n").unwrap();
    let r = bin().arg("record").arg("--config").arg(&cfg).arg("--out").arg(&out).output().unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && err.contains("bad.toml") && err.contains("line 3"), "{err}");
    let r = bin().arg("record").arg("--config").arg(dir.join("nope.toml")).arg("--out").arg(&out).output().unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && err.contains("nope.toml") && !err.contains("panicked"), "{err}");

    // Help is complete, with examples.
    for cmd in ["record", "replay"] {
        let r = bin().args([cmd, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&r.stdout);
        assert!(
            r.status.success() && help.contains("Example") && help.contains(&format!("ferrofeed {cmd} ")),
            "{help}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
