"""Tests for tradebot.decide.signals: regimes, the direction score, type, confidence."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.test_quality import MS, SYMBOL, S, make_contract, make_state, make_table, make_tracker
from tradebot.config import QualityConfig, SignalConfig
from tradebot.decide.quality import QualityVerdict, assess
from tradebot.decide.signals import (
    Signal,
    SignalType,
    compute_signal,
    spread_regime,
    volume_regime,
)
from tradebot.decide.tracker import SymbolTracker
from tradebot.kucoin.events import Contract, Side
from tradebot.market.state import SymbolState

T0 = 1_700_000_000 * S
NOW = T0 + 900 * S


def verdict(
    *,
    spread_bps: float = 5.0,
    liquidity_usdt: float = 10_000.0,
    completeness: float = 1.0,
    confidence_factor: float = 1.0,
) -> QualityVerdict:
    return QualityVerdict(
        tradable=True,
        tier="ok",
        reasons=(),
        confidence_factor=confidence_factor,
        completeness=completeness,
        spread_bps=spread_bps,
        liquidity_usdt=liquidity_usdt,
    )


def book_state(bid_size: float, ask_size: float) -> SymbolState:
    """One level a side: the top-5 imbalance is (bid - ask) / (bid + ask)."""
    return make_state(NOW, [(100.0, bid_size)], [(100.05, ask_size)])


def busy_tracker() -> SymbolTracker:
    """Observed for the whole window, with a moderate volume ratio and no momentum."""
    tr = make_tracker()
    tr.on_sequence(T0, 1)
    for k in range(15):  # 1000 USDT per minute, buys and sells equal
        tr.on_trade(T0 + (k * 60 + 30) * S, Side.BUY, 500.0)
        tr.on_trade(T0 + (k * 60 + 31) * S, Side.SELL, 500.0)
    return tr


def signal(
    st_: SymbolState,
    tracker: SymbolTracker,
    v: QualityVerdict | None = None,
    *,
    contract: Contract | None = None,
    listed_at_ns: int | None = None,
    now_ns: int = NOW,
    quality: QualityConfig | None = None,
    **cfg: float,
) -> Signal:
    return compute_signal(
        st_,
        tracker,
        verdict() if v is None else v,
        contract,
        listed_at_ns,
        now_ns,
        SignalConfig(**cfg),  # type: ignore[arg-type]
        QualityConfig() if quality is None else quality,
    )


# --- the worked example of docs/signals.md ---------------------------------------------


def test_worked_example() -> None:
    tr = make_tracker()  # completeness 60 s, volume 900 s in 60 s buckets, momentum 60 s
    tr.on_sequence(T0, 1)
    tr.on_trade(T0 + 100 * S, Side.SELL, 50_000.0)
    tr.on_trade(T0 + 890 * S, Side.BUY, 3_000.0)
    tr.on_trade(T0 + 895 * S, Side.SELL, 1_000.0)
    for seq in range(2, 50):
        tr.on_sequence(NOW - S + seq * MS, seq)
    st_ = make_state(NOW, [(100.0, 300.0), (99.95, 100.0)], [(100.15, 50.0), (100.20, 150.0)])
    st_.funding_rate = None
    table = make_table(make_contract(multiplier=0.1))
    v = assess(st_, table, tr, NOW, QualityConfig())
    assert v.reasons == ("liquidity:3501<5000", "no_funding")
    assert v.liquidity_usdt == (100.0 * 300.0 + 100.15 * 50.0) * 0.1  # 3500.75
    assert v.confidence_factor == 0.95
    assert v.completeness == 1.0

    assert tr.volume(NOW) == (4000.0, 54_000.0 * 60 / 900)  # ratio 4000 / 3600 = 1.11
    assert tr.momentum(NOW) == (3000.0 - 1000.0) / 4000.0

    sig = compute_signal(st_, tr, v, table.get(SYMBOL), None, NOW, SignalConfig(), QualityConfig())
    imbalance = (400.0 - 200.0) / 600.0
    d = (0.5 * imbalance + 0.5 * 0.5) / (0.5 + 0.5)
    liquidity_score = 3500.75 / 5000.0
    assert sig == Signal(
        symbol=SYMBOL,
        type=SignalType.BUY,
        direction=1,
        strength=d,  # 0.41666...
        confidence=liquidity_score * 0.85 * 0.9 * 1.0 * 0.95 * 1.0,  # 0.5088340125
        volume_regime="moderate",
        spread_regime="acceptable",  # 14.99 bps
        imbalance=imbalance,
        liquidity_score=liquidity_score,
        momentum=0.5,
        new_listing=False,
    )
    assert sig.confidence == pytest.approx(0.5088340125, abs=1e-12)

    listed = compute_signal(
        st_, tr, v, table.get(SYMBOL), NOW - 600 * S, NOW, SignalConfig(), QualityConfig()
    )
    assert (listed.type, listed.direction, listed.strength, listed.new_listing) == (
        SignalType.STRONG_BUY,
        1,
        1.0,  # min(1, 0.41667 + 0.7)
        True,
    )
    assert listed.confidence == sig.confidence


# --- regimes at their boundaries ----------------------------------------------------------


@pytest.mark.parametrize(
    ("latest", "baseline", "history_s", "expected"),
    [
        (150.0, 100.0, 900, "high"),  # ratio 1.5 == high_volume_ratio
        (149.0, 100.0, 900, "moderate"),
        (51.0, 100.0, 900, "moderate"),
        (50.0, 100.0, 900, "low"),  # ratio 0.5 == low_volume_ratio
        (0.0, 100.0, 900, "low"),
        (0.0, 0.0, 900, "low"),  # no trades in the window
        (500.0, 100.0, 119, "low"),  # warming up: < 2 bucket lengths observed
        (500.0, 100.0, 120, "high"),
        (100.0, 100.0, 120, "moderate"),
    ],
)
def test_volume_regime_boundaries(
    latest: float, baseline: float, history_s: int, expected: str
) -> None:
    assert volume_regime(latest, baseline, history_s, 60, SignalConfig()) == expected


@pytest.mark.parametrize(
    ("spread", "expected"),
    [
        (-1.0, "tight"),
        (10.0, "tight"),  # == tight_spread_bps
        (10.000001, "acceptable"),
        (50.0, "acceptable"),  # == max_spread_bps
        (50.000001, "wide"),
        (float("inf"), "wide"),
        (float("nan"), "wide"),
    ],
)
def test_spread_regime_boundaries(spread: float, expected: str) -> None:
    assert spread_regime(spread, SignalConfig(), QualityConfig()) == expected


def test_volume_regime_through_the_tracker() -> None:
    tr = busy_tracker()  # 1000 per minute for 15 minutes: ratio 1 -> moderate
    assert tr.volume(NOW) == (1000.0, 1000.0)
    assert signal(book_state(1.0, 1.0), tr).volume_regime == "moderate"
    tr.on_trade(NOW, Side.BUY, 1000.0)  # latest 2000, baseline 16000 * 60 / 900
    assert signal(book_state(1.0, 1.0), tr).volume_regime == "high"
    fresh = make_tracker()
    fresh.on_sequence(NOW - 60 * S, 1)
    fresh.on_trade(NOW, Side.BUY, 1000.0)
    assert fresh.history_s(NOW) == 61
    assert signal(book_state(1.0, 1.0), fresh).volume_regime == "low"  # warming up


# --- the direction score, strength and type ---------------------------------------------


@pytest.mark.parametrize(
    ("bid_size", "ask_size", "kind", "direction"),
    [
        (80.0, 20.0, SignalType.STRONG_BUY, 1),  # d = 0.6 == strong_threshold
        (79.0, 21.0, SignalType.BUY, 1),  # 0.58
        (60.0, 40.0, SignalType.BUY, 1),  # 0.2 == signal_threshold
        (59.0, 41.0, SignalType.NEUTRAL, 0),  # 0.18
        (50.0, 50.0, SignalType.NEUTRAL, 0),
        (41.0, 59.0, SignalType.NEUTRAL, 0),
        (40.0, 60.0, SignalType.SELL, -1),
        (20.0, 80.0, SignalType.STRONG_SELL, -1),
    ],
)
def test_type_thresholds(
    bid_size: float, ask_size: float, kind: SignalType, direction: int
) -> None:
    sig = signal(book_state(bid_size, ask_size), busy_tracker(), momentum_weight=0.0)
    d = (bid_size - ask_size) / (bid_size + ask_size)
    assert (sig.type, sig.direction, sig.strength, sig.imbalance) == (kind, direction, abs(d), d)


def test_direction_score_weights_imbalance_and_momentum() -> None:
    tr = busy_tracker()
    tr.on_trade(NOW, Side.SELL, 2000.0)  # momentum window: 500 buy, 2500 sell -> -2/3
    momentum = (500.0 - 2500.0) / 3000.0
    assert tr.momentum(NOW) == momentum
    st_ = book_state(90.0, 10.0)  # imbalance 0.8
    sig = signal(st_, tr, imbalance_weight=0.75, momentum_weight=0.25)
    d = (0.75 * 0.8 + 0.25 * momentum) / (0.75 + 0.25)  # 0.43333
    assert (sig.type, sig.direction, sig.strength) == (SignalType.BUY, 1, abs(d))
    assert sig.momentum == momentum
    # The extra 2000 made volume high (latest 3000 / baseline 17000 * 60 / 900 = 2.65).
    assert sig.volume_regime == "high"
    # Opposite signs: the agreement factor 0.8 (high volume 1.0, tight spread 1.0).
    assert sig.confidence == 1.0 * 1.0 * 1.0 * 0.8 * 1.0 * 1.0
    sig = signal(st_, tr, imbalance_weight=0.25, momentum_weight=0.75)
    assert sig.strength == abs((0.25 * 0.8 + 0.75 * momentum) / 1.0)
    assert (sig.type, sig.direction) == (SignalType.SELL, -1)


def test_zero_weights_give_neutral() -> None:
    sig = signal(book_state(90.0, 10.0), busy_tracker(), imbalance_weight=0.0, momentum_weight=0.0)
    assert (sig.type, sig.direction, sig.strength) == (SignalType.NEUTRAL, 0, 0.0)


def test_out_of_sync_book_has_no_imbalance() -> None:
    st_ = book_state(90.0, 10.0)
    st_.book.invalidate()
    sig = signal(st_, busy_tracker())
    assert (sig.imbalance, sig.type, sig.direction) == (0.0, SignalType.NEUTRAL, 0)


def test_new_listing_window_and_bonus() -> None:
    st_ = book_state(55.0, 45.0)  # imbalance 0.1, d 0.1 with momentum weight 0
    window = 1800 * S

    def at(listed_at_ns: int | None, contract: Contract | None = None) -> Signal:
        return signal(
            st_, busy_tracker(), momentum_weight=0.0, listed_at_ns=listed_at_ns, contract=contract
        )

    edge = at(NOW - window)  # exactly new_listing_window_s ago: still new
    assert edge.new_listing
    assert edge.strength == 0.1 + 0.7
    assert (edge.type, edge.direction) == (SignalType.STRONG_BUY, 1)
    assert not at(NOW - window - 1).new_listing
    assert not at(NOW + S).new_listing  # listed in the future: not trusted
    assert not at(None).new_listing
    # Listed before the bot started: the contract's first-open time says so.
    assert at(None, make_contract(first_open_ms=(NOW - 60 * S) // MS)).new_listing
    assert not at(None, make_contract(first_open_ms=(NOW - window) // MS - 1)).new_listing
    # The table's time wins over first_open_ms.
    assert not at(NOW - window - 1, make_contract(first_open_ms=NOW // MS)).new_listing
    # The bonus alone never makes a direction: d == 0 stays neutral.
    flat = signal(book_state(50.0, 50.0), busy_tracker(), listed_at_ns=NOW)
    assert (flat.type, flat.direction, flat.strength) == (SignalType.NEUTRAL, 0, 0.7)


# --- liquidity score and confidence -------------------------------------------------------


def test_liquidity_score() -> None:
    st_, tr = book_state(60.0, 40.0), busy_tracker()
    assert signal(st_, tr, verdict(liquidity_usdt=2500.0)).liquidity_score == 0.5
    assert signal(st_, tr, verdict(liquidity_usdt=50_000.0)).liquidity_score == 1.0
    assert signal(st_, tr, verdict(liquidity_usdt=0.0)).liquidity_score == 0.0
    free = QualityConfig(min_liquidity_usdt=0.0)
    assert signal(st_, tr, verdict(liquidity_usdt=0.0), quality=free).liquidity_score == 1.0


@pytest.mark.parametrize(("spread_bps", "spread_factor"), [(5.0, 1.0), (20.0, 0.85), (80.0, 0.5)])
def test_confidence_factors(spread_bps: float, spread_factor: float) -> None:
    st_, tr = book_state(60.0, 40.0), busy_tracker()  # moderate volume, momentum 0: agree
    v = verdict(
        spread_bps=spread_bps, liquidity_usdt=4000.0, completeness=0.98, confidence_factor=0.9
    )
    sig = signal(st_, tr, v)
    assert sig.confidence == 0.8 * spread_factor * 0.9 * 1.0 * 0.9 * 0.98
    # Low volume (warming up) instead of moderate: 0.6 instead of 0.9.
    young = make_tracker()
    young.on_sequence(NOW, 1)
    assert signal(st_, young, v).confidence == 0.8 * spread_factor * 0.6 * 1.0 * 0.9 * 0.98
    # Completeness above 1 (impossible from assess, but clamped): min(1, completeness).
    assert signal(st_, tr, verdict(completeness=1.5)).confidence == 0.9


# --- properties ----------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
unit = st.floats(0.0, 1.0)


@given(
    bid_size=st.floats(1e-6, 1e9),
    ask_size=st.floats(1e-6, 1e9),
    trades=st.lists(
        st.tuples(st.integers(0, 899), st.sampled_from([-1, 0, 1]), st.floats(0.0, 1e12)),
        max_size=20,
    ),
    spread=st.floats(allow_nan=True),
    liquidity=finite,
    completeness=finite,
    confidence_factor=finite,
    weights=st.tuples(unit, unit),
    thresholds=st.tuples(unit, unit),
    bonus=unit,
    listed_ago_s=st.one_of(st.none(), st.integers(-10_000, 10_000)),
)
def test_signal_is_always_well_formed(
    bid_size: float,
    ask_size: float,
    trades: list[tuple[int, int, float]],
    spread: float,
    liquidity: float,
    completeness: float,
    confidence_factor: float,
    weights: tuple[float, float],
    thresholds: tuple[float, float],
    bonus: float,
    listed_ago_s: int | None,
) -> None:
    tr = make_tracker()
    tr.on_sequence(T0, 1)
    for second, side, notional in sorted(trades):
        tr.on_trade(T0 + second * S, side, notional)
    st_ = book_state(bid_size, ask_size)
    v = verdict(
        spread_bps=spread,
        liquidity_usdt=liquidity,
        completeness=completeness,
        confidence_factor=confidence_factor,
    )
    low, high = sorted(thresholds)
    sig = signal(
        st_,
        tr,
        v,
        listed_at_ns=None if listed_ago_s is None else NOW - listed_ago_s * S,
        imbalance_weight=weights[0],
        momentum_weight=weights[1],
        signal_threshold=low,
        strong_threshold=high,
        new_listing_bonus=bonus,
    )
    assert 0.0 <= sig.strength <= 1.0
    assert 0.0 <= sig.confidence <= 1.0
    assert 0.0 <= sig.liquidity_score <= 1.0
    assert -1.0 <= sig.imbalance <= 1.0 and -1.0 <= sig.momentum <= 1.0
    assert sig.volume_regime in ("high", "moderate", "low")
    assert sig.spread_regime in ("tight", "acceptable", "wide")
    expected_direction = {
        SignalType.STRONG_BUY: 1,
        SignalType.BUY: 1,
        SignalType.NEUTRAL: 0,
        SignalType.SELL: -1,
        SignalType.STRONG_SELL: -1,
    }[sig.type]
    assert sig.direction == expected_direction
    if sig.type in (SignalType.STRONG_BUY, SignalType.STRONG_SELL):
        assert sig.strength >= high
    elif sig.type is not SignalType.NEUTRAL:
        assert low <= sig.strength < high
