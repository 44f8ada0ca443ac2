#!/usr/bin/env python3
"""Checks `ferrofeed export parquet` output against its capture, with pyarrow.

    python parquet_check.py CAPTURE_DIR PARQUET_DIR

Reads every capture file (CAPTURE_DIR/<venue>/<market>/<YYYY-MM-DD>/<HH>.jsonl.zst,
zstd frames of JSON lines, decompressed with pyarrow's own zstd codec) and every
Parquet file (PARQUET_DIR/<venue>/<market>/<table>/<YYYY-MM-DD>/<HH>.parquet), and
checks, independently of the Rust code:

- the files: exactly one Parquet file per venue, market, table and hour that has
  events, and no other file;
- the schema: prices, quantities and amounts are decimal128(38, 18), times are
  timestamp[ns, tz=UTC], update ids uint64, and no column (nested ones included)
  is a floating-point type;
- the rows: one row per event of the table, in capture order (the `line` column),
  and every field of every event equal to its column: decimals compared as
  strings (the capture's text at scale 18, e.g. "65114.20" ->
  "65114.200000000000000000"), timestamps as integer nanoseconds, ids and
  strings exactly; no field of the JSON is left without a column.

Prints one JSON report: rows per table and per venue/market and table, status
rows per type, and for each table the first row's price-like value next to its
capture text. Exits 1 with
the first mismatches on any difference, 2 when pyarrow cannot be imported.
"""

import json
import os
import sys

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError as e:  # the Rust test turns this into a clear failure
    print(f"pyarrow cannot be imported ({e}): run scripts/test, which installs it into target/tools/py", file=sys.stderr)
    sys.exit(2)

DATA_TABLES = {
    "trade", "agg_trade", "book_delta", "book_snapshot", "book_update", "top_of_book", "kline",
    "ticker", "avg_price", "mark_price", "index_price", "open_interest", "liquidation", "order_update", "user_trade",
    "order_list_update", "balance_update", "position_update",
}
# Columns that hold prices, quantities or amounts (top level and inside lists of structs).
DECIMAL_COLUMNS = {
    "price", "qty", "bid_price", "bid_qty", "ask_price", "ask_qty", "open", "high", "low", "close",
    "volume", "quote_volume", "price_change", "last_price", "mark_price", "index_price",
    "funding_rate", "best_bid_price", "best_bid_qty", "best_ask_price", "best_ask_qty",
    "filled_qty", "avg_price", "filled_quote_qty", "stop_price", "fill_price", "fill_qty",
    "fill_fee", "realized_pnl", "activation_price", "callback_rate", "order_price", "order_qty",
    "fee", "amount", "entry_price", "breakeven_price", "unrealized_pnl", "isolated_wallet",
    "free", "locked", "delta", "locked_delta", "wallet_balance", "cross_wallet_balance",
    "open_interest", "open_interest_value",
}
TIMESTAMP_COLUMNS = {"exchange_ts", "receive_ts", "open_time", "close_time", "next_funding_ts"}
UINT64_COLUMNS = {"first_update_id", "last_update_id", "prev_update_id", "update_id", "line"}
# The first of these a table has (in the first row where it has a value) is shown in the report.
EXAMPLE_COLUMNS = ["price", "last_price", "close", "mark_price", "bid_price", "best_bid_price", "amount", "open_interest",
                   "bids", "asks", "balances"]
DECIMAL_TYPE = pa.decimal128(38, 18)
TIMESTAMP_TYPE = pa.timestamp("ns", tz="UTC")

errors = []


def fail(msg):
    errors.append(msg)
    if len(errors) >= 20:
        finish_with_errors()


def finish_with_errors():
    print(f"{len(errors)} mismatches (first ones):", file=sys.stderr)
    for e in errors[:20]:
        print("  " + e, file=sys.stderr)
    sys.exit(1)


def at_scale_18(text):
    """The decimal text of the capture as Decimal128(38, 18) prints it (string work only)."""
    neg = text.startswith("-")
    body = text[1:] if neg else text
    whole, _, frac = body.partition(".")
    if len(frac) > 18:
        if frac[18:].strip("0"):
            return None  # does not fit: the exporter must have refused it
        frac = frac[:18]
    return ("-" if neg else "") + whole + "." + frac.ljust(18, "0")


def expected_row(ev, line):
    """The table and the column values an event must become."""
    kind = ev["type"]
    table = kind if kind in DATA_TABLES else "status"
    row = {"line": line}
    for k, v in ev.items():
        if k == "type":
            if table == "status":
                row["type"] = v
        elif k in ("bids", "asks"):
            row[k] = [{"price": p, "qty": q} for p, q in v]
        elif k in ("best_bid", "best_ask"):
            row[k + "_price"], row[k + "_qty"] = v if v is not None else (None, None)
        elif k == "fill":
            for fk, fv in v.items():
                row["fill_" + fk] = fv
        elif k == "missing" and v == "unknown":
            pass  # a gap of unknown extent: from and to are null
        else:
            row[k] = v
    return table, row


def walk_types(name, t):
    """Checks a column's type and those of its nested fields."""
    leaf = name.rsplit(".", 1)[-1]
    if pa.types.is_floating(t):
        fail(f"{name}: floating-point type {t}")
    if pa.types.is_list(t):
        walk_types(name, t.value_type)
        return
    if pa.types.is_struct(t):
        for f in t:
            walk_types(f"{name}.{f.name}", f.type)
        return
    if leaf in DECIMAL_COLUMNS and t != DECIMAL_TYPE:
        fail(f"{name}: {t}, expected {DECIMAL_TYPE}")
    if leaf in TIMESTAMP_COLUMNS and t != TIMESTAMP_TYPE:
        fail(f"{name}: {t}, expected {TIMESTAMP_TYPE}")
    if leaf in UINT64_COLUMNS and t != pa.uint64():
        fail(f"{name}: {t}, expected uint64")


