#!/usr/bin/env bash
# Peers on the same trade stream: python-binance, ccxt (pro) and barter-data
# (bench/peers/barter, a Rust peer: its own cargo project) read the
# simulator's load stream (`ferrofeed sim --load-messages N`, a fresh simulator
# process per client, pinned to CPU 1 when possible; the client on CPU 0), and
# `ferrofeed bench e2e` measures ferrofeed on the same stream in the same run.
# Not run in CI: it installs packages from PyPI into a virtualenv.
#
# Usage: bench/peers/run.sh [N]        (default N = 300000 trades per client)
# Env:   FERROFEED=path/to/ferrofeed   (default: target/release/ferrofeed, built if missing)
#        BARTER_TARGET=dir              (barter's cargo target dir; default: bench/peers/barter/target)
#        BARTER=path/to/peer-barter     (default: $BARTER_TARGET/release/peer-barter, built if missing)
#        VENV=dir                      (default: bench/peers/.venv)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-300000}"
VENV="${VENV:-bench/peers/.venv}"
FERROFEED="${FERROFEED:-target/release/ferrofeed}"
PY_BINANCE="${PY_BINANCE:-python-binance==1.0.37}"
CCXT="${CCXT:-ccxt==4.5.90}"

if [ ! -x "$FERROFEED" ]; then cargo build --release --bin ferrofeed; fi
BARTER_TARGET="$(realpath -m "${BARTER_TARGET:-bench/peers/barter/target}")"
BARTER="${BARTER:-$BARTER_TARGET/release/peer-barter}"
if [ ! -x "$BARTER" ]; then
  (cd bench/peers/barter && CARGO_TARGET_DIR="$BARTER_TARGET" cargo build --release)
fi
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/pip" install -q "$PY_BINANCE" "$CCXT"

PIN_SIM=() PIN_CLIENT=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then PIN_SIM=(taskset -c 1) PIN_CLIENT=(taskset -c 0); fi

SIM_PID=""
cleanup() { if [ -n "$SIM_PID" ]; then kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

peer() {
  local client="$1" out
  coproc SIM { exec "${PIN_SIM[@]}" "$FERROFEED" sim --markets spot --load-messages "$N"; }
  SIM_PID=$SIM_PID
  local line ws
  read -r line <&"${SIM[0]}"
  ws=$(printf '%s' "$line" | sed -E 's/.*"ws":"([^"]+)".*/\1/')
  if [ "$client" = barter ]; then
    # barter-data exits 1 when it lost trades; its JSON line says so.
    out=$("${PIN_CLIENT[@]}" "$BARTER" "$ws" "$N" || true)
  else
    out=$("${PIN_CLIENT[@]}" "$VENV/bin/python" bench/peers/peer.py "$client" "$ws" "$N")
  fi
  cleanup; SIM_PID=""
  echo "$out"
}

PB=$(peer python-binance)
CC=$(peer ccxt)
BA=$(peer barter)
FF=$("$FERROFEED" bench e2e --messages "$N" --json)

"$VENV/bin/python" - "$PB" "$CC" "$FF" "$BA" <<'PY'
import json, sys
pb, cc, ff, ba = (json.loads(x) for x in sys.argv[1:5])
f = ff["ferrofeed_msgs_per_s"]
print("| client | msgs/s | lost | CPU ns/msg | peak RSS MiB | ferrofeed × |")
print("|---|---:|---:|---:|---:|---:|")
for p in (pb, cc, ba):
    r = p["msgs_per_s"]
    print(f"| {p['client']} {p['version']} | {r:,.0f} | {p['lost']} | {p.get('ns_per_msg_cpu')} | "
          f"{p.get('max_rss_mib')} | {f / r if r else float('inf'):.1f} |")
print(f"| ferrofeed (full path) | {f:,.0f} | {ff['lost']} | {ff['ferrofeed_ns_per_msg_cpu']:.0f} | {ff['max_rss_mib']} | 1.0 |")
print(f"| reference reader (tokio-tungstenite + serde_json) | {ff['reference_msgs_per_s']:,.0f} | {ff['reference_lost']} | "
      f"{ff['reference_ns_per_msg_cpu']:.0f} | | |")
print(json.dumps({"messages": ff["messages"], "python_binance_msgs_per_s": pb["msgs_per_s"],
                  "ccxt_msgs_per_s": cc["msgs_per_s"], "barter_msgs_per_s": ba["msgs_per_s"],
                  "barter_lost": ba["lost"], "barter_ns_per_msg_cpu": ba.get("ns_per_msg_cpu"),
                  "barter_max_rss_mib": ba.get("max_rss_mib"), "ferrofeed_msgs_per_s": f,
                  "vs_barter": round(f / ba["msgs_per_s"], 2) if ba["msgs_per_s"] else None,
                  "vs_python_binance": round(f / pb["msgs_per_s"], 1) if pb["msgs_per_s"] else None,
                  "vs_ccxt": round(f / cc["msgs_per_s"], 1) if cc["msgs_per_s"] else None}))
PY
