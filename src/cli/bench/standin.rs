//! `bench e2e --stream depth --books N` and `bench e2e --venue bybit`:
//! the same two readers as the trade bench (a minimal reference reader and
//! the full `Feed` path), on streams the simulator's load mode does not serve.
//!
//! **Stand-in, not the load stream.** `ferrofeed sim --load-messages` only
//! serves Binance `loadusdt@trade` (docs/sim.md, "Load mode"): there is no
//! depth form and no Bybit form. These benches therefore read the simulator's
//! ordinary generated streams, made dense with `--time-scale` (0.01: every
//! cadence and the book generator's action rate a hundred times faster) over
//! `--synthetic-symbols N` instruments, for a fixed time per reader. The
//! simulator sets the message rate, not the reader, so `msgs/s` is the
//! arrival rate both readers keep up with; the comparable figure is **CPU per
//! message**, and `ratio` is the reference's CPU per message over
//! ferrofeed's (1.0: as cheap as the reference; 0.5: twice its cost).
//!
//! Each reader gets a fresh simulator process with the same seed, started
//! the same way, so both see the same kind of traffic.
//!
//! - depth (Binance spot, `<symbol>@depth@100ms`, the stream ferrofeed's
//!   books read): the reference parses each diff with serde_json into a typed
//!   `{stream, data: {U, u, b, a}}` with exact decimals and applies it to one
//!   `BTreeMap` per side per symbol (quantity 0 deletes), counting a hole when
//!   `U` is not the previous `u` + 1. It starts from an empty book (no REST
//!   snapshot): the cost measured is the parse and the apply of every diff.
//!   ferrofeed is `Feed` with N local books (snapshot, buffering, sequencing,
//!   apply, `book_update` per diff); `lost` is its gaps and resyncs.
//! - Bybit (linear, `publicTrade.<symbol>`): the reference parses each
//!   message into a typed `{topic, ts, type, data: [trade]}` with exact
//!   decimals; both readers check that each symbol's trade ids (`i`, which
//!   the simulator numbers consecutively per symbol) have no hole.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ferrofeed::client::{Environment, MarketId};
use ferrofeed::engine::{ConnectSpec, Native, Transport, WsMsg, WsStream};
use ferrofeed::feed::Feed;
use ferrofeed::model::Decimal;
use ferrofeed::model::event::EventKind;
use ferrofeed::venues::seam::Channel;
use serde::{Deserialize, Serialize};

use super::{SimProcess, can_pin, cpu_s, median, pin_self, reset_peak_rss, runtime, status_mib};

/// What a stand-in bench reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Binance spot depth diffs through N local books.
    Depth,
    /// Bybit linear public trades.
    BybitTrades,
}

impl Kind {
    fn market(self) -> anyhow::Result<MarketId> {
        match self {
            Kind::Depth => crate::cli::parse_market("binance:spot"),
            Kind::BybitTrades => crate::cli::parse_market("bybit:linear"),
        }
    }

    fn sim_market(self) -> &'static str {
        match self {
            Kind::Depth => "spot",
            Kind::BybitTrades => "bybit-linear",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Depth => "binance spot depth@100ms through local books",
            Kind::BybitTrades => "bybit linear publicTrade",
        }
    }
}

/// The options of a stand-in run.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub kind: Kind,
    /// Instruments (books for depth).
    pub symbols: u64,
    /// Seconds each reader reads, from its first message.
    pub seconds: f64,
    /// The simulator's `--time-scale`.
    pub time_scale: f64,
    pub runs: u32,
    pub json: bool,
    pub no_pin: bool,
}

/// The simulator's synthetic symbols (`SymbolSpec::synthetic`: `S0000USDT`, ...).
fn symbols(n: u64) -> Vec<String> {
    (0..n).map(|i| format!("S{i:04}USDT")).collect()
}

