//! Crash-safe capture files: normalized events as zstd-compressed JSON lines.
//!
//! # Layout
//!
//! [`Recorder`] appends each [`Event`] (one JSON line, the contract of
//! `docs/events.md`) to `DIR/<venue>/<market>/<YYYY-MM-DD>/<HH>.jsonl.zst`,
//! the date and hour being those of the event's `receive_ts` in UTC
//! ([`relative_path`]). Within one run a venue/market only rolls *forward* to
//! a later hour: an event whose `receive_ts` falls in an earlier hour than the
//! file being written (a REST snapshot received just before the hour turned)
//! stays in the current file, so the files of a market, read in name order,
//! hold its events in arrival order.
//!
//! # Format and crash safety
//!
//! A file is a sequence of independent zstd frames (with content checksums).
//! Each flush compresses the pending batch of whole lines into one frame,
//! appends it and calls `File::sync_data`; only then are its records
//! *acknowledged* ([`Recorder::acknowledged`]). `zstdcat FILE` reads the whole
//! file. A crash (`kill -9`, power loss) can only leave an incomplete last
//! frame; [`repair_file`] finds the end of the last complete frame whose content
//! is valid UTF-8 ending in `'\n'` and truncates the file there.
//! [`Recorder::open`] repairs the newest file of every `<venue>/<market>`
//! directory under `DIR` (the only files a crashed recorder can have been
//! appending to) and any other file before it appends to it.
//!
//! Memory is bounded: each venue/market has one pending batch, flushed when it
//! reaches [`RecorderConfig::flush_records`] records or
//! [`RecorderConfig::flush_bytes`] bytes (the caller also flushes on a timer,
//! [`Recorder::flush`]); a record larger than [`MAX_RECORD_BYTES`] is refused.
//! Readers decode one frame at a time and refuse frames whose content exceeds
//! [`MAX_FRAME_BYTES`].
//!
//! [`RecordReader`] iterates the lines of several files in order (used by
//! `ferrofeed replay` and the Parquet export). [`Recorder::take_closed`]
//! names the files of the hours that are finished (`record --parquet`).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ferrofeed_model::event::{Event, MarketType, Venue};
use serde::Serialize;
use zstd::zstd_safe::{self, DCtx, InBuffer, OutBuffer};

/// File name suffix of capture files.
pub const SUFFIX: &str = ".jsonl.zst";

/// Largest serialized event the recorder accepts (bytes, newline included).
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// Largest decompressed frame a reader accepts. The recorder writes frames of
/// at most `flush_bytes` plus one record.
pub const MAX_FRAME_BYTES: usize = 256 << 20;

const NS_PER_HOUR: i64 = 3_600_000_000_000;

/// The proleptic Gregorian date `(year, month, day)` of `days` since
/// 1970-01-01 (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Hours since the epoch of a timestamp in ns (floor, also before 1970).
pub fn hour_of(ts_ns: i64) -> i64 {
    ts_ns.div_euclid(NS_PER_HOUR)
}

/// `<venue>/<market>/<YYYY-MM-DD>/<HH>.jsonl.zst` for an hour since the epoch.
pub fn relative_path(venue: &str, market: &str, hour: i64) -> PathBuf {
    let (y, m, d) = civil_from_days(hour.div_euclid(24));
    let hh = hour.rem_euclid(24);
    [venue.to_string(), market.to_string(), format!("{y:04}-{m:02}-{d:02}"), format!("{hh:02}{SUFFIX}")]
        .iter()
        .collect()
}

/// A path relative to the output directory, with `/` separators (for reports).
fn display_rel(rel: &Path) -> String {
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Errors of the recorder and the readers; each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// An I/O error on a file or directory.
    #[error("{}: {err}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed (in the message, not as a separate source).
        err: io::Error,
    },
    /// An event larger than [`MAX_RECORD_BYTES`] once serialized.
    #[error("{type_name} event of {size} bytes exceeds the {MAX_RECORD_BYTES}-byte record limit; not recorded")]
    TooLarge {
        /// Its type.
        type_name: &'static str,
        /// Its serialized size.
        size: usize,
    },
    /// The event could not be serialized.
    #[error("serializing a {type_name} event: {msg}")]
    Encode {
        /// Its type.
        type_name: &'static str,
        /// The serializer's message.
        msg: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RecordError + '_ {
    move |err| RecordError::Io { path: path.to_path_buf(), err }
}

// ---------------------------------------------------------------------------
// Frames

