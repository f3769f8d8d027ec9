"""The broker seam: the trader uses only the `Broker` protocol and learns from events.

A broker that exposes nothing but the protocol trades exactly like the paper broker; a
broker whose answers arrive later (as a live one's do over the network) plugs in without
changing the trader; the paper broker reports every order's fate as events, in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tests.helpers import TRADING, Scenario, contract_value
from tradebot.config import PaperConfig
from tradebot.engine import Engine
from tradebot.execution.orders import (
    AccountStats,
    Broker,
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
from tradebot.execution.paper import PaperBroker
from tradebot.journal import Journal
from tradebot.kucoin.events import Contract, Side
from tradebot.market.state import SymbolState

A = "AAAUSDTM"
B = "BBBUSDTM"


class StrictBroker:
    """Only the `Broker` protocol, delegated to a paper broker: any other attribute the
    trader or engine reached for would raise AttributeError."""

    __slots__ = ("_inner", "held")

    def __init__(self, inner: PaperBroker) -> None:
        self._inner = inner
        self.held: list[BrokerEvent] | None = None  # not None: events are held back

    @property
    def positions(self) -> Mapping[str, Position]:
        return self._inner.positions

    @property
    def next_arrival_ns(self) -> int:
        return self._inner.next_arrival_ns

    def submit(self, req: OrderRequest, contract: Contract, now_ns: int) -> int | None:
        return self._inner.submit(req, contract, now_ns)

    def cancel(self, order_id: int, now_ns: int, why: str = "requested") -> bool:
        return self._inner.cancel(order_id, now_ns, why)

    def cancel_all(self, symbol: str, now_ns: int, why: str = "requested") -> int:
        return self._inner.cancel_all(symbol, now_ns, why)

    def open_orders(self, symbol: str | None = None) -> list[int]:
        return self._inner.open_orders(symbol)

    def equity(self, marks: Mapping[str, float] | None = None) -> Decimal:
        return self._inner.equity(marks)

    def stats(self) -> AccountStats:
        return self._inner.stats()

    def take_events(self) -> list[BrokerEvent]:
        events = self._inner.take_events()
        if self.held is None:
            return events
        self.held.extend(events)  # "on the wire": the trader hears of them later
        return []

    def take_requests(self) -> list[PlaceOrder | CancelOrder]:
        return self._inner.take_requests()

    def on_market(
        self, event: Any, st: SymbolState, contract: Contract | None, now_ns: int
    ) -> bool:
        return self._inner.on_market(event, st, contract, now_ns)

    def on_due(self, now_ns: int) -> bool:
        return self._inner.on_due(now_ns)

    def on_clock(self, now_ns: int) -> None:
        self._inner.on_clock(now_ns)

    def settle(
        self, symbol: str, contract: Contract, price: float, reason: str, now_ns: int
    ) -> bool:
        return self._inner.settle(symbol, contract, price, reason, now_ns)

    def release(self) -> None:
        """Deliver the held events: the trader may take them now."""
        assert self.held is not None
        self._inner._events[:0] = self.held
        self.held = None


def _scenario(strict: bool) -> tuple[Scenario, StrictBroker | None]:
    sc = Scenario(TRADING)
    wrapper: StrictBroker | None = None
    if strict:
        wrapper = StrictBroker(PaperBroker(sc.config.paper, sc.journal, None))
        sc.engine = Engine(sc.config, journal=sc.journal, perf=lambda: 0, broker=wrapper)
        wrapper._inner.market = sc.engine.market
    return sc, wrapper


def _session(sc: Scenario) -> None:
    """Entries on two symbols, take-profits, a stop, prints, marks, a gap, a disconnect."""
    sc.open_market([A, B])
    sc.touch(50, B)
    sc.buy_pressure(100, A)
    sc.touch(151, A)
    sc.buy_pressure(300, B)
    sc.touch(351, B)
    sc.mark(400, A, 100.2)
    sc.trade(500, A, "buy", 101.5, 20)  # through A's take-profit
    sc.l2(600, B, 99.0, "buy", 0.0)
    sc.ticker(700, B, 98.0, 98.02)  # B's stop
    sc.l2(800, A, 99.5, "sell", 3.0, skip=2)  # a gap
    sc.snapshot(900, A)
    sc.conn(1_000, "close")
    sc.snapshot(1_100, A)
    sc.snapshot(1_100, B)
    sc.buy_pressure(2_000, A)
    sc.touch(2_100, A)
    sc.finish(5_000)


def test_a_broker_with_only_the_protocol_trades_exactly_like_the_paper_broker() -> None:
    plain, _ = _scenario(strict=False)
    strict, wrapper = _scenario(strict=True)
    _session(plain)
    _session(strict)
    assert wrapper is not None and strict.engine.trader is not None
    assert strict.engine.trader.broker is wrapper
    assert strict.lines() == plain.lines()
    assert strict.report == plain.report
    kinds = plain.kinds()
    assert "fill" in kinds and "position_close" in kinds  # the comparison covered trading


def test_answers_that_arrive_later_are_acted_on_when_they_arrive() -> None:
    sc, wrapper = _scenario(strict=True)
    assert wrapper is not None and sc.engine.trader is not None
    trader = sc.engine.trader
    sc.open_market([A])
    wrapper.held = []
    sc.buy_pressure(100, A)  # the entry is sent at 101 ms
    sc.touch(151, A)  # it fills at the paper exchange (arrival at 151 ms) ...
    assert A in wrapper.positions
    # ... but the trader has not heard: the entry is still working, no take-profit yet
    assert trader.has_pending(A)
    assert [o["reason"] for o in sc.details("order", A)] == ["entry"]
    sc.touch(200, A)
    assert trader.has_pending(A)
    wrapper.release()
    trader.handle_broker_events()
    orders = sc.details("order", A)
    assert [o["reason"] for o in orders] == ["entry", "take_profit"]
    assert A not in trader.pending_entry_symbols()
    sc.touch(260, A)  # the take-profit reaches the exchange and rests
    assert not trader.has_pending(A)
    assert trader.is_working(A, int(orders[1]["order_id"]))


# --- the paper broker's events -------------------------------------------------------------


def _paper() -> tuple[PaperBroker, Contract, SymbolState]:
    broker = PaperBroker(PaperConfig(latency_ms=0, use_contract_fees=False), Journal())
    c = contract_value(symbol="EVTUSDTM", multiplier=1.0, multiplier_text="1")
    st = SymbolState(c.symbol)
    assert st.book.apply_snapshot(1, [(99.0, 2.0)], [(100.0, 2.0), (100.1, 1.0)])
    return broker, c, st


def _shape(events: list[BrokerEvent]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for ev in events:
        if isinstance(ev, Fill):
            out.append(("fill", ev.order_id, ev.lots, ev.price))
        else:
            assert isinstance(ev, OrderUpdate)
            out.append((str(ev.status), ev.order_id, ev.remaining, ev.why))
    return out


def test_the_paper_broker_reports_each_order_as_events_in_order() -> None:
    broker, c, st = _paper()
    market = broker.submit(OrderRequest(c.symbol, Side.BUY, 5, OrderType.MARKET, "entry"), c, 0)
    assert broker.take_events() == []  # accepted: nothing happened yet
    broker.on_book(st, c, 0)
    assert _shape(broker.take_events()) == [
        ("fill", market, 2, Decimal("100.0")),
        ("fill", market, 1, Decimal("100.1")),
        ("cancelled", market, 2, "ioc_unfilled"),
    ]
    tp = broker.submit(
        OrderRequest(c.symbol, Side.SELL, 3, OrderType.LIMIT, "take_profit", 1010, True), c, 0
    )
    broker.on_book(st, c, 1)
    assert _shape(broker.take_events()) == [("resting", tp, 3, "")]
    broker.on_trade(c.symbol, 101.5, 10.0, Side.BUY, c, 2)
    events = broker.take_events()
    assert _shape(events) == [("fill", tp, 3, Decimal("101.0")), ("filled", tp, 0, "")]
    assert isinstance(events[-1], OrderUpdate) and events[-1].done
    assert broker.take_events() == []  # taken once
    assert broker.positions == {}
    stats = broker.stats()
    assert (stats.orders, stats.fills, stats.positions_closed, stats.wins) == (2, 3, 1, 1)
    assert stats.cash == broker.cash and broker.take_requests() == []


def test_a_cancel_and_an_expiry_are_order_updates() -> None:
    broker, c, _st = _paper()
    first = broker.submit(OrderRequest(c.symbol, Side.BUY, 1, OrderType.MARKET, "entry"), c, 0)
    second = broker.submit(OrderRequest(c.symbol, Side.BUY, 1, OrderType.MARKET, "entry"), c, 0)
    assert first is not None and second is not None
    assert broker.cancel(first, 1, "mine")
    broker.on_clock(10**12)  # long past order_timeout_ms without a price
    updates = broker.take_events()
    assert _shape(updates) == [
        ("cancelled", first, 1, "mine"),
        ("cancelled", second, 1, "expired"),
    ]
    assert all(isinstance(u, OrderUpdate) and u.status is OrderStatus.CANCELLED for u in updates)


def test_the_engine_builds_a_paper_broker_on_its_market() -> None:
    engine = Engine()
    assert engine.trader is not None
    broker: Broker = engine.trader.broker
    assert isinstance(broker, PaperBroker) and broker.market is engine.market
    assert Engine(trading=False).trader is None
