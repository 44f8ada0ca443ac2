//! # ferrofeed-wsbench
//!
//! Decides, by measurement, which WebSocket client crate the connection engine
//! reads with. Each client reads the simulator's load stream
//! (`/ws/loadusdt@trade`: N pre-encoded Binance trade frames of 142 B payload,
//! unpaced, trade id `t` consecutive from 1000000000000).
//!
//! Measured per client, in one run and the same way for each:
//!
//! - **raw**: a hand-rolled frame reader on a bare `TcpStream` (count only): the
//!   floor, and a check that the simulator is not the bottleneck;
//! - **tokio-tungstenite 0.28** and **fastwebsockets 0.10** (hyper 1 upgrade,
//!   `FragmentCollector`), each as *count only* (first and last id checked),
//!   *sonic-rs* and *serde_json* (every frame parsed into a borrowed `Trade`,
//!   every id checked for consecutiveness).
//!
//! Every run gets a fresh simulator in a **separate process** (this binary
//! re-executed with the hidden `serve` subcommand), so client and server never
//! share a tokio runtime. With two or more CPUs the client is pinned to CPU 0
//! and the simulator to CPU 1 with `taskset` (`--no-pin` to skip). The client
//! runs on a current-thread runtime. The clock starts when the handshake is
//! done and stops at the N-th frame. CPU is the client process's user+sys time
//! from `/proc/self/stat` (10 ms ticks) and the reading thread's on-CPU time
//! from `/proc/thread-self/schedstat` (ns). Loss is checked against the
//! expected ids and the server's `produced` count. Variants run interleaved,
//! `--runs` times each; the table shows medians. A second table gives the
//! parse cost in-process, without a socket. The run also reports how much CPU
//! other processes used meanwhile: on a shared VM that is the main noise.
//!
//! ```console
//! $ cargo run --release -p ferrofeed-wsbench                      # 1M frames, 3 runs, ~15 s
//! $ cargo run --release -p ferrofeed-wsbench -- --messages 2000000
//! $ cargo run --release -p ferrofeed-wsbench -- --runs 5 --clients tungstenite,fastwebsockets --json
//! ```
//!
//! Exit status: 0 when every run read every frame, 1 when a run lost frames or
//! failed, 2 on bad arguments.

mod clients;
mod procstat;
mod serve;
mod tally;

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde::Serialize;

use clients::Client;
use procstat::{CpuSample, MachineSample};
use serve::SimProcess;
use tally::{InProcess, Parse, Tally};

