//! `bench e2e --stream depth --books K` and `bench e2e --venue bybit`: the
//! trade bench's method on the simulator's other load forms (docs/sim.md,
//! "Load mode"). Each reader gets a fresh simulator with the same N (and
//! K), which sends the same frames every time, as fast as the reader reads;
//! `ratio` is ferrofeed's msgs/s over the reference's, as for trades. The
//! Bybit clock runs from the first trade to the last, as the trade bench's;
//! the depth clock from the first diff the consumer handles (the reference:
//! its first frame, read after its snapshots; ferrofeed: its first book
//! event) to the last, and `messages` counts every diff read (ferrofeed's
//! `book_update`s plus the diffs its books suppressed as older than their
//! snapshot). The time from subscribing to that first diff is reported
//! apart (`subscribe_s`): ferrofeed subscribes its books one at a time.
//!
//! - **depth** (Binance spot, `load<k>usdt@depth@100ms`, K books, N diffs in
//!   all): the reference reader is the engine's transport (tokio-tungstenite),
//!   each frame parsed by serde_json into a typed `{stream, data: {s, U, u,
//!   b, a}}` with exact decimals and applied to one `BTreeMap` per side per
//!   book (quantity 0 deletes), synced by the venue's procedure: after
//!   subscribing it takes every book's REST snapshot (`/api/v3/depth`, 100
//!   levels) while the diffs wait in the socket, then skips the diffs a
//!   snapshot contains (`u` ≤ `lastUpdateId`), requires the first one after
//!   it to start at or before `lastUpdateId` + 1 and every later one at the
//!   previous `u` + 1 (a hole is counted as lost). (Snapshots fetched by a
//!   task of the same runtime while the loop reads at full speed arrive
//!   only after most diffs, which then go unapplied; so it does not.)
//!   ferrofeed is `Feed` keeping the K books (REST snapshots of 100 levels,
//!   buffering, sequencing, apply, one `book_update` per diff); lost = `gap`
//!   and `book_resync` events. A run ends when every book reached the last
//!   update id of the simulator's plan (`/admin/load`). Afterwards the book of `LOAD0USDT` is compared, level
//!   by level in exact decimals, between the two readers and with the
//!   simulator's final REST snapshot (the load books hold at most 100 levels
//!   a side, so the 100-level snapshots hold them whole).
//! - **Bybit** (linear, `publicTrade.LOADUSDT`, N messages of one trade):
//!   the reference parses each message into a typed `{topic, ts, data: [{T,
//!   s, S, v, p, i}]}` with exact decimals. Bybit's trade ids are strings;
//!   the load form writes the sequence number there, so both readers parse
//!   `i` as an integer and count every id that is not the previous one + 1
//!   as lost (and ids missing at the end).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use anyhow::{Context, bail};
use ferrofeed::books::BookConfig;
use ferrofeed::client::{Environment, MarketId};
use ferrofeed::engine::rest::RestClient;
use ferrofeed::engine::{ConnectSpec, Native, Transport, WsMsg, WsStream};
use ferrofeed::feed::Feed;
use ferrofeed::model::Decimal;
use ferrofeed::model::event::{EventKind, Level};
use ferrofeed::venues::seam::Channel;
use serde::{Deserialize, Serialize};

use super::{
    STALL, SimProcess, Tally, can_pin, consume_trades, cpu_s, median, pin_self, reset_peak_rss, runtime, status_mib,
};

/// What a form bench reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// Binance spot diffs through K local books.
    Depth,
    /// Bybit linear public trades.
    BybitTrades,
}

/// The options of a form bench.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub form: Form,
    /// Frames per reader (depth: diffs over all books).
    pub messages: u64,
    /// Books (depth only).
    pub books: u64,
    pub runs: u32,
    pub json: bool,
    pub no_pin: bool,
}

/// Levels of each REST snapshot both depth readers take (weight 5 on spot).
const SNAPSHOT_LEVELS: u32 = 100;
/// The book compared at the end.
const COMPARED: &str = "LOAD0USDT";
/// The Bybit load topic.
const BYBIT_TOPIC: &str = "publicTrade.LOADUSDT";
/// Longest connect URL the reference builds; further streams are subscribed
/// with SUBSCRIBE messages (as ferrofeed's pools do).
const MAX_URL: usize = 7000;

/// A book as (price, quantity) per side, best first.
type Levels = (Vec<(Decimal, Decimal)>, Vec<(Decimal, Decimal)>);

