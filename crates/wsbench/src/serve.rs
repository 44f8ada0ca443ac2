//! The simulator side: the hidden `serve` subcommand (run in a child process)
//! and the parent's handle on that child.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ferrofeed_sim::{LoadConfig, MarketConfig, MarketKind, Sim, SimConfig, StreamStats};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// The stream load mode serves.
pub const LOAD_STREAM: &str = "loadusdt@trade";

/// Child side: starts the simulator with a load stream of `messages` frames,
/// prints its WebSocket base URL, then answers `stats` lines on stdin with the
/// load stream's server-side [`StreamStats`] as one JSON line. Exits on EOF.
pub fn serve(messages: u64, threads: usize) -> anyhow::Result<()> {
    let rt = if threads == 0 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?
    };
    rt.block_on(async move {
        let mut market = MarketConfig::new(MarketKind::Spot);
        market.load = Some(LoadConfig::new(messages, None));
        let sim = Sim::start(SimConfig::single(market)).await.context("starting the simulator")?;
        let spot = sim.market(MarketKind::Spot).context("spot market missing")?.clone();
        let mut out = tokio::io::stdout();
        out.write_all(format!("{}\n", spot.ws_url()).as_bytes()).await?;
        out.flush().await?;
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = lines.next_line().await? {
            if line.trim() == "stats" {
                let stats = spot.stream_stats(LOAD_STREAM);
                out.write_all(format!("{}\n", serde_json::to_string(&stats)?).as_bytes()).await?;
                out.flush().await?;
            }
        }
        sim.shutdown().await;
        anyhow::Ok(())
    })
}

/// Parent side: a simulator child process, killed if still running when dropped.
#[derive(Debug)]
pub struct SimProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// `ws://127.0.0.1:PORT`.
    pub ws_url: String,
}

impl SimProcess {
    /// Re-executes this binary as `serve` and waits for its URL.
    pub fn spawn(messages: u64, threads: usize, pin_cpu: Option<usize>) -> anyhow::Result<SimProcess> {
        let exe = std::env::current_exe().context("locating this executable")?;
        let mut cmd = match pin_cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.arg("serve")
            .arg("--messages")
            .arg(messages.to_string())
            .arg("--threads")
            .arg(threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().with_context(|| format!("spawning {:?}", cmd.get_program()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("child stdout")?;
        let mut proc = SimProcess { child, stdin, stdout: BufReader::new(stdout), ws_url: String::new() };
        let mut line = String::new();
        proc.stdout.read_line(&mut line).context("reading the simulator URL")?;
        let url = line.trim();
        if !url.starts_with("ws://") {
            bail!("simulator process printed {url:?} instead of its URL");
        }
        proc.ws_url = url.to_string();
        Ok(proc)
    }

    /// The server-side ground truth for the load stream.
    pub fn stats(&mut self) -> anyhow::Result<Option<StreamStats>> {
        let stdin = self.stdin.as_mut().context("simulator stdin closed")?;
        stdin.write_all(b"stats\n")?;
        stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let v: Option<serde_json::Value> = serde_json::from_str(line.trim()).context("simulator stats line")?;
        Ok(v.map(|v| StreamStats {
            produced: v["produced"].as_u64().unwrap_or(0),
            last_id: v["last_id"].as_u64(),
            first_id: v["first_id"].as_u64(),
            ..StreamStats::default()
        }))
    }

    /// Peak resident memory of the simulator process (`VmHWM`), bytes.
    pub fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// Closes stdin (the child shuts down) and waits up to 5 s before killing it.
    pub fn finish(mut self) {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("wsbench: simulator process {} did not exit; killing it", self.child.id());
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
