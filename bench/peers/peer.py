"""Reads the simulator's load stream with a third-party Python client and
prints one JSON line: {"client", "version", "messages", "msgs_per_s", "lost",
"cpu_s", "ns_per_msg_cpu", "max_rss_mib"} (CPU of this process from the first
trade to the last; peak resident set of the whole run).

Usage: peer.py (python-binance|ccxt) WS_BASE N
  WS_BASE is the simulator's ws://127.0.0.1:PORT (from `ferrofeed sim`).
The clock runs from the first trade to the last; the run stops at the N-th
trade or after 10 s without one (what did not arrive counts as lost).
"""

import asyncio
import json
import resource
import sys
import time

FIRST_ID = 1_000_000_000_000
STALL_S = 10.0


class Tally:
    def __init__(self, n):
        self.n, self.received, self.next, self.lost = n, 0, FIRST_ID, 0
        self.first = self.last = None
        self.cpu0 = self.cpu1 = 0.0

    def on_id(self, tid):
        now = time.perf_counter()
        if self.first is None:
            self.first = now
            self.cpu0 = time.process_time()
        self.cpu1 = time.process_time()
        self.last = now
        self.received += 1
        if tid >= self.next:
            self.lost += tid - self.next
            self.next = tid + 1
        return self.next >= FIRST_ID + self.n

    def report(self, client, version):
        lost = self.lost + max(0, FIRST_ID + self.n - self.next)
        span = (self.last - self.first) if self.first is not None else 0.0
        rate = (self.received - 1) / span if span > 0 else 0.0
        cpu = self.cpu1 - self.cpu0
        # ru_maxrss is in KiB on Linux.
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {"client": client, "version": version, "messages": self.n,
                "received": self.received, "msgs_per_s": round(rate), "lost": lost,
                "cpu_s": round(cpu, 2), "ns_per_msg_cpu": round(cpu * 1e9 / self.received) if self.received else 0,
                "max_rss_mib": round(rss, 1)}


async def python_binance(ws, n):
    import binance
    from binance import AsyncClient, BinanceSocketManager

    client = AsyncClient()  # no network: create() would ping the real REST API
    # The default queue of 100 overflows under a fast stream and stops reading.
    bm = BinanceSocketManager(client, max_queue_size=1_000_000)
    bm.STREAM_URL = ws.rstrip("/") + "/"
    t = Tally(n)
    async with bm.trade_socket("LOADUSDT") as s:
        while True:
            try:
                msg = await asyncio.wait_for(s.recv(), STALL_S)
            except asyncio.TimeoutError:
                break
            if isinstance(msg, dict) and msg.get("e") == "trade":
                if t.on_id(int(msg["t"])):
                    break
    await client.close_connection()
    return t.report("python-binance", binance.__version__)


async def ccxt_pro(ws, n):
    import ccxt
    import ccxt.pro

    # The trade cache holds 1000 by default: trades that arrive between two
    # watch_trades() calls beyond that are gone. Make it hold the whole run.
    ex = ccxt.pro.binance({"options": {"defaultType": "spot", "tradesLimit": max(1000, n)}})
    # ccxt appends "/<connection index>" to this URL; the simulator (like the
    # venue) only serves /ws and /ws/<stream>, so the index goes in a query.
    ex.urls["api"]["ws"]["spot"] = ws.rstrip("/") + "/ws?ccxt="
    ex.set_markets([{
        "id": "LOADUSDT", "lowercaseId": "loadusdt", "symbol": "LOAD/USDT", "base": "LOAD", "quote": "USDT",
        "baseId": "LOAD", "quoteId": "USDT", "type": "spot", "spot": True, "margin": False, "swap": False,
        "future": False, "option": False, "contract": False, "linear": None, "inverse": None, "active": True,
        "settle": None, "settleId": None, "contractSize": None, "expiry": None, "expiryDatetime": None,
        "strike": None, "optionType": None, "taker": 0.001, "maker": 0.001,
        "precision": {"amount": 1e-8, "price": 1e-8}, "limits": {"amount": {"min": None, "max": None},
        "price": {"min": None, "max": None}, "cost": {"min": None, "max": None}}, "info": {},
    }])
    t = Tally(n)
    done = False
    while not done:
        try:
            trades = await asyncio.wait_for(ex.watch_trades("LOAD/USDT"), STALL_S)
        except asyncio.TimeoutError:
            break
        for tr in trades:
            tid = int(tr["id"])
            if tid < t.next:
                continue  # already counted (the cache returns what it holds)
            if t.on_id(tid):
                done = True
                break
    await ex.close()
    return t.report("ccxt", ccxt.__version__)


def main():
    client, ws, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run = {"python-binance": python_binance, "ccxt": ccxt_pro}[client]
    print(json.dumps(asyncio.run(run(ws, n))), flush=True)


if __name__ == "__main__":
    main()