/// What one reader saw in one run.
#[derive(Debug, Default, Clone)]
struct Count {
    /// Frames (depth: diffs; Bybit: trades) the reader handled.
    messages: u64,
    lost: u64,
    errors: u64,
    /// Book snapshots (depth).
    snapshots: u64,
    elapsed_s: f64,
    cpu_s: f64,
    /// Depth: seconds from subscribing to the first diff.
    subscribe_s: f64,
    /// The compared book at the end (depth).
    book: Option<Levels>,
    /// The simulator's final REST snapshot of it (depth).
    truth: Option<Levels>,
}

impl Count {
    fn rate(&self) -> f64 {
        if self.elapsed_s > 0.0 { self.messages as f64 / self.elapsed_s } else { 0.0 }
    }
}

/// The clock of a depth run: from the first diff the reader handles (the
/// reference: the first frame; ferrofeed: the first book event, a
/// snapshot's fetch after the first frame) to the last, so that the books'
/// sync is inside it for both; and the time from subscribing to that first diff.
#[derive(Debug)]
struct Clock {
    subscribed: Instant,
    start: Option<(Instant, f64)>,
}

impl Clock {
    fn new() -> Clock {
        Clock { subscribed: Instant::now(), start: None }
    }
    fn tick(&mut self) {
        if self.start.is_none() {
            self.start = Some((Instant::now(), cpu_s()));
        }
    }
    /// No event for this long ends a run: before the first diff, long
    /// enough for a slow subscription of many books.
    fn patience(&self) -> std::time::Duration {
        if self.start.is_some() { STALL } else { FIRST_DIFF }
    }
    fn close(&self, c: &mut Count) {
        if let Some((t, cpu0)) = self.start {
            c.elapsed_s = t.elapsed().as_secs_f64();
            c.cpu_s = cpu_s() - cpu0;
            c.subscribe_s = (t - self.subscribed).as_secs_f64();
        }
    }
}

/// How long a depth reader may wait for its first diff (the simulator starts
/// the diffs once every book's stream is subscribed).
const FIRST_DIFF: std::time::Duration = std::time::Duration::from_secs(300);

// ------------------------------------------------------------------ simulator plan

/// One book of the simulator's depth plan.
#[derive(Debug, Deserialize)]
struct PlannedBook {
    stream: String,
    symbol: String,
    last_update_id: u64,
}

#[derive(Debug, Deserialize)]
struct LoadPlan {
    streams: Vec<serde_json::Value>,
}

/// The depth books the simulator will feed (`GET /admin/load`).
async fn depth_plan(rest: &str) -> anyhow::Result<Vec<PlannedBook>> {
    let body = RestClient::default().get(&format!("{rest}/admin/load"), 0, None).await.context("GET /admin/load")?;
    let plan: LoadPlan = serde_json::from_slice(&body).context("the load plan")?;
    let books: Vec<PlannedBook> = plan
        .streams
        .into_iter()
        .filter(|s| s.get("symbol").is_some())
        .map(serde_json::from_value)
        .collect::<Result<_, _>>()
        .context("a planned book")?;
    if books.is_empty() {
        bail!("the simulator plans no depth books");
    }
    Ok(books)
}

/// A REST depth snapshot, typed.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
struct RefSnapshot {
    lastUpdateId: u64,
    bids: Vec<[Decimal; 2]>,
    asks: Vec<[Decimal; 2]>,
}

async fn snapshot(http: &RestClient, rest: &str, symbol: &str) -> anyhow::Result<RefSnapshot> {
    let url = format!("{rest}/api/v3/depth?symbol={symbol}&limit={SNAPSHOT_LEVELS}");
    let body = http.get(&url, 0, None).await.with_context(|| format!("snapshot of {symbol}"))?;
    serde_json::from_slice(&body).with_context(|| format!("snapshot of {symbol}"))
}

fn levels_of(s: &RefSnapshot) -> Levels {
    let pairs = |v: &[[Decimal; 2]]| v.iter().map(|[p, q]| (*p, *q)).collect();
    (pairs(&s.bids), pairs(&s.asks))
}

// ------------------------------------------------------------------ reference: depth

/// A diff in the combined envelope, typed.
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