/// What is wrong with a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameProblem {
    /// The file ends inside the frame (a torn write).
    Incomplete,
    /// zstd rejected the frame (bad magic, corrupt block, checksum mismatch).
    Corrupt(String),
    /// The decompressed frame exceeds [`MAX_FRAME_BYTES`].
    TooLarge,
    /// The decompressed frame is not UTF-8 text.
    NotUtf8,
    /// The decompressed frame does not end with `'\n'` (a partial line).
    NoTrailingNewline,
}

impl fmt::Display for FrameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameProblem::Incomplete => f.write_str("incomplete zstd frame (torn write)"),
            FrameProblem::Corrupt(e) => write!(f, "corrupt zstd frame: {e}"),
            FrameProblem::TooLarge => write!(f, "zstd frame decompresses to more than {MAX_FRAME_BYTES} bytes"),
            FrameProblem::NotUtf8 => f.write_str("zstd frame content is not UTF-8 text"),
            FrameProblem::NoTrailingNewline => f.write_str("zstd frame content does not end with a newline"),
        }
    }
}

/// A bad frame and where it starts.
#[derive(Debug)]
pub enum FrameError {
    /// The frame starting at `offset` is bad.
    Bad {
        /// Byte offset of the frame in the file.
        offset: u64,
        /// What is wrong.
        problem: FrameProblem,
    },
    /// Reading the file failed.
    Io(io::Error),
}

/// One decompressed frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Byte offset of the frame in the file.
    pub offset: u64,
    /// Its compressed length.
    pub len: u64,
    /// Its content.
    pub data: Vec<u8>,
}

/// Decodes a stream of concatenated zstd frames one frame at a time, with
/// exact frame boundaries (streaming: memory is two fixed buffers plus one
/// frame's content, at most [`MAX_FRAME_BYTES`]).
pub struct FrameReader<R> {
    src: R,
    dctx: DCtx<'static>,
    inbuf: Box<[u8]>,
    in_start: usize,
    in_end: usize,
    out: Box<[u8]>,
    offset: u64,
    max_frame: usize,
}

impl<R> fmt::Debug for FrameReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameReader").field("offset", &self.offset).finish_non_exhaustive()
    }
}

impl<R: Read> FrameReader<R> {
    /// Reads frames from `src`, starting at offset 0.
    pub fn new(src: R) -> FrameReader<R> {
        FrameReader::with_max_frame(src, MAX_FRAME_BYTES)
    }

    /// As [`FrameReader::new`], refusing frames whose content exceeds `max`.
    pub fn with_max_frame(src: R, max: usize) -> FrameReader<R> {
        FrameReader {
            src,
            dctx: DCtx::create(),
            inbuf: vec![0; DCtx::in_size().max(4096)].into_boxed_slice(),
            in_start: 0,
            in_end: 0,
            out: vec![0; DCtx::out_size().max(4096)].into_boxed_slice(),
            offset: 0,
            max_frame: max,
        }
    }

    /// The offset of the next byte not yet consumed (the end of the last
    /// complete frame after [`FrameReader::next_frame`] returned one).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next complete frame; `None` at a clean end of input (after a
    /// complete frame, or on empty input).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let start = self.offset;
        let mut data = Vec::new();
        let mut started = false;
        let mut flush_only = false;
        loop {
            if self.in_start == self.in_end && !flush_only {
                let n = loop {
                    match self.src.read(&mut self.inbuf) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(FrameError::Io(e)),
                    }
                };
                if n == 0 {
                    if !started {
                        return Ok(None);
                    }
                    let _ = self.dctx.reset(zstd_safe::ResetDirective::SessionOnly);
                    return Err(FrameError::Bad { offset: start, problem: FrameProblem::Incomplete });
                }
                self.in_start = 0;
                self.in_end = n;
            }
            started = true;
            let had_input = self.in_start < self.in_end;
            let mut input = InBuffer::around(&self.inbuf[self.in_start..self.in_end]);
            let mut output = OutBuffer::around(&mut self.out[..]);
            let r = self.dctx.decompress_stream(&mut output, &mut input);
            let (consumed, produced) = (input.pos(), output.pos());
            self.in_start += consumed;
            self.offset += consumed as u64;
            data.extend_from_slice(&self.out[..produced]);
            let bad = |problem| Err(FrameError::Bad { offset: start, problem });
            match r {
                Err(code) => {
                    let _ = self.dctx.reset(zstd_safe::ResetDirective::SessionOnly);
                    return bad(FrameProblem::Corrupt(zstd_safe::get_error_name(code).to_string()));
                }
                Ok(0) => return Ok(Some(Frame { offset: start, len: self.offset - start, data })),
                Ok(_) => {}
            }
            if data.len() > self.max_frame {
                let _ = self.dctx.reset(zstd_safe::ResetDirective::SessionOnly);
                return bad(FrameProblem::TooLarge);
            }
            if had_input && consumed == 0 && produced == 0 {
                let _ = self.dctx.reset(zstd_safe::ResetDirective::SessionOnly);
                return bad(FrameProblem::Corrupt("decoder made no progress".into()));
            }
            // A full output buffer may hide more output for the same input.
            flush_only = produced == self.out.len();
        }
    }
}

