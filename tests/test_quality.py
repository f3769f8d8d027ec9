"""Tests for tradebot.decide.tracker (rolling counters) and tradebot.decide.quality (verdicts)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradebot.config import QualityConfig
from tradebot.decide.quality import (
    CRITICAL,
    IMPORTANT,
    OK,
    OPTIONAL,
    QualityVerdict,
    assess,
    liquidity_usdt,
)
from tradebot.decide.tracker import NS_PER_S, SymbolTracker
from tradebot.kucoin.events import Contract, Side
from tradebot.market.contracts import ContractTable
from tradebot.market.state import SymbolState

SYMBOL = "ETCUSDTM"
S = NS_PER_S
MS = 1_000_000

Levels = list[tuple[float, float]]

# Within 10 bps of mid 100.025 (99.924975 .. 100.125025): the first two levels per side.
BIDS: Levels = [(100.0, 100.0), (99.95, 200.0), (99.0, 1000.0)]
ASKS: Levels = [(100.05, 200.0), (100.10, 100.0), (101.0, 1000.0)]
# (100*100 + 99.95*200 + 100.05*200 + 100.10*100) * multiplier 0.1
LIQUIDITY = 6001.0
SPREAD = (100.05 - 100.0) / ((100.0 + 100.05) * 0.5) * 10_000.0  # 4.99875... bps


def make_contract(
    symbol: str = SYMBOL,
    *,
    status: str = "Open",
    multiplier: float = 0.1,
    is_inverse: bool = False,
    first_open_ms: int | None = None,
) -> Contract:
    return Contract(
        symbol=symbol,
        status=status,
        multiplier=multiplier,
        multiplier_text=repr(multiplier),
        lot_size=1,
        tick_size=0.05,
        tick_size_text="0.05",
        max_order_qty=1_000_000,
        maker_fee_rate=0.0002,
        taker_fee_rate=0.0006,
        is_inverse=is_inverse,
        quote_currency="USD" if is_inverse else "USDT",
        settle_currency="XBT" if is_inverse else "USDT",
        first_open_ms=first_open_ms,
        funding_rate=0.0001,
        next_funding_in_ms=3_600_000,
        funding_granularity_ms=28_800_000,
        mark_price=100.0,
        index_price=100.0,
        last_price=100.0,
        volume_24h=1000.0,
        turnover_24h=100_000.0,
    )


def make_table(*contracts: Contract) -> ContractTable:
    table = ContractTable()
    table.update(list(contracts), 0)
    return table


def make_state(
    now_ns: int,
    bids: Levels | None = None,
    asks: Levels | None = None,
    symbol: str = SYMBOL,
) -> SymbolState:
    """A healthy symbol: in-sync book, quoted 1 s before `now_ns`, every field present."""
    st_ = SymbolState(symbol)
    bids = BIDS if bids is None else bids
    asks = ASKS if asks is None else asks
    assert st_.book.apply_snapshot(100, bids, asks)
    top_bid, top_ask = st_.book.best_bid(), st_.book.best_ask()
    assert top_bid is not None and top_ask is not None
    st_.bid, st_.bid_size = top_bid
    st_.ask, st_.ask_size = top_ask
    st_.quote_ns = now_ns - 1 * S
    st_.last_price = 100.0
    st_.trade_ns = now_ns - 2 * S
    st_.volume_24h = 1000.0
    st_.mark_price = 100.0
    st_.mark_ns = now_ns - 1 * S
    st_.funding_rate = 0.0001
    return st_


def make_tracker(**kw: int) -> SymbolTracker:
    args = {
        "completeness_window_s": 60,
        "volume_window_s": 900,
        "volume_bucket_s": 60,
        "momentum_window_s": 60,
    }
    args.update(kw)
    return SymbolTracker(**args)


NOW = 10_000 * S


def healthy(
    now_ns: int = NOW,
) -> tuple[SymbolState, ContractTable, SymbolTracker]:
    tracker = make_tracker()
    for i in range(10):
        tracker.on_sequence(now_ns - 5 * S + i * 100 * MS, 101 + i)
    return make_state(now_ns), make_table(make_contract()), tracker


def run(
    st_: SymbolState,
    table: ContractTable,
    tracker: SymbolTracker,
    now_ns: int = NOW,
    **cfg: float,
) -> QualityVerdict:
    return assess(st_, table, tracker, now_ns, QualityConfig(**cfg))  # type: ignore[arg-type]


# --- the tracker: completeness -----------------------------------------------------------


def test_completeness_counts_gaps() -> None:
    tr = make_tracker()
    for seq in (1, 2, 3, 7):
        tr.on_sequence(NOW, seq)
    assert tr.completeness_updates(NOW) == 4 / 7


def test_completeness_first_counts_one_and_duplicates_are_ignored() -> None:
    tr = make_tracker()
    assert tr.completeness_updates(NOW) == 1.0  # nothing expected
    tr.on_sequence(NOW, 1000)  # the first one counts 1, whatever its number
    assert tr.completeness_updates(NOW) == 1.0
    for seq in (1000, 999, 1001, 1001, 5):
        tr.on_sequence(NOW, seq)
    assert tr.completeness_updates(NOW) == 1.0  # received 2, expected 2
    tr.on_sequence(NOW, 1003)
    assert tr.completeness_updates(NOW) == 3 / 4


def test_completeness_window_expires_bucket_by_bucket() -> None:
    tr = make_tracker(completeness_window_s=60)
    t0 = NOW
    tr.on_sequence(t0, 1)
    tr.on_sequence(t0 + 500 * MS, 5)  # gap: received 2, expected 5 in second 0
    tr.on_sequence(t0 + 30 * S, 6)  # second 30: received 1, expected 1
    assert tr.completeness_updates(t0 + 30 * S) == 3 / 6
    # The window is the current second and the 59 before it: second 0 is still in at 59 ...
    assert tr.completeness_updates(t0 + 59 * S + 999 * MS) == 3 / 6
    # ... and gone at 60.
    assert tr.completeness_updates(t0 + 60 * S) == 1.0
    assert tr.completeness_updates(t0 + 89 * S) == 1.0
    assert tr.completeness_updates(t0 + 90 * S) == 1.0  # second 30 expired: nothing expected
    tr.on_sequence(t0 + 91 * S, 8)  # a gap of one
    assert tr.completeness_updates(t0 + 91 * S) == 1 / 2


def test_completeness_after_a_long_time_jump() -> None:
    tr = make_tracker()
    tr.on_sequence(NOW, 1)
    tr.on_sequence(NOW, 10)
    far = NOW + 10**9 * S  # 31 years later: costs one pass over the ring, not 1e9 steps
    tr.on_sequence(far, 11)
    assert tr.completeness_updates(far) == 1.0
    tr.on_sequence(far + S, 13)
    assert tr.completeness_updates(far + S) == 2 / 3


def test_late_message_older_than_the_window_is_dropped() -> None:
    tr = make_tracker(completeness_window_s=10)
    tr.on_sequence(NOW, 1)
    tr.on_sequence(NOW - 20 * S, 5)  # receive time went backwards past the window
    assert tr.completeness_updates(NOW) == 1.0
    tr.on_sequence(NOW - 5 * S, 7)  # late but inside the window: counted in its second
    assert tr.completeness_updates(NOW) == 2 / 3


def test_tracker_rejects_bad_windows() -> None:
    with pytest.raises(ValueError):
        make_tracker(volume_window_s=30, volume_bucket_s=60)
    with pytest.raises(ValueError):
        make_tracker(completeness_window_s=0)


# --- the tracker: volume, momentum, trades ----------------------------------------------


def test_volume_latest_and_baseline() -> None:
    tr = make_tracker(volume_window_s=900, volume_bucket_s=60, momentum_window_s=60)
    t0 = NOW
    tr.on_sequence(t0, 1)  # observation starts at second 0
    assert tr.volume(t0) == (0.0, 0.0)
    tr.on_trade(t0 + 10 * S, Side.BUY, 1000.0)
    tr.on_trade(t0 + 100 * S, Side.SELL, 500.0)
    tr.on_trade(t0 + 130 * S, Side.BUY, 300.0)
    now = t0 + 150 * S
    # latest: seconds 91..150 -> 500 + 300; baseline: 1800 over 151 s observed, per 60 s.
    assert tr.history_s(now) == 151
    assert tr.volume(now) == (800.0, 1800 * 60 / 151)
    assert tr.trades_in_window(now) == 3
    # Momentum window 60 s: seconds 91..150 -> buy 300, sell 500.
    assert tr.momentum(now) == (300 - 500) / 800
    # At second 910 the window is 11..910: the first trade (second 10) has left it.
    later = t0 + 910 * S
    assert tr.history_s(later) == 900
    assert tr.volume(later) == (0.0, 800 * 60 / 900)
    assert tr.trades_in_window(later) == 2
    assert tr.momentum(later) == 0.0
    # Second 10 is still in the window at 909.
    tr2 = make_tracker()
    tr2.on_sequence(t0, 1)
    tr2.on_trade(t0 + 10 * S, Side.BUY, 1000.0)
    assert tr2.trades_in_window(t0 + 909 * S) == 1


def test_volume_latest_period_slides_by_the_second() -> None:
    tr = make_tracker(volume_window_s=120, volume_bucket_s=60)
    tr.on_trade(NOW, Side.BUY, 100.0)
    tr.on_trade(NOW + 30 * S, Side.SELL, 50.0)
    assert tr.volume(NOW + 59 * S)[0] == 150.0  # seconds 0..59
    assert tr.volume(NOW + 60 * S)[0] == 50.0  # seconds 1..60
    assert tr.volume(NOW + 90 * S)[0] == 0.0
    assert tr.volume(NOW + 90 * S)[1] == 150.0 * 60 / 91


def test_volume_when_window_equals_bucket() -> None:
    tr = make_tracker(volume_window_s=60, volume_bucket_s=60)
    tr.on_trade(NOW, Side.BUY, 100.0)
    tr.on_trade(NOW + 59 * S, Side.BUY, 10.0)
    assert tr.volume(NOW + 59 * S) == (110.0, 110.0)
    assert tr.volume(NOW + 60 * S) == (10.0, 10.0)
    assert tr.volume(NOW + 10_000 * S) == (0.0, 0.0)


def test_volume_after_a_long_time_jump() -> None:
    tr = make_tracker()
    tr.on_trade(NOW, Side.BUY, 100.0)
    far = NOW + 10**12 * S
    assert tr.volume(far) == (0.0, 0.0)
    assert tr.trades_in_window(far) == 0
    assert tr.momentum(far) == 0.0
    tr.on_trade(far, Side.SELL, 40.0)
    assert tr.volume(far) == (40.0, 40.0 * 60 / 900)
    assert tr.momentum(far) == -1.0


def test_trade_side_and_bad_notional() -> None:
    tr = make_tracker()
    tr.on_trade(NOW, 0, 100.0)  # unknown side: volume only
    tr.on_trade(NOW, Side.BUY, float("nan"))
    tr.on_trade(NOW, Side.BUY, float("inf"))
    tr.on_trade(NOW, Side.BUY, -5.0)
    assert tr.trades_in_window(NOW) == 1
    assert tr.momentum(NOW) == 0.0
    tr.on_trade(NOW, Side.BUY, 0.0)  # a zero-notional trade is still a trade
    assert tr.trades_in_window(NOW) == 2


def test_momentum_hand_computed() -> None:
    tr = make_tracker(momentum_window_s=60)
    tr.on_trade(NOW, Side.BUY, 3000.0)
    tr.on_trade(NOW + 1 * S, Side.SELL, 1000.0)
    assert tr.momentum(NOW + S) == 0.5
    assert tr.momentum(NOW + 60 * S) == -1.0  # the buy (second 0) left the window
    assert tr.momentum(NOW + 61 * S) == 0.0


@given(
    st.lists(
        st.tuples(
            st.integers(0, 400),  # seconds since the previous event
            st.integers(-1, 1),
            st.integers(0, 10**9),  # micro-USDT
        ),
        max_size=60,
    ),
    st.integers(1, 120),
    st.integers(1, 120),
)
def test_rings_match_a_naive_recount(
    events: list[tuple[int, int, int]], bucket_s: int, extra_s: int
) -> None:
    window_s = bucket_s + extra_s
    tr = make_tracker(volume_window_s=window_s, volume_bucket_s=bucket_s, momentum_window_s=37)
    t = 0
    now_s = 0
    seen: list[tuple[int, int, int]] = []
    for gap, side, micro in events:
        # Events arrive `gap` seconds apart; reads happen up to gap/3 later, so the next
        # event may be late (before the last read), even older than a window.
        t += gap
        tr.on_trade(t * S + 123, side, micro / 1e6)
        seen.append((t, side, micro))
        now_s = max(now_s, t + gap // 3)
        in_window = [e for e in seen if now_s - window_s < e[0] <= now_s]
        recent = [e for e in seen if now_s - bucket_s < e[0] <= now_s]
        buys = sum(m for s_, sd, m in seen if now_s - 37 < s_ <= now_s and sd > 0)
        sells = sum(m for s_, sd, m in seen if now_s - 37 < s_ <= now_s and sd < 0)
        history = min(now_s - seen[0][0] + 1, window_s)
        latest, baseline = tr.volume(now_s * S)
        assert latest == sum(m for *_, m in recent) / 1e6
        assert baseline == sum(m for *_, m in in_window) * bucket_s / (history * 10**6)
        assert tr.trades_in_window(now_s * S) == len(in_window)
        expected_momentum = (buys - sells) / (buys + sells) if buys + sells else 0.0
        assert tr.momentum(now_s * S) == expected_momentum


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["trade", "sequence", "read"]),
            st.integers(-5, 200),  # seconds after the previous step (negative: late)
            st.integers(-1, 1),  # side
            st.integers(0, 10**9),  # micro-USDT, or sequence step
        ),
        max_size=40,
    ),
    st.one_of(st.just(0.0), st.floats(), st.floats(0.001, 1e6)),  # warm rate, USDT/s
)
def test_signal_reads_equal_the_separate_reads(
    steps: list[tuple[str, int, int, int]], warm: float
) -> None:
    # Two trackers fed the same: one read through signal_reads, the other through volume,
    # history_s, momentum and is_warm (which advance the same rings), at the same times.
    one, two = (
        make_tracker(volume_window_s=120, volume_bucket_s=30),
        make_tracker(volume_window_s=120, volume_bucket_s=30),
    )

    def separate(t: int) -> tuple[float, float, int, float, bool]:
        return (*two.volume(t, warm), two.history_s(t), two.momentum(t), two.is_warm(t, warm))

    assert one.signal_reads(0, warm) == separate(0)
    t = 1_000 * S
    sequence = 0
    for kind, dt, side, amount in steps:
        t = max(0, t + dt * S + 7)
        if kind == "trade":
            for tr in (one, two):
                tr.on_trade(t, side, amount / 1e6)
        elif kind == "sequence":
            sequence += amount % 5
            for tr in (one, two):
                tr.on_sequence(t, sequence)
        assert one.signal_reads(t, warm) == separate(t)
        assert one.completeness_updates(t) == two.completeness_updates(t)
        assert one.trades_in_window(t) == two.trades_in_window(t)


# --- quality: the healthy case ----------------------------------------------------------


def test_healthy_symbol_is_ok() -> None:
    v = run(*healthy())
    assert v == QualityVerdict(
        tradable=True,
        tier=OK,
        reasons=(),
        confidence_factor=1.0,
        completeness=1.0,
        spread_bps=SPREAD,
        liquidity_usdt=pytest.approx(LIQUIDITY),  # type: ignore[arg-type]
    )
    assert v.spread_bps == pytest.approx(4.99875, abs=1e-5)


def test_liquidity_linear_and_inverse() -> None:
    st_, _, _ = healthy()
    linear = make_table(make_contract(multiplier=0.1))
    assert liquidity_usdt(st_, linear, 10.0) == pytest.approx(LIQUIDITY)
    # Inverse: one lot is `multiplier` USD, so it is the sum of sizes within the band.
    inverse = make_table(make_contract(multiplier=1.0, is_inverse=True))
    assert liquidity_usdt(st_, inverse, 10.0) == 600.0
    # A 200 bps band takes every level: 60010 + 99000 + 101000 raw notional.
    assert liquidity_usdt(st_, linear, 200.0) == pytest.approx(26001.0)
    assert liquidity_usdt(st_, ContractTable(), 10.0) == 0.0


# --- quality: every check failing alone ------------------------------------------------


@pytest.mark.parametrize(
    ("side", "reason"),
    [("bid", "no_bid"), ("ask", "no_ask")],
)
@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf")])
def test_missing_quote_side_is_critical(side: str, reason: str, value: float) -> None:
    st_, table, tracker = healthy()
    setattr(st_, side, value)
    v = run(st_, table, tracker)
    assert not v.tradable and v.tier == CRITICAL
    assert v.reasons[0] == reason
    # Dependent checks fail too: no spread, and the price is a required field.
    assert v.reasons[1:] == ("spread:infbps>=50.0", "completeness:0.833<0.990")
    assert v.spread_bps == float("inf")


def test_book_out_of_sync_is_critical() -> None:
    st_, table, tracker = healthy()
    st_.book.invalidate()
    v = run(st_, table, tracker)
    assert (v.tradable, v.tier) == (False, CRITICAL)
    # The book is empty while out of sync, so there is no liquidity to measure either.
    assert v.reasons == ("book_out_of_sync", "liquidity:0<5000")


def test_crossed_quote_is_critical() -> None:
    st_, table, tracker = healthy()
    st_.bid = 100.06  # above the ask 100.05
    v = run(st_, table, tracker)
    assert (v.tradable, v.tier, v.reasons) == (False, CRITICAL, ("crossed:-1.0bps",))
    st_.bid = 100.05  # locked counts as crossed
    assert run(st_, table, tracker).reasons == ("crossed:0.0bps",)


def test_stale_quote_is_critical() -> None:
    st_, table, tracker = healthy()
    st_.quote_ns = NOW - 7120 * MS
    v = run(st_, table, tracker)
    assert (v.tradable, v.tier, v.reasons) == (False, CRITICAL, ("stale:7120ms",))
    st_.quote_ns = NOW - 5000 * MS  # exactly at the limit: still fresh
    assert run(st_, table, tracker).tier == OK
    st_.quote_ns = NOW - 5000 * MS - 1
    assert run(st_, table, tracker).reasons == ("stale:5000ms",)
    st_.quote_ns = 0
    assert run(st_, table, tracker).reasons == ("stale:never",)


def test_unknown_contract_is_critical() -> None:
    st_, _, tracker = healthy()
    v = run(st_, ContractTable(), tracker)
    assert v.tier == CRITICAL
    # Without a contract the multiplier is unknown, so liquidity cannot be valued.
    assert v.reasons == ("contract:unknown", "liquidity:0<5000")


def test_contract_not_open_is_critical() -> None:
    st_, _, tracker = healthy()
    v = run(st_, make_table(make_contract(status="Paused")), tracker)
    assert (v.tradable, v.tier, v.reasons) == (False, CRITICAL, ("contract:Paused",))


def test_delisted_contract_is_critical() -> None:
    st_, table, tracker = healthy()
    other = make_contract(symbol="OTHERUSDTM")
    table.update([other], NOW - S)  # it disappeared from contracts/active
    v = run(st_, table, tracker)
    assert (v.tradable, v.tier, v.reasons) == (False, CRITICAL, ("contract:delisted",))


def test_wide_spread_is_important() -> None:
    st_, table, tracker = healthy()
    v = run(st_, table, tracker, max_spread_bps=4.0)
    assert (v.tradable, v.tier, v.reasons) == (False, IMPORTANT, ("spread:5.0bps>=4.0",))
    assert run(st_, table, tracker, max_spread_bps=5.0).tier == OK


def test_no_volume_is_important() -> None:
    st_, table, tracker = healthy()
    st_.volume_24h = 0.0  # present (the field is there) but no volume, and no trades seen
    v = run(st_, table, tracker)
    assert (v.tradable, v.tier, v.reasons) == (False, IMPORTANT, ("no_volume",))
    tracker.on_trade(NOW - 10 * S, Side.BUY, 50.0)  # one trade in the window is enough
    assert run(st_, table, tracker).tier == OK


def test_missing_volume_field_with_trades_fails_completeness_only() -> None:
    st_, table, tracker = healthy()
    st_.volume_24h = None
    tracker.on_trade(NOW - 10 * S, Side.SELL, 50.0)
    v = run(st_, table, tracker)
    assert (v.tier, v.reasons) == (IMPORTANT, ("completeness:0.833<0.990",))
    assert v.completeness == 5 / 6


def test_thin_book_is_important() -> None:
    st_, table, tracker = healthy()
    v = run(st_, table, tracker, min_liquidity_usdt=7000.0)
    assert (v.tradable, v.tier, v.reasons) == (False, IMPORTANT, ("liquidity:6001<7000",))


def test_update_gaps_fail_completeness() -> None:
    st_, table, _ = healthy()
    tracker = make_tracker()
    for seq in (1, 2, 3, 7):
        tracker.on_sequence(NOW - S, seq)
    v = run(st_, table, tracker)
    assert (v.tradable, v.tier, v.reasons) == (False, IMPORTANT, ("completeness:0.571<0.990",))
    assert v.completeness == 1.0 * (4 / 7)


def test_missing_field_fails_completeness() -> None:
    st_, table, tracker = healthy()
    st_.last_price = 0.0
    v = run(st_, table, tracker)
    assert (v.tier, v.reasons, v.completeness) == (
        IMPORTANT,
        ("completeness:0.833<0.990",),
        5 / 6,
    )
    # field share times update share: 5/6 * 4/7
    tracker = make_tracker()
    for seq in (1, 2, 3, 7):
        tracker.on_sequence(NOW, seq)
    assert run(st_, table, tracker).completeness == 5 / 6 * (4 / 7)


def test_missing_mark_is_optional() -> None:
    st_, table, tracker = healthy()
    st_.mark_price = 0.0
    v = run(st_, table, tracker)
    assert (v.tradable, v.tier, v.reasons, v.confidence_factor) == (
        True,
        OPTIONAL,
        ("no_mark",),
        0.9,
    )


def test_missing_funding_is_optional() -> None:
    st_, table, tracker = healthy()
    st_.funding_rate = None
    v = run(st_, table, tracker)
    assert (v.tradable, v.tier, v.reasons, v.confidence_factor) == (
        True,
        OPTIONAL,
        ("no_funding",),
        0.95,
    )
    st_.funding_rate = float("nan")
    assert run(st_, table, tracker).reasons == ("no_funding",)


def test_both_optional_failures_multiply() -> None:
    st_, table, tracker = healthy()
    st_.mark_price = 0.0
    st_.funding_rate = None
    v = run(st_, table, tracker)
    assert v.reasons == ("no_mark", "no_funding")
    assert v.confidence_factor == 0.9 * 0.95


def test_reasons_are_ordered_critical_important_optional() -> None:
    st_, table, tracker = healthy()
    st_.quote_ns = NOW - 9 * S
    st_.mark_price = 0.0
    st_.last_price = 0.0
    v = run(st_, table, tracker, max_spread_bps=1.0)
    assert v.tier == CRITICAL
    assert v.reasons == (
        "stale:9000ms",
        "spread:5.0bps>=1.0",
        "completeness:0.833<0.990",
        "no_mark",
    )


def test_empty_state_fails_everything_without_raising() -> None:
    st_ = SymbolState(SYMBOL)
    v = assess(st_, ContractTable(), make_tracker(), NOW, QualityConfig())
    assert v.reasons == (
        "no_bid",
        "no_ask",
        "book_out_of_sync",
        "stale:never",
        "contract:unknown",
        "spread:infbps>=50.0",
        "no_volume",
        "liquidity:0<5000",
        "completeness:0.000<0.990",
        "no_mark",
        "no_funding",
    )
    assert (v.tradable, v.tier, v.completeness, v.liquidity_usdt) == (False, CRITICAL, 0.0, 0.0)


def test_history_starts_at_the_first_message_even_after_a_read() -> None:
    tr = make_tracker()
    assert tr.history_s(NOW) == 0
    assert tr.completeness_updates(NOW) == 1.0  # a read advances the ring to NOW ...
    tr.on_sequence(NOW + 100 * MS, 1)  # ... and a message in that same second starts history
    assert tr.history_s(NOW + 59 * S) == 60
    assert tr.history_s(NOW + 10_000 * S) == 900  # capped at the volume window
    tr.on_sequence(NOW + 200 * MS, 3)
    assert tr.completeness_updates(NOW + S) == 2 / 3