def same(where, t, got, want):
    """Compares one value read from Parquet with the capture's JSON value."""
    if want is None or got is None:
        if want is not got:
            fail(f"{where}: got {got!r}, capture has {want!r}")
        return
    if pa.types.is_list(t):
        if len(got) != len(want):
            fail(f"{where}: {len(got)} items, capture has {len(want)}")
            return
        for i, (g, w) in enumerate(zip(got, want)):
            same(f"{where}[{i}]", t.value_type, g, w)
        return
    if pa.types.is_struct(t):
        for f in t:
            same(f"{where}.{f.name}", f.type, got.get(f.name), want.get(f.name))
        extra = set(want) - {f.name for f in t}
        if extra:
            fail(f"{where}: capture fields without a column: {sorted(extra)}")
        return
    if pa.types.is_decimal(t):
        text = format(got, "f")
        if text != at_scale_18(want):
            fail(f"{where}: {text} != capture {want!r}")
    elif pa.types.is_timestamp(t):
        if got != want:
            fail(f"{where}: {got} ns != capture {want}")
    elif got != want or type(got) is not type(want):
        fail(f"{where}: {got!r} != capture {want!r}")


def example(key, names, cols, rows):
    """The first price-like value of a file, next to its capture text."""
    for r, exp in enumerate(rows):
        for c in EXAMPLE_COLUMNS:
            if c not in names:
                continue
            got, want, col = cols[c][r], exp.get(c), c
            if c in ("bids", "asks", "balances"):
                if not got:
                    continue
                sub = "price" if c != "balances" else next(
                    (k for k in ("free", "delta", "wallet_balance") if got[0].get(k) is not None), None)
                if sub is None:
                    continue
                got, want, col = got[0][sub], want[0][sub], f"{c}[0].{sub}"
            if got is None:
                continue
            return {"file": key, "line": exp["line"], "column": col, "parquet": format(got, "f"), "capture": want}
    return None


def read_capture(path):
    with pa.input_stream(path, compression="zstd") as f:
        text = f.read().decode("utf-8")
    if text and not text.endswith("\n"):
        fail(f"{path}: ends inside a line")
    return text.splitlines()


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    cap_dir, pq_dir = sys.argv[1], sys.argv[2]
    # Expected rows per Parquet file, from the capture.
    want = {}
    for root, _, files in os.walk(cap_dir):
        for name in sorted(files):
            if not name.endswith(".jsonl.zst"):
                continue
            path = os.path.join(root, name)
            venue, market, date = os.path.relpath(root, cap_dir).split(os.sep)[-3:]
            hour = name[: -len(".jsonl.zst")]
            for n, line in enumerate(read_capture(path), 1):
                table, row = expected_row(json.loads(line), n)
                key = f"{venue}/{market}/{table}/{date}/{hour}.parquet"
                want.setdefault(key, []).append(row)
    have = set()
    for root, _, files in os.walk(pq_dir):
        for name in files:
            have.add(os.path.relpath(os.path.join(root, name), pq_dir).replace(os.sep, "/"))
    for f in sorted(have - set(want)):
        fail(f"{f}: a file without events in the capture")
    for f in sorted(set(want) - have):
        fail(f"{f}: missing ({len(want[f])} events in the capture)")

    report = {"tables": {}, "markets": {}, "status_types": {}, "files": len(have), "values_checked": 0}
    for key in sorted(set(want) & have):
        table = key.split("/")[2]
        pf = pq.ParquetFile(os.path.join(pq_dir, key))
        schema = pf.schema_arrow
        for field in schema:
            walk_types(f"{key}:{field.name}", field.type)
        tbl = pf.read()
        rows = want[key]
        if tbl.num_rows != len(rows):
            fail(f"{key}: {tbl.num_rows} rows, capture has {len(rows)} events of the table")
            continue
        # Timestamps as integer nanoseconds (to_pylist would give microsecond datetimes).
        cols = {}
        for i, field in enumerate(schema):
            col = tbl.column(i)
            if pa.types.is_timestamp(field.type):
                col = col.cast(pa.int64())
            cols[field.name] = col.to_pylist()
        names = [f.name for f in schema]
        for r, exp in enumerate(rows):
            extra = set(exp) - set(names)
            if extra:
                fail(f"{key} line {exp['line']}: capture fields without a column: {sorted(extra)}")
            for field in schema:
                same(f"{key} line {exp['line']} {field.name}", field.type, cols[field.name][r], exp.get(field.name))
                report["values_checked"] += 1
            if table == "status":
                st = report["status_types"]
                st[exp["type"]] = st.get(exp["type"], 0) + 1
        t = report["tables"].setdefault(table, {"rows": 0, "files": 0})
        t["rows"] += tbl.num_rows
        t["files"] += 1
        m = report["markets"].setdefault("/".join(key.split("/")[:2]), {})
        m[table] = m.get(table, 0) + tbl.num_rows
        if "example" not in t:
            ex = example(key, names, cols, rows)
            if ex:
                t["example"] = ex
    if errors:
        finish_with_errors()
    print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    main()
