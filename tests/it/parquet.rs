//! `ferrofeed export parquet` and `record --parquet`, run as a user would:
//! the real binary records two venues from the in-process simulator over
//! real sockets, converts, and a well-known reader (pyarrow, from PyPI)
//! reads the files back and compares every value with the capture
//! (`tests/it/parquet_check.py`).
//!
//! pyarrow comes from `scripts/test` (a venv in target/tools/py, pinned by
//! hash); `FERROFEED_PYTHON` names its python, else `python3` is used. A
//! python without pyarrow fails these tests with a message saying so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ferrofeed::export::parquet::Table;
use ferrofeed::model::event::Event;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferrofeed"))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferrofeed-test-parquet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Runs a command to its end (60 s at most; killed then), with its output.
fn run(mut cmd: Command) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let (mut out, mut err) = (child.stdout.take().expect("stdout"), child.stderr.take().expect("stderr"));
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output { status, stdout: out.join().expect("stdout"), stderr: err.join().expect("stderr") }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The last line of standard output as JSON.
fn summary(o: &Output) -> serde_json::Value {
    let s = text(&o.stdout);
    let line = s.lines().last().unwrap_or_else(|| panic!("no summary; stderr:\n{}", text(&o.stderr)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("summary is not JSON: {e}: {line}"))
}

/// Two venues and every kind of public data the simulator sends: trades,
/// aggregate trades, book tickers, klines, tickers, average and mark prices,
/// open interest (Bybit tickers), liquidations, raw depth diffs and two local
/// books.
const FEEDS: &str = r#"
[sim]
seed = 11
actions_per_sec = 200.0

[[feed]]
venue = "binance"
market = "spot"
env = "sim"
streams = ["btcusdt@trade", "btcusdt@bookTicker", "btcusdt@kline_1s", "btcusdt@ticker", "btcusdt@avgPrice", "ethusdt@aggTrade"]
books = ["BTCUSDT"]

[[feed]]
venue = "binance"
market = "usdm"
env = "sim"
streams = ["btcusdt@aggTrade", "btcusdt@markPrice@1s", "!forceOrder@arr", "btcusdt@depth@100ms"]

[[feed]]
venue = "bybit"
market = "linear"
env = "sim"
streams = ["publicTrade.BTCUSDT", "tickers.BTCUSDT", "kline.1.BTCUSDT", "allLiquidation.BTCUSDT"]
books = ["ETHUSDT"]
"#;

/// Tables these feeds produce in a few seconds.
const EXPECTED_TABLES: &[&str] = &[
    "trade",
    "agg_trade",
    "top_of_book",
    "kline",
    "ticker",
    "avg_price",
    "mark_price",
    "open_interest",
    "liquidation",
    "book_delta",
    "book_snapshot",
    "book_update",
    "status",
];

/// Records `duration` of FEEDS into `dir/cap` (with `extra` arguments).
fn record(dir: &Path, duration: &str, extra: &[&str]) -> serde_json::Value {
    let cfg = dir.join("feeds.toml");
    std::fs::write(&cfg, FEEDS).expect("feeds file");
    let mut cmd = bin();
    cmd.arg("record").arg("--config").arg(&cfg).arg("--out").arg(dir.join("cap")).args(["--duration", duration]);
    cmd.args(extra);
    let o = run(cmd);
    assert!(o.status.success(), "record failed: {}", text(&o.stderr));
    let s = summary(&o);
    assert_eq!(s["stopped_by"], "duration", "{s}");
    for m in ["binance/spot", "binance/usdm", "bybit/linear"] {
        assert!(s["markets"][m]["records"].as_u64().unwrap_or(0) > 0, "{m}: {s}");
    }
    s
}

/// Rows per table, per `venue/market` directory and table, and status rows
/// per type, counted from the JSON lines of every capture file.
type Counts = (BTreeMap<String, u64>, BTreeMap<String, BTreeMap<String, u64>>, BTreeMap<String, u64>);

fn capture_counts(cap: &Path) -> Counts {
    let (mut tables, mut markets, mut status) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut stack = vec![cap.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(cap).expect("prefix").to_string_lossy().replace('\\', "/");
            let market = rel.split('/').take(2).collect::<Vec<_>>().join("/");
            let bytes = std::fs::read(&p).expect("capture");
            let t = String::from_utf8(zstd::decode_all(&bytes[..]).expect("zstd")).expect("UTF-8");
            for l in t.lines() {
                let ev: Event = serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", p.display()));
                let table = Table::of(&ev.kind).name().to_string();
                if table == "status" {
                    *status.entry(ev.kind.type_name().to_string()).or_default() += 1;
                }
                *markets.entry(market.clone()).or_insert_with(BTreeMap::new).entry(table.clone()).or_default() += 1;
                *tables.entry(table).or_default() += 1;
            }
        }
    }
    (tables, markets, status)
}

