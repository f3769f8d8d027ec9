"""Warm start (issue 12 point 11): the volume baseline starts from the contract's 24 h
turnover until the rolling window has filled, so a session trades within its first minute."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from simulator.recording import RecordingReader
from simulator.replay import ReplayOptions, replay
from simulator.synth import generate
from tests.test_quality import S, make_contract, make_state, make_tracker
from tests.test_signals import verdict
from tradebot.config import Config, QualityConfig, SignalConfig, load_config
from tradebot.decide.signals import compute_signal, volume_regime, warm_volume
from tradebot.decide.tracker import DAY_S, WARM_MIN_S, warm_rate
from tradebot.journal import JournalEntry
from tradebot.kucoin.events import Side

T0 = 1_700_000_000 * S

# --- the warm rate ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "turnover", [None, 0.0, -1.0, math.nan, math.inf, -math.inf, 1e15 * 1.0001]
)
def test_an_unusable_24h_turnover_gives_no_warm_rate(turnover: float | None) -> None:
    assert warm_rate(turnover) == 0.0


def test_the_warm_rate_is_the_24h_turnover_per_second() -> None:
    assert warm_rate(86_400_000.0) == 1_000.0
    assert warm_rate(1e15) == 1e15 / DAY_S


# --- the tracker's warm reads -------------------------------------------------------------


def test_warm_reads_fill_the_unobserved_window_at_the_24h_rate() -> None:
    tr = make_tracker()  # volume window 900 s in 60 s buckets
    tr.on_sequence(T0, 1)  # first message: second 0
    tr.on_trade(T0 + 5 * S, Side.BUY, 500.0)
    now = T0 + 30 * S  # 31 seconds observed
    assert tr.is_warm(now, 10.0)
    # latest: the 500 of the last 31 s, as a rate per 60 s; baseline: 500 observed plus
    # 869 unobserved seconds at 10 USDT/s, per 60 s of the 900 s window.
    assert tr.volume(now, 10.0) == (500.0 * 60 / 31, (500.0 + 10.0 * 869) * 60 / 900)
    assert tr.signal_reads(now, 10.0) == (
        500.0 * 60 / 31,
        (500.0 + 10.0 * 869) * 60 / 900,
        31,
        1.0,
        True,
    )
    # Without a rate: the rolling figures, as before.
    assert tr.volume(now) == (500.0, 500.0 * 60 / 31)
    assert not tr.is_warm(now, 0.0)


def test_warm_reads_take_a_full_bucket_of_latest_once_a_bucket_is_observed() -> None:
    tr = make_tracker()
    tr.on_sequence(T0, 1)
    tr.on_trade(T0 + 10 * S, Side.SELL, 100.0)
    tr.on_trade(T0 + 100 * S, Side.BUY, 300.0)
    now = T0 + 119 * S  # 120 s observed; latest is seconds 60..119
    assert tr.volume(now, 2.0) == (300.0, (400.0 + 2.0 * 780) * 60 / 900)


def test_warm_reads_need_warm_min_s_observed() -> None:
    tr = make_tracker()
    tr.on_sequence(T0, 1)
    tr.on_trade(T0 + 2 * S, Side.BUY, 500.0)
    early = T0 + (WARM_MIN_S - 2) * S  # WARM_MIN_S - 1 seconds observed
    assert not tr.is_warm(early, 10.0)
    assert tr.volume(early, 10.0) == tr.volume(early)
    assert tr.is_warm(early + S, 10.0)


def test_a_filled_window_ignores_the_warm_rate_and_the_two_meet_there() -> None:
    tr = make_tracker()
    tr.on_sequence(T0, 1)
    for k in range(899):
        tr.on_trade(T0 + k * S, Side.BUY, 7.0)  # exactly 7 USDT a second
    last_warm = T0 + 898 * S  # 899 s observed
    assert tr.is_warm(last_warm, 7.0)
    # At the 24 h rate the warm baseline is the rolling one: no jump when the window fills.
    assert tr.volume(last_warm, 7.0) == pytest.approx((420.0, 420.0), rel=1e-12)
    filled = T0 + 899 * S
    tr.on_trade(filled, Side.BUY, 7.0)
    assert not tr.is_warm(filled, 7.0)
    assert tr.volume(filled, 7.0) == tr.volume(filled) == (420.0, 420.0)


def test_an_absurd_warm_rate_is_not_used() -> None:
    tr = make_tracker()
    tr.on_sequence(T0, 1)
    now = T0 + 30 * S
    for rate in (math.inf, math.nan, -1.0, 2e15):
        assert not tr.is_warm(now, rate)
        assert tr.signal_reads(now, rate)[4] is False


# --- the signal's volume regime -------------------------------------------------------


def fresh_tracker_with(per_s: float, seconds: int) -> Any:
    tr = make_tracker()
    tr.on_sequence(T0, 1)
    for k in range(seconds):
        tr.on_trade(T0 + k * S, Side.BUY if k % 2 else Side.SELL, per_s)
    return tr


def regime(tr: Any, now: int, *, turnover: float | None, inverse: bool = False) -> str:
    st_ = make_state(now)
    st_.turnover_24h = turnover
    contract = make_contract(is_inverse=inverse)
    sig = compute_signal(st_, tr, verdict(), contract, None, now, SignalConfig(), QualityConfig())
    return sig.volume_regime


@pytest.mark.parametrize(
    ("per_s", "expected"),
    [(10.0, "moderate"), (30.0, "high"), (3.0, "low")],  # the 24 h rate is 10 USDT/s
)
def test_a_fresh_symbol_is_judged_against_its_24h_turnover(per_s: float, expected: str) -> None:
    tr = fresh_tracker_with(per_s, 30)
    now = T0 + 29 * S  # 30 s into the session
    assert regime(tr, now, turnover=864_000.0) == expected
    # Without a 24 h figure, or on an inverse contract (turnover in the base currency), a
    # fresh symbol is still warming up: low.
    assert regime(tr, now, turnover=None) == "low"
    assert regime(tr, now, turnover=864_000.0, inverse=True) == "low"
    assert warm_volume(make_state(now), None) == 0.0


def test_the_regime_helper_agrees_with_compute_signal_when_warm() -> None:
    assert volume_regime(500.0, 100.0, 30, 60, SignalConfig(), warm=True) == "high"
    assert volume_regime(500.0, 100.0, 30, 60, SignalConfig()) == "low"
    assert volume_regime(500.0, 0.0, 30, 60, SignalConfig(), warm=True) == "low"


# --- a short session trades within its first minute ----------------------------------------


def _first_order_s(path: Path, config: Config | None) -> tuple[list[float], dict[str, Any]]:
    """Seconds from the recording's first record to each order, and the report."""
    with RecordingReader(path) as reader:
        start_ns = next(iter(reader))[0]
    entries: list[JournalEntry] = []
    report = replay(path, config, ReplayOptions(sink=entries.append))
    orders = [(e.ts_ns - start_ns) / 1e9 for e in entries if e.kind == "order"]
    return orders, report


def test_a_100_second_recording_trades_within_its_first_minute(tmp_path: Path) -> None:
    path = tmp_path / "short.msgpack"
    generate(path, symbols=5, minutes=100 / 60, seed=1, rate=4.0)
    # The synthetic session puts a funding settlement at 60 % of its length; the default
    # 60 s blackout around it would cover all 100 seconds, so it is switched off here.
    config = load_config(overrides=["validation.funding_blackout_s=0"])
    orders, report = _first_order_s(path, config)
    assert orders and orders[0] < 60.0
    assert report["fills"] > 0 and report["positions"]["opened"] > 0


def test_a_three_minute_recording_trades_before_its_funding_window(tmp_path: Path) -> None:
    # Default config: funding at 108 s, blackout 48..168 s. Before the warm start the
    # first 120 s were "low volume", so this session never traded at all.
    path = tmp_path / "three.msgpack"
    generate(path, symbols=5, minutes=3.0, seed=1, rate=4.0)
    orders, report = _first_order_s(path, None)
    assert orders and orders[0] < 48.0
    assert report["fills"] > 0