/// What one reader saw in one run.
#[derive(Debug, Default, Clone)]
struct Count {
    /// Messages (depth: diffs; Bybit: trades).
    messages: u64,
    /// Holes in the sequence, gaps and resyncs reported.
    lost: u64,
    /// Frames that did not decode, or error events.
    errors: u64,
    /// Book snapshots (ferrofeed depth only).
    snapshots: u64,
    elapsed_s: f64,
    cpu_s: f64,
}

impl Count {
    fn rate(&self) -> f64 {
        if self.elapsed_s > 0.0 { self.messages as f64 / self.elapsed_s } else { 0.0 }
    }
    fn ns_per_msg(&self) -> f64 {
        if self.messages > 0 { self.cpu_s * 1e9 / self.messages as f64 } else { 0.0 }
    }
}

/// The clock of one run: starts at the first message, ends `seconds` later.
#[derive(Debug)]
struct Window {
    seconds: Duration,
    start: Option<(Instant, f64)>,
}

impl Window {
    fn new(seconds: f64) -> Window {
        Window { seconds: Duration::from_secs_f64(seconds), start: None }
    }
    /// Marks a message; `true` once the window is over.
    fn tick(&mut self) -> bool {
        match self.start {
            None => {
                self.start = Some((Instant::now(), cpu_s()));
                false
            }
            Some((t, _)) => t.elapsed() >= self.seconds,
        }
    }
    fn close(&self, c: &mut Count) {
        if let Some((t, cpu0)) = self.start {
            c.elapsed_s = t.elapsed().as_secs_f64();
            c.cpu_s = cpu_s() - cpu0;
        }
    }
}

/// No message for this long ends a run early (an error: the simulator stopped).
const SILENCE: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------ reference readers

/// A Binance depth diff in the combined envelope.
#[derive(Debug, Deserialize)]
struct RefDepthEnvelope<'a> {
    #[serde(borrow)]
    #[allow(dead_code)]
    stream: &'a str,
    #[serde(borrow)]
    data: RefDepth<'a>,
}

#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
struct RefDepth<'a> {
    s: &'a str,
    U: u64,
    u: u64,
    b: Vec<[Decimal; 2]>,
    a: Vec<[Decimal; 2]>,
}

/// One reference book: bids and asks by price.
#[derive(Debug, Default)]
struct RefBook {
    bids: BTreeMap<Decimal, Decimal>,
    asks: BTreeMap<Decimal, Decimal>,
    last_u: u64,
}

fn apply(side: &mut BTreeMap<Decimal, Decimal>, levels: &[[Decimal; 2]]) {
    for [p, q] in levels {
        if q.is_zero() {
            side.remove(p);
        } else {
            side.insert(*p, *q);
        }
    }
}

/// A Bybit public trade message.
#[derive(Debug, Deserialize)]
struct RefBybitTrades<'a> {
    #[serde(borrow)]
    #[allow(dead_code)]
    topic: &'a str,
    #[allow(dead_code)]
    ts: i64,
    #[serde(borrow)]
    data: Vec<RefBybitTrade<'a>>,
}

#[derive(Debug, Deserialize)]
#[allow(non_snake_case, dead_code)]
struct RefBybitTrade<'a> {
    T: i64,
    s: &'a str,
    S: &'a str,
    v: Decimal,
    p: Decimal,
    i: &'a str,
}

/// Consecutive ids per symbol: counts the holes.
#[derive(Debug, Default)]
struct IdCheck {
    last: HashMap<String, u64>,
}

impl IdCheck {
    /// Records `id` for `symbol`; returns the ids skipped before it.
    fn see(&mut self, symbol: &str, id: u64) -> u64 {
        match self.last.get_mut(symbol) {
            Some(last) => {
                let hole = id.saturating_sub(*last + 1);
                *last = (*last).max(id);
                hole
            }
            None => {
                self.last.insert(symbol.to_string(), id);
                0
            }
        }
    }
}