/// Checks that a frame's content is whole lines of UTF-8 text; returns the
/// number of lines.
fn check_lines(data: &[u8]) -> Result<u64, FrameProblem> {
    if data.is_empty() {
        return Ok(0);
    }
    if data.last() != Some(&b'\n') {
        return Err(FrameProblem::NoTrailingNewline);
    }
    if std::str::from_utf8(data).is_err() {
        return Err(FrameProblem::NotUtf8);
    }
    Ok(data.iter().filter(|&&b| b == b'\n').count() as u64)
}

/// What checking (and possibly truncating) one file found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repair {
    /// The file, relative to the output directory when the recorder did it.
    pub file: String,
    /// Complete frames kept.
    pub frames: u64,
    /// Records (lines) in them.
    pub records: u64,
    /// Bytes kept: the file's length afterwards.
    pub kept_bytes: u64,
    /// Bytes cut off the end (0: the file was intact).
    pub truncated_bytes: u64,
    /// Why it was cut, with the frame's offset; `None` when intact.
    pub problem: Option<String>,
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            None => write!(
                f,
                "verified {}: {} frames, {} records, {} bytes, intact",
                self.file, self.frames, self.records, self.kept_bytes
            ),
            Some(p) => write!(
                f,
                "repaired {}: kept {} frames ({} records, {} bytes); truncated {} bytes: {p}",
                self.file, self.frames, self.records, self.kept_bytes, self.truncated_bytes
            ),
        }
    }
}

/// Scans the frames of `path` and truncates the file at the first incomplete
/// or bad frame (see [`FrameProblem`]); everything after it is cut off. The
/// file is synced after a truncation.
pub fn repair_file(path: &Path) -> Result<Repair, RecordError> {
    let file = OpenOptions::new().read(true).write(true).open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    let mut frames = FrameReader::new(&file);
    let (mut n, mut records, mut kept, mut problem) = (0u64, 0u64, 0u64, None);
    loop {
        match frames.next_frame() {
            Ok(Some(f)) => match check_lines(&f.data) {
                Ok(lines) => {
                    n += 1;
                    records += lines;
                    kept = f.offset + f.len;
                }
                Err(p) => {
                    problem = Some(format!("at byte offset {}: {p}", f.offset));
                    break;
                }
            },
            Ok(None) => break,
            Err(FrameError::Bad { offset, problem: p }) => {
                problem = Some(format!("at byte offset {offset}: {p}"));
                break;
            }
            Err(FrameError::Io(e)) => return Err(RecordError::Io { path: path.to_path_buf(), err: e }),
        }
    }
    if kept < len {
        file.set_len(kept).map_err(io_err(path))?;
        file.sync_all().map_err(io_err(path))?;
        if problem.is_none() {
            problem = Some(format!("at byte offset {kept}: trailing bytes"));
        }
    }
    Ok(Repair {
        file: path.display().to_string(),
        frames: n,
        records,
        kept_bytes: kept,
        truncated_bytes: len - kept,
        problem,
    })
}

// ---------------------------------------------------------------------------
// Writer

/// How the recorder batches and compresses.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// Flush a venue/market's batch once it holds this many records.
    pub flush_records: usize,
    /// Flush a batch once it holds this many bytes (the memory cap per
    /// venue/market, exceeded by at most one record).
    pub flush_bytes: usize,
    /// zstd level (1–19; 3 is zstd's default).
    pub level: i32,
}

impl Default for RecorderConfig {
    fn default() -> RecorderConfig {
        RecorderConfig { flush_records: 1000, flush_bytes: 4 << 20, level: 3 }
    }
}

/// What was written to one file in this run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileStats {
    /// Records acknowledged (written and synced).
    pub records: u64,
    /// Frames written.
    pub frames: u64,
    /// Uncompressed bytes.
    pub bytes_in: u64,
    /// Compressed bytes.
    pub bytes_out: u64,
}

