"""The simulated exchange's market: one stateful order book per symbol, fed from a recording.

Problem: a recording holds what one client saw, gaps, duplicates and resync snapshots
included. Streamed back as it is, a client that syncs from a snapshot would meet sequence
numbers that do not follow the snapshot it was served, or a book that crosses.

Approach: the model's books are the truth. A symbol's book starts from the first REST
snapshot recorded for it (found by a first pass over the file) when the symbol first shows
up; every recorded level2 change newer than what the book holds is applied in order and
streamed with the book's own next sequence number, so the snapshot the exchange serves and
the changes it streams agree sequence by sequence. A change that would cross the book first
removes the opposite levels it crosses (each removal is a change of its own, as a match would
be). A later recorded snapshot at least as new as the book is reached by streaming the
difference as changes. Tickers (``tickerV2`` on every top-of-book change, ``ticker`` on every
trade) and ``level2Depth5/50`` are derived from the book, so they agree with it too; other
market data (``/contract/instrument``, ``snapshot.24h``, announcements) passes through.

Every timestamp in a frame is moved to the moment the exchange sends it: a field recorded
``d`` after the record arrived is sent ``d / speed`` after now. Sans-IO: the caller passes
the time; nothing here sleeps or touches a socket.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

import orjson

__all__ = [
    "ANNOUNCEMENT",
    "DEPTH5",
    "DEPTH50",
    "EXECUTION",
    "INSTRUMENT",
    "LEVEL2",
    "MALFORMED",
    "SNAPSHOT_24H",
    "TICKER",
    "TICKER_V2",
    "TOPICS",
    "Book",
    "Emit",
    "MarketModel",
    "first_snapshots",
]

LEVEL2: Final = "/contractMarket/level2"
TICKER_V2: Final = "/contractMarket/tickerV2"
TICKER: Final = "/contractMarket/ticker"
EXECUTION: Final = "/contractMarket/execution"
DEPTH5: Final = "/contractMarket/level2Depth5"
DEPTH50: Final = "/contractMarket/level2Depth50"
INSTRUMENT: Final = "/contract/instrument"
SNAPSHOT_24H: Final = "/contractMarket/snapshot"
ANNOUNCEMENT: Final = "/contract/announcement"
TOPICS: Final = frozenset(
    {LEVEL2, TICKER_V2, TICKER, EXECUTION, DEPTH5, DEPTH50, INSTRUMENT, SNAPSHOT_24H, ANNOUNCEMENT}
)
"""The public topic prefixes the exchange serves."""
MALFORMED: Final = "!malformed"
"""The prefix of an `Emit` carrying a recorded frame that is not JSON (for every socket)."""

Emit = tuple[str, str, str]
"""``(topic prefix, symbol, frame text)``: one frame for the subscribers of prefix:symbol."""

_DERIVED: Final = frozenset({TICKER_V2, TICKER, DEPTH5, DEPTH50})
_TIME_KEYS: Final = ("ts", "timestamp", "time", "fundingTime")
_NS_FLOOR: Final = 10**17  # a time field above this is in ns, above _MS_FLOOR in ms
_MS_FLOOR: Final = 10**11
_RENAMED: Final = (
    "symbol",
    "baseCurrency",
    "fundingBaseSymbol",
    "fundingRateSymbol",
    "indexSymbol",
    "premiumsSymbol1M",
    "premiumsSymbol8H",
    "fundingBaseSymbol1M",
)

Level = tuple[float, int | float]
Change = tuple[int, float, str, int | float]  # (sequence, price, "buy" | "sell", size)


@lru_cache(maxsize=1 << 16)
def price_text(price: float) -> str:
    """A price as KuCoin writes it in a string field: plain decimal, no exponent, no '.0'."""
    text = format(Decimal(repr(price)), "f")
    return text[:-2] if text.endswith(".0") else text


def _size(value: object) -> int | float:
    """A size from a frame (int, float or text) as an int when it is whole."""
    number = float(value) if isinstance(value, str) else value
    if type(number) is int:
        return number
    if type(number) is not float or number != number or number < 0:
        raise ValueError(f"bad size {value!r}")
    return int(number) if number.is_integer() else number


def _levels(rows: object) -> list[Level]:
    if type(rows) is not list:
        raise ValueError("levels are not a list")
    return [(float(row[0]), _size(row[1])) for row in rows]


class _SortedSide:
    """A price map kept in key order (a dict plus a bisect-sorted key list): the small part
    of a sorted dict the model uses."""

    __slots__ = ("_keys", "_sizes")

    def __init__(self) -> None:
        self._sizes: dict[float, int | float] = {}
        self._keys: list[float] = []

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __iter__(self) -> Iterator[float]:
        return iter(list(self._keys))

    def __setitem__(self, key: float, size: int | float) -> None:
        if key not in self._sizes:
            bisect.insort(self._keys, key)
        self._sizes[key] = size

    def get(self, key: float) -> int | float | None:
        return self._sizes.get(key)

    def pop(self, key: float, default: None = None) -> int | float | None:
        size = self._sizes.pop(key, None)
        if size is not None:
            del self._keys[bisect.bisect_left(self._keys, key)]
        return size

    def peekitem(self, index: int) -> tuple[float, int | float]:
        key = self._keys[index]
        return key, self._sizes[key]

    def popitem(self, index: int) -> tuple[float, int | float]:
        key = self._keys.pop(index)
        return key, self._sizes.pop(key)

    def items(self) -> list[tuple[float, int | float]]:
        sizes = self._sizes
        return [(key, sizes[key]) for key in self._keys]


class Book:
    """One symbol's order book on the exchange, with the sequence of its last change."""

    __slots__ = (
        "asks",
        "bids",
        "depth_dirty",
        "hide",
        "last_top",
        "last_trade",
        "live",
        "recorded_seq",
        "sequence",
        "symbol",
    )

    def __init__(
        self, symbol: str, sequence: int, bids: Iterable[Level] = (), asks: Iterable[Level] = ()
    ) -> None:
        self.symbol = symbol
        self.sequence = sequence
        self.recorded_seq = sequence  # the newest recorded sequence the book includes
        self.bids = _SortedSide()  # -price -> size: the best bid first
        self.asks = _SortedSide()  # price -> size: the best ask first
        for price, size in bids:
            if size > 0:
                self.bids[-price] = size
        for price, size in asks:
            if size > 0:
                self.asks[price] = size
        self.last_trade: dict[str, Any] | None = None
        self.last_top: tuple[float, int | float, float, int | float] | None = None
        self.depth_dirty = True
        self.hide = 0  # the next `hide` changes are applied but not streamed (the gap fault)
        self.live = False  # started from a recorded snapshot, or fed a recorded change

    def apply(self, price: float, side: str, size: int | float) -> list[Change]:
        """Set the size at `price` (0 removes it); the changes made, crossed levels first."""
        out: list[Change] = []
        if side == "buy":
            if size > 0:
                while self.asks and self.asks.peekitem(0)[0] <= price:
                    crossed = self.asks.popitem(0)[0]
                    self.sequence += 1
                    out.append((self.sequence, crossed, "sell", 0))
                self.bids[-price] = size
            else:
                self.bids.pop(-price, None)
        else:
            if size > 0:
                while self.bids and -self.bids.peekitem(0)[0] >= price:
                    crossed = -self.bids.popitem(0)[0]
                    self.sequence += 1
                    out.append((self.sequence, crossed, "buy", 0))
                self.asks[price] = size
            else:
                self.asks.pop(price, None)
        self.sequence += 1
        out.append((self.sequence, price, side, size))
        self.depth_dirty = True
        return out

    def reconcile(self, bids: list[Level], asks: list[Level]) -> list[Change]:
        """Reach the given book by changes: stale levels removed first, then sizes set."""
        out: list[Change] = []
        want_bids = {price: size for price, size in bids if size > 0}
        want_asks = {price: size for price, size in asks if size > 0}
        for key in [k for k in self.bids if -k not in want_bids]:
            out += self.apply(-key, "buy", 0)
        for key in [k for k in self.asks if k not in want_asks]:
            out += self.apply(key, "sell", 0)
        for price, size in want_bids.items():
            if self.bids.get(-price) != size:
                out += self.apply(price, "buy", size)
        for price, size in want_asks.items():
            if self.asks.get(price) != size:
                out += self.apply(price, "sell", size)
        return out

    def top(self, n: int | None = None) -> tuple[list[Level], list[Level]]:
        """The best `n` levels a side (all with None): bids high to low, asks low to high."""
        bids = self.bids.items() if n is None else self.bids.items()[:n]
        asks = self.asks.items() if n is None else self.asks.items()[:n]
        return [(-key, size) for key, size in bids], list(asks)

    def best(self) -> tuple[float, int | float, float, int | float]:
        """(bid price, bid size, ask price, ask size); 0 for an empty side."""
        bid, bid_size = (
            (-self.bids.peekitem(0)[0], self.bids.peekitem(0)[1]) if self.bids else (0, 0)
        )
        ask, ask_size = self.asks.peekitem(0) if self.asks else (0, 0)
        return float(bid), bid_size, float(ask), ask_size

    def crossed(self) -> bool:
        """Whether the best bid is at or above the best ask (never, by construction)."""
        return bool(
            self.bids and self.asks and -self.bids.peekitem(0)[0] >= self.asks.peekitem(0)[0]
        )


