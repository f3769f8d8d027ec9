"""Money and limits a trader can trust: each test here failed on the code before issue 12.

Driven through the Engine (`Scenario`) where the bug was in the wiring, through the paper
broker where it was in the fill model.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as hs

from tests.helpers import TRADING, Scenario, contract
from tests.test_trader import _closes, _entered

A = "AAAUSDTM"
B = "BBBUSDTM"
D = Decimal


# --- 1. a tick-size change re-prices resting orders ---------------------------------------


def test_a_tick_size_change_keeps_the_take_profit_at_its_price() -> None:
    sc = _entered()
    tp = sc.details("order", A)[-1]
    assert (tp["reason"], tp["limit_price"]) == ("take_profit", D("101"))
    sc.contracts(300, contract(A, tick_size=0.001))
    sc.trade(400, A, "buy", 100.00, 5)  # below the take-profit: it must not fill
    assert A in sc.broker.positions
    assert not sc.of("fill", A)[1:]
    sc.trade(500, A, "buy", 101.50, 50)  # through it: it fills at 101.00
    fills = sc.details("fill", A)
    assert fills[-1]["price"] == D("101")
    (close,) = _closes(sc)
    assert close["realized_pnl"] == D("1.0")  # 10 lots x 0.1 x (101.00 - 100.00)


# --- 3. the daily halt stops entries in flight ---------------------------------------------


def test_the_daily_halt_cancels_entries_in_flight() -> None:
    sc = Scenario((*TRADING, "risk.max_daily_loss_fraction=0.001"))
    sc.open_market([A, B])
    sc.buy_pressure(100, A)
    sc.touch(151, A)  # A is long 10 lots at 100.00
    assert A in sc.broker.positions
    sc.buy_pressure(950, B)  # B's entry is ordered at 951 ms, arrives at 1001 ms
    assert sc.details("order", B)
    sc.mark(960, A, 80.0)  # A's open loss: 20 USDT, past the 1 USDT daily limit
    sc.touch(1010, B)  # the tick at 1000 ms latched the halt before B's entry arrived
    assert sc.of("daily_halt")
    assert B not in sc.broker.positions
    assert not sc.of("fill", B)
    assert any(c["why"] == "daily_loss_limit" for c in sc.details("cancel", B))


# --- 6. unrealized PnL without a mark price ------------------------------------------------


def test_without_a_mark_a_position_is_marked_at_the_last_trade() -> None:
    sc = _entered()
    sc.trade(300, A, "sell", 99.00, 1)
    # (99.00 - 100.00) x 10 lots x 0.1: the open loss, not the entry price's zero
    assert sc.report["pnl"]["unrealized"] == -1.0
    assert sc.broker.equity() == sc.broker.cash - D("1")


def test_without_a_mark_or_a_trade_a_position_is_marked_at_the_mid() -> None:
    from tests.helpers import contract_value
    from tradebot.config import PaperConfig
    from tradebot.execution.orders import OrderRequest, OrderType
    from tradebot.execution.paper import PaperBroker
    from tradebot.journal import Journal
    from tradebot.kucoin.events import Side
    from tradebot.market.state import SymbolState

    c = contract_value()
    broker = PaperBroker(PaperConfig(latency_ms=0), Journal())
    st = SymbolState("XBTUSDTM")
    st.bid, st.bid_size, st.ask, st.ask_size = 99.9, 100.0, 100.1, 100.0
    broker.submit(OrderRequest("XBTUSDTM", Side.BUY, 10, OrderType.MARKET, "entry"), c, 0)
    broker.on_book(st, c, 1)
    broker.mid("XBTUSDTM", 99.0)
    assert broker.unrealized_pnl() == D("-1.1")  # (99.0 - 100.1) x 10 x 0.1
    broker.last_trade("XBTUSDTM", 101.0)
    assert broker.unrealized_pnl() == D("0.9")  # the last trade comes before the mid
    broker.mark("XBTUSDTM", 100.0)
    assert broker.unrealized_pnl() == D("-0.1")  # the mark before both


# --- 10. honest reasons for contracts we cannot book -------------------------------------


def _entry_rejection(**fields: object) -> str:
    sc = Scenario(TRADING)
    sc.snapshot(0, A)
    sc.contracts(1, contract(A, **fields))
    sc.buy_pressure(100, A)
    (rejection,) = sc.details("rejection", A)
    assert not sc.of("order", A)
    return str(rejection["reason"])


def test_an_inverse_contract_is_refused_as_inverse() -> None:
    assert _entry_rejection(isInverse=True) == "inverse_contract"


def test_a_usdc_settled_contract_is_not_booked_into_a_usdt_account() -> None:
    assert _entry_rejection(settleCurrency="USDC") == "settle_currency:USDC"


# --- 2. the position cap holds at the fill ---------------------------------------------------


def _notional(sc: Scenario) -> Decimal:
    return sum((f["lots"] * D("0.1") * f["price"] for f in sc.details("fill", A)), D(0))


def test_a_thin_ask_side_never_fills_past_the_position_cap() -> None:
    # 10 lots are sized at 100.00 (cap 1000 x 0.2 x 0.54 = 108 USDT); only 3 are offered
    # there, the rest at 150.00: walking it all would fill 135 USDT.
    sc = Scenario(TRADING)
    sc.open_market([A], asks=[(100.00, 3.0), (150.00, 100.0)])
    sc.buy_pressure(100, A)
    sc.touch(151, A)
    assert _notional(sc) <= D("108")
    assert sc.broker.positions[A].lots == 8  # 3 at 100.00 and 5 at 150.00: 105 USDT


def test_a_move_during_the_latency_never_fills_past_the_position_cap() -> None:
    sc = Scenario(TRADING)
    sc.open_market([A])
    sc.buy_pressure(100, A)  # 10 lots ordered at 100.00
    sc.l2(120, A, 100.00, "sell", 0)
    sc.l2(121, A, 100.01, "sell", 0)
    sc.l2(122, A, 130.00, "sell", 100)  # the ask jumped to 130.00 before the order arrived
    sc.touch(151, A)
    assert _notional(sc) <= D("108")
    assert sc.broker.positions[A].lots == 8  # 8 x 0.1 x 130 = 104 USDT


# --- 8. a take-profit cancelled for an exit comes back if the exit expires ------------------


def test_a_take_profit_cancelled_for_an_exit_that_expired_is_restored() -> None:
    sc = _entered("exits.time_stop_s=1", "paper.order_timeout_ms=500")
    # The time stop at 2000 ms cancels the take-profit and sends a market close; the
    # connection is gone, so there is no price and the close expires at the 3000 ms tick.
    sc.conn(1_500)
    sc.finish(3_000)
    assert any(c["why"] == "expired" for c in sc.details("cancel", A))
    assert A in sc.broker.positions
    open_ids = sc.broker.open_orders(A)
    tps = [o for o in sc.details("order", A) if o["order_id"] in open_ids]
    assert [(o["reason"], o["limit_price"]) for o in tps] == [("take_profit", D("101"))]


# --- 9. the report adds up exactly as written ------------------------------------------------


def test_the_report_money_adds_up_exactly_in_the_json() -> None:
    import json

    sc = _entered()
    sc.mark(300, A, 99.37)
    sc.funding(400, A, 0.000123)
    sc.finish(500)
    report = json.loads(json.dumps(sc.report))
    money = {k: D(v) for k, v in report["money"].items()}
    assert money["equity_start"] + money["realized"] + money["unrealized"] == money["equity_end"]
    assert money["trading"] + money["fees"] + money["funding"] == money["realized"]
    assert money["unrealized"] == D("-0.63")  # (99.37 - 100.00) x 10 lots x 0.1
    assert report["pnl"]["realized"] == float(money["realized"])
    assert report["equity"]["end"] == float(money["equity_end"])


# --- 7. every position can be closed ---------------------------------------------------------


def test_an_exit_larger_than_the_max_order_qty_or_off_the_lot_grid_is_split() -> None:
    sc = _entered("exits.time_stop_s=1")  # long 10 lots
    sc.contracts(300, contract(A, maxOrderQty=4, lot_size=3))  # 10 is no longer sendable
    sc.finish(2_000)  # the time stop sends the close
    sc.touch(2_100, A)
    closes = [o for o in sc.details("order", A) if o["reason"] == "time_stop"]
    assert closes and all(o["lots"] <= 4 and o["lots"] % 3 == 0 for o in closes)
    assert not sc.of("order_rejected", A)
    assert A not in sc.broker.positions
    assert sum(f["lots"] for f in sc.details("fill", A)[1:]) == 10


@given(
    lots=hs.integers(min_value=1, max_value=10**5),
    lot=hs.integers(min_value=1, max_value=1_000),
    max_qty=hs.integers(min_value=100, max_value=10**6),
)
def test_exit_sizes_close_the_position_in_orders_the_exchange_accepts(
    lots: int, lot: int, max_qty: int
) -> None:
    from tests.helpers import contract_value
    from tradebot.trader import exit_sizes

    sizes = exit_sizes(lots, contract_value(lot_size=lot, max_order_qty=max_qty))
    assert all(s > 0 and s % lot == 0 for s in sizes)
    assert all(s <= max(lot, max_qty // lot * lot) for s in sizes)
    assert 0 <= sum(sizes) - lots < lot


# --- 5. never fill on a known-stale price ----------------------------------------------------


def test_no_fill_on_the_top_of_book_left_over_from_before_a_gap() -> None:
    sc = Scenario(TRADING)
    sc.open_market([A])
    sc.buy_pressure(100, A)  # ordered at 101 ms, arrives at 151 ms
    sc.l2(120, A, 99.0, "buy", 3.0, skip=1)  # a lost message: the book is out of sync
    # A crossed snapshot is refused: it restores nothing, and the top of book fields still
    # hold the prices from before the gap.
    sc.snapshot(160, A, bids=[(100.5, 10.0)], asks=[(100.0, 10.0)], sequence=200)
    assert not sc.state(A).book.in_sync
    assert not sc.of("fill", A)
    sc.ticker(200, A, 100.10, 100.20)  # a fresh quote after the gap: a price to fill at
    (fill,) = sc.details("fill", A)
    assert fill["price"] == D("100.2")


def test_no_fill_on_the_top_of_book_left_over_from_before_a_disconnect() -> None:
    sc = Scenario(TRADING)
    sc.open_market([A])
    sc.buy_pressure(100, A)
    sc.conn(120)  # every book is out of sync
    sc.snapshot(160, A, bids=[(100.5, 10.0)], asks=[(100.0, 10.0)], sequence=200)
    assert not sc.of("fill", A)