#[derive(Debug)]
struct Sink {
    hour: i64,
    rel: PathBuf,
    file: Option<(File, u64)>,
    batch: Vec<u8>,
    batch_records: u64,
}

/// Appends events to hourly capture files; see the module documentation.
pub struct Recorder {
    dir: PathBuf,
    cfg: RecorderConfig,
    cctx: zstd::bulk::Compressor<'static>,
    sinks: BTreeMap<(Venue, MarketType), Sink>,
    files: BTreeMap<String, FileStats>,
    verified: HashSet<PathBuf>,
    repairs: Vec<Repair>,
    line: Vec<u8>,
    received: u64,
    acknowledged: u64,
    pending: u64,
    last_flush: Instant,
    closed: Vec<PathBuf>,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("dir", &self.dir)
            .field("cfg", &self.cfg)
            .field("received", &self.received)
            .field("acknowledged", &self.acknowledged)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

/// The newest capture file of every `<venue>/<market>` directory under `dir`.
fn newest_files(dir: &Path) -> Result<Vec<PathBuf>, RecordError> {
    fn subdirs(p: &Path) -> Result<Vec<PathBuf>, RecordError> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(p).map_err(io_err(p))? {
            let e = e.map_err(io_err(p))?;
            if e.file_type().map_err(io_err(p))?.is_dir() {
                v.push(e.path());
            }
        }
        v.sort();
        Ok(v)
    }
    let mut out = Vec::new();
    for venue in subdirs(dir)? {
        for market in subdirs(&venue)? {
            let mut newest: Option<PathBuf> = None;
            for day in subdirs(&market)? {
                for e in std::fs::read_dir(&day).map_err(io_err(&day))? {
                    let p = e.map_err(io_err(&day))?.path();
                    let is_capture = p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(SUFFIX));
                    if is_capture && p.is_file() && newest.as_ref().is_none_or(|n| p > *n) {
                        newest = Some(p);
                    }
                }
            }
            out.extend(newest);
        }
    }
    Ok(out)
}

