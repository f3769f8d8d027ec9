"""Typed events: one small value per fact the exchange tells us.

`tradebot.kucoin.protocol` turns KuCoin payloads into these; everything downstream
(market state, decisions, the simulator) consumes them. Times are integer
nanoseconds taken from the message itself (`ts_exchange_ns`); nothing here reads a
clock.

The values are treated as immutable by convention. Market-data events, one built per
message on the hot path, are msgspec `Struct`s (gc=False: they hold no cycles), built in
C: about 960 instructions for a six-field event against 2,470 for a slotted dataclass
(callgrind, CPython 3.11). The rest are slotted dataclasses. None is frozen: a frozen
dataclass's `__init__` goes through `object.__setattr__` per field, five times slower.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from msgspec import Struct

__all__ = [
    "Ack",
    "BookDepth",
    "BookSnapshot",
    "Contract",
    "ContractsActive",
    "Event",
    "FundingRate",
    "FundingSettlement",
    "Level2Change",
    "MarkIndexPrice",
    "Pong",
    "RestError",
    "ServerTime",
    "Side",
    "Snapshot24h",
    "Ticker",
    "Trade",
    "Welcome",
    "WsError",
]


class Side(IntEnum):
    """Book side or taker side. The value is the sign of a position in that direction."""

    BUY = 1
    SELL = -1


# --- WebSocket control frames -------------------------------------------------------


@dataclass(slots=True)
class Welcome:
    """The server accepted the connection; `conn_id` is the id it echoes."""

    conn_id: str


@dataclass(slots=True)
class Ack:
    """The server acknowledged the request with this id (subscribe, unsubscribe)."""

    request_id: str


@dataclass(slots=True)
class Pong:
    """Answer to our ping with this id."""

    request_id: str


@dataclass(slots=True)
class WsError:
    """The server reported an error (`code` as KuCoin sends it: 401, 509, ...)."""

    request_id: str
    code: int
    message: str


# --- market data ----------------------------------------------------------------------


class Ticker(Struct, gc=False):
    """Best bid and ask (tickerV2, or ticker v1 / REST ticker, which also carry the last trade).

    `last_price` and `last_size` are 0.0 when the message carries no trade (tickerV2).
    """

    symbol: str
    sequence: int
    bid: float
    bid_size: float
    ask: float
    ask_size: float
    last_price: float
    last_size: float
    ts_exchange_ns: int


class Level2Change(Struct, gc=False):
    """One incremental change of a level-2 book: the size at `price` is now `size` (0 removes)."""

    symbol: str
    sequence: int
    side: Side
    price: float
    size: float
    ts_exchange_ns: int


class BookDepth(Struct, gc=False):
    """A full top-N book pushed by level2Depth5 / level2Depth50 (replaces the previous one)."""

    symbol: str
    depth: int
    sequence: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    ts_exchange_ns: int


class BookSnapshot(Struct, gc=False):
    """A REST level-2 snapshot: the whole book as of `sequence`, each side best first."""

    symbol: str
    sequence: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    ts_exchange_ns: int


class Trade(Struct, gc=False):
    """A match on the public tape. `side` is the taker's side."""

    symbol: str
    sequence: int
    side: Side
    price: float
    size: float
    trade_id: str
    ts_exchange_ns: int


class MarkIndexPrice(Struct, gc=False):
    """Mark and index price (instrument topic, subject `mark.index.price`)."""

    symbol: str
    mark_price: float
    index_price: float
    ts_exchange_ns: int


class FundingRate(Struct, gc=False):
    """Current funding rate (instrument topic, subject `funding.rate`)."""

    symbol: str
    funding_rate: float
    ts_exchange_ns: int


class FundingSettlement(Struct, gc=False):
    """Funding settlement announcement: `phase` is "begin" or "end"."""

    symbol: str
    phase: str
    funding_time_ns: int
    funding_rate: float
    ts_exchange_ns: int


class Snapshot24h(Struct, gc=False):
    """Rolling 24 h statistics (snapshot topic). Volume is in lots, turnover in quote."""

    symbol: str
    last_price: float
    high_price: float
    low_price: float
    volume_24h: float
    turnover_24h: float
    ts_exchange_ns: int


# --- REST -----------------------------------------------------------------------------


@dataclass(slots=True)
class Contract:
    """One contract from `GET /api/v1/contracts/active`.

    Sizes are integer lots: one lot is `multiplier` units of the base currency (linear) or
    `multiplier` USD (inverse). Prices are multiples of `tick_size`. `tick_size`,
    `multiplier` and the fee rates keep the text the exchange sent (`*_text`) so orders and
    fees can be computed exactly; the float is for the hot path.
    """

    symbol: str
    status: str
    multiplier: float
    multiplier_text: str
    lot_size: int
    tick_size: float
    tick_size_text: str
    max_order_qty: int
    maker_fee_rate: float | None
    taker_fee_rate: float | None
    is_inverse: bool
    quote_currency: str
    settle_currency: str
    first_open_ms: int | None
    funding_rate: float | None
    next_funding_in_ms: int | None
    funding_granularity_ms: int | None
    mark_price: float | None
    index_price: float | None
    last_price: float | None
    volume_24h: float | None
    turnover_24h: float | None


@dataclass(slots=True)
class ContractsActive:
    """The whole contracts/active answer, in the order the exchange listed it.

    `unparsed` names the symbols whose entries were present but malformed: they are not
    gone, only unreadable this time.
    """

    contracts: list[Contract]
    unparsed: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ServerTime:
    """`GET /api/v1/timestamp`: the server's clock in milliseconds."""

    server_ms: int


@dataclass(slots=True)
class RestError:
    """A REST answer that was an error: HTTP `status` and KuCoin's `code` and `message`."""

    path: str
    status: int
    code: str
    message: str


Event = (
    Welcome
    | Ack
    | Pong
    | WsError
    | Ticker
    | Level2Change
    | BookDepth
    | BookSnapshot
    | Trade
    | MarkIndexPrice
    | FundingRate
    | FundingSettlement
    | Snapshot24h
    | ContractsActive
    | ServerTime
    | RestError
)