/// Runs tests/it/parquet_check.py with pyarrow; its JSON report.
fn pyarrow_check(cap: &Path, pq: &Path) -> serde_json::Value {
    let python = std::env::var("FERROFEED_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/parquet_check.py");
    let o = Command::new(&python).arg(&script).arg(cap).arg(pq).output().unwrap_or_else(|e| {
        panic!("cannot run {python} ({e}): run scripts/test, which installs pyarrow into target/tools/py and sets FERROFEED_PYTHON")
    });
    assert_ne!(
        o.status.code(),
        Some(2),
        "{python} cannot import pyarrow: run scripts/test, which installs the pinned pyarrow into target/tools/py and sets FERROFEED_PYTHON\n{}",
        text(&o.stderr)
    );
    assert!(o.status.success(), "the pyarrow check found differences:\n{}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("report is not JSON: {e}: {}", text(&o.stdout)))
}

/// The capture's decimal text as Decimal128(38, 18) prints it.
fn at_scale_18(s: &str) -> String {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    format!("{whole}.{frac:0<18}")
}

/// Checks the pyarrow report against the counts taken from the capture.
fn check_report(report: &serde_json::Value, counts: &Counts) {
    let (tables, markets, status) = counts;
    for (t, n) in tables {
        assert_eq!(report["tables"][t]["rows"].as_u64(), Some(*n), "{t}: {report}");
        // One exact price-like value per table (order lists have none), next
        // to the capture's text.
        if t != "status" && t != "order_list_update" {
            let ex = &report["tables"][t]["example"];
            let capture = ex["capture"].as_str().unwrap_or_else(|| panic!("{t}: no example: {report}"));
            assert_eq!(ex["parquet"].as_str(), Some(at_scale_18(capture).as_str()), "{t}: {ex}");
        }
    }
    let got: Vec<&String> = report["tables"].as_object().expect("tables").keys().collect();
    assert_eq!(got, tables.keys().collect::<Vec<_>>(), "{report}");
    for (m, ts) in markets {
        for (t, n) in ts {
            assert_eq!(report["markets"][m][t].as_u64(), Some(*n), "{m} {t}: {report}");
        }
    }
    for (ty, n) in status {
        assert_eq!(report["status_types"][ty].as_u64(), Some(*n), "{ty}: {report}");
    }
    assert!(report["values_checked"].as_u64().unwrap_or(0) > 0, "{report}");
}

/// Every Parquet file under `dir` (and nothing else: no temporary file).
fn parquet_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("prefix").to_string_lossy().replace('\\', "/");
                assert!(rel.ends_with(".parquet") && !rel.contains("/."), "not a Parquet file: {rel}");
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn export_of_a_two_venue_capture_reads_back_exactly_with_pyarrow() {
    let dir = tmpdir("export");
    record(&dir, "4s", &[]);
    let (cap, pq) = (dir.join("cap"), dir.join("pq"));
    let counts = capture_counts(&cap);
    for t in EXPECTED_TABLES {
        assert!(counts.0.get(*t).copied().unwrap_or(0) > 0, "the capture has no {t}: {:?}", counts.0);
    }
    let total: u64 = counts.0.values().sum();

    let mut cmd = bin();
    cmd.args(["export", "parquet"]).arg(&cap).arg(&pq);
    let o = run(cmd);
    assert!(o.status.success(), "export failed: {}", text(&o.stderr));
    let s = summary(&o);
    assert_eq!((s["events"].as_u64(), s["problems"].as_u64()), (Some(total), Some(0)), "{s}");
    assert_eq!(s["hours"].as_u64(), Some(3), "one capture file per market: {s}");
    for (t, n) in &counts.0 {
        assert_eq!(s["rows"][t].as_u64(), Some(*n), "{t}: {s}");
    }
    let files = parquet_files(&pq);
    assert_eq!(s["files"].as_u64(), Some(files.len() as u64), "{s}");
    assert!(files.iter().any(|f| f.starts_with("bybit/linear/trade/")), "{files:?}");
    assert!(files.iter().any(|f| f.starts_with("binance/spot/book_update/")), "{files:?}");
    let err = text(&o.stderr);
    assert!(err.contains("binance/usdm/") && err.contains(" events: "), "{err}");

    let report = pyarrow_check(&cap, &pq);
    check_report(&report, &counts);

    // Converting again gives the same files (an hour is redone, not appended).
    let mut cmd = bin();
    cmd.args(["export", "parquet"]).arg(&cap).arg(&pq);
    let o = run(cmd);
    assert!(o.status.success(), "second export failed: {}", text(&o.stderr));
    assert_eq!(parquet_files(&pq), files);
    check_report(&pyarrow_check(&cap, &pq), &counts);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `record --parquet` converts the last, partial hour at a clean stop, and at
/// start the hour an earlier run left unconverted (as a crash would).
#[test]
fn record_parquet_converts_hours_as_they_close_and_catches_up_at_start() {
    let dir = tmpdir("record");
    let (cap, pq) = (dir.join("cap"), dir.join("pq"));
    // An hour long past that no run converted: the newest file of its market.
    let old = cap.join("binance/coinm/2020-01-01/00.jsonl.zst");
    std::fs::create_dir_all(old.parent().expect("parent")).expect("dir");
    let lines = [
        r#"{"type":"trade","trade_id":"7","price":"0.35280000","qty":"58.00000000","side":"sell","venue":"binance","market":"coinm","symbol":"BTCUSD_PERP","exchange_ts":1577836800000000000,"receive_ts":1577836800100000000}"#,
        r#"{"type":"gap","stream":"btcusd_perp@trade","from":8,"to":9,"venue":"binance","market":"coinm","symbol":"BTCUSD_PERP","exchange_ts":null,"receive_ts":1577836800200000000}"#,
    ];
    std::fs::write(&old, zstd::encode_all(format!("{}\n", lines.join("\n")).as_bytes(), 3).expect("zstd"))
        .expect("old capture");

    let s = record(&dir, "3s", &["--parquet", pq.to_str().expect("utf-8 path")]);
    let p = &s["parquet"];
    assert_eq!(p["failed"], serde_json::json!([]), "{s}");
    assert_eq!(p["problems"].as_u64(), Some(0), "{s}");
    let captured: u64 =
        s["files"].as_object().expect("files").values().map(|f| f["records"].as_u64().unwrap_or(0)).sum();
    // Every hour of this run plus the old one; every record of both.
    assert_eq!(p["hours"].as_u64(), Some(s["files"].as_object().expect("files").len() as u64 + 1), "{s}");
    assert_eq!(p["events"].as_u64(), Some(captured + 2), "{s}");
    let files = parquet_files(&pq);
    assert_eq!(p["files"].as_u64(), Some(files.len() as u64), "{s}");
    assert!(files.contains(&"binance/coinm/trade/2020-01-01/00.parquet".to_string()), "{files:?}");
    assert!(files.contains(&"binance/coinm/status/2020-01-01/00.parquet".to_string()), "{files:?}");

    let counts = capture_counts(&cap);
    assert_eq!(counts.2.get("gap"), Some(&1), "{:?}", counts.2);
    for (t, n) in &counts.0 {
        assert_eq!(p["rows"][t].as_u64(), Some(*n), "{t}: {s}");
    }
    check_report(&pyarrow_check(&cap, &pq), &counts);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad input is reported with the file, line and payload, the rest is
/// converted, and the exit code says so; a missing directory is a clear error.
#[test]
fn export_reports_bad_lines_and_torn_frames_and_converts_the_rest() {
    let dir = tmpdir("errors");
    let cap = dir.join("cap");
    let f = cap.join("bybit/linear/2026-11-22/23.jsonl.zst");
    std::fs::create_dir_all(f.parent().expect("parent")).expect("dir");
    let trade = |id: u32, price: &str| {
        format!(
            r#"{{"type":"trade","trade_id":"{id}","price":"{price}","qty":"0.004","side":"sell","venue":"bybit","market":"linear","symbol":"BTCUSDT","exchange_ts":1795326911000000000,"receive_ts":1795326911100000000}}"#
        )
    };
    let text_lines = format!(
        "{}\n{}\n{}\n{}\n",
        trade(1, "65114.20"),
        "{\"type\":\"trade\",\"garbage\":true}",
        trade(2, "0.0000000000000000001"),
        trade(3, "65114.30")
    );
    let mut bytes = zstd::encode_all(text_lines.as_bytes(), 3).expect("zstd");
    let good = bytes.len();
    bytes.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x01]);
    std::fs::write(&f, &bytes).expect("write");
    let pq = dir.join("pq");

    let mut cmd = bin();
    cmd.args(["export", "parquet"]).arg(&cap).arg(&pq);
    let o = run(cmd);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("23.jsonl.zst: line 2: not an event") && err.contains("\"garbage\":true"), "{err}");
    assert!(err.contains("23.jsonl.zst: line 3: trade event not exported: price 0.0000000000000000001"), "{err}");
    assert!(err.contains(&format!("23.jsonl.zst: byte offset {good}")), "{err}");
    assert!(err.contains("3 problems"), "{err}");
    let s = summary(&o);
    assert_eq!((s["events"].as_u64(), s["problems"].as_u64()), (Some(2), Some(3)), "{s}");
    assert_eq!(parquet_files(&pq), ["bybit/linear/trade/2026-11-22/23.parquet"]);

    // A missing capture directory: an error naming it, nothing written.
    let mut cmd = bin();
    cmd.args(["export", "parquet"]).arg(dir.join("nope")).arg(dir.join("pq2"));
    let o = run(cmd);
    let err = text(&o.stderr);
    assert!(!o.status.success() && err.contains("nope") && !err.contains("panicked"), "{err}");
    assert!(!dir.join("pq2").exists());
    // Help is complete, with examples.
    let o = bin().args(["export", "parquet", "--help"]).output().expect("help");
    let help = text(&o.stdout);
    assert!(o.status.success() && help.contains("Examples") && help.contains("ferrofeed export parquet "), "{help}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One example of every event type (docs/events.md: market data, private
/// user data and status) goes through the command and reads back exactly
/// with pyarrow, the private tables' nested fills, balances and order lists
/// included.
#[test]
fn every_documented_event_type_reads_back_with_pyarrow() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events.md")).expect("events.md");
    let mut lines = Vec::new();
    let mut in_block = false;
    for l in doc.lines() {
        match l {
            "```json" => in_block = true,
            "```" => in_block = false,
            l if in_block => lines.push(l),
            _ => {}
        }
    }
    let dir = tmpdir("docs");
    let (cap, pq) = (dir.join("cap"), dir.join("pq"));
    let f = cap.join("binance/usdm/2026-11-22/05.jsonl.zst");
    std::fs::create_dir_all(f.parent().expect("parent")).expect("dir");
    std::fs::write(&f, zstd::encode_all(format!("{}\n", lines.join("\n")).as_bytes(), 3).expect("zstd"))
        .expect("write");
    let mut cmd = bin();
    cmd.args(["export", "parquet"]).arg(&cap).arg(&pq);
    let o = run(cmd);
    assert!(o.status.success(), "export failed: {}", text(&o.stderr));
    let counts = capture_counts(&cap);
    assert_eq!(counts.0.len(), Table::ALL.len(), "one example per table: {:?}", counts.0);
    let report = pyarrow_check(&cap, &pq);
    check_report(&report, &counts);
    let _ = std::fs::remove_dir_all(&dir);
}
