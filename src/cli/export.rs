//! `ferrofeed export parquet`: capture files of `ferrofeed record` into
//! Parquet files (`ferrofeed::export::parquet`; docs/parquet.md).

use std::path::PathBuf;

use anyhow::bail;
use ferrofeed::export::parquet::{ExportConfig, HourReport, export_dir};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ExportCmd {
    /// Convert `record` captures into Parquet: one file per venue, market,
    /// event type and hour.
    ///
    /// Reads every capture file (*.jsonl.zst) under CAPTURE_DIR, in name order,
    /// and writes OUT_DIR/<venue>/<market>/<table>/<YYYY-MM-DD>/<HH>.parquet,
    /// where <table> is the event type (trade, agg_trade, book_snapshot,
    /// book_update, book_delta, top_of_book, kline, ticker, avg_price,
    /// mark_price, index_price, open_interest, liquidation, order_update,
    /// user_trade, order_list_update, balance_update, position_update) or
    /// `status` for every status event (connected, disconnected, gap,
    /// book_resync, ...). Prices and quantities are Decimal128(38, 18), times
    /// Timestamp(ns, UTC); schemas in docs/parquet.md.
    ///
    /// Each file is written under a temporary name and renamed when complete;
    /// converting an hour again replaces its files. A line that is not an
    /// event, a value that does not fit Decimal128(38, 18) (never rounded) or
    /// a corrupt or torn frame is reported on standard error with the file and
    /// line (or byte offset) and the payload, and the rest is converted; the
    /// exit code is then 1. Standard error also gets one line per capture
    /// file; standard output one JSON summary (events, rows per table, bytes
    /// in and out, events per second).
    ///
    /// Examples:
    ///   ferrofeed export parquet capture pq
    ///   ferrofeed export parquet capture/binance/spot pq
    ///   duckdb -c "select count(*) from 'pq/*/*/trade/*/*.parquet'"
    #[command(verbatim_doc_comment)]
    Parquet(ParquetArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct ParquetArgs {
    /// The capture directory (`record --out`), a directory below it, or one
    /// capture file.
    #[arg(value_name = "CAPTURE_DIR")]
    capture: PathBuf,
    /// Where the Parquet files go (created if missing).
    #[arg(value_name = "OUT_DIR")]
    out: PathBuf,
    /// zstd level of the Parquet pages, 1 (fastest) to 22 (smallest).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=22))]
    level: i32,
}

pub(crate) fn run(cmd: &ExportCmd) -> anyhow::Result<()> {
    match cmd {
        ExportCmd::Parquet(a) => run_parquet(a),
    }
}

/// `trade=120 status=3`.
pub(crate) fn rows_text(h: &HourReport) -> String {
    h.rows.iter().map(|(t, n)| format!("{t}={n}")).collect::<Vec<_>>().join(" ")
}

fn run_parquet(a: &ParquetArgs) -> anyhow::Result<()> {
    let cfg = ExportConfig { zstd_level: a.level, ..ExportConfig::default() };
    let mut on_hour = |h: &HourReport| {
        let problems = if h.problems > 0 { format!(" ({} problems)", h.problems) } else { String::new() };
        eprintln!("ferrofeed export: {}: {} events: {}{problems}", h.capture, h.events, rows_text(h));
    };
    let mut on_problem = |p: ferrofeed::export::parquet::Problem| eprintln!("ferrofeed export: {p}");
    let s = export_dir(&a.capture, &a.out, &cfg, &mut on_hour, &mut on_problem)?;
    let mut v = serde_json::to_value(&s)?;
    if let serde_json::Value::Object(m) = &mut v {
        m.insert("out".into(), a.out.display().to_string().into());
        let ratio =
            if s.bytes_out > 0 { (s.json_bytes as f64 / s.bytes_out as f64 * 100.0).round() / 100.0 } else { 0.0 };
        m.insert("json_to_parquet_ratio".into(), ratio.into());
    }
    println!("{v}");
    if s.problems > 0 {
        bail!("{} problems in the capture files (reported above); {} events exported", s.problems, s.events);
    }
    if s.hours == 0 {
        bail!("no capture files (*{}) in {}", ferrofeed::record::SUFFIX, a.capture.display());
    }
    Ok(())
}
