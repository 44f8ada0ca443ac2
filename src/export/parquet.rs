//! Capture files to Parquet: one file per venue, market, table and hour.
//!
//! # Layout
//!
//! The capture file `DIR/<venue>/<market>/<YYYY-MM-DD>/<HH>.jsonl.zst`
//! becomes `OUT/<venue>/<market>/<table>/<YYYY-MM-DD>/<HH>.parquet`, one
//! file for each [`Table`] that has rows in that hour ([`CaptureHour`]). The
//! tables are the market-data and private event types (`trade`, `agg_trade`,
//! `book_delta`, `book_snapshot`, `book_update`, `top_of_book`, `kline`,
//! `ticker`, `avg_price`, `mark_price`, `index_price`, `open_interest`, `liquidation`, `order_update`,
//! `user_trade`, `order_list_update`, `balance_update`, `position_update`)
//! and `status`, which holds every other event (`connected`, `disconnected`,
//! `reconnected`, `gap`, `book_resync`, `subscription_failed`, `auth_failed`,
//! `gave_up`, `user_stream_ended`, `error`, `unknown`) with its `type`, so a
//! reader sees where data is missing. The rows of a file are in capture
//! order; the `line` column (the event's line in its capture file) restores
//! the arrival order across the tables of one hour.
//!
//! # Types
//!
//! Every price, quantity and amount is `Decimal128(38, 18)` ([`PRECISION`],
//! [`SCALE`]): one type for every file, so the hours and venues of a table
//! read as one dataset. A value with more than 18 decimal places that are not
//! zeros, or with 21 or more integer digits, does not fit: the event is not
//! exported and reported as a [`Problem`] naming the column and the value
//! (never rounded). Times (`exchange_ts`, `receive_ts`, kline `open_time`,
//! `close_time`, `next_funding_ts`) are `Timestamp(Nanosecond, "UTC")`;
//! update ids are `UInt64`; trade and order ids stay strings as the venue
//! sent them. Book levels are `List<Struct{price, qty}>` in venue order.
//!
//! # Memory, crash safety, errors
//!
//! One capture file is converted at a time, read one zstd frame at a time.
//! Each table buffers at most [`ExportConfig::batch_rows`] rows or
//! [`ExportConfig::batch_bytes`] bytes before they go to the Parquet
//! writer, whose row groups end at [`ExportConfig::row_group_rows`] rows or
//! [`ExportConfig::row_group_bytes`] bytes; when the open row groups of an
//! hour together hold more than [`ExportConfig::memory_bytes`], the largest
//! is written out early.
//!
//! Each file is written under a temporary name in its directory
//! (`.<HH>.parquet.<pid>.tmp`), synced, and renamed: a file under its final
//! name is always complete. Converting an hour again replaces its files (and
//! removes those of tables the hour no longer has).
//!
//! A line that is not an event, a value that does not fit, or a corrupt or
//! torn frame is a [`Problem`] (file, line, what, the payload truncated);
//! the rest of the file is still converted (after a bad frame, what came
//! before it), as `ferrofeed replay` does. Only failures to write the output
//! are errors ([`ExportError`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::{Compression, Encoding, ZstdLevel};
use ::parquet::file::metadata::KeyValue;
use ::parquet::file::properties::WriterProperties;
use ::parquet::schema::types::ColumnPath;
use arrow_array::builder::{
    BooleanBuilder, Decimal128Builder, Int64Builder, StringBuilder, TimestampNanosecondBuilder, UInt64Builder,
};
use arrow_array::{ArrayRef, ListArray, RecordBatch, StructArray};
use arrow_buffer::{OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use ferrofeed_model::Decimal;
use ferrofeed_model::event::{Balance, Event, EventKind, Gap, Level, ListOrder, Missing, PositionSide, Side};
use serde::Serialize;

use crate::record::{RecordReader, SUFFIX, expand_paths};

/// Total digits of every decimal column.
pub const PRECISION: u8 = 38;
/// Digits after the point of every decimal column.
pub const SCALE: i8 = 18;
/// `10^PRECISION`: unscaled values must be smaller in magnitude.
const UNSCALED_LIMIT: u128 = 10u128.pow(PRECISION as u32);
/// File name suffix of the Parquet files.
pub const PARQUET_SUFFIX: &str = ".parquet";
/// At most this many bytes of an offending line are quoted in a [`Problem`].
const SNIPPET_BYTES: usize = 200;

/// `Decimal128(38, 18)`.
pub fn decimal_type() -> DataType {
    DataType::Decimal128(PRECISION, SCALE)
}

/// `Timestamp(Nanosecond, "UTC")`.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// The unscaled `Decimal128(38, 18)` value of `d`, or `None` when it cannot
/// be held exactly (more than 18 non-zero decimal places, or 21 or more
/// integer digits). Trailing zeros beyond the 18th place are dropped: the
/// value is unchanged.
pub fn decimal_to_i128(d: Decimal) -> Option<i128> {
    let m = d.mantissa();
    let shift = i32::try_from(d.scale()).ok()? - i32::from(SCALE);
    let v = if shift <= 0 {
        m.checked_mul(10i128.checked_pow(shift.unsigned_abs())?)?
    } else {
        let f = 10i128.checked_pow(shift.unsigned_abs())?;
        if m % f != 0 {
            return None;
        }
        m / f
    };
    (v.unsigned_abs() < UNSCALED_LIMIT).then_some(v)
}

// ---------------------------------------------------------------------------
// Tables and their columns

/// One Parquet table: an event type, or `status` for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Table {
    /// `trade`.
    Trade,
    /// `agg_trade`.
    AggTrade,
    /// `book_delta`.
    BookDelta,
    /// `book_snapshot`.
    BookSnapshot,
    /// `book_update`.
    BookUpdate,
    /// `top_of_book`.
    TopOfBook,
    /// `kline`.
    Kline,
    /// `ticker`.
    Ticker,
    /// `avg_price`.
    AvgPrice,
    /// `mark_price`.
    MarkPrice,
    /// `index_price`.
    IndexPrice,
    /// `open_interest`.
    OpenInterest,
    /// `liquidation`.
    Liquidation,
    /// `order_update` (private).
    OrderUpdate,
    /// `user_trade` (private).
    UserTrade,
    /// `order_list_update` (private).
    OrderListUpdate,
    /// `balance_update` (private).
    BalanceUpdate,
    /// `position_update` (private).
    PositionUpdate,
    /// Every other event, with its `type`: connection state, gaps, book
    /// resyncs, refusals, undecodable and unknown payloads.
    Status,
}

/// A column's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Str,
    Dec,
    Ts,
    U64,
    I64,
    Bool,
    /// `List<Struct{price, qty}>`.
    Levels,
    /// `List<Struct{symbol, order_id, client_order_id}>`.
    Orders,
    /// `List<Struct{asset, free, locked, delta, locked_delta, wallet_balance, cross_wallet_balance}>`.
    Balances,
}

#[derive(Debug, Clone, Copy)]
struct Col {
    name: &'static str,
    ty: Ty,
    nullable: bool,
}

const fn req(name: &'static str, ty: Ty) -> Col {
    Col { name, ty, nullable: false }
}

const fn opt(name: &'static str, ty: Ty) -> Col {
    Col { name, ty, nullable: true }
}

use Ty::{Bool, Dec, I64, Levels, Str, Ts, U64};

/// The first columns of every table.
const COMMON: &[Col] =
    &[req("venue", Str), req("market", Str), opt("symbol", Str), opt("exchange_ts", Ts), req("receive_ts", Ts)];

/// The last column of every table.
const LINE: Col = req("line", U64);

const TRADE: &[Col] = &[
    req("trade_id", Str),
    req("price", Dec),
    req("qty", Dec),
    req("side", Str),
    opt("trade_seq", U64),
    opt("liquidation", Str),
    opt("block_trade_id", Str),
    opt("combo_id", Str),
    opt("combo_trade_id", Str),
    opt("iv", Dec),
    opt("mark_price", Dec),
    opt("index_price", Dec),
];
const AGG_TRADE: &[Col] = &[
    req("trade_id", Str),
    req("price", Dec),
    req("qty", Dec),
    req("side", Str),
    req("first_trade_id", Str),
    req("last_trade_id", Str),
];
const BOOK_DELTA: &[Col] = &[
    req("first_update_id", U64),
    req("last_update_id", U64),
    opt("prev_update_id", U64),
    req("bids", Levels),
    req("asks", Levels),
];
const BOOK_SNAPSHOT: &[Col] = &[req("last_update_id", U64), req("bids", Levels), req("asks", Levels)];
const BOOK_UPDATE: &[Col] = &[
    req("first_update_id", U64),
    req("last_update_id", U64),
    req("bids", Levels),
    req("asks", Levels),
    opt("best_bid_price", Dec),
    opt("best_bid_qty", Dec),
    opt("best_ask_price", Dec),
    opt("best_ask_qty", Dec),
];
const TOP_OF_BOOK: &[Col] =
    &[req("update_id", U64), req("bid_price", Dec), req("bid_qty", Dec), req("ask_price", Dec), req("ask_qty", Dec)];
