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
* A hand-written sorted structure (heaps, bisect over lists): `SortedDict` gives
  O(log n) updates and ordered range walks, and is already a dependency.

Layout and cost
---------------
Both sides are `SortedDict`s keyed by price, so the best bid is the *last* bid key and the
best ask the *first* ask key (keying bids by -price would allocate a float per change).
The best bid and ask prices are also cached as plain floats (-inf / +inf when a side is
empty): the crossing check runs on every change, and reading the best key through
SortedDict's key view costs two Python calls, more than the comparison itself. The cache
moves up when a better level is added and is re-read from the keys only when the best
level itself is removed. An in-sync `apply_change` does integer and float comparisons plus
one SortedDict update; it allocates nothing else, logs nothing and raises nothing. Depth
queries walk from the top and stop at the price bound: while a side's keys sit in one
SortedList sublist (up to ~2000 levels) they bisect and slice that list directly, else
they use `irange`/`islice`; either way the same levels in the same order (best first), so
the float sums are identical.

Nothing here does I/O or reads a clock; the same inputs always give the same book.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable
from itertools import islice
from operator import itemgetter
from typing import Any

from sortedcontainers import SortedDict

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
# SortedDict is a dict subclass that keeps its sorted key list beside the dict. Changing the
# size of a level that already exists leaves the keys alone, so the hot path stores it with
# dict.__setitem__ directly: about 10% cheaper per change than SortedDict.__setitem__.
_dict_setitem = dict.__setitem__
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
        "_ask_keys",
        "_asks",
        "_best_ask",
        "_best_bid",
        "_bid_keys",
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
        self._bids: Any = SortedDict()  # price -> size; best bid is the last key
        self._asks: Any = SortedDict()  # price -> size; best ask is the first key
        # Live, indexable views of the sorted keys (created once, never reallocated).
        self._bid_keys: Any = self._bids.keys()
        self._ask_keys: Any = self._asks.keys()
        self._best_bid = _NEG_INF  # == the last bid key; -inf when there are no bids
        self._best_ask = _INF  # == the first ask key; +inf when there are no asks
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
        (`crossed`) and changes nothing. Levels with size <= 0 are skipped. A snapshot that
        restores sync after sync was lost counts in `resyncs`.
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
        self._bids.clear()
        self._asks.clear()
        self._bids.update(bid_levels)
        self._asks.update(ask_levels)
        self._best_bid = self._bid_keys[-1] if self._bids else _NEG_INF
        self._best_ask = self._ask_keys[0] if self._asks else _INF
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
                if price in bids:  # same key set: a plain dict store (skips a Python frame)
                    _dict_setitem(bids, price, size)
                else:
                    bids[price] = size
                    if price > self._best_bid:
                        self._best_bid = price
            else:
                bids.pop(price, None)
                if price == self._best_bid:
                    self._best_bid = self._bid_keys[-1] if bids else _NEG_INF
        else:
            asks = self._asks
            if size > 0:
                if price <= self._best_bid:
                    return self._cross(sequence, side, price, size)
                if price in asks:
                    _dict_setitem(asks, price, size)
                else:
                    asks[price] = size
                    if price < self._best_ask:
                        self._best_ask = price
            else:
                asks.pop(price, None)
                if price == self._best_ask:
                    self._best_ask = self._ask_keys[0] if asks else _INF
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
        size: float = self._bids[price]
        return price, size

    def best_ask(self) -> tuple[float, float] | None:
        """(price, size) of the best ask, or None when there are no asks."""
        if not self._asks:
            return None
        price = self._best_ask
        size: float = self._asks[price]
        return price, size

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
            return [(price, bids[price]) for price in islice(reversed(bids), n)]
        asks = self._asks
        return [(price, asks[price]) for price in islice(asks, n)]

    def _bid_keys_from(self, minimum: float) -> Iterable[float]:
        """Bid prices >= `minimum`, best (highest) first: `irange(minimum, reverse=True)`.

        Fast path: while the keys fit in one of SortedList's sublists (up to ~2000 levels
        a side) they are sliced from it directly, which is the same keys in the same
        order without irange's generator setup. `_list._lists` is sortedcontainers'
        internal layout (stable since 1.x); larger books use the public `irange`.
        """
        lists = self._bids._list._lists
        if len(lists) == 1:
            keys: list[float] = lists[0]
            found = keys[bisect_left(keys, minimum) :]
            found.reverse()
            return found
        result: Iterable[float] = self._bids.irange(minimum=minimum, reverse=True)
        return result

    def _ask_keys_to(self, maximum: float) -> Iterable[float]:
        """Ask prices <= `maximum`, best (lowest) first: `irange(maximum=maximum)`."""
        lists = self._asks._list._lists
        if len(lists) == 1:
            keys: list[float] = lists[0]
            return keys[: bisect_right(keys, maximum)]
        result: Iterable[float] = self._asks.irange(maximum=maximum)
        return result

    def depth_within_bps(self, bps: float) -> tuple[float, float]:
        """(bid size, ask size) summed over levels within `bps` of mid; (0, 0) if a side is empty.

        A bid counts if its price >= mid * (1 - bps/1e4), an ask if <= mid * (1 + bps/1e4).
        Summed best level first.
        """
        bids = self._bids
        asks = self._asks
        if not bids or not asks:
            return 0.0, 0.0
        mid = (self._best_bid + self._best_ask) * 0.5  # self.mid()
        bid_size = 0.0
        for price in self._bid_keys_from(mid * (1.0 - bps / 1e4)):
            bid_size += bids[price]
        ask_size = 0.0
        for price in self._ask_keys_to(mid * (1.0 + bps / 1e4)):
            ask_size += asks[price]
        return bid_size, ask_size

    def notional_within_bps(self, bps: float) -> tuple[float, float]:
        """Like `depth_within_bps` but summing price * size (quote-currency notional)."""
        bids = self._bids
        asks = self._asks
        if not bids or not asks:
            return 0.0, 0.0
        mid = (self._best_bid + self._best_ask) * 0.5  # self.mid()
        bid_notional = 0.0
        for price in self._bid_keys_from(mid * (1.0 - bps / 1e4)):
            bid_notional += price * bids[price]
        ask_notional = 0.0
        for price in self._ask_keys_to(mid * (1.0 + bps / 1e4)):
            ask_notional += price * asks[price]
        return bid_notional, ask_notional

    def imbalance(self, n: int) -> float:
        """(bid size - ask size) / (bid size + ask size) over the top `n` levels of each side.

        In [-1, 1]; 0.0 when both sides are empty (or n <= 0). Summed best level first.
        """
        if n <= 0:
            return 0.0
        bids = self._bids
        asks = self._asks
        bid_size = 0.0
        lists = bids._list._lists  # the top n keys, sliced from the last sublist if there
        if lists and (len(lists) == 1 or len(lists[-1]) >= n):
            for price in reversed(lists[-1][-n:]):
                bid_size += bids[price]
        else:
            for price in islice(reversed(bids), n):
                bid_size += bids[price]
        ask_size = 0.0
        lists = asks._list._lists
        if lists and (len(lists) == 1 or len(lists[0]) >= n):
            for price in lists[0][:n]:
                ask_size += asks[price]
        else:
            for price in islice(asks, n):
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