/// One reference book: bids and asks by price, and the update id it is at.
#[derive(Debug, Default)]
struct RefBook {
    bids: BTreeMap<Decimal, Decimal>,
    asks: BTreeMap<Decimal, Decimal>,
    at: u64,
    final_u: u64,
    done: bool,
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

impl RefBook {
    fn load(&mut self, s: &RefSnapshot) {
        self.bids = s.bids.iter().map(|[p, q]| (*p, *q)).collect();
        self.asks = s.asks.iter().map(|[p, q]| (*p, *q)).collect();
        self.at = s.lastUpdateId;
        self.done = self.at >= self.final_u;
    }

    /// Applies a diff by the venue's rule: one the book already contains is
    /// skipped; otherwise returns the update ids missing before it.
    fn diff(&mut self, first: u64, last: u64, b: &[[Decimal; 2]], a: &[[Decimal; 2]]) -> u64 {
        if last <= self.at {
            return 0;
        }
        let hole = first.saturating_sub(self.at + 1);
        apply(&mut self.bids, b);
        apply(&mut self.asks, a);
        self.at = last;
        self.done |= last >= self.final_u;
        hole
    }

    fn levels(&self) -> Levels {
        (self.bids.iter().rev().map(|(p, q)| (*p, *q)).collect(), self.asks.iter().map(|(p, q)| (*p, *q)).collect())
    }
}

/// The reference: subscribe, take every book's snapshot (the diffs wait in
/// the socket meanwhile, as the venue's procedure buffers them), then read:
/// diffs the snapshot contains are skipped, the first one after it must
/// start at or before `lastUpdateId` + 1, every later one right after the
/// previous `u`.
async fn depth_reference(ws: &str, rest: &str, plan: &[PlannedBook]) -> anyhow::Result<Count> {
    // As many streams in the URL as fit, the rest in SUBSCRIBE messages of
    // 200 at most, 4 a second (the venue counts 5 incoming messages a second).
    let (mut url, mut extra) = (format!("{ws}/stream?streams="), Vec::new());
    for (i, b) in plan.iter().enumerate() {
        if url.len() + b.stream.len() < MAX_URL {
            if i > 0 {
                url.push('/');
            }
            url.push_str(&b.stream);
        } else {
            extra.push(b.stream.clone());
        }
    }
    let mut clock = Clock::new();
    let mut sock = Native::new().connect(&ConnectSpec::new(url)).await.context("reference reader connect")?;
    for (id, chunk) in extra.chunks(200).enumerate() {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let req = serde_json::json!({"method": "SUBSCRIBE", "params": chunk, "id": id + 1});
        sock.send(WsMsg::Text(req.to_string())).await.context("reference reader subscribe")?;
    }
    let http = RestClient::default();
    let mut books: HashMap<String, RefBook> = HashMap::with_capacity(plan.len());
    for p in plan {
        let mut book = RefBook { final_u: p.last_update_id, ..RefBook::default() };
        book.load(&snapshot(&http, rest, &p.symbol).await?);
        books.insert(p.symbol.clone(), book);
    }
    let mut c = Count { snapshots: plan.len() as u64, ..Count::default() };
    let mut left = books.values().filter(|b| !b.done).count();
    while left > 0 {
        let msg = match tokio::time::timeout(clock.patience(), sock.recv()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => bail!("reference reader: {e}"),
            Ok(None) | Err(_) => break,
        };
        let WsMsg::Text(text) = msg else { continue };
        match serde_json::from_str::<RefDepthEnvelope<'_>>(&text) {
            Ok(env) => {
                clock.tick();
                c.messages += 1;
                let d = env.data;
                let Some(book) = books.get_mut(d.s) else {
                    c.errors += 1;
                    continue;
                };
                let was_done = book.done;
                c.lost += book.diff(d.U, d.u, &d.b, &d.a);
                if !was_done && book.done {
                    left -= 1;
                }
            }
            // SUBSCRIBE answers (`{"result":null,"id":1}`) are not diffs.
            Err(_) if text.starts_with("{\"result\"") => {}
            Err(_) => c.errors += 1,
        }
    }
    clock.close(&mut c);
    c.lost += left as u64;
    let _ = sock.send(WsMsg::Close(Some((1000, String::new())))).await;
    c.book = books.get(COMPARED).map(RefBook::levels);
    c.truth = Some(levels_of(&snapshot(&http, rest, COMPARED).await?));
    Ok(c)
}

// ------------------------------------------------------------------ ferrofeed: depth