const KLINE: &[Col] = &[
    req("interval", Str),
    req("open_time", Ts),
    req("close_time", Ts),
    req("open", Dec),
    req("high", Dec),
    req("low", Dec),
    req("close", Dec),
    req("volume", Dec),
    req("quote_volume", Dec),
    opt("trades", U64),
    req("closed", Bool),
];
const TICKER: &[Col] = &[
    req("window", Str),
    opt("open", Dec),
    req("high", Dec),
    req("low", Dec),
    req("last_price", Dec),
    req("volume", Dec),
    req("quote_volume", Dec),
    opt("price_change", Dec),
    opt("bid_price", Dec),
    opt("ask_price", Dec),
    opt("price_change_pct", Dec),
];
const AVG_PRICE: &[Col] = &[req("interval", Str), req("price", Dec)];
const MARK_PRICE: &[Col] = &[
    req("mark_price", Dec),
    req("index_price", Dec),
    opt("funding_rate", Dec),
    opt("next_funding_ts", Ts),
    opt("funding_8h", Dec),
    opt("open_interest", Dec),
    opt("mark_iv", Dec),
    opt("bid_iv", Dec),
    opt("ask_iv", Dec),
    opt("underlying_price", Dec),
    opt("underlying_index", Str),
    opt("interest_rate", Dec),
    opt("delta", Dec),
    opt("gamma", Dec),
    opt("vega", Dec),
    opt("theta", Dec),
    opt("rho", Dec),
];
const INDEX_PRICE: &[Col] = &[req("price", Dec), opt("funding_rate", Dec)];
const OPEN_INTEREST: &[Col] = &[req("open_interest", Dec), opt("open_interest_value", Dec)];
const LIQUIDATION: &[Col] = &[req("side", Str), req("price", Dec), req("qty", Dec)];
const ORDER_UPDATE: &[Col] = &[
    req("order_id", Str),
    req("client_order_id", Str),
    opt("orig_client_order_id", Str),
    req("side", Str),
    req("order_type", Str),
    opt("time_in_force", Str),
    req("execution_type", Str),
    req("status", Str),
    opt("price", Dec),
    req("qty", Dec),
    req("filled_qty", Dec),
    opt("avg_price", Dec),
    opt("filled_quote_qty", Dec),
    opt("stop_price", Dec),
    opt("fill_trade_id", Str),
    opt("fill_price", Dec),
    opt("fill_qty", Dec),
    opt("fill_fee", Dec),
    opt("fill_fee_asset", Str),
    opt("fill_maker", Bool),
    opt("reject_reason", Str),
    opt("order_list_id", I64),
    opt("reduce_only", Bool),
    opt("position_side", Str),
    opt("close_position", Bool),
    opt("realized_pnl", Dec),
    opt("activation_price", Dec),
    opt("callback_rate", Dec),
];
const USER_TRADE: &[Col] = &[
    req("order_id", Str),
    req("client_order_id", Str),
    req("side", Str),
    req("trade_id", Str),
    req("price", Dec),
    req("qty", Dec),
    req("maker", Bool),
    opt("order_price", Dec),
    opt("order_qty", Dec),
    opt("fee", Dec),
    opt("fee_asset", Str),
];
const ORDER_LIST_UPDATE: &[Col] = &[
    req("order_list_id", I64),
    req("list_client_order_id", Str),
    req("contingency_type", Str),
    req("list_status", Str),
    req("list_order_status", Str),
    opt("reject_reason", Str),
    req("orders", Ty::Orders),
];
const BALANCE_UPDATE: &[Col] = &[opt("reason", Str), req("balances", Ty::Balances)];
const POSITION_UPDATE: &[Col] = &[
    opt("reason", Str),
    req("position_side", Str),
    req("amount", Dec),
    opt("entry_price", Dec),
    opt("breakeven_price", Dec),
    opt("unrealized_pnl", Dec),
    opt("realized_pnl", Dec),
    opt("margin_type", Str),
    opt("isolated_wallet", Dec),
];
const STATUS: &[Col] = &[
    req("type", Str),
    opt("stream", Str),
    opt("from", U64),
    opt("to", U64),
    opt("reason", Str),
    opt("last_update_id", U64),
    opt("code", I64),
    opt("msg", Str),
    opt("raw", Str),
];

/// The struct fields of a book level.
const LEVEL_FIELDS: &[Col] = &[req("price", Dec), req("qty", Dec)];
/// The struct fields of an order of an order list.
const ORDER_FIELDS: &[Col] = &[req("symbol", Str), req("order_id", Str), req("client_order_id", Str)];
/// The struct fields of a balance.
const BALANCE_FIELDS: &[Col] = &[
    req("asset", Str),
    opt("free", Dec),
    opt("locked", Dec),
    opt("delta", Dec),
    opt("locked_delta", Dec),
    opt("wallet_balance", Dec),
    opt("cross_wallet_balance", Dec),
];

fn struct_fields(cols: &[Col]) -> Fields {
    cols.iter().map(|c| Field::new(c.name, data_type(c.ty), c.nullable)).collect()
}

fn list_item(cols: &[Col]) -> FieldRef {
    Arc::new(Field::new("item", DataType::Struct(struct_fields(cols)), false))
}

fn data_type(ty: Ty) -> DataType {
    match ty {
        Ty::Str => DataType::Utf8,
        Ty::Dec => decimal_type(),
        Ty::Ts => timestamp_type(),
        Ty::U64 => DataType::UInt64,
        Ty::I64 => DataType::Int64,
        Ty::Bool => DataType::Boolean,
        Ty::Levels => DataType::List(list_item(LEVEL_FIELDS)),
        Ty::Orders => DataType::List(list_item(ORDER_FIELDS)),
        Ty::Balances => DataType::List(list_item(BALANCE_FIELDS)),
    }
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 19] = [
        Table::Trade,
        Table::AggTrade,
        Table::BookDelta,
        Table::BookSnapshot,
        Table::BookUpdate,
        Table::TopOfBook,
        Table::Kline,
        Table::Ticker,
        Table::AvgPrice,
        Table::MarkPrice,
        Table::IndexPrice,
        Table::OpenInterest,
        Table::Liquidation,
        Table::OrderUpdate,
        Table::UserTrade,
        Table::OrderListUpdate,
        Table::BalanceUpdate,
        Table::PositionUpdate,
        Table::Status,
    ];

    /// The directory name: the event type (`trade`, `book_update`, ...) or
    /// `status`.
    pub fn name(self) -> &'static str {
        match self {
            Table::Trade => "trade",
            Table::AggTrade => "agg_trade",
            Table::BookDelta => "book_delta",
            Table::BookSnapshot => "book_snapshot",
            Table::BookUpdate => "book_update",
            Table::TopOfBook => "top_of_book",
            Table::Kline => "kline",
            Table::Ticker => "ticker",
            Table::AvgPrice => "avg_price",
            Table::MarkPrice => "mark_price",
            Table::IndexPrice => "index_price",
            Table::OpenInterest => "open_interest",
            Table::Liquidation => "liquidation",
            Table::OrderUpdate => "order_update",
            Table::UserTrade => "user_trade",
            Table::OrderListUpdate => "order_list_update",
            Table::BalanceUpdate => "balance_update",
            Table::PositionUpdate => "position_update",
            Table::Status => "status",
        }
    }

    /// The table an event goes to.
    pub fn of(kind: &EventKind) -> Table {
        match kind {
            EventKind::Trade(_) => Table::Trade,
            EventKind::AggTrade(_) => Table::AggTrade,
            EventKind::BookDelta(_) => Table::BookDelta,
            EventKind::BookSnapshot(_) => Table::BookSnapshot,
            EventKind::BookUpdate(_) => Table::BookUpdate,
            EventKind::TopOfBook(_) => Table::TopOfBook,
            EventKind::Kline(_) => Table::Kline,
            EventKind::Ticker(_) => Table::Ticker,
            EventKind::AvgPrice(_) => Table::AvgPrice,
            EventKind::MarkPrice(_) => Table::MarkPrice,
            EventKind::IndexPrice(_) => Table::IndexPrice,
            EventKind::OpenInterest(_) => Table::OpenInterest,
            EventKind::Liquidation(_) => Table::Liquidation,
            EventKind::OrderUpdate(_) => Table::OrderUpdate,
            EventKind::UserTrade(_) => Table::UserTrade,
            EventKind::OrderListUpdate(_) => Table::OrderListUpdate,
            EventKind::BalanceUpdate(_) => Table::BalanceUpdate,
            EventKind::PositionUpdate(_) => Table::PositionUpdate,
            _ => Table::Status,
        }
    }

    fn own_columns(self) -> &'static [Col] {
        match self {
            Table::Trade => TRADE,
            Table::AggTrade => AGG_TRADE,
            Table::BookDelta => BOOK_DELTA,
            Table::BookSnapshot => BOOK_SNAPSHOT,
            Table::BookUpdate => BOOK_UPDATE,
            Table::TopOfBook => TOP_OF_BOOK,
            Table::Kline => KLINE,
            Table::Ticker => TICKER,
            Table::AvgPrice => AVG_PRICE,
            Table::MarkPrice => MARK_PRICE,
            Table::IndexPrice => INDEX_PRICE,
            Table::OpenInterest => OPEN_INTEREST,
            Table::Liquidation => LIQUIDATION,
            Table::OrderUpdate => ORDER_UPDATE,
            Table::UserTrade => USER_TRADE,
            Table::OrderListUpdate => ORDER_LIST_UPDATE,
            Table::BalanceUpdate => BALANCE_UPDATE,
            Table::PositionUpdate => POSITION_UPDATE,
            Table::Status => STATUS,
        }
    }

    fn columns(self) -> impl Iterator<Item = &'static Col> {
        COMMON.iter().chain(self.own_columns()).chain(std::iter::once(&LINE))
    }

    /// The Arrow schema of the table's files: `venue`, `market`, `symbol`,
    /// `exchange_ts`, `receive_ts`, the type's own columns, then `line`.
    pub fn schema(self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns().map(|c| Field::new(c.name, data_type(c.ty), c.nullable)).collect::<Vec<_>>(),
        ))
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------
// Rows

