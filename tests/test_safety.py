"""Regression tests for money-safety problems found in review: each would lose money or
trust if it came back."""

from __future__ import annotations

import decimal
from decimal import Decimal as D
from pathlib import Path

from simulator.replay import replay
from tests.helpers import TRADING, Scenario, contract, contract_value, ns
from tests.test_trader import LOTS, A, B, _entered
from tradebot.engine import MAX_CATCHUP_TICKS
from tradebot.market.contracts import ContractTable

SAMPLE = Path(__file__).resolve().parents[1] / "recordings" / "sample.msgpack"


def test_a_tick_size_change_mid_position_books_no_fake_pnl() -> None:
    sc = _entered()  # long 10 lots at 100.00 with tick 0.01
    sc.contracts(250, contract(A, tick_size=0.001))
    sc.ticker(300, A, 99.99, 100.00)
    sc.ticker(302, A, 99.49, 99.50)  # -0.51 %: stop-loss
    sc.ticker(400, A, 99.49, 99.50)
    (close,) = sc.details("position_close")
    exit_price = close["exit_price"]
    assert D("99") < exit_price < D("100")  # a losing exit stays a loss
    assert close["realized_pnl"] == (exit_price - 100) * LOTS * D("0.1")
    assert sc.broker.cash < D(1000)


def test_an_unreadable_contract_entry_is_not_a_delisting() -> None:
    sc = _entered()
    bad = contract(A, tickSize=None)
    sc.contracts(250, bad, contract(B))
    assert sc.counters["delistings"] == []
    assert A in sc.broker.positions
    assert sc.counters["malformed_payloads"]["contract_malformed"] == 1


def test_an_empty_contracts_answer_is_ignored() -> None:
    table = ContractTable()
    assert table.update([], 1) == ([], [])  # not a baseline
    sc = _entered()
    sc.contracts(250)
    assert sc.counters["delistings"] == [] and sc.counters["listings"] == []


def test_a_clock_jump_runs_one_tick_not_one_per_second() -> None:
    sc = Scenario(TRADING)
    sc.open_market([A])
    day_ms = 86_400_000
    sc.touch(day_ms, A)  # the recorder's clock stepped forward a day
    assert sc.engine.clock_jumps == 1
    assert sc.engine.stage_latency["tick"].count < MAX_CATCHUP_TICKS
    sc.touch(500, A)  # and back again: ticks re-anchor instead of stopping for a day
    assert sc.engine.clock_jumps == 2
    assert sc.engine.next_tick_ns == ns(1_000)


def test_a_market_order_without_a_price_expires() -> None:
    sc = Scenario((*TRADING, "paper.order_timeout_ms=2000"))
    sc.open_market([A, B])
    sc.buy_pressure(100, A)  # the entry is ordered; then A's market data is lost
    sc.conn(120)
    assert [d["reason"] for d in sc.details("order", A)] == ["entry"]
    for t in range(1_000, 4_001, 1_000):
        sc.touch(t, B)
    (cancel,) = sc.details("cancel", A)
    assert cancel["why"] == "expired"
    assert sc.broker.open_orders(A) == []


def test_funding_is_settled_once_per_funding_time() -> None:
    sc = _entered()
    cash = sc.broker.cash
    sc.funding(300, A, 0.0001)
    sc.funding(320, A, 0.0001)  # the same announcement again (a second connection)
    assert len(sc.details("funding", A)) == 1
    assert sc.broker.cash < cash


def test_a_crossed_quote_does_not_trigger_the_stop() -> None:
    sc = _entered()
    sc.ticker(300, A, 99.0, 98.0)  # crossed: bid above ask
    assert [d["reason"] for d in sc.details("order")] == ["entry", "take_profit"]


def test_digest_does_not_depend_on_the_callers_decimal_context() -> None:
    base = replay(SAMPLE)["digest"]
    with decimal.localcontext() as ctx:
        ctx.prec = 6
        assert replay(SAMPLE)["digest"] == base


def test_a_truncated_contracts_answer_delists_nothing() -> None:
    table = ContractTable()
    many = [contract_value(symbol=f"S{i:02d}USDTM") for i in range(12)]
    table.update(many, 1)
    assert table.update(many[:5], 2) == ([], [])  # 7 of 12 missing: truncated
    assert table.ignored == 1 and not table.delisted
    assert table.update(many[:10], 3) == ([], ["S10USDTM", "S11USDTM"])  # two real ones