/// Measures WebSocket client crates reading the simulator's load stream.
#[derive(Debug, Parser)]
#[command(name = "ferrofeed-wsbench", version)]
struct Cli {
    /// Frames per run.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    messages: u64,
    /// Runs per variant; the table reports the median.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=101))]
    runs: u32,
    /// Clients to measure.
    #[arg(long, value_delimiter = ',', default_values = ["raw", "tungstenite", "fastwebsockets"])]
    clients: Vec<Client>,
    /// Per-frame work (`raw` only counts).
    #[arg(long, value_delimiter = ',', default_values = ["count", "sonic", "serde-json"])]
    parse: Vec<Parse>,
    /// Print one JSON document instead of the markdown table.
    #[arg(long)]
    json: bool,
    /// Simulator worker threads (0: a current-thread runtime, one core).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=64))]
    server_threads: u16,
    /// Parses for the in-process measurement (no socket); 0 skips it.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
    in_process_frames: u64,
    /// Do not pin the client to CPU 0 and the simulator to CPU 1 (pinning uses `taskset`).
    #[arg(long)]
    no_pin: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Internal: run the simulator with a load stream; prints its URL.
    #[command(hide = true)]
    Serve {
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        messages: u64,
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
}

/// One measured run.
#[derive(Debug, Clone, Serialize)]
struct RunResult {
    frames: u64,
    payload_bytes: u64,
    wall_s: f64,
    ns_per_frame: f64,
    frames_per_s: f64,
    connect_ms: f64,
    user_s: f64,
    sys_s: f64,
    thread_cpu_s: Option<f64>,
    first_id: Option<u64>,
    last_id: Option<u64>,
    every_id_checked: bool,
    missing_ids: u64,
    out_of_order: u64,
    bad_payloads: u64,
    lost: u64,
    server_produced: Option<u64>,
    server_last_id: Option<u64>,
    /// Peak RSS of the simulator process, MiB.
    server_peak_rss_mib: Option<f64>,
    /// Client clock minus `E` of the first frame, ms.
    first_frame_lag_ms: Option<f64>,
    /// Client clock minus `E` of the last frame, ms.
    last_frame_lag_ms: Option<f64>,
    clean: bool,
    error: Option<String>,
}

/// Medians over the runs of one variant.
#[derive(Debug, Clone, Serialize)]
struct Summary {
    client: Client,
    parse: Parse,
    frames_per_s: f64,
    ns_per_frame: f64,
    wall_s: f64,
    cpu_s: f64,
    user_s: f64,
    sys_s: f64,
    thread_cpu_ns_per_frame: Option<f64>,
    connect_ms: f64,
    avg_payload_bytes: f64,
    last_frame_lag_ms: f64,
    server_peak_rss_mib: f64,
    max_lost: u64,
    clean_runs: usize,
    runs: Vec<RunResult>,
}

/// Medians of the in-process (no socket) measurement.
#[derive(Debug, Clone, Serialize)]
struct InProcessSummary {
    work: InProcess,
    ns_per_frame: f64,
    runs_ns_per_frame: Vec<f64>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    command: String,
    messages: u64,
    runs: u32,
    server_threads: u16,
    pinned: bool,
    /// Average cores used by processes other than this benchmark during the socket runs.
    other_load_cores: f64,
    results: &'a [Summary],
    in_process: &'a [InProcessSummary],
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Cmd::Serve { messages, threads }) = cli.cmd {
        return match serve::serve(messages, threads) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wsbench serve: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let variants = variants(&cli);
    if variants.is_empty() {
        eprintln!("error: no variant selected (`raw` only supports `--parse count`)");
        return ExitCode::from(2);
    }
    let two_cpus = std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2);
    let pinned = !cli.no_pin && two_cpus && pin_self(0);
    let mut runs: Vec<Vec<RunResult>> = vec![Vec::new(); variants.len()];
    let (machine0, wall0) = (MachineSample::now(), Instant::now());
    // Interleave the variants so drift on the machine spreads over all of them.
    for round in 0..cli.runs {
        for (i, &(client, parse)) in variants.iter().enumerate() {
            let r = run_once(&cli, client, parse, pinned);
            eprintln!(
                "run {}/{} {:<24} {:<10} {:>7.1} ns/frame {:>6.2} M frames/s lost {}{}",
                round + 1,
                cli.runs,
                client.label(),
                parse.label(),
                r.ns_per_frame,
                r.frames_per_s / 1e6,
                r.lost,
                r.error.as_deref().map(|e| format!(" ERROR {e}")).unwrap_or_default()
            );
            runs[i].push(r);
        }
    }
    let other_load_cores = MachineSample::now().other_cores_since(&machine0, wall0.elapsed().as_secs_f64());
    if other_load_cores > 0.2 {
        eprintln!(
            "wsbench: warning: other processes used {other_load_cores:.2} cores on average during the runs; \
             numbers are noisy, compare ratios within this run or rerun on a quiet machine"
        );
    }
    let summaries: Vec<Summary> =
        variants.iter().zip(runs).map(|(&(client, parse), runs)| summarize(client, parse, runs)).collect();
    let mut in_process_ok = true;
    let mut in_process = Vec::new();
    if cli.in_process_frames > 0 {
        let works = [InProcess::Utf8, InProcess::Sonic, InProcess::SerdeJson];
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); works.len()];
        // Interleaved like the socket runs.
        for _ in 0..cli.runs {
            for (i, &work) in works.iter().enumerate() {
                match tally::in_process(work, cli.in_process_frames) {
                    Ok(ns) => samples[i].push(ns),
                    Err(e) => {
                        eprintln!("in-process {}: {e:#}", work.label());
                        in_process_ok = false;
                    }
                }
            }
        }
        for (work, v) in works.into_iter().zip(samples) {
            in_process.push(InProcessSummary { work, ns_per_frame: median(v.clone()), runs_ns_per_frame: v });
        }
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    if cli.json {
        let report = Report {
            command,
            messages: cli.messages,
            runs: cli.runs,
            server_threads: cli.server_threads,
            pinned,
            other_load_cores,
            results: &summaries,
            in_process: &in_process,
        };
        match serde_json::to_string_pretty(&report) {
            Ok(s) => print_out(&format!("{s}\n")),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print_table(&cli, &command, pinned, other_load_cores, &summaries, &in_process);
    }
    if in_process_ok && summaries.iter().all(|s| s.clean_runs == s.runs.len()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn variants(cli: &Cli) -> Vec<(Client, Parse)> {
    let mut v = Vec::new();
    for &c in &cli.clients {
        for &p in &cli.parse {
            let pair = (c, p);
            if (c != Client::Raw || p == Parse::Count) && !v.contains(&pair) {
                v.push(pair);
            }
        }
    }
    v
}

/// Pins this process (only its main thread exists yet) to `cpu` with `taskset`.
fn pin_self(cpu: usize) -> bool {
    let pid = std::process::id().to_string();
    let ok = std::process::Command::new("taskset")
        .args(["-p", "-c", &cpu.to_string(), &pid])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("wsbench: warning: could not pin to CPU {cpu} (is taskset installed?); running unpinned");
    }
    ok
}

fn run_once(cli: &Cli, client: Client, parse: Parse, pinned: bool) -> RunResult {
    let n = cli.messages;
    let mut tally = Tally::new(n, parse);
    let mut result = RunResult {
        frames: 0,
        payload_bytes: 0,
        wall_s: 0.0,
        ns_per_frame: 0.0,
        frames_per_s: 0.0,
        connect_ms: 0.0,
        user_s: 0.0,
        sys_s: 0.0,
        thread_cpu_s: None,
        first_id: None,
        last_id: None,
        every_id_checked: tally.every_id,
        missing_ids: 0,
        out_of_order: 0,
        bad_payloads: 0,
        lost: n,
        server_produced: None,
        server_last_id: None,
        server_peak_rss_mib: None,
        first_frame_lag_ms: None,
        last_frame_lag_ms: None,
        clean: false,
        error: None,
    };
    let mut sim = match SimProcess::spawn(n, cli.server_threads.into(), pinned.then_some(1)) {
        Ok(s) => s,
        Err(e) => {
            result.error = Some(format!("{e:#}"));
            return result;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            result.error = Some(format!("runtime: {e}"));
            return result;
        }
    };
    // Generous: the slowest variant runs at well under 2 µs per frame.
    let limit = Duration::from_secs(10) + Duration::from_micros(n.saturating_mul(10));
    let mut started: Option<(Instant, CpuSample)> = None;
    let connect_start = Instant::now();
    let outcome = rt.block_on(async {
        let mut on_connected = || started = Some((Instant::now(), CpuSample::now()));
        tokio::time::timeout(limit, clients::run(client, parse, &sim.ws_url, &mut tally, &mut on_connected)).await
    });
    drop(rt);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => result.error = Some(format!("{e:#}")),
        Err(_) => result.error = Some(format!("timed out after {limit:?} with {} frames", tally.frames)),
    }
    match sim.stats() {
        Ok(Some(s)) => {
            result.server_produced = Some(s.produced);
            result.server_last_id = s.last_id;
        }
        Ok(None) => {}
        Err(e) => {
            result.error.get_or_insert_with(|| format!("simulator stats: {e:#}"));
        }
    }
    result.server_peak_rss_mib = sim.peak_rss().map(|b| b as f64 / (1024.0 * 1024.0));
    sim.finish();
    result.first_frame_lag_ms = tally.lag_us[0].map(|us| us as f64 / 1e3);
    result.last_frame_lag_ms = tally.lag_us[1].map(|us| us as f64 / 1e3);

    if let (Some((t0, c0)), Some((t1, c1))) = (started, tally.done_at) {
        let wall = t1.duration_since(t0).as_secs_f64();
        let cpu = c1.since(&c0);
        result.connect_ms = t0.duration_since(connect_start).as_secs_f64() * 1e3;
        result.wall_s = wall;
        result.ns_per_frame = wall * 1e9 / tally.frames.max(1) as f64;
        result.frames_per_s = tally.frames as f64 / wall.max(1e-9);
        result.user_s = cpu.user_s;
        result.sys_s = cpu.sys_s;
        result.thread_cpu_s = cpu.thread_ns.map(|ns| ns as f64 / 1e9);
    }
    result.frames = tally.frames;
    result.payload_bytes = tally.bytes;
    result.first_id = tally.first_id;
    result.last_id = tally.last_id;
    result.missing_ids = tally.missing;
    result.out_of_order = tally.out_of_order;
    result.bad_payloads = tally.bad;
    result.lost = tally.lost();
    let server_ok = result.server_produced == Some(n) && result.server_last_id == tally.last_id;
    result.clean = tally.clean() && server_ok && result.error.is_none();
    if result.error.is_none() && !server_ok {
        result.error = Some(format!(
            "server produced {:?} (last id {:?}), client read {} (last id {:?})",
            result.server_produced, result.server_last_id, tally.frames, tally.last_id
        ));
    }
    result
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn print_out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes()).and_then(|()| o.flush());
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}

