"""Third-party Binance clients against `ferrofeed sim`, each changed only in its
URLs, as a user points a library at a testnet or a proxy.

Usage: clients.py SPOT_LINE USDM_LINE [--n N] [--timeout S] [--only SUBSTR]
  SPOT_LINE, USDM_LINE: the JSON lines `ferrofeed sim --markets spot,usdm` prints.

Prints one JSON line per (client, market, feed):
  {"client","version","market","feed","api","result":"pass"|"fail","why",
   "messages","errors","first", ...}
`messages` counts well-formed messages for the symbol; a check passes once N
arrived (books: N updates and best bid < best ask). Books are then checked
against the simulator's truth: the market is paused (`/admin/pause`), the
client reads until its book reaches the truth's update id, and its top 5
levels are compared with `/admin/book` (`truth`: match / differs / ...).
`truth` is reported, not part of pass/fail.

URL overrides only (no protocol logic is patched):
  python-binance: every `*_URL` attribute of the AsyncClient and the
    BinanceSocketManager instance whose host is Binance's is rewritten to the
    simulator's (the ThreadedWebsocketManager builds both itself, so for it
    the same attributes are set on the classes, and restored after).
  ccxt: every entry of `exchange.urls['api']` (REST and ws) likewise.
"""

import argparse
import asyncio
import json
import queue
import sys
import time
import urllib.request
from decimal import Decimal, InvalidOperation

SYMBOL = "BTCUSDT"
TOP = 5  # levels compared with the truth


# ---------------------------------------------------------------- plumbing

class Sim:
    """The simulator's two markets (from the lines `ferrofeed sim` prints)."""

    def __init__(self, spot, usdm):
        self.spot, self.usdm = spot, usdm

    def hosts(self):
        """Binance's hosts -> the simulator's, longest prefix first."""
        s_rest, s_ws = self.spot["rest"], self.spot["ws"]
        u_rest, u_ws = self.usdm["rest"], self.usdm["ws"]
        return [
            ("wss://stream.binance.com:9443", s_ws),
            ("wss://stream.binance.com", s_ws),
            ("wss://ws-api.binance.com:443", s_ws),
            ("wss://ws-api.binance.com", s_ws),
            ("wss://fstream.binance.com", u_ws),
            ("wss://ws-fapi.binance.com", u_ws),
            ("https://api.binance.com", s_rest),
            ("https://fapi.binance.com", u_rest),
        ]

    def rewrite(self, url):
        if not isinstance(url, str):
            return url
        for real, sim in self.hosts():
            if url.startswith(real):
                return sim + url[len(real):]
        return url

    def admin(self, market, path, post=False):
        base = (self.spot if market == "spot" else self.usdm)["rest"]
        req = urllib.request.Request(base + path, method="POST" if post else "GET")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read() or b"null")


def dec(x):
    try:
        d = Decimal(str(x))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return d if d.is_finite() else None


def levels_ok(levels):
    """[[price, qty], ...] of decimal strings, positive price, qty >= 0."""
    if not isinstance(levels, list):
        return False
    for lv in levels:
        if not isinstance(lv, (list, tuple)) or len(lv) < 2:
            return False
        p, q = dec(lv[0]), dec(lv[1])
        if p is None or q is None or p <= 0 or q < 0:
            return False
    return True


class Tally:
    """What one check received."""

    def __init__(self, client, version, market, feed, api):
        self.row = {"client": client, "version": version, "market": market, "feed": feed, "api": api,
                    "result": "fail", "why": "", "messages": 0, "errors": 0, "first": None}
        self.first_error = None

    def good(self, msg):
        if self.row["first"] is None:
            self.row["first"] = msg
        self.row["messages"] += 1

    def bad(self, msg, why):
        self.row["errors"] += 1
        if self.first_error is None:
            self.first_error = {"why": why, "message": msg}

    def done(self, ok, why=""):
        self.row["result"] = "pass" if ok else "fail"
        self.row["why"] = why
        if self.first_error is not None:
            self.row["first_error"] = self.first_error
        return self.row


def why_not(t, n, what="messages"):
    got = t.row["messages"]
    if got >= n:
        return ""
    msg = f"{got} of {n} well-formed {what} before the deadline"
    if t.first_error is not None:
        msg += f"; first problem: {t.first_error['why']}"
    return msg


