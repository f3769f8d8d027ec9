"""Paper broker: a fill model against the recorded market, and an exact paper account.

What it models
--------------
* Latency. An order becomes active `PaperConfig.latency_ms` after it is submitted, on the
  run's clock (`now_ns` arguments; nothing here reads a clock). Before that it cannot
  fill, whatever the market does.
* Market orders take liquidity. When it arrives (its latency passed: `pop_arrival`), on
  the book as it stood at that moment, a market order walks the opposite side of the
  level-2 book from the best level, taking each level's size at that level's price (so
  a large order pays slippage). What the book cannot fill is cancelled
  (immediate-or-cancel) and journaled. When the book is out of sync it uses the top of
  book (best bid/ask and their sizes) as a single level, but only a quote that arrived
  after the book lost sync (a gap, a disconnect): the fields left over from before are
  a known-stale price, and a refused snapshot restores none. With no price at all the
  order waits for the next valid book: it is never filled at a made-up price.
* Limit orders. On activation a limit that is marketable (a buy at or above the best ask,
  a sell at or below the best bid) takes liquidity like a market order, but only at
  levels within its limit, as taker; the rest rests. A resting limit fills, as maker, only
  when the public tape prints a trade *through* its price (a buy at P fills when a trade
  prints strictly below P), at P, up to the traded size; the rest keeps resting.
* A notional cap (`OrderRequest.max_notional`, set on entries) holds at the fill: the
  walk stops before the lot that would take the order's filled notional past it.
* Sizes are whole lots: a book level or a trade of 2.7 lots offers 2 (in multiples of the
  lot size).
* Reduce-only orders are refused when they would open, increase or flip a position,
  clamped to the position when they fill, and cancelled once there is nothing left for
  them to reduce (so a stale take-profit cannot act on a later position).
* Fees on every fill: notional x rate, taker or maker, from the config or from the
  contract's own rates (`use_contract_fees`). Funding is settled on request.
* The account: cash, positions (average-cost entry, realized PnL, fees and funding per
  position), equity marked at mark prices, counters for the report.

What it does not model, and why
-------------------------------
* Queue position. We do not know how much size was ahead of us at a price, so a trade
  *at* our limit price does not fill us (we might have been last in the queue); only a
  trade through the price proves our order would have been reached. This is conservative:
  it under-fills limits rather than inventing maker fills.
* Quotes moving through a resting limit do not fill it; only trades do. Quotes can be
  cancelled before anyone trades with them; a print is a fact.
* Market impact. Our fills do not change the recorded book; within one update several of
  our orders share (and deplete) the same levels, but the next update is the market's.
* Cancel latency: a cancel takes effect at once (an order cannot fill between the cancel
  request and its arrival at the exchange).
* Margin, leverage and liquidation: the account is cash-settled PnL only.
* Inverse contracts (PnL in the base coin, lots x multiplier x (1/entry - 1/exit)): orders
  on them are refused with `INVERSE_NOT_SUPPORTED` rather than booked with linear maths.

Events
------
It is a `tradebot.execution.orders.Broker`: what happens to an order after `submit`
(each fill; resting, filled, cancelled) is queued as events for `take_events`, in the
order it happened. `on_market` is the trader's market feed into the model; `on_due`
executes the next order that arrived; `on_clock` expires market orders without a price.

Money is exact (`tradebot.execution.money`); the account (`tradebot.execution.account`)
books each fill this model decides.

Synchronous, no I/O, no clock: the same calls give the same fills, journal and digest.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from tradebot.config import PaperConfig
from tradebot.execution.account import Account
from tradebot.execution.money import (
    LOT_EPSILON,
    ZERO,
    float_fraction,
    money,
    price_of,
    side_name,
    text_fraction,
    usable,
)
from tradebot.execution.orders import (
    MAKER,
    TAKER,
    AccountStats,
    BrokerEvent,
    CancelOrder,
    Fill,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PlaceOrder,
    Position,
)
from tradebot.journal import Journal
from tradebot.kucoin.events import (
    BookDepth,
    BookSnapshot,
    Contract,
    FundingSettlement,
    Level2Change,
    MarkIndexPrice,
    Side,
    Ticker,
    Trade,
)

if TYPE_CHECKING:
    from tradebot.market.state import Market, SymbolState

__all__ = [
    "INVERSE_NOT_SUPPORTED",
    "MAKER",
    "NEVER",
    "TAKER",
    "Fill",
    "OrderRequest",
    "OrderType",
    "PaperBroker",
    "Position",
]

INVERSE_NOT_SUPPORTED = "inverse contracts are not supported by the paper broker"

_NS_PER_MS = 1_000_000
NEVER = 1 << 63  # later than any run's clock
_ORDER_TYPES = frozenset(OrderType)
_QUOTES = (Level2Change, Ticker, BookSnapshot, BookDepth)


@dataclass(slots=True)
class _Order:
    order_id: int
    req: OrderRequest
    active_ns: int
    remaining: int
    tick_text: str  # the tick size its limit_ticks count in
    resting: bool = False  # a LIMIT that was checked on activation and now rests
    spent: Fraction = Fraction(0)  # notional filled so far (for `max_notional`)


@dataclass(slots=True)
class _Level:
    ticks: int
    lots: int  # still available to us in this update


class PaperBroker(Account):
    """A simulated exchange: orders and the fill model, on an exact `Account`.

    It implements `tradebot.execution.orders.Broker`. Its orders never leave the process
    (`take_requests` is always empty); fills and order updates are queued for
    `take_events` as they happen. `market` (the run's market state) is what `on_due`
    fills arriving orders against; the fill-model methods (`on_book`, `on_trade`, ...)
    take their market data as arguments and work without it.
    """

    def __init__(self, cfg: PaperConfig, journal: Journal, market: Market | None = None) -> None:
        super().__init__(Decimal(repr(cfg.starting_equity_usdt)), journal)
        self.cfg = cfg
        self.market = market
        self._events: list[BrokerEvent] = []
        self._funded: dict[str, int] = {}  # symbol -> funding time last settled
        self._timeout_ns = cfg.order_timeout_ms * _NS_PER_MS
        self.orders_count = 0  # accepted orders
        self.rejects = 0
        self.last_reject: str | None = None
        self._latency_ns = cfg.latency_ms * _NS_PER_MS
        self._next_id = 0
        self._orders: dict[int, _Order] = {}
        self._by_symbol: dict[str, dict[int, _Order]] = {}
        # (active_ns, order_id) of orders not yet handled on arrival, soonest first
        self._arrivals: list[tuple[int, int]] = []
        self.next_arrival_ns = NEVER  # the soonest of them; NEVER when there is none

    # --- the Broker protocol -----------------------------------------------------------------

    def stats(self) -> AccountStats:
        return AccountStats(
            starting_equity=self.starting_equity,
            cash=self.cash,
            orders=self.orders_count,
            rejects=self.rejects,
            fills=self.fills_count,
            fees_paid=self.fees_paid,
            realized_pnl=self.realized_pnl,
            funding=self.funding,
            positions_opened=self.positions_opened,
            positions_closed=self.positions_closed,
            wins=self.wins,
            refused=dict(self.refused),
        )

    def take_events(self) -> list[BrokerEvent]:
        events = self._events
        self._events = []
        return events

    def take_requests(self) -> list[PlaceOrder | CancelOrder]:
        """Always empty: paper orders are satisfied here, nothing is sent anywhere."""
        return []

    def on_market(
        self, event: Any, st: SymbolState, contract: Contract | None, now_ns: int
    ) -> bool:
        """Fill against a market event and mark positions with it.

        A quote change (level 2, ticker, snapshot, depth) executes the symbol's pending
        orders on the book (`on_book`) and, while a position is held, marks it at the mid;
        a trade is the last-trade mark and fills resting limits it went through
        (`on_trade`); a mark price marks; the first announcement ("begin") of a funding
        time settles funding once, at the mark (else the mid). True when events queued."""
        symbol = st.symbol
        kind = type(event)
        if kind is Trade:
            self.last_trade(symbol, event.price)
            if contract is not None and self.has_resting(symbol):
                self.on_trade(symbol, event.price, event.size, event.side, contract, now_ns)
        elif kind is MarkIndexPrice:
            self.mark(symbol, event.mark_price)
        elif kind is FundingSettlement:
            if event.phase == "begin" and self._funded.get(symbol) != event.funding_time_ns:
                self._funded[symbol] = event.funding_time_ns
                mark = st.mark_price or st.mid()
                if symbol in self.positions and mark > 0.0:
                    self.on_funding(symbol, event.funding_rate, mark, now_ns)
        elif kind in _QUOTES:
            if contract is not None and symbol in self._by_symbol and self.has_pending(symbol):
                self.on_book(st, contract, now_ns)
            if symbol in self.positions:
                self.mid(symbol, st.mid())  # its mark while no mark price or trade is known
        return bool(self._events)

    def on_due(self, now_ns: int) -> bool:
        """The next order that reached the exchange by `now_ns`, executed at its arrival
        time on the book of `market` as it stood then (see `pop_arrival`)."""
        arrival = self.pop_arrival(now_ns)
        if arrival is None:
            return False
        at_ns, symbol = arrival
        market = self.market
        if market is not None:
            st = market.symbols.get(symbol)
            contract = market.contracts.get(symbol)
            if st is not None and contract is not None:
                self.on_book(st, contract, at_ns)
        return True

    def on_clock(self, now_ns: int) -> None:
        """Expire market orders that found no price for `order_timeout_ms` (`expire`)."""
        self.expire(now_ns, self._timeout_ns)

    # --- orders in the book ---------------------------------------------------------------

    def open_orders(self, symbol: str | None = None) -> list[int]:
        """Ids of orders not yet filled or cancelled (pending latency or resting), ascending."""
        if symbol is None:
            return sorted(self._orders)
        return sorted(self._by_symbol.get(symbol, ()))

    def has_pending(self, symbol: str, *, reduce_only_market: bool = False) -> bool:
        """True when `symbol` has an order `on_book` still has to handle (waiting for its
        latency or for a price, or a LIMIT not yet placed); resting limits do not count.
        With `reduce_only_market`, only reduce-only MARKET orders count (a close in flight)."""
        orders = self._by_symbol.get(symbol)
        if not orders:
            return False
        for order in orders.values():
            if reduce_only_market:
                if order.req.reduce_only and order.req.type == OrderType.MARKET:
                    return True
            elif not order.resting:
                return True
        return False

    def has_resting(self, symbol: str) -> bool:
        """True when `symbol` has a resting LIMIT order (one `on_trade` may fill)."""
        orders = self._by_symbol.get(symbol)
        if not orders:
            return False
        return any(order.resting for order in orders.values())

    def pending_symbols(self) -> set[str]:
        """Symbols with at least one open order (pending or resting)."""
        return set(self._by_symbol)

    def pending_entry_symbols(self) -> set[str]:
        """Symbols with an order in flight or resting that is not reduce-only (an entry)."""
        return {
            symbol
            for symbol, orders in self._by_symbol.items()
            if any(not order.req.reduce_only for order in orders.values())
        }

    def settle(
        self, symbol: str, contract: Contract, price: float, reason: str, now_ns: int
    ) -> bool:
        """Close `symbol`'s whole position at `price`, without a fee: the exchange settling a
        contract that stopped trading (a delisting whose market data is gone). Cancels the
        symbol's orders first. Journals "settlement", then the position close. Returns False
        when flat or `price` is not usable."""
        pos = self.positions.get(symbol)
        if pos is None or not usable(price) or contract.symbol != symbol:
            return False
        self.cancel_all(symbol, now_ns)
        ticks = round(price / contract.tick_size)
        if ticks <= 0:
            return False
        side = Side.SELL if pos.direction > 0 else Side.BUY
        fill = Fill(
            0, symbol, side, pos.lots, price_of(ticks, contract), ZERO, "settlement", now_ns
        )
        self.journal.record(
            now_ns, "settlement", symbol, side=side_name(side), lots=pos.lots, price=fill.price
        )
        self._book(fill, ticks, contract, reason, now_ns)
        self._events.append(fill)
        return True

    # --- orders ---------------------------------------------------------------------------

    def submit(self, req: OrderRequest, contract: Contract, now_ns: int) -> int | None:
        """Accept an order (journal "order", return its id) or refuse it (journal
        "order_rejected", set `last_reject`, return None). It becomes active at
        now_ns + latency."""
        why = self._validate(req, contract)
        if why is not None:
            self.rejects += 1
            self.last_reject = why
            self.journal.record(
                now_ns,
                "order_rejected",
                req.symbol,
                side=side_name(req.side),
                type=str(req.type),
                lots=req.lots,
                order_reason=req.reason,
                reason=why,
            )
            return None
        self._next_id += 1
        order_id = self._next_id
        req = replace(req)  # our own copy: the caller may reuse its request object
        order = _Order(order_id, req, now_ns + self._latency_ns, req.lots, contract.tick_size_text)
        self._orders[order_id] = order
        self._by_symbol.setdefault(req.symbol, {})[order_id] = order
        heapq.heappush(self._arrivals, (order.active_ns, order_id))
        self.next_arrival_ns = self._arrivals[0][0]
        self.orders_count += 1
        limit_price = (
            price_of(req.limit_ticks, contract)
            if req.type == OrderType.LIMIT and req.limit_ticks is not None
            else None
        )
        self.journal.record(
            now_ns,
            "order",
            req.symbol,
            order_id=order_id,
            side=side_name(req.side),
            type=str(req.type),
            lots=req.lots,
            limit_price=limit_price,
            reduce_only=req.reduce_only,
            reason=req.reason,
        )
        return order_id

    def pop_arrival(self, now_ns: int) -> tuple[int, str] | None:
        """The next order to arrive at the exchange by `now_ns`: (its arrival time, its
        symbol), or None. The caller executes it with `on_book` at that time, on the book
        as it stood then (before any later update), and asks again until None."""
        arrivals = self._arrivals
        while arrivals and arrivals[0][0] <= now_ns:
            active_ns, order_id = heapq.heappop(arrivals)
            order = self._orders.get(order_id)
            if order is not None and not order.resting:
                self.next_arrival_ns = arrivals[0][0] if arrivals else NEVER
                return active_ns, order.req.symbol
        self.next_arrival_ns = arrivals[0][0] if arrivals else NEVER
        return None

    def cancel(self, order_id: int, now_ns: int, why: str = "requested") -> bool:
        """Cancel an open order (journal "cancel" with `why`); False when it is not open."""
        order = self._orders.get(order_id)
        if order is None:
            return False
        self._drop(order, now_ns, why)
        return True

    def cancel_all(self, symbol: str, now_ns: int, why: str = "requested") -> int:
        """Cancel every open order of `symbol`; return how many were cancelled."""
        orders = self._by_symbol.get(symbol)
        if not orders:
            return 0
        victims = list(orders.values())
        for order in victims:
            self._drop(order, now_ns, why)
        return len(victims)

    # --- market events ----------------------------------------------------------------------

    def on_book(self, st: SymbolState, contract: Contract, now_ns: int) -> list[Fill]:
        """Execute the symbol's active orders against the current book (see module docstring)."""
        orders = self._by_symbol.get(st.symbol)
        if not orders:
            return []
        self._regrid(orders, contract, now_ns)
        fills: list[Fill] = []
        liquidity: dict[int, list[_Level]] = {}  # side taken -> levels, depleted as we fill
        for order in list(orders.values()):
            if order.active_ns > now_ns:
                continue
            req = order.req
            if order.resting:
                continue
            taken = -int(req.side)
            levels = liquidity.get(taken)
            if levels is None:
                levels = liquidity[taken] = self._levels(st, Side(taken), contract)
            if req.type == OrderType.MARKET:
                if not levels:
                    continue  # no price at all: wait for one
                self._walk(order, levels, None, contract, now_ns, fills)
                if order.remaining > 0:
                    self._drop(order, now_ns, self._unfilled_why(order, "ioc_unfilled"))
                else:
                    self._filled(order, now_ns)
            else:
                order.resting = True
                self._walk(order, levels, req.limit_ticks, contract, now_ns, fills)
                if order.remaining == 0:
                    self._filled(order, now_ns)
                elif req.reduce_only and self._fillable(order) == 0:
                    self._drop(order, now_ns, "reduce_only")
                else:
                    self._update(order, OrderStatus.RESTING, "", now_ns)
        if fills:
            self._sweep_reduce_only(st.symbol, now_ns)
        return fills

    def expire(self, now_ns: int, max_age_ns: int) -> int:
        """Cancel MARKET orders active for longer than `max_age_ns` without a price to fill
        at (their symbol went quiet): a market order must not fill minutes later on a
        decision that is long out of date. Journals "cancel" with why "expired"."""
        expired = [
            order
            for order in self._orders.values()
            if order.req.type == OrderType.MARKET and now_ns - order.active_ns > max_age_ns
        ]
        for order in sorted(expired, key=lambda o: o.order_id):
            self._drop(order, now_ns, "expired")
        return len(expired)

    def on_trade(
        self,
        symbol: str,
        price: float,
        size: float,
        taker_side: Side,
        contract: Contract,
        now_ns: int,
    ) -> list[Fill]:
        """Fill resting limits the trade went through, at their own price, as maker.

        A resting buy at P fills when the trade price is strictly below P, a sell when it is
        strictly above; never at P (queue position unknown). The traded size is shared by
        our orders best price first, then oldest first. `taker_side` does not matter: a
        print through our price proves it was reached, whoever took.
        """
        orders = self._by_symbol.get(symbol)
        if not orders or not usable(price) or not (size > 0.0 and math.isfinite(size)):
            return []
        self._regrid(orders, contract, now_ns)
        trade_ticks = round(price / contract.tick_size)
        hit = [
            o
            for o in orders.values()
            if o.resting
            and o.req.limit_ticks is not None
            and int(o.req.side) * (o.req.limit_ticks - trade_ticks) > 0
        ]
        if not hit:
            return []
        # Best first: highest buy, lowest sell; then oldest.
        hit.sort(key=lambda o: (-int(o.req.side) * (o.req.limit_ticks or 0), o.order_id))
        available = int(size + LOT_EPSILON) // contract.lot_size * contract.lot_size
        fills: list[Fill] = []
        for order in hit:
            fillable = self._fillable(order)
            if fillable == 0:
                if order.req.reduce_only:
                    self._drop(order, now_ns, "reduce_only")
                continue
            take = min(fillable, available)
            if take <= 0:
                break
            available -= take
            assert order.req.limit_ticks is not None
            fills.append(self._execute(order, contract, order.req.limit_ticks, take, MAKER, now_ns))
            if order.remaining == 0:
                self._filled(order, now_ns)
        if fills:
            self._sweep_reduce_only(symbol, now_ns)
        return fills

    # --- internals: orders ---

    def _regrid(self, orders: Mapping[int, _Order], contract: Contract, now_ns: int) -> None:
        """After the exchange changed the tick size: express each limit in the new ticks.

        The limit keeps its price; one that is not on the new grid is rounded away from the
        market (a buy down, a sell up), so it never fills at a worse price than was asked.
        Journals "order_repriced".
        """
        text = contract.tick_size_text
        for order in orders.values():
            if order.tick_text == text:
                continue
            old, new = text_fraction(order.tick_text), text_fraction(text)
            order.tick_text = text
            ticks = order.req.limit_ticks
            if ticks is None:
                continue
            exact = ticks * old / new
            order.req.limit_ticks = (
                math.floor(exact) if order.req.side == Side.BUY else (math.ceil(exact))
            )
            self.journal.record(
                now_ns,
                "order_repriced",
                order.req.symbol,
                order_id=order.order_id,
                limit_price=price_of(order.req.limit_ticks, contract),
            )

    def _validate(self, req: OrderRequest, contract: Contract) -> str | None:
        if contract.is_inverse:
            return INVERSE_NOT_SUPPORTED
        if contract.settle_currency != "USDT":
            return f"contracts settled in {contract.settle_currency} cannot be booked in USDT"
        if req.symbol != contract.symbol:
            return f"order symbol {req.symbol} does not match contract {contract.symbol}"
        if int(req.side) not in (1, -1):
            return f"side must be buy (1) or sell (-1), got {req.side!r}"
        lots, lot_size = req.lots, contract.lot_size
        if type(lots) is not int or lots <= 0 or lots % lot_size:  # bool and float are refused
            return f"lots must be a positive multiple of the lot size {lot_size}, got {lots!r}"
        if lots > contract.max_order_qty:
            return f"lots {lots} exceed the max order quantity {contract.max_order_qty}"
        if req.type not in _ORDER_TYPES:
            return f"unknown order type {req.type!r}"
        if req.type == OrderType.LIMIT:
            if req.limit_ticks is None:
                return "limit order without limit_ticks"
            if req.limit_ticks <= 0:
                return f"limit_ticks must be positive, got {req.limit_ticks}"
        if req.reduce_only:
            pos = self.positions.get(req.symbol)
            if pos is None or pos.direction == req.side:
                return "reduce_only order would open or increase a position"
            if lots - pos.lots >= lot_size:  # up to a lot more: the rest of a closing split
                return f"reduce_only order for {lots} lots would flip a {pos.lots}-lot position"
        return None

    def _remove(self, order: _Order) -> None:
        del self._orders[order.order_id]
        orders = self._by_symbol[order.req.symbol]
        del orders[order.order_id]
        if not orders:
            del self._by_symbol[order.req.symbol]

    def _update(self, order: _Order, status: OrderStatus, why: str, now_ns: int) -> None:
        self._events.append(
            OrderUpdate(order.order_id, order.req.symbol, status, order.remaining, why, now_ns)
        )

    def _filled(self, order: _Order, now_ns: int) -> None:
        """`order` filled in full: it leaves the book."""
        self._remove(order)
        self._update(order, OrderStatus.FILLED, "", now_ns)

    def _drop(self, order: _Order, now_ns: int, why: str) -> None:
        """Cancel the rest of `order` and journal it."""
        self._remove(order)
        self.journal.record(
            now_ns,
            "cancel",
            order.req.symbol,
            order_id=order.order_id,
            lots=order.remaining,
            why=why,
        )
        self._update(order, OrderStatus.CANCELLED, why, now_ns)

    def _fillable(self, order: _Order) -> int:
        """Lots the order may fill now: all that remain, or for reduce_only at most the
        opposite position (0 when flat or on the same side)."""
        if not order.req.reduce_only:
            return order.remaining
        pos = self.positions.get(order.req.symbol)
        if pos is None or pos.direction == order.req.side:
            return 0
        return min(order.remaining, pos.lots)

    def _sweep_reduce_only(self, symbol: str, now_ns: int) -> None:
        """Cancel reduce_only orders that can no longer reduce anything (the position they
        were for is closed or flipped), so they cannot act on a later position."""
        orders = self._by_symbol.get(symbol)
        if not orders:
            return
        for order in list(orders.values()):
            if order.req.reduce_only and self._fillable(order) == 0:
                self._drop(order, now_ns, "reduce_only")

    def _unfilled_why(self, order: _Order, default: str) -> str:
        return "reduce_only" if order.req.reduce_only and self._fillable(order) == 0 else default

    @staticmethod
    def _levels(st: SymbolState, side: Side, contract: Contract) -> list[_Level]:
        """The levels of `side` best first, in ticks and whole lots (multiples of lot size).

        In sync: the level-2 book. Out of sync: the top of book as a single level. Levels
        without a usable price are skipped; an empty list means there is no price at all.
        """
        if st.book.in_sync:
            raw = st.book.levels(side)
        elif st.lost_ns and st.quote_ns <= st.lost_ns:
            return []  # the top of book is from before the book lost sync: no price
        elif side == Side.SELL:
            raw = [(st.ask, st.ask_size)]
        else:
            raw = [(st.bid, st.bid_size)]
        tick, lot = contract.tick_size, contract.lot_size
        out: list[_Level] = []
        for price, size in raw:
            if not usable(price):
                continue
            ticks = round(price / tick)
            if ticks <= 0:
                continue
            lots = int(size + LOT_EPSILON) // lot * lot if size > 0 and math.isfinite(size) else 0
            out.append(_Level(ticks, lots))
        return out

    def _walk(
        self,
        order: _Order,
        levels: list[_Level],
        limit_ticks: int | None,
        contract: Contract,
        now_ns: int,
        fills: list[Fill],
    ) -> None:
        """Take liquidity level by level, best first, as taker (within `limit_ticks` if set)."""
        side = int(order.req.side)
        cap = order.req.max_notional
        unit = (
            text_fraction(contract.tick_size_text) * text_fraction(contract.multiplier_text)
            if cap is not None
            else None
        )
        for level in levels:
            if limit_ticks is not None and side * (level.ticks - limit_ticks) > 0:
                break  # beyond the limit price
            fillable = self._fillable(order)
            if fillable == 0:
                break
            take = min(fillable, level.lots)
            if cap is not None and unit is not None:
                per_lot = level.ticks * unit
                room = (Fraction(cap) - order.spent) // per_lot
                take = min(take, int(room) // contract.lot_size * contract.lot_size)
                if take <= 0:
                    break  # the next lot would take the order past its notional cap
                order.spent += take * per_lot
            if take <= 0:
                continue
            level.lots -= take
            fills.append(self._execute(order, contract, level.ticks, take, TAKER, now_ns))

    # --- internals: fees ------------------------------------------------------------------------

    def _fee_rate(self, contract: Contract, liquidity: str) -> Fraction:
        cfg = self.cfg
        if liquidity == TAKER:
            own = contract.taker_fee_rate if cfg.use_contract_fees else None
            rate = own if own is not None else cfg.taker_fee_rate
        else:
            own = contract.maker_fee_rate if cfg.use_contract_fees else None
            rate = own if own is not None else cfg.maker_fee_rate
        return float_fraction(rate)

    def _execute(
        self, order: _Order, contract: Contract, ticks: int, lots: int, liquidity: str, now_ns: int
    ) -> Fill:
        """One fill of `order`: its fee at this model's rates, booked by the account."""
        req = order.req
        tick = text_fraction(contract.tick_size_text)
        multiplier = text_fraction(contract.multiplier_text)
        fee = money(ticks * lots * tick * multiplier * self._fee_rate(contract, liquidity))
        order.remaining -= lots
        fill = self.book_fill(
            order.order_id,
            req.symbol,
            req.side,
            ticks,
            lots,
            fee,
            liquidity,
            req.reason,
            contract,
            now_ns,
        )
        self._events.append(fill)
        return fill
