"""Sans-IO KuCoin Futures protocol: payloads in, typed events out.

`Parser.parse_ws` takes one decoded WebSocket message (a dict, or the text of a frame
that was not JSON) and `Parser.parse_rest` one recorded REST answer; each returns one
event from `tradebot.kucoin.events`, or None. There are no sockets and no clock here:
live, replay, the simulated exchange and the tests share this code.

Bad input never raises. A payload that does not parse is counted in `Parser.rejects`
under a reason (`level2_bad_value`, `ws_not_json`, `unknown_topic`, ...) and skipped,
so one garbled frame cannot stop 500 symbols. Messages are also counted by channel in
`Parser.topics` (`level2`, `tickerV2`, ...). Our own mistakes, like building a
subscribe with no topic, do raise.

Number types vary on the wire: prices are strings in tickers and level-2 changes,
numbers in snapshots and instrument pushes; both parse. Timestamps come in ms or ns
depending on the message (and the docs disagree with themselves), so `to_ns` decides
the unit from the magnitude.

Per-channel readers live in one table, `_READERS` (the layout of h11's `READERS`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from tradebot.kucoin import topics as t
from tradebot.kucoin.events import (
    Ack,
    BookDepth,
    BookSnapshot,
    Contract,
    ContractsActive,
    Event,
    FundingRate,
    FundingSettlement,
    Level2Change,
    MarkIndexPrice,
    Pong,
    RestError,
    ServerTime,
    Side,
    Snapshot24h,
    Ticker,
    Trade,
    Welcome,
    WsError,
)
from tradebot.kucoin.wire import (
    DECODE_ERRORS,
    UNSET,
    WsData,
    WsFrame,
    decode_json,
    decode_snapshot_body,
    decode_ws,
)

__all__ = [
    "FIELD_ERRORS",
    "REST_OK",
    "Parser",
    "build_ping",
    "build_subscribe",
    "build_unsubscribe",
    "decode_frame",
    "to_ns",
    "topics_of",
]

REST_OK = "200000"
_MAX_ROUTES = 100_000  # topics remembered; past that, routes are computed per message

_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_BAD_VALUE = (ValueError, TypeError, IndexError, AttributeError, OverflowError)
#: What a field reader (`level2_fields`, `ticker_v2_fields`) raises on a bad payload.
FIELD_ERRORS = (KeyError, *_BAD_VALUE)


def _int(value: Any) -> int:
    """An integer from an int, an integral float or a digit string; bools are refused."""
    if type(value) is int:
        return value
    if type(value) is bool:
        raise ValueError("bool is not an integer")
    return int(value)


def _symbol(d: dict[str, Any], from_topic: str) -> str:
    """The symbol a message is about: the data's own, else the topic's; never empty."""
    name = d.get("symbol") or from_topic
    if type(name) is not str or not name:
        raise ValueError("no symbol")
    return name


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    if value is None:
        return False
    raise ValueError(f"not a boolean: {value!r}")


#: The first receive or exchange time in ns the core cannot hold (a signed 64-bit integer,
#: as SQLite and every clock here store it): about the year 2262.
NS_LIMIT = 1 << 63


def to_ns(value: Any) -> int:
    """An epoch timestamp in s, ms, us or ns (decided by magnitude) as integer ns; a time
    that is negative or past `NS_LIMIT` in ns is a bad value (ValueError)."""
    v = _int(value)
    if v >= 100_000_000_000_000_000:  # 1e17: ns
        ns = v
    elif v >= 100_000_000_000_000:  # 1e14: us
        ns = v * 1_000
    elif v >= 100_000_000_000:  # 1e11: ms
        ns = v * 1_000_000
    else:
        ns = v * 1_000_000_000
    if not 0 <= ns < NS_LIMIT:
        raise ValueError(f"timestamp {value!r} out of range")
    return ns


def _price(value: Any) -> float:
    """A finite price or size from a string or a number; raises ValueError otherwise."""
    if type(value) is bool:
        raise ValueError("bool is not a number")
    x = float(value)
    if x - x != 0.0:  # nan and +-inf; one subtraction is cheaper than two comparisons
        raise ValueError("not finite")
    return x


def _levels(rows: Any) -> list[tuple[float, float]]:
    if type(rows) is not list:
        raise TypeError("levels are not a list")
    out = []
    for row in rows:
        if not isinstance(row, list | tuple):
            raise TypeError("a level is not a [price, size] pair")
        out.append((_price(row[0]), _price(row[1])))
    return out


def _side(value: Any) -> Side:
    """The Side for "buy" or "sell"; anything else is a bad value (ValueError)."""
    side = _SIDES.get(value) if isinstance(value, str) else None
    if side is None:
        raise ValueError(f"unknown side {value!r}")
    return side


def decode_frame(frame: Any) -> Any:
    """A frame as received (str or bytes) decoded from JSON into plain values; a frame that
    is not JSON comes back as a str, which `Parser.parse_ws` counts as `ws_not_json`.
    Anything else is returned as it is (`parse_ws` counts what is not a map)."""
    if type(frame) is not str and type(frame) is not bytes:
        return frame
    try:
        return decode_json(frame)
    except DECODE_ERRORS:
        return frame if type(frame) is str else ""


# --- WebSocket readers: (symbol from the topic, subject, data) -> event ------------------
#
# Each channel has two readers that build the same event: `_typed_*` reads a `WsData`
# (the hot path, see `tradebot.kucoin.wire`) and `_read_*` reads the data as a map (a
# version-1 recording, and any frame the typed decode refused). A typed reader raises on
# anything unusual (a field UNSET reads as a bad value) and the parser then runs the map
# reader, which decides and counts the reason. tests/test_wire.py pins the pairs together.


def _change(text: str) -> tuple[Side, float, float]:
    """A level-2 `change` ("price,side,size") as (side, price, size)."""
    price_text, side_text, size_text = text.split(",")
    price = float(price_text)
    size = float(size_text)
    if price - price != 0.0 or size - size != 0.0:  # x - x is 0.0 only for finite x
        raise ValueError("not finite")
    side = _SIDES.get(side_text)
    if side is None:
        raise ValueError(f"unknown side {side_text!r}")
    return side, price, size


def _ms_to_ns(ts: Any) -> int:
    """A level-2 timestamp (ms, the documented unit, or any unit `to_ns` knows) in ns."""
    if type(ts) is int and 100_000_000_000 <= ts < 9_223_372_036_854:
        return ts * 1_000_000
    return to_ns(ts)


def _read_level2(symbol: str, subject: Any, d: dict[str, Any]) -> Event:
    side, price, size = _change(d["change"])
    return Level2Change(symbol, _int(d["sequence"]), side, price, size, _ms_to_ns(d["timestamp"]))


def _typed_level2(symbol: str, subject: Any, d: WsData) -> Event:
    # The busiest reader: `_change` and `_ms_to_ns` inlined (tests/test_wire.py pins this
    # reader to `_read_level2`).
    price_text, side_text, size_text = d.change.split(",")  # type: ignore[union-attr]
    price = float(price_text)
    size = float(size_text)
    side = _SIDES.get(side_text)
    sequence = d.sequence
    ts = d.timestamp
    if price - price != 0.0 or size - size != 0.0 or side is None or type(sequence) is not int:
        raise ValueError("not a level-2 change")
    if type(ts) is int and 100_000_000_000 <= ts < 9_223_372_036_854:
        ts *= 1_000_000
    else:
        ts = to_ns(ts)
    return Level2Change(symbol, sequence, side, price, size, ts)


def _quote(bid: Any, bid_size: Any, ask: Any, ask_size: Any) -> tuple[float, float, float, float]:
    """Best bid, bid size, best ask, ask size as finite floats (from text or numbers)."""
    if bool in (type(bid), type(ask), type(bid_size), type(ask_size)):
        raise ValueError("bool is not a number")
    b = float(bid)
    a = float(ask)
    bs = float(bid_size)
    az = float(ask_size)
    if (b - b) + (a - a) + (bs - bs) + (az - az) != 0.0:  # 0.0 only when all are finite
        raise ValueError("not finite")
    return b, bs, a, az


def _data_symbol(name: Any, from_topic: str) -> str:
    """The data's own symbol when it names one (not empty), else the topic's."""
    if not name:
        return from_topic
    if type(name) is not str:
        raise ValueError("symbol is not text")
    return name


def _read_ticker_v2(symbol: str, subject: Any, d: dict[str, Any]) -> Event:
    bid, bid_size, ask, ask_size = _quote(
        d["bestBidPrice"], d["bestBidSize"], d["bestAskPrice"], d["bestAskSize"]
    )
    sequence = _int(d["sequence"])
    name = _data_symbol(d.get("symbol"), symbol)
    return Ticker(name, sequence, bid, bid_size, ask, ask_size, 0.0, 0.0, to_ns(d["ts"]))


def _typed_ticker_v2(symbol: str, subject: Any, d: WsData) -> Event:
    # Second busiest: `_quote` inlined (typed values are never bools).
    bid = float(d.bestBidPrice)  # type: ignore[arg-type]
    ask = float(d.bestAskPrice)  # type: ignore[arg-type]
    bid_size = float(d.bestBidSize)  # type: ignore[arg-type]
    ask_size = float(d.bestAskSize)  # type: ignore[arg-type]
    sequence = d.sequence
    if (bid - bid) + (ask - ask) + (bid_size - bid_size) + (ask_size - ask_size) != 0.0 or (
        type(sequence) is not int
    ):
        raise ValueError("not a ticker")
    name = d.symbol
    return Ticker(
        name if name else symbol, sequence, bid, bid_size, ask, ask_size, 0.0, 0.0, to_ns(d.ts)
    )


def _read_ticker(symbol: str, subject: Any, d: dict[str, Any]) -> Event:
    return Ticker(
        _symbol(d, symbol),
        _int(d["sequence"]),
        _price(d["bestBidPrice"]),
        _price(d["bestBidSize"]),
        _price(d["bestAskPrice"]),
        _price(d["bestAskSize"]),
        _price(d["price"]),
        _price(d["size"]),
        to_ns(d["ts"]),
    )


def _typed_ticker(symbol: str, subject: Any, d: WsData) -> Event:
    sequence = d.sequence
    if type(sequence) is not int:
        raise TypeError("no sequence")
    return Ticker(
        d.symbol or symbol,
        sequence,
        _price(d.bestBidPrice),
        _price(d.bestBidSize),
        _price(d.bestAskPrice),
        _price(d.bestAskSize),
        _price(d.price),
        _price(d.size),
        to_ns(d.ts),
    )


def _depth_reader(depth: int) -> Callable[[str, Any, dict[str, Any]], Event]:
    def read(symbol: str, subject: Any, d: dict[str, Any]) -> Event:
        ts = d.get("ts")
        return BookDepth(
            symbol,
            depth,
            _int(d["sequence"]),
            _levels(d["bids"]),
            _levels(d["asks"]),
            to_ns(ts if ts is not None else d["timestamp"]),
        )

    return read


def _typed_depth_reader(depth: int) -> Callable[[str, Any, WsData], Event]:
    def read(symbol: str, subject: Any, d: WsData) -> Event:
        sequence = d.sequence
        if type(sequence) is not int:
            raise TypeError("no sequence")
        ts = d.ts
        return BookDepth(
            symbol,
            depth,
            sequence,
            _levels(d.bids),
            _levels(d.asks),
            to_ns(ts if ts is not UNSET else d.timestamp),
        )

    return read


def _read_execution(symbol: str, subject: Any, d: dict[str, Any]) -> Event:
    size = d.get("size")
    return Trade(
        _symbol(d, symbol),
        _int(d["sequence"]),
        _side(d["side"]),
        _price(d["price"]),
        _price(size if size is not None else d["matchSize"]),
        str(d.get("tradeId", "")),
        to_ns(d["ts"] if "ts" in d else d["time"]),
    )


def _typed_execution(symbol: str, subject: Any, d: WsData) -> Event:
    sequence = d.sequence
    if type(sequence) is not int:
        raise TypeError("no sequence")
    size = d.size
    trade_id = d.tradeId
    ts = d.ts
    return Trade(
        d.symbol or symbol,
        sequence,
        _side(d.side),
        _price(d.price),
        _price(size if size is not UNSET else d.matchSize),
        "" if trade_id is UNSET else str(trade_id),
        to_ns(ts if ts is not UNSET else d.time),
    )


def _read_instrument(symbol: str, subject: Any, d: dict[str, Any]) -> Event | None:
    if subject == "mark.index.price":
        return MarkIndexPrice(
            symbol, _price(d["markPrice"]), _price(d["indexPrice"]), to_ns(d["timestamp"])
        )
    if subject == "funding.rate":
        return FundingRate(symbol, _price(d["fundingRate"]), to_ns(d["timestamp"]))
    raise ValueError(f"unknown instrument subject {subject!r}")


def _typed_instrument(symbol: str, subject: Any, d: WsData) -> Event | None:
    if subject == "mark.index.price":
        return MarkIndexPrice(symbol, _price(d.markPrice), _price(d.indexPrice), to_ns(d.timestamp))
    if subject == "funding.rate":
        return FundingRate(symbol, _price(d.fundingRate), to_ns(d.timestamp))
    raise ValueError(f"unknown instrument subject {subject!r}")


def _read_announcement(symbol: str, subject: Any, d: dict[str, Any]) -> Event:
    if subject not in ("funding.begin", "funding.end"):
        raise ValueError(f"unknown announcement subject {subject!r}")
    name = _symbol(d, symbol)
    return FundingSettlement(
        name,
        subject[8:],
        to_ns(d["fundingTime"]),
        _price(d["fundingRate"]),
        to_ns(d["timestamp"]),
    )


def _typed_announcement(symbol: str, subject: Any, d: WsData) -> Event:
    if subject not in ("funding.begin", "funding.end"):
        raise ValueError(f"unknown announcement subject {subject!r}")
    name = d.symbol or symbol
    if not name:
        raise ValueError("no symbol")
    return FundingSettlement(
        name,
        subject[8:],
        to_ns(d.fundingTime),
        _price(d.fundingRate),
        to_ns(d.timestamp),
    )


def _read_snapshot(symbol: str, subject: Any, d: dict[str, Any]) -> Event:
    return Snapshot24h(
        _symbol(d, symbol),
        _price(d["lastPrice"]),
        _price(d["highPrice"]),
        _price(d["lowPrice"]),
        _price(d["volume"]),
        _price(d["turnover"]),
        to_ns(d["ts"]),
    )


def _typed_snapshot(symbol: str, subject: Any, d: WsData) -> Event:
    name = d.symbol or symbol
    if not name:
        raise ValueError("no symbol")
    return Snapshot24h(
        name,
        _price(d.lastPrice),
        _price(d.highPrice),
        _price(d.lowPrice),
        _price(d.volume),
        _price(d.turnover),
        to_ns(d.ts),
    )


_Reader = Callable[[str, Any, dict[str, Any]], Event | None]
_TypedReader = Callable[[str, Any, WsData], Event | None]

#: channel -> (name, map reader, typed reader)
_READERS: dict[str, tuple[str, _Reader, _TypedReader]] = {
    t.TICKER_V2: ("tickerV2", _read_ticker_v2, _typed_ticker_v2),
    t.TICKER: ("ticker", _read_ticker, _typed_ticker),
    t.LEVEL2: ("level2", _read_level2, _typed_level2),
    t.LEVEL2_DEPTH5: ("level2Depth5", _depth_reader(5), _typed_depth_reader(5)),
    t.LEVEL2_DEPTH50: ("level2Depth50", _depth_reader(50), _typed_depth_reader(50)),
    t.EXECUTION: ("execution", _read_execution, _typed_execution),
    t.INSTRUMENT: ("instrument", _read_instrument, _typed_instrument),
    t.ANNOUNCEMENT: ("announcement", _read_announcement, _typed_announcement),
    t.SNAPSHOT: ("snapshot", _read_snapshot, _typed_snapshot),
}


# --- REST readers: (params, data) -> event ------------------------------------------------


def _opt_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return _price(value)


def _opt_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def _number_text(value: Any) -> str:
    """The decimal text of a number as the exchange meant it ("0.1", not 0.1000000000000000055)."""
    if isinstance(value, str):
        _price(value)
        return value.strip()
    if type(value) is int:
        _price(value)
        return str(value)
    return repr(_price(value))


def _contract(d: dict[str, Any]) -> Contract:
    symbol = d["symbol"]
    status = d["status"]
    if not isinstance(symbol, str) or not symbol or not isinstance(status, str):
        raise ValueError("contract without symbol or status")
    tick_text = _number_text(d["tickSize"])
    mult_text = _number_text(d["multiplier"])
    tick = float(tick_text)
    multiplier = abs(float(mult_text))
    lot_raw = d.get("lotSize", 1)
    if type(lot_raw) is float and not lot_raw.is_integer():
        raise ValueError("lotSize is not a whole number")  # _int would truncate 1.5 to 1
    lot = _int(lot_raw)
    if tick < 1e-12 or multiplier <= 0 or lot <= 0:
        raise ValueError("tickSize (>= 1e-12), multiplier and lotSize must be positive")
    return Contract(
        symbol=symbol,
        status=status,
        multiplier=multiplier,
        multiplier_text=mult_text.lstrip("-"),
        lot_size=lot,
        tick_size=tick,
        tick_size_text=tick_text,
        max_order_qty=int(d.get("maxOrderQty") or 1_000_000),
        maker_fee_rate=_opt_float(d.get("makerFeeRate")),
        taker_fee_rate=_opt_float(d.get("takerFeeRate")),
        is_inverse=_flag(d.get("isInverse", False)),
        quote_currency=str(d.get("quoteCurrency") or ""),
        settle_currency=str(d.get("settleCurrency") or ""),
        first_open_ms=_opt_int(d.get("firstOpenDate")),
        funding_rate=_opt_float(d.get("fundingFeeRate")),
        next_funding_in_ms=_opt_int(d.get("nextFundingRateTime")),
        funding_granularity_ms=_opt_int(d.get("fundingRateGranularity")),
        mark_price=_opt_float(d.get("markPrice")),
        index_price=_opt_float(d.get("indexPrice")),
        last_price=_opt_float(d.get("lastTradePrice")),
        volume_24h=_opt_float(d.get("volumeOf24h")),
        turnover_24h=_opt_float(d.get("turnoverOf24h")),
    )


def _read_contracts(params: dict[str, Any], data: Any, rejects: Counter[str]) -> Event:
    if not isinstance(data, list):
        raise TypeError("contracts/active data is not a list")
    contracts = []
    unparsed = []
    for item in data:
        try:
            contracts.append(_contract(item))
        except FIELD_ERRORS:
            rejects["contract_malformed"] += 1
            symbol = item.get("symbol") if isinstance(item, dict) else None
            if isinstance(symbol, str) and symbol:
                unparsed.append(symbol)
    return ContractsActive(contracts, unparsed)


def _read_snapshot_rest(params: dict[str, Any], data: Any, rejects: Counter[str]) -> Event:
    symbol = data.get("symbol") or params.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise ValueError("snapshot without a symbol")
    ts = data.get("ts")
    return BookSnapshot(
        symbol,
        int(data["sequence"]),
        _levels(data["bids"]),
        _levels(data["asks"]),
        to_ns(ts) if ts is not None else 0,
    )


def _read_ticker_rest(params: dict[str, Any], data: Any, rejects: Counter[str]) -> Event:
    return _read_ticker(str(params.get("symbol", "")), "ticker", data)


def _read_timestamp(params: dict[str, Any], data: Any, rejects: Counter[str]) -> Event:
    if type(data) is not int:
        raise TypeError("timestamp is not an integer")
    return ServerTime(data)


_RestReader = Callable[[dict[str, Any], Any, Counter[str]], Event]

_REST_READERS: dict[str, tuple[str, _RestReader]] = {
    "/api/v1/contracts/active": ("rest_contracts", _read_contracts),
    "/api/v1/level2/snapshot": ("rest_snapshot", _read_snapshot_rest),
    "/api/v1/ticker": ("rest_ticker", _read_ticker_rest),
    "/api/v1/timestamp": ("rest_timestamp", _read_timestamp),
}


class Parser:
    """Turns KuCoin payloads into events, counting what it sees and what it rejects.

    `topics` counts market-data messages by channel name; `rest` counts parsed REST
    answers by endpoint and `rest_errors` the error answers; `control` counts control
    frames (`welcome`, `ack`, ...); `rejects` counts skipped payloads by reason.
    """

    __slots__ = ("_routes", "control", "rejects", "rest", "rest_errors")

    def __init__(self) -> None:
        # topic -> [channel name, map reader, symbol, messages parsed, typed reader]; one
        # entry per topic seen, so the hot path does one dict lookup instead of splitting
        # the topic string.
        self._routes: dict[str, list[Any]] = {}
        self.control: Counter[str] = Counter()
        self.rejects: Counter[str] = Counter()
        self.rest: Counter[str] = Counter()
        self.rest_errors: Counter[str] = Counter()

    @property
    def topics(self) -> Counter[str]:
        """Market-data messages parsed, by channel name."""
        counts: Counter[str] = Counter()
        for name, _, _, n, _ in self._routes.values():
            if n:
                counts[name] += n
        return counts

    def _route(self, topic: str) -> list[Any] | None:
        channel, _, symbol = topic.partition(":")
        entry = _READERS.get(channel)
        if entry is None:
            self.rejects["unknown_topic"] += 1
            return None
        name, reader, typed = entry
        if not symbol and channel != t.ANNOUNCEMENT:
            self.rejects[name + "_no_symbol"] += 1
            return None
        route = [name, reader, symbol, 0, typed]
        if len(self._routes) < _MAX_ROUTES:
            self._routes[topic] = route
        return route

    def parse_frame(self, frame: str | bytes) -> Event | None:
        """One WebSocket frame as received: the one decode path of live and replay.

        The frame is decoded straight into a `WsFrame` and read by the channel's typed
        reader. A frame the typed path does not take (not JSON, a field of another type,
        a topic not seen before, anything a typed reader refuses) is decoded untyped and
        goes through `parse_ws`, which parses it or counts the reason, so both paths give
        the same result and the same counts for every frame.
        """
        try:
            msg = decode_ws(frame)
        except DECODE_ERRORS:
            return self.parse_ws(decode_frame(frame))
        if msg.type != "message":
            return self._typed_control(msg, frame)
        route = self._routes.get(msg.topic)  # type: ignore[arg-type]
        data = msg.data
        if route is None or type(data) is not WsData:
            return self.parse_ws(decode_frame(frame))
        try:
            event: Event | None = route[4](route[2], msg.subject, data)
        except FIELD_ERRORS:
            return self.parse_ws(decode_frame(frame))
        route[3] += 1
        return event

    def _typed_control(self, msg: WsFrame, frame: str | bytes) -> Event | None:
        """A control frame that decoded typed; errors and the unusual go through `parse_ws`."""
        kind = msg.type
        request_id = msg.id
        if type(request_id) is str and kind in ("welcome", "ack", "pong"):
            self.control[kind] += 1
            if kind == "welcome":
                return Welcome(request_id)
            return Ack(request_id) if kind == "ack" else Pong(request_id)
        return self.parse_ws(decode_frame(frame))

    def parse_ws(self, msg: Any) -> Event | None:
        """One WebSocket message decoded to plain values (a map, from a version-1 recording
        or `parse_frame`'s fallback), or the text of a frame that was not JSON."""
        if type(msg) is not dict:
            self.rejects["ws_not_json" if isinstance(msg, str) else "ws_not_object"] += 1
            return None
        kind = msg.get("type", "message")
        if kind != "message":
            return self._control(kind, msg)
        topic = msg.get("topic")
        if type(topic) is not str:
            self.rejects["message_without_topic"] += 1
            return None
        route = self._routes.get(topic)
        if route is None:
            route = self._route(topic)
            if route is None:
                return None
        data = msg.get("data")
        if type(data) is not dict:
            self.rejects[route[0] + "_no_data"] += 1
            return None
        try:
            event: Event | None = route[1](route[2], msg.get("subject"), data)
        except KeyError:
            self.rejects[route[0] + "_missing_field"] += 1
            return None
        except _BAD_VALUE:
            self.rejects[route[0] + "_bad_value"] += 1
            return None
        route[3] += 1
        return event

    def _control(self, kind: Any, msg: dict[str, Any]) -> Event | None:
        request_id = str(msg.get("id", ""))
        if kind == "welcome":
            event: Event = Welcome(request_id)
        elif kind == "ack":
            event = Ack(request_id)
        elif kind == "pong":
            event = Pong(request_id)
        elif kind == "error":
            try:
                code = int(msg.get("code", 0))
            except _BAD_VALUE:
                code = 0
            event = WsError(request_id, code, str(msg.get("data", "")))
        elif kind in ("notice", "command", "ping"):
            self.control[str(kind)] += 1
            return None
        else:
            self.rejects["ws_unknown_type"] += 1
            return None
        self.control[kind] += 1
        return event

    def _typed_snapshot(self, answer: dict[str, Any], body: str | bytes) -> Event | None:
        """A level-2 snapshot body decoded typed, or None to take the untyped path."""
        try:
            decoded = decode_snapshot_body(body)
        except DECODE_ERRORS:
            return None
        d = decoded.data
        if decoded.code != REST_OK or d is UNSET:
            return None
        params = answer.get("params")
        symbol = d.symbol or (params.get("symbol") if isinstance(params, dict) else None)
        sequence = d.sequence
        if not isinstance(symbol, str) or not symbol or type(sequence) is not int:
            return None
        try:
            bids = _levels(d.bids)
            asks = _levels(d.asks)
            ts = 0 if d.ts is None or d.ts is UNSET else to_ns(d.ts)
        except FIELD_ERRORS:
            return None
        return BookSnapshot(symbol, sequence, bids, asks, ts)

    def parse_rest(self, answer: dict[str, Any]) -> Event | None:
        """One recorded REST answer: `{"path", "params", "status", "body"}`."""
        if type(answer) is not dict:
            self.rejects["rest_not_object"] += 1
            return None
        path = answer.get("path")
        entry = _REST_READERS.get(path) if isinstance(path, str) else None
        if entry is None:
            self.rejects["rest_unknown_path"] += 1
            return None
        name, reader = entry
        status = answer.get("status")
        body = answer.get("body")
        if type(body) is str or type(body) is bytes:  # format v2 and live: the body as received
            if reader is _read_snapshot_rest and status == 200:
                event = self._typed_snapshot(answer, body)
                if event is not None:
                    self.rest[name] += 1
                    return event
            body = decode_frame(body)
            if type(body) is not dict:
                body = None  # not JSON: an error answer (below), like any body without a code
        code = body.get("code") if isinstance(body, dict) else None
        if status != 200 or code != REST_OK:
            message = body.get("msg", "") if isinstance(body, dict) else ""
            self.rest_errors[name] += 1
            return RestError(
                str(path), status if type(status) is int else 0, str(code), str(message)
            )
        assert isinstance(body, dict)
        params = answer.get("params")
        try:
            event = reader(params if isinstance(params, dict) else {}, body["data"], self.rejects)
        except KeyError:
            self.rejects[name + "_missing_field"] += 1
            return None
        except _BAD_VALUE:
            self.rejects[name + "_bad_value"] += 1
            return None
        self.rest[name] += 1
        return event


# --- messages we send ------------------------------------------------------------------------


def build_subscribe(request_id: int | str, topic: str, *, private: bool = False) -> dict[str, Any]:
    """A subscribe request for `topic` (see `tradebot.kucoin.topics.topic`); asks for an ack."""
    return _request("subscribe", request_id, topic, private)


def build_unsubscribe(
    request_id: int | str, topic: str, *, private: bool = False
) -> dict[str, Any]:
    """An unsubscribe request for `topic`; asks for an ack."""
    return _request("unsubscribe", request_id, topic, private)


def build_ping(request_id: int | str) -> dict[str, Any]:
    """A ping; the server answers with a pong carrying the same id."""
    _check_id(request_id)
    return {"id": str(request_id), "type": "ping"}


def _check_id(request_id: int | str) -> None:
    if isinstance(request_id, bool) or not isinstance(request_id, int | str) or request_id == "":
        raise ValueError(f"bad request id {request_id!r}")


def _request(kind: str, request_id: int | str, topic: str, private: bool) -> dict[str, Any]:
    _check_id(request_id)
    if not isinstance(topic, str) or not topic.startswith("/"):
        raise ValueError(f"bad topic {topic!r}")
    channel, _, symbols = topic.partition(":")
    if not private:
        if channel not in t.CHANNEL_NAMES:
            raise ValueError(f"unknown topic {topic!r}")
        if channel != t.ANNOUNCEMENT and not symbols:
            raise ValueError(f"topic {topic!r} names no symbol")
    return {
        "id": str(request_id),
        "type": kind,
        "topic": topic,
        "privateChannel": private,
        "response": True,
    }


def topics_of(symbols: Iterable[str], channels: Iterable[str]) -> list[str]:
    """Topic strings covering `symbols` on each channel, at most 100 symbols per topic."""
    names = sorted(set(symbols))
    out = []
    for channel in channels:
        if channel == t.ANNOUNCEMENT:
            out.append(t.topic(channel))
            continue
        for i in range(0, len(names), t.MAX_SYMBOLS_PER_TOPIC):
            out.append(t.topic(channel, names[i : i + t.MAX_SYMBOLS_PER_TOPIC]))
    return out
