"""Generate realistic, deterministic KuCoin Futures recordings (RECORDING_FORMAT v2).

What it writes: a session as the live bot would have recorded it. A connection opens, the
server says welcome, the bot reads the server time and the contract list, subscribes
(one ack per topic group) and fetches a level-2 snapshot per symbol; then market data
flows: level-2 changes (most of the volume), matches, tickerV2 on every top-of-book
change, mark/index price every second, funding rate every minute, 24 h statistics every
5 s, and the contract list again every 60 s. Every payload has the keys and the
strings-versus-numbers of the samples in ``tests/fixtures/kucoin`` (announcements also
carry ``"type": "message"``, as every live data message does). Each WebSocket message is
written as the text frame the exchange sends (compact JSON), with the id of the connection
it arrived on; each REST body as the JSON text of the answer.

The market: per symbol an integer-tick book (50-150 levels a side, sizes in lots) that
follows a latent fair price. The fair price is a random walk whose volatility switches
between calm and bursty regimes, with a drift set by a latent "pressure" regime that
lasts tens of seconds and also tilts the taker side and the book imbalance, so order
flow and imbalance predict the next moves a little, as in real markets. A book change
is one level-2 message with the next ``sequence``; a trade reduces the level it hits in
the same instant (the level-2 change first, then the match with that sequence); no
change ever crosses the book.

The scenarios, each something that has broken real bots, sit at fractions of the
duration so that two minutes hold them all (shorter runs skip what does not fit); each
is listed in `SynthSummary.events`:

* listing (first contract list after ~25 %) and delisting ("Closed" in the first list
  after ~50 %, gone from the next): the registry must notice both within one poll;
* stale (~20 %): one symbol falls silent for 8 s while the others go on;
* wide_spread (~40 %): one book's top levels are pulled to a ~85-110 bps spread for 10 s;
* sequence_gap (~65 %): a few level-2 messages are lost; a REST snapshot, consistent with
  the true book, follows ~300 ms later, as the live bot would fetch it;
* disconnect (~75 %): a 1006 close, 2 s without data while the market moves on, a second
  connection, acks, and a snapshot of every book;
* malformed: a frame that is not JSON, a garbage level-2 change (carrying the next sequence,
  which the next real change reuses), a tickerV2 without bestAskPrice, an unknown topic;
* funding: funding.begin / funding.end for every symbol at 08:00 UTC, ~60 % in.

Determinism: all randomness comes from one ``random.Random(seed)``, time from a fixed
epoch (2026-01-05T08:00:00Z minus 60 % of the duration), the order of events from a heap
with a counter as tie-breaker; no clock, no set iteration. The same arguments give the
same bytes (checked on CPython 3.11 to 3.13). Exchange times precede ``recv_ns`` by a few
milliseconds of latency, with rare spikes; records are written in ``recv_ns`` order.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import random
import statistics
import string
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from simulator.recording import RecordingWriter

__all__ = ["SynthSummary", "generate"]

_MS = 1_000_000
_S = 1_000_000_000
_FUNDING_NS = 1_767_600_000 * _S  # 2026-01-05T08:00:00Z
_FUNDING_PERIOD_NS = 8 * 3600 * _S
_MAJORS = (
    ("XBT", 90000.0), ("ETH", 3100.0), ("SOL", 140.0), ("XRP", 2.1), ("DOGE", 0.15),
    ("BNB", 650.0), ("ADA", 0.6), ("LINK", 14.0), ("AVAX", 25.0), ("LTC", 85.0),
    ("SUI", 3.5), ("DOT", 4.5), ("TRX", 0.25), ("BCH", 480.0), ("NEAR", 5.0), ("APT", 9.0),
    ("ARB", 0.8), ("OP", 1.8), ("TON", 5.5), ("UNI", 10.0), ("ATOM", 6.0), ("FIL", 5.0),
    ("INJ", 20.0), ("ETC", 25.0), ("AAVE", 300.0), ("WIF", 2.0), ("HBAR", 0.25), ("XLM", 0.3),
)  # fmt: skip
_EXCHANGES = ("okex", "binance", "kucoin", "bybit", "bitmart", "gateio", "bitget", "mexc")
_TOPIC_GROUPS = 5  # level2, execution, tickerV2, instrument, snapshot; + the announcements
_MSGS_PER_EVENT = 2.1  # measured average of messages one market event produces
_PERIODIC_PER_S = 1.22  # instrument 1/s + snapshot.24h 1/5 s + funding.rate 1/60 s
_MIN_LEVELS, _MAX_LEVELS = 50, 150
_TABLE = 1024  # normal quantiles, looked up with one random() (gauss() is several times slower)
_NORMAL = tuple(statistics.NormalDist().inv_cdf((i + 0.5) / _TABLE) for i in range(_TABLE))
_LOGNORMAL = tuple(math.exp(0.6 * z) for z in _NORMAL)
_DECAY = tuple(0.985**i for i in range(_MAX_LEVELS + 1))


@dataclass(frozen=True, slots=True)
class SynthSummary:
    """What `generate` wrote. ``messages`` counts records after the header (every kind);
    ``symbols`` are the contracts of the first contract list; ``events`` holds
    ``(recv_ns, what, symbol)`` per injected scenario event, in recv order."""

    path: str
    messages: int
    symbols: tuple[str, ...]
    seed: int
    listed: tuple[str, ...]
    delisted: tuple[str, ...]
    events: tuple[tuple[int, str, str], ...]


def _fmt(ticks: int, decimals: int) -> str:
    """A price as KuCoin writes it in strings: no trailing zeros ("67153", "90631.2")."""
    if decimals == 0:
        return str(ticks)
    q, r = divmod(ticks, 10**decimals)
    return str(q) if r == 0 else f"{q}.{r:0{decimals}d}".rstrip("0")


def _num(ticks: int, decimals: int) -> int | float:
    """A price as a decoded JSON number: an int when integral, else the nearest float."""
    scale: int = 10**decimals
    q, r = divmod(ticks, scale)
    return q if r == 0 else ticks / scale


def _jsonish(x: float, digits: int) -> int | float:
    """Round like a JSON writer that drops ".0": 86364.0 -> 86364."""
    x = round(x, digits)
    return int(x) if x == int(x) else x


def _made_up_base(rng: random.Random, taken: set[str]) -> str:
    while True:
        base = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 5)))
        if base not in taken:
            taken.add(base)
            return base


def _frame(payload: object) -> str:
    """A message as the exchange's text frame: compact JSON; a str is sent as it is."""
    return payload if type(payload) is str else _dumps(payload)


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