def short(e):
    s = f"{type(e).__name__}: {e}"
    return s if len(s) <= 400 else s[:400] + "..."


# ----------------------------------------------------------- wire checks

def check_trade(m, sym, prev):
    if not isinstance(m, dict) or m.get("e") != "trade":
        return "not a trade event"
    if m.get("s") != sym:
        return f"symbol {m.get('s')!r}"
    if not isinstance(m.get("t"), int) or not isinstance(m.get("T"), int):
        return "t/T not integers"
    p, q = dec(m.get("p")), dec(m.get("q"))
    if p is None or q is None or p <= 0 or q <= 0:
        return "p/q not positive decimals"
    if not isinstance(m.get("m"), bool):
        return "m not a bool"
    if prev.get("id") is not None and m["t"] <= prev["id"]:
        return f"trade id {m['t']} after {prev['id']}"
    prev["id"] = m["t"]
    return None


def check_agg(m, sym, prev):
    if not isinstance(m, dict) or m.get("e") != "aggTrade":
        return "not an aggTrade event"
    if m.get("s") != sym:
        return f"symbol {m.get('s')!r}"
    for k in ("a", "f", "l", "T"):
        if not isinstance(m.get(k), int):
            return f"{k} not an integer"
    if m["f"] > m["l"]:
        return "f > l"
    p, q = dec(m.get("p")), dec(m.get("q"))
    if p is None or q is None or p <= 0 or q <= 0:
        return "p/q not positive decimals"
    if prev.get("id") is not None and m["a"] != prev["id"] + 1:
        return f"aggregate id {m['a']} after {prev['id']}"
    prev["id"] = m["a"]
    return None


def check_diff(m, sym, prev, futures):
    if not isinstance(m, dict) or m.get("e") != "depthUpdate":
        return "not a depthUpdate event"
    if m.get("s") != sym:
        return f"symbol {m.get('s')!r}"
    U, u = m.get("U"), m.get("u")
    if not isinstance(U, int) or not isinstance(u, int) or U > u:
        return "U/u not integers with U <= u"
    if not levels_ok(m.get("b")) or not levels_ok(m.get("a")):
        return "b/a not [[price, qty]] decimals"
    if futures:
        if not isinstance(m.get("pu"), int):
            return "pu missing"
        if prev.get("u") is not None and m["pu"] != prev["u"]:
            return f"pu {m['pu']} != previous u {prev['u']}"
    elif prev.get("u") is not None and U != prev["u"] + 1:
        return f"U {U} != previous u + 1 ({prev['u'] + 1})"
    prev["u"] = u
    return None


def check_partial(m, sym, futures, depth):
    """Partial book depth: spot `{lastUpdateId,bids,asks}`, USD-M a depthUpdate."""
    if not isinstance(m, dict):
        return "not an object"
    if futures:
        if m.get("e") != "depthUpdate" or m.get("s") != sym:
            return "not a depthUpdate for the symbol"
        bids, asks = m.get("b"), m.get("a")
    else:
        if not isinstance(m.get("lastUpdateId"), int):
            return "lastUpdateId missing"
        bids, asks = m.get("bids"), m.get("asks")
    if not levels_ok(bids) or not levels_ok(asks):
        return "bids/asks not [[price, qty]] decimals"
    if not bids or not asks or len(bids) > depth or len(asks) > depth:
        return f"{len(bids or [])}/{len(asks or [])} levels (want 1..{depth})"
    if dec(bids[0][0]) >= dec(asks[0][0]):
        return "crossed: best bid >= best ask"
    return None


def book_state(bids, asks):
    """Top of a book given as sorted [[price, qty]] (best first)."""
    bb = dec(bids[0][0]) if bids else None
    ba = dec(asks[0][0]) if asks else None
    return bb, ba


def compare_top(bids, asks, truth):
    """Top levels of a client's book against the simulator's truth."""
    mine = ([[dec(p), dec(q)] for p, q, *_ in bids[:TOP]], [[dec(p), dec(q)] for p, q, *_ in asks[:TOP]])
    real = ([[dec(p), dec(q)] for p, q in truth["bids"][:TOP]], [[dec(p), dec(q)] for p, q in truth["asks"][:TOP]])
    if mine == real:
        return "match"
    return {"differs": {"client": [[[str(p), str(q)] for p, q in side] for side in mine],
                        "truth": [[[str(p), str(q)] for p, q in side] for side in real]}}


