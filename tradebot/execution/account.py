"""The account: cash, positions, realized and unrealized PnL, fees and funding, exactly.

Shared by every broker: a broker decides *that* something filled (at which ticks, for
which fee); the account books it. Positions use the average-cost method with the cost
basis kept as an exact fraction, so partial closes never accumulate rounding;
`Position.entry_price` shows it to at least 12 decimal places (exact when it fits). A
fill through zero (long 3, sell 5) closes the position, then opens the other way with
the rest; its fee is split pro rata. The running sums (cash, equity) are Decimal
additions of 8-place amounts; the engine runs them in its own decimal context.

A funding rate beyond `tradebot.market.contracts.MAX_FUNDING_RATE` per interval (or not
finite) is a data error: nothing is booked, the refusal is journaled ("funding_refused")
and counted in `refused` (`funding_rate_implausible`), which the engine reports with the
other refused payloads.

Synchronous, no I/O, no clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from tradebot.execution.money import (
    MIN_PRICE_PLACES,
    MONEY_PLACES,
    ZERO,
    float_fraction,
    money,
    price_of,
    ratio_to_decimal,
    side_name,
    text_fraction,
    text_places,
    to_decimal,
    usable,
)
from tradebot.execution.orders import Fill, Position
from tradebot.journal import Journal
from tradebot.kucoin.events import Contract, Side
from tradebot.market.contracts import funding_rate_plausible

__all__ = ["FUNDING_RATE_IMPLAUSIBLE", "Account"]

FUNDING_RATE_IMPLAUSIBLE = "funding_rate_implausible"


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


class Account:
    """Cash and positions, booked exactly; counters for the report."""

    def __init__(self, starting_equity: Decimal, journal: Journal) -> None:
        self.journal = journal
        self.starting_equity = starting_equity
        self.cash = starting_equity
        self.positions: dict[str, Position] = {}
        # counters for the report
        self.fills_count = 0
        self.fees_paid = ZERO
        self.realized_pnl = ZERO  # gross trading PnL booked (before fees and funding)
        self.funding = ZERO  # net funding (> 0 received)
        self.positions_opened = 0
        self.positions_closed = 0
        self.wins = 0
        self.closed_pnls: list[Decimal] = []
        self.refused: Counter[str] = Counter()  # implausible inputs not booked, by reason
        self._basis: dict[str, _Basis] = {}
        self._marks: dict[str, float] = {}
        # Fallbacks for a symbol without a mark price: its last trade, then its mid.
        self._last: dict[str, float] = {}
        self._mids: dict[str, float] = {}
        self._mark_version = 0  # bumped by marks of held symbols and position changes
        self._equity_key: tuple[Decimal, int] | None = None
        self._equity_value: Decimal | None = None

    def equity(self, marks: Mapping[str, float] | None = None) -> Decimal:
        """Cash plus unrealized PnL, each position marked at `marks[symbol]` when given and
        usable, else at its last known mark (`mark`), last trade (`last_trade`) or mid (`mid`),
        else at its entry price."""
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
        """Unrealized PnL of all open positions at their last known marks (see `equity`)."""
        return sum((self._unrealized(pos, None) for pos in self.positions.values()), ZERO)

    def mark(self, symbol: str, mark_price: float) -> None:
        """Remember `mark_price` for `symbol` (ignored unless positive and finite)."""
        if usable(mark_price):
            self._marks[symbol] = mark_price
            if symbol in self.positions:
                self._mark_version += 1

    def last_trade(self, symbol: str, price: float) -> None:
        """Remember `symbol`'s last trade price: its mark while no mark price is known."""
        if usable(price):
            self._last[symbol] = price
            if symbol in self.positions and symbol not in self._marks:
                self._mark_version += 1

    def mid(self, symbol: str, price: float) -> None:
        """Remember `symbol`'s mid price: its mark without a mark price or a trade."""
        if usable(price):
            self._mids[symbol] = price
            if symbol in self.positions and symbol not in self._marks:
                self._mark_version += 1

    @property
    def funding_paid(self) -> Decimal:
        """Net funding paid by the account (> 0 paid out); the opposite of `funding`."""
        return -self.funding

    def book_fill(
        self,
        order_id: int,
        symbol: str,
        side: Side,
        ticks: int,
        lots: int,
        fee: Decimal,
        liquidity: str,
        reason: str,
        contract: Contract,
        now_ns: int,
    ) -> Fill:
        """Book one fill: fee, cash, journal "fill", then the position it changes."""
        price = price_of(ticks, contract)
        fill = Fill(order_id, symbol, side, lots, price, fee, liquidity, now_ns)
        self.fills_count += 1
        self.fees_paid += fee
        self.cash -= fee
        self.journal.record(
            now_ns,
            "fill",
            symbol,
            order_id=order_id,
            side=side_name(side),
            lots=lots,
            price=price,
            fee=fee,
            liquidity=liquidity,
        )
        self._book(fill, ticks, contract, reason, now_ns)
        return fill

    def on_funding(
        self, symbol: str, funding_rate: float, mark_price: float, now_ns: int
    ) -> Decimal:
        """Settle funding on the open position of `symbol` (journal "funding").

        payment = -direction x lots x multiplier x mark x rate: longs pay a positive rate,
        shorts receive it. The mark is converted to ticks; an unusable mark falls back to
        the last known mark, then the entry price. Returns the payment (0 when flat, and
        when the rate is implausible: refused, see the module docstring).
        """
        pos = self.positions.get(symbol)
        if pos is None:
            return ZERO
        if not funding_rate_plausible(funding_rate):
            self.refused[FUNDING_RATE_IMPLAUSIBLE] += 1
            self.journal.record(
                now_ns,
                "funding_refused",
                symbol,
                rate=funding_rate,
                reason=FUNDING_RATE_IMPLAUSIBLE,
            )
            return ZERO
        basis = self._basis[symbol]
        mark_ticks = self._mark_ticks(pos, basis, mark_price)
        rate = float_fraction(funding_rate)
        payment = money(-pos.direction * pos.lots * mark_ticks * basis.unit * rate)
        pos.funding += payment
        self.cash += payment
        self.funding += payment
        self.journal.record(
            now_ns,
            "funding",
            symbol,
            rate=funding_rate,
            mark_price=to_decimal(mark_ticks * basis.tick, basis.price_places),
            direction=pos.direction,
            lots=pos.lots,
            payment=payment,
        )
        return payment

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
            tick_now = text_fraction(contract.tick_size_text)
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
                else money(Fraction(fee_left) * closing / remaining)
            )
            fee_left -= close_fee
            remaining -= closing
            average = basis.cost / pos.lots
            pnl = money((ticks - average) * closing * basis.unit * pos.direction)
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
            tick = text_fraction(contract.tick_size_text)
            basis = _Basis(
                tick=tick,
                tick_float=contract.tick_size,
                unit=tick * text_fraction(contract.multiplier_text),
                price_places=max(MIN_PRICE_PLACES, text_places(contract.tick_size_text) + 8),
                cost=Fraction(ticks * remaining),
                exit_cost=Fraction(0),
                exit_lots=0,
            )
            self._basis[symbol] = basis
            pos = Position(symbol, side, remaining, fill.price, now_ns, ZERO, fee_left, ZERO)
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
            pos.entry_price = to_decimal(basis.cost * basis.tick / pos.lots, basis.price_places)
            pos.fees += fee_left
            self.journal.record(
                now_ns, "position_change", symbol, lots=pos.lots, entry_price=pos.entry_price
            )

    def _close(self, pos: Position, basis: _Basis, reason: str, now_ns: int) -> None:
        net = pos.realized_pnl - pos.fees + pos.funding
        exit_price = to_decimal(basis.exit_cost * basis.tick / basis.exit_lots, basis.price_places)
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
        """`mark` in ticks if usable, else the last known mark's, else the last trade's,
        else the mid's; None without any of them."""
        symbol = pos.symbol
        for candidate in (
            mark,
            self._marks.get(symbol),
            self._last.get(symbol),
            self._mids.get(symbol),
        ):
            if candidate is not None and usable(candidate):
                return round(candidate / basis.tick_float)
        return None

    def _mark_ticks(self, pos: Position, basis: _Basis, mark: float | None) -> Fraction:
        """The mark in ticks (see `_known_mark_ticks`), else the entry."""
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
            return ZERO
        cost = basis.cost
        unit = basis.unit
        cost_den = cost.denominator
        num = (mark_ticks * pos.lots * cost_den - cost.numerator) * unit.numerator
        return ratio_to_decimal(num * pos.direction, cost_den * unit.denominator, MONEY_PLACES)