def first_snapshots(records: Iterable[tuple[int, str, Any, int | None]]) -> dict[str, Any]:
    """The first recorded REST answers the model starts from, from a pass over the records.

    Returns ``{"snapshots": {symbol: data}, "contracts": [contract, ...] | None}``.
    """
    snapshots: dict[str, Any] = {}
    contracts: list[dict[str, Any]] | None = None
    for _recv_ns, kind, payload, _conn in records:
        if kind != "rest" or payload["status"] != 200:
            continue
        path = payload["path"]
        if path == "/api/v1/level2/snapshot":
            data = _rest_data(payload["body"])
            if type(data) is dict and type(data.get("symbol")) is str:
                snapshots.setdefault(data["symbol"], data)
        elif path == "/api/v1/contracts/active" and contracts is None:
            data = _rest_data(payload["body"])
            if type(data) is list:
                contracts = [c for c in data if type(c) is dict and type(c.get("symbol")) is str]
    return {"snapshots": snapshots, "contracts": contracts}


def _rest_data(body: str | bytes | object) -> Any:
    """The ``data`` of a recorded KuCoin answer body, or None when it is not a good answer."""
    try:
        answer = orjson.loads(body) if isinstance(body, str | bytes) else body
    except orjson.JSONDecodeError:
        return None
    if type(answer) is not dict or answer.get("code") != "200000":
        return None
    return answer.get("data")