async fn reference_reader(kind: Kind, ws: &str, syms: &[String], seconds: f64) -> anyhow::Result<Count> {
    let (url, subscribe) = match kind {
        Kind::Depth => {
            let streams: Vec<String> = syms.iter().map(|s| format!("{}@depth@100ms", s.to_lowercase())).collect();
            (format!("{ws}/stream?streams={}", streams.join("/")), None)
        }
        Kind::BybitTrades => {
            // Ten topics per request: Bybit's spot refuses more (`args size
            // >10`, shared/protocols/PROTOCOLS.md, "Public args limits"); the
            // same bound is safe on linear.
            let reqs: Vec<String> = syms
                .chunks(10)
                .map(|c| {
                    let args: Vec<String> = c.iter().map(|s| format!("\"publicTrade.{s}\"")).collect();
                    format!("{{\"op\":\"subscribe\",\"args\":[{}]}}", args.join(","))
                })
                .collect();
            (format!("{ws}/v5/public/linear"), Some(reqs))
        }
    };
    let mut sock = Native::new().connect(&ConnectSpec::new(url)).await.context("reference reader connect")?;
    for r in subscribe.into_iter().flatten() {
        sock.send(WsMsg::Text(r)).await.context("reference reader subscribe")?;
    }
    let mut c = Count::default();
    let mut w = Window::new(seconds);
    let mut books: HashMap<String, RefBook> = HashMap::new();
    let mut ids = IdCheck::default();
    loop {
        let msg = match tokio::time::timeout(SILENCE, sock.recv()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => bail!("reference reader: {e}"),
            Ok(None) => bail!("reference reader: the simulator closed the connection"),
            Err(_) => bail!("reference reader: no message for {SILENCE:?}"),
        };
        let WsMsg::Text(text) = msg else { continue };
        match kind {
            Kind::Depth => match serde_json::from_str::<RefDepthEnvelope<'_>>(&text) {
                Ok(env) => {
                    let d = env.data;
                    let book = match books.get_mut(d.s) {
                        Some(b) => b,
                        None => books.entry(d.s.to_string()).or_default(),
                    };
                    if book.last_u != 0 && d.U > book.last_u + 1 {
                        c.lost += d.U - book.last_u - 1;
                    }
                    book.last_u = d.u;
                    apply(&mut book.bids, &d.b);
                    apply(&mut book.asks, &d.a);
                    c.messages += 1;
                    if w.tick() {
                        break;
                    }
                }
                Err(_) => c.errors += 1,
            },
            Kind::BybitTrades => {
                // Acknowledgements (`{"success":true,...}`) and pongs are not trades.
                if !text.contains("\"topic\"") {
                    continue;
                }
                match serde_json::from_str::<RefBybitTrades<'_>>(&text) {
                    Ok(m) => {
                        let mut done = false;
                        for t in &m.data {
                            std::hint::black_box((&t.p, &t.v));
                            match t.i.parse::<u64>() {
                                Ok(id) => c.lost += ids.see(t.s, id),
                                Err(_) => c.errors += 1,
                            }
                            c.messages += 1;
                            done |= w.tick();
                        }
                        if done {
                            break;
                        }
                    }
                    Err(_) => c.errors += 1,
                }
            }
        }
    }
    w.close(&mut c);
    std::hint::black_box(books.values().map(|b| b.bids.len() + b.asks.len()).sum::<usize>());
    let _ = sock.send(WsMsg::Close(Some((1000, String::new())))).await;
    Ok(c)
}

// ------------------------------------------------------------------ ferrofeed