/// One value of a row, in column order.
#[derive(Debug)]
enum Val<'a> {
    Str(Option<Cow<'a, str>>),
    Dec(Option<i128>),
    Ts(Option<i64>),
    U64(Option<u64>),
    I64(Option<i64>),
    Bool(Option<bool>),
    Levels(Vec<[i128; 2]>),
    Orders(&'a [ListOrder]),
    Balances(Vec<(&'a str, [Option<i128>; 6])>),
}

impl Val<'_> {
    /// A rough size in memory, for bounding a batch.
    fn size(&self) -> usize {
        match self {
            Val::Str(s) => 8 + s.as_ref().map_or(0, |s| s.len()),
            Val::Dec(_) => 16,
            Val::Levels(l) => 8 + 32 * l.len(),
            Val::Orders(o) => {
                8 + o.iter().map(|o| 24 + o.symbol.len() + o.order_id.len() + o.client_order_id.len()).sum::<usize>()
            }
            Val::Balances(b) => 8 + b.iter().map(|(a, _)| 104 + a.len()).sum::<usize>(),
            _ => 8,
        }
    }
}

/// A value that does not fit `Decimal128(38, 18)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfit {
    /// The column (`price`, `bids.qty`, ...).
    pub column: &'static str,
    /// The value, exactly as captured.
    pub value: Decimal,
}

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} does not fit Decimal128({PRECISION}, {SCALE}) exactly (at most {} integer digits and {SCALE} decimal places); not rounded",
            self.column,
            self.value,
            i32::from(PRECISION) - i32::from(SCALE)
        )
    }
}

fn dec(column: &'static str, v: Decimal) -> Result<i128, Unfit> {
    decimal_to_i128(v).ok_or(Unfit { column, value: v })
}

fn dec_opt(column: &'static str, v: Option<Decimal>) -> Result<Option<i128>, Unfit> {
    v.map(|v| dec(column, v)).transpose()
}

fn side(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn position_side(s: PositionSide) -> &'static str {
    match s {
        PositionSide::Both => "both",
        PositionSide::Long => "long",
        PositionSide::Short => "short",
    }
}

/// The values of a row, pushed in column order.
#[derive(Debug, Default)]
struct Row<'a>(Vec<Val<'a>>);

impl<'a> Row<'a> {
    fn s(&mut self, v: &'a str) {
        self.0.push(Val::Str(Some(Cow::Borrowed(v))));
    }
    fn os(&mut self, v: Option<&'a str>) {
        self.0.push(Val::Str(v.map(Cow::Borrowed)));
    }
    fn d(&mut self, column: &'static str, v: Decimal) -> Result<(), Unfit> {
        self.0.push(Val::Dec(Some(dec(column, v)?)));
        Ok(())
    }
    fn od(&mut self, column: &'static str, v: Option<Decimal>) -> Result<(), Unfit> {
        self.0.push(Val::Dec(dec_opt(column, v)?));
        Ok(())
    }
    fn ts(&mut self, v: Option<i64>) {
        self.0.push(Val::Ts(v));
    }
    fn u(&mut self, v: Option<u64>) {
        self.0.push(Val::U64(v));
    }
    fn i(&mut self, v: Option<i64>) {
        self.0.push(Val::I64(v));
    }
    fn b(&mut self, v: Option<bool>) {
        self.0.push(Val::Bool(v));
    }
    fn levels(&mut self, column: &'static str, levels: &[Level]) -> Result<(), Unfit> {
        let v = levels.iter().map(|l| Ok([dec(column, l.price)?, dec(column, l.qty)?])).collect::<Result<_, _>>()?;
        self.0.push(Val::Levels(v));
        Ok(())
    }
    fn best(&mut self, price: &'static str, qty: &'static str, l: Option<&Level>) -> Result<(), Unfit> {
        self.od(price, l.map(|l| l.price))?;
        self.od(qty, l.map(|l| l.qty))
    }
    fn balances(&mut self, bs: &'a [Balance]) -> Result<(), Unfit> {
        let v = bs
            .iter()
            .map(|b| {
                Ok((
                    b.asset.as_str(),
                    [
                        dec_opt("balances.free", b.free)?,
                        dec_opt("balances.locked", b.locked)?,
                        dec_opt("balances.delta", b.delta)?,
                        dec_opt("balances.locked_delta", b.locked_delta)?,
                        dec_opt("balances.wallet_balance", b.wallet_balance)?,
                        dec_opt("balances.cross_wallet_balance", b.cross_wallet_balance)?,
                    ],
                ))
            })
            .collect::<Result<_, Unfit>>()?;
        self.0.push(Val::Balances(v));
        Ok(())
    }
}

/// The optional columns of a `status` row.
#[derive(Debug, Default)]
struct Status<'a> {
    stream: Option<&'a str>,
    from: Option<u64>,
    to: Option<u64>,
    reason: Option<&'a str>,
    last_update_id: Option<u64>,
    code: Option<i64>,
    msg: Option<&'a str>,
    raw: Option<Cow<'a, str>>,
}

impl<'a> Row<'a> {
    fn status(&mut self, type_name: &'static str, s: Status<'a>) -> Table {
        self.s(type_name);
        self.os(s.stream);
        self.u(s.from);
        self.u(s.to);
        self.os(s.reason);
        self.u(s.last_update_id);
        self.i(s.code);
        self.os(s.msg);
        self.0.push(Val::Str(s.raw));
        Table::Status
    }
}

