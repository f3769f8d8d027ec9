"""Plausibility limits on what the exchange sends (issue 13 point 3).

A contract entry with numbers no real contract has is refused with a counted reason and
nothing is sized or booked from it; a funding rate beyond the per-interval bound is not
booked. Each test here failed on the code before: a taker rate of -1.0 booked thousands of
USDT of negative fees on the sample, a funding rate of 1e6 booked -147 M USDT, a lot size
of 1.5 was read as 1.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from simulator.recording import RecordingReader, RecordingWriter
from simulator.replay import replay
from tests.helpers import TRADING, Scenario, contract, contract_value
from tests.test_trader import LOTS, _entered
from tradebot.execution.account import FUNDING_RATE_IMPLAUSIBLE
from tradebot.market.contracts import (
    MAX_FEE_RATE,
    MAX_FUNDING_RATE,
    MIN_FEE_RATE,
    ContractTable,
    funding_rate_plausible,
    implausible,
)
from tradebot.report import render_summary

A = "AAAUSDTM"
SAMPLE = Path(__file__).resolve().parents[1] / "recordings" / "sample.msgpack"
BAD_NUMBERS = [0.0, -0.1, math.nan, math.inf, -math.inf]


# --- the contract registry ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("tick_size", v) for v in BAD_NUMBERS]
    + [("multiplier", v) for v in BAD_NUMBERS]
    + [("lot_size", v) for v in (0, -1, 1.5, 2.0, True)]
    + [("max_order_qty", v) for v in (0, -5, 10.5)]
    + [("maker_fee_rate", v) for v in (-0.0011, 0.0101, -1.0, math.nan, math.inf)]
    + [("taker_fee_rate", v) for v in (-1.0, 0.02, 1e6, math.nan, -math.inf)],
)
def test_an_implausible_entry_is_refused_counted_and_unknown(field: str, value: Any) -> None:
    table = ContractTable()
    listed, delisted = table.update([contract_value(**{field: value})], 0)
    assert implausible(contract_value(**{field: value})) == field
    assert table.get("XBTUSDTM") is None and not table.is_open("XBTUSDTM")
    assert table.refused == {f"contract_implausible_{field}": 1}
    assert (listed, delisted) == ([], [])


def test_an_implausible_entry_keeps_the_previous_contract_and_is_no_delisting() -> None:
    table = ContractTable()
    good = contract_value(taker_fee_rate=0.0006)
    table.update([good], 0)
    listed, delisted = table.update([contract_value(taker_fee_rate=-1.0)], 1)
    assert (listed, delisted) == ([], [])
    assert table.get("XBTUSDTM") == good and table.is_open("XBTUSDTM")
    assert table.refused == {"contract_implausible_taker_fee_rate": 1}


def test_a_refused_duplicate_wins_over_a_good_entry_of_the_same_symbol() -> None:
    table = ContractTable()
    table.update([contract_value(), contract_value(multiplier=math.inf)], 0)
    assert table.get("XBTUSDTM") is None


@pytest.mark.parametrize(
    "fields",
    [
        {"maker_fee_rate": MIN_FEE_RATE, "taker_fee_rate": MAX_FEE_RATE},
        {"maker_fee_rate": None, "taker_fee_rate": None},
        {"lot_size": 10, "tick_size": 1e-12, "multiplier": 1e-9},
        {"funding_rate": MAX_FUNDING_RATE},
        {"funding_rate": -MAX_FUNDING_RATE},
    ],
)
def test_plausible_edges_are_accepted(fields: dict[str, Any]) -> None:
    table = ContractTable()
    table.update([contract_value(**fields)], 0)
    assert table.get("XBTUSDTM") == contract_value(**fields)
    assert not table.refused


@pytest.mark.parametrize("rate", [0.1000001, -0.5, 1e6, math.nan, math.inf])
def test_an_implausible_funding_rate_drops_only_that_field(rate: float) -> None:
    table = ContractTable()
    table.update([contract_value(funding_rate=rate)], 0)
    assert table.get("XBTUSDTM") == contract_value(funding_rate=None)
    assert table.refused == {"contract_implausible_funding_rate": 1}
    assert not funding_rate_plausible(rate)


_ANY_NUMBER = hs.one_of(
    hs.floats(allow_nan=True, allow_infinity=True), hs.integers(-(10**20), 10**20)
)


@given(
    tick=_ANY_NUMBER,
    multiplier=_ANY_NUMBER,
    lot=_ANY_NUMBER,
    maker=hs.none() | _ANY_NUMBER,
    taker=hs.none() | _ANY_NUMBER,
    funding=hs.none() | _ANY_NUMBER,
)
def test_whatever_the_numbers_the_table_holds_only_plausible_contracts(
    tick: Any, multiplier: Any, lot: Any, maker: Any, taker: Any, funding: Any
) -> None:
    table = ContractTable()
    c = contract_value(
        tick_size=tick,
        multiplier=multiplier,
        lot_size=lot,
        maker_fee_rate=maker,
        taker_fee_rate=taker,
        funding_rate=funding,
    )
    table.update([c], 0)
    held = table.get("XBTUSDTM")
    if held is None:
        assert sum(table.refused.values()) >= 1
        return
    assert 0 < held.tick_size < math.inf and 0 < held.multiplier < math.inf
    assert type(held.lot_size) is int and held.lot_size > 0
    for rate in (held.maker_fee_rate, held.taker_fee_rate):
        assert rate is None or MIN_FEE_RATE <= rate <= MAX_FEE_RATE
    assert held.funding_rate is None or abs(held.funding_rate) <= MAX_FUNDING_RATE


# --- through the engine: nothing sized or booked --------------------------------------------


def test_a_contract_with_a_negative_taker_rate_is_never_traded() -> None:
    sc = Scenario(TRADING)
    sc.snapshot(0, A)
    sc.contracts(1, contract(A, taker_fee=-1.0))
    sc.buy_pressure(100, A)
    sc.touch(151, A)
    assert not sc.of("order") and not sc.of("fill")
    assert sc.report["fees"] == 0.0
    assert sc.counters["malformed_payloads"] == {"contract_implausible_taker_fee_rate": 1}
    assert sc.engine.market.contracts.get(A) is None


def test_a_later_implausible_fee_leaves_fills_booked_at_the_previous_rate() -> None:
    sc = Scenario(TRADING)
    sc.open_market([A])  # taker 0.06 %
    sc.contracts(50, contract(A, taker_fee=-1.0))
    sc.buy_pressure(100, A)
    sc.touch(151, A)
    (fill,) = sc.details("fill", A)
    assert fill["fee"] == fill["price"] * fill["lots"] * Decimal("0.1") * Decimal("0.0006")
    assert sc.counters["malformed_payloads"] == {"contract_implausible_taker_fee_rate": 1}


def test_a_lot_size_of_one_and_a_half_is_not_read_as_one() -> None:
    sc = Scenario(TRADING)
    sc.snapshot(0, A)
    sc.contracts(1, contract(A, lot_size=1.5))  # type: ignore[arg-type]
    assert sc.engine.market.contracts.get(A) is None
    assert sc.counters["malformed_payloads"] == {"contract_malformed": 1}
    sc.buy_pressure(100, A)
    sc.touch(151, A)
    assert not sc.of("order")


@pytest.mark.parametrize("rate", [1e6, -1e6, MAX_FUNDING_RATE * 1.0001])
def test_an_implausible_funding_rate_is_refused_and_not_booked(rate: float) -> None:
    sc = _entered()
    sc.mark(300, A, 100.0)
    cash = sc.broker.cash
    sc.funding(400, A, rate)
    assert sc.broker.cash == cash
    assert not sc.of("funding")
    (refused,) = sc.details("funding_refused", A)
    assert refused["reason"] == FUNDING_RATE_IMPLAUSIBLE
    assert sc.report["pnl"]["funding"] == 0.0
    assert sc.counters["malformed_payloads"] == {FUNDING_RATE_IMPLAUSIBLE: 1}


def test_funding_at_the_bound_is_booked() -> None:
    sc = _entered()
    sc.mark(300, A, 100.0)
    cash = sc.broker.cash
    sc.funding(400, A, -MAX_FUNDING_RATE)  # a short pays, a long receives
    assert sc.broker.cash == cash + LOTS * Decimal("0.1") * Decimal("100") * Decimal("0.1")
    assert not sc.of("funding_refused")


# --- in the replay report and summary, beside the other refused payloads -----------------------


def _hostile_copy(path: Path, *, taker_fee: float | None, funding: float | None) -> Path:
    """The sample with every contract's taker rate and/or every funding.begin rate replaced."""
    with RecordingReader(SAMPLE) as reader:
        header = reader.header
        with RecordingWriter.create(
            path, created_ns=header.created_ns, source="hostile copy of the sample"
        ) as writer:
            for recv_ns, kind, payload, conn in reader:
                if kind == "rest" and payload.get("path") == "/api/v1/contracts/active":
                    body = json.loads(payload["body"])
                    for entry in body["data"]:
                        if taker_fee is not None:
                            entry["takerFeeRate"] = taker_fee
                    payload = {**payload, "body": json.dumps(body)}
                elif kind == "ws" and funding is not None and "funding.begin" in str(payload):
                    msg = json.loads(payload)
                    msg["data"]["fundingRate"] = funding
                    payload = json.dumps(msg)
                writer.write(recv_ns, kind, payload, conn)
    return path


def test_the_report_counts_implausible_fees_and_books_none(tmp_path: Path) -> None:
    report = replay(_hostile_copy(tmp_path / "fees.msgpack", taker_fee=-1.0, funding=None))
    refused = report["malformed"]["contract_implausible_taker_fee_rate"]
    assert refused > 0
    assert report["orders"] == 0 and report["fees"] == 0.0
    assert f"contract_implausible_taker_fee_rate {refused:,}" in render_summary(report)


def test_the_report_counts_an_implausible_funding_rate_and_books_none(tmp_path: Path) -> None:
    report = replay(_hostile_copy(tmp_path / "funding.msgpack", taker_fee=None, funding=1e6))
    assert report["malformed"][FUNDING_RATE_IMPLAUSIBLE] == 1
    assert report["pnl"]["funding"] == 0.0
    assert abs(report["equity"]["end"] - report["equity"]["start"]) < 10.0
    assert f"{FUNDING_RATE_IMPLAUSIBLE} 1" in render_summary(report)