async fn depth_ferrofeed(env: Environment, rest: &str, plan: &[PlannedBook]) -> anyhow::Result<Count> {
    let market = super::load_market()?;
    let book_cfg = BookConfig { depth: Some(SNAPSHOT_LEVELS), ..BookConfig::default() };
    let mut clock = Clock::new();
    let mut b = Feed::builder().url(market, env).book_config(book_cfg);
    for p in plan {
        b = b.book(market, &p.symbol);
    }
    let mut feed = b.build().await.context("building the feed")?;
    let index: HashMap<&str, usize> = plan.iter().enumerate().map(|(i, p)| (p.symbol.as_str(), i)).collect();
    let mut done = vec![false; plan.len()];
    let mut left = plan.len();
    let mut c = Count::default();
    while left > 0 {
        let ev = match tokio::time::timeout(clock.patience(), feed.next()).await {
            Ok(Some(ev)) => ev,
            Ok(None) | Err(_) => break,
        };
        let reached = match &ev.kind {
            EventKind::BookUpdate(u) => {
                clock.tick();
                c.messages += 1;
                std::hint::black_box((&u.bids, &u.asks));
                Some(u.last_update_id)
            }
            EventKind::BookSnapshot(s) => {
                clock.tick();
                c.snapshots += 1;
                Some(s.last_update_id)
            }
            EventKind::BookResync(_) | EventKind::Gap(_) => {
                c.lost += 1;
                None
            }
            EventKind::Error { .. } => {
                c.errors += 1;
                None
            }
            _ => None,
        };
        if let (Some(u), Some(&i)) = (reached, ev.symbol.as_deref().and_then(|s| index.get(s)))
            && !done[i]
            && u >= plan[i].last_update_id
        {
            done[i] = true;
            left -= 1;
        }
    }
    clock.close(&mut c);
    c.lost += left as u64;
    // Diffs older than a snapshot were read and dropped, not published.
    c.messages +=
        plan.iter().filter_map(|p| feed.books().book_stats(market, &p.symbol)).map(|s| s.suppressed).sum::<u64>();
    let pairs = |v: Vec<Level>| v.into_iter().map(|l| (l.price, l.qty)).collect();
    c.book = feed.books().book(market, COMPARED).map(|b| (pairs(b.bids(usize::MAX)), pairs(b.asks(usize::MAX))));
    feed.shutdown().await;
    c.truth = Some(levels_of(&snapshot(&RestClient::default(), rest, COMPARED).await?));
    Ok(c)
}

// ------------------------------------------------------------------ Bybit trades

/// A Bybit public trade message, typed.
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

fn bybit_market() -> anyhow::Result<MarketId> {
    crate::cli::parse_market("bybit:linear")
}

async fn bybit_reference(ws: &str, n: u64) -> anyhow::Result<Tally> {
    let url = format!("{ws}/v5/public/linear");
    let mut sock = Native::new().connect(&ConnectSpec::new(url)).await.context("reference reader connect")?;
    let sub = serde_json::json!({"op": "subscribe", "args": [BYBIT_TOPIC]});
    sock.send(WsMsg::Text(sub.to_string())).await.context("reference reader subscribe")?;
    let mut t = Tally::new(0);
    'read: loop {
        let msg = match tokio::time::timeout(STALL, sock.recv()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => bail!("reference reader: {e}"),
            Ok(None) | Err(_) => break,
        };
        let WsMsg::Text(text) = msg else { continue };
        match serde_json::from_str::<RefBybitTrades<'_>>(&text) {
            Ok(m) => {
                for tr in &m.data {
                    std::hint::black_box((&tr.p, &tr.v));
                    let Ok(id) = tr.i.parse::<u64>() else {
                        t.errors += 1;
                        continue;
                    };
                    if t.on_id(id, n) {
                        break 'read;
                    }
                }
            }
            // Answers to `op` requests (`{"success":true,...,"op":"subscribe"}`) are not trades.
            Err(_) if text.contains("\"op\"") => {}
            Err(_) => t.errors += 1,
        }
    }
    let _ = sock.send(WsMsg::Close(Some((1000, String::new())))).await;
    t.finish(n);
    Ok(t)
}

async fn bybit_ferrofeed(env: Environment, n: u64) -> anyhow::Result<Tally> {
    let market = bybit_market()?;
    let feed = Feed::builder()
        .url(market, env)
        .subscribe(market, Channel::Trades, "LOADUSDT")
        .build()
        .await
        .context("building the feed")?;
    Ok(consume_trades(feed, n, false).await)
}