/// The table and values of one event, `line` being its line in the capture
/// file.
fn row(ev: &Event, line: u64) -> Result<(Table, Row<'_>), Unfit> {
    let mut r = Row(Vec::with_capacity(16));
    r.s(ev.venue.name());
    r.s(ev.market.name());
    r.os(ev.symbol.as_deref());
    r.ts(ev.exchange_ts);
    r.ts(Some(ev.receive_ts));
    let table = match &ev.kind {
        EventKind::Trade(t) => {
            r.s(&t.trade_id);
            r.d("price", t.price)?;
            r.d("qty", t.qty)?;
            r.s(side(t.side));
            r.u(t.trade_seq);
            let x = t.extra();
            r.os(x.liquidation.as_deref());
            r.os(x.block_trade_id.as_deref());
            r.os(x.combo_id.as_deref());
            r.os(x.combo_trade_id.as_deref());
            r.od("iv", x.iv)?;
            r.od("mark_price", x.mark_price)?;
            r.od("index_price", x.index_price)?;
            Table::Trade
        }
        EventKind::AggTrade(t) => {
            r.s(&t.trade_id);
            r.d("price", t.price)?;
            r.d("qty", t.qty)?;
            r.s(side(t.side));
            r.s(&t.first_trade_id);
            r.s(&t.last_trade_id);
            Table::AggTrade
        }
        EventKind::BookDelta(b) => {
            r.u(Some(b.first_update_id));
            r.u(Some(b.last_update_id));
            r.u(b.prev_update_id);
            r.levels("bids", &b.bids)?;
            r.levels("asks", &b.asks)?;
            Table::BookDelta
        }
        EventKind::BookSnapshot(b) => {
            r.u(Some(b.last_update_id));
            r.levels("bids", &b.bids)?;
            r.levels("asks", &b.asks)?;
            Table::BookSnapshot
        }
        EventKind::BookUpdate(b) => {
            r.u(Some(b.first_update_id));
            r.u(Some(b.last_update_id));
            r.levels("bids", &b.bids)?;
            r.levels("asks", &b.asks)?;
            r.best("best_bid_price", "best_bid_qty", b.best_bid.as_ref())?;
            r.best("best_ask_price", "best_ask_qty", b.best_ask.as_ref())?;
            Table::BookUpdate
        }
        EventKind::TopOfBook(t) => {
            r.u(Some(t.update_id));
            r.d("bid_price", t.bid_price)?;
            r.d("bid_qty", t.bid_qty)?;
            r.d("ask_price", t.ask_price)?;
            r.d("ask_qty", t.ask_qty)?;
            Table::TopOfBook
        }
        EventKind::Kline(k) => {
            r.s(&k.interval);
            r.ts(Some(k.open_time));
            r.ts(Some(k.close_time));
            r.d("open", k.open)?;
            r.d("high", k.high)?;
            r.d("low", k.low)?;
            r.d("close", k.close)?;
            r.d("volume", k.volume)?;
            r.d("quote_volume", k.quote_volume)?;
            r.u(k.trades);
            r.b(Some(k.closed));
            Table::Kline
        }
        EventKind::Ticker(t) => {
            r.s(&t.window);
            r.od("open", t.open)?;
            r.d("high", t.high)?;
            r.d("low", t.low)?;
            r.d("last_price", t.last_price)?;
            r.d("volume", t.volume)?;
            r.d("quote_volume", t.quote_volume)?;
            r.od("price_change", t.price_change)?;
            r.od("bid_price", t.bid_price)?;
            r.od("ask_price", t.ask_price)?;
            r.od("price_change_pct", t.price_change_pct)?;
            Table::Ticker
        }
        EventKind::AvgPrice(a) => {
            r.s(&a.interval);
            r.d("price", a.price)?;
            Table::AvgPrice
        }
        EventKind::MarkPrice(m) => {
            r.d("mark_price", m.mark_price)?;
            r.d("index_price", m.index_price)?;
            r.od("funding_rate", m.funding_rate)?;
            r.ts(m.next_funding_ts);
            r.od("funding_8h", m.funding_8h)?;
            r.od("open_interest", m.open_interest)?;
            r.od("mark_iv", m.mark_iv)?;
            r.od("bid_iv", m.bid_iv)?;
            r.od("ask_iv", m.ask_iv)?;
            r.od("underlying_price", m.underlying_price)?;
            r.os(m.underlying_index.as_deref());
            r.od("interest_rate", m.interest_rate)?;
            r.od("delta", m.delta)?;
            r.od("gamma", m.gamma)?;
            r.od("vega", m.vega)?;
            r.od("theta", m.theta)?;
            r.od("rho", m.rho)?;
            Table::MarkPrice
        }
        EventKind::IndexPrice(i) => {
            r.d("price", i.price)?;
            r.od("funding_rate", i.funding_rate)?;
            Table::IndexPrice
        }
        EventKind::OpenInterest(o) => {
            r.d("open_interest", o.open_interest)?;
            r.od("open_interest_value", o.open_interest_value)?;
            Table::OpenInterest
        }
        EventKind::Liquidation(l) => {
            r.s(side(l.side));
            r.d("price", l.price)?;
            r.d("qty", l.qty)?;
            Table::Liquidation
        }
        EventKind::OrderUpdate(o) => {
            r.s(&o.order_id);
            r.s(&o.client_order_id);
            r.os(o.orig_client_order_id.as_deref());
            r.s(side(o.side));
            r.s(&o.order_type);
            r.os(o.time_in_force.as_deref());
            r.s(&o.execution_type);
            r.s(&o.status);
            r.od("price", o.price)?;
            r.d("qty", o.qty)?;
            r.d("filled_qty", o.filled_qty)?;
            r.od("avg_price", o.avg_price)?;
            r.od("filled_quote_qty", o.filled_quote_qty)?;
            r.od("stop_price", o.stop_price)?;
            let fill = o.fill.as_ref();
            r.os(fill.map(|f| f.trade_id.as_str()));
            r.od("fill_price", fill.map(|f| f.price))?;
            r.od("fill_qty", fill.map(|f| f.qty))?;
            r.od("fill_fee", fill.map(|f| f.fee))?;
            r.os(fill.and_then(|f| f.fee_asset.as_deref()));
            r.b(fill.map(|f| f.maker));
            r.os(o.reject_reason.as_deref());
            r.i(o.order_list_id);
            r.b(o.reduce_only);
            r.os(o.position_side.map(position_side));
            r.b(o.close_position);
            r.od("realized_pnl", o.realized_pnl)?;
            r.od("activation_price", o.activation_price)?;
            r.od("callback_rate", o.callback_rate)?;
            Table::OrderUpdate
        }
        EventKind::UserTrade(t) => {
            r.s(&t.order_id);
            r.s(&t.client_order_id);
            r.s(side(t.side));
            r.s(&t.trade_id);
            r.d("price", t.price)?;
            r.d("qty", t.qty)?;
            r.b(Some(t.maker));
            r.od("order_price", t.order_price)?;
            r.od("order_qty", t.order_qty)?;
            r.od("fee", t.fee)?;
            r.os(t.fee_asset.as_deref());
            Table::UserTrade
        }
        EventKind::OrderListUpdate(l) => {
            r.i(Some(l.order_list_id));
            r.s(&l.list_client_order_id);
            r.s(&l.contingency_type);
            r.s(&l.list_status);
            r.s(&l.list_order_status);
            r.os(l.reject_reason.as_deref());
            r.0.push(Val::Orders(&l.orders));
            Table::OrderListUpdate
        }
        EventKind::BalanceUpdate(b) => {
            r.os(b.reason.as_deref());
            r.balances(&b.balances)?;
            Table::BalanceUpdate
        }
        EventKind::PositionUpdate(p) => {
            r.os(p.reason.as_deref());
            r.s(position_side(p.position_side));
            r.d("amount", p.amount)?;
            r.od("entry_price", p.entry_price)?;
            r.od("breakeven_price", p.breakeven_price)?;
            r.od("unrealized_pnl", p.unrealized_pnl)?;
            r.od("realized_pnl", p.realized_pnl)?;
            r.os(p.margin_type.as_deref());
            r.od("isolated_wallet", p.isolated_wallet)?;
            Table::PositionUpdate
        }
        kind @ EventKind::BookResync(b) => r.status(
            kind.type_name(),
            Status { reason: Some(&b.reason), last_update_id: b.last_update_id, ..Status::default() },
        ),
        kind @ EventKind::Gap(Gap { stream, missing }) => {
            let (from, to) = match missing {
                Missing::Range { from, to } => (Some(*from), Some(*to)),
                Missing::Unknown { .. } => (None, None),
            };
            r.status(kind.type_name(), Status { stream: Some(stream), from, to, ..Status::default() })
        }
        kind @ (EventKind::Disconnected { reason }
        | EventKind::GaveUp { reason }
        | EventKind::UserStreamEnded { reason }) => {
            r.status(kind.type_name(), Status { reason: Some(reason), ..Status::default() })
        }
        kind @ EventKind::SubscriptionFailed { stream, code, msg } => r.status(
            kind.type_name(),
            Status { stream: Some(stream), code: Some(*code), msg: Some(msg), ..Status::default() },
        ),
        kind @ EventKind::AuthFailed { msg } => {
            r.status(kind.type_name(), Status { msg: Some(msg), ..Status::default() })
        }
        kind @ EventKind::Error { msg, raw } => {
            r.status(kind.type_name(), Status { msg: Some(msg), raw: Some(Cow::Borrowed(raw)), ..Status::default() })
        }
        kind @ EventKind::Unknown { raw } => {
            r.status(kind.type_name(), Status { raw: Some(Cow::Borrowed(raw)), ..Status::default() })
        }
        kind @ (EventKind::Connected | EventKind::Reconnected) => r.status(kind.type_name(), Status::default()),
        // A kind this version does not know: its whole JSON line, so nothing is lost.
        kind => r.status(
            kind.type_name(),
            Status { raw: Some(Cow::Owned(serde_json::to_string(ev).unwrap_or_default())), ..Status::default() },
        ),
    };
    r.u(Some(line));
    Ok((table, r))
}

// ---------------------------------------------------------------------------
// Column builders

/// Offsets of a list column, starting at 0.
fn push_offset(offsets: &mut Vec<i32>, n: usize) -> Result<(), ExportError> {
    let last = offsets.last().copied().unwrap_or(0);
    let next = i32::try_from(n).ok().and_then(|n| last.checked_add(n));
    offsets.push(next.ok_or_else(|| ExportError::Internal("a list column exceeds 2^31 elements in one batch".into()))?);
    Ok(())
}

