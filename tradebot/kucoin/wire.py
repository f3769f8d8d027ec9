"""The shapes of KuCoin Futures frames on the wire, for typed decoding with msgspec.

A WebSocket text frame is decoded in one C call (`decode_ws`) straight into a `WsFrame`
whose `data` is a `WsData`: one struct holding every field a market-data reader in
`tradebot.kucoin.protocol` reads, whatever the channel, each `UNSET` when absent. That is
the whole decode; no dict tree is built. A REST level-2 snapshot body decodes the same way
into `SnapshotBody` (`decode_snapshot_body`).

The types are strict on purpose. A field is typed only as what a well-formed message
carries: integers as `int`, prices and sizes as `str | float` (KuCoin sends both; the
reader converts with `float`, as the map readers do), symbols and sides as `str`. Anything
else (an integer sent as text, a list where a number belongs, invalid JSON) fails
validation, and the parser then decodes the frame untyped and runs the map readers, which
count the exact reason. So the typed path only ever accepts what the map path accepts, with
the same result (tests/test_wire.py checks both on generated frames).
"""

from __future__ import annotations

import msgspec
from msgspec import UNSET, Struct, UnsetType

__all__ = [
    "DECODE_ERRORS",
    "UNSET",
    "Level",
    "SnapshotBody",
    "SnapshotData",
    "WsData",
    "WsFrame",
    "decode_json",
    "decode_snapshot_body",
    "decode_ws",
]

#: What the decoders raise on a frame that is not JSON or does not fit the types (a str
#: frame holding a lone surrogate cannot be encoded as UTF-8 at all; anything but str or
#: bytes is a TypeError).
DECODE_ERRORS = (msgspec.DecodeError, UnicodeEncodeError, TypeError)

Number = str | float
Level = tuple[Number, Number]


class WsData(Struct, gc=False):
    """The `data` of a market-data message: the union of every reader's fields."""

    # level2 and depth pushes
    sequence: int | UnsetType = UNSET
    change: str | UnsetType = UNSET
    timestamp: int | UnsetType = UNSET
    bids: list[Level] | UnsetType = UNSET
    asks: list[Level] | UnsetType = UNSET
    # tickers (field names as on the wire)
    symbol: str | UnsetType = UNSET
    bestBidPrice: Number | UnsetType = UNSET
    bestBidSize: Number | UnsetType = UNSET
    bestAskPrice: Number | UnsetType = UNSET
    bestAskSize: Number | UnsetType = UNSET
    ts: int | UnsetType = UNSET
    # trades (and the ticker's last trade)
    side: str | UnsetType = UNSET
    price: Number | UnsetType = UNSET
    size: Number | UnsetType = UNSET
    matchSize: Number | UnsetType = UNSET
    tradeId: str | int | UnsetType = UNSET
    time: int | UnsetType = UNSET
    # instrument and announcement
    markPrice: Number | UnsetType = UNSET
    indexPrice: Number | UnsetType = UNSET
    fundingRate: Number | UnsetType = UNSET
    fundingTime: int | UnsetType = UNSET
    # 24 h snapshot
    lastPrice: Number | UnsetType = UNSET
    highPrice: Number | UnsetType = UNSET
    lowPrice: Number | UnsetType = UNSET
    volume: Number | UnsetType = UNSET
    turnover: Number | UnsetType = UNSET


class WsFrame(Struct, gc=False):
    """One WebSocket message: market data (`type` "message") or a control frame."""

    type: str = "message"
    topic: str | UnsetType = UNSET
    subject: str | UnsetType = UNSET
    data: WsData | str | UnsetType = UNSET  # a str for `error` frames
    id: str | UnsetType = UNSET
    code: int | UnsetType = UNSET


class SnapshotData(Struct, gc=False):
    """The `data` of a `/api/v1/level2/snapshot` answer."""

    sequence: int | UnsetType = UNSET
    symbol: str | UnsetType = UNSET
    bids: list[Level] | UnsetType = UNSET
    asks: list[Level] | UnsetType = UNSET
    ts: int | UnsetType | None = UNSET


class SnapshotBody(Struct, gc=False):
    """A REST answer body of the level-2 snapshot endpoint."""

    code: str | UnsetType = UNSET
    data: SnapshotData | UnsetType = UNSET


_ws_decoder = msgspec.json.Decoder(WsFrame)
_snapshot_decoder = msgspec.json.Decoder(SnapshotBody)
_any_decoder = msgspec.json.Decoder()

#: A WebSocket frame (str or bytes) as a `WsFrame`; raises one of `DECODE_ERRORS`.
decode_ws = _ws_decoder.decode
#: A level-2 snapshot body (str or bytes) as a `SnapshotBody`; raises one of `DECODE_ERRORS`.
decode_snapshot_body = _snapshot_decoder.decode
#: Any JSON (str or bytes) as plain Python values; raises one of `DECODE_ERRORS`.
decode_json = _any_decoder.decode