fn summarize(client: Client, parse: Parse, runs: Vec<RunResult>) -> Summary {
    let ok: Vec<&RunResult> = runs.iter().filter(|r| r.error.is_none() && r.frames > 0).collect();
    let pick = |f: &dyn Fn(&RunResult) -> f64| median(ok.iter().map(|r| f(r)).collect());
    let ns_per_frame = pick(&|r| r.ns_per_frame);
    let thread_cpu_ns_per_frame = if ok.iter().all(|r| r.thread_cpu_s.is_some()) && !ok.is_empty() {
        Some(pick(&|r| r.thread_cpu_s.unwrap_or(0.0) * 1e9 / r.frames as f64))
    } else {
        None
    };
    Summary {
        client,
        parse,
        frames_per_s: 1e9 / ns_per_frame,
        ns_per_frame,
        wall_s: pick(&|r| r.wall_s),
        cpu_s: pick(&|r| r.user_s + r.sys_s),
        user_s: pick(&|r| r.user_s),
        sys_s: pick(&|r| r.sys_s),
        thread_cpu_ns_per_frame,
        connect_ms: pick(&|r| r.connect_ms),
        avg_payload_bytes: pick(&|r| r.payload_bytes as f64 / r.frames.max(1) as f64),
        last_frame_lag_ms: pick(&|r| r.last_frame_lag_ms.unwrap_or(f64::NAN)),
        server_peak_rss_mib: pick(&|r| r.server_peak_rss_mib.unwrap_or(f64::NAN)),
        max_lost: runs.iter().map(|r| r.lost).max().unwrap_or(0),
        clean_runs: runs.iter().filter(|r| r.clean).count(),
        runs,
    }
}

