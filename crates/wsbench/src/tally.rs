//! Per-frame work shared by every client: count, optionally parse into a typed
//! trade, and account for every sequence number.

use std::time::Instant;

use serde::Deserialize;

use crate::procstat::CpuSample;

/// The first trade id of the simulator's load stream (`LoadConfig::new`).
pub const FIRST_ID: u64 = 1_000_000_000_000;

/// A Binance trade payload, borrowed from the frame (no allocation per message).
///
/// The load stream's payloads contain no escapes, so every `&str` borrows.
#[derive(Debug, Deserialize)]
pub struct Trade<'a> {
    /// `e`: event type, `trade`.
    #[serde(rename = "e")]
    pub event: &'a str,
    /// `E`: event time (µs in load mode).
    #[serde(rename = "E")]
    pub event_time: u64,
    /// `s`: symbol.
    #[serde(rename = "s")]
    pub symbol: &'a str,
    /// `t`: trade id, the sequence number in load mode.
    #[serde(rename = "t")]
    pub id: u64,
    /// `p`: price, a decimal string.
    #[serde(rename = "p")]
    pub price: &'a str,
    /// `q`: quantity, a decimal string.
    #[serde(rename = "q")]
    pub qty: &'a str,
    /// `T`: trade time (µs in load mode).
    #[serde(rename = "T")]
    pub trade_time: u64,
    /// `m`: whether the buyer is the maker.
    #[serde(rename = "m")]
    pub buyer_is_maker: bool,
}

/// What the client does with each text frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Parse {
    /// Count frames only; the first and last frame are parsed for their ids.
    Count,
    /// `sonic_rs::from_str` into [`Trade`], every id checked.
    Sonic,
    /// `serde_json::from_str` into [`Trade`], every id checked.
    SerdeJson,
}

impl Parse {
    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Parse::Count => "count only",
            Parse::Sonic => "sonic-rs",
            Parse::SerdeJson => "serde_json",
        }
    }
}

/// Counters and sequence accounting for one run.
#[derive(Debug)]
pub struct Tally {
    /// Frames the run must read.
    pub target: u64,
    /// Text frames read.
    pub frames: u64,
    /// Payload bytes of those frames.
    pub bytes: u64,
    /// Id of the first frame.
    pub first_id: Option<u64>,
    /// Id of the last frame read.
    pub last_id: Option<u64>,
    /// Ids skipped between consecutive frames (parse variants check every frame).
    pub missing: u64,
    /// Frames whose id was not above the previous one (duplicates, reordering).
    pub out_of_order: u64,
    /// Frames that parsed but had unexpected content.
    pub bad: u64,
    /// Whether every frame's id was checked (parse variants) or only the first and last.
    pub every_id: bool,
    /// When the target count was reached, with the CPU time then.
    pub done_at: Option<(Instant, CpuSample)>,
    /// Client wall clock minus the frame's `E` (the simulator's send stamp), µs,
    /// for the first and the last frame.
    pub lag_us: [Option<i64>; 2],
}

impl Tally {
    /// A tally for `target` frames.
    pub fn new(target: u64, parse: Parse) -> Tally {
        Tally {
            target,
            frames: 0,
            bytes: 0,
            first_id: None,
            last_id: None,
            missing: 0,
            out_of_order: 0,
            bad: 0,
            every_id: parse != Parse::Count,
            done_at: None,
            lag_us: [None, None],
        }
    }

    /// Handles one text frame; returns `true` once `target` frames were read.
    #[inline]
    pub fn on_text(&mut self, parse: Parse, text: &str) -> anyhow::Result<bool> {
        match parse {
            Parse::Count => self.count(text)?,
            Parse::Sonic => {
                let t: Trade<'_> = sonic_rs::from_str(text).map_err(|e| anyhow::anyhow!("sonic-rs: {e}"))?;
                self.trade(&t);
            }
            Parse::SerdeJson => {
                let t: Trade<'_> = serde_json::from_str(text).map_err(|e| anyhow::anyhow!("serde_json: {e}"))?;
                self.trade(&t);
            }
        }
        self.frames += 1;
        self.bytes += text.len() as u64;
        Ok(self.reached())
    }