fn take_offsets(offsets: &mut Vec<i32>) -> OffsetBuffer<i32> {
    // Monotonic by construction (push_offset only adds non-negative counts).
    OffsetBuffer::new(ScalarBuffer::from(std::mem::replace(offsets, vec![0])))
}

fn finish_dec(b: &mut Decimal128Builder) -> Result<ArrayRef, ArrowError> {
    Ok(Arc::new(b.finish().with_precision_and_scale(PRECISION, SCALE)?))
}

#[derive(Debug)]
enum Builder {
    Str(StringBuilder),
    Dec(Decimal128Builder),
    Ts(TimestampNanosecondBuilder),
    U64(UInt64Builder),
    I64(Int64Builder),
    Bool(BooleanBuilder),
    Levels { offsets: Vec<i32>, price: Decimal128Builder, qty: Decimal128Builder },
    Orders { offsets: Vec<i32>, symbol: StringBuilder, order_id: StringBuilder, client_order_id: StringBuilder },
    Balances { offsets: Vec<i32>, asset: StringBuilder, values: Vec<Decimal128Builder> },
}

impl Builder {
    fn new(ty: Ty) -> Builder {
        match ty {
            Ty::Str => Builder::Str(StringBuilder::new()),
            Ty::Dec => Builder::Dec(Decimal128Builder::new()),
            Ty::Ts => Builder::Ts(TimestampNanosecondBuilder::new()),
            Ty::U64 => Builder::U64(UInt64Builder::new()),
            Ty::I64 => Builder::I64(Int64Builder::new()),
            Ty::Bool => Builder::Bool(BooleanBuilder::new()),
            Ty::Levels => {
                Builder::Levels { offsets: vec![0], price: Decimal128Builder::new(), qty: Decimal128Builder::new() }
            }
            Ty::Orders => Builder::Orders {
                offsets: vec![0],
                symbol: StringBuilder::new(),
                order_id: StringBuilder::new(),
                client_order_id: StringBuilder::new(),
            },
            Ty::Balances => Builder::Balances {
                offsets: vec![0],
                asset: StringBuilder::new(),
                values: (0..BALANCE_FIELDS.len() - 1).map(|_| Decimal128Builder::new()).collect(),
            },
        }
    }

    fn append(&mut self, v: Val<'_>) -> Result<(), ExportError> {
        match (self, v) {
            (Builder::Str(b), Val::Str(s)) => b.append_option(s),
            (Builder::Dec(b), Val::Dec(d)) => b.append_option(d),
            (Builder::Ts(b), Val::Ts(t)) => b.append_option(t),
            (Builder::U64(b), Val::U64(u)) => b.append_option(u),
            (Builder::I64(b), Val::I64(i)) => b.append_option(i),
            (Builder::Bool(b), Val::Bool(x)) => b.append_option(x),
            (Builder::Levels { offsets, price, qty }, Val::Levels(levels)) => {
                for [p, q] in &levels {
                    price.append_value(*p);
                    qty.append_value(*q);
                }
                push_offset(offsets, levels.len())?;
            }
            (Builder::Orders { offsets, symbol, order_id, client_order_id }, Val::Orders(orders)) => {
                for o in orders {
                    symbol.append_value(&o.symbol);
                    order_id.append_value(&o.order_id);
                    client_order_id.append_value(&o.client_order_id);
                }
                push_offset(offsets, orders.len())?;
            }
            (Builder::Balances { offsets, asset, values }, Val::Balances(balances)) => {
                for (a, vs) in &balances {
                    asset.append_value(a);
                    for (b, v) in values.iter_mut().zip(vs) {
                        b.append_option(*v);
                    }
                }
                push_offset(offsets, balances.len())?;
            }
            (_, v) => return Err(ExportError::Internal(format!("a value does not match its column: {v:?}"))),
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Dec(b) => finish_dec(b)?,
            Builder::Ts(b) => Arc::new(b.finish().with_timezone("UTC")),
            Builder::U64(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Levels { offsets, price, qty } => {
                let s = StructArray::try_new(
                    struct_fields(LEVEL_FIELDS),
                    vec![finish_dec(price)?, finish_dec(qty)?],
                    None,
                )?;
                Arc::new(ListArray::try_new(list_item(LEVEL_FIELDS), take_offsets(offsets), Arc::new(s), None)?)
            }
            Builder::Orders { offsets, symbol, order_id, client_order_id } => {
                let cols: Vec<ArrayRef> =
                    vec![Arc::new(symbol.finish()), Arc::new(order_id.finish()), Arc::new(client_order_id.finish())];
                let s = StructArray::try_new(struct_fields(ORDER_FIELDS), cols, None)?;
                Arc::new(ListArray::try_new(list_item(ORDER_FIELDS), take_offsets(offsets), Arc::new(s), None)?)
            }
            Builder::Balances { offsets, asset, values } => {
                let mut cols: Vec<ArrayRef> = vec![Arc::new(asset.finish())];
                for b in values.iter_mut() {
                    cols.push(finish_dec(b)?);
                }
                let s = StructArray::try_new(struct_fields(BALANCE_FIELDS), cols, None)?;
                Arc::new(ListArray::try_new(list_item(BALANCE_FIELDS), take_offsets(offsets), Arc::new(s), None)?)
            }
        })
    }
}

// ---------------------------------------------------------------------------
// Configuration, reports, errors

/// How an hour is converted: batch, row-group and memory bounds.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// Rows a table buffers before handing them to its Parquet writer.
    pub batch_rows: usize,
    /// Bytes (estimated) a table buffers before handing them on.
    pub batch_bytes: usize,
    /// Most rows in one row group.
    pub row_group_rows: usize,
    /// Most bytes (encoded estimate) in one row group.
    pub row_group_bytes: usize,
    /// When the open row groups of an hour's tables together hold more than
    /// this (the writers' own estimate of their memory), the largest one is
    /// written out.
    pub memory_bytes: usize,
    /// zstd level of the Parquet pages (1–22).
    pub zstd_level: i32,
}

impl Default for ExportConfig {
    fn default() -> ExportConfig {
        ExportConfig {
            batch_rows: 8192,
            batch_bytes: 4 << 20,
            row_group_rows: 128 * 1024,
            row_group_bytes: 32 << 20,
            memory_bytes: 64 << 20,
            zstd_level: 3,
        }
    }
}

/// Something in a capture that was not converted; the rest was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The capture file.
    pub file: PathBuf,
    /// The line (1-based), when the problem is one line.
    pub line: Option<u64>,
    /// What is wrong, with the offending payload (truncated).
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(n) => write!(f, "{}: line {n}: {}", self.file.display(), self.what),
            None => write!(f, "{}: {}", self.file.display(), self.what),
        }
    }
}

/// At most [`SNIPPET_BYTES`] of `s` (on a character boundary), marked when cut.
fn snippet(s: &str) -> String {
    if s.len() <= SNIPPET_BYTES {
        return s.to_string();
    }
    let mut end = SNIPPET_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len())
}

/// Failures to write the output (the input's problems are [`Problem`]s).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// An I/O error on a file or directory.
    #[error("{}: {err}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        err: std::io::Error,
    },
    /// The Parquet or Arrow writer failed.
    #[error("{}: {msg}", path.display())]
    Parquet {
        /// The file being written.
        path: PathBuf,
        /// The writer's message.
        msg: String,
    },
    /// The path is not a capture file of the `record` layout.
    #[error("{}: not a capture file (expected <venue>/<market>/<YYYY-MM-DD>/<HH>{SUFFIX})", path.display())]
    NotACapture {
        /// The path.
        path: PathBuf,
    },
    /// An invalid configuration value.
    #[error("{0}")]
    Config(String),
    /// A bug: a row did not match its schema.
    #[error("internal error: {0}")]
    Internal(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |err| ExportError::Io { path: path.to_path_buf(), err }
}

fn pq_err<E: fmt::Display>(path: &Path) -> impl FnOnce(E) -> ExportError + '_ {
    move |e| ExportError::Parquet { path: path.to_path_buf(), msg: e.to_string() }
}

/// Where a capture file sits: `<venue>/<market>/<YYYY-MM-DD>/<HH>.jsonl.zst`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CaptureHour {
    /// The venue directory (`binance`).
    pub venue: String,
    /// The market directory (`spot`).
    pub market: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// `HH`.
    pub hour: String,
}

