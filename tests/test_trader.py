"""The decision pipeline driven through the Engine: validation layers, entries, exits, money."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.helpers import (
    ASKS,
    MS,
    T0,
    TRADING,
    S,
    Scenario,
    contract,
    detail,
    ns,
)
from tradebot.decide.validation import LAYERS
from tradebot.trader import DELISTING_SETTLE_S

A = "AAAUSDTM"
B = "BBBUSDTM"
C = "CCCUSDTM"
D = Decimal

# With TRADING, the default book and one buy print, the signal is StrongBuy with
# confidence 0.54 (1.0 liquidity x 1.0 tight spread x 0.6 low volume x 0.9 no mark), so
# the entry is floor(1000 x 0.2 x 0.54 / (100.00 x 0.1)) = 10 lots.
LOTS = 10
TAKER = D("0.0006")
MAKER = D("0.0002")
MULT = D("0.1")


def _without(overrides: tuple[str, ...], key: str) -> tuple[str, ...]:
    return tuple(o for o in overrides if not o.startswith(key + "="))


def _entered(*overrides: str, asks: list[tuple[float, float]] = ASKS) -> Scenario:
    """Long LOTS lots of A at 100.00: ordered at 101 ms, filled at 151 ms; the take-profit
    (sell 101.00, reduce-only) is submitted at 151 ms and rests from the 210 ms update."""
    sc = Scenario(TRADING + overrides)
    sc.open_market([A], asks=asks)
    sc.buy_pressure(100, A)
    sc.touch(151, A)
    sc.touch(210, A)
    pos = sc.broker.positions[A]
    assert (pos.direction, pos.lots, pos.entry_price) == (1, LOTS, D("100"))
    return sc


def _closes(sc: Scenario, symbol: str = A) -> list[dict[str, Any]]:
    return sc.details("position_close", symbol)


# --- the five layers -------------------------------------------------------------------------


def test_entry_is_ordered_when_every_layer_passes() -> None:
    sc = Scenario(TRADING)
    sc.open_market([A])
    sc.buy_pressure(100, A)
    assert [(e.kind, e.ts_ns) for e in sc.entries] == [
        ("signal", ns(101)),
        ("order", ns(101)),
    ]
    sig, order = (detail(e) for e in sc.entries)
    assert sig["type"] == "StrongBuy"
    assert sig["confidence"] == D("0.54")
    assert order == {
        "order_id": 1,
        "side": "buy",
        "type": "market",
        "lots": LOTS,
        "limit_price": None,
        "reduce_only": False,
        "reason": "entry",
    }
    assert sc.report["rejections"] == dict.fromkeys(LAYERS, 0)
    assert sc.report["orders"] == 1


def _poke(sc: Scenario, t_ms: float) -> None:
    """A quote update that triggers an evaluation (a deep bid level changes)."""
    sc.touch(t_ms, A, 97.0)


def _ticker(sc: Scenario, t_ms: float) -> None:
    sc.ticker(t_ms, A, 99.99, 100.0, bid_size=400, ask_size=200)


def _stale_book(sc: Scenario) -> None:
    # The connection drops: the book is out of sync (level-2 changes are only buffered);
    # tickers keep the quote fresh and trigger the evaluations.
    sc.trade(50, A, "buy", 100.0, 5)
    sc.conn(60)
    _ticker(sc, 101)


def _lost_messages(sc: Scenario) -> None:
    # Three changes were lost and the book resynced: the update share is 3/6 for 60 s.
    sc.touch(40, A)
    sc.trade(50, A, "buy", 100.0, 5)
    sc.l2(60, A, 99.5, "buy", 3, skip=3)
    sc.snapshot(70, A)
    _poke(sc, 101)


def _wide_spread(sc: Scenario) -> None:
    sc.snapshot(40, A, bids=[(99.4, 5_000.0)], asks=ASKS)  # spread 60.2 bps, bid heavy
    sc.buy_pressure(100, A)


def _funding_just_happened(sc: Scenario) -> None:
    sc.funding(50, A, 0.0001)
    sc.buy_pressure(100, A)


def _buy(sc: Scenario) -> None:
    sc.buy_pressure(100, A)


Script = Callable[[Scenario], None]
Poke = Callable[[Scenario, float], None]
LAYER_CASES: list[tuple[str, tuple[str, ...], Script, Poke, str, str | list[str]]] = [
    ("stale_book", TRADING, _stale_book, _ticker, "data_quality", "book_out_of_sync"),
    (
        "lost_messages",
        TRADING,
        _lost_messages,
        _poke,
        "data_quality",
        # received / expected: 3/6, then 4/7 and 5/8 as clean updates come in
        ["completeness:0.500<0.990", "completeness:0.571<0.990", "completeness:0.625<0.990"],
    ),
    ("wide_spread", TRADING, _wide_spread, _poke, "data_quality", "spread:60.2bps>=50.0"),
    (
        "low_volume",
        _without(TRADING, "validation.allow_low_volume"),
        _buy,
        _poke,
        "market_conditions",
        "volume_low",
    ),
    (
        "max_open_positions_0",
        (*TRADING, "risk.max_open_positions=0"),
        _buy,
        _poke,
        "risk_limits",
        "max_open_positions",
    ),
    (
        "min_balance",
        (*TRADING, "risk.min_balance_usdt=1000.01"),
        _buy,
        _poke,
        "risk_limits",
        "min_balance",
    ),
    ("funding_window", TRADING, _funding_just_happened, _poke, "regulatory", "funding_window"),
    (
        "min_confidence_1",
        (*_without(TRADING, "validation.min_confidence"), "validation.min_confidence=1.0"),
        _buy,
        _poke,
        "confidence",
        "confidence:0.540<1.00",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "script", "poke", "layer", "reason"),
    [case[1:] for case in LAYER_CASES],
    ids=[case[0] for case in LAYER_CASES],
)
def test_each_layer_rejects_and_is_counted_under_its_name(
    overrides: tuple[str, ...], script: Script, poke: Poke, layer: str, reason: str | list[str]
) -> None:
    sc = Scenario((*overrides, "signals.evaluate_every_ms=1"))  # every quote is evaluated
    sc.open_market([A])
    script(sc)
    for t in (250, 400):  # two more evaluations: each one rejected again
        poke(sc, t)

    # Every evaluation (snapshots count as quotes too) is rejected at the same layer.
    rejections = sc.of("rejection", A)
    assert len(rejections) >= 3
    reasons = [reason] * len(rejections) if isinstance(reason, str) else reason
    for entry, why in zip(rejections[-len(reasons) :], reasons, strict=True):
        assert detail(entry) == {"layer": layer, "reason": why}
        # Every rejection is journaled right after the signal it refused.
        before = sc.entries[sc.entries.index(entry) - 1]
        assert (before.kind, before.ts_ns) == ("signal", entry.ts_ns)
        assert detail(before)["type"] in ("Buy", "StrongBuy")
    assert rejections[-3].ts_ns == ns(101)
    expected = dict.fromkeys(LAYERS, 0)
    expected[layer] = len(rejections)
    assert sc.report["rejections"] == expected
    assert sc.of("order") == [] and sc.report["orders"] == 0


def test_funding_window_also_counts_an_upcoming_funding_time() -> None:
    sc = Scenario(TRADING)
    sc.snapshot(0, A)
    sc.contracts(1, contract(A, next_funding_ms=59_000))  # funding in 59 s (window: 60 s)
    sc.buy_pressure(100, A)
    assert sc.details("rejection") == [{"layer": "regulatory", "reason": "funding_window"}]
    sc2 = Scenario(TRADING)
    sc2.snapshot(0, A)
    sc2.contracts(1, contract(A, next_funding_ms=61_000))
    sc2.buy_pressure(100, A)
    assert sc2.of("rejection") == [] and len(sc2.of("order")) == 1


def test_wide_spread_never_reaches_market_conditions() -> None:
    """Quality refuses a spread >= quality.max_spread_bps (important tier), and the signal
    calls the spread "wide" only above that same threshold, so market_conditions'
    spread_wide check cannot fire from the trader (see the report)."""
    sc = Scenario(TRADING)
    sc.open_market([A])
    _wide_spread(sc)
    (sig,) = sc.details("signal")
    assert sig["spread"] == "wide"
    assert sc.details("rejection")[0]["layer"] == "data_quality"


# --- entry execution -------------------------------------------------------------------------


def test_market_entry_fills_only_after_the_latency_walking_the_book() -> None:
    asks = [(100.00, 3.0), (100.01, 4.0), (100.02, 100.0)]
    sc = Scenario(TRADING)
    sc.open_market([A], asks=asks)
    sc.buy_pressure(100, A)
    (order,) = sc.of("order")
    assert order.ts_ns == ns(101) and detail(order)["lots"] == LOTS

    sc.touch(150, A)  # 49 ms later: not active yet
    sc.trade(150.5, A, "sell", 99.99, 1)
    assert sc.of("fill") == [] and sc.broker.positions == {}
    sc.touch(151, A)  # exactly 50 ms after the order: it fills on the book as it stood
    fills = sc.details("fill", A)
    assert [(f["lots"], f["price"], f["liquidity"]) for f in fills] == [
        (3, D("100"), "taker"),
        (4, D("100.01"), "taker"),
        (3, D("100.02"), "taker"),
    ]
    assert {e.ts_ns for e in sc.of("fill")} == {ns(151)}
    for f in fills:
        assert f["fee"] == f["lots"] * f["price"] * MULT * TAKER
    # Opened by the first fill, grown by the next two.
    assert [(d["lots"], d["entry_price"]) for d in sc.details("position_open", A)] == [
        (3, D("100"))
    ]
    assert [(d["lots"], d["entry_price"]) for d in sc.details("position_change", A)] == [
        (7, D("100.005714285714")),
        (10, D("100.01")),  # (300 + 400.04 + 300.06) / 10
    ]
    pos = sc.broker.positions[A]
    assert (pos.lots, pos.entry_price, pos.opened_ns) == (LOTS, D("100.01"), ns(151))
    # The take-profit is placed at once for the whole position.
    tp = sc.details("order", A)[1]
    assert (tp["type"], tp["side"], tp["lots"], tp["reduce_only"], tp["reason"]) == (
        "limit",
        "sell",
        LOTS,
        True,
        "take_profit",
    )
    assert tp["limit_price"] == D("101.02")  # 100.01 x 1.01 = 101.0101, rounded away from entry


def test_entry_fills_at_its_arrival_on_the_book_as_it_stood_then() -> None:
    sc = Scenario((*_without(TRADING, "paper.latency_ms"), "paper.latency_ms=300"))
    sc.open_market([A])
    sc.buy_pressure(100, A)  # ordered at 101 ms: arrives at 401 ms
    sc.touch(399, A)
    assert sc.of("fill") == []
    sc.l2(550, A, 100.00, "sell", 0)  # the next payload takes the best ask away
    # The fill is at 401 ms, on the book before that change: at 100.00, not 100.01.
    assert [e.ts_ns for e in sc.of("fill")] == [ns(401)]
    assert {f["price"] for f in sc.details("fill", A)} == {D("100")}


# --- exits -----------------------------------------------------------------------------------


def test_stop_loss_closes_at_market_when_the_bid_falls_stop_loss_below_entry() -> None:
    sc = _entered("exits.exit_on_reversal=false")
    sc.l2(300, A, 99.51, "buy", 500)
    sc.l2(301, A, 99.50, "buy", 500)
    sc.l2(302, A, 99.99, "buy", 0)
    sc.l2(303, A, 99.98, "buy", 0)  # bid 99.51: -0.49 %, not yet
    assert sc.state(A).bid == 99.51
    assert [d["reason"] for d in sc.details("order")] == ["entry", "take_profit"]
    sc.l2(400, A, 99.51, "buy", 0)  # bid 99.50: -0.50 %
    orders = sc.details("order")
    assert orders[-1]["reason"] == "stop_loss"
    assert (orders[-1]["type"], orders[-1]["side"], orders[-1]["lots"]) == ("market", "sell", LOTS)
    assert orders[-1]["reduce_only"] is True
    assert sc.of("order")[-1].ts_ns == ns(400)
    # The resting take-profit was cancelled first.
    (cancel,) = sc.details("cancel")
    assert cancel["order_id"] == orders[1]["order_id"]

    sc.touch(449, A)
    assert A in sc.broker.positions
    sc.touch(450, A)
    (close,) = _closes(sc)
    assert close["reason"] == "stop_loss"
    assert close["exit_price"] == D("99.5")
    assert close["realized_pnl"] == (D("99.5") - 100) * LOTS * MULT
    assert A not in sc.broker.positions


def test_take_profit_fills_as_maker_only_when_a_trade_prints_through_it() -> None:
    sc = _entered()
    tp_id = sc.details("order")[1]["order_id"]
    sc.trade(300, A, "buy", 101.00, 50)  # at the limit: queue position unknown, no fill
    assert sc.of("fill")[1:] == []
    sc.trade(310, A, "buy", 101.01, 4)  # through it: 4 lots fill at the limit
    sc.trade(320, A, "sell", 101.05, 20)  # the rest (whoever took)
    fills = sc.details("fill")[1:]
    assert [(f["order_id"], f["lots"], f["price"], f["liquidity"]) for f in fills] == [
        (tp_id, 4, D("101"), "maker"),
        (tp_id, 6, D("101"), "maker"),
    ]
    for f in fills:
        assert f["fee"] == f["lots"] * D("101") * MULT * MAKER
    (close,) = _closes(sc)
    assert close["reason"] == "take_profit"
    assert close["realized_pnl"] == D("1")  # (101 - 100) x 10 x 0.1
    assert sc.of("position_close")[0].ts_ns == ns(320)
    assert sc.broker.open_orders(A) == []


def test_take_profit_does_not_fill_before_it_rests() -> None:
    sc = Scenario(TRADING)
    sc.open_market([A])
    sc.buy_pressure(100, A)
    sc.touch(151, A)  # entry fills; the take-profit is active from 201 ms
    sc.trade(200, A, "buy", 102.0, 50)  # it has not reached the exchange yet
    assert sc.of("position_close") == []


def test_time_stop_closes_after_time_stop_s_on_a_tick() -> None:
    sc = _entered("exits.time_stop_s=2")  # opened at 151 ms
    for t in range(600, 3_000, 400):
        sc.touch(t, A)
    assert sc.of("position_close") == []
    sc.touch(3_200, A)  # runs the 3 s tick first (2.849 s held); the close arrives at 3.05 s
    stops = [e for e in sc.of("order") if detail(e)["reason"] == "time_stop"]
    assert [e.ts_ns for e in stops] == [T0 + 3 * S]
    (close,) = _closes(sc)
    assert close["reason"] == "time_stop"
    assert close["held_s"] == D("2.899")
    assert sc.of("position_close")[0].ts_ns == ns(3_050)


def test_reversal_closes_on_an_opposite_confident_signal() -> None:
    sc = _entered()
    sc.l2(300, A, 100.01, "sell", 5_000)  # ask heavy
    sc.trade(350, A, "sell", 99.99, 50)  # sell momentum
    sc.touch(400, A, 101.0, "sell")
    sig = sc.entries[-3]
    assert sig.kind == "signal" and detail(sig)["type"] in ("Sell", "StrongSell")
    assert [e.kind for e in sc.entries[-2:]] == ["cancel", "order"]
    assert detail(sc.entries[-1])["reason"] == "reversal"
    sc.touch(450, A, 101.0, "sell")
    (close,) = _closes(sc)
    assert close["reason"] == "reversal"
    assert close["exit_price"] == D("99.99")


def test_no_reversal_when_disabled() -> None:
    sc = _entered("exits.exit_on_reversal=false")
    sc.l2(300, A, 100.01, "sell", 5_000)
    sc.trade(350, A, "sell", 99.99, 50)
    sc.touch(400, A, 101.0, "sell")
    sc.touch(450, A, 101.0, "sell")
    assert sc.of("position_close") == []


def test_delisting_closes_at_market_while_quotes_continue() -> None:
    sc = _entered()
    sc.contracts(500, contract(A, "Closed"))
    assert sc.counters["delistings"] == [A]
    # The contracts answer itself orders the close (no waiting for the next tick).
    order = sc.of("order")[-1]
    assert (order.ts_ns, detail(order)["reason"]) == (ns(500), "delisting")
    sc.touch(900, A)  # the close arrived at 550 ms and filled then
    (close,) = _closes(sc)
    assert close["reason"] == "delisting"
    assert sc.of("position_close")[0].ts_ns == ns(550)
    assert sc.of("settlement") == []
    # No new entry on a delisted contract.
    sc.touch(1_300, A)
    assert sc.details("rejection")[-1] == {"layer": "data_quality", "reason": "contract:delisted"}
    assert sc.report["positions"]["opened"] == 1


def test_delisting_without_a_market_is_settled_at_the_last_mark() -> None:
    sc = _entered()
    sc.mark(300, A, 100.5)
    sc.conn(400)  # the market data is gone: no book to fill at
    sc.contracts(500, contract(A, "Closed"))
    # No more quotes: the market close never fills.
    settle_at = T0 + S + DELISTING_SETTLE_S * S
    sc.finish(DELISTING_SETTLE_S * 1_000 + 999)  # up to the tick before
    assert sc.of("settlement") == [] and A in sc.broker.positions
    sc.finish(30_000)
    (settlement,) = sc.of("settlement")
    assert settlement.ts_ns == settle_at
    assert detail(settlement) == {"side": "sell", "lots": LOTS, "price": D("100.5")}
    (close,) = _closes(sc)
    assert close["reason"] == "delisting_settlement"
    assert close["exit_price"] == D("100.5")
    assert close["realized_pnl"] == D("0.5")
    assert close["fees"] == D("0.06")  # the entry's; settlement is free
    assert sc.of("position_close")[0].ts_ns == settle_at
    # The pending market close was cancelled, and the settlement is not a fill.
    assert sc.details("cancel")[-1]["order_id"] == sc.details("order")[-1]["order_id"]
    assert sc.report["fills"] == 1
    assert sc.broker.positions == {} and sc.broker.open_orders() == []
    assert sc.counters["stale_periods"] == 0  # a delisted symbol going quiet is not stale


def test_daily_loss_limit_closes_everything_and_halts_entries() -> None:
    sc = _entered("risk.max_daily_loss_fraction=0.0005")  # 0.50 USDT of 1000
    sc.mark(1_500, A, 100.0)
    sc.touch(1_600, A)
    assert sc.of("daily_halt") == []
    sc.mark(2_500, A, 99.0)  # unrealized -1.00: equity 998.94 <= 999.50
    sc.touch(3_100, A)
    (halt,) = sc.details("daily_halt")
    assert halt["equity"] == D("998.94") and halt["limit"] == D("999.5")
    assert sc.of("daily_halt")[0].ts_ns == T0 + 3 * S
    (close,) = _closes(sc)
    assert close["reason"] == "daily_loss_limit"
    sc.touch(3_300, A)
    assert sc.details("rejection")[-1] == {"layer": "risk_limits", "reason": "daily_loss_limit"}


# --- many symbols ----------------------------------------------------------------------------


def _busy(sc: Scenario) -> int:
    broker = sc.broker
    entering = broker.pending_entry_symbols() - broker.positions.keys()
    return len(broker.positions) + len(entering)


def test_open_positions_and_entries_in_flight_never_exceed_the_limit() -> None:
    sc = Scenario((*TRADING, "risk.max_open_positions=2", "signals.evaluate_every_ms=1"))
    peak: list[int] = [0]

    def check(s: Scenario) -> None:
        busy = _busy(s)
        assert busy <= 2
        peak[0] = max(peak[0], busy)

    sc.checks.append(check)
    sc.open_market([A, B, C])
    # All three signal within one latency: A and B are in flight when C is evaluated.
    sc.buy_pressure(100, A)
    sc.buy_pressure(110, B)
    sc.buy_pressure(120, C)
    assert [(e.kind, e.symbol) for e in sc.entries if e.kind in ("order", "rejection")] == [
        ("order", A),
        ("order", B),
        ("rejection", C),
    ]
    assert sc.broker.positions == {}  # nothing filled yet: the in-flight entries counted
    for t in range(200, 1_000, 50):
        for i, symbol in enumerate((A, B, C)):
            sc.touch(t + i, symbol)
    assert sorted(sc.broker.positions) == [A, B]
    assert peak[0] == 2
    c_rejections = sc.details("rejection", C)
    assert len(c_rejections) > 5
    assert all(r == {"layer": "risk_limits", "reason": "max_open_positions"} for r in c_rejections)
    assert sc.report["rejections"]["risk_limits"] == len(c_rejections)

    # A takes profit: C may enter, the limit still holds.
    sc.trade(1_000, A, "buy", 101.5, 100)
    assert A not in sc.broker.positions
    sc.touch(1_010, C)
    assert sc.details("order", C)[0]["reason"] == "entry"
    sc.touch(1_020, A)
    assert sc.details("rejection", A)[-1]["reason"] == "max_open_positions"
    sc.touch(1_070, C)
    assert sorted(sc.broker.positions) == [B, C]


# --- money -----------------------------------------------------------------------------------


def test_funding_while_long_with_a_positive_rate_costs_lots_x_multiplier_x_mark_x_rate() -> None:
    sc = _entered()
    sc.mark(300, A, 100.5)
    cash = sc.broker.cash
    sc.funding(400, A, 0.0001)
    cost = LOTS * MULT * D("100.5") * D("0.0001")  # 0.01005
    assert sc.broker.cash == cash - cost
    (funding,) = sc.details("funding", A)
    assert funding == {
        "rate": D("0.0001"),
        "mark_price": D("100.5"),
        "direction": 1,
        "lots": LOTS,
        "payment": -cost,
    }
    assert sc.report["pnl"]["funding"] == -float(cost)  # received is positive
    # funding.end settles nothing; funding for a symbol we do not hold settles nothing.
    sc.funding(500, A, 0.0001, "end")
    sc.funding(600, B, 0.0001)
    assert sc.broker.cash == cash - cost and len(sc.of("funding")) == 1


def test_funding_while_short_with_a_positive_rate_is_received() -> None:
    sc = Scenario(TRADING)
    sc.open_market([A], bids=[(99.99, 100.0), (99.98, 100.0)], asks=[(100.0, 400), (100.01, 400)])
    sc.trade(100, A, "sell", 99.99, 5)
    sc.touch(101, A, 101.0, "sell")
    sc.touch(151, A, 101.0, "sell")
    assert sc.broker.positions[A].direction == -1
    lots = sc.broker.positions[A].lots
    cash = sc.broker.cash
    sc.mark(300, A, 100.0)
    sc.funding(400, A, 0.0002)
    assert sc.broker.cash == cash + lots * MULT * D("100") * D("0.0002")


def _round_trips() -> Scenario:
    """Three closed trades (take-profit win, stop-loss loss, time stop) and a funding fee."""
    sc = _entered("exits.exit_on_reversal=false", "exits.time_stop_s=3")
    sc.trade(300, A, "buy", 101.5, 100)  # take-profit at 101.00: +1.00
    sc.touch(400, A)  # re-entry at 100.00
    sc.touch(450, A)
    sc.l2(600, A, 99.3, "buy", 5_000)
    sc.l2(601, A, 99.99, "buy", 0)
    sc.l2(602, A, 99.98, "buy", 0)  # bid 99.30: stop
    sc.touch(700, A)  # the stop fills at 99.30: -0.70
    sc.l2(800, A, 99.99, "buy", 400)  # the market comes back
    sc.touch(900, A)  # re-entry at 100.00
    sc.touch(950, A)
    sc.mark(960, A, 100.2)
    sc.funding(970, A, 0.0001)
    for t in range(1_400, 4_500, 500):
        sc.touch(t, A)  # time stop at the 4 s tick, filled at 99.99: -0.01
    sc.finish(5_000)
    return sc


def test_report_pnl_and_fees_match_the_journal() -> None:
    sc = _round_trips()
    closes = _closes(sc)
    assert [c["reason"] for c in closes] == ["take_profit", "stop_loss", "time_stop"]
    report = sc.report
    assert report["positions"]["closed"] == 3
    realized = sum((c["realized_pnl"] for c in closes), D(0))
    assert D(repr(report["pnl"]["trading"])) == realized  # gross, before fees and funding
    assert realized == D("1") + D("-0.7") + D("-0.01")
    fill_fees = sum((f["fee"] for f in sc.details("fill")), D(0))
    assert D(repr(report["fees"])) == fill_fees == sc.broker.fees_paid
    assert fill_fees == sum((c["fees"] for c in closes), D(0))  # every fill was closed
    funding = sum((f["payment"] for f in sc.details("funding")), D(0))
    assert funding == -LOTS * MULT * D("100.2") * D("0.0001")
    assert sum((c["net_pnl"] for c in closes), D(0)) == realized - fill_fees + funding
    # pnl.realized is net: start + realized + unrealized == end equity.
    assert D(repr(report["pnl"]["realized"])) == realized - fill_fees + funding
    assert D(repr(report["pnl"]["fees"])) == -fill_fees
    wins = sum(1 for c in closes if c["net_pnl"] > 0)
    assert report["win_rate"] == wins / 3 == 1 / 3
    assert report["equity"]["end"] == float(D("1000") + realized - fill_fees + funding)
    assert report["pnl"]["unrealized"] == 0.0


def test_win_rate_is_none_when_nothing_closed() -> None:
    sc = Scenario(TRADING)
    sc.open_market([A])
    sc.finish(2_000)
    assert sc.report["win_rate"] is None
    assert sc.report["positions"] == {"opened": 0, "closed": 0, "open": 0}
    sc = _entered()  # a position open at the end is not a closed trade
    sc.mark(300, A, 100.3)
    sc.finish(2_000)
    report = sc.report
    assert report["win_rate"] is None
    assert report["positions"] == {"opened": 1, "closed": 0, "open": 1}
    fees = sc.broker.fees_paid
    assert report["pnl"] == {
        "realized": -float(fees),  # the entry's fee is booked; the trade is not closed
        "unrealized": 0.3,
        "trading": 0.0,
        "fees": -float(fees),
        "funding": 0.0,
    }


def test_trading_off_reports_nothing() -> None:
    sc = Scenario(TRADING, trading=False)
    sc.open_market([A])
    sc.buy_pressure(100, A)
    assert sc.report == {}
    assert sc.of("signal") == []


def test_max_drawdown_counts_a_loss_before_the_first_tick() -> None:
    sc = _entered("exits.exit_on_reversal=false")
    sc.l2(300, A, 99.0, "buy", 5_000)
    sc.l2(301, A, 99.99, "buy", 0)
    sc.l2(302, A, 99.98, "buy", 0)  # stop
    sc.touch(400, A, 97.0)  # filled at 99.00: -1.00 - fees
    sc.finish(3_000)
    assert _closes(sc)[0]["net_pnl"] == D("-1.1194")
    end = sc.report["equity"]["end"]
    assert end == pytest.approx(1_000.0 - 1.1194)
    assert sc.report["max_drawdown"] == pytest.approx((1_000.0 - end) / 1_000.0)


# --- determinism -----------------------------------------------------------------------------


def _busy_two_symbols(latency_ms: int = 50) -> Scenario:
    sc = Scenario(
        (
            *_without(TRADING, "paper.latency_ms"),
            f"paper.latency_ms={latency_ms}",
            "exits.time_stop_s=2",
        )
    )
    sc.open_market([A, B])
    sc.buy_pressure(100, A)
    sc.buy_pressure(110, B)
    sc.mark(150, A, 100.1)
    sc.mark(150, B, 100.1)
    for t in range(200, 2_000, 100):
        sc.touch(t, A)
        sc.touch(t + 7, B)
    sc.funding(2_050, A, 0.0001)
    sc.trade(2_100, B, "buy", 101.5, 100)
    sc.l2(2_200, A, 99.9, "buy", 1, skip=1)  # gap on A
    sc.conn(2_300)
    sc.snapshot(2_400, A)
    sc.snapshot(2_400, B)
    for t in range(2_500, 6_000, 300):
        sc.touch(t, A)
        sc.touch(t + 5, B)
    sc.contracts(6_100, contract(A))  # B delisted
    sc.finish(20_000)
    return sc


def test_same_scenario_twice_gives_identical_journal_and_digest() -> None:
    first, second = _busy_two_symbols(), _busy_two_symbols()
    assert len(first.entries) > 30
    kinds = set(first.kinds())
    assert {"order", "fill", "position_close", "funding", "book_lost", "disconnect"} <= kinds
    assert first.lines() == second.lines()
    assert first.journal.digest() == second.journal.digest()
    assert first.counters == second.counters
    assert first.report == second.report
    # And the digest does see a difference.
    assert _busy_two_symbols(latency_ms=120).journal.digest() != first.journal.digest()


def test_journal_times_are_the_run_clock() -> None:
    sc = _busy_two_symbols()
    times = [e.ts_ns for e in sc.entries]
    assert times == sorted(times)
    assert all(T0 <= t <= T0 + 20 * S for t in times)
    assert all(t % MS == 0 for t in times)


# --- delisting edge cases --------------------------------------------------------------------


def test_second_delisting_of_a_relisted_symbol_closes_at_market_first() -> None:
    sc = _entered()
    sc.contracts(500, contract(A, "Closed"))
    sc.touch(1_100, A)  # closed at market ("delisting")
    sc.contracts(2_000, contract(A))  # listed again
    for t in range(2_100, 2_500, 100):
        sc.touch(t, A)  # a new long
    assert A in sc.broker.positions
    sc.contracts(20_000, contract(A, "Closed"))
    for t in range(20_100, 23_000, 400):
        sc.touch(t, A)  # the market is still there
    assert sc.counters["delistings"] == [A, A]
    assert [c["reason"] for c in _closes(sc)] == ["delisting", "delisting"]
    assert sc.of("settlement") == []


def test_entry_in_flight_does_not_open_a_position_on_a_delisted_contract() -> None:
    sc = Scenario(TRADING)
    sc.open_market([A])
    sc.buy_pressure(100, A)  # entry ordered at 101 ms
    sc.contracts(120, contract(A, "Closed"))
    sc.touch(151, A)
    sc.touch(1_100, A)
    assert sc.of("position_open") == []
    assert sc.report["fills"] == 0