fn print_table(
    cli: &Cli,
    command: &str,
    pinned: bool,
    other_load_cores: f64,
    rows: &[Summary],
    in_process: &[InProcessSummary],
) {
    let mut out = String::new();
    macro_rules! w {
        ($($t:tt)*) => {{
            let _ = writeln!(out, $($t)*);
        }};
    }
    let payload = rows.iter().map(|s| s.avg_payload_bytes).find(|b| b.is_finite()).unwrap_or(f64::NAN);
    w!("# WebSocket client benchmark\n");
    w!("`{command}`\n");
    w!(
        "{} frames per run (~{payload:.0} B payload), median of {} runs per variant, simulator in a separate \
         process ({}), client on a current-thread runtime{}. Other processes used {other_load_cores:.2} cores \
         on average meanwhile.\n",
        cli.messages,
        cli.runs,
        if cli.server_threads == 0 {
            "current-thread runtime".to_string()
        } else {
            format!("{} workers", cli.server_threads)
        },
        if pinned { ", client pinned to CPU 0 and simulator to CPU 1" } else { ", unpinned" },
    );
    w!(
        "| client | per frame | frames/s | ns/frame | client CPU s (user+sys) | user s | sys s | thread CPU ns/frame | lost (max) | clean runs | last-frame lag ms | sim peak RSS MiB |"
    );
    w!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in rows {
        w!(
            "| {} | {} | {:.2} M | {:.1} | {:.2} | {:.2} | {:.2} | {} | {} | {}/{} | {:.1} | {:.0} |",
            s.client.label(),
            s.parse.label(),
            s.frames_per_s / 1e6,
            s.ns_per_frame,
            s.cpu_s,
            s.user_s,
            s.sys_s,
            s.thread_cpu_ns_per_frame.map_or("n/a".to_string(), |v| format!("{v:.1}")),
            s.max_lost,
            s.clean_runs,
            s.runs.len(),
            s.last_frame_lag_ms,
            s.server_peak_rss_mib,
        );
    }
    let failures: Vec<String> = rows
        .iter()
        .flat_map(|s| {
            s.runs.iter().filter_map(move |r| {
                r.error.as_ref().map(|e| format!("{} / {}: {e}", s.client.label(), s.parse.label()))
            })
        })
        .collect();
    if !failures.is_empty() {
        w!("\nFailed runs:\n");
        for f in failures {
            w!("- {f}");
        }
    }
    if !in_process.is_empty() {
        w!(
            "\nIn-process, no socket ({} parses over 4096 distinct frames, median of {} runs):\n",
            cli.in_process_frames,
            cli.runs
        );
        w!("| per frame | ns/frame |");
        w!("|---|---:|");
        for p in in_process {
            w!("| {} | {:.1} |", p.work.label(), p.ns_per_frame);
        }
    }
    w!("\n`count only` checks the count and the first and last id; the parse variants check every id. \
         `lost` also compares with the simulator's `produced` count. Last-frame lag is the client's clock minus \
         the frame's `E` stamp; in unpaced load mode the simulator stamps frames when it queues them (up to \
         8192 batches of 256 per connection), so this is queueing delay, not network latency.");
    print_out(&out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_select_seven_variants() {
        let cli = Cli::try_parse_from(["wsbench"]).unwrap();
        assert_eq!(cli.messages, 1_000_000);
        assert_eq!(cli.runs, 3);
        let v = variants(&cli);
        assert_eq!(v.len(), 7);
        assert_eq!(v[0], (Client::Raw, Parse::Count));
    }

    #[test]
    fn bad_arguments_are_usage_errors_with_exit_code_2() {
        for args in [
            &["wsbench", "--messages", "0"][..],
            &["wsbench", "--messages", "-5"],
            &["wsbench", "--messages", "lots"],
            &["wsbench", "--runs", "0"],
            &["wsbench", "--clients", "websocat"],
            &["wsbench", "--parse", "simd-json"],
            &["wsbench", "--frobnicate"],
            &["wsbench", "serve"],
        ] {
            let e = Cli::try_parse_from(args).expect_err(&format!("{args:?} should be rejected"));
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn raw_with_only_parsers_selects_nothing() {
        let cli = Cli::try_parse_from(["wsbench", "--clients", "raw", "--parse", "sonic"]).unwrap();
        assert!(variants(&cli).is_empty());
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }
}