    /// Count-only path for raw bytes (UTF-8 is not needed to count).
    #[inline]
    pub fn on_bytes_count(&mut self, payload: &[u8]) -> anyhow::Result<bool> {
        if self.frames == 0 || self.frames + 1 == self.target {
            let text = std::str::from_utf8(payload)?;
            self.count(text)?;
        }
        self.frames += 1;
        self.bytes += payload.len() as u64;
        Ok(self.reached())
    }

    #[inline]
    fn reached(&mut self) -> bool {
        if self.frames < self.target {
            return false;
        }
        if self.done_at.is_none() {
            self.done_at = Some((Instant::now(), CpuSample::now()));
        }
        true
    }

    #[inline]
    fn count(&mut self, text: &str) -> anyhow::Result<()> {
        // Only the first and the last frame are parsed, for their ids.
        if self.frames == 0 || self.frames + 1 == self.target {
            let t: Trade<'_> = serde_json::from_str(text)?;
            self.check(&t);
            self.edge_lag(&t);
            self.first_id.get_or_insert(t.id);
            self.last_id = Some(t.id);
        }
        Ok(())
    }

    #[inline]
    fn trade(&mut self, t: &Trade<'_>) {
        self.check(t);
        self.edge_lag(t);
        match self.last_id {
            None => self.first_id = Some(t.id),
            Some(prev) if t.id == prev + 1 => {}
            Some(prev) if t.id > prev => self.missing += t.id - prev - 1,
            Some(_) => self.out_of_order += 1,
        }
        self.last_id = Some(t.id);
        std::hint::black_box(t);
    }

    /// Records the lag of the first and last frame (two clock reads per run).
    #[inline]
    fn edge_lag(&mut self, t: &Trade<'_>) {
        let slot = if self.frames == 0 {
            0
        } else if self.frames + 1 == self.target {
            1
        } else {
            return;
        };
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        self.lag_us[slot] = Some(now_us - t.event_time as i64);
    }

    #[inline]
    fn check(&mut self, t: &Trade<'_>) {
        if t.event != "trade"
            || t.symbol != "LOADUSDT"
            || t.event_time != t.trade_time
            || t.price.is_empty()
            || t.qty.is_empty()
            || !t.buyer_is_maker
        {
            self.bad += 1;
        }
    }

    /// Frames not accounted for: short reads, skipped ids, a wrong first or last id.
    pub fn lost(&self) -> u64 {
        let short = self.target.saturating_sub(self.frames);
        let span = match (self.first_id, self.last_id) {
            (Some(f), Some(l)) if f == FIRST_ID && l == FIRST_ID + self.target - 1 => 0,
            (Some(f), Some(l)) => (f.abs_diff(FIRST_ID)).max(l.abs_diff(FIRST_ID + self.target - 1)).max(1),
            _ => self.target,
        };
        short.max(self.missing).max(span)
    }

    /// Whether the run read exactly the expected sequence.
    pub fn clean(&self) -> bool {
        self.lost() == 0 && self.out_of_order == 0 && self.bad == 0 && self.frames == self.target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: u64) -> String {
        format!(
            r#"{{"e":"trade","E":1763000000123456,"s":"LOADUSDT","t":{id},"p":"100.00000000","q":"1.00000000","T":1763000000123456,"m":true,"M":true}}"#
        )
    }

    #[test]
    fn every_parser_accepts_the_load_frame() {
        for parse in [Parse::Count, Parse::Sonic, Parse::SerdeJson] {
            let mut t = Tally::new(3, parse);
            assert!(!t.on_text(parse, &frame(FIRST_ID)).unwrap());
            assert!(!t.on_text(parse, &frame(FIRST_ID + 1)).unwrap());
            assert!(t.on_text(parse, &frame(FIRST_ID + 2)).unwrap());
            assert!(t.clean(), "{parse:?}: {t:?}");
        }
    }

