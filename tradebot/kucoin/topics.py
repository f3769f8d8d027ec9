"""KuCoin Futures public market-data channels and their topic strings.

A topic is `<channel>:<symbols>`, where several symbols may share one topic separated by
commas (`/contractMarket/tickerV2:XBTUSDTM,ETHUSDTM`). The announcement channel takes
no symbol. `CHANNEL_NAMES` maps each channel to the short name used in counters and
reports (`level2`, `tickerV2`, ...).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ANNOUNCEMENT",
    "CHANNEL_NAMES",
    "EXECUTION",
    "INSTRUMENT",
    "LEVEL2",
    "LEVEL2_DEPTH5",
    "LEVEL2_DEPTH50",
    "MAX_SYMBOLS_PER_TOPIC",
    "SNAPSHOT",
    "TICKER",
    "TICKER_V2",
    "topic",
]

TICKER_V2 = "/contractMarket/tickerV2"
TICKER = "/contractMarket/ticker"
LEVEL2 = "/contractMarket/level2"
LEVEL2_DEPTH5 = "/contractMarket/level2Depth5"
LEVEL2_DEPTH50 = "/contractMarket/level2Depth50"
EXECUTION = "/contractMarket/execution"
INSTRUMENT = "/contract/instrument"
ANNOUNCEMENT = "/contract/announcement"
SNAPSHOT = "/contractMarket/snapshot"

CHANNEL_NAMES: dict[str, str] = {
    TICKER_V2: "tickerV2",
    TICKER: "ticker",
    LEVEL2: "level2",
    LEVEL2_DEPTH5: "level2Depth5",
    LEVEL2_DEPTH50: "level2Depth50",
    EXECUTION: "execution",
    INSTRUMENT: "instrument",
    ANNOUNCEMENT: "announcement",
    SNAPSHOT: "snapshot",
}

# KuCoin accepts at most 100 topics per subscribe request.
MAX_SYMBOLS_PER_TOPIC = 100


def topic(channel: str, symbols: Iterable[str] = ()) -> str:
    """The topic string for `channel` and `symbols`.

    Raises ValueError for our own mistakes: an unknown channel, no symbols for a channel
    that needs them, more than MAX_SYMBOLS_PER_TOPIC symbols, or a symbol with a comma.
    """
    if channel not in CHANNEL_NAMES:
        raise ValueError(f"unknown channel {channel!r}")
    names = list(symbols)
    if channel == ANNOUNCEMENT:
        if names:
            raise ValueError("the announcement channel takes no symbols")
        return channel
    if not names:
        raise ValueError(f"{channel} needs at least one symbol")
    if len(names) > MAX_SYMBOLS_PER_TOPIC:
        raise ValueError(f"{len(names)} symbols in one topic; at most {MAX_SYMBOLS_PER_TOPIC}")
    for name in names:
        if not name or "," in name or ":" in name:
            raise ValueError(f"bad symbol {name!r}")
    return f"{channel}:{','.join(names)}"