fn tally_count(t: &Tally) -> Count {
    Count {
        messages: t.received,
        lost: t.lost + t.disorder,
        errors: t.errors,
        elapsed_s: match (t.first_at, t.last_at) {
            (Some(a), Some(b)) if b > a => (b - a).as_secs_f64(),
            _ => 0.0,
        },
        cpu_s: t.cpu_s,
        ..Count::default()
    }
}

// ------------------------------------------------------------------ run

#[derive(Debug, Clone, Copy, PartialEq)]
enum Reader {
    Reference,
    Ferrofeed,
}

fn measure(reader: Reader, plan: &Plan, pin: bool) -> anyhow::Result<(Count, f64)> {
    let mut args = vec!["--load-messages".to_string(), plan.messages.to_string()];
    let market = match plan.form {
        Form::Depth => {
            args.extend(["--load-books".to_string(), plan.books.to_string()]);
            "spot"
        }
        Form::BybitTrades => "bybit-linear",
    };
    let sim = SimProcess::start_markets(market, &args, pin)?;
    let rt = runtime()?;
    let books = match plan.form {
        Form::Depth => rt.block_on(depth_plan(&sim.rest))?,
        Form::BybitTrades => Vec::new(),
    };
    reset_peak_rss();
    let c = rt.block_on(async {
        match (plan.form, reader) {
            (Form::Depth, Reader::Reference) => depth_reference(&sim.ws, &sim.rest, &books).await,
            (Form::Depth, Reader::Ferrofeed) => depth_ferrofeed(sim.env(), &sim.rest, &books).await,
            (Form::BybitTrades, Reader::Reference) => {
                bybit_reference(&sim.ws, plan.messages).await.map(|t| tally_count(&t))
            }
            (Form::BybitTrades, Reader::Ferrofeed) => {
                bybit_ferrofeed(sim.env(), plan.messages).await.map(|t| tally_count(&t))
            }
        }
    })?;
    drop(rt);
    let rss = status_mib("VmHWM:");
    drop(sim);
    Ok((c, rss))
}

/// The report: the trade bench's names where they mean the same.
#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    venue: &'static str,
    stream: &'static str,
    messages: u64,
    reference_msgs_per_s: f64,
    ferrofeed_msgs_per_s: f64,
    /// ferrofeed's msgs/s over the reference's.
    ratio: f64,
    lost: u64,
    reference_lost: u64,
    decode_errors: u64,
    cpu_s: f64,
    reference_cpu_s: f64,
    ferrofeed_ns_per_msg_cpu: f64,
    reference_ns_per_msg_cpu: f64,
    max_rss_mib: f64,
    reference_max_rss_mib: f64,
    /// Depth: seconds from subscribing to the first diff (median), ferrofeed and reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    subscribe_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference_subscribe_s: Option<f64>,
    /// Depth: books kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    books: Option<u64>,
    /// Depth: REST snapshots ferrofeed took (one per book when nothing is lost).
    #[serde(skip_serializing_if = "Option::is_none")]
    book_snapshots: Option<u64>,
    /// Depth: `LOAD0USDT` at the end, ferrofeed's against the reference's, every run.
    #[serde(skip_serializing_if = "Option::is_none")]
    book_equal: Option<bool>,
    /// Depth: both readers' `LOAD0USDT` against the simulator's final snapshot, every run.
    #[serde(skip_serializing_if = "Option::is_none")]
    book_matches_truth: Option<bool>,
    /// Depth: levels (bids + asks) of the compared book.
    #[serde(skip_serializing_if = "Option::is_none")]
    book_levels: Option<usize>,
    runs: u32,
    pinned: bool,
}

