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

import orjson

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

__all__ = [
    "FIELD_ERRORS",
    "REST_OK",
    "Parser",
    "build_ping",
    "build_subscribe",
    "build_unsubscribe",
    "decode_frame",
    "level2_fields",
    "ticker_v2_fields",
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


def to_ns(value: Any) -> int:
    """An epoch timestamp in s, ms, us or ns (decided by magnitude) as integer ns."""
    v = _int(value)
    if v >= 100_000_000_000_000_000:  # 1e17: ns
        return v
    if v >= 100_000_000_000_000:  # 1e14: us
        return v * 1_000
    if v >= 100_000_000_000:  # 1e11: ms
        return v * 1_000_000
    return v * 1_000_000_000


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
    """A frame as received (str or bytes) decoded from JSON; a frame that is not JSON comes
    back as a str, which `Parser.parse_ws` counts as `ws_not_json`. Anything else is
    returned as it is (`parse_ws` counts what is not a map)."""
    if type(frame) is not str and type(frame) is not bytes:
        return frame
    try:
        return orjson.loads(frame)
    except orjson.JSONDecodeError:
        return frame if type(frame) is str else ""


# --- WebSocket readers: (symbol from the topic, subject, data) -> event ------------------


def ticker_v2_fields(d: dict[str, Any]) -> tuple[Any, int, float, float, float, float, int]:
    """A tickerV2 `data` as (symbol or None, sequence, bid, bid size, ask, ask size, ts ns).

    Raises KeyError for a missing field and one of `FIELD_ERRORS` for a bad value. The
    symbol is the data's own (None when absent: the topic's applies). Shared by the
    tickerV2 reader and the engine's fast lane, so both accept exactly the same payloads.
    """
    # Second busiest reader: helpers inlined. Sum of (x - x) is 0.0 only when all are finite.
    bid_raw = d["bestBidPrice"]
    ask_raw = d["bestAskPrice"]
    bid_size_raw = d["bestBidSize"]
    ask_size_raw = d["bestAskSize"]
    if bool in (type(bid_raw), type(ask_raw), type(bid_size_raw), type(ask_size_raw)):
        raise ValueError("bool is not a number")
    bid = float(bid_raw)
    ask = float(ask_raw)
    bid_size = float(bid_size_raw)
    ask_size = float(ask_size_raw)
    if (bid - bid) + (ask - ask) + (bid_size - bid_size) + (ask_size - ask_size) != 0.0:
        raise ValueError("not finite")
    sequence = d["sequence"]
    if type(sequence) is not int:
        sequence = _int(sequence)
    name = d.get("symbol") or None  # empty or falsy: the topic's symbol applies
    if name is not None and type(name) is not str:
        raise ValueError("symbol is not text")
    return name, sequence, bid, bid_size, ask, ask_size, to_ns(d["ts"])


def _read_ticker_v2(symbol: str, subject: Any, d: dict[str, Any]) -> Event:
    name, sequence, bid, bid_size, ask, ask_size, ts = ticker_v2_fields(d)
    return Ticker(name or symbol, sequence, bid, bid_size, ask, ask_size, 0.0, 0.0, ts)


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


def level2_fields(d: dict[str, Any]) -> tuple[int, Side, float, float, int]:
    """A level-2 change's `data` as (sequence, side, price, size, ts ns).

    Raises KeyError for a missing field and one of `FIELD_ERRORS` for a bad value. Shared
    by the level-2 reader and the engine's fast lane, so both accept exactly the same
    payloads.
    """
    # The busiest reader (most messages are level-2 changes), so the helpers are inlined:
    # `change` is always text, so its numbers cannot be bools; `x - x` is 0.0 only for
    # finite x.
    price_text, side_text, size_text = d["change"].split(",")
    price = float(price_text)
    size = float(size_text)
    if price - price != 0.0 or size - size != 0.0:
        raise ValueError("not finite")
    side = _SIDES.get(side_text)
    if side is None:
        raise ValueError(f"unknown side {side_text!r}")
    sequence = d["sequence"]
    if type(sequence) is not int:
        sequence = _int(sequence)
    ts = d["timestamp"]
    if type(ts) is int and 100_000_000_000 <= ts < 100_000_000_000_000:
        ts *= 1_000_000  # ms, the documented unit
    else:
        ts = to_ns(ts)
    return sequence, side, price, size, ts


def _read_level2(symbol: str, subject: Any, d: dict[str, Any]) -> Event:
    sequence, side, price, size, ts = level2_fields(d)
    return Level2Change(symbol, sequence, side, price, size, ts)


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


def _read_instrument(symbol: str, subject: Any, d: dict[str, Any]) -> Event | None:
    if subject == "mark.index.price":
        return MarkIndexPrice(
            symbol, _price(d["markPrice"]), _price(d["indexPrice"]), to_ns(d["timestamp"])
        )
    if subject == "funding.rate":
        return FundingRate(symbol, _price(d["fundingRate"]), to_ns(d["timestamp"]))
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


_Reader = Callable[[str, Any, dict[str, Any]], Event | None]

_READERS: dict[str, tuple[str, _Reader]] = {
    t.TICKER_V2: ("tickerV2", _read_ticker_v2),
    t.TICKER: ("ticker", _read_ticker),
    t.LEVEL2: ("level2", _read_level2),
    t.LEVEL2_DEPTH5: ("level2Depth5", _depth_reader(5)),
    t.LEVEL2_DEPTH50: ("level2Depth50", _depth_reader(50)),
    t.EXECUTION: ("execution", _read_execution),
    t.INSTRUMENT: ("instrument", _read_instrument),
    t.ANNOUNCEMENT: ("announcement", _read_announcement),
    t.SNAPSHOT: ("snapshot", _read_snapshot),
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
    lot = _int(d.get("lotSize", 1))
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
        # topic -> [channel name, reader, symbol, messages parsed]; one entry per topic seen,
        # so the hot path does one dict lookup instead of splitting the topic string.
        self._routes: dict[str, list[Any]] = {}
        self.control: Counter[str] = Counter()
        self.rejects: Counter[str] = Counter()
        self.rest: Counter[str] = Counter()
        self.rest_errors: Counter[str] = Counter()

    @property
    def topics(self) -> Counter[str]:
        """Market-data messages parsed, by channel name."""
        counts: Counter[str] = Counter()
        for name, _, _, n in self._routes.values():
            if n:
                counts[name] += n
        return counts

    def route_of(self, topic: str) -> list[Any] | None:
        """The record kept for a topic seen before: [channel name, reader, topic's symbol,
        messages parsed]; None for a topic not seen (or past the route cap).

        For a fast path that parses a topic's payloads itself (the engine's lanes, with
        `level2_fields` and `ticker_v2_fields`): it adds 1 to the count for each message it
        parses, so `topics` counts it as `parse_ws` would.
        """
        return self._routes.get(topic)

    def _route(self, topic: str) -> list[Any] | None:
        channel, _, symbol = topic.partition(":")
        entry = _READERS.get(channel)
        if entry is None:
            self.rejects["unknown_topic"] += 1
            return None
        name, reader = entry
        if not symbol and channel != t.ANNOUNCEMENT:
            self.rejects[name + "_no_symbol"] += 1
            return None
        route = [name, reader, symbol, 0]
        if len(self._routes) < _MAX_ROUTES:
            self._routes[topic] = route
        return route

    def parse_ws(self, msg: Any) -> Event | None:
        """One WebSocket message (decoded JSON, or the text of a frame that was not JSON)."""
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
            try:
                body = orjson.loads(body)
            except orjson.JSONDecodeError:
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