/// Best-effort sync of a directory entry (a new file or directory survives a
/// power loss); not possible on every platform.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Recorder {
    /// Opens (creating) `dir` and repairs the newest file of every
    /// `<venue>/<market>` directory in it ([`Recorder::repairs`] says what was
    /// found).
    pub fn open(dir: impl Into<PathBuf>, cfg: RecorderConfig) -> Result<Recorder, RecordError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut cctx = zstd::bulk::Compressor::new(cfg.level).map_err(io_err(&dir))?;
        cctx.set_parameter(zstd_safe::CParameter::ChecksumFlag(true)).map_err(io_err(&dir))?;
        let mut rec = Recorder {
            dir,
            cfg,
            cctx,
            sinks: BTreeMap::new(),
            files: BTreeMap::new(),
            verified: HashSet::new(),
            repairs: Vec::new(),
            line: Vec::new(),
            received: 0,
            acknowledged: 0,
            pending: 0,
            last_flush: Instant::now(),
            closed: Vec::new(),
        };
        for path in newest_files(&rec.dir)? {
            rec.verify(&path)?;
        }
        Ok(rec)
    }

    fn verify(&mut self, path: &Path) -> Result<(), RecordError> {
        if self.verified.insert(path.to_path_buf()) {
            let mut r = repair_file(path)?;
            r.file = display_rel(path.strip_prefix(&self.dir).unwrap_or(path));
            self.repairs.push(r);
        }
        Ok(())
    }

    /// The output directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every file checked before appending (at open and later), in order.
    pub fn repairs(&self) -> &[Repair] {
        &self.repairs
    }

    /// Records handed to [`Recorder::append`] (and accepted).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Records in frames written and synced to disk.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged
    }

    /// Records waiting in batches.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// When batches were last flushed by [`Recorder::flush`].
    pub fn last_flush(&self) -> Instant {
        self.last_flush
    }

    /// What was written to each file in this run, by path relative to the
    /// output directory.
    pub fn files(&self) -> &BTreeMap<String, FileStats> {
        &self.files
    }

    /// The files this run finished since the last call: a venue/market rolled
    /// on to a later hour, and everything for the earlier one is written and
    /// synced; this run appends nothing more to them (full paths).
    pub fn take_closed(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.closed)
    }

    /// The files of the hours still open (one per venue/market that has
    /// written one), full paths; after [`Recorder::close`] they hold every
    /// record received.
    pub fn open_files(&self) -> Vec<PathBuf> {
        self.sinks.values().filter(|s| s.file.is_some()).map(|s| self.dir.join(&s.rel)).collect()
    }

    /// Adds one event to its venue/market's batch; writes the batch when it is
    /// full or when the event starts a later hour. On an I/O error the file is
    /// cut back to its last acknowledged frame and the error returned.
    pub fn append(&mut self, ev: &Event) -> Result<(), RecordError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, ev)
            .map_err(|e| RecordError::Encode { type_name: ev.kind.type_name(), msg: e.to_string() })?;
        self.line.push(b'\n');
        if self.line.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge { type_name: ev.kind.type_name(), size: self.line.len() });
        }
        let hour = hour_of(ev.receive_ts);
        let key = (ev.venue, ev.market);
        let roll = match self.sinks.get(&key) {
            Some(s) => hour > s.hour,
            None => true,
        };
        if roll {
            self.flush_sink(key)?;
            if let Some(old) = self.sinks.get(&key)
                && old.file.is_some()
            {
                self.closed.push(self.dir.join(&old.rel));
            }
            let rel = relative_path(ev.venue.name(), ev.market.name(), hour);
            let sink = self.sinks.entry(key).or_insert_with(|| Sink {
                hour,
                rel: rel.clone(),
                file: None,
                batch: Vec::new(),
                batch_records: 0,
            });
            sink.hour = hour;
            sink.rel = rel;
            sink.file = None;
        }
        let Some(sink) = self.sinks.get_mut(&key) else { return Ok(()) };
        sink.batch.extend_from_slice(&self.line);
        sink.batch_records += 1;
        self.received += 1;
        self.pending += 1;
        if sink.batch_records >= self.cfg.flush_records as u64 || sink.batch.len() >= self.cfg.flush_bytes {
            self.flush_sink(key)?;
        }
        Ok(())
    }

    /// Writes every pending batch as one frame per file and syncs it.
    pub fn flush(&mut self) -> Result<(), RecordError> {
        let keys: Vec<_> = self.sinks.keys().copied().collect();
        for k in keys {
            self.flush_sink(k)?;
        }
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Flushes everything; the recorder can still be used afterwards.
    pub fn close(&mut self) -> Result<(), RecordError> {
        self.flush()
    }

    fn flush_sink(&mut self, key: (Venue, MarketType)) -> Result<(), RecordError> {
        let Some(sink) = self.sinks.get(&key) else { return Ok(()) };
        if sink.batch_records == 0 {
            return Ok(());
        }
        let path = self.dir.join(&sink.rel);
        if sink.file.is_none() {
            let parent = path.parent().unwrap_or(&self.dir).to_path_buf();
            let existed = path.exists();
            if existed {
                self.verify(&path)?;
            } else {
                std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
            }
            let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
            let len = file.metadata().map_err(io_err(&path))?.len();
            if !existed {
                self.verified.insert(path.clone());
                // Make the new file and directories durable: file's dir up to DIR.
                let mut d = Some(parent.as_path());
                while let Some(p) = d {
                    sync_dir(p);
                    if p == self.dir {
                        break;
                    }
                    d = p.parent();
                }
            }
            if let Some(s) = self.sinks.get_mut(&key) {
                s.file = Some((file, len));
            }
        }
        let Some(sink) = self.sinks.get_mut(&key) else { return Ok(()) };
        let frame = self.cctx.compress(&sink.batch).map_err(io_err(&path))?;
        let Some((file, len)) = sink.file.as_mut() else { return Ok(()) };
        let written = file.write_all(&frame).and_then(|()| file.sync_data());
        if let Err(e) = written {
            // Cut the partial frame off so the file stays a sequence of whole frames.
            let _ = file.set_len(*len);
            sink.file = None;
            return Err(RecordError::Io { path, err: e });
        }
        *len += frame.len() as u64;
        let st = self.files.entry(display_rel(&sink.rel)).or_default();
        st.records += sink.batch_records;
        st.frames += 1;
        st.bytes_in += sink.batch.len() as u64;
        st.bytes_out += frame.len() as u64;
        self.acknowledged += sink.batch_records;
        self.pending -= sink.batch_records;
        sink.batch.clear();
        sink.batch_records = 0;
        if sink.batch.capacity() > self.cfg.flush_bytes.saturating_mul(2) {
            sink.batch.shrink_to(self.cfg.flush_bytes);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Reader

/// One recorded line.
#[derive(Debug, Clone)]
pub struct Record {
    /// The file it came from.
    pub path: Arc<Path>,
    /// Its line number in that file (1-based).
    pub line_no: u64,
    /// The JSON line, without the newline.
    pub line: String,
}

/// A file that could not be read completely: what was read before the error
/// was yielded; the reader goes on with the next file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {what}", path.display())]
pub struct ReadError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong and where (byte offset of the frame, line number).
    pub what: String,
}

/// Lists capture files: files as given, directories expanded to every
/// `*.jsonl.zst` below them in name order (which is time order per
/// venue/market). A path that does not exist is an error naming it.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, RecordError> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), RecordError> {
        let mut entries = Vec::new();
        for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
            entries.push(e.map_err(io_err(dir))?.path());
        }
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(SUFFIX)) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(io_err(p))?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Iterates the lines of capture files in order, one frame in memory at a time.
pub struct RecordReader {
    paths: VecDeque<PathBuf>,
    cur: Option<(Arc<Path>, FrameReader<File>)>,
    frame: String,
    pos: usize,
    line_no: u64,
}

