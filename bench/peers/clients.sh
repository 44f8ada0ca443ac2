#!/usr/bin/env bash
# Third-party clients against `ferrofeed sim`: python-binance and ccxt (pro),
# each pointed at the simulator by its URL settings only, read trades, depth
# and order books on spot and USD-M (bench/peers/clients.py says how each
# check passes). One JSON line per (client, market, feed) on stdout, a summary
# table on stderr; exit 1 if any check failed.
# Not run in CI: it installs packages from PyPI into a virtualenv.
#
# Usage: bench/peers/clients.sh [--n N] [--timeout S] [--only TEXT]
# Env:   FERROFEED=path/to/ferrofeed   (default: $CARGO_TARGET_DIR/release/ferrofeed,
#                                       or target/release/ferrofeed; built if missing)
#        VENV=dir                      (default: bench/peers/.venv, reused if present)
#        PY_BINANCE=spec CCXT=spec     (default: the versions pinned below)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${VENV:-bench/peers/.venv}"
FERROFEED="${FERROFEED:-${CARGO_TARGET_DIR:-target}/release/ferrofeed}"
# The newest releases on PyPI when this was written (2026-12-07).
PY_BINANCE="${PY_BINANCE:-python-binance==1.0.37}"
CCXT="${CCXT:-ccxt==4.5.90}"

if [ ! -x "$FERROFEED" ]; then cargo build --release --bin ferrofeed; fi
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/pip" install -q "$PY_BINANCE" "$CCXT"

SIM_PID=""
cleanup() { if [ -n "$SIM_PID" ]; then kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

# Free ports (no --port-base); the simulator prints one line per market, in order.
coproc SIM { exec "$FERROFEED" sim --markets spot,usdm; }
SIM_PID=$SIM_PID
read -r -t 60 SPOT <&"${SIM[0]}"
read -r -t 60 USDM <&"${SIM[0]}"

status=0
"$VENV/bin/python" bench/peers/clients.py "$SPOT" "$USDM" "$@" || status=$?
exit "$status"
