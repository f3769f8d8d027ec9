"""Market state: what we currently know about every symbol, and when we learned it.

`Market.apply(event, now_ns)` folds one protocol event into the per-symbol
`SymbolState` (best bid/ask, the level-2 book, last trade, mark/index price, funding,
24 h statistics) and stamps each field group with `now_ns`, the receive time, so
freshness is judged in the run's own clock (replay: the recording's time). It also
keeps the contract table (listings, delistings), counts stale periods and journals
every market fact worth a digest line.

Top of book comes from whichever source spoke last: a ticker, a depth push, or the
level-2 book after an applied change that touched the top. Synchronous, no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from tradebot.journal import Journal
from tradebot.kucoin.events import (
    BookDepth,
    BookSnapshot,
    ContractsActive,
    FundingRate,
    FundingSettlement,
    Level2Change,
    MarkIndexPrice,
    Side,
    Snapshot24h,
    Ticker,
    Trade,
)
from tradebot.market.book import APPLIED, BUFFERED, CROSSED, STALE, OrderBook
from tradebot.market.contracts import OPEN, ContractTable
from tradebot.market.requests import BookResync, Subscribe, Unsubscribe, symbol_topics

__all__ = ["Market", "SymbolState"]

DEFAULT_STALE_AFTER_MS = 5_000
# At most this many requests wait in the outbox; the oldest are dropped beyond it.
MAX_REQUESTS = 4_096


class SymbolState:
    """Everything known about one symbol. `*_ns` fields are receive times (0 = never)."""

    __slots__ = (
        "ask",
        "ask_size",
        "bid",
        "bid_size",
        "book",
        "book_conn",
        "funding_ns",
        "funding_rate",
        "index_price",
        "last_funding_ns",
        "last_price",
        "last_side",
        "last_size",
        "lost_ns",
        "mark_ns",
        "mark_price",
        "next_funding_ns",
        "quote_conn",
        "quote_ns",
        "stale",
        "stats_ns",
        "symbol",
        "trade_ns",
        "turnover_24h",
        "volume_24h",
    )

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.book = OrderBook(symbol)
        self.bid = 0.0
        self.bid_size = 0.0
        self.ask = 0.0
        self.ask_size = 0.0
        self.quote_ns = 0
        # The WebSocket connections the book's changes and the quotes last came on (None:
        # none, or not known); see `Market.connection_lost`.
        self.book_conn: int | None = None
        self.quote_conn: int | None = None
        # When the book last lost sync (a gap, a disconnect): the top-of-book fields are
        # not a price to fill at until a quote newer than this (`quote_ns`) arrives.
        self.lost_ns = 0
        self.last_price = 0.0
        self.last_size = 0.0
        self.last_side = 0
        self.trade_ns = 0
        self.mark_price = 0.0
        self.index_price = 0.0
        self.mark_ns = 0
        self.funding_rate: float | None = None
        self.funding_ns = 0
        self.next_funding_ns = 0
        self.last_funding_ns = 0
        self.volume_24h: float | None = None
        self.turnover_24h: float | None = None
        self.stats_ns = 0
        self.stale = False

    def mid(self) -> float:
        """Mid price from the current top of book; 0.0 when a side is missing."""
        if self.bid > 0.0 and self.ask > 0.0:
            return (self.bid + self.ask) * 0.5
        return 0.0

    def spread_bps(self) -> float:
        """Spread over mid in basis points; inf when a side is missing."""
        mid = self.mid()
        if mid <= 0.0:
            return float("inf")
        return (self.ask - self.bid) / mid * 10_000.0


class Market:
    """All symbols' state plus contracts; applies events in order.

    Counters for the report: `stale_periods`, `listings`, `delistings` (in the order
    seen), and the books' own gap and resync counts (`sequence_gaps()`, `resyncs()`).
    """

    def __init__(self, journal: Journal, *, stale_after_ms: int = DEFAULT_STALE_AFTER_MS) -> None:
        self.journal = journal
        self.stale_after_ns = stale_after_ms * 1_000_000
        self.symbols: dict[str, SymbolState] = {}
        self.contracts = ContractTable()
        self.listings: list[str] = []
        self.delistings: list[str] = []
        self.stale_periods = 0
        # The outbox (see tradebot.market.requests), taken by `Engine.take_requests`;
        # bounded, so a shell that never takes it (replay) does not grow it for days.
        self.requests: deque[BookResync | Subscribe | Unsubscribe] = deque(maxlen=MAX_REQUESTS)
        # Symbols whose resync was asked for and not yet answered by a snapshot.
        self._resync_asked: set[str] = set()
        # False once a WebSocket message arrived without its connection (format v1).
        self.connections_known = True
        # event type -> handler(event, receive time, connection or None) -> the state touched
        self.handlers: dict[type, Callable[[Any, int, int | None], SymbolState | None]] = {
            Level2Change: self._on_level2,
            Ticker: self._on_ticker,
            Trade: self._on_trade,
            BookDepth: self._on_depth,
            BookSnapshot: self._on_snapshot,
            MarkIndexPrice: self._on_mark,
            FundingRate: self._on_funding_rate,
            FundingSettlement: self._on_funding_settlement,
            Snapshot24h: self._on_stats,
            ContractsActive: self._on_contracts,
        }

    def apply(self, event: object, now_ns: int, conn: int | None = None) -> SymbolState | None:
        """Fold one event in; return the symbol state it touched (None for other events).

        `conn` is the WebSocket connection the event arrived on (None: REST, or a
        version-1 recording, which does not say)."""
        handler = self.handlers.get(type(event))
        if handler is None:
            return None
        return handler(event, now_ns, conn)

    def state(self, symbol: str) -> SymbolState:
        st = self.symbols.get(symbol)
        if st is None:
            st = self.symbols[symbol] = SymbolState(symbol)
        return st

    # --- quotes and books ---------------------------------------------------------------

    def _quoted(self, st: SymbolState, now_ns: int) -> None:
        """Stamp a quote update; notice a stale period that ended (slow path only then).
        The one place a quote's freshness is stamped."""
        prev = st.quote_ns
        if st.stale or (now_ns - prev > self.stale_after_ns and prev):
            self._freshened(st, prev, now_ns)
        st.quote_ns = now_ns

    def _freshened(self, st: SymbolState, prev: int, now_ns: int) -> None:
        if st.stale:
            st.stale = False
            self.journal.record(now_ns, "fresh", st.symbol)
        elif self.contracts.is_open(st.symbol):
            # Went stale and came back between two scans: still a stale period.
            self.stale_periods += 1
            self.journal.record(now_ns, "stale", st.symbol, since_ns=prev)
            self.journal.record(now_ns, "fresh", st.symbol)

    def _on_level2(self, ev: Level2Change, now_ns: int, conn: int | None = None) -> SymbolState:
        """Apply one level-2 change to the symbol's book; follow the top of book when it
        moved. `st.quote_ns == now_ns` afterwards iff the change was applied."""
        st = self.symbols.get(ev.symbol) or self.state(ev.symbol)
        st.book_conn = conn
        book = st.book
        price = ev.price
        code = book.apply_change(ev.sequence, ev.side, price, ev.size)
        if code == APPLIED:
            if ev.side is Side.BUY:
                if price >= st.bid:
                    top = book.best_bid()
                    st.bid, st.bid_size = top if top is not None else (0.0, 0.0)
            elif price <= st.ask or st.ask == 0.0:
                top = book.best_ask()
                st.ask, st.ask_size = top if top is not None else (0.0, 0.0)
            self._quoted(st, now_ns)
        elif code != STALE and code != BUFFERED:
            st.lost_ns = now_ns
            self.journal.record(now_ns, "book_lost", st.symbol, seq=ev.sequence, why=code)
            self._ask_resync(st.symbol, "crossed" if code == CROSSED else "gap")
        return st

    def _ask_resync(self, symbol: str, why: str) -> None:
        """Ask the shell for a snapshot of `symbol`'s book, once per loss of sync."""
        if symbol not in self._resync_asked:
            self._resync_asked.add(symbol)
            self.requests.append(BookResync(symbol, why))

    def _on_snapshot(self, ev: BookSnapshot, now_ns: int, conn: int | None = None) -> SymbolState:
        st = self.state(ev.symbol)
        resyncs = st.book.resyncs
        asked = self._resync_asked
        if asked:
            asked.discard(ev.symbol)  # the answer came: a refused one asks again below
        if not st.book.apply_snapshot(ev.sequence, ev.bids, ev.asks):
            self._ask_resync(ev.symbol, "snapshot_refused")  # sync not restored
        else:
            bid, ask = st.book.best_bid(), st.book.best_ask()
            st.bid, st.bid_size = bid if bid is not None else (0.0, 0.0)
            st.ask, st.ask_size = ask if ask is not None else (0.0, 0.0)
            self._quoted(st, now_ns)
            if st.book.resyncs != resyncs:
                self.journal.record(now_ns, "book_resync", ev.symbol, seq=st.book.sequence)
        return st

    def _on_ticker(self, ev: Ticker, now_ns: int, conn: int | None = None) -> SymbolState:
        st = self.symbols.get(ev.symbol) or self.state(ev.symbol)
        st.quote_conn = conn
        st.bid = ev.bid
        st.bid_size = ev.bid_size
        st.ask = ev.ask
        st.ask_size = ev.ask_size
        self._quoted(st, now_ns)
        if ev.last_price > 0.0:
            st.last_price = ev.last_price
            st.last_size = ev.last_size
            st.trade_ns = now_ns
        return st

    def _on_depth(self, ev: BookDepth, now_ns: int, conn: int | None = None) -> SymbolState:
        st = self.state(ev.symbol)
        if ev.bids and ev.asks:
            st.quote_conn = conn
            st.bid, st.bid_size = ev.bids[0]
            st.ask, st.ask_size = ev.asks[0]
            self._quoted(st, now_ns)
        return st

    def _on_trade(self, ev: Trade, now_ns: int, conn: int | None = None) -> SymbolState:
        st = self.symbols.get(ev.symbol) or self.state(ev.symbol)
        st.last_price = ev.price
        st.last_size = ev.size
        st.last_side = ev.side
        st.trade_ns = now_ns
        return st

    # --- reference prices, funding, stats -------------------------------------------------

    def _on_mark(self, ev: MarkIndexPrice, now_ns: int, conn: int | None = None) -> SymbolState:
        st = self.state(ev.symbol)
        st.mark_price = ev.mark_price
        st.index_price = ev.index_price
        st.mark_ns = now_ns
        return st

    def _on_funding_rate(
        self, ev: FundingRate, now_ns: int, conn: int | None = None
    ) -> SymbolState:
        st = self.state(ev.symbol)
        st.funding_rate = ev.funding_rate
        st.funding_ns = now_ns
        return st

    def _on_funding_settlement(
        self, ev: FundingSettlement, now_ns: int, conn: int | None = None
    ) -> SymbolState:
        st = self.state(ev.symbol)
        st.funding_rate = ev.funding_rate
        st.funding_ns = now_ns
        if ev.phase == "begin":
            st.last_funding_ns = now_ns  # the run's clock, not the exchange's fundingTime
        return st

    def _on_stats(self, ev: Snapshot24h, now_ns: int, conn: int | None = None) -> SymbolState:
        st = self.state(ev.symbol)
        st.volume_24h = ev.volume_24h
        st.turnover_24h = ev.turnover_24h
        st.stats_ns = now_ns
        if st.last_price == 0.0:
            st.last_price = ev.last_price
        return st

    def _on_contracts(self, ev: ContractsActive, now_ns: int, conn: int | None = None) -> None:
        listed, delisted = self.contracts.update(ev.contracts, now_ns, ev.unparsed)
        for contract in ev.contracts:
            st = self.symbols.get(contract.symbol)
            if st is None:
                if contract.status != OPEN:
                    continue
                st = self.state(contract.symbol)  # contracts usually arrive before any data
            if contract.next_funding_in_ms is not None:
                st.next_funding_ns = now_ns + contract.next_funding_in_ms * 1_000_000
            if contract.funding_rate is not None and st.funding_rate is None:
                st.funding_rate = contract.funding_rate
            if st.volume_24h is None and contract.volume_24h is not None:
                st.volume_24h = contract.volume_24h
                st.turnover_24h = contract.turnover_24h
        for symbol in listed:
            self.listings.append(symbol)
            self.journal.record(now_ns, "listing", symbol)
        if listed:
            self.requests.append(Subscribe(tuple(t for s in listed for t in symbol_topics(s))))
        for symbol in delisted:
            self.delistings.append(symbol)
            self.journal.record(now_ns, "delisting", symbol)
        if delisted:
            self.requests.append(Unsubscribe(tuple(t for s in delisted for t in symbol_topics(s))))
        return None

    # --- connection lifecycle and freshness -------------------------------------------------

    def connection_lost(self, now_ns: int, conn: int, reason: str) -> None:
        """A market-data connection closed: what arrived on it is untrustworthy until
        resynced (the live feed fetches snapshots after reconnecting; replay applies the
        ones it recorded).

        A book whose level-2 changes came on `conn` is invalidated, and so is a book that
        has had no change yet (its changes may have been due on `conn`); a symbol whose
        book or quotes came on it loses its top of book as a fill price (`lost_ns`). When
        the feed does not say which connection a message came on (`connections_known` is
        False: a version-1 recording), every book and every symbol is affected.
        """
        self.journal.record(now_ns, "disconnect", "", conn=conn, reason=reason)
        known = self.connections_known
        for st in self.symbols.values():
            book_conn = st.book_conn
            if not known or book_conn is None or book_conn == conn:
                st.lost_ns = now_ns
                if st.book.in_sync:
                    st.book.invalidate()
                    self._ask_resync(st.symbol, "disconnect")
            elif st.quote_conn == conn:
                st.lost_ns = now_ns

    def scan_stale(self, now_ns: int) -> None:
        """Mark symbols whose quotes are older than the freshness limit; count each period."""
        limit = self.stale_after_ns
        is_open = self.contracts.is_open
        for st in self.symbols.values():
            if not st.stale and st.quote_ns and now_ns - st.quote_ns > limit and is_open(st.symbol):
                st.stale = True
                self.stale_periods += 1
                self.journal.record(now_ns, "stale", st.symbol, since_ns=st.quote_ns)