impl fmt::Debug for RecordReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordReader")
            .field("file", &self.cur.as_ref().map(|c| &c.0))
            .field("line_no", &self.line_no)
            .finish_non_exhaustive()
    }
}

impl RecordReader {
    /// Reads `paths` in the order given.
    pub fn new(paths: impl IntoIterator<Item = PathBuf>) -> RecordReader {
        RecordReader { paths: paths.into_iter().collect(), cur: None, frame: String::new(), pos: 0, line_no: 0 }
    }

    fn fail(&mut self, what: String) -> Option<Result<Record, ReadError>> {
        let path = self.cur.take().map(|c| c.0.to_path_buf()).unwrap_or_default();
        self.frame.clear();
        self.pos = 0;
        Some(Err(ReadError { path, what }))
    }
}

impl Iterator for RecordReader {
    type Item = Result<Record, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((path, _)) = &self.cur
                && self.pos < self.frame.len()
            {
                let rest = &self.frame[self.pos..];
                let end = rest.find('\n').unwrap_or(rest.len());
                let line = rest[..end].to_string();
                self.pos += end + 1;
                self.line_no += 1;
                return Some(Ok(Record { path: path.clone(), line_no: self.line_no, line }));
            }
            let Some((_, frames)) = self.cur.as_mut() else {
                let path = self.paths.pop_front()?;
                match File::open(&path) {
                    Ok(f) => {
                        self.cur = Some((Arc::from(path.as_path()), FrameReader::new(f)));
                        self.line_no = 0;
                        self.frame.clear();
                        self.pos = 0;
                        continue;
                    }
                    Err(e) => return Some(Err(ReadError { path, what: e.to_string() })),
                }
            };
            let after = self.line_no;
            match frames.next_frame() {
                Ok(None) => self.cur = None,
                Ok(Some(f)) => {
                    if let Err(p) = check_lines(&f.data) {
                        return self.fail(format!("byte offset {} (after line {after}): {p}", f.offset));
                    }
                    // check_lines validated UTF-8.
                    self.frame = String::from_utf8(f.data).unwrap_or_default();
                    self.pos = 0;
                }
                Err(FrameError::Bad { offset, problem }) => {
                    return self.fail(format!("byte offset {offset} (after line {after}): {problem}"));
                }
                Err(FrameError::Io(e)) => return self.fail(format!("after line {after}: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofeed_model::event::{EventKind, Gap, Missing};

    fn frame(text: &str) -> Vec<u8> {
        let mut c = zstd::bulk::Compressor::new(3).unwrap();
        c.set_parameter(zstd_safe::CParameter::ChecksumFlag(true)).unwrap();
        c.compress(text.as_bytes()).unwrap()
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ferrofeed-record-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn event(ts: i64, n: u64) -> Event {
        Event {
            kind: EventKind::Gap(Gap { stream: "btcusdt@trade".into(), missing: Missing::Range { from: n, to: n } }),
            venue: Venue::Binance,
            market: MarketType::Spot,
            symbol: Some("BTCUSDT".into()),
            exchange_ts: None,
            receive_ts: ts,
        }
    }

    #[test]
    fn civil_dates_and_hour_paths() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_818), (2026, 12, 31));
        assert_eq!(civil_from_days(20_819), (2027, 1, 1));
        // 2026-11-22T05:55:11Z
        let ts = 1_795_326_911_000_000_000;
        assert_eq!(relative_path("binance", "spot", hour_of(ts)), Path::new("binance/spot/2026-11-22/05.jsonl.zst"));
        assert_eq!(relative_path("binance", "usdm", hour_of(0)), Path::new("binance/usdm/1970-01-01/00.jsonl.zst"));
        assert_eq!(relative_path("binance", "usdm", hour_of(-1)), Path::new("binance/usdm/1969-12-31/23.jsonl.zst"));
        assert_eq!(hour_of(3_599_999_999_999), 0);
        assert_eq!(hour_of(3_600_000_000_000), 1);
    }

    #[test]
    fn frames_are_scanned_and_a_torn_tail_is_truncated() {
        let d = tmpdir("scan");
        let p = d.join("f.jsonl.zst");
        let (a, b, c) = (frame("{\"a\":1}\n{\"a\":2}\n"), frame("{\"a\":3}\n"), frame("{\"a\":4}\n"));
        let mut bytes = [a.clone(), b.clone()].concat();
        let good = bytes.len() as u64;
        bytes.extend_from_slice(&c[..c.len() / 2]);
        std::fs::write(&p, &bytes).unwrap();
        let r = repair_file(&p).unwrap();
        assert_eq!((r.frames, r.records, r.kept_bytes), (2, 3, good));
        assert_eq!(r.truncated_bytes, (c.len() / 2) as u64);
        assert!(r.problem.as_deref().unwrap().contains(&format!("offset {good}: incomplete")), "{r:?}");
        assert_eq!(std::fs::metadata(&p).unwrap().len(), good);
        // Now intact: a second pass changes nothing.
        let r = repair_file(&p).unwrap();
        assert_eq!((r.frames, r.records, r.truncated_bytes, r.problem), (2, 3, 0, None));
        // zstd itself reads it whole.
        assert_eq!(zstd::decode_all(&std::fs::read(&p).unwrap()[..]).unwrap(), b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");

        // Garbage after the frames.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"garbage!").unwrap();
        let r = repair_file(&p).unwrap();
        assert_eq!((r.records, r.truncated_bytes), (3, 8));
        assert!(r.problem.unwrap().contains("corrupt zstd frame"));

        // A complete frame whose content ends mid-line is cut too, and what follows it.
        std::fs::write(&p, [a.clone(), frame("{\"a\":3}"), b.clone()].concat()).unwrap();
        let r = repair_file(&p).unwrap();
        assert_eq!((r.frames, r.records, r.kept_bytes), (1, 2, a.len() as u64));
        assert!(r.problem.unwrap().contains("does not end with a newline"));

        // A flipped byte inside a frame fails its checksum (or its block).
        let mut bytes = [a.clone(), b.clone()].concat();
        let at = a.len() + b.len() - 6;
        bytes[at] ^= 0x55;
        std::fs::write(&p, &bytes).unwrap();
        let r = repair_file(&p).unwrap();
        assert_eq!((r.frames, r.kept_bytes), (1, a.len() as u64));

        // Empty files and a lone partial magic number.
        std::fs::write(&p, b"").unwrap();
        assert_eq!(repair_file(&p).unwrap().truncated_bytes, 0);
        std::fs::write(&p, [0x28, 0xb5]).unwrap();
        let r = repair_file(&p).unwrap();
        assert_eq!((r.kept_bytes, r.truncated_bytes), (0, 2));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn large_frames_stream_through_small_buffers() {
        let text: String = (0..50_000).map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 50))).collect();
        let bytes = [frame(&text), frame("{}\n")].concat();
        let mut r = FrameReader::new(&bytes[..]);
        let f = r.next_frame().unwrap().unwrap();
        assert_eq!(f.data, text.as_bytes());
        assert_eq!(r.next_frame().unwrap().unwrap().data, b"{}\n");
        assert!(r.next_frame().unwrap().is_none());
        assert_eq!(r.offset(), bytes.len() as u64);
        let mut r = FrameReader::with_max_frame(&bytes[..], 1000);
        assert!(matches!(r.next_frame(), Err(FrameError::Bad { offset: 0, problem: FrameProblem::TooLarge })));
    }