class _Out:
    """Gives each record its recv_ns and writes them in recv order.

    WebSocket messages share one socket, so their recv_ns follow the send order and they
    queue in a deque; REST answers and connection events go through a heap; `flush`
    merges the two. A ws record carries the id of the connection open when it is written
    (every message received before a (re)connection is written before it).
    """

    def __init__(self, writer: RecordingWriter, rng: random.Random) -> None:
        self.write, self.rnd = writer.write, rng.random
        self.ws_queue: deque[tuple[int, int, object]] = deque()
        self.others: list[tuple[int, int, str, object]] = []
        self.tie = self.last_ws = self.down_from = self.down_until = self.count = 0
        self.conn_id = 0

    def ws(self, ts: int, payload: object, control: bool = False) -> int:
        """Queue a ws message sent at exchange time `ts`; its recv_ns, or -1 when lost."""
        r = self.rnd()
        recv = ts + 2 * _MS + int(r * 4 * _MS) + (40 * _MS if r < 0.002 else 0)
        if recv < self.last_ws:  # one socket: arrival order is send order
            recv = self.last_ws
        self.last_ws = recv
        if self.down_from <= recv < self.down_until and not control:
            return -1
        self.ws_queue.append((recv, self.tie, payload))
        self.tie += 1
        return recv

    def rest(self, ts: int, delay: int, path: str, params: dict[str, str], data: Any) -> int:
        body = _dumps({"code": "200000", "data": data})
        payload = {"method": "GET", "path": path, "params": params, "status": 200,
                   "body": body}  # fmt: skip
        self._push(ts + delay, "rest", payload)
        return ts + delay

    def conn(self, ts: int, event: str, conn: int, reason: str) -> None:
        if event == "open":
            self.conn_id = conn
        self._push(ts, "conn", {"event": event, "conn": conn, "reason": reason})

    def _push(self, recv: int, kind: str, payload: object) -> None:
        heapq.heappush(self.others, (recv, self.tie, kind, payload))
        self.tie += 1

    def lose_ws(self, start: int, until: int) -> None:
        """Lose the ws data received in [start, until), including what is already queued."""
        self.down_from, self.down_until = start, until
        self.ws_queue = deque(r for r in self.ws_queue if not start <= r[0] < until)

    def flush(self, upto: int) -> None:
        """Write every queued record received at or before `upto`."""
        queue, others, write = self.ws_queue, self.others, self.write
        while queue and queue[0][0] <= upto:
            recv, tie, payload = queue.popleft()
            while others and others[0][:2] < (recv, tie):
                self._write_other()
            write(recv, "ws", _frame(payload), self.conn_id)
            self.count += 1
        while others and others[0][0] <= upto:
            self._write_other()

    def _write_other(self) -> None:
        recv, _, kind, payload = heapq.heappop(self.others)
        self.write(recv, kind, payload)
        self.count += 1


class _Side:
    """One side of a book: sizes by tick, and the ticks sorted best first."""

    __slots__ = ("keys", "sign", "sizes")

    def __init__(self, sign: int) -> None:
        self.sign = sign  # -1 for bids (keys are -tick), +1 for asks
        self.keys: list[int] = []
        self.sizes: dict[int, int] = {}

    def best(self) -> int:
        return self.keys[0] * self.sign

    def tick_at(self, i: int) -> int:
        return self.keys[min(i, len(self.keys) - 1)] * self.sign

    def set(self, tick: int, size: int) -> None:
        key = tick * self.sign
        if size:
            if tick not in self.sizes:
                insort(self.keys, key)
            self.sizes[tick] = size
        else:
            del self.sizes[tick]
            del self.keys[bisect_left(self.keys, key)]

    def levels(self, decimals: int) -> list[list[int | float]]:
        s = self.sign
        return [[_num(k * s, decimals), self.sizes[k * s]] for k in self.keys]