async def truth_check(sim, market, read_until, get_book):
    """Pauses the market, lets the client catch up with the truth's update id,
    compares the top levels, unpauses. `read_until(uid, deadline)` drives the
    client until its book id reaches `uid` (returns False if it never does)."""
    sim.admin(market, "/admin/pause?on=true", post=True)
    try:
        await asyncio.sleep(0)  # the pause is in force; pending windows still flush
        truth = sim.admin(market, f"/admin/book?symbol={SYMBOL}&depth={TOP}")
        caught_up = await read_until(truth["last_update_id"], time.monotonic() + 10)
        bids, asks = get_book()
        verdict = compare_top(bids, asks, truth)
        if not caught_up and verdict != "match":
            return {"not_caught_up": truth["last_update_id"], **(verdict if isinstance(verdict, dict) else {})}
        return verdict
    finally:
        sim.admin(market, "/admin/pause?on=false", post=True)


# ------------------------------------------------------- python-binance

def pb_version():
    import binance
    return binance.__version__


def pb_url(sock):
    """The URL a python-binance socket opens (its private fields, read to report it)."""
    return f"{sock._url}{sock._prefix}{sock._path}"


def pb_rewrite(obj, sim):
    for name in dir(obj):
        if name.endswith("_URL") and name.isupper():
            val = getattr(obj, name)
            new = sim.rewrite(val)
            if new != val:
                setattr(obj, name, new)


async def pb_client(sim):
    from binance import AsyncClient
    client = AsyncClient()  # create() would ping the real REST API before the URLs change
    pb_rewrite(client, sim)
    await client.ping()  # what create() does, now against the simulator
    await client.get_server_time()
    return client


def pb_manager(client, sim):
    from binance import BinanceSocketManager
    bm = BinanceSocketManager(client)
    pb_rewrite(bm, sim)
    return bm