    #[test]
    fn recorder_rolls_hours_forward_repairs_on_open_and_reads_back() {
        let d = tmpdir("writer");
        let h = 1_795_326_911_000_000_000 - 1_795_326_911_000_000_000 % NS_PER_HOUR;
        let cfg = RecorderConfig { flush_records: 3, ..RecorderConfig::default() };
        let mut rec = Recorder::open(&d, cfg.clone()).unwrap();
        for i in 0..5 {
            rec.append(&event(h + i, i as u64)).unwrap();
        }
        assert_eq!((rec.received(), rec.acknowledged(), rec.pending()), (5, 3, 2));
        // Next hour; then an event stamped in the previous hour stays in the new file.
        assert!(rec.take_closed().is_empty());
        rec.append(&event(h + NS_PER_HOUR + 1, 5)).unwrap();
        assert_eq!(rec.acknowledged(), 5);
        // The earlier hour is finished: handed out once, as a full path.
        assert_eq!(rec.take_closed(), [d.join("binance/spot/2026-11-22/05.jsonl.zst")]);
        assert!(rec.take_closed().is_empty());
        rec.append(&event(h + 7, 6)).unwrap();
        let mut usdm = event(h + 2, 7);
        usdm.market = MarketType::UsdM;
        rec.append(&usdm).unwrap();
        rec.close().unwrap();
        assert_eq!((rec.acknowledged(), rec.pending()), (8, 0));
        assert!(rec.take_closed().is_empty(), "an event of an earlier hour does not close the current one");
        let mut open = rec.open_files();
        open.sort();
        assert_eq!(
            open,
            [d.join("binance/spot/2026-11-22/06.jsonl.zst"), d.join("binance/usdm/2026-11-22/05.jsonl.zst")]
        );
        let files: Vec<_> = rec.files().iter().map(|(k, v)| (k.clone(), v.records)).collect();
        assert_eq!(
            files,
            [
                ("binance/spot/2026-11-22/05.jsonl.zst".to_string(), 5),
                ("binance/spot/2026-11-22/06.jsonl.zst".to_string(), 2),
                ("binance/usdm/2026-11-22/05.jsonl.zst".to_string(), 1),
            ]
        );
        drop(rec);

        // Tear the newest spot file; reopening repairs it (and only checks the newest files).
        let spot06 = d.join("binance/spot/2026-11-22/06.jsonl.zst");
        let good = std::fs::metadata(&spot06).unwrap().len();
        let torn = frame("{\"torn\":true}\n");
        OpenOptions::new().append(true).open(&spot06).unwrap().write_all(&torn[..torn.len() - 3]).unwrap();
        let rec = Recorder::open(&d, cfg).unwrap();
        let reps: Vec<_> = rec.repairs().iter().map(|r| (r.file.as_str(), r.records, r.truncated_bytes)).collect();
        assert_eq!(
            reps,
            [
                ("binance/spot/2026-11-22/06.jsonl.zst", 2, (torn.len() - 3) as u64),
                ("binance/usdm/2026-11-22/05.jsonl.zst", 1, 0)
            ]
        );
        assert_eq!(std::fs::metadata(&spot06).unwrap().len(), good);
        drop(rec);

        let paths = expand_paths(std::slice::from_ref(&d)).unwrap();
        assert_eq!(paths.len(), 3);
        let lines: Vec<Record> = RecordReader::new(paths).map(|r| r.unwrap()).collect();
        assert_eq!(lines.len(), 8);
        let evs: Vec<Event> = lines.iter().map(|r| serde_json::from_str(&r.line).unwrap()).collect();
        let ids: Vec<u64> = evs
            .iter()
            .map(|e| match &e.kind {
                EventKind::Gap(Gap { missing: Missing::Range { from, .. }, .. }) => *from,
                _ => panic!("gap"),
            })
            .collect();
        assert_eq!(ids, [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!((lines[5].line_no, lines[6].line_no, lines[7].line_no), (1, 2, 1));

        // A torn file read directly: its lines, then an error naming it and the offset.
        OpenOptions::new().append(true).open(&spot06).unwrap().write_all(b"\x28\xb5\x2f").unwrap();
        let out: Vec<_> = RecordReader::new([spot06.clone(), d.join("missing.jsonl.zst")]).collect();
        assert_eq!(out.len(), 4);
        assert!(out[0].is_ok() && out[1].is_ok());
        let e = out[2].as_ref().unwrap_err().to_string();
        assert!(e.contains("06.jsonl.zst") && e.contains(&format!("byte offset {good}")) && e.contains("torn"), "{e}");
        assert!(out[3].as_ref().unwrap_err().to_string().contains("missing.jsonl.zst"));
        assert!(expand_paths(&[d.join("nope")]).unwrap_err().to_string().contains("nope"));
        let _ = std::fs::remove_dir_all(&d);
    }
}
