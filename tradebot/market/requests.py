"""What the market core needs from outside, as values (the engine's outbox).

The core never does I/O to get these done: `Engine.take_requests()` hands them to the
shell, which acts on them (live: fetch a snapshot, send a subscribe frame) or satisfies
or ignores them (replay: the recording already holds the answers).
"""

from __future__ import annotations

from dataclasses import dataclass

from tradebot.kucoin.topics import EXECUTION, INSTRUMENT, LEVEL2, TICKER_V2, topic

__all__ = ["SYMBOL_CHANNELS", "BookResync", "Subscribe", "Unsubscribe", "symbol_topics"]

# The public channels each traded symbol is followed on.
SYMBOL_CHANNELS = (LEVEL2, TICKER_V2, EXECUTION, INSTRUMENT)


@dataclass(slots=True, frozen=True)
class BookResync:
    """`symbol`'s book lost sync (`why`: a gap, a crossed change, a disconnect, a refused
    snapshot): fetch a level-2 snapshot. Asked once per loss."""

    symbol: str
    why: str


@dataclass(slots=True, frozen=True)
class Subscribe:
    """Start receiving `topics` (a new listing)."""

    topics: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class Unsubscribe:
    """Stop receiving `topics` (a delisting)."""

    topics: tuple[str, ...]


def symbol_topics(symbol: str) -> tuple[str, ...]:
    """The topics `symbol` is followed on."""
    return tuple(topic(channel, (symbol,)) for channel in SYMBOL_CHANNELS)
