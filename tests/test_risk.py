"""Tests for tradebot.decide.risk, alone and driven together with the paper broker."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.helpers import contract_value
from tradebot.config import PaperConfig, RiskConfig
from tradebot.decide.risk import (
    DAILY_LOSS_LIMIT,
    MAX_OPEN_POSITIONS,
    MIN_BALANCE,
    NS_PER_DAY,
    POSITION_EXISTS,
    RiskManager,
    utc_day,
)
from tradebot.execution.paper import OrderRequest, OrderType, PaperBroker
from tradebot.journal import Journal, JournalEntry
from tradebot.kucoin.events import Contract, Side
from tradebot.market.state import SymbolState

D = Decimal
DAY0 = 19_783  # 2024-03-01
T0 = DAY0 * NS_PER_DAY
HOUR = 3_600_000_000_000


def make_contract(symbol: str = "XBTUSDTM", **overrides: Any) -> Contract:
    fields: dict[str, Any] = {"multiplier": 0.001, "multiplier_text": "0.001", **overrides}
    return contract_value(symbol=symbol, **fields)


def make_risk(**cfg: Any) -> tuple[RiskManager, list[JournalEntry]]:
    entries: list[JournalEntry] = []
    return RiskManager(RiskConfig(**cfg), Journal(sink=entries.append)), entries


def details(entries: list[JournalEntry], kind: str) -> list[dict[str, Any]]:
    return [json.loads(e.detail) for e in entries if e.kind == kind]


def is_halted(risk: RiskManager) -> bool:
    return risk.halted  # read through a call so mypy does not narrow the attribute


def day_of(risk: RiskManager) -> int | None:
    return risk.day


# --- sizing ------------------------------------------------------------------------------


def test_size_hand_computed() -> None:
    risk, _ = make_risk(max_position_fraction=0.2)
    xbt = make_contract()  # one lot = 0.001 XBT
    # budget = 1000 x 0.2 x 0.5 = 100; one lot at 30000 = 30 -> 3 lots (90 <= 100 < 120)
    assert risk.size(xbt, 30_000.0, 0.5, D("1000")) == 3
    # full confidence: 200 / 30 -> 6 lots
    assert risk.size(xbt, 30_000.0, 1.0, D("1000")) == 6
    assert risk.size(xbt, 30_000.0, 7.0, D("1000")) == 6  # confidence clamped to 1
    assert risk.size(xbt, 30_000.0, -0.5, D("1000")) == 0
    assert risk.size(xbt, 30_000.0, float("nan"), D("1000")) == 0
    # not even one lot fits: 250 > 200
    assert risk.size(xbt, 250_000.0, 1.0, D("1000")) == 0
    assert risk.size(xbt, 0.0, 1.0, D("1000")) == 0
    assert risk.size(xbt, float("inf"), 1.0, D("1000")) == 0
    assert risk.size(xbt, 30_000.0, 1.0, D("0")) == 0
    assert risk.size(xbt, 30_000.0, 1.0, D("-5")) == 0


def test_size_respects_lot_size_and_max_order_qty() -> None:
    risk, _ = make_risk(max_position_fraction=0.5)
    # budget 500; one lot = 1 x 20.0 = 20 -> 25 lots, in lots of 10 -> 20
    tens = make_contract("TENUSDTM", multiplier=1.0, multiplier_text="1", lot_size=10)
    assert risk.size(tens, 20.0, 1.0, D("1000")) == 20
    assert risk.size(tens, 60.0, 1.0, D("1000")) == 0  # 8.3 lots: not one lot of 10
    capped = make_contract("CAPUSDTM", multiplier=1.0, multiplier_text="1", max_order_qty=7)
    assert risk.size(capped, 20.0, 1.0, D("1000")) == 7
    tens_capped = make_contract(
        "TCAPUSDTM", multiplier=1.0, multiplier_text="1", lot_size=10, max_order_qty=15
    )
    assert risk.size(tens_capped, 1.0, 1.0, D("1000")) == 10
    inverse = make_contract("XBTUSDM", is_inverse=True, multiplier=1.0, multiplier_text="1")
    assert risk.size(inverse, 30_000.0, 1.0, D("1000")) == 0


def test_size_is_exact_at_the_boundary() -> None:
    risk, _ = make_risk(max_position_fraction=0.2)
    ten = make_contract("TENTH", multiplier=0.1, multiplier_text="0.1")
    # budget exactly 200; one lot = 10.0: exactly 20 lots fit
    assert risk.size(ten, 100.0, 1.0, D("1000")) == 20
    # budget 3.5 x 0.2 = 0.7; one lot = 0.1: 7 lots (float division says 6.999...)
    penny = make_contract("PENNY", multiplier=1.0, multiplier_text="1")
    assert 0.7 / 0.1 < 7
    assert risk.size(penny, 0.1, 1.0, D("3.5")) == 7
    # a float price a hair off the tick is taken at its tick
    assert risk.size(ten, 100.00000000001, 1.0, D("1000")) == 20


def _reference_size(
    fraction: float, contract: Contract, price: float, confidence: float, equity: Decimal
) -> int:
    """`RiskManager.size` as first written, with Fraction objects (the oracle)."""
    if contract.is_inverse or not (price > 0.0 and math.isfinite(price)):
        return 0
    if not equity.is_finite() or equity <= 0:
        return 0
    if not confidence > 0.0:
        return 0
    confidence = min(confidence, 1.0)
    in_ticks = price / contract.tick_size
    if not math.isfinite(in_ticks):  # a price so large it overflows in ticks
        return 0
    ticks = round(in_ticks)
    if ticks <= 0:
        return 0
    per_lot = (
        ticks
        * Fraction(Decimal(contract.tick_size_text))
        * Fraction(Decimal(contract.multiplier_text))
    )
    budget = Fraction(equity) * Fraction(D(repr(fraction))) * Fraction(Decimal(repr(confidence)))
    lot = contract.lot_size
    lots = int(budget // per_lot) // lot * lot
    cap = contract.max_order_qty // lot * lot
    return max(0, min(lots, cap))


SIZING_CONTRACTS = [
    make_contract(),
    make_contract("TENTH", multiplier=0.1, multiplier_text="0.1"),
    make_contract(
        "PENNY", multiplier=1.0, multiplier_text="1", tick_size=0.01, tick_size_text="0.01"
    ),
    make_contract("TENS", multiplier=1.0, multiplier_text="1", lot_size=10, max_order_qty=15),
    make_contract(
        "ODD", multiplier=0.3, multiplier_text="0.3", tick_size=0.05, tick_size_text="0.05"
    ),
    make_contract("BIG", multiplier=10.0, multiplier_text="10", tick_size=5.0, tick_size_text="5"),
    make_contract("INV", is_inverse=True, multiplier=1.0, multiplier_text="1"),
]


@given(
    fraction=st.floats(0.0, 1.0),
    index=st.integers(0, len(SIZING_CONTRACTS) - 1),
    price=st.floats(allow_nan=True, allow_infinity=True) | st.floats(1e-3, 1e6),
    confidence=st.floats(allow_nan=True, allow_infinity=True) | st.floats(0.0, 1.0),
    equity=st.decimals(allow_nan=True, allow_infinity=True)
    | st.decimals(min_value=0, max_value=10**7, places=4),
)
def test_size_matches_the_fraction_formula(
    fraction: float, index: int, price: float, confidence: float, equity: Decimal
) -> None:
    risk, _ = make_risk(max_position_fraction=fraction)
    contract = SIZING_CONTRACTS[index]
    expected = _reference_size(fraction, contract, price, confidence, equity)
    assert risk.size(contract, price, confidence, equity) == expected
    assert risk.size(contract, price, confidence, equity) == expected  # cached per contract


# --- entry checks ----------------------------------------------------------------------------


def test_check_entry_reasons() -> None:
    risk, _ = make_risk(max_open_positions=2, min_balance_usdt=50.0, max_daily_loss_fraction=0.05)
    equity = D("1000")
    assert risk.check_entry(T0, equity, equity, 0, False) is None
    assert risk.check_entry(T0, equity, equity, 1, False) is None
    assert risk.check_entry(T0, equity, equity, 2, False) == MAX_OPEN_POSITIONS
    assert risk.check_entry(T0, equity, equity, 1, True) == POSITION_EXISTS
    assert risk.check_entry(T0, equity, D("49.99"), 0, False) == MIN_BALANCE
    assert risk.check_entry(T0, equity, D("50"), 0, False) is None
    assert risk.check_entry(T0, D("950"), D("950"), 0, False) == DAILY_LOSS_LIMIT
    assert risk.halted
    # the daily limit wins over everything else
    assert risk.check_entry(T0, D("1000"), D("1"), 5, True) == DAILY_LOSS_LIMIT


def test_zero_max_open_positions_blocks_every_entry() -> None:
    risk, _ = make_risk(max_open_positions=0)
    assert risk.check_entry(T0, D("1000"), D("1000"), 0, False) == MAX_OPEN_POSITIONS


def test_daily_loss_latches_and_resets_on_the_next_utc_day() -> None:
    risk, entries = make_risk(max_daily_loss_fraction=0.05)
    risk.on_clock(T0 + HOUR, D("1000"))
    assert risk.start_of_day_equity == D("1000")
    assert not risk.daily_loss_hit(D("950.01"))
    assert not is_halted(risk)
    assert risk.daily_loss_hit(D("950"))  # 1000 x (1 - 0.05): the limit itself counts
    assert is_halted(risk)
    assert risk.daily_loss_hit(D("1200"))  # latched for the rest of the day
    risk.on_clock(T0 + 23 * HOUR, D("1100"))
    assert risk.check_entry(T0 + 23 * HOUR, D("1100"), D("1100"), 0, False) == DAILY_LOSS_LIMIT
    assert details(entries, "daily_halt") == [
        {"day": "2024-03-01", "start_equity": 1000, "equity": 950, "limit": 950}
    ]
    # a new UTC day: the halt lifts, the day starts at the equity now
    risk.on_clock(T0 + NS_PER_DAY, D("960"))
    assert not is_halted(risk)
    assert risk.start_of_day_equity == D("960")
    assert details(entries, "daily_pnl") == [
        {"day": "2024-03-01", "start_equity": 1000, "end_equity": 960, "pnl": -40}
    ]
    assert risk.check_entry(T0 + NS_PER_DAY + 1, D("960"), D("960"), 0, False) is None
    assert not risk.daily_loss_hit(D("912.01"))
    assert risk.daily_loss_hit(D("912"))  # 960 x 0.95
    assert len(details(entries, "daily_halt")) == 2


def test_day_boundaries_and_clock_going_backwards() -> None:
    risk, entries = make_risk()
    assert utc_day(0) == "1970-01-01" and utc_day(DAY0) == "2024-03-01"
    assert day_of(risk) is None
    assert not risk.daily_loss_hit(D("0"))  # no day started: no baseline
    risk.on_clock(T0 + NS_PER_DAY - 1, D("1000"))
    assert risk.day == DAY0
    risk.on_clock(T0, D("500"))  # earlier in the same day: nothing changes
    risk.on_clock(T0 - 1, D("500"))  # the day before: ignored
    assert risk.day == DAY0 and risk.start_of_day_equity == D("1000")
    risk.on_clock(T0 + 3 * NS_PER_DAY, D("1010"))  # days without events: one daily_pnl
    assert risk.day == DAY0 + 3
    assert details(entries, "daily_pnl") == [
        {"day": "2024-03-01", "start_equity": 1000, "end_equity": 1010, "pnl": 10}
    ]


@given(st.integers(-719_162, 2_932_896))  # 0001-01-01 .. 9999-12-31
def test_utc_day_matches_the_calendar(day: int) -> None:
    assert utc_day(day) == (date(1970, 1, 1) + timedelta(days=day)).isoformat()


def test_utc_day_edges() -> None:
    for day in (0, -1, 59, 60, 10_956, 11_016, 11_017, 19_782, 19_783, 2_932_896):
        assert utc_day(day) == (date(1970, 1, 1) + timedelta(days=day)).isoformat()


# --- the engine's loop, with random markets -------------------------------------------------------


@dataclass(frozen=True)
class Market:
    contract: Contract
    base_price: float


MARKETS = [
    Market(make_contract("XBTUSDTM"), 30_000.0),
    Market(
        make_contract(
            "DOGEUSDTM",
            multiplier=10.0,
            multiplier_text="10",
            tick_size=0.0001,
            tick_size_text="0.0001",
        ),
        0.5,
    ),
    Market(
        make_contract(
            "SOLUSDTM",
            multiplier=1.0,
            multiplier_text="1",
            tick_size=0.01,
            tick_size_text="0.01",
            lot_size=10,
            max_order_qty=500,
        ),
        20.0,
    ),
]

factor = st.floats(0.5, 2.0)
market = st.integers(0, len(MARKETS) - 1)
entry = st.tuples(
    st.just("entry"),
    market,
    st.sampled_from([Side.BUY, Side.SELL]),
    st.floats(-0.5, 1.5, allow_nan=False),
    factor,
)
step = st.one_of(
    entry,
    entry,
    st.tuples(st.just("move"), market, factor),
    st.tuples(st.just("exit"), market, factor),
    st.tuples(st.just("funding"), market, st.floats(-0.003, 0.003)),
    st.tuples(st.just("wait"), st.integers(0, 2 * 86_400)),
)


def on_tick(price: float, tick: float) -> float:
    return round(price / tick) * tick


@settings(max_examples=300, deadline=None)
@given(
    fraction=st.floats(0.01, 1.0),
    daily_loss=st.floats(0.001, 0.3),
    max_open=st.integers(0, 4),
    min_balance=st.floats(0.0, 1_100.0),
    fee=st.floats(0.0, 0.002),
    steps=st.lists(step, min_size=5, max_size=60),
)
def test_engine_loop_never_breaks_a_limit(
    fraction: float,
    daily_loss: float,
    max_open: int,
    min_balance: float,
    fee: float,
    steps: list[tuple[Any, ...]],
) -> None:
    journal = Journal()
    risk = RiskManager(
        RiskConfig(
            max_position_fraction=fraction,
            max_daily_loss_fraction=daily_loss,
            max_open_positions=max_open,
            min_balance_usdt=min_balance,
        ),
        journal,
    )
    broker = PaperBroker(
        PaperConfig(
            starting_equity_usdt=1_000.0, taker_fee_rate=fee, use_contract_fees=False, latency_ms=0
        ),
        journal,
    )
    states = {m.contract.symbol: SymbolState(m.contract.symbol) for m in MARKETS}
    now = T0 + 12 * HOUR
    day_start: dict[int, Decimal] = {}
    hit_days: set[int] = set()
    keep = 1 - D(repr(daily_loss))

    def observe() -> Decimal:
        """What the engine does on every event: advance the risk clock, check the daily loss."""
        equity = broker.equity()
        risk.on_clock(now, equity)
        risk.daily_loss_hit(equity)
        day = now // NS_PER_DAY
        start = day_start.setdefault(day, equity)
        if equity <= start * keep:
            hit_days.add(day)
            event("daily loss limit hit")
        return equity

    def quote(m: Market, price: float) -> None:
        tick = m.contract.tick_size
        st_ = states[m.contract.symbol]
        st_.bid = st_.ask = on_tick(price, tick)
        st_.bid_size = st_.ask_size = 1e9

    observe()
    for action in steps:
        kind = action[0]
        if kind == "wait":
            now += action[1] * 1_000_000_000
            observe()
            continue
        m = MARKETS[action[1]]
        symbol, contract = m.contract.symbol, m.contract
        if kind == "move":
            price = on_tick(m.base_price * action[2], contract.tick_size)
            broker.mark(symbol, price)
            observe()
        elif kind == "funding":
            broker.on_funding(symbol, action[2], m.base_price, now)
            observe()
        elif kind == "exit":
            pos = broker.positions.get(symbol)
            if pos is None:
                continue
            quote(m, m.base_price * action[2])
            req = OrderRequest(
                symbol,
                Side(-pos.direction),
                pos.lots,
                OrderType.MARKET,
                "stop_loss",
                reduce_only=True,
            )
            assert broker.submit(req, contract, now) is not None
            broker.on_book(states[symbol], contract, now)
            assert symbol not in broker.positions
            observe()
        else:
            _, _, side, confidence, price_factor = action
            price = on_tick(m.base_price * price_factor, contract.tick_size)
            broker.mark(symbol, price)
            equity = observe()
            cash = broker.cash
            open_now = len(broker.positions)
            has = symbol in broker.positions
            reason = risk.check_entry(now, equity, cash, open_now, has)
            expected = (
                DAILY_LOSS_LIMIT
                if now // NS_PER_DAY in hit_days
                else MIN_BALANCE
                if cash < D(repr(min_balance))
                else MAX_OPEN_POSITIONS
                if open_now >= max_open
                else POSITION_EXISTS
                if has
                else None
            )
            assert reason == expected
            event(f"entry check: {reason or 'allowed'}")
            if reason is not None:
                continue
            lots = risk.size(contract, price, confidence, equity)
            if lots == 0:
                continue
            quote(m, price)
            req = OrderRequest(symbol, side, lots, OrderType.MARKET, "entry")
            assert broker.submit(req, contract, now) is not None
            event("entry filled")
            fills = broker.on_book(states[symbol], contract, now)
            assert sum(f.lots for f in fills) == lots
            pos = broker.positions[symbol]
            entry_notional = pos.lots * D(contract.multiplier_text) * pos.entry_price
            assert entry_notional <= equity * D(repr(fraction))
            assert entry_notional <= equity * D(repr(fraction)) * D(repr(max(confidence, 0.0)))
            assert len(broker.positions) <= max_open
            observe()
        assert len(broker.positions) <= max_open
    assert broker.cash == (D("1000") + broker.realized_pnl - broker.fees_paid + broker.funding)


def test_close_day_journals_the_partial_day() -> None:
    risk, rows = make_risk()
    risk.on_clock(HOUR, D("1000"))
    risk.close_day(2 * HOUR, D("990"))
    (row,) = [e for e in rows if e.kind == "daily_pnl"]
    assert json.loads(row.detail) == {
        "day": "1970-01-01",
        "start_equity": 1000,
        "end_equity": 990,
        "pnl": -10,
        "partial": True,
    }


def test_size_of_an_absurd_price_is_zero_not_an_overflow() -> None:
    risk, _ = make_risk()
    assert risk.size(make_contract(), 1.797e307, 1.0, D("1000")) == 0
