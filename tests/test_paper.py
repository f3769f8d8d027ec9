"""Tests for tradebot.execution.paper: the fill model and the exact paper account."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.helpers import contract_value
from tradebot.config import PaperConfig
from tradebot.execution.paper import (
    INVERSE_NOT_SUPPORTED,
    MAKER,
    TAKER,
    Fill,
    OrderRequest,
    OrderType,
    PaperBroker,
)
from tradebot.journal import Journal, JournalEntry
from tradebot.kucoin.events import Contract, Side
from tradebot.market.state import SymbolState

SYM = "XBTUSDTM"
T0 = 1_700_000_000_000_000_000
MS = 1_000_000
D = Decimal


def make_contract(**overrides: Any) -> Contract:
    return contract_value(**{"symbol": SYM, "max_order_qty": 1_000, **overrides})


class Rig:
    """A broker with a captured journal, one symbol, one contract."""

    def __init__(self, contract: Contract | None = None, **cfg: Any) -> None:
        params: dict[str, Any] = {
            "starting_equity_usdt": 1_000.0,
            "taker_fee_rate": 0.0006,
            "maker_fee_rate": 0.0002,
            "use_contract_fees": False,
            "latency_ms": 0,
        }
        params.update(cfg)
        self.entries: list[JournalEntry] = []
        self.journal = Journal(sink=self.entries.append)
        self.broker = PaperBroker(PaperConfig(**params), self.journal)
        self.contract = contract or make_contract()
        self.st = SymbolState(self.contract.symbol)

    def quote(self, bid: float, ask: float, bid_size: float = 1e6, ask_size: float = 1e6) -> None:
        self.st.bid, self.st.bid_size, self.st.ask, self.st.ask_size = bid, bid_size, ask, ask_size

    def book(self, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> None:
        assert self.st.book.apply_snapshot(1, bids, asks)

    def order(self, side: Side, lots: int, now: int = T0, **kw: Any) -> int | None:
        kw.setdefault("type", OrderType.MARKET)
        kw.setdefault("reason", "entry")
        req = OrderRequest(symbol=self.contract.symbol, side=side, lots=lots, **kw)
        return self.broker.submit(req, self.contract, now)

    def tick(self, now: int = T0) -> list[Fill]:
        return self.broker.on_book(self.st, self.contract, now)

    def trade(self, price: float, size: float, now: int = T0) -> list[Fill]:
        return self.broker.on_trade(
            self.contract.symbol, price, size, Side.SELL, self.contract, now
        )

    def market(self, side: Side, lots: int, price: float, now: int = T0, **kw: Any) -> list[Fill]:
        """Fill `lots` at exactly `price` (top of book with plenty of size)."""
        self.quote(price, price)
        assert self.order(side, lots, now, **kw) is not None
        fills = self.tick(now)
        assert sum(f.lots for f in fills) == lots
        return fills

    def kinds(self) -> list[str]:
        return [e.kind for e in self.entries]

    def last(self, kind: str) -> dict[str, Any]:
        for entry in reversed(self.entries):
            if entry.kind == kind:
                detail: dict[str, Any] = json.loads(entry.detail)
                return detail
        raise AssertionError(f"no {kind} journaled")


# --- market orders ------------------------------------------------------------------------


def test_market_order_walks_levels_at_each_price() -> None:
    rig = Rig()
    rig.quote(99.9, 100.0, 1.0, 1.0)  # top of book is ignored while the book is in sync
    rig.book([(99.9, 4.0)], [(100.0, 2.0), (100.1, 3.0), (100.3, 5.0)])
    oid = rig.order(Side.BUY, 6)
    fills = rig.tick()
    assert [(f.price, f.lots, f.liquidity) for f in fills] == [
        (D("100.0"), 2, TAKER),
        (D("100.1"), 3, TAKER),
        (D("100.3"), 1, TAKER),
    ]
    assert all(f.order_id == oid and f.side is Side.BUY and f.ts_ns == T0 for f in fills)
    # VWAP = (2 x 100.0 + 3 x 100.1 + 1 x 100.3) / 6 = 600.6 / 6 = 100.1
    pos = rig.broker.positions[SYM]
    assert (pos.direction, pos.lots, pos.entry_price) == (1, 6, D("100.1"))
    # fee = price x lots x 0.1 x 0.0006 per level: 0.012 + 0.018018 + 0.006018
    assert [f.fee for f in fills] == [D("0.012"), D("0.018018"), D("0.006018")]
    assert rig.broker.fees_paid == pos.fees == D("0.036036")
    assert rig.broker.cash == D("999.963964")
    assert rig.broker.fills_count == 3 and rig.broker.orders_count == 1
    assert rig.broker.open_orders() == []
    kinds = ["order", "fill", "position_open", "fill", "position_change", "fill", "position_change"]
    assert rig.kinds() == kinds
    assert rig.last("position_change") == {"lots": 6, "entry_price": 100.1}


def test_sell_market_order_walks_bids() -> None:
    rig = Rig()
    rig.book([(99.9, 1.0), (99.8, 1.0), (99.5, 10.0)], [(100.0, 1.0)])
    rig.order(Side.SELL, 3)
    fills = rig.tick()
    assert [(f.price, f.lots) for f in fills] == [(D("99.9"), 1), (D("99.8"), 1), (D("99.5"), 1)]
    pos = rig.broker.positions[SYM]
    assert (pos.direction, pos.lots, pos.entry_price) == (-1, 3, D("99.733333333333"))


def test_thin_book_fills_partially_and_cancels_the_rest() -> None:
    rig = Rig()
    rig.book([(99.0, 1.0)], [(100.0, 2.0), (100.2, 1.4)])  # 1.4 lots: one whole lot
    oid = rig.order(Side.BUY, 5)
    fills = rig.tick()
    assert [(f.price, f.lots) for f in fills] == [(D("100.0"), 2), (D("100.2"), 1)]
    assert rig.broker.open_orders() == []
    assert rig.last("cancel") == {"order_id": oid, "lots": 2, "why": "ioc_unfilled"}
    assert rig.broker.positions[SYM].lots == 3


def test_out_of_sync_book_uses_top_of_book_as_one_level() -> None:
    rig = Rig()
    assert not rig.st.book.in_sync
    rig.quote(99.9, 100.0, 5.0, 2.0)
    rig.order(Side.BUY, 3)
    fills = rig.tick()
    assert [(f.price, f.lots) for f in fills] == [(D("100.0"), 2)]
    assert rig.last("cancel")["why"] == "ioc_unfilled"


def test_market_order_without_any_price_waits() -> None:
    rig = Rig()
    oid = rig.order(Side.BUY, 1)
    assert rig.tick(T0) == []
    assert rig.broker.open_orders(SYM) == [oid]
    rig.book([(99.0, 1.0)], [])  # in sync, but no asks
    assert rig.tick(T0 + MS) == []
    assert rig.broker.open_orders() == [oid]
    rig.book([(99.0, 1.0)], [(100.5, 1.0)])
    fills = rig.tick(T0 + 2 * MS)
    assert [(f.price, f.ts_ns) for f in fills] == [(D("100.5"), T0 + 2 * MS)]


def test_latency_no_fill_before_it_passes() -> None:
    rig = Rig(latency_ms=50)
    rig.quote(99.9, 100.0)
    oid = rig.order(Side.BUY, 1, now=T0)
    assert rig.tick(T0) == []
    assert rig.tick(T0 + 50 * MS - 1) == []
    assert rig.broker.open_orders() == [oid]
    rig.quote(100.1, 100.2)  # the market moved while the order was in flight
    fills = rig.tick(T0 + 50 * MS)
    assert [(f.price, f.ts_ns) for f in fills] == [(D("100.2"), T0 + 50 * MS)]


def test_limit_not_active_before_latency() -> None:
    rig = Rig(latency_ms=10)
    rig.quote(99.0, 100.0)
    rig.order(Side.BUY, 1, type=OrderType.LIMIT, limit_ticks=995)
    assert rig.trade(99.0, 5.0, T0 + 5 * MS) == []  # not even placed yet
    assert rig.tick(T0 + 5 * MS) == []
    assert rig.trade(99.0, 5.0, T0 + 9 * MS) == []
    assert rig.tick(T0 + 10 * MS) == []  # placed: rests
    assert [f.lots for f in rig.trade(99.0, 5.0, T0 + 11 * MS)] == [1]


# --- limit orders ------------------------------------------------------------------------


def test_resting_limit_fills_only_when_a_trade_goes_through_it() -> None:
    rig = Rig()
    rig.quote(99.4, 100.0)
    oid = rig.order(Side.BUY, 3, type=OrderType.LIMIT, limit_ticks=995)
    assert rig.last("order")["limit_price"] == 99.5
    assert rig.tick() == []  # not marketable: rests
    assert rig.broker.open_orders() == [oid]
    assert rig.trade(99.5, 100.0) == []  # at the price: queue position unknown
    assert rig.trade(99.6, 100.0) == []
    fills = rig.trade(99.4, 100.0)
    assert [(f.price, f.lots, f.liquidity) for f in fills] == [(D("99.5"), 3, MAKER)]
    assert fills[0].fee == D("0.00597")  # 3 x 99.5 x 0.1 x 0.0002
    assert rig.broker.open_orders() == []
    assert rig.broker.positions[SYM].entry_price == D("99.5")


def test_quotes_moving_through_a_resting_limit_do_not_fill_it() -> None:
    rig = Rig()
    rig.quote(99.4, 100.0)
    oid = rig.order(Side.BUY, 1, type=OrderType.LIMIT, limit_ticks=995)
    rig.tick()
    rig.quote(99.0, 99.2)
    assert rig.tick() == []
    assert rig.broker.open_orders() == [oid]


def test_resting_sell_limit_mirrored() -> None:
    rig = Rig()
    rig.quote(99.0, 100.0)
    rig.order(Side.SELL, 2, type=OrderType.LIMIT, limit_ticks=1_005)
    assert rig.tick() == []
    assert rig.trade(100.5, 10.0) == []
    assert rig.trade(100.4, 10.0) == []
    fills = rig.trade(100.6, 10.0)
    assert [(f.side, f.price, f.lots, f.liquidity) for f in fills] == [
        (Side.SELL, D("100.5"), 2, MAKER)
    ]
    assert rig.broker.positions[SYM].direction == -1


def test_partial_limit_fill_keeps_the_rest_resting() -> None:
    rig = Rig()
    rig.quote(99.0, 100.0)
    oid = rig.order(Side.BUY, 5, type=OrderType.LIMIT, limit_ticks=995)
    rig.tick()
    assert [f.lots for f in rig.trade(99.3, 2.7)] == [2]
    assert rig.broker.open_orders() == [oid]
    assert rig.broker.positions[SYM].lots == 2
    assert [f.lots for f in rig.trade(99.3, 10.0)] == [3]
    assert rig.broker.open_orders() == []
    assert rig.broker.positions[SYM].lots == 5


def test_trade_size_is_shared_best_price_first() -> None:
    rig = Rig()
    rig.quote(99.0, 100.0)
    low = rig.order(Side.BUY, 2, type=OrderType.LIMIT, limit_ticks=994)
    high = rig.order(Side.BUY, 2, type=OrderType.LIMIT, limit_ticks=995)
    rig.tick()
    fills = rig.trade(99.0, 3.0)
    assert [(f.order_id, f.price, f.lots) for f in fills] == [
        (high, D("99.5"), 2),
        (low, D("99.4"), 1),
    ]
    assert rig.broker.open_orders() == [low]


def test_marketable_limit_takes_within_its_price_then_rests() -> None:
    rig = Rig()
    rig.book([(99.9, 1.0)], [(100.0, 2.0), (100.1, 1.0), (100.2, 5.0)])
    oid = rig.order(Side.BUY, 5, type=OrderType.LIMIT, limit_ticks=1_001)
    fills = rig.tick()
    assert [(f.price, f.lots, f.liquidity) for f in fills] == [
        (D("100.0"), 2, TAKER),
        (D("100.1"), 1, TAKER),
    ]
    assert fills[0].fee == D("0.012")  # taker rate
    assert rig.broker.open_orders() == [oid]
    assert [(f.price, f.lots, f.liquidity) for f in rig.trade(100.0, 9.0)] == [
        (D("100.1"), 2, MAKER)
    ]


def test_contract_fee_rates_when_configured() -> None:
    contract = make_contract(taker_fee_rate=0.001, maker_fee_rate=-0.0001)
    rig = Rig(contract, use_contract_fees=True)
    [fill] = rig.market(Side.BUY, 2, 100.0)
    assert fill.fee == D("0.02")  # 2 x 100 x 0.1 x 0.001
    rig.order(Side.SELL, 2, type=OrderType.LIMIT, limit_ticks=1_010)
    rig.tick()
    [fill] = rig.trade(101.5, 2.0)
    assert fill.fee == D("-0.00202")  # a maker rebate
    no_rates = Rig(make_contract(), use_contract_fees=True)
    [fill] = no_rates.market(Side.BUY, 2, 100.0)
    assert fill.fee == D("0.012")  # falls back to the config's rate
    ignored = Rig(contract, use_contract_fees=False)
    [fill] = ignored.market(Side.BUY, 2, 100.0)
    assert fill.fee == D("0.012")


# --- cancels ----------------------------------------------------------------------------


def test_cancel_and_cancel_all() -> None:
    rig = Rig(latency_ms=100)
    a = rig.order(Side.BUY, 1)
    b = rig.order(Side.BUY, 1, type=OrderType.LIMIT, limit_ticks=900)
    c = rig.order(Side.SELL, 1, type=OrderType.LIMIT, limit_ticks=1_100)
    assert a is not None and b is not None and c is not None
    assert rig.broker.cancel(a, T0 + 1)
    assert not rig.broker.cancel(a, T0 + 2)
    assert rig.last("cancel") == {"order_id": a, "lots": 1, "why": "requested"}
    assert rig.broker.cancel_all(SYM, T0 + 3) == 2
    assert rig.broker.cancel_all(SYM, T0 + 4) == 0
    assert rig.broker.open_orders() == []
    rig.quote(100.0, 100.1)
    assert rig.tick(T0 + 200 * MS) == []


def test_pending_and_resting_queries() -> None:
    rig = Rig(latency_ms=10)
    b = rig.broker
    assert not b.has_pending(SYM) and not b.has_resting(SYM) and b.pending_symbols() == set()
    rig.quote(99.0, 100.0)
    entry = rig.order(Side.BUY, 2)
    assert b.has_pending(SYM) and not b.has_pending(SYM, reduce_only_market=True)
    assert b.pending_symbols() == {SYM}
    rig.tick(T0 + 10 * MS)
    assert entry not in b.open_orders() and not b.has_pending(SYM)
    tp = rig.order(
        Side.SELL, 2, T0 + 10 * MS, type=OrderType.LIMIT, limit_ticks=1_020, reduce_only=True
    )
    assert b.has_pending(SYM) and not b.has_resting(SYM)
    rig.tick(T0 + 20 * MS)
    assert b.open_orders() == [tp]
    assert not b.has_pending(SYM) and b.has_resting(SYM) and b.pending_symbols() == {SYM}
    rig.order(Side.SELL, 2, T0 + 20 * MS, reduce_only=True, reason="stop_loss")
    assert b.has_pending(SYM, reduce_only_market=True)
    rig.tick(T0 + 30 * MS)
    assert b.positions == {} and b.open_orders() == []  # the take-profit went with the position
    assert b.pending_symbols() == set()


# --- rejections -----------------------------------------------------------------------------


@pytest.mark.parametrize("lots", [0, -10, 15, 5])
def test_lots_must_be_positive_multiples_of_lot_size(lots: int) -> None:
    rig = Rig(make_contract(lot_size=10, max_order_qty=100))
    assert rig.order(Side.BUY, lots) is None
    detail = rig.last("order_rejected")
    assert detail["reason"] == f"lots must be a positive multiple of the lot size 10, got {lots}"
    assert detail["order_reason"] == "entry"
    assert rig.broker.rejects == 1 and rig.broker.orders_count == 0
    assert rig.broker.last_reject == detail["reason"]


def test_lots_above_max_order_qty_rejected() -> None:
    rig = Rig(make_contract(lot_size=10, max_order_qty=100))
    assert rig.order(Side.BUY, 100) is not None
    assert rig.order(Side.BUY, 110) is None
    assert rig.last("order_rejected")["reason"] == "lots 110 exceed the max order quantity 100"


def test_limit_without_price_and_inverse_rejected() -> None:
    rig = Rig()
    assert rig.order(Side.BUY, 1, type=OrderType.LIMIT) is None
    assert rig.broker.last_reject == "limit order without limit_ticks"
    assert rig.order(Side.BUY, 1, type=OrderType.LIMIT, limit_ticks=0) is None
    inverse = Rig(make_contract(is_inverse=True))
    assert inverse.order(Side.BUY, 1) is None
    assert inverse.last("order_rejected")["reason"] == INVERSE_NOT_SUPPORTED
    other = Rig()
    req = OrderRequest("ETHUSDTM", Side.BUY, 1, OrderType.MARKET, "entry")
    assert other.broker.submit(req, other.contract, T0) is None


def test_reduce_only_rejections() -> None:
    rig = Rig()
    assert rig.order(Side.SELL, 1, reduce_only=True, reason="stop_loss") is None
    assert rig.broker.last_reject == "reduce_only order would open or increase a position"
    rig.market(Side.BUY, 3, 100.0)
    assert rig.order(Side.BUY, 1, reduce_only=True) is None
    assert rig.broker.last_reject == "reduce_only order would open or increase a position"
    assert rig.order(Side.SELL, 5, reduce_only=True) is None
    assert rig.broker.last_reject == "reduce_only order for 5 lots would flip a 3-lot position"
    assert rig.broker.rejects == 3
    fills = rig.market(Side.SELL, 3, 101.0, reduce_only=True, reason="take_profit")
    assert [f.lots for f in fills] == [3]
    assert SYM not in rig.broker.positions


def test_reduce_only_is_clamped_when_it_fills() -> None:
    rig = Rig()
    rig.market(Side.BUY, 3, 100.0)
    first = rig.order(Side.SELL, 2, reduce_only=True)
    second = rig.order(Side.SELL, 2, reduce_only=True)
    fills = rig.tick()
    assert [(f.order_id, f.lots) for f in fills] == [(first, 2), (second, 1)]
    assert rig.last("cancel") == {"order_id": second, "lots": 1, "why": "reduce_only"}
    assert SYM not in rig.broker.positions
    assert rig.broker.open_orders() == []


def test_resting_reduce_only_limit_is_cancelled_when_the_position_is_gone() -> None:
    rig = Rig()
    rig.market(Side.BUY, 2, 100.0)
    tp = rig.order(Side.SELL, 2, type=OrderType.LIMIT, limit_ticks=1_020, reduce_only=True)
    rig.tick()
    assert rig.broker.open_orders() == [tp]
    rig.market(Side.SELL, 2, 99.0, reduce_only=True, reason="stop_loss")
    assert rig.broker.open_orders() == []
    assert rig.last("cancel") == {"order_id": tp, "lots": 2, "why": "reduce_only"}


# --- positions and PnL ------------------------------------------------------------------------


def test_realized_pnl_on_close_is_exact() -> None:
    rig = Rig()
    [buy] = rig.market(Side.BUY, 3, 100.0, now=T0)
    [sell] = rig.market(Side.SELL, 3, 101.0, now=T0 + 90 * 1_000 * MS, reason="take_profit")
    # (101.0 - 100.0) x 3 x 0.1 = 0.3; fees 3 x 100 x 0.1 x 0.0006 and 3 x 101 x 0.1 x 0.0006
    assert buy.fee == D("0.018") and sell.fee == D("0.01818")
    b = rig.broker
    assert b.realized_pnl == D("0.3")
    assert b.closed_pnls == [D("0.26382")]
    assert b.wins == 1 and b.positions_opened == 1 and b.positions_closed == 1
    assert b.cash == D("1000.26382")
    assert b.positions == {}
    assert rig.last("position_close") == {
        "direction": 1,
        "entry_price": 100,
        "exit_price": 101,
        "lots": 3,
        "realized_pnl": 0.3,
        "fees": 0.03618,
        "funding": 0,
        "net_pnl": 0.26382,
        "reason": "take_profit",
        "held_s": 90,
    }
    close = next(e for e in rig.entries if e.kind == "position_close")
    assert '"realized_pnl":0.3,' in close.detail  # journaled exactly, no float noise


def test_losing_short_close() -> None:
    rig = Rig()
    rig.market(Side.SELL, 4, 100.0)
    rig.market(Side.BUY, 4, 100.7, reason="stop_loss")
    b = rig.broker
    # (100.0 - 100.7) x 4 x 0.1 = -0.28; fees 0.024 + 0.024168
    assert b.realized_pnl == D("-0.28")
    assert b.closed_pnls == [D("-0.328168")]
    assert b.wins == 0
    assert b.cash == D("1000") - D("0.328168")


def test_average_entry_and_partial_closes_are_exact() -> None:
    rig = Rig(taker_fee_rate=0.0)
    rig.market(Side.BUY, 1, 100.1)
    rig.market(Side.BUY, 2, 100.2)
    pos = rig.broker.positions[SYM]
    assert pos.entry_price == D("100.166666666667")  # shown rounded; the basis is exact
    rig.market(Side.SELL, 1, 100.3)
    assert pos.lots == 2 and pos.entry_price == D("100.166666666667")
    rig.market(Side.SELL, 2, 100.3)
    # Total: sold 3 x 100.3 = 300.9, bought 300.5: PnL 0.4 x 0.1 = 0.04 exactly.
    assert rig.broker.closed_pnls == [D("0.04")]
    assert rig.last("position_close")["exit_price"] == 100.3


def test_fill_through_zero_closes_then_opens_the_other_way() -> None:
    rig = Rig()
    rig.market(Side.BUY, 3, 100.0)
    [fill] = rig.market(Side.SELL, 5, 101.0, reason="reversal")
    assert fill.fee == D("0.0303")  # 5 x 101 x 0.1 x 0.0006, split 3/5 : 2/5
    b = rig.broker
    assert b.closed_pnls == [D("0.3") - D("0.018") - D("0.01818")]
    pos = b.positions[SYM]
    assert (pos.direction, pos.lots, pos.entry_price, pos.fees) == (-1, 2, D("101.0"), D("0.01212"))
    assert pos.realized_pnl == 0 and pos.funding == 0
    assert b.positions_opened == 2 and b.positions_closed == 1
    assert rig.kinds()[-3:] == ["fill", "position_close", "position_open"]
    assert rig.last("position_open") == {"direction": -1, "lots": 2, "entry_price": 101}
    assert b.cash == D("1000") + D("0.3") - D("0.018") - D("0.0303")


def test_equity_is_cash_plus_unrealized() -> None:
    rig = Rig()
    rig.market(Side.BUY, 3, 100.0)
    b = rig.broker
    assert b.unrealized_pnl() == 0  # no mark yet: marked at entry
    assert b.equity() == b.cash == D("999.982")
    b.mark(SYM, 102.0)
    assert b.unrealized_pnl() == D("0.6")  # 2.0 x 3 x 0.1
    assert b.equity() == b.cash + D("0.6")
    assert b.equity({SYM: 99.0}) == b.cash - D("0.3")
    assert b.equity({"OTHER": 1.0}) == b.cash + D("0.6")
    b.mark(SYM, float("nan"))  # ignored
    assert b.equity() == b.cash + D("0.6")
    short = Rig()
    short.market(Side.SELL, 3, 100.0)
    short.broker.mark(SYM, 100.4)  # 100.4 / 0.1 is 1004.0000000000001 in floats: 1004 ticks
    assert short.broker.unrealized_pnl() == D("-0.12")  # -(0.4 x 3 x 0.1)


def test_funding_long_pays_short_receives() -> None:
    long = Rig()
    assert long.broker.on_funding(SYM, 0.0001, 100.0, T0) == 0  # flat: nothing
    assert "funding" not in long.kinds()
    long.market(Side.BUY, 3, 100.0)
    paid = long.broker.on_funding(SYM, 0.0001, 100.0, T0 + 1)
    assert paid == D("-0.003")  # -(+1) x 3 x 0.1 x 100 x 0.0001
    assert long.broker.positions[SYM].funding == D("-0.003")
    assert long.broker.cash == D("1000") - D("0.018") - D("0.003")
    assert long.last("funding") == {
        "rate": 0.0001,
        "mark_price": 100,
        "direction": 1,
        "lots": 3,
        "payment": -0.003,
    }
    long.market(Side.SELL, 3, 100.0)
    assert long.broker.closed_pnls == [D("-0.018") - D("0.018") - D("0.003")]
    assert long.last("position_close")["funding"] == -0.003

    short = Rig()
    short.market(Side.SELL, 3, 100.0)
    assert short.broker.on_funding(SYM, 0.0001, 100.0, T0 + 1) == D("0.003")
    assert short.broker.on_funding(SYM, -0.0002, 100.0, T0 + 2) == D("-0.006")
    assert short.broker.funding == D("-0.003")
    assert short.broker.funding_paid == D("0.003")


# --- exactness and determinism ------------------------------------------------------------

TICKS = ["0.1", "0.01", "0.5", "0.25", "0.0001", "1", "0.000001", "5"]


@settings(max_examples=300, deadline=None)
@given(
    tick_text=st.sampled_from(TICKS),
    mult_text=st.sampled_from(["0.001", "0.1", "1", "10", "0.01"]),
    ticks=st.lists(st.integers(1, 10_000_000), min_size=1, max_size=5, unique=True),
    noise=st.floats(-0.3, 0.3),
    lots=st.integers(1, 40),
    side=st.sampled_from([Side.BUY, Side.SELL]),
)
def test_fill_prices_are_on_tick_and_money_is_exact(
    tick_text: str, mult_text: str, ticks: list[int], noise: float, lots: int, side: Side
) -> None:
    contract = make_contract(
        tick_size=float(tick_text),
        tick_size_text=tick_text,
        multiplier=float(mult_text),
        multiplier_text=mult_text,
        max_order_qty=10_000,
    )
    rig = Rig(contract)
    tick = D(tick_text)
    # Float prices as the feed would parse them, a little off the exact tick.
    prices = sorted(((t + noise) * float(tick_text), 7.0) for t in ticks)
    if side is Side.BUY:
        rig.book([], prices)
    else:
        rig.book(prices, [])
    rig.order(side, lots)
    fills = rig.tick()
    assert fills
    for fill in fills:
        assert fill.price % tick == 0
        assert fill.price / tick == round(fill.price / tick)
        notional = fill.price * fill.lots * D(mult_text)
        assert fill.fee == (notional * D("0.0006")).quantize(D("1e-8"))
    # Close everything at the first level: realized PnL is exactly sum over fills.
    b = rig.broker
    filled = sum(f.lots for f in fills)
    exit_price = fills[0].price
    rig.st = SymbolState(SYM)  # out of sync: the exit fills at the top of book
    rig.market(Side(-side), filled, float(exit_price))
    expected = sum(
        ((exit_price - f.price) * f.lots * D(mult_text) * int(side) for f in fills), D(0)
    ).quantize(D("1e-8"))
    assert b.realized_pnl == expected
    assert b.cash == D("1000") + b.realized_pnl - b.fees_paid


def _scenario() -> str:
    rig = Rig(latency_ms=20)
    rig.book([(99.9, 3.0), (99.8, 5.0)], [(100.0, 2.0), (100.1, 4.0)])
    rig.order(Side.BUY, 4)
    rig.tick(T0 + 20 * MS)
    rig.broker.on_funding(SYM, 0.0001, 100.05, T0 + 30 * MS)
    rig.order(Side.SELL, 4, type=OrderType.LIMIT, limit_ticks=1_003, reduce_only=True)
    rig.tick(T0 + 60 * MS)
    rig.trade(100.4, 10.0, T0 + 70 * MS)
    return rig.journal.digest()


def test_same_calls_same_digest() -> None:
    assert _scenario() == _scenario()


def test_cached_equity_follows_marks_fills_and_funding() -> None:
    """equity() is cached; every change that moves it must be seen."""
    broker = PaperBroker(PaperConfig(latency_ms=0), Journal())
    c = make_contract(
        symbol="CACHEUSDTM",
        multiplier=1.0,
        multiplier_text="1",
        tick_size=0.01,
        tick_size_text="0.01",
    )
    st = SymbolState(c.symbol)
    st.book.apply_snapshot(1, [(99.0, 100.0)], [(100.0, 100.0)])
    st.bid, st.ask, st.bid_size, st.ask_size = 99.0, 100.0, 100.0, 100.0
    start = broker.equity()
    broker.submit(OrderRequest(c.symbol, Side.BUY, 10, OrderType.MARKET, "entry"), c, 0)
    broker.on_book(st, c, 0)
    after_fill = broker.equity()
    assert after_fill < start  # the fee
    broker.mark(c.symbol, 110.0)
    marked = broker.equity()
    assert marked > after_fill
    assert broker.equity() == marked  # cached, same value
    broker.on_funding(c.symbol, 0.01, 110.0, 1)
    assert broker.equity() < marked
    fresh = PaperBroker(PaperConfig(latency_ms=0), Journal())
    assert fresh.equity() == fresh.cash


def test_an_absurd_book_price_is_skipped_not_an_overflow() -> None:
    broker = PaperBroker(PaperConfig(latency_ms=0), Journal())
    c = make_contract()
    st = SymbolState(c.symbol)
    st.book.apply_snapshot(1, [(1.0, 5.0)], [(1.7e307, 5.0)])
    broker.submit(OrderRequest(c.symbol, Side.BUY, 1, OrderType.MARKET, "entry"), c, 0)
    assert broker.on_book(st, c, 0) == []  # no usable price: the order waits
    assert broker.on_trade(c.symbol, 1.7e307, 1.0, Side.BUY, c, 0) == []


@example(num=5, den=2, places=0)  # exact halves: to even, both signs
@example(num=-5, den=2, places=0)
@example(num=7, den=2, places=0)
@example(num=25, den=1000, places=2)
@given(
    num=st.integers(min_value=-(10**30), max_value=10**30),
    den=st.integers(min_value=1, max_value=10**18),
    places=st.integers(min_value=0, max_value=12),
)
def test_ratio_rounding_matches_the_fraction_rounding(num: int, den: int, places: int) -> None:
    # Marking to market rounds integer ratios directly; it must be the Fraction rounding
    # (half to even) bit for bit, or equity would drift from the booked money.
    from fractions import Fraction

    from tradebot.execution.money import ratio_to_decimal as _ratio_to_decimal

    digits = round(Fraction(num, den) * 10**places)  # Fraction.__round__: half to even
    got = _ratio_to_decimal(num, den, places)
    assert Fraction(got) == Fraction(digits, 10**places)
    _sign, digit_tuple, exponent = got.as_tuple()
    assert not (isinstance(exponent, int) and exponent < 0 and digit_tuple[-1] == 0)  # canonical


@given(
    mark=st.floats(min_value=0.0001, max_value=1e6, allow_nan=False),
    lots=st.integers(min_value=1, max_value=10_000),
    long=st.booleans(),
)
def test_unrealized_pnl_is_the_exact_fraction_formula(mark: float, lots: int, long: bool) -> None:
    from fractions import Fraction

    from tradebot.execution.money import money as _money

    contract = contract_value(multiplier=0.001, multiplier_text="0.001")
    broker = PaperBroker(PaperConfig(latency_ms=0), Journal())
    state = SymbolState("XBTUSDTM")
    state.bid, state.bid_size, state.ask, state.ask_size = 99.9, 1e6, 100.1, 1e6
    side = Side.BUY if long else Side.SELL
    broker.submit(OrderRequest("XBTUSDTM", side, lots, OrderType.MARKET, "entry"), contract, 0)
    broker.on_book(state, contract, 1)
    pos = broker.positions["XBTUSDTM"]
    basis = broker._basis["XBTUSDTM"]
    ticks = round(mark / 0.1)
    expected = _money((Fraction(ticks) * lots - basis.cost) * basis.unit * pos.direction)
    broker.mark("XBTUSDTM", mark)
    assert broker.unrealized_pnl() == expected


def test_the_paper_broker_is_a_broker() -> None:
    from tradebot.execution.orders import Broker

    broker: Broker = PaperBroker(PaperConfig(), Journal())  # mypy checks the protocol
    assert broker.positions == {}
    assert broker.open_orders() == []
