"""Order and fill values, and the `Broker` protocol the trader talks to.

The values are what crosses the seam between the decision core and a broker (paper or
live): what the trader asks for (`OrderRequest`), what happened (`Fill`, `OrderUpdate`),
what the account holds (`Position`, `AccountStats`), and what a broker that talks to an
exchange must send (`PlaceOrder`, `CancelOrder`: the engine's outbox routes them).

A broker answers `submit` at once with an order id; everything that happens to the order
afterwards comes back as events (fills and order updates) that the broker queues and the
trader takes with `take_events`, so a broker whose answers arrive later over the network
plugs in without changing the trader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from tradebot.kucoin.events import Contract, Side

if TYPE_CHECKING:
    from tradebot.market.state import SymbolState

__all__ = [
    "MAKER",
    "TAKER",
    "AccountStats",
    "Broker",
    "BrokerEvent",
    "CancelOrder",
    "Fill",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "PlaceOrder",
    "Position",
]

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


class OrderStatus(StrEnum):
    """Where an order stands, as an `OrderUpdate` reports it."""

    RESTING = "resting"  # a LIMIT placed on the book, waiting for the market
    FILLED = "filled"  # done: every lot filled
    CANCELLED = "cancelled"  # done: the rest cancelled (`why` says by whom or what)
    REJECTED = "rejected"  # done: the exchange refused it after it was sent


_DONE = frozenset((OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED))


@dataclass(slots=True, frozen=True)
class OrderUpdate:
    """A change of an order's status; `remaining` is the lots still unfilled."""

    order_id: int
    symbol: str
    status: OrderStatus
    remaining: int
    why: str
    ts_ns: int

    @property
    def done(self) -> bool:
        """True when the order is no longer open (filled, cancelled or rejected)."""
        return self.status in _DONE


BrokerEvent = Fill | OrderUpdate


@dataclass(slots=True, frozen=True)
class PlaceOrder:
    """Outbox: send `request` as our order `order_id` (the client order id)."""

    order_id: int
    request: OrderRequest
    contract: Contract


@dataclass(slots=True, frozen=True)
class CancelOrder:
    """Outbox: cancel our order `order_id` of `symbol`."""

    order_id: int
    symbol: str
    why: str


@dataclass(slots=True, frozen=True)
class AccountStats:
    """A snapshot of the account and its counters, for risk checks and the report.

    `realized_pnl` is the gross trading PnL booked (before fees and funding); `funding` is
    net funding (> 0 received); `refused` counts implausible inputs not booked, by reason.
    """

    starting_equity: Decimal
    cash: Decimal
    orders: int  # accepted orders
    rejects: int  # orders refused
    fills: int
    fees_paid: Decimal
    realized_pnl: Decimal
    funding: Decimal
    positions_opened: int
    positions_closed: int
    wins: int
    refused: Mapping[str, int]


class Broker(Protocol):
    """What the trader needs from a broker, paper or live.

    Orders: `submit` answers at once with an order id (accepted for sending) or None
    (refused before sending); `cancel` and `cancel_all` ask for cancels. What happens to
    an order afterwards (fills, resting, cancelled, rejected) is queued as events, in the
    order it happened, and handed over by `take_events`.

    Market data: the trader passes each market event it acts on (`on_market`), after it
    was folded into the symbol's state. A paper broker fills against it; any broker marks
    its positions with it. `next_arrival_ns` and `on_due` are the broker's timers (the
    paper broker: orders reaching the exchange after their latency), `on_clock` its
    periodic housekeeping. A live broker's `take_requests` hands the engine's outbox the
    orders and cancels to send.
    """

    @property
    def positions(self) -> Mapping[str, Position]:
        """Open positions by symbol."""
        ...

    @property
    def next_arrival_ns(self) -> int:
        """When `on_due` has something to do next (1 << 63: never)."""
        ...

    def submit(self, req: OrderRequest, contract: Contract, now_ns: int) -> int | None:
        """Send `req`; its id, or None when refused."""
        ...

    def cancel(self, order_id: int, now_ns: int, why: str = "requested") -> bool:
        """Cancel one open order; False when it is not open."""
        ...

    def cancel_all(self, symbol: str, now_ns: int, why: str = "requested") -> int:
        """Cancel every open order of `symbol`; how many were asked to cancel."""
        ...

    def open_orders(self, symbol: str | None = None) -> list[int]:
        """Ids of open orders (of `symbol` when given), ascending."""
        ...

    def equity(self, marks: Mapping[str, float] | None = None) -> Decimal:
        """Cash plus unrealized PnL."""
        ...

    def stats(self) -> AccountStats:
        """The account and its counters, now."""
        ...

    def take_events(self) -> list[BrokerEvent]:
        """The fills and order updates since the last call, oldest first."""
        ...

    def take_requests(self) -> list[PlaceOrder | CancelOrder]:
        """Orders and cancels to send to the exchange since the last call, oldest first."""
        ...

    def on_market(
        self, event: Any, st: SymbolState, contract: Contract | None, now_ns: int
    ) -> bool:
        """A market event of `st`'s symbol (quote, trade, mark, funding) with the symbol's
        contract (None when unknown); True when it queued events."""
        ...

    def on_due(self, now_ns: int) -> bool:
        """Handle the next timer due by `now_ns`; False when nothing was due."""
        ...

    def on_clock(self, now_ns: int) -> None:
        """Periodic housekeeping on the engine's tick."""
        ...

    def settle(
        self, symbol: str, contract: Contract, price: float, reason: str, now_ns: int
    ) -> bool:
        """The exchange settles a delisted contract's position at `price`: True when it was
        booked now (a live broker learns of settlement from the exchange: False)."""
        ...