async fn ferrofeed_reader(kind: Kind, env: Environment, syms: &[String], seconds: f64) -> anyhow::Result<Count> {
    let market = kind.market()?;
    let mut b = Feed::builder().url(market, env);
    for s in syms {
        b = match kind {
            Kind::Depth => b.book(market, s),
            Kind::BybitTrades => b.subscribe(market, Channel::Trades, s),
        };
    }
    let mut feed = b.build().await.context("building the feed")?;
    let mut c = Count::default();
    let mut w = Window::new(seconds);
    let mut ids = IdCheck::default();
    loop {
        let ev = match tokio::time::timeout(SILENCE, feed.next()).await {
            Ok(Some(ev)) => ev,
            Ok(None) => bail!("ferrofeed: the feed ended"),
            Err(_) => bail!("ferrofeed: no event for {SILENCE:?}"),
        };
        let counted = match &ev.kind {
            EventKind::BookUpdate(u) => {
                std::hint::black_box((&u.bids, &u.asks));
                true
            }
            EventKind::BookSnapshot(_) => {
                c.snapshots += 1;
                false
            }
            EventKind::BookResync(_) | EventKind::Gap(_) => {
                c.lost += 1;
                false
            }
            EventKind::Trade(tr) => {
                std::hint::black_box((&tr.price, &tr.qty));
                match (tr.trade_id.parse::<u64>(), ev.symbol.as_deref()) {
                    (Ok(id), Some(sym)) => c.lost += ids.see(sym, id),
                    _ => c.errors += 1,
                }
                true
            }
            EventKind::Error { .. } => {
                c.errors += 1;
                false
            }
            _ => false,
        };
        if counted {
            c.messages += 1;
            if w.tick() {
                break;
            }
        }
    }
    w.close(&mut c);
    feed.shutdown().await;
    Ok(c)
}

// ------------------------------------------------------------------ run

#[derive(Debug, Clone, Copy, PartialEq)]
enum Reader {
    Reference,
    Ferrofeed,
}

fn measure(reader: Reader, plan: &Plan, pin: bool) -> anyhow::Result<(Count, f64)> {
    let args: Vec<String> = vec![
        "--synthetic-symbols".into(),
        plan.symbols.to_string(),
        "--time-scale".into(),
        plan.time_scale.to_string(),
    ];
    let sim = SimProcess::start_markets(plan.kind.sim_market(), &args, pin)?;
    let syms = symbols(plan.symbols);
    reset_peak_rss();
    let rt = runtime()?;
    let c = rt.block_on(async {
        match reader {
            Reader::Reference => reference_reader(plan.kind, &sim.ws, &syms, plan.seconds).await,
            Reader::Ferrofeed => ferrofeed_reader(plan.kind, sim.env(), &syms, plan.seconds).await,
        }
    })?;
    drop(rt);
    let rss = status_mib("VmHWM:");
    drop(sim);
    Ok((c, rss))
}

/// The report: one JSON object, the same names as the trade bench's where
/// they mean the same.
#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    /// Always true: the simulator's generated streams, not its load stream.
    stand_in: bool,
    venue: &'static str,
    stream: &'static str,
    symbols: u64,
    seconds: f64,
    time_scale: f64,
    /// Messages each reader counted in its run (median).
    messages: u64,
    reference_messages: u64,
    reference_msgs_per_s: f64,
    ferrofeed_msgs_per_s: f64,
    reference_ns_per_msg_cpu: f64,
    ferrofeed_ns_per_msg_cpu: f64,
    /// Reference CPU per message over ferrofeed's.
    ratio: f64,
    lost: u64,
    reference_lost: u64,
    decode_errors: u64,
    cpu_s: f64,
    reference_cpu_s: f64,
    max_rss_mib: f64,
    reference_max_rss_mib: f64,
    /// Depth only: book snapshots ferrofeed took (one per book when nothing is lost).
    #[serde(skip_serializing_if = "Option::is_none")]
    book_snapshots: Option<u64>,
    runs: u32,
    pinned: bool,
}

