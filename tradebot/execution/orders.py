"""Order and fill values, and the `Broker` protocol the trader talks to.

The values are what crosses the seam between the decision core and a broker (paper or
live): what the trader asks for (`OrderRequest`), what happened (`Fill`), and what the
account holds (`Position`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from tradebot.kucoin.events import Contract, Side

__all__ = ["MAKER", "TAKER", "Broker", "Fill", "OrderRequest", "OrderType", "Position"]

TAKER = "taker"
MAKER = "maker"


class OrderType(StrEnum):
    """MARKET takes liquidity at once (IOC); LIMIT takes up to its price, then rests."""

    MARKET = "market"
    LIMIT = "limit"


@dataclass(slots=True)
class OrderRequest:
    """An order the engine wants: integer `lots`, and for a LIMIT an integer `limit_ticks`.

    `reason` says why ("entry", "take_profit", "stop_loss", "time_stop", "reversal",
    "delisting", ...); it is journaled with the order and with the position close.
    `max_notional` caps the order's filled notional (lots x multiplier x price, summed
    over its fills): the broker fills only the lots that keep it within the cap, however
    the book moved or however thin it is, and cancels the rest.
    """

    symbol: str
    side: Side
    lots: int
    type: OrderType
    reason: str
    limit_ticks: int | None = None
    reduce_only: bool = False
    max_notional: Decimal | None = None


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


class Broker(Protocol):
    """What the trader needs from a broker, paper or live.

    `submit` answers at once with an order id (accepted for sending) or None (refused
    before sending); what happens to the order later arrives as fills and order updates.
    """

    @property
    def positions(self) -> Mapping[str, Position]:
        """Open positions by symbol."""
        ...

    def submit(self, req: OrderRequest, contract: Contract, now_ns: int) -> int | None:
        """Send `req`; its id, or None when refused."""
        ...

    def cancel(self, order_id: int, now_ns: int, why: str = "requested") -> bool:
        """Cancel one open order; False when it is not open."""
        ...

    def cancel_all(self, symbol: str, now_ns: int, why: str = "requested") -> int:
        """Cancel every open order of `symbol`; how many were cancelled."""
        ...

    def open_orders(self, symbol: str | None = None) -> list[int]:
        """Ids of open orders (of `symbol` when given), ascending."""
        ...

    def equity(self, marks: Mapping[str, float] | None = None) -> Decimal:
        """Cash plus unrealized PnL."""
        ...