class _Market:
    """One symbol: its book, the latent fair price and regimes, and the messages they make.

    Hot path: one `step` per market event, so random numbers come from `random()` and
    lookup tables rather than `gauss`/`randint`, which cost several times more.
    """

    def __init__(self, rng: random.Random, out: _Out, base: str, price: float, major: bool,
                 events_per_s: float) -> None:  # fmt: skip
        self.rng, self.rnd, self.out, self.base = rng, rng.random, out, base
        self.sym = sym = f"{base}USDTM"
        # tickSize: 0.1 at 90000, 0.01 at 3100, 0.001 at 14, 0.0001 at 0.5 (0.03 to 2 bps)
        scale = 2e-4 if price < 100 else 1e-4 if price < 1000 else 1e-5
        self.d = max(0, -math.floor(math.log10(price * scale)))
        self.tick = float(f"1e{-self.d}")
        k = math.ceil(math.log10(10.0 / price))  # one lot is worth 10-100 USDT
        self.multiplier: int | float = 10**k if k >= 0 else float(f"1e{k}")
        self.lot_base = float(self.multiplier)
        self.leverage = {"XBT": 125, "ETH": 100}.get(base, 75 if major else rng.choice((20, 50)))
        self.first_open_ms = 1585555200000 if base == "XBT" else rng.randrange(1600, 1740) * 10**9
        self.exchanges = sorted(rng.sample(_EXCHANGES, rng.randint(3, 6)))
        size = 5.0 if major else 1.0
        price *= rng.uniform(0.97, 1.03)
        self.top_lots = max(2, round(size * 10 ** rng.uniform(3.7, 4.7) / (price * self.lot_base)))
        self.turnover = size * 10 ** rng.uniform(6.0, 8.0) * (20 if base == "XBT" else 1)
        self.volume = self.turnover / price
        self.t_l2, self.t_exec = f"/contractMarket/level2:{sym}", f"/contractMarket/execution:{sym}"
        self.t_tick, self.t_inst = f"/contractMarket/tickerV2:{sym}", f"/contract/instrument:{sym}"
        self.mean_wait = _S / events_per_s
        vol_bps = (1.0 if base == "XBT" else 1.5) if major else rng.uniform(2.5, 4.0)
        ticks_per_sqrt_s = vol_bps * 1e-4 * price / self.tick
        self.sigma = min(0.8, ticks_per_sqrt_s / math.sqrt(events_per_s))
        self.seq = rng.randrange(10**9, 10**12)
        self.order_id = rng.randrange(10**17, 3 * 10**17)
        self.bids, self.asks = _Side(-1), _Side(1)
        self.fair = price / self.tick
        self.spread, self.step_sigma, self.drift = 1, self.sigma, 0.0
        self.pressure, self.pressure_until, self.vol_until = 0.0, 0, 0
        n = rng.randint(60, 140)
        self.n_levels, self.few, self.many = n, max(_MIN_LEVELS, n - 10), min(_MAX_LEVELS, n + 10)
        self.extra_depth = max(0.0, rng.uniform(0.02, 0.05) * self.fair - n)
        self.status, self.listed_ms = "Open", cast("int | None", None)
        self.px: dict[int, str] = {}
        self.alive, self.started = True, False
        self.muted_until = self.band_until = self.drop_l2 = 0
        self.band: tuple[int, int] | None = None
        self.on_jump: Callable[[_Market, int, int], None] | None = None
        self.last_tick = round(self.fair)
        self.open24 = price * rng.uniform(0.95, 1.05)
        self.high24 = max(self.open24, price) * rng.uniform(1.0, 1.03)
        self.low24 = min(self.open24, price) * rng.uniform(0.97, 1.0)
        self.open_interest = rng.randrange(10**5, 10**7)
        self.funding = round(rng.gauss(0.0001, 0.00015), 6)
        self.basis = rng.gauss(0.0, 2e-4)
        bb = math.floor(self.fair - 0.5)
        for side, tick in ((self.bids, bb), (self.asks, bb + 1)):
            for i in range(n):
                if tick > 0:
                    side.set(tick, self._level_size(i))
                    tick += side.sign * self._gap(i + 1)
        self.top = self._top()

    # --- book changes and the messages they make ---------------------------------------

    def _level_size(self, i: int) -> int:
        """Lots at level i: geometric-ish decay away from the top, log-normal noise."""
        noise = _LOGNORMAL[int(self.rnd() * _TABLE)]
        return max(1, round(self.top_lots * _DECAY[min(i, _MAX_LEVELS)] * noise))

    def _gap(self, i: int) -> int:
        """Ticks between level i-1 and level i: dense at the top, sparse deep down."""
        mean = 3 * self.extra_depth * i * i / self.n_levels**3
        return 1 + int(-math.log(1.0 - self.rnd()) * mean)

    def _top(self) -> tuple[int, int, int, int]:
        bb, ba = -self.bids.keys[0], self.asks.keys[0]
        return bb, self.bids.sizes[bb], ba, self.asks.sizes[ba]

    def price(self, tick: int) -> str:
        s = self.px.get(tick)
        if s is None:
            s = self.px[tick] = _fmt(tick, self.d)
        return s

    def _l2(self, is_bid: bool, tick: int, size: int, t: int) -> int:
        """Apply one change, give it the next sequence and send it (unless it is lost)."""
        if size and (tick >= self.asks.keys[0] if is_bid else tick <= -self.bids.keys[0]):
            raise AssertionError(f"{self.sym}: a change at {tick} would cross the book")
        (self.bids if is_bid else self.asks).set(tick, size)
        self.seq = seq = self.seq + 1
        if self.drop_l2:
            self.drop_l2 -= 1
            return seq
        change = f"{self.price(tick)},{'buy' if is_bid else 'sell'},{size}"
        recv = self.out.ws(t, {"topic": self.t_l2, "type": "message", "subject": "level2",
                               "sn": seq, "data": {"sequence": seq, "change": change,
                                                   "timestamp": t // _MS}})  # fmt: skip
        if self.on_jump is not None and recv >= 0:
            self.on_jump(self, t, recv)
            self.on_jump = None
        return seq

    def ticker_payload(self, t: int) -> dict[str, Any]:
        bb, bs, ba, az = self.top
        return {"topic": self.t_tick, "type": "message", "subject": "tickerV2", "sn": self.seq,
                "data": {"symbol": self.sym, "sequence": self.seq, "bestBidSize": bs,
                         "bestBidPrice": self.price(bb), "bestAskPrice": self.price(ba),
                         "bestAskSize": az, "ts": t // _MS * _MS}}  # fmt: skip

    # --- one market event -----------------------------------------------------------

    def step(self, t: int) -> int | None:
        """Make one market event at `t`; return when the next one happens (None: never)."""
        if not self.alive:
            return None
        if t < self.muted_until:
            return self.muted_until
        rnd = self.rnd
        if t >= self.pressure_until or t >= self.vol_until:
            self._regimes(t)
        self.fair += self.drift + self.step_sigma * _NORMAL[int(rnd() * _TABLE)]
        r = rnd()
        if r < 0.02:
            self.spread = 1 if r < 0.012 else 2 if r < 0.018 else 3
        if self.band is not None and t >= self.band_until:
            self.band = None
        if self.band is not None or r > 0.7 or not self._realign(t):
            self._noise(t)
        n = len(self.bids.keys)
        if n < self.few or n > self.many:
            self._resize(True, n, t)
        n = len(self.asks.keys)
        if n < self.few or n > self.many:
            self._resize(False, n, t)
        top = self._top()
        if top != self.top:
            self.top = top
            self.out.ws(t, self.ticker_payload(t))
        return t + 1 + int(-math.log(1.0 - rnd()) * self.mean_wait)

    def _regimes(self, t: int) -> None:
        """Redraw the pressure regime (drift, taker side, imbalance) and the volatility one."""
        rng = self.rng
        if t >= self.pressure_until:
            self.pressure = rng.choice((-1.0, 0.0, 0.0, 1.0)) * rng.uniform(0.5, 1.0)
            self.pressure_until = t + int(rng.uniform(10, 60) * _S)
        if t >= self.vol_until:
            burst = self.step_sigma == self.sigma and rng.random() < 0.3
            self.step_sigma = self.sigma * (rng.uniform(2.0, 3.0) if burst else 1.0)
            self.vol_until = t + int(rng.expovariate(1 / (12 if burst else 45)) * _S)
        self.drift = self.pressure * 0.12 * self.sigma

    def _realign(self, t: int) -> bool:
        """Move the top towards the fair price: take or pull stale quotes, improve others."""
        bb, ba, rnd = -self.bids.keys[0], self.asks.keys[0], self.rnd
        want_bid = math.floor(self.fair - self.spread / 2)
        want_ask = want_bid + self.spread
        if ba < want_ask and (bb <= want_bid or rnd() < 0.5):
            if rnd() < 0.5:
                self._trade(True, t)
            else:
                self._l2(False, ba, 0 if rnd() < 0.6 else self.asks.sizes[ba] // 2, t)
        elif bb > want_bid:
            if rnd() < 0.5:
                self._trade(False, t)
            else:
                self._l2(True, bb, 0 if rnd() < 0.6 else self.bids.sizes[bb] // 2, t)
        elif bb < want_bid and bb + 1 < ba:
            top = min(want_bid, ba - 1)
            self._l2(True, top - int(rnd() * (top - bb)), self._level_size(0), t)
        elif ba > want_ask and bb + 1 < ba:
            low = max(want_ask, bb + 1)
            self._l2(False, low + int(rnd() * (ba - low)), self._level_size(0), t)
        else:
            return False
        return True

    def _noise(self, t: int) -> None:
        """An event that does not depend on the fair price: a trade, an add or a cancel."""
        rnd, p = self.rnd, self.pressure
        r = rnd()
        if r < 0.12 and self.band is None:
            self._trade(rnd() < 0.5 + 0.3 * p, t)
        elif r < 0.56:
            self._add(rnd() < 0.5 + 0.2 * p, t)
        else:
            self._cancel(rnd() < 0.5 - 0.2 * p, t)

    def _add(self, is_bid: bool, t: int) -> None:
        side, rnd = (self.bids if is_bid else self.asks), self.rnd
        i = int(-math.log(1.0 - rnd()) * 4)
        tick = side.tick_at(i)
        if rnd() < 0.4:  # a new level just beyond level i
            tick += side.sign * (1 + int(rnd() * 3))
        if self.band is not None:
            edge = self.band[0] if is_bid else self.band[1]
            tick = min(tick, edge) if is_bid else max(tick, edge)
        if tick > 0:  # at or beyond this side's best: never crosses
            self._l2(is_bid, tick, side.sizes.get(tick, 0) + self._level_size(i), t)

    def _cancel(self, is_bid: bool, t: int) -> None:
        side, rnd = (self.bids if is_bid else self.asks), self.rnd
        i = int(-math.log(1.0 - rnd()) * 3) + (self.band is not None)
        if i < len(side.keys) - 1:
            tick = side.tick_at(i)
            self._l2(is_bid, tick, 0 if rnd() < 0.35 else int(rnd() * side.sizes[tick]), t)

    def _trade(self, buy: bool, t: int) -> None:
        """A taker order walks the opposite side; each level hit: level2 change, then match."""
        rnd, side = self.rnd, (self.asks if buy else self.bids)
        qty = 1 + int(-math.log(1.0 - rnd()) * self.top_lots * 0.15)
        if rnd() < 0.03:
            qty *= 6
        self.order_id += 1 + int(rnd() * 50)
        taker = str(self.order_id)
        while qty > 0 and len(side.keys) > _MIN_LEVELS // 2:
            tick = side.best()
            size = side.sizes[tick]
            fill = min(qty, size)
            qty -= fill
            seq = self._l2(not buy, tick, size - fill, t)
            self._on_fill(tick, fill)
            self.order_id += 1 + int(rnd() * 50)
            self.out.ws(t, {"topic": self.t_exec, "type": "message", "subject": "match", "sn": seq,
                            "data": {"symbol": self.sym, "sequence": seq,
                                     "side": "buy" if buy else "sell", "size": fill,
                                     "price": self.price(tick), "takerOrderId": taker,
                                     "makerOrderId": str(self.order_id - 10**15),
                                     "tradeId": str(seq), "ts": t // _MS * _MS}})  # fmt: skip

    def _on_fill(self, tick: int, lots: int) -> None:
        self.last_tick = tick
        px = tick * self.tick
        qty = lots * self.lot_base
        self.volume += qty
        self.turnover += qty * px
        self.high24, self.low24 = max(self.high24, px), min(self.low24, px)
        self.open_interest += lots if self.rnd() < 0.5 else -lots

    def _resize(self, is_bid: bool, n: int, t: int) -> None:
        """Keep a side near its target depth: add a level far out, or drop the deepest."""
        side = self.bids if is_bid else self.asks
        if n > self.many:
            self._l2(is_bid, side.tick_at(n), 0, t)
            return
        tick = side.tick_at(n) + side.sign * self._gap(n)  # one gap beyond the deepest
        if tick > 0:
            self._l2(is_bid, tick, self._level_size(n), t)

    # --- scenario actions -----------------------------------------------------------

    def pull_top(self, t: int, bps: float, until: int) -> int:
        """Pull every level within `bps` around the mid and quote only outside it until `until`."""
        mid = (self.bids.best() + self.asks.best()) / 2
        half = max(1, round(bps * 1e-4 * mid / 2))
        lo, hi = round(mid) - half, round(mid) + half
        for is_bid, side, edge in ((True, self.bids, lo), (False, self.asks, hi)):
            if edge not in side.sizes:  # the new best level first, so the side never empties
                self._l2(is_bid, edge, self._level_size(0), t)
            while side.best() != edge:
                self._l2(is_bid, side.best(), 0, t)
        self.band, self.band_until = (lo, hi), until
        self.top = self._top()
        return self.out.ws(t, self.ticker_payload(t))

    def snapshot(self, t: int) -> dict[str, Any]:
        """The REST level-2 snapshot body: the whole book as of the current sequence."""
        return {"sequence": self.seq, "symbol": self.sym, "bids": self.bids.levels(self.d),
                "asks": self.asks.levels(self.d), "ts": t // _MS * _MS}  # fmt: skip

    # --- periodic pushes and REST rows --------------------------------------------------

    def mark_index(self) -> tuple[int | float, int | float]:
        """Mark near the mid, index off it by a slowly wandering basis."""
        mid = (self.bids.best() + self.asks.best()) / 2 * self.tick
        self.basis += self.rng.gauss(0.0, 2e-5) - self.basis * 0.01
        mark = mid * (1 + self.rng.gauss(0.0, 3e-5))
        return _jsonish(mark, self.d + 1), _jsonish(mid * (1 + self.basis), self.d + 1)

    def instrument(self, t: int) -> None:
        mark, index = self.mark_index()
        self.out.ws(t, {"topic": self.t_inst, "type": "message", "subject": "mark.index.price",
                        "data": {"markPrice": mark, "indexPrice": index, "granularity": 1000,
                                 "timestamp": t // _MS}})  # fmt: skip

    def funding_rate(self, t: int) -> None:
        self.funding = round(self.funding + self.rng.gauss(0.0, 0.000005), 6)
        self.out.ws(t, {"topic": self.t_inst, "type": "message", "subject": "funding.rate",
                        "data": {"granularity": 60000, "fundingRate": self.funding,
                                 "timestamp": t // _MS}})  # fmt: skip

    def stats24(self, t: int, id_: str) -> None:
        last = self.last_tick * self.tick
        self.out.ws(t, {"topic": f"/contractMarket/snapshot:{self.sym}", "type": "message",
                        "subject": "snapshot.24h", "id": id_,
                        "data": {"highPrice": _jsonish(self.high24, self.d),
                                 "lastPrice": _num(self.last_tick, self.d),
                                 "lowPrice": _jsonish(self.low24, self.d),
                                 "price24HoursBefore": _jsonish(self.open24, self.d),
                                 "priceChg": _jsonish(last - self.open24, self.d),
                                 "priceChgPct": round((last - self.open24) / self.open24, 4),
                                 "symbol": self.sym, "ts": t, "turnover": round(self.turnover, 4),
                                 "volume": round(self.volume, 6)}})  # fmt: skip

    def contract(self, t_ms: int) -> dict[str, Any]:
        """One row of GET /api/v1/contracts/active, with the keys of the sample."""
        b, sym, d, lev = self.base, self.sym, self.d, self.leverage
        mark, index = self.mark_index()
        last = self.last_tick * self.tick
        next_funding = (t_ms * _MS // _FUNDING_PERIOD_NS + 1) * _FUNDING_PERIOD_NS // _MS - t_ms
        risk = 100000 if b == "XBT" else 50000 if lev >= 75 else 20000
        return {
            "symbol": sym, "rootSymbol": "USDT", "type": "FFWCSX",
            "firstOpenDate": self.first_open_ms if self.listed_ms is None else self.listed_ms,
            "expireDate": None, "settleDate": None, "baseCurrency": b, "quoteCurrency": "USDT",
            "settleCurrency": "USDT", "maxOrderQty": 1000000, "maxPrice": 1000000, "lotSize": 1,
            "tickSize": self.tick, "indexPriceTickSize": float(f"1e{-d - 1}"),
            "multiplier": self.multiplier, "initialMargin": round(1 / lev, 4),
            "maintainMargin": round(0.5 / lev, 4), "maxRiskLimit": risk, "minRiskLimit": risk,
            "riskStep": risk // 2, "makerFeeRate": 0.0002, "takerFeeRate": 0.0006,
            "takerFixFee": 0, "makerFixFee": 0, "settlementFee": None, "isDeleverage": True,
            "isQuanto": b in ("XBT", "ETH"), "isInverse": False, "markMethod": "FairPrice",
            "fairMethod": "FundingRate", "fundingBaseSymbol": f".{b}INT8H",
            "fundingQuoteSymbol": ".USDTINT8H", "fundingRateSymbol": f".{sym}FPI8H",
            "indexSymbol": f".K{b}USDT", "settlementSymbol": "", "status": self.status,
            "fundingFeeRate": self.funding,
            "predictedFundingFeeRate": round(self.funding * 1.1 + 0.000005, 6),
            "fundingRateGranularity": 28800000, "openInterest": str(self.open_interest),
            "turnoverOf24h": self.turnover, "volumeOf24h": round(self.volume, 6),
            "markPrice": mark, "indexPrice": index, "lastTradePrice": _num(self.last_tick, d),
            "nextFundingRateTime": next_funding, "maxLeverage": lev,
            "sourceExchanges": self.exchanges, "premiumsSymbol1M": f".{sym}PI",
            "premiumsSymbol8H": f".{sym}PI8H", "fundingBaseSymbol1M": f".{b}INT",
            "fundingQuoteSymbol1M": ".USDTINT", "lowPrice": _jsonish(self.low24, d),
            "highPrice": _jsonish(self.high24, d),
            "priceChgPct": round((last - self.open24) / self.open24, 4),
            "priceChg": _jsonish(last - self.open24, d), "k": 490, "m": 300, "f": 1.3,
            "mmrLimit": 0.3, "mmrLevConstant": lev, "supportCross": True,
            "buyLimit": round(float(mark) * 1.05, 4), "sellLimit": round(float(mark) * 0.95, 4),
        }  # fmt: skip


# --- the session: startup, periodic pushes, scenarios ----------------------------------

Task = Callable[[int], "int | None"]


class _Session:
    """Runs every market and scheduled action in exchange-time order from one heap."""

    def __init__(self, out: _Out, rng: random.Random, n: int, start: int, duration: int,
                 rate: float) -> None:  # fmt: skip
        self.out, self.rng, self.start, self.end = out, rng, start, start + duration
        self.events_per_s = max(0.1 * rate, rate - _PERIODIC_PER_S) / _MSGS_PER_EVENT
        taken = {b for b, _ in _MAJORS}
        self.markets = [_Market(rng, out, b, p, True, self.events_per_s) for b, p in _MAJORS[:n]]
        while len(self.markets) < n:
            base, price = _made_up_base(rng, taken), 10 ** rng.uniform(-2, 3)
            self.markets.append(_Market(rng, out, base, price, False, self.events_per_s))
        self.initial = tuple(m.sym for m in self.markets)
        self.new_base, self.new_price = _made_up_base(rng, taken), 10 ** rng.uniform(-2, 0)
        order = list(range(1, n))
        rng.shuffle(order)
        self.pick = [*order, 0]  # scenario symbols, XBT last
        self.heap: list[tuple[int, int, Task]] = []
        self.tie = 0
        self.ack_id = 0
        self.msg_id = rng.getrandbits(95)
        self.events: list[tuple[int, str, str]] = []
        self.listed: list[str] = []
        self.delisted: list[str] = []
        self._plan(duration)

    def at(self, t: int, task: Task) -> None:
        heapq.heappush(self.heap, (t, self.tie, task))
        self.tie += 1

    def _plan(self, duration: int) -> None:
        """Schedule the startup, the periodic pushes and the scenario events that fit."""
        start, minute = self.start, 60 * _S

        def when(frac: float, needs_s: float) -> int | None:
            offset = min(frac * duration, duration - needs_s * _S)
            return start + int(offset) if offset >= 3 * _S else None

        self.at(start, self._startup)
        self.at(start + minute, self._contracts)
        self.at((start // _S + 2) * _S, self._every(_S, _Market.instrument))
        self.at((start // minute + 1) * minute, self._every(minute, _Market.funding_rate))
        for m in self.markets:
            self.at(start + _S + self.rng.randrange(5 * _S), self._stats_task(m))
        k_list, k_delist = math.ceil(0.25 * duration / minute), math.ceil(0.5 * duration / minute)
        self.k_list = max(1, k_list) if max(1, k_list) * minute + 3 * _S <= duration else -1
        self.k_delist = max(1, k_delist) if max(1, k_delist) * minute + _S <= duration else -1
        funding = (start // _FUNDING_PERIOD_NS + 1) * _FUNDING_PERIOD_NS
        while funding + 3 * _S <= self.end:
            self.at(funding, self._funding_begin)
            funding += _FUNDING_PERIOD_NS
        plan: list[tuple[float, float, Task]] = [
            (0.20, 9.0, self._stale), (0.40, 11.0, self._wide), (0.65, 2.0, self._gap),
            (0.75, 4.0, self._disconnect),
        ]  # fmt: skip
        plan += [(f, 1.0, self._malformed_task(k)) for k, f in enumerate((0.15, 0.35, 0.55, 0.85))]
        for frac, needs_s, task in plan:
            t = when(frac, needs_s)
            if t is not None:
                self.at(t, task)

    def run(self) -> None:
        heap, out = self.heap, self.out
        while heap and heap[0][0] < self.end:
            t, _, task = heapq.heappop(heap)
            out.flush(t)
            nxt = task(t)
            if nxt is not None:
                self.at(nxt, task)
        out.flush(1 << 62)

    def _live(self, t: int) -> list[_Market]:
        return [m for m in self.markets if m.alive and m.started and t >= m.muted_until]

    def _choose(self, t: int, slot: int) -> _Market | None:
        """The market picked for scenario `slot`, or the first live one if it is not live."""
        live = self._live(t)
        m = self.markets[self.pick[slot % len(self.pick)]]
        return m if m in live else (live[0] if live else None)

    # --- connection, subscriptions, snapshots -----------------------------------------

    def _startup(self, t: int) -> None:
        self.out.conn(t, "open", 1, "")
        self.at(t + 25 * _MS, self._welcome)
        self.out.rest(t + 40 * _MS, 30 * _MS, "/api/v1/timestamp", {}, (t + 40 * _MS) // _MS)
        self._contracts(t + 80 * _MS)  # answered within 90 ms; then subscribe, then snapshots
        initial = list(self.markets)
        self.at(t + 190 * _MS, lambda ts: self._acks(ts, initial, True))
        self.at(t + 280 * _MS, lambda ts: self._snapshots(ts, initial, 4 * _MS))

    def _welcome(self, t: int) -> None:
        conn_id = "".join(self.rng.choices(string.ascii_letters + string.digits, k=10))
        self.out.ws(t, {"id": conn_id, "type": "welcome"}, control=True)

    def _acks(self, t: int, markets: list[_Market], announcement: bool) -> None:
        """The acks of one subscribe per topic group (at most 100 symbols per request)."""
        groups = _TOPIC_GROUPS * math.ceil(len(markets) / 100) + announcement
        for _ in range(groups):
            self.ack_id += 1
            self.out.ws(t, {"id": str(self.ack_id), "type": "ack"}, control=True)

    def _snapshots(self, t: int, markets: list[_Market], spacing: int) -> None:
        """REST snapshots of `markets`, all taken at `t`; a market not yet started starts."""
        base = (30 + self.rng.randrange(20)) * _MS
        for i, m in enumerate(markets):
            delay = base + i * spacing + self.rng.randrange(max(1, spacing))
            path, params = "/api/v1/level2/snapshot", {"symbol": m.sym}
            recv = self.out.rest(t, delay, path, params, m.snapshot(t))
            if not m.started:
                m.started = True
                self.at(recv + 1 + int(self.rng.random() * m.mean_wait), m.step)

    def _contracts(self, t: int) -> int:
        """Answer GET /api/v1/contracts/active at `t`, listing or delisting when planned."""
        k = (t - self.start) // (60 * _S)
        new, gone = None, None
        if k == self.k_list:
            new = _Market(
                self.rng, self.out, self.new_base, self.new_price, False, self.events_per_s
            )
            new.listed_ms = t // _MS
            self.markets.append(new)
        if k == self.k_delist:
            gone = self._choose(t, 0)
            if gone is not None:
                gone.status, gone.alive = "Closed", False
        rows = [m.contract(t // _MS) for m in self.markets if m.status != "Gone"]
        recv = self.out.rest(t, (40 + self.rng.randrange(50)) * _MS, "/api/v1/contracts/active",
                             {}, rows)  # fmt: skip
        for m in self.markets:
            m.status = "Gone" if m.status == "Closed" else m.status
        if new is not None:
            self._event(recv, "listing", new.sym)
            self.listed.append(new.sym)
            self.at(recv + 30 * _MS, lambda ts: self._acks(ts, [new], False))
            self.at(recv + 80 * _MS, lambda ts: self._snapshots(ts, [new], 0))
            self.at(recv + _S + self.rng.randrange(5 * _S), self._stats_task(new))
        if gone is not None:
            self._event(recv, "delisting", gone.sym)
            self.delisted.append(gone.sym)
        return t + 60 * _S

    def _event(self, recv: int, what: str, sym: str) -> None:
        self.events.append((recv, what, sym))

    # --- periodic pushes ----------------------------------------------------------------

    def _every(self, period: int, push: Callable[[_Market, int], None]) -> Task:
        def run(t: int) -> int:
            for m in self._live(t):
                push(m, t)
            return t + period

        return run

    def _stats_task(self, m: _Market) -> Task:
        def push(t: int) -> int | None:
            if m.alive and m.started and t >= m.muted_until:
                self.msg_id += 1 + self.rng.randrange(1 << 16)
                m.stats24(t, f"{self.msg_id:024x}")
            return t + 5 * _S if m.alive else None

        return push

    def _funding_begin(self, t: int) -> None:
        settled = [(m, m.funding) for m in self._live(t)]
        for m, rate in settled:
            self._event(self._announce(t, m, "funding.begin", t, rate), "funding", m.sym)
        self.at(t + 2 * _S + self.rng.randrange(_S), lambda ts: self._funding_end(ts, t, settled))

    def _funding_end(self, t: int, funding_time: int, settled: list[tuple[_Market, float]]) -> None:
        for m, rate in settled:
            if m.alive:
                self._announce(t, m, "funding.end", funding_time, rate)
                m.funding = round(self.rng.gauss(0.0001, 0.00015), 6)

    def _announce(self, t: int, m: _Market, subject: str, funding_time: int, rate: float) -> int:
        data = {"symbol": m.sym, "fundingTime": funding_time // _MS, "fundingRate": rate,
                "timestamp": t // _MS}  # fmt: skip
        topic = "/contract/announcement"
        return self.out.ws(t, {"topic": topic, "type": "message", "subject": subject, "data": data})

    # --- scenarios ----------------------------------------------------------------------

    def _stale(self, t: int) -> None:
        m = self._choose(t, 1)
        if m is not None:
            m.muted_until = t + 8 * _S
            self._event(t, "stale", m.sym)

    def _wide(self, t: int) -> None:
        m = self._choose(t, 2)
        if m is not None:
            recv = m.pull_top(t, self.rng.uniform(85.0, 110.0), t + 10 * _S)
            self._event(recv, "wide_spread", m.sym)

    def _gap(self, t: int) -> None:
        m = self._choose(t, 3)
        if m is not None:
            m.drop_l2 = self.rng.randint(2, 4)
            m.on_jump = self._on_jump

    def _on_jump(self, m: _Market, t: int, recv: int) -> None:
        """The first level-2 message after the lost ones: the bot fetches a snapshot."""
        self._event(recv, "sequence_gap", m.sym)
        self.at(t + 250 * _MS, lambda ts: self._snapshots(ts, [m], 0))

    def _disconnect(self, t: int) -> None:
        self.out.conn(t, "close", 1, "1006 abnormal closure")
        self.out.lose_ws(t, 1 << 62)
        self._event(t, "disconnect", "")
        self.at(t + 2 * _S, self._reconnect)

    def _reconnect(self, t: int) -> None:
        self.out.conn(t, "open", 2, "")
        self.at(t + 30 * _MS, self._welcome)
        self.at(t + 70 * _MS, lambda ts: self._acks(ts, self._live(ts), True))
        self.out.lose_ws(self.out.down_from, t + 80 * _MS)
        self.at(t + 200 * _MS, lambda ts: self._snapshots(ts, self._live(ts), 3 * _MS))

    def _malformed_task(self, k: int) -> Task:
        def inject(t: int) -> None:
            m = self._choose(t, 4 + k)
            if m is None:
                return
            sym, seq = m.sym, m.seq + 1
            payload: object
            if k == 0:
                payload = f'{{"type":"message","topic":"/contractMarket/level2:{sym}"'
            elif k == 1:
                payload = {"topic": m.t_l2, "type": "message", "subject": "level2", "sn": seq,
                           "data": {"sequence": seq, "change": "abc,buy,",
                                    "timestamp": t // _MS}}  # fmt: skip
            elif k == 2:
                payload = m.ticker_payload(t)
                del payload["data"]["bestAskPrice"]
            else:
                payload = {"topic": f"/contractMarket/level3:{sym}", "type": "message",
                           "subject": "received", "data": {"symbol": sym, "ts": t}}  # fmt: skip
            self._event(self.out.ws(t, payload, control=True), "malformed", sym)

        return inject


MAX_SYMBOLS = 1_000  # KuCoin lists about 530 active contracts
MAX_MINUTES = 1_440  # one day
MAX_RATE = 1_000  # messages per symbol per second


def _check(name: str, value: object, ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {what}, got {value!r}")


def generate(
    path: str | os.PathLike[str],
    *,
    symbols: int = 20,
    minutes: float = 3.0,
    seed: int = 1,
    rate: float = 10.0,
) -> SynthSummary:
    """Write a synthetic recording of `symbols` contracts over `minutes` to `path`.

    `rate` is the target number of market-data messages per symbol per second. The same
    arguments always give the same bytes. Raises ValueError naming a bad argument.
    """
    _check(
        "symbols",
        symbols,
        type(symbols) is int and 1 <= symbols <= MAX_SYMBOLS,
        "an int in 1..1000",
    )
    _check("seed", seed, type(seed) is int, "an int")
    for name, x, hi in (("minutes", minutes, MAX_MINUTES), ("rate", rate, MAX_RATE)):
        number = isinstance(x, int | float) and not isinstance(x, bool)
        _check(name, x, number and 0 < x <= hi, f"a number > 0 and at most {hi:,}")
    duration = round(minutes * 60 * _S)
    start = (_FUNDING_NS - round(0.6 * duration)) // _MS * _MS
    rng = random.Random(seed)
    with RecordingWriter.create(
        path, created_ns=start, source=f"tradebot-synth 2 seed={seed}"
    ) as writer:
        out = _Out(writer, rng)
        session = _Session(out, rng, symbols, start, duration, rate)
        session.run()
    listed, delisted = tuple(session.listed), tuple(session.delisted)
    events = tuple(sorted(session.events))
    return SynthSummary(os.fspath(path), out.count, session.initial, seed, listed, delisted, events)