class MarketModel:
    """Books, contracts and the frames to push, from a recording's records (sans-IO).

    `wants(prefix, symbol)` says whether any socket subscribes to a topic, so derived frames
    nobody reads are not built. `skipped` counts records not streamed, by reason.
    """

    def __init__(
        self,
        start: dict[str, Any],
        *,
        speed: float | None = None,
        wants: Callable[[str, str], bool] = lambda prefix, symbol: True,
    ) -> None:
        self._snapshots: dict[str, Any] = start["snapshots"]
        self._scale = 1.0 if speed is None else 1.0 / speed
        self.wants = wants
        self.books: dict[str, Book] = {}
        self.contracts: dict[str, dict[str, Any]] = {}
        self.delisted: dict[str, str] = {}  # symbol -> the status the delist fault gave it
        self.clones: dict[str, list[str]] = {}  # template symbol -> listed symbols
        self._listed: dict[str, dict[str, Any]] = {}
        self.skipped: Counter[str] = Counter()
        self.now_ns = 0
        self._recv_ns = 0
        if start["contracts"] is not None:
            self._set_contracts(start["contracts"])

    # -- contracts -------------------------------------------------------------------------

    def _set_contracts(self, contracts: list[dict[str, Any]]) -> None:
        self.contracts = {c["symbol"]: c for c in contracts}
        for symbol, contract in self._listed.items():
            self.contracts.setdefault(symbol, contract)
        for symbol in self.contracts:
            self.book(symbol)

    def active(self) -> list[dict[str, Any]]:
        """``contracts/active`` as served now: the recorded list with the faults' changes."""
        out = []
        for symbol, contract in self.contracts.items():
            status = self.delisted.get(symbol)
            out.append(contract if status is None else {**contract, "status": status})
        return out

    def contract(self, symbol: str) -> dict[str, Any] | None:
        """One contract as served now, or None for an unknown symbol."""
        contract = self.contracts.get(symbol)
        status = self.delisted.get(symbol)
        if contract is None or status is None:
            return contract
        return {**contract, "status": status}

    def open_symbols(self) -> list[str]:
        """Symbols listed with status Open and a book, in the list's order."""
        return [
            c["symbol"]
            for c in self.active()
            if c.get("status") == "Open" and c["symbol"] in self.books
        ]

    def list_contract(self, template: str, name: str | None = None) -> str:
        """Add a new contract trading like `template` (the list fault); its symbol."""
        base = self.contracts[template].get("baseCurrency")
        old_base = base if type(base) is str and template.startswith(base) else template
        n = len(self._listed) + 1
        symbol = name or f"NEW{n}{template[len(old_base) :]}"
        new_base = symbol[: len(symbol) - (len(template) - len(old_base))] or symbol
        contract = dict(self.contracts[template])
        for key in _RENAMED:
            if type(contract.get(key)) is str:
                contract[key] = contract[key].replace(old_base, new_base)
        contract["symbol"] = symbol
        contract["status"] = "Open"
        contract["firstOpenDate"] = self.now_ns // 1_000_000
        self._listed[symbol] = contract
        self.contracts[symbol] = contract
        source = self.books[template]
        bids, asks = source.top()
        clone = Book(symbol, source.sequence, bids, asks)
        clone.recorded_seq, clone.live = source.recorded_seq, True
        self.books[symbol] = clone
        self.clones.setdefault(template, []).append(symbol)
        return symbol

    def delist(self, symbol: str, status: str = "Closed") -> None:
        """Take `symbol` out of Open (the delist fault): its data stops from now on."""
        self.delisted[symbol] = status

    # -- books -----------------------------------------------------------------------------

    def book(self, symbol: str) -> Book:
        """The symbol's book, started from its first recorded snapshot (or empty)."""
        book = self.books.get(symbol)
        if book is None:
            data: Any = self._snapshots.get(symbol)
            try:
                book = Book(
                    symbol, int(data["sequence"]), _levels(data["bids"]), _levels(data["asks"])
                )
                book.live = True
            except (TypeError, KeyError, ValueError, IndexError):
                book = Book(symbol, 0)
            self.books[symbol] = book
        return book

    def known(self, symbol: str) -> bool:
        """Whether REST answers for `symbol` (listed now, or seen trading)."""
        return symbol in self.contracts or symbol in self.books

    def snapshot(self, symbol: str, depth: int | None = None) -> dict[str, Any]:
        """The level2 snapshot (``depth`` levels a side, or all) at the book's sequence."""
        book = self.book(symbol)
        bids, asks = book.top(depth)
        return {
            "sequence": book.sequence,
            "symbol": symbol,
            "bids": [[price, size] for price, size in bids],
            "asks": [[price, size] for price, size in asks],
            "ts": self.now_ns,
        }

    def ticker(self, symbol: str) -> dict[str, Any]:
        """The REST ticker: the last trade and the best bid and ask now."""
        book = self.book(symbol)
        bid, bid_size, ask, ask_size = book.best()
        trade = book.last_trade or {
            "side": "buy",
            "size": 0,
            "tradeId": "",
            "price": price_text(bid),
        }
        return {
            "sequence": book.sequence,
            "symbol": symbol,
            "side": trade["side"],
            "size": trade["size"],
            "tradeId": trade["tradeId"],
            "price": trade["price"],
            "bestBidPrice": price_text(bid),
            "bestBidSize": bid_size,
            "bestAskPrice": price_text(ask),
            "bestAskSize": ask_size,
            "ts": self.now_ns,
        }

    # -- records in, frames out ------------------------------------------------------------

    def feed(self, recv_ns: int, kind: str, payload: Any, now_ns: int) -> list[Emit]:
        """The frames one recorded record makes the exchange push at `now_ns`."""
        self.now_ns = now_ns
        self._recv_ns = recv_ns
        if kind == "rest":
            return self._on_rest(payload)
        if kind != "ws":
            return []
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            text = payload if type(payload) is str else payload.decode("utf-8", "replace")
            return [(MALFORMED, "", text)]
        if type(msg) is not dict or msg.get("type", "message") != "message":
            self.skipped["control"] += 1
            return []
        topic, data = msg.get("topic"), msg.get("data")
        if type(topic) is not str or type(data) is not dict:
            self.skipped["bad_message"] += 1
            return []
        prefix, _, symbol = topic.partition(":")
        if prefix not in TOPICS:
            self.skipped["unknown_topic"] += 1
            return []
        named = data.get("symbol")
        if prefix == ANNOUNCEMENT and type(named) is str:
            symbol = named
        out = self._on_message(prefix, symbol, msg, data)
        for clone in self.clones.get(symbol, ()):
            out += self._on_message(prefix, clone, msg, {**data, "symbol": clone})
        return out

    def _on_rest(self, payload: dict[str, Any]) -> list[Emit]:
        if payload["status"] != 200:
            return []
        data = _rest_data(payload["body"])
        if payload["path"] == "/api/v1/contracts/active" and type(data) is list:
            self._set_contracts(
                [c for c in data if type(c) is dict and type(c.get("symbol")) is str]
            )
        elif payload["path"] == "/api/v1/level2/snapshot" and type(data) is dict:
            symbol = data.get("symbol")
            if type(symbol) is str and symbol in self.books and symbol not in self.delisted:
                out = self._reconcile(self.books[symbol], data)
                for clone in self.clones.get(symbol, ()):
                    out += self._reconcile(self.books[clone], data)
                return out
        return []

    def _on_message(
        self, prefix: str, symbol: str, msg: dict[str, Any], data: dict[str, Any]
    ) -> list[Emit]:
        if symbol in self.delisted:
            self.skipped["delisted"] += 1
            return []
        if prefix == LEVEL2:
            return self._on_change(symbol, data)
        if prefix == EXECUTION:
            return self._on_trade(symbol, msg, data)
        if prefix in _DERIVED and (symbol in self._snapshots or self.book(symbol).live):
            self.skipped["derived_from_book"] += 1
            return []
        return [(prefix, symbol, self._pass_through(prefix, symbol, msg, data))]

    def _reconcile(self, book: Book, data: dict[str, Any]) -> list[Emit]:
        """Reach a recorded resync snapshot when it is at least as new as the book."""
        try:
            recorded_seq = int(data["sequence"])
            bids, asks = _levels(data["bids"]), _levels(data["asks"])
        except (TypeError, KeyError, ValueError, IndexError):
            self.skipped["bad_snapshot"] += 1
            return []
        if recorded_seq < book.recorded_seq:
            self.skipped["stale_snapshot"] += 1
            return []
        book.recorded_seq = recorded_seq
        return self._stream(book, book.reconcile(bids, asks), self._ms(None))

    def _on_change(self, symbol: str, data: dict[str, Any]) -> list[Emit]:
        book = self.book(symbol)
        try:
            recorded_seq = int(data["sequence"])
            price_s, side, size_s = str(data["change"]).split(",")
            price, size = float(price_s), _size(size_s)
        except (KeyError, ValueError, TypeError):
            self.skipped["bad_change"] += 1
            return []
        if side not in ("buy", "sell"):
            self.skipped["bad_change"] += 1
            return []
        if not book.live:  # no snapshot recorded: the stream starts the book
            book.live = True
            book.sequence = book.recorded_seq = recorded_seq - 1
        if recorded_seq <= book.recorded_seq:
            self.skipped["already_in_book"] += 1
            return []
        book.recorded_seq = recorded_seq
        return self._stream(book, book.apply(price, side, size), self._ms(data.get("timestamp")))

    def _stream(self, book: Book, changes: list[Change], ms: int) -> list[Emit]:
        out: list[Emit] = []
        symbol = book.symbol
        topic = f"{LEVEL2}:{symbol}"
        for seq, price, side, size in changes:
            if book.hide > 0:
                book.hide -= 1
                continue
            frame = {
                "topic": topic,
                "type": "message",
                "subject": "level2",
                "sn": seq,
                "data": {
                    "sequence": seq,
                    "change": f"{price_text(price)},{side},{size}",
                    "timestamp": ms,
                },
            }
            out.append((LEVEL2, symbol, orjson.dumps(frame).decode()))
        top = book.best()
        if top != book.last_top:
            book.last_top = top
            if self.wants(TICKER_V2, symbol):
                out.append((TICKER_V2, symbol, self._ticker_v2(book, top)))
        return out

    def _ticker_v2(self, book: Book, top: tuple[float, int | float, float, int | float]) -> str:
        frame = {
            "topic": f"{TICKER_V2}:{book.symbol}",
            "type": "message",
            "subject": "tickerV2",
            "sn": book.sequence,
            "data": {
                "symbol": book.symbol,
                "sequence": book.sequence,
                "bestBidSize": top[1],
                "bestBidPrice": price_text(top[0]),
                "bestAskPrice": price_text(top[2]),
                "bestAskSize": top[3],
                "ts": self.now_ns,
            },
        }
        return orjson.dumps(frame).decode()

    def _on_trade(self, symbol: str, msg: dict[str, Any], data: dict[str, Any]) -> list[Emit]:
        book = self.book(symbol)
        data = {**data, "symbol": symbol, "sequence": book.sequence}
        self._shift(data)
        frame = {**msg, "topic": f"{EXECUTION}:{symbol}", "sn": book.sequence, "data": data}
        book.last_trade = {
            "side": data.get("side"),
            "size": data.get("size"),
            "tradeId": data.get("tradeId"),
            "price": str(data.get("price")),
        }
        out: list[Emit] = [(EXECUTION, symbol, orjson.dumps(frame).decode())]
        if self.wants(TICKER, symbol):
            bid, bid_size, ask, ask_size = book.best()
            ticker = {
                "topic": f"{TICKER}:{symbol}",
                "type": "message",
                "subject": "ticker",
                "sn": book.sequence,
                "data": {
                    "symbol": symbol,
                    "sequence": book.sequence,
                    "side": data.get("side"),
                    "size": data.get("size"),
                    "price": str(data.get("price")),
                    "bestBidSize": bid_size,
                    "bestBidPrice": price_text(bid),
                    "bestAskPrice": price_text(ask),
                    "tradeId": data.get("tradeId"),
                    "bestAskSize": ask_size,
                    "ts": data.get("ts", self.now_ns),
                },
            }
            out.append((TICKER, symbol, orjson.dumps(ticker).decode()))
        return out

    def _pass_through(
        self, prefix: str, symbol: str, msg: dict[str, Any], data: dict[str, Any]
    ) -> str:
        data = dict(data)
        self._shift(data)
        topic = prefix if prefix == ANNOUNCEMENT else f"{prefix}:{symbol}"
        return orjson.dumps({**msg, "topic": topic, "data": data}).decode()

    def depth_frames(self) -> list[Emit]:
        """``level2Depth5`` / ``level2Depth50`` for books changed since the last call."""
        out: list[Emit] = []
        ms = self.now_ns // 1_000_000
        for symbol, book in self.books.items():
            if not book.depth_dirty:
                continue
            book.depth_dirty = False
            for prefix, n in ((DEPTH5, 5), (DEPTH50, 50)):
                if symbol in self.delisted or not self.wants(prefix, symbol):
                    continue
                bids, asks = book.top(n)
                frame = {
                    "topic": f"{prefix}:{symbol}",
                    "type": "message",
                    "subject": "level2",
                    "sn": book.sequence,
                    "data": {
                        "bids": [[price_text(p), s] for p, s in bids],
                        "sequence": book.sequence,
                        "timestamp": ms,
                        "ts": ms,
                        "asks": [[price_text(p), s] for p, s in asks],
                    },
                }
                out.append((prefix, symbol, orjson.dumps(frame).decode()))
        return out

    # -- time ------------------------------------------------------------------------------

    def _ms(self, recorded_ms: object) -> int:
        if type(recorded_ms) is int and recorded_ms > _MS_FLOOR:
            return (
                int(self.now_ns + (recorded_ms * 1_000_000 - self._recv_ns) * self._scale)
                // 1_000_000
            )
        return self.now_ns // 1_000_000

    def _shift(self, data: dict[str, Any]) -> None:
        """Move the time fields of `data` from recorded time to the time of sending."""
        for key in _TIME_KEYS:
            value = data.get(key)
            if type(value) is not int:
                continue
            if value > _NS_FLOOR:
                data[key] = int(self.now_ns + (value - self._recv_ns) * self._scale)
            elif value > _MS_FLOOR:
                data[key] = self._ms(value)