impl CaptureHour {
    /// Reads the last four components of a capture file's path; `None` when
    /// they are not the `record` layout.
    pub fn from_path(path: &Path) -> Option<CaptureHour> {
        let mut parts = path.components().rev().map(|c| c.as_os_str().to_str());
        let file = parts.next()??;
        let date = parts.next()??;
        let market = parts.next()??;
        let venue = parts.next()??;
        let hour = file.strip_suffix(SUFFIX)?;
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let hour_ok = hour.len() == 2 && digits(hour) && hour < "24";
        let d = date.as_bytes();
        let date_ok = d.len() == 10
            && d[4] == b'-'
            && d[7] == b'-'
            && digits(&date[..4])
            && digits(&date[5..7])
            && digits(&date[8..]);
        let name_ok = |s: &str| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        };
        (hour_ok && date_ok && name_ok(venue) && name_ok(market)).then(|| CaptureHour {
            venue: venue.into(),
            market: market.into(),
            date: date.into(),
            hour: hour.into(),
        })
    }

    /// `<venue>/<market>/<YYYY-MM-DD>/<HH>.jsonl.zst`.
    pub fn capture_name(&self) -> String {
        format!("{}/{}/{}/{}{SUFFIX}", self.venue, self.market, self.date, self.hour)
    }

    /// `<YYYY-MM-DD>/<HH>`: sorts in time order.
    pub fn key(&self) -> String {
        format!("{}/{}", self.date, self.hour)
    }

    /// `OUT/<venue>/<market>/<table>/<YYYY-MM-DD>/<HH>.parquet`.
    pub fn output(&self, out: &Path, table: Table) -> PathBuf {
        out.join(&self.venue)
            .join(&self.market)
            .join(table.name())
            .join(&self.date)
            .join(format!("{}{PARQUET_SUFFIX}", self.hour))
    }
}

/// What converting one capture file did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HourReport {
    /// The capture file, `<venue>/<market>/<YYYY-MM-DD>/<HH>.jsonl.zst`.
    pub capture: String,
    /// Events converted (rows written).
    pub events: u64,
    /// Lines or frames not converted (each reported as a [`Problem`]).
    pub problems: u64,
    /// Whether the whole file was read (no corrupt or torn frame).
    pub complete: bool,
    /// Rows per table.
    pub rows: BTreeMap<String, u64>,
    /// The Parquet files written, relative to the output directory.
    pub files: Vec<String>,
    /// The capture file's size.
    pub bytes_in: u64,
    /// Its JSON text (decompressed).
    pub json_bytes: u64,
    /// The Parquet files' sizes.
    pub bytes_out: u64,
}

/// What converting a directory did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportSummary {
    /// Capture files converted.
    pub hours: u64,
    /// Events converted.
    pub events: u64,
    /// Lines, frames or files not converted.
    pub problems: u64,
    /// Rows per table.
    pub rows: BTreeMap<String, u64>,
    /// Parquet files written.
    pub files: u64,
    /// Capture bytes read (compressed).
    pub bytes_in: u64,
    /// Their JSON text (decompressed).
    pub json_bytes: u64,
    /// Parquet bytes written.
    pub bytes_out: u64,
    /// Wall time.
    pub duration_s: f64,
    /// Events converted per second.
    pub events_per_s: f64,
}

impl ExportSummary {
    /// Adds one hour.
    pub fn add(&mut self, h: &HourReport) {
        self.hours += 1;
        self.events += h.events;
        self.problems += h.problems;
        for (t, n) in &h.rows {
            *self.rows.entry(t.clone()).or_default() += n;
        }
        self.files += h.files.len() as u64;
        self.bytes_in += h.bytes_in;
        self.json_bytes += h.json_bytes;
        self.bytes_out += h.bytes_out;
    }
}

impl ExportConfig {
    fn check(&self) -> Result<(), ExportError> {
        if [self.batch_rows, self.batch_bytes, self.row_group_rows, self.row_group_bytes, self.memory_bytes]
            .contains(&0)
        {
            return Err(ExportError::Config("batch, row-group and memory bounds must be positive".into()));
        }
        ZstdLevel::try_new(self.zstd_level).map_err(|e| ExportError::Config(format!("zstd level: {e}")))?;
        Ok(())
    }

    /// The writer settings of one table's files: zstd pages; integer and
    /// time columns (ids, `line`, timestamps: mostly increasing, mostly
    /// distinct) delta-encoded instead of dictionary-encoded.
    fn properties(&self, source: &str, table: Table) -> Result<WriterProperties, ExportError> {
        let level = ZstdLevel::try_new(self.zstd_level).map_err(|e| ExportError::Config(format!("zstd level: {e}")))?;
        let mut b = WriterProperties::builder();
        for c in table.columns().filter(|c| matches!(c.ty, Ty::Ts | Ty::U64 | Ty::I64)) {
            b = b
                .set_column_dictionary_enabled(ColumnPath::from(c.name), false)
                .set_column_encoding(ColumnPath::from(c.name), Encoding::DELTA_BINARY_PACKED);
        }
        Ok(b.set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(self.row_group_rows.max(1)))
            .set_max_row_group_bytes(Some(self.row_group_bytes.max(1)))
            .set_created_by(format!("ferrofeed {} (parquet-rs)", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(vec![KeyValue::new("ferrofeed.capture".into(), source.to_string())]))
            .build())
    }
}

// ---------------------------------------------------------------------------
// Writing one hour

/// One table's file of one hour being written.
struct TableFile {
    builders: Vec<Builder>,
    schema: SchemaRef,
    buffered_rows: usize,
    buffered_bytes: usize,
    rows: u64,
    writer: Option<ArrowWriter<File>>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl fmt::Debug for TableFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableFile").field("dest", &self.dest).field("rows", &self.rows).finish_non_exhaustive()
    }
}

