"""Paper broker: a fill model against the recorded market, and an exact paper account.

What it models
--------------
* Latency. An order becomes active `PaperConfig.latency_ms` after it is submitted, on the
  run's clock (`now_ns` arguments; nothing here reads a clock). Before that it cannot
  fill, whatever the market does.
* Market orders take liquidity. On the first book update after the latency has passed, a
  market order walks the opposite side of the level-2 book from the best level, taking
  each level's size at that level's price (so a large order pays slippage). What the book
  cannot fill is cancelled (immediate-or-cancel) and journaled. When the book is out of
  sync it uses the top of book (best bid/ask and their sizes) as a single level. With no
  price at all the order waits: it is never filled at a made-up price.
* Limit orders. On activation a limit that is marketable (a buy at or above the best ask,
  a sell at or below the best bid) takes liquidity like a market order, but only at
  levels within its limit, as taker; the rest rests. A resting limit fills, as maker, only
  when the public tape prints a trade *through* its price (a buy at P fills when a trade
  prints strictly below P), at P, up to the traded size; the rest keeps resting.
* Sizes are whole lots: a book level or a trade of 2.7 lots offers 2 (in multiples of the
  lot size).
* Reduce-only orders are refused when they would open, increase or flip a position,
  clamped to the position when they fill, and cancelled once there is nothing left for
  them to reduce (so a stale take-profit cannot act on a later position).
* A fill through zero (long 3, sell 5) closes the position, then opens the other way with
  the rest; its fee is split pro rata.
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

Money is exact
--------------
Orders are integer lots at integer ticks (price = ticks x tick size). A market-data float
price becomes ticks with `round(price / tick_size)` before it touches money. Tick size,
multiplier and fee rates are taken from their decimal text and carried as `Fraction`s, so
notional, fees, PnL and funding are computed exactly and rounded once, to 8 decimal places
(ROUND_HALF_EVEN), when booked as `Decimal`. A position's cost basis is kept as an exact
fraction (average-cost method), so partial closes never accumulate rounding;
`Position.entry_price` shows it to at least 12 decimal places (exact when it fits).
Rounding never depends on the thread's `decimal` context; the running sums (cash, equity)
are Decimal additions of 8-place amounts, exact within the context's 28 digits.

Synchronous, no I/O, no clock: the same calls give the same fills, journal and digest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING

from tradebot.config import PaperConfig
from tradebot.journal import Journal
from tradebot.kucoin.events import Contract, Side

if TYPE_CHECKING:
    from tradebot.market.state import SymbolState

__all__ = [
    "INVERSE_NOT_SUPPORTED",
    "MAKER",
    "TAKER",
    "Fill",
    "OrderRequest",
    "OrderType",
    "PaperBroker",
    "Position",
]

INVERSE_NOT_SUPPORTED = "inverse contracts are not supported by the paper broker"
TAKER = "taker"
MAKER = "maker"

_NS_PER_MS = 1_000_000
_MONEY_PLACES = 8
_MIN_PRICE_PLACES = 12
_LOT_EPSILON = 1e-9  # book sizes are float lots; 2.9999999999 is 3 lots
_ZERO = Decimal(0)


class OrderType(StrEnum):
    """MARKET takes liquidity at once (IOC); LIMIT takes up to its price, then rests."""

    MARKET = "market"
    LIMIT = "limit"


_ORDER_TYPES = frozenset(OrderType)


@dataclass(slots=True)
class OrderRequest:
    """An order the engine wants: integer `lots`, and for a LIMIT an integer `limit_ticks`.

    `reason` says why ("entry", "take_profit", "stop_loss", "time_stop", "reversal",
    "delisting", ...); it is journaled with the order and with the position close.
    """

    symbol: str
    side: Side
    lots: int
    type: OrderType
    reason: str
    limit_ticks: int | None = None
    reduce_only: bool = False


@dataclass(slots=True)
class Fill:
    """One execution at one price level: `price` is an exact multiple of the tick size."""

    order_id: int
    symbol: str
    side: Side
    lots: int
    price: Decimal
    fee: Decimal
    liquidity: str  # TAKER or MAKER
    ts_ns: int


@dataclass(slots=True)
class Position:
    """An open position. `entry_price` is the volume-weighted entry (average cost).

    `realized_pnl` is the gross PnL of the lots already closed; `fees` and `funding` are
    this position's share (funding > 0 was received). Net PnL = realized - fees + funding.
    """

    symbol: str
    direction: int  # +1 long, -1 short
    lots: int
    entry_price: Decimal
    opened_ns: int
    realized_pnl: Decimal
    fees: Decimal
    funding: Decimal


# --- exact arithmetic helpers ------------------------------------------------------------


@lru_cache(maxsize=1024)
def _text_fraction(text: str) -> Fraction:
    """The exact value of a decimal text ("0.1" is 1/10)."""
    return Fraction(Decimal(text))


@lru_cache(maxsize=1024)
def _text_places(text: str) -> int:
    """Decimal places of a decimal text ("0.25" -> 2, "5" -> 0)."""
    exponent = Decimal(text).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


@lru_cache(maxsize=1024)
def _float_fraction(value: float) -> Fraction:
    """A float rate as the decimal it was written as (0.0006 is 6/10000, not binary noise)."""
    return Fraction(Decimal(repr(value)))


def _to_decimal(value: Fraction, places: int) -> Decimal:
    """`value` rounded half-even to `places` decimals, as a Decimal without trailing zeros.

    Built from an integer and an exponent, so it is exact and independent of the decimal
    context.
    """
    return _ratio_to_decimal(value.numerator, value.denominator, places)


def _ratio_to_decimal(num: int, den: int, places: int) -> Decimal:
    """`num / den` (den > 0) rounded half-even to `places` decimals, as `_to_decimal` does.

    Integer arithmetic only: the same rounding as `round(Fraction(num, den) * 10**places)`
    without building Fractions (marking positions to market runs on every entry attempt).
    """
    digits, rest = divmod(num * 10**places, den)
    twice = rest * 2
    if twice > den or (twice == den and digits & 1):
        digits += 1
    if digits == 0:
        return _ZERO
    exponent = -places
    while exponent < 0 and digits % 10 == 0:
        digits //= 10
        exponent += 1
    return Decimal(f"{digits}e{exponent}")


def _money(value: Fraction) -> Decimal:
    return _to_decimal(value, _MONEY_PLACES)


# No contract trades above this; bounding prices keeps price / tick_size finite (the
# protocol refuses tick sizes below 1e-12), so converting to ticks cannot overflow.
_MAX_PRICE = 1e15


def _usable(price: float) -> bool:
    return 0.0 < price < _MAX_PRICE


def _side_name(side: int) -> str:
    return "buy" if side == Side.BUY else "sell"


# --- internal records ---------------------------------------------------------------------


@dataclass(slots=True)
class _Order:
    order_id: int
    req: OrderRequest
    active_ns: int
    remaining: int
    resting: bool = False  # a LIMIT that was checked on activation and now rests


@dataclass(slots=True)
class _Basis:
    """The exact bookkeeping behind one open Position."""

    tick: Fraction  # tick size
    tick_float: float  # tick size as float, for converting market-data prices to ticks
    unit: Fraction  # tick size x multiplier: money per tick per lot
    price_places: int  # decimals shown for average prices
    cost: Fraction  # sum of ticks x lots of the open lots (average cost)
    exit_cost: Fraction  # sum of ticks x lots of the lots closed so far
    exit_lots: int  # lots closed so far


@dataclass(slots=True)
class _Level:
    ticks: int
    lots: int  # still available to us in this update


class PaperBroker:
    """A simulated exchange account: orders, fills, positions, cash (see module docstring)."""

    def __init__(self, cfg: PaperConfig, journal: Journal) -> None:
        self.cfg = cfg
        self.journal = journal
        self.starting_equity = Decimal(repr(cfg.starting_equity_usdt))
        self.cash = self.starting_equity
        self.positions: dict[str, Position] = {}
        # counters for the report
        self.fills_count = 0
        self.orders_count = 0  # accepted orders
        self.rejects = 0
        self.last_reject: str | None = None
        self.fees_paid = _ZERO
        self.realized_pnl = _ZERO  # gross trading PnL booked (before fees and funding)
        self.funding = _ZERO  # net funding (> 0 received)
        self.positions_opened = 0
        self.positions_closed = 0
        self.wins = 0
        self.closed_pnls: list[Decimal] = []
        self._latency_ns = cfg.latency_ms * _NS_PER_MS
        self._next_id = 0
        self._orders: dict[int, _Order] = {}
        self._by_symbol: dict[str, dict[int, _Order]] = {}
        # Read-only view for callers' fast "does this symbol have orders?" checks.
        self.orders_by_symbol: Mapping[str, object] = self._by_symbol
        self._basis: dict[str, _Basis] = {}
        self._marks: dict[str, float] = {}
        self._mark_version = 0  # bumped by marks of held symbols and position changes
        self._equity_key: tuple[Decimal, int] | None = None
        self._equity_value: Decimal | None = None

    # --- account --------------------------------------------------------------------------

    def equity(self, marks: Mapping[str, float] | None = None) -> Decimal:
        """Cash plus unrealized PnL, each position marked at `marks[symbol]` when given and
        usable, else at its last known mark (`mark`), else at its entry price."""
        if marks is None:
            # Cached: equity is asked for on every entry attempt and tick, and marking
            # positions is exact-fraction arithmetic. Any fill, funding payment or mark of
            # a held symbol clears the cache.
            key = (self.cash, self._mark_version)
            if self._equity_key == key and self._equity_value is not None:
                return self._equity_value
        total = self.cash
        for symbol, pos in self.positions.items():
            override = marks.get(symbol) if marks is not None else None
            total += self._unrealized(pos, override)
        if marks is None:
            self._equity_key = (self.cash, self._mark_version)
            self._equity_value = total
        return total

    def unrealized_pnl(self) -> Decimal:
        """Unrealized PnL of all open positions at their last known marks."""
        return sum((self._unrealized(pos, None) for pos in self.positions.values()), _ZERO)

    def mark(self, symbol: str, mark_price: float) -> None:
        """Remember `mark_price` for `symbol` (ignored unless positive and finite)."""
        if _usable(mark_price):
            self._marks[symbol] = mark_price
            if symbol in self.positions:
                self._mark_version += 1

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
        if pos is None or not _usable(price) or contract.symbol != symbol:
            return False
        self.cancel_all(symbol, now_ns)
        ticks = round(price / contract.tick_size)
        if ticks <= 0:
            return False
        side = Side.SELL if pos.direction > 0 else Side.BUY
        fill = Fill(
            0, symbol, side, pos.lots, self._price(ticks, contract), _ZERO, "settlement", now_ns
        )
        self.journal.record(
            now_ns, "settlement", symbol, side=_side_name(side), lots=pos.lots, price=fill.price
        )
        self._book(fill, ticks, contract, reason, now_ns)
        return True

    @property
    def funding_paid(self) -> Decimal:
        """Net funding paid by the account (> 0 paid out); the opposite of `funding`."""
        return -self.funding

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
                side=_side_name(req.side),
                type=str(req.type),
                lots=req.lots,
                order_reason=req.reason,
                reason=why,
            )
            return None
        self._next_id += 1
        order_id = self._next_id
        req = replace(req)  # our own copy: the caller may reuse its request object
        order = _Order(order_id, req, now_ns + self._latency_ns, req.lots)
        self._orders[order_id] = order
        self._by_symbol.setdefault(req.symbol, {})[order_id] = order
        self.orders_count += 1
        limit_price = (
            self._price(req.limit_ticks, contract)
            if req.type == OrderType.LIMIT and req.limit_ticks is not None
            else None
        )
        self.journal.record(
            now_ns,
            "order",
            req.symbol,
            order_id=order_id,
            side=_side_name(req.side),
            type=str(req.type),
            lots=req.lots,
            limit_price=limit_price,
            reduce_only=req.reduce_only,
            reason=req.reason,
        )
        return order_id

    def cancel(self, order_id: int, now_ns: int) -> bool:
        """Cancel an open order (journal "cancel"); False when it is not open."""
        order = self._orders.get(order_id)
        if order is None:
            return False
        self._drop(order, now_ns, "requested")
        return True

    def cancel_all(self, symbol: str, now_ns: int) -> int:
        """Cancel every open order of `symbol`; return how many were cancelled."""
        orders = self._by_symbol.get(symbol)
        if not orders:
            return 0
        victims = list(orders.values())
        for order in victims:
            self._drop(order, now_ns, "requested")
        return len(victims)

    # --- market events ----------------------------------------------------------------------

    def on_book(self, st: SymbolState, contract: Contract, now_ns: int) -> list[Fill]:
        """Execute the symbol's active orders against the current book (see module docstring)."""
        orders = self._by_symbol.get(st.symbol)
        if not orders:
            return []
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
                    self._remove(order)
            else:
                order.resting = True
                self._walk(order, levels, req.limit_ticks, contract, now_ns, fills)
                if order.remaining == 0:
                    self._remove(order)
                elif req.reduce_only and self._fillable(order) == 0:
                    self._drop(order, now_ns, "reduce_only")
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
        if not orders or not _usable(price) or not (size > 0.0 and math.isfinite(size)):
            return []
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
        available = int(size + _LOT_EPSILON) // contract.lot_size * contract.lot_size
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
                self._remove(order)
        if fills:
            self._sweep_reduce_only(symbol, now_ns)
        return fills

    def on_funding(
        self, symbol: str, funding_rate: float, mark_price: float, now_ns: int
    ) -> Decimal:
        """Settle funding on the open position of `symbol` (journal "funding").

        payment = -direction x lots x multiplier x mark x rate: longs pay a positive rate,
        shorts receive it. The mark is converted to ticks; an unusable mark falls back to
        the last known mark, then the entry price. Returns the payment (0 when flat).
        """
        pos = self.positions.get(symbol)
        if pos is None or not math.isfinite(funding_rate):
            return _ZERO
        basis = self._basis[symbol]
        mark_ticks = self._mark_ticks(pos, basis, mark_price)
        rate = _float_fraction(funding_rate)
        payment = _money(-pos.direction * pos.lots * mark_ticks * basis.unit * rate)
        pos.funding += payment
        self.cash += payment
        self.funding += payment
        self.journal.record(
            now_ns,
            "funding",
            symbol,
            rate=funding_rate,
            mark_price=_to_decimal(mark_ticks * basis.tick, basis.price_places),
            direction=pos.direction,
            lots=pos.lots,
            payment=payment,
        )
        return payment

    # --- internals: orders ---------------------------------------------------------------------

    def _validate(self, req: OrderRequest, contract: Contract) -> str | None:
        if contract.is_inverse:
            return INVERSE_NOT_SUPPORTED
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
            if lots > pos.lots:
                return f"reduce_only order for {lots} lots would flip a {pos.lots}-lot position"
        return None

    def _remove(self, order: _Order) -> None:
        del self._orders[order.order_id]
        orders = self._by_symbol[order.req.symbol]
        del orders[order.order_id]
        if not orders:
            del self._by_symbol[order.req.symbol]

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
        elif side == Side.SELL:
            raw = [(st.ask, st.ask_size)]
        else:
            raw = [(st.bid, st.bid_size)]
        tick, lot = contract.tick_size, contract.lot_size
        out: list[_Level] = []
        for price, size in raw:
            if not _usable(price):
                continue
            ticks = round(price / tick)
            if ticks <= 0:
                continue
            lots = int(size + _LOT_EPSILON) // lot * lot if size > 0 and math.isfinite(size) else 0
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
        for level in levels:
            if limit_ticks is not None and side * (level.ticks - limit_ticks) > 0:
                break  # beyond the limit price
            fillable = self._fillable(order)
            if fillable == 0:
                break
            take = min(fillable, level.lots)
            if take <= 0:
                continue
            level.lots -= take
            fills.append(self._execute(order, contract, level.ticks, take, TAKER, now_ns))

    # --- internals: money -------------------------------------------------------------------------

    @staticmethod
    def _price(ticks: int, contract: Contract) -> Decimal:
        """ticks x tick size, exactly."""
        text = contract.tick_size_text
        return _to_decimal(ticks * _text_fraction(text), _text_places(text))

    def _fee_rate(self, contract: Contract, liquidity: str) -> Fraction:
        cfg = self.cfg
        if liquidity == TAKER:
            own = contract.taker_fee_rate if cfg.use_contract_fees else None
            rate = own if own is not None else cfg.taker_fee_rate
        else:
            own = contract.maker_fee_rate if cfg.use_contract_fees else None
            rate = own if own is not None else cfg.maker_fee_rate
        return _float_fraction(rate)

    def _execute(
        self, order: _Order, contract: Contract, ticks: int, lots: int, liquidity: str, now_ns: int
    ) -> Fill:
        """Book one fill: fee, cash, journal, then the position it changes."""
        req = order.req
        tick = _text_fraction(contract.tick_size_text)
        multiplier = _text_fraction(contract.multiplier_text)
        fee = _money(ticks * lots * tick * multiplier * self._fee_rate(contract, liquidity))
        price = self._price(ticks, contract)
        order.remaining -= lots
        fill = Fill(order.order_id, req.symbol, req.side, lots, price, fee, liquidity, now_ns)
        self.fills_count += 1
        self.fees_paid += fee
        self.cash -= fee
        self.journal.record(
            now_ns,
            "fill",
            req.symbol,
            order_id=order.order_id,
            side=_side_name(req.side),
            lots=lots,
            price=price,
            fee=fee,
            liquidity=liquidity,
        )
        self._book(fill, ticks, contract, req.reason, now_ns)
        return fill

    def _book(
        self, fill: Fill, ticks: int | Fraction, contract: Contract, reason: str, now_ns: int
    ) -> None:
        """Apply a fill to the position: reduce/close first, then open/increase with the rest
        (a fill through zero closes, then opens the other way). The fee is split pro rata."""
        self._mark_version += 1  # positions change: the cached equity is out of date
        symbol, side = fill.symbol, int(fill.side)
        remaining, fee_left = fill.lots, fill.fee
        pos = self.positions.get(symbol)
        held = self._basis.get(symbol)
        if held is not None:
            tick_now = _text_fraction(contract.tick_size_text)
            if tick_now != held.tick:
                # The exchange changed the tick size while the position was open: express
                # this fill in the position's own ticks so cost and exit share one unit.
                ticks = ticks * tick_now / held.tick
        if pos is not None and pos.direction != side:
            basis = self._basis[symbol]
            closing = min(remaining, pos.lots)
            close_fee = (
                fee_left
                if closing == remaining
                else _money(Fraction(fee_left) * closing / remaining)
            )
            fee_left -= close_fee
            remaining -= closing
            average = basis.cost / pos.lots
            pnl = _money((ticks - average) * closing * basis.unit * pos.direction)
            basis.cost -= average * closing
            basis.exit_cost += ticks * closing
            basis.exit_lots += closing
            pos.lots -= closing
            pos.realized_pnl += pnl
            pos.fees += close_fee
            self.realized_pnl += pnl
            self.cash += pnl
            if pos.lots == 0:
                self._close(pos, basis, reason, now_ns)
                pos = None
            else:
                self.journal.record(
                    now_ns, "position_change", symbol, lots=pos.lots, entry_price=pos.entry_price
                )
        if remaining == 0:
            return
        if pos is None:
            tick = _text_fraction(contract.tick_size_text)
            basis = _Basis(
                tick=tick,
                tick_float=contract.tick_size,
                unit=tick * _text_fraction(contract.multiplier_text),
                price_places=max(_MIN_PRICE_PLACES, _text_places(contract.tick_size_text) + 8),
                cost=Fraction(ticks * remaining),
                exit_cost=Fraction(0),
                exit_lots=0,
            )
            self._basis[symbol] = basis
            pos = Position(symbol, side, remaining, fill.price, now_ns, _ZERO, fee_left, _ZERO)
            self.positions[symbol] = pos
            self.positions_opened += 1
            self.journal.record(
                now_ns,
                "position_open",
                symbol,
                direction=side,
                lots=remaining,
                entry_price=pos.entry_price,
            )
        else:
            basis = self._basis[symbol]
            basis.cost += ticks * remaining
            pos.lots += remaining
            pos.entry_price = _to_decimal(basis.cost * basis.tick / pos.lots, basis.price_places)
            pos.fees += fee_left
            self.journal.record(
                now_ns, "position_change", symbol, lots=pos.lots, entry_price=pos.entry_price
            )

    def _close(self, pos: Position, basis: _Basis, reason: str, now_ns: int) -> None:
        net = pos.realized_pnl - pos.fees + pos.funding
        exit_price = _to_decimal(basis.exit_cost * basis.tick / basis.exit_lots, basis.price_places)
        self.journal.record(
            now_ns,
            "position_close",
            pos.symbol,
            direction=pos.direction,
            entry_price=pos.entry_price,
            exit_price=exit_price,
            lots=basis.exit_lots,
            realized_pnl=pos.realized_pnl,
            fees=pos.fees,
            funding=pos.funding,
            net_pnl=net,
            reason=reason,
            held_s=Decimal(f"{now_ns - pos.opened_ns}e-9"),
        )
        del self.positions[pos.symbol]
        del self._basis[pos.symbol]
        self.positions_closed += 1
        self.closed_pnls.append(net)
        if net > 0:
            self.wins += 1

    def _known_mark_ticks(self, pos: Position, basis: _Basis, mark: float | None) -> int | None:
        """`mark` in ticks if usable, else the last known mark's; None without either."""
        for candidate in (mark, self._marks.get(pos.symbol)):
            if candidate is not None and _usable(candidate):
                return round(candidate / basis.tick_float)
        return None

    def _mark_ticks(self, pos: Position, basis: _Basis, mark: float | None) -> Fraction:
        """The mark in ticks: `mark` if usable, else the last known mark, else the entry."""
        ticks = self._known_mark_ticks(pos, basis, mark)
        return Fraction(ticks) if ticks is not None else basis.cost / pos.lots

    def _unrealized(self, pos: Position, mark: float | None) -> Decimal:
        """(mark ticks x lots - cost) x unit x direction, in money.

        On integer numerators and denominators: the same value and rounding as the Fraction
        expression, several times cheaper. Without a usable mark the position is marked at
        its own average cost, which is exactly zero.
        """
        basis = self._basis[pos.symbol]
        mark_ticks = self._known_mark_ticks(pos, basis, mark)
        if mark_ticks is None:
            return _ZERO
        cost = basis.cost
        unit = basis.unit
        cost_den = cost.denominator
        num = (mark_ticks * pos.lots * cost_den - cost.numerator) * unit.numerator
        return _ratio_to_decimal(num * pos.direction, cost_den * unit.denominator, _MONEY_PLACES)
