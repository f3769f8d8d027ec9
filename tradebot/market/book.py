"""Level-2 order book for one KuCoin Futures symbol, kept honest about what it knows.

The problem
-----------
KuCoin publishes a level-2 book as a REST snapshot (the whole book as of sequence S) plus
a WebSocket stream of incremental changes, one `(sequence, side, price, size)` per
message, where the size *replaces* the size at that price and 0 removes the level.
Sequences rise by exactly one per change. Messages do get lost: a reconnect, a slow
consumer, a server hiccup. A lost change does not make the book look broken; it makes it
*wrong but plausible*: a level that was cancelled stays forever (a "ghost"), or a size is
off. A strategy quoting against such a book trades on prices that do not exist. So the
book's first job is to know whether it can be trusted, and to say so (`in_sync`).

The approach
------------
* Every change carries its sequence. After the last applied sequence `q`, a change with
  sequence <= q is stale (a duplicate; dropped and counted), q + 1 is applied, and
  anything higher is a gap: at least one message was lost.
* On a gap the book is thrown away (both sides cleared), marked out of sync, and the
  change that revealed the gap is buffered. Nothing is traded until a new snapshot
  arrives. Changes that arrive before the first snapshot, or while out of sync, are
  buffered too (bounded; the oldest is dropped when full).
* A snapshot at sequence S loads the book, drops buffered changes with sequence <= S and
  replays the rest in sequence order. They must start at S + 1 and be contiguous; if not,
  the missing message is not coming back, so that is a gap too: the book is cleared again
  and buffering continues from the first change after the hole.
* A book is never crossed (best bid >= best ask) in reality, so an incremental change that
  would cross ours proves we missed something even when the sequences look contiguous. It
  is handled like a gap (counted in `crossed`). A snapshot that is itself crossed is
  refused.
* Counters (`gaps`, `crossed`, `resyncs`, `stale_changes`, `stale_snapshots`,
  `buffer_dropped`) make all of this visible to monitoring.

Rejected alternatives
---------------------
* Merging a new snapshot into the stale book (apply the snapshot's levels on top of what
  we had): levels that disappeared while we were blind are not in the snapshot, so they
  survive as ghosts. The snapshot replaces the book; it is never merged.
* Repairing a crossed book by deleting the levels on the wrong side: it produces a book
  that looks fine, which is exactly the wrong-but-plausible failure we are guarding
  against; we do not know which side is wrong, nor what else we missed.
* Keeping the old book around for trading "until the snapshot arrives": a strategy
  would trade on it. Clearing makes the outage visible (`in_sync` is False, the book is
  empty) instead of quietly degrading.
* `sortedcontainers.SortedDict` per side (the previous design): every store of a new
  size at an existing price still went through its Python-level `__setitem__`, and its
  fast depth reads sliced its private `_list._lists`, tying us to another library's
  internals.
* Heaps: they give the best price cheaply but no ordered walk for depth reads, and a
  removed level must be deleted lazily, so the top has to be re-validated on every read.
* Keying the bids (or asks) by -price so that both sides put their best at the same end:
  it allocates a float per insert/remove and per depth read.

Layout and cost
---------------
Each side is a plain `dict` price -> size plus a `list` of its prices kept sorted
ascending with `bisect` (`insort` to add a level, `bisect_left` + `del` to remove one). So
the best bid is the *last* bid price and the best ask the *first* ask price. Most changes
on a live feed re-size a level that exists already; that is one dict store and touches no
list. Only a new level or a removed one moves list entries (one `memmove` of at most a few
hundred pointers for the usual 50-400 levels a side).
The best bid and ask prices are also cached as plain floats (-inf / +inf when a side is
empty): the crossing check runs on every change and reads one attribute. The cache moves
up when a better level is added and is re-read from the list end only when the best level
itself is removed. An in-sync `apply_change` does integer and float comparisons plus one
dict store (and, for a new or removed level, one bisect and one list insert or delete); it
allocates nothing else, logs nothing and raises nothing. Depth queries bisect the price
bound in the sorted list and walk from the top to it, best level first, so the float sums
come out in the same order (and are the same floats) as before.

Nothing here does I/O or reads a clock; the same inputs always give the same book.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Iterable
from operator import itemgetter

from tradebot.kucoin.events import Side

__all__ = ["APPLIED", "BUFFERED", "CROSSED", "GAP", "STALE", "OrderBook"]

# Results of `OrderBook.apply_change` (plain ints: cheap to return and to compare).
APPLIED = 0  #: the change was applied to an in-sync book
STALE = 1  #: sequence <= the last applied one: a duplicate, dropped
BUFFERED = 2  #: the book is out of sync: the change was buffered for the next snapshot
GAP = 3  #: a message was lost: the book was cleared and is out of sync
CROSSED = 4  #: the change would have crossed the book: cleared and out of sync

_Change = tuple[int, Side, float, float]
_by_sequence = itemgetter(0)
_INF = float("inf")
_NEG_INF = -_INF


class OrderBook:
    """A level-2 book for one symbol, built from a snapshot plus sequenced changes.

    Read `in_sync` before using the book: when it is False the book is empty and is
    waiting for a snapshot (see the module docstring). Prices and sizes are floats as
    parsed from the exchange; a price is the same key every time it is parsed from the
    same text.
    """

    __slots__ = (
        "_ask_prices",
        "_asks",
        "_best_ask",
        "_best_bid",
        "_bid_prices",
        "_bids",
        "_buffer",
        "_ever_synced",
        "_max_buffered",
        "buffer_dropped",
        "crossed",
        "gaps",
        "in_sync",
        "resyncs",
        "sequence",
        "stale_changes",
        "stale_snapshots",
        "symbol",
    )

    symbol: str
    sequence: int
    in_sync: bool
    gaps: int
    crossed: int
    resyncs: int
    stale_changes: int
    stale_snapshots: int
    buffer_dropped: int

    def __init__(self, symbol: str, *, max_buffered: int = 50_000) -> None:
        """Create an empty, out-of-sync book; `max_buffered` bounds the change buffer."""
        if max_buffered < 1:
            raise ValueError(f"max_buffered must be >= 1, got {max_buffered}")
        self.symbol = symbol
        self.sequence = -1
        self.in_sync = False
        self.gaps = 0
        self.crossed = 0
        self.resyncs = 0
        self.stale_changes = 0
        self.stale_snapshots = 0
        self.buffer_dropped = 0
        self._bids: dict[float, float] = {}  # price -> size
        self._asks: dict[float, float] = {}
        self._bid_prices: list[float] = []  # the keys of _bids, ascending: best bid last
        self._ask_prices: list[float] = []  # the keys of _asks, ascending: best ask first
        self._best_bid = _NEG_INF  # == _bid_prices[-1]; -inf when there are no bids
        self._best_ask = _INF  # == _ask_prices[0]; +inf when there are no asks
        self._buffer: deque[_Change] = deque()
        self._max_buffered = max_buffered
        self._ever_synced = False

    # --- updates ---------------------------------------------------------------------

    def apply_snapshot(
        self,
        sequence: int,
        bids: Iterable[tuple[float, float]],
        asks: Iterable[tuple[float, float]],
    ) -> bool:
        """Load a REST snapshot taken at `sequence`; return True if the book is in sync after.

        Out of sync (or before the first snapshot): the book is replaced by the snapshot,
        buffered changes with sequence <= `sequence` are dropped and the rest are replayed
        in sequence order; if they do not continue contiguously from `sequence` the book
        is cleared again (a gap is counted) and buffering continues from the first change
        after the hole. In sync: a snapshot at or after the current sequence replaces the
        book; an older one is ignored (`stale_snapshots`). A crossed snapshot is refused
        (`crossed`) and changes nothing. Levels with size <= 0 are skipped (a price given
        twice keeps its last positive size). A snapshot that restores sync after sync was
        lost counts in `resyncs`.
        """
        if self.in_sync and sequence < self.sequence:
            self.stale_snapshots += 1
            return True
        bid_levels = [(price, size) for price, size in bids if size > 0]
        ask_levels = [(price, size) for price, size in asks if size > 0]
        if (
            bid_levels
            and ask_levels
            and max(price for price, _ in bid_levels) >= min(price for price, _ in ask_levels)
        ):
            self.crossed += 1
            return self.in_sync

        is_resync = self._ever_synced and not self.in_sync
        self._bids = dict(bid_levels)
        self._asks = dict(ask_levels)
        self._bid_prices = sorted(self._bids)
        self._ask_prices = sorted(self._asks)
        self._best_bid = self._bid_prices[-1] if bid_levels else _NEG_INF
        self._best_ask = self._ask_prices[0] if ask_levels else _INF
        self.sequence = sequence
        self.in_sync = True
        if self._buffer:
            self._replay_buffer(sequence)
        if self.in_sync:
            self._ever_synced = True
            if is_resync:
                self.resyncs += 1
        return self.in_sync

    def apply_change(self, sequence: int, side: Side, price: float, size: float) -> int:
        """Apply one incremental change; return APPLIED, STALE, BUFFERED, GAP or CROSSED.

        `size` replaces the size at `price`; size <= 0 removes the level (removing a level
        that is not there is fine). Out of sync the change is buffered (BUFFERED). In sync:
        a sequence <= the last applied one is dropped (STALE, `stale_changes`); one that
        skips ahead clears the book, goes out of sync and buffers the change (GAP,
        `gaps`); a size > 0 that would cross the book does the same (CROSSED, `crossed`).
        """
        if not self.in_sync:
            self._buffer_change(sequence, side, price, size)
            return BUFFERED
        expected = self.sequence + 1
        if sequence != expected:
            if sequence < expected:
                self.stale_changes += 1
                return STALE
            self.gaps += 1
            self._lose_sync()
            self._buffer_change(sequence, side, price, size)
            return GAP
        if side == 1:  # Side.BUY
            bids = self._bids
            if size > 0:
                if price >= self._best_ask:
                    return self._cross(sequence, side, price, size)
                if price not in bids:  # a new level: the only case that moves the list
                    insort(self._bid_prices, price)
                    if price > self._best_bid:
                        self._best_bid = price
                bids[price] = size
            elif price in bids:
                del bids[price]
                prices = self._bid_prices
                del prices[bisect_left(prices, price)]
                if price == self._best_bid:
                    self._best_bid = prices[-1] if prices else _NEG_INF
        else:
            asks = self._asks
            if size > 0:
                if price <= self._best_bid:
                    return self._cross(sequence, side, price, size)
                if price not in asks:
                    insort(self._ask_prices, price)
                    if price < self._best_ask:
                        self._best_ask = price
                asks[price] = size
            elif price in asks:
                del asks[price]
                prices = self._ask_prices
                del prices[bisect_left(prices, price)]
                if price == self._best_ask:
                    self._best_ask = prices[0] if prices else _INF
        self.sequence = sequence
        return APPLIED

    def invalidate(self) -> None:
        """Clear the book and the buffer and mark it out of sync (use after a disconnect).

        The next snapshot re-syncs it, whatever its sequence. Call this before resubscribing:
        changes buffered after this call are kept.
        """
        self._lose_sync()
        self._buffer.clear()

    # --- reads -----------------------------------------------------------------------

    def best_bid(self) -> tuple[float, float] | None:
        """(price, size) of the best bid, or None when there are no bids."""
        if not self._bids:
            return None
        price = self._best_bid
        return price, self._bids[price]

    def best_ask(self) -> tuple[float, float] | None:
        """(price, size) of the best ask, or None when there are no asks."""
        if not self._asks:
            return None
        price = self._best_ask
        return price, self._asks[price]

    def best_bid_price(self) -> float:
        """Best bid price, 0.0 when there are no bids."""
        return self._best_bid if self._bids else 0.0

    def best_ask_price(self) -> float:
        """Best ask price, 0.0 when there are no asks."""
        return self._best_ask if self._asks else 0.0

    def mid(self) -> float:
        """(best bid + best ask) / 2, or 0.0 unless both sides have levels."""
        if not self._bids or not self._asks:
            return 0.0
        return (self._best_bid + self._best_ask) * 0.5

    def spread_bps(self) -> float:
        """(best ask - best bid) / mid in basis points; inf when a side is empty."""
        if not self._bids or not self._asks:
            return _INF
        bid = self._best_bid
        ask = self._best_ask
        return (ask - bid) / ((bid + ask) * 0.5) * 1e4

    def levels(self, side: Side, n: int | None = None) -> list[tuple[float, float]]:
        """The top `n` levels of `side` as (price, size), best first (all when n is None)."""
        if n is not None and n <= 0:
            return []
        if side == Side.BUY:
            bids = self._bids
            top = self._bid_prices if n is None else self._bid_prices[-n:]
            return [(price, bids[price]) for price in reversed(top)]
        asks = self._asks
        top = self._ask_prices if n is None else self._ask_prices[:n]
        return [(price, asks[price]) for price in top]

    def depth_within_bps(self, bps: float) -> tuple[float, float]:
        """(bid size, ask size) summed over levels within `bps` of mid; (0, 0) if a side is empty.

        A bid counts if its price >= mid * (1 - bps/1e4), an ask if <= mid * (1 + bps/1e4).
        Summed best level first (a NaN `bps` compares false everywhere: every level counts).
        """
        bids = self._bids
        asks = self._asks
        if not bids or not asks:
            return 0.0, 0.0
        mid = (self._best_bid + self._best_ask) * 0.5  # self.mid()
        prices = self._bid_prices
        bid_size = 0.0
        for index in range(len(prices) - 1, bisect_left(prices, mid * (1.0 - bps / 1e4)) - 1, -1):
            bid_size += bids[prices[index]]
        prices = self._ask_prices
        ask_size = 0.0
        for price in prices[: bisect_right(prices, mid * (1.0 + bps / 1e4))]:
            ask_size += asks[price]
        return bid_size, ask_size

    def notional_within_bps(self, bps: float) -> tuple[float, float]:
        """Like `depth_within_bps` but summing price * size (quote-currency notional)."""
        bids = self._bids
        asks = self._asks
        if not bids or not asks:
            return 0.0, 0.0
        mid = (self._best_bid + self._best_ask) * 0.5  # self.mid()
        prices = self._bid_prices
        bid_notional = 0.0
        for index in range(len(prices) - 1, bisect_left(prices, mid * (1.0 - bps / 1e4)) - 1, -1):
            price = prices[index]
            bid_notional += price * bids[price]
        prices = self._ask_prices
        ask_notional = 0.0
        for price in prices[: bisect_right(prices, mid * (1.0 + bps / 1e4))]:
            ask_notional += price * asks[price]
        return bid_notional, ask_notional

    def imbalance(self, n: int) -> float:
        """(bid size - ask size) / (bid size + ask size) over the top `n` levels of each side.

        In [-1, 1]; 0.0 when both sides are empty (or n <= 0). Summed best level first.
        """
        if n <= 0:
            return 0.0
        bids = self._bids
        bid_size = 0.0
        for price in reversed(self._bid_prices[-n:]):
            bid_size += bids[price]
        asks = self._asks
        ask_size = 0.0
        for price in self._ask_prices[:n]:
            ask_size += asks[price]
        total = bid_size + ask_size
        if total <= 0.0:
            return 0.0
        return (bid_size - ask_size) / total

    def __len__(self) -> int:
        """Total number of price levels on both sides."""
        return len(self._bids) + len(self._asks)

    def __repr__(self) -> str:
        return (
            f"OrderBook({self.symbol!r}, sequence={self.sequence}, in_sync={self.in_sync}, "
            f"bids={len(self._bids)}, asks={len(self._asks)}, buffered={len(self._buffer)})"
        )

    # --- internals -------------------------------------------------------------------

    def _lose_sync(self) -> None:
        """Throw the book away and wait for a snapshot (the buffer is left alone)."""
        self._bids.clear()
        self._asks.clear()
        self._bid_prices.clear()
        self._ask_prices.clear()
        self._best_bid = _NEG_INF
        self._best_ask = _INF
        self.in_sync = False

    def _cross(self, sequence: int, side: Side, price: float, size: float) -> int:
        """A change would cross the book: we missed something. Treat it like a gap."""
        self.crossed += 1
        self._lose_sync()
        self._buffer_change(sequence, side, price, size)
        return CROSSED

    def _buffer_change(self, sequence: int, side: Side, price: float, size: float) -> None:
        """Keep a change for the next snapshot; when full, drop the oldest one."""
        buffer = self._buffer
        if len(buffer) >= self._max_buffered:
            buffer.popleft()
            self.buffer_dropped += 1
        buffer.append((sequence, side, price, size))

    def _replay_buffer(self, snapshot_sequence: int) -> None:
        """Apply buffered changes after a snapshot at `snapshot_sequence`, in sequence order.

        Changes at or before the snapshot are already in it and are dropped silently; a
        repeated sequence after it is a duplicate (`stale_changes`). The first change that
        does not follow on (a gap) or that would cross the book ends the replay: the book
        is cleared and that change and everything after it stay buffered.
        """
        pending = sorted(self._buffer, key=_by_sequence)  # stable: duplicates keep arrival order
        self._buffer.clear()
        for index, (sequence, side, price, size) in enumerate(pending):
            if sequence <= self.sequence:
                if sequence > snapshot_sequence:
                    self.stale_changes += 1
                continue
            if self.apply_change(sequence, side, price, size) != APPLIED:
                # apply_change cleared the book and buffered this change; keep the rest.
                # `pending` came from the bounded buffer, so this cannot overflow it.
                self._buffer.extend(pending[index + 1 :])
                return