pub(super) fn run(plan: &Plan) -> anyhow::Result<()> {
    let pin = can_pin(plan.no_pin);
    if pin {
        pin_self();
    }
    let (mut rc, mut fc) = (Vec::new(), Vec::new());
    let (mut lost, mut ref_lost, mut errors, mut rss, mut ref_rss, mut snaps) = (0, 0, 0, 0f64, 0f64, 0);
    for _ in 0..plan.runs {
        let (r, r_rss) = measure(Reader::Reference, plan, pin)?;
        let (f, f_rss) = measure(Reader::Ferrofeed, plan, pin)?;
        ref_lost += r.lost;
        lost += f.lost;
        errors += r.errors + f.errors;
        snaps = snaps.max(f.snapshots);
        rss = rss.max(f_rss);
        ref_rss = ref_rss.max(r_rss);
        rc.push(r);
        fc.push(f);
    }
    let med = |v: &[Count], g: fn(&Count) -> f64| median(v.iter().map(g).collect());
    let (r_ns, f_ns) = (med(&rc, Count::ns_per_msg), med(&fc, Count::ns_per_msg));
    let rep = Report {
        bench: "e2e",
        stand_in: true,
        venue: match plan.kind {
            Kind::Depth => "binance",
            Kind::BybitTrades => "bybit",
        },
        stream: match plan.kind {
            Kind::Depth => "depth",
            Kind::BybitTrades => "trade",
        },
        symbols: plan.symbols,
        seconds: plan.seconds,
        time_scale: plan.time_scale,
        messages: med(&fc, |c| c.messages as f64) as u64,
        reference_messages: med(&rc, |c| c.messages as f64) as u64,
        reference_msgs_per_s: med(&rc, Count::rate).round(),
        ferrofeed_msgs_per_s: med(&fc, Count::rate).round(),
        reference_ns_per_msg_cpu: r_ns.round(),
        ferrofeed_ns_per_msg_cpu: f_ns.round(),
        ratio: if f_ns > 0.0 { (r_ns / f_ns * 1000.0).round() / 1000.0 } else { 0.0 },
        lost,
        reference_lost: ref_lost,
        decode_errors: errors,
        cpu_s: (med(&fc, |c| c.cpu_s) * 100.0).round() / 100.0,
        reference_cpu_s: (med(&rc, |c| c.cpu_s) * 100.0).round() / 100.0,
        max_rss_mib: (rss * 10.0).round() / 10.0,
        reference_max_rss_mib: (ref_rss * 10.0).round() / 10.0,
        book_snapshots: (plan.kind == Kind::Depth).then_some(snaps),
        runs: plan.runs,
        pinned: pin,
    };
    if plan.json {
        println!("{}", serde_json::to_string(&rep)?);
    } else {
        println!(
            "stand-in: the simulator's generated {} (no load-stream form), {} symbols, time scale {}, {} s per reader",
            plan.kind.name(),
            plan.symbols,
            plan.time_scale,
            plan.seconds
        );
        println!("| reader | msgs/s (simulator-paced) | client CPU s | CPU ns/msg | lost | peak RSS MiB |");
        println!("|---|---:|---:|---:|---:|---:|");
        let reference = match plan.kind {
            Kind::Depth => "reference (tokio-tungstenite + serde_json typed + BTreeMap per side)",
            Kind::BybitTrades => "reference (tokio-tungstenite + serde_json typed)",
        };
        println!(
            "| {reference} | {:.0} | {:.2} | {:.0} | {} | {:.1} |",
            rep.reference_msgs_per_s,
            rep.reference_cpu_s,
            rep.reference_ns_per_msg_cpu,
            ref_lost,
            rep.reference_max_rss_mib
        );
        println!(
            "| ferrofeed (Feed{}) | {:.0} | {:.2} | {:.0} | {} | {:.1} |",
            if plan.kind == Kind::Depth { format!(" with {} books", plan.symbols) } else { String::new() },
            rep.ferrofeed_msgs_per_s,
            rep.cpu_s,
            rep.ferrofeed_ns_per_msg_cpu,
            lost,
            rep.max_rss_mib
        );
        println!("ratio (reference CPU/msg ÷ ferrofeed CPU/msg) {:.3}; {} run(s); pinned: {pin}", rep.ratio, plan.runs);
    }
    if lost > 0 || ref_lost > 0 || errors > 0 {
        bail!("lost {lost} (reference {ref_lost}), {errors} decode errors");
    }
    Ok(())
}