impl Drop for TableFile {
    fn drop(&mut self) {
        // Not finished: the temporary file goes (a finished one was renamed).
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Best-effort sync of a directory entry (not possible on every platform).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl TableFile {
    fn create(table: Table, dest: PathBuf, props: WriterProperties) -> Result<TableFile, ExportError> {
        let dir = dest.parent().map(Path::to_path_buf).unwrap_or_default();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("hour");
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file = File::create(&tmp).map_err(io_err(&tmp))?;
        let schema = table.schema();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(pq_err(&tmp));
        let writer = match writer {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        Ok(TableFile {
            builders: table.columns().map(|c| Builder::new(c.ty)).collect(),
            schema,
            buffered_rows: 0,
            buffered_bytes: 0,
            rows: 0,
            writer: Some(writer),
            tmp,
            dest,
        })
    }

    fn push(&mut self, row: Row<'_>) -> Result<(), ExportError> {
        if row.0.len() != self.builders.len() {
            return Err(ExportError::Internal(format!(
                "{} values for {} columns of {}",
                row.0.len(),
                self.builders.len(),
                self.dest.display()
            )));
        }
        for (b, v) in self.builders.iter_mut().zip(row.0) {
            self.buffered_bytes += v.size();
            b.append(v)?;
        }
        self.buffered_rows += 1;
        self.rows += 1;
        Ok(())
    }

    /// Hands the buffered rows to the Parquet writer as one batch.
    fn write_batch(&mut self) -> Result<(), ExportError> {
        if self.buffered_rows == 0 {
            return Ok(());
        }
        let cols =
            self.builders.iter_mut().map(Builder::finish).collect::<Result<Vec<_>, _>>().map_err(pq_err(&self.tmp))?;
        let batch = RecordBatch::try_new(self.schema.clone(), cols).map_err(pq_err(&self.tmp))?;
        let Some(w) = self.writer.as_mut() else { return Ok(()) };
        w.write(&batch).map_err(pq_err(&self.tmp))?;
        self.buffered_rows = 0;
        self.buffered_bytes = 0;
        Ok(())
    }

    fn memory(&self) -> usize {
        self.buffered_bytes + self.writer.as_ref().map_or(0, ArrowWriter::memory_size)
    }

    /// Ends the open row group.
    fn flush_row_group(&mut self) -> Result<(), ExportError> {
        self.write_batch()?;
        match self.writer.as_mut() {
            Some(w) => w.flush().map_err(pq_err(&self.tmp)),
            None => Ok(()),
        }
    }

    /// Writes the footer, syncs and renames to the final name; returns the size.
    fn finish(mut self) -> Result<u64, ExportError> {
        self.write_batch()?;
        let Some(w) = self.writer.take() else { return Ok(0) };
        let tmp = self.tmp.clone();
        let done = w.into_inner().map_err(pq_err(&tmp)).and_then(|f| {
            f.sync_all().map_err(io_err(&tmp))?;
            let len = f.metadata().map_err(io_err(&tmp))?.len();
            std::fs::rename(&tmp, &self.dest).map_err(io_err(&self.dest))?;
            Ok(len)
        });
        if done.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        done
    }
}

/// The tables of one hour being written.
struct HourFiles<'c> {
    cfg: &'c ExportConfig,
    out: PathBuf,
    at: CaptureHour,
    tables: BTreeMap<Table, TableFile>,
}

impl HourFiles<'_> {
    fn push(&mut self, table: Table, row: Row<'_>) -> Result<(), ExportError> {
        let f = match self.tables.entry(table) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let props = self.cfg.properties(&self.at.capture_name(), table)?;
                e.insert(TableFile::create(table, self.at.output(&self.out, table), props)?)
            }
        };
        f.push(row)?;
        if f.buffered_rows >= self.cfg.batch_rows || f.buffered_bytes >= self.cfg.batch_bytes {
            f.write_batch()?;
            let total: usize = self.tables.values().map(TableFile::memory).sum();
            if total > self.cfg.memory_bytes
                && let Some(biggest) = self.tables.values_mut().max_by_key(|t| t.memory())
            {
                biggest.flush_row_group()?;
            }
        }
        Ok(())
    }

    /// Finishes every file; with `complete`, removes the files of tables this
    /// hour no longer has (left by an earlier conversion).
    fn finish(mut self, complete: bool, report: &mut HourReport) -> Result<(), ExportError> {
        let mut dirs = std::collections::BTreeSet::new();
        for (table, f) in std::mem::take(&mut self.tables) {
            let rows = f.rows;
            let dest = f.dest.clone();
            report.bytes_out += f.finish()?;
            report.rows.insert(table.name().to_string(), rows);
            report.files.push(display_rel(dest.strip_prefix(&self.out).unwrap_or(&dest)));
            if let Some(d) = dest.parent() {
                dirs.insert(d.to_path_buf());
            }
        }
        if complete {
            for table in Table::ALL {
                if report.rows.contains_key(table.name()) {
                    continue;
                }
                let stale = self.at.output(&self.out, table);
                match std::fs::remove_file(&stale) {
                    Ok(()) => {
                        if let Some(d) = stale.parent() {
                            dirs.insert(d.to_path_buf());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(ExportError::Io { path: stale, err: e }),
                }
            }
        }
        // The renames (and new directories) survive a power loss.
        for d in &dirs {
            let mut p = Some(d.as_path());
            while let Some(dir) = p {
                sync_dir(dir);
                if dir == self.out {
                    break;
                }
                p = dir.parent();
            }
        }
        Ok(())
    }
}

fn display_rel(rel: &Path) -> String {
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Converts one capture file (`.../<venue>/<market>/<YYYY-MM-DD>/<HH>.jsonl.zst`)
/// into `OUT/<venue>/<market>/<table>/<YYYY-MM-DD>/<HH>.parquet` files,
/// replacing those of an earlier conversion. Lines and frames that cannot be
/// converted are handed to `on_problem` and counted; the rest is converted.
pub fn export_file(
    capture: &Path,
    out: &Path,
    cfg: &ExportConfig,
    on_problem: &mut dyn FnMut(Problem),
) -> Result<HourReport, ExportError> {
    cfg.check()?;
    let at = CaptureHour::from_path(capture).ok_or_else(|| ExportError::NotACapture { path: capture.to_path_buf() })?;
    let mut report = HourReport { capture: at.capture_name(), ..HourReport::default() };
    report.bytes_in = std::fs::metadata(capture).map(|m| m.len()).unwrap_or(0);
    let mut files = HourFiles { cfg, out: out.to_path_buf(), at, tables: BTreeMap::new() };
    let mut complete = true;
    let mut problem = |report: &mut HourReport, line: Option<u64>, what: String| {
        report.problems += 1;
        on_problem(Problem { file: capture.to_path_buf(), line, what });
    };
    for item in RecordReader::new([capture.to_path_buf()]) {
        let rec = match item {
            Ok(r) => r,
            Err(e) => {
                complete = false;
                problem(&mut report, None, e.what);
                continue;
            }
        };
        report.json_bytes += rec.line.len() as u64 + 1;
        let ev: Event = match serde_json::from_str(&rec.line) {
            Ok(ev) => ev,
            Err(e) => {
                problem(&mut report, Some(rec.line_no), format!("not an event: {e}: {}", snippet(&rec.line)));
                continue;
            }
        };
        match row(&ev, rec.line_no) {
            Ok((table, r)) => {
                files.push(table, r)?;
                report.events += 1;
            }
            Err(unfit) => {
                problem(&mut report, Some(rec.line_no), format!("{} event not exported: {unfit}", ev.kind.type_name()))
            }
        }
    }
    report.complete = complete;
    files.finish(complete, &mut report)?;
    Ok(report)
}

/// Converts every capture file under `capture` (in name order) into `out`.
/// `on_hour` is called after each file, `on_problem` for each line, frame or
/// file that could not be converted. Stops at the first failure to write.
pub fn export_dir(
    capture: &Path,
    out: &Path,
    cfg: &ExportConfig,
    on_hour: &mut dyn FnMut(&HourReport),
    on_problem: &mut dyn FnMut(Problem),
) -> Result<ExportSummary, ExportError> {
    cfg.check()?;
    let start = Instant::now();
    let paths = expand_paths(&[capture.to_path_buf()]).map_err(|e| match e {
        crate::record::RecordError::Io { path, err } => ExportError::Io { path, err },
        other => ExportError::Internal(other.to_string()),
    })?;
    let mut summary = ExportSummary::default();
    for p in paths {
        if CaptureHour::from_path(&p).is_none() {
            summary.problems += 1;
            on_problem(Problem {
                file: p.clone(),
                line: None,
                what: format!("not converted: not in the capture layout <venue>/<market>/<YYYY-MM-DD>/<HH>{SUFFIX}"),
            });
            continue;
        }
        let h = export_file(&p, out, cfg, on_problem)?;
        summary.add(&h);
        on_hour(&h);
    }
    let secs = start.elapsed().as_secs_f64();
    summary.duration_s = (secs * 1000.0).round() / 1000.0;
    summary.events_per_s = (summary.events as f64 / secs.max(1e-3)).round();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use arrow_array::Array;
    use std::io::Write;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn decimals_convert_exactly_or_not_at_all() {
        let e18 = 10i128.pow(18);
        assert_eq!(decimal_to_i128(d("0.00000001")), Some(10i128.pow(10)));
        assert_eq!(decimal_to_i128(d("-131.40000000")), Some(-1314 * 10i128.pow(17)));
        assert_eq!(decimal_to_i128(d("0")), Some(0));
        assert_eq!(decimal_to_i128(d("65114.20")), Some(6_511_420 * 10i128.pow(16)));
        // Trailing zeros past the 18th place change nothing.
        assert_eq!(decimal_to_i128(d("1.0000000000000000000000000")), Some(e18));
        assert_eq!(decimal_to_i128(d("0.0000000000000000010000")), Some(1));
        // Extremes (a Decimal holds at most 28 significant digits), and the
        // first values that do not fit.
        let big = "99999999999999999999.99999999";
        assert_eq!(decimal_to_i128(d(big)), Some(10i128.pow(38) - 10i128.pow(10)));
        assert_eq!(decimal_to_i128(d(&format!("-{big}"))), Some(10i128.pow(10) - 10i128.pow(38)));
        assert_eq!(decimal_to_i128(d("0.999999999999999999")), Some(e18 - 1));
        assert_eq!(decimal_to_i128(d("100000000000000000000")), None);
        assert_eq!(decimal_to_i128(d("0.0000000000000000001")), None);
        assert_eq!(decimal_to_i128(d("79228162514264337593543950335")), None);
        let e = Unfit { column: "price", value: d("0.0000000000000000001") }.to_string();
        assert!(e.contains("price 0.0000000000000000001") && e.contains("not rounded"), "{e}");
    }

    #[test]
    fn capture_paths_parse_and_others_do_not() {
        let h = CaptureHour::from_path(Path::new("/x/cap/binance/spot/2026-11-22/05.jsonl.zst")).expect("layout");
        assert_eq!(h.capture_name(), "binance/spot/2026-11-22/05.jsonl.zst");
        assert_eq!(
            h.output(Path::new("/o"), Table::BookUpdate),
            Path::new("/o/binance/spot/book_update/2026-11-22/05.parquet")
        );
        for bad in [
            "binance/spot/2026-11-22/24.jsonl.zst",
            "binance/spot/2026-11-22/5.jsonl.zst",
            "binance/spot/20261122/05.jsonl.zst",
            "spot/2026-11-22/05.jsonl.zst",
            "Binance/spot/2026-11-22/05.jsonl.zst",
            "binance/spot/2026-11-22/05.jsonl",
        ] {
            assert_eq!(CaptureHour::from_path(Path::new(bad)), None, "{bad}");
        }
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ferrofeed-parquet-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("tmp");
        d
    }

    fn write_capture(path: &Path, lines: &[String]) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(path, zstd::encode_all(text.as_bytes(), 3).expect("zstd")).expect("write");
    }

    fn read(path: &Path) -> RecordBatch {
        let f = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let r = ParquetRecordBatchReaderBuilder::try_new(f).expect("parquet").build().expect("reader");
        let batches: Vec<RecordBatch> = r.map(|b| b.expect("batch")).collect();
        arrow_select_concat(&batches)
    }

    fn arrow_select_concat(batches: &[RecordBatch]) -> RecordBatch {
        assert_eq!(batches.len(), 1, "one batch expected in these small files");
        batches[0].clone()
    }

    /// Every example of docs/events.md (one per event type) converts, and the
    /// files read back with the schema of their table and the values of the
    /// lines.
    #[test]
    fn every_documented_event_type_exports_and_reads_back() {
        let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/events.md"));
        let mut lines = Vec::new();
        let mut in_block = false;
        for l in doc.lines() {
            match l {
                "```json" => in_block = true,
                "```" => in_block = false,
                l if in_block => lines.push(l.to_string()),
                _ => {}
            }
        }
        let dir = tmpdir("docs");
        let cap = dir.join("cap/binance/spot/2026-11-22/05.jsonl.zst");
        write_capture(&cap, &lines);
        let out = dir.join("out");
        let mut problems = Vec::new();
        let rep = export_file(&cap, &out, &ExportConfig::default(), &mut |p| problems.push(p)).expect("export");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!((rep.events, rep.problems, rep.complete), (lines.len() as u64, 0, true));
        let events: Vec<Event> = lines.iter().map(|l| serde_json::from_str(l).expect("event")).collect();
        for table in Table::ALL {
            let want: Vec<(usize, &Event)> =
                events.iter().enumerate().filter(|(_, e)| Table::of(&e.kind) == table).collect();
            assert!(!want.is_empty(), "no example for {table}");
            let path = out.join(format!("binance/spot/{table}/2026-11-22/05.parquet"));
            let batch = read(&path);
            assert_eq!(batch.schema().fields(), table.schema().fields(), "{table}");
            assert_eq!(batch.num_rows(), want.len(), "{table}");
            let line = batch.column_by_name("line").expect("line");
            let line = line.as_any().downcast_ref::<arrow_array::UInt64Array>().expect("u64");
            let got: Vec<u64> = line.values().to_vec();
            assert_eq!(got, want.iter().map(|(i, _)| *i as u64 + 1).collect::<Vec<_>>(), "{table}");
            let recv = batch.column_by_name("receive_ts").expect("receive_ts");
            let recv = recv.as_any().downcast_ref::<arrow_array::TimestampNanosecondArray>().expect("ts");
            assert_eq!(recv.value(0), want[0].1.receive_ts);
        }
        // A trade's price is the exact decimal.
        let batch = read(&out.join("binance/spot/trade/2026-11-22/05.parquet"));
        let price = batch.column_by_name("price").expect("price");
        let price = price.as_any().downcast_ref::<arrow_array::Decimal128Array>().expect("decimal");
        let first = events.iter().find_map(|e| match &e.kind {
            EventKind::Trade(t) => Some(t.price),
            _ => None,
        });
        assert_eq!(Some(price.value(0)), first.and_then(decimal_to_i128));
        assert_eq!(price.value_as_string(0), format!("{:.18}", first.expect("trade")));
        // No temporary file is left behind.
        let mut stack = vec![out.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    assert!(p.to_string_lossy().ends_with(".parquet"), "{}", p.display());
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Bad lines, values that do not fit and a torn tail are problems naming
    /// the file and line; everything else is converted; a second conversion
    /// replaces the files and removes a table the hour no longer has.
    #[test]
    fn problems_are_counted_and_the_rest_converted() {
        let dir = tmpdir("problems");
        let cap = dir.join("cap/bybit/linear/2026-11-22/23.jsonl.zst");
        let trade = |id: u32, price: &str| {
            format!(
                r#"{{"type":"trade","trade_id":"{id}","price":"{price}","qty":"1","side":"buy","venue":"bybit","market":"linear","symbol":"BTCUSDT","exchange_ts":1,"receive_ts":2}}"#
            )
        };
        let lines = vec![
            trade(1, "65114.20"),
            "{not json".to_string(),
            trade(2, "0.0000000000000000001"),
            format!("{{\"x\":\"{}\"}}", "y".repeat(500)),
            r#"{"type":"connected","venue":"bybit","market":"linear","exchange_ts":null,"receive_ts":3}"#.to_string(),
            trade(3, "100000000000000000000"),
            trade(4, "99999999999999999999.99999999"),
        ];
        write_capture(&cap, &lines);
        // A torn frame after the good one.
        let mut f = std::fs::OpenOptions::new().append(true).open(&cap).expect("open");
        f.write_all(&[0x28, 0xb5, 0x2f, 0xfd, 0x00]).expect("append");
        drop(f);
        let out = dir.join("out");
        let mut problems = Vec::new();
        let rep = export_file(&cap, &out, &ExportConfig::default(), &mut |p| problems.push(p)).expect("export");
        assert_eq!((rep.events, rep.problems, rep.complete), (3, 5, false), "{problems:?}");
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(text[0].contains("23.jsonl.zst: line 2: not an event") && text[0].contains("{not json"), "{text:?}");
        assert!(text[1].contains("line 3: trade event not exported: price 0.0000000000000000001"), "{text:?}");
        assert!(text[2].contains("line 4:") && text[2].contains("... (") && text[2].len() < 400, "{text:?}");
        assert!(text[3].contains("line 6: trade event not exported: price 100000000000000000000"), "{text:?}");
        assert!(text[4].contains("23.jsonl.zst: byte offset") && text[4].contains("torn"), "{text:?}");
        assert_eq!(rep.rows, BTreeMap::from([("status".to_string(), 1), ("trade".to_string(), 2)]));
        let b = read(&out.join("bybit/linear/trade/2026-11-22/23.parquet"));
        let price = b.column_by_name("price").expect("price");
        let price = price.as_any().downcast_ref::<arrow_array::Decimal128Array>().expect("decimal");
        assert_eq!(price.value_as_string(0), "65114.200000000000000000");
        assert_eq!(price.value_as_string(1), "99999999999999999999.999999990000000000");

        // Again, without the trades: trade's file goes, status is replaced.
        write_capture(&cap, &lines[4..5]);
        let rep = export_file(&cap, &out, &ExportConfig::default(), &mut |p| panic!("{p}")).expect("again");
        assert_eq!(rep.rows, BTreeMap::from([("status".to_string(), 1)]));
        assert!(!out.join("bybit/linear/trade/2026-11-22/23.parquet").exists());
        assert_eq!(read(&out.join("bybit/linear/status/2026-11-22/23.parquet")).num_rows(), 1);

        // Not the capture layout: an error naming the file.
        let odd = dir.join("cap/odd.jsonl.zst");
        write_capture(&odd, &lines[..1]);
        let e = export_file(&odd, &out, &ExportConfig::default(), &mut |_| {}).expect_err("layout");
        assert!(e.to_string().contains("odd.jsonl.zst: not a capture file"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Many rows with small bounds: several batches and row groups, every row
    /// kept in order.
    #[test]
    fn small_bounds_make_many_row_groups_and_keep_every_row() {
        let dir = tmpdir("bounds");
        let cap = dir.join("cap/binance/usdm/2026-11-22/05.jsonl.zst");
        let lines: Vec<String> = (0..5000)
            .map(|i| {
                format!(
                    r#"{{"type":"book_update","first_update_id":{i},"last_update_id":{i},"bids":[["1.{i}","2"],["1.0","0"]],"asks":[],"best_bid":["1.{i}","2"],"best_ask":null,"venue":"binance","market":"usdm","symbol":"BTCUSDT","exchange_ts":null,"receive_ts":{i}}}"#
                )
            })
            .collect();
        write_capture(&cap, &lines);
        let cfg = ExportConfig {
            batch_rows: 100,
            batch_bytes: 1 << 20,
            row_group_rows: 700,
            row_group_bytes: 1 << 20,
            memory_bytes: 1 << 20,
            zstd_level: 1,
        };
        let out = dir.join("out");
        let rep = export_file(&cap, &out, &cfg, &mut |p| panic!("{p}")).expect("export");
        assert_eq!(rep.events, 5000);
        let path = out.join("binance/usdm/book_update/2026-11-22/05.parquet");
        let meta = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).expect("open")).expect("parquet");
        assert!(meta.metadata().num_row_groups() >= 7, "{}", meta.metadata().num_row_groups());
        let r = meta.build().expect("reader");
        let mut n = 0u64;
        for b in r {
            let b = b.expect("batch");
            let ids = b.column_by_name("last_update_id").expect("col");
            let ids = ids.as_any().downcast_ref::<arrow_array::UInt64Array>().expect("u64");
            for i in 0..ids.len() {
                assert_eq!(ids.value(i), n);
                n += 1;
            }
        }
        assert_eq!(n, 5000);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