async def pb_stream(sim, n, timeout, market, feed, api, open_socket, check):
    t = Tally("python-binance", pb_version(), market, feed, api)
    client = await pb_client(sim)
    try:
        bm = pb_manager(client, sim)
        sock = open_socket(bm)
        t.row["url"] = pb_url(sock)
        deadline = time.monotonic() + timeout
        prev = {}
        async with sock as s:
            while t.row["messages"] < n and time.monotonic() < deadline:
                try:
                    msg = await asyncio.wait_for(s.recv(), max(0.1, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                data = msg.get("data", msg) if isinstance(msg, dict) and "stream" in msg else msg
                if isinstance(msg, dict) and msg.get("e") == "error":
                    t.bad(msg, "client error event")
                    continue
                err = check(data, prev)
                if err:
                    t.bad(msg, err)
                else:
                    t.good(msg)
        w = why_not(t, n)
        return t.done(not w, w)
    except Exception as e:  # a client that fails outright is a result too
        return t.done(False, short(e))
    finally:
        await client.close_connection()


async def pb_depth_cache(sim, n, timeout, market, futures):
    from binance import DepthCacheManager, FuturesDepthCacheManager
    feed = "order book (DepthCacheManager)" if not futures else "order book (FuturesDepthCacheManager)"
    t = Tally("python-binance", pb_version(), market, feed,
              "FuturesDepthCacheManager(client, sym, bm=bm, conv_type=Decimal)" if futures else
              "DepthCacheManager(client, sym, bm=bm, conv_type=Decimal)")
    client = await pb_client(sim)
    try:
        bm = pb_manager(client, sim)
        cls = FuturesDepthCacheManager if futures else DepthCacheManager
        dcm = cls(client, SYMBOL, bm=bm, conv_type=Decimal)
        deadline = time.monotonic() + timeout
        async with dcm as d:
            t.row["url"] = pb_url(d._socket)
            bb = ba = None
            while t.row["messages"] < n and time.monotonic() < deadline:
                try:
                    dc = await asyncio.wait_for(d.recv(), max(0.1, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                if isinstance(dc, dict):  # an error event handed through
                    t.bad(dc, "error event")
                    continue
                bids, asks = dc.get_bids(), dc.get_asks()
                bb, ba = book_state(bids, asks)
                if bb is None or ba is None:
                    t.bad(None, "empty side")
                elif bb >= ba:
                    t.bad({"bid": str(bb), "ask": str(ba)}, "crossed book")
                else:
                    t.good({"bids": [[str(p), str(q)] for p, q in bids[:3]],
                            "asks": [[str(p), str(q)] for p, q in asks[:3]]})
            t.row["best_bid"], t.row["best_ask"] = str(bb), str(ba)
            w = why_not(t, n, "book updates")
            if not w:
                async def read_until(uid, dl):
                    while time.monotonic() < dl:
                        if not futures and d._last_update_id is not None and d._last_update_id >= uid:
                            return True
                        try:
                            await asyncio.wait_for(d.recv(), max(0.1, dl - time.monotonic()))
                        except asyncio.TimeoutError:
                            break
                        if futures and compare_top(d.get_depth_cache().get_bids(), d.get_depth_cache().get_asks(),
                                                   sim.admin(market, f"/admin/book?symbol={SYMBOL}&depth={TOP}")) == "match":
                            return True
                    return False

                def book():
                    dc = d.get_depth_cache()
                    return dc.get_bids(), dc.get_asks()

                t.row["truth"] = await truth_check(sim, market, read_until, book)
            return t.done(not w, w)
    except Exception as e:
        return t.done(False, short(e))
    finally:
        await client.close_connection()


def pb_threaded_trade(sim, n, timeout):
    """ThreadedWebsocketManager: it creates its own AsyncClient (create() pings
    REST) and BinanceSocketManager, so the URLs are set on those classes."""
    from binance import AsyncClient, BinanceSocketManager, ThreadedWebsocketManager
    t = Tally("python-binance", pb_version(), "spot", "trades (ThreadedWebsocketManager)",
              "ThreadedWebsocketManager().start_trade_socket(cb, sym)")
    saved = {c: {k: getattr(c, k) for k in dir(c) if k.endswith("_URL") and k.isupper()}
             for c in (AsyncClient, BinanceSocketManager)}
    got = queue.Queue(maxsize=10_000)
    twm = None
    try:
        for c, attrs in saved.items():
            for k, v in attrs.items():
                # the class templates carry {} placeholders (tld, endpoint); fill the ones we rewrite
                filled = v.replace("api{}.binance.{}", "api.binance.com").replace("binance.{}", "binance.com")
                new = sim.rewrite(filled)
                if new != filled:
                    setattr(c, k, new)
        t.row["url"] = BinanceSocketManager.STREAM_URL + "ws/" + SYMBOL.lower() + "@trade"
        twm = ThreadedWebsocketManager()
        twm.start()

        def on_msg(m):
            try:
                got.put_nowait(m)
            except queue.Full:
                pass

        started = time.monotonic()
        while twm._bsm is None and time.monotonic() - started < 10:  # noqa: the manager's own readiness flag
            time.sleep(0.05)
        twm.start_trade_socket(callback=on_msg, symbol=SYMBOL)
        deadline = time.monotonic() + timeout
        prev = {}
        while t.row["messages"] < n and time.monotonic() < deadline:
            try:
                msg = got.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if isinstance(msg, dict) and msg.get("e") == "error":
                t.bad(msg, "client error event")
                continue
            err = check_trade(msg, SYMBOL, prev)
            t.bad(msg, err) if err else t.good(msg)
        w = why_not(t, n)
        return t.done(not w, w)
    except Exception as e:
        return t.done(False, short(e))
    finally:
        if twm is not None:
            twm.stop()
            twm.join(timeout=10)
        for c, attrs in saved.items():
            for k, v in attrs.items():
                setattr(c, k, v)


# ----------------------------------------------------------------- ccxt

def cx_version():
    import ccxt
    return ccxt.__version__


def cx_rewrite(node, sim):
    for k, v in list(node.items()):
        if isinstance(v, dict):
            cx_rewrite(v, sim)
        else:
            node[k] = sim.rewrite(v)


def cx_exchange(sim, market):
    import ccxt.pro
    if market == "spot":
        # Only the spot exchangeInfo: the default also loads USD-M and COIN-M markets.
        ex = ccxt.pro.binance({"options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}}})
    else:
        ex = ccxt.pro.binanceusdm()
    cx_rewrite(ex.urls["api"], sim)
    return ex


CX_SYMBOL = {"spot": "BTC/USDT", "usdm": "BTC/USDT:USDT"}


async def cx_trades(sim, n, timeout, market, name=None):
    feed = "trades" if name is None else f"trades ({name})"
    api = f"watch_trades('{CX_SYMBOL[market]}')" if name is None else \
        f"watch_trades('{CX_SYMBOL[market]}', params={{'name': '{name}'}})"
    t = Tally("ccxt", cx_version(), market, feed, api)
    ex = cx_exchange(sim, market)
    try:
        await ex.load_markets()
        params = {} if name is None else {"name": name}
        deadline = time.monotonic() + timeout
        last = None
        while t.row["messages"] < n and time.monotonic() < deadline:
            try:
                trades = await asyncio.wait_for(ex.watch_trades(CX_SYMBOL[market], params=params),
                                                max(0.1, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break
            for tr in trades:
                info = tr.get("info") or {}
                ok = (tr.get("symbol") == CX_SYMBOL[market] and tr.get("price") and tr["price"] > 0
                      and tr.get("amount") and tr["amount"] > 0 and tr.get("id") is not None
                      and info.get("s") == SYMBOL and info.get("e") in ("trade", "aggTrade"))
                tid = int(tr["id"]) if tr.get("id") is not None else None
                if ok and last is not None and tid <= last:
                    continue  # the cache hands back what it already returned
                if ok:
                    last = tid
                    t.good({"info": info, "id": tr["id"], "price": tr["price"], "amount": tr["amount"],
                            "side": tr.get("side"), "timestamp": tr.get("timestamp")})
                else:
                    t.bad(info, "not a trade of the symbol")
        w = why_not(t, n, "trades")
        return t.done(not w, w)
    except Exception as e:
        return t.done(False, short(e))
    finally:
        t.row["url"] = next(iter(ex.clients), None)
        await ex.close()


async def cx_book(sim, n, timeout, market):
    t = Tally("ccxt", cx_version(), market, "order book", f"watch_order_book('{CX_SYMBOL[market]}')")
    ex = cx_exchange(sim, market)
    try:
        await ex.load_markets()
        deadline = time.monotonic() + timeout
        ob = None
        bb = ba = None
        while t.row["messages"] < n and time.monotonic() < deadline:
            try:
                ob = await asyncio.wait_for(ex.watch_order_book(CX_SYMBOL[market]),
                                            max(0.1, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break
            bb, ba = book_state(ob["bids"], ob["asks"])
            if bb is None or ba is None:
                t.bad(None, "empty side")
            elif bb >= ba:
                t.bad({"bid": str(bb), "ask": str(ba), "nonce": ob.get("nonce")}, "crossed book")
            else:
                t.good({"nonce": ob.get("nonce"), "bids": ob["bids"][:3], "asks": ob["asks"][:3]})
        t.row["best_bid"], t.row["best_ask"] = str(bb), str(ba)
        w = why_not(t, n, "book updates")
        if not w:
            async def read_until(uid, dl):
                while time.monotonic() < dl:
                    book = ex.orderbooks.get(CX_SYMBOL[market])
                    if book is not None and book.get("nonce") is not None and book["nonce"] >= uid:
                        return True
                    try:
                        await asyncio.wait_for(ex.watch_order_book(CX_SYMBOL[market]),
                                               max(0.1, dl - time.monotonic()))
                    except asyncio.TimeoutError:
                        break
                return False

            def book():
                b = ex.orderbooks[CX_SYMBOL[market]]
                # ccxt keeps floats; repr() gives the shortest string that round-trips
                return ([[repr(p), repr(q)] for p, q, *_ in b["bids"]], [[repr(p), repr(q)] for p, q, *_ in b["asks"]])

            t.row["truth"] = await truth_check(sim, market, read_until, book)
        return t.done(not w, w)
    except Exception as e:
        return t.done(False, short(e))
    finally:
        t.row["url"] = next(iter(ex.clients), None)
        await ex.close()


# ----------------------------------------------------------------- main

def checks(sim, n, timeout):
    sym = SYMBOL
    lo = sym.lower()
    return [
        ("python-binance spot trades", lambda: pb_stream(
            sim, n, timeout, "spot", "trades", "BinanceSocketManager.trade_socket(sym)",
            lambda bm: bm.trade_socket(sym), lambda m, p: check_trade(m, sym, p))),
        ("python-binance spot depth diff", lambda: pb_stream(
            sim, n, timeout, "spot", "depth (diff)", "BinanceSocketManager.depth_socket(sym)",
            lambda bm: bm.depth_socket(sym), lambda m, p: check_diff(m, sym, p, False))),
        ("python-binance spot depth partial", lambda: pb_stream(
            sim, n, timeout, "spot", "depth (partial 10)", "BinanceSocketManager.depth_socket(sym, depth='10')",
            lambda bm: bm.depth_socket(sym, depth="10"), lambda m, p: check_partial(m, sym, False, 10))),
        ("python-binance spot depth cache", lambda: pb_depth_cache(sim, n, timeout, "spot", False)),
        ("python-binance usdm aggTrade", lambda: pb_stream(
            sim, n, timeout, "usdm", "aggTrades", "BinanceSocketManager.aggtrade_futures_socket(sym)",
            lambda bm: bm.aggtrade_futures_socket(sym), lambda m, p: check_agg(m, sym, p))),
        ("python-binance usdm depth diff", lambda: pb_stream(
            sim, n, timeout, "usdm", "depth (diff)",
            "BinanceSocketManager.futures_multiplex_socket([sym + '@depth'], category='public')",
            lambda bm: bm.futures_multiplex_socket([lo + "@depth"], category="public"),
            lambda m, p: check_diff(m, sym, p, True))),
        ("python-binance usdm depth partial", lambda: pb_stream(
            sim, n, timeout, "usdm", "depth (partial 10)", "BinanceSocketManager.futures_depth_socket(sym)",
            lambda bm: bm.futures_depth_socket(sym), lambda m, p: check_partial(m, sym, True, 10))),
        ("python-binance usdm depth cache", lambda: pb_depth_cache(sim, n, timeout, "usdm", True)),
        ("ccxt spot trades", lambda: cx_trades(sim, n, timeout, "spot")),
        ("ccxt spot order book", lambda: cx_book(sim, n, timeout, "spot")),
        ("ccxt usdm trades", lambda: cx_trades(sim, n, timeout, "usdm")),
        ("ccxt usdm aggTrades", lambda: cx_trades(sim, n, timeout, "usdm", "aggTrade")),
        ("ccxt usdm order book", lambda: cx_book(sim, n, timeout, "usdm")),
        ("python-binance spot threaded trades", None),  # synchronous, run outside the loop
    ], lo


def failed_row(label, e):
    client = label.split(" ")[0]
    try:
        version = pb_version() if client == "python-binance" else cx_version()
    except Exception:  # noqa: the version is only a label
        version = None
    parts = label.split(" ", 2)
    return {"client": client, "version": version, "market": parts[1], "feed": parts[2], "result": "fail",
            "why": short(e), "messages": 0, "errors": 0, "first": None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("spot_line")
    ap.add_argument("usdm_line")
    ap.add_argument("--n", type=int, default=10, help="messages (books: updates) for a pass")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per check")
    ap.add_argument("--only", default="", help="run the checks whose label contains this")
    a = ap.parse_args()
    sim = Sim(json.loads(a.spot_line), json.loads(a.usdm_line))
    todo, _ = checks(sim, a.n, a.timeout)
    failures = 0
    rows = []
    for label, run in todo:
        if a.only not in label:
            continue
        if run is None:
            try:
                row = pb_threaded_trade(sim, a.n, a.timeout)
            except Exception as e:  # a client that fails outright is a result too
                row = failed_row(label, e)
        else:
            try:
                row = asyncio.run(asyncio.wait_for(run(), a.timeout + 30))
            except Exception as e:
                row = failed_row(label, e)
        failures += row["result"] != "pass"
        rows.append(row)
        print(json.dumps(row, default=str), flush=True)
    print(table(rows), file=sys.stderr)
    sys.exit(1 if failures else 0)


def table(rows):
    """The results as a markdown table (stderr; stdout stays JSON lines)."""
    out = ["| client | version | market | feed | result | messages | truth (top 5) |",
           "|---|---|---|---|---|---:|---|"]
    for r in rows:
        truth = r.get("truth")
        truth = "" if truth is None else (truth if isinstance(truth, str) else "differs")
        res = r["result"] if r["result"] == "pass" else f"fail: {r['why']}"
        out.append(f"| {r['client']} | {r['version']} | {r['market']} | {r['feed']} | {res} | {r['messages']} | {truth} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