    #[test]
    fn a_gap_is_reported_as_lost() {
        let mut t = Tally::new(3, Parse::Sonic);
        t.on_text(Parse::Sonic, &frame(FIRST_ID)).unwrap();
        t.on_text(Parse::Sonic, &frame(FIRST_ID + 2)).unwrap();
        t.on_text(Parse::Sonic, &frame(FIRST_ID + 3)).unwrap();
        assert_eq!(t.missing, 1);
        assert!(t.lost() >= 1);
        assert!(!t.clean());
    }

    #[test]
    fn count_mode_checks_first_and_last() {
        let mut t = Tally::new(3, Parse::Count);
        t.on_bytes_count(frame(FIRST_ID).as_bytes()).unwrap();
        t.on_bytes_count(b"not parsed in count mode").unwrap();
        assert!(t.on_bytes_count(frame(FIRST_ID + 2).as_bytes()).unwrap());
        assert!(t.clean(), "{t:?}");
        let mut short = Tally::new(3, Parse::Count);
        short.on_bytes_count(frame(FIRST_ID).as_bytes()).unwrap();
        short.on_bytes_count(b"x").unwrap();
        short.on_bytes_count(frame(FIRST_ID + 5).as_bytes()).unwrap();
        assert!(!short.clean());
    }

    #[test]
    fn malformed_json_is_an_error() {
        let mut t = Tally::new(3, Parse::Sonic);
        assert!(t.on_text(Parse::Sonic, "{\"e\":").is_err());
        let mut t = Tally::new(3, Parse::SerdeJson);
        assert!(t.on_text(Parse::SerdeJson, "{\"e\":").is_err());
    }
}

/// Distinct frames in the in-process working set: ~600 KB, cache-resident like
/// a socket read buffer, not a 30 MB walk through cold memory.
const IN_PROCESS_SET: u64 = 4096;

/// In-process cost of the per-frame work, no socket: `n` parses cycling over
/// [`IN_PROCESS_SET`] distinct frames, each id checked. Returns ns per frame.
pub fn in_process(work: InProcess, n: u64) -> anyhow::Result<f64> {
    let frames: Vec<String> = (0..IN_PROCESS_SET)
        .map(|i| {
            format!(
                r#"{{"e":"trade","E":1763000000123456,"s":"LOADUSDT","t":{},"p":"100.00000000","q":"1.00000000","T":1763000000123456,"m":true,"M":true}}"#,
                FIRST_ID + i
            )
        })
        .collect();
    let mut bad = 0u64;
    let t0 = Instant::now();
    for k in 0..n {
        let i = (k % IN_PROCESS_SET) as usize;
        let f = std::hint::black_box(frames[i].as_str());
        let id = match work {
            InProcess::Utf8 => {
                std::str::from_utf8(f.as_bytes())?;
                FIRST_ID + i as u64
            }
            InProcess::Sonic => sonic_rs::from_str::<Trade<'_>>(f).map_err(|e| anyhow::anyhow!("{e}"))?.id,
            InProcess::SerdeJson => serde_json::from_str::<Trade<'_>>(f)?.id,
        };
        bad += u64::from(id != FIRST_ID + i as u64);
    }
    let ns = t0.elapsed().as_secs_f64() * 1e9 / n.max(1) as f64;
    if bad > 0 {
        anyhow::bail!("{bad} frames parsed to the wrong id");
    }
    Ok(ns)
}

/// Per-frame work measured without a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InProcess {
    /// `std::str::from_utf8` on the payload (what a `&str` parser costs on top of
    /// fastwebsockets, which validates but hands out bytes).
    Utf8,
    /// `sonic_rs::from_str` into [`Trade`] plus id accounting.
    Sonic,
    /// `serde_json::from_str` into [`Trade`] plus id accounting.
    SerdeJson,
}

impl InProcess {
    /// Label for tables.
    pub fn label(self) -> &'static str {
        match self {
            InProcess::Utf8 => "std::str::from_utf8 only",
            InProcess::Sonic => "sonic-rs → Trade",
            InProcess::SerdeJson => "serde_json → Trade",
        }
    }
}