pub(super) fn run(plan: &Plan) -> anyhow::Result<()> {
    let pin = can_pin(plan.no_pin);
    if pin {
        pin_self();
    }
    let depth = plan.form == Form::Depth;
    let (mut rc, mut fc) = (Vec::new(), Vec::new());
    let (mut lost, mut ref_lost, mut errors, mut rss, mut ref_rss, mut snaps) = (0, 0, 0, 0f64, 0f64, 0);
    let (mut equal, mut truth, mut levels) = (true, true, 0);
    for _ in 0..plan.runs {
        let (r, r_rss) = measure(Reader::Reference, plan, pin)?;
        let (f, f_rss) = measure(Reader::Ferrofeed, plan, pin)?;
        ref_lost += r.lost;
        lost += f.lost;
        errors += r.errors + f.errors;
        snaps = snaps.max(f.snapshots);
        rss = rss.max(f_rss);
        ref_rss = ref_rss.max(r_rss);
        if depth {
            equal &= f.book.is_some() && f.book == r.book;
            truth &= f.book.is_some() && f.book == f.truth && r.book == r.truth;
            levels = f.book.as_ref().map_or(0, |(b, a)| b.len() + a.len());
        }
        rc.push(r);
        fc.push(f);
    }
    let med = |v: &[Count], g: fn(&Count) -> f64| median(v.iter().map(g).collect());
    let (reference, ferrofeed) = (med(&rc, Count::rate), med(&fc, Count::rate));
    let (rcpu, fcpu) = (med(&rc, |c| c.cpu_s), med(&fc, |c| c.cpu_s));
    let per = |cpu: f64| (cpu * 1e9 / plan.messages as f64).round();
    let rep = Report {
        bench: "e2e",
        venue: if depth { "binance" } else { "bybit" },
        stream: if depth { "depth" } else { "trade" },
        messages: plan.messages,
        reference_msgs_per_s: reference.round(),
        ferrofeed_msgs_per_s: ferrofeed.round(),
        ratio: if reference > 0.0 { (ferrofeed / reference * 1000.0).round() / 1000.0 } else { 0.0 },
        lost,
        reference_lost: ref_lost,
        decode_errors: errors,
        cpu_s: (fcpu * 100.0).round() / 100.0,
        reference_cpu_s: (rcpu * 100.0).round() / 100.0,
        ferrofeed_ns_per_msg_cpu: per(fcpu),
        reference_ns_per_msg_cpu: per(rcpu),
        max_rss_mib: (rss * 10.0).round() / 10.0,
        reference_max_rss_mib: (ref_rss * 10.0).round() / 10.0,
        subscribe_s: depth.then(|| (med(&fc, |c| c.subscribe_s) * 1000.0).round() / 1000.0),
        reference_subscribe_s: depth.then(|| (med(&rc, |c| c.subscribe_s) * 1000.0).round() / 1000.0),
        books: depth.then_some(plan.books),
        book_snapshots: depth.then_some(snaps),
        book_equal: depth.then_some(equal),
        book_matches_truth: depth.then_some(truth),
        book_levels: depth.then_some(levels),
        runs: plan.runs,
        pinned: pin,
    };
    if plan.json {
        println!("{}", serde_json::to_string(&rep)?);
    } else {
        let (reference_name, ferrofeed_name) = if depth {
            (
                "reference (tokio-tungstenite + serde_json typed + BTreeMap per side)".to_string(),
                format!("ferrofeed (Feed with {} books)", plan.books),
            )
        } else {
            (
                "reference (tokio-tungstenite + serde_json typed)".to_string(),
                "ferrofeed (Feed, publicTrade)".to_string(),
            )
        };
        println!("| reader | msgs/s | client CPU s | CPU ns/msg | lost | peak RSS MiB |");
        println!("|---|---:|---:|---:|---:|---:|");
        println!(
            "| {reference_name} | {:.0} | {:.2} | {:.0} | {} | {:.1} |",
            rep.reference_msgs_per_s,
            rep.reference_cpu_s,
            rep.reference_ns_per_msg_cpu,
            ref_lost,
            rep.reference_max_rss_mib
        );
        println!(
            "| {ferrofeed_name} | {:.0} | {:.2} | {:.0} | {} | {:.1} |",
            rep.ferrofeed_msgs_per_s, rep.cpu_s, rep.ferrofeed_ns_per_msg_cpu, lost, rep.max_rss_mib
        );
        let what = if depth {
            format!("{} diffs over {} books", plan.messages, plan.books)
        } else {
            format!("{} trades", plan.messages)
        };
        println!("ratio {:.3}; {what}; {} run(s); pinned: {pin}", rep.ratio, plan.runs);
        if depth {
            println!(
                "{COMPARED} at the end ({levels} levels): ferrofeed = reference: {equal}; both = the simulator's snapshot: {truth}; {snaps} snapshots; \
                 subscribe to first diff: ferrofeed {} s, reference {} s",
                rep.subscribe_s.unwrap_or_default(),
                rep.reference_subscribe_s.unwrap_or_default()
            );
        }
    }
    if lost > 0 || ref_lost > 0 || errors > 0 {
        bail!("lost {lost} (reference {ref_lost}), {errors} decode errors");
    }
    if depth && !(equal && truth) {
        bail!("the books differ at the end (ferrofeed = reference: {equal}; = simulator: {truth})");
    }
    Ok(())
}
