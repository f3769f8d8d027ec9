"""Tests for tradebot.market.book: KuCoin level-2 sequencing, gaps, crossing, depth reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradebot.kucoin.events import Side
from tradebot.market.book import APPLIED, BUFFERED, CROSSED, GAP, STALE, OrderBook

FIXTURES = Path(__file__).parent / "fixtures" / "kucoin"

Levels = list[tuple[float, float]]


def make_book(
    sequence: int = 10,
    bids: Levels | None = None,
    asks: Levels | None = None,
    **kwargs: Any,
) -> OrderBook:
    book = OrderBook("XBTUSDTM", **kwargs)
    if bids is None:
        bids = [(99.0, 1.0), (98.0, 2.0)]
    if asks is None:
        asks = [(101.0, 3.0), (102.0, 4.0)]
    assert book.apply_snapshot(sequence, bids, asks)
    return book


def is_in_sync(book: OrderBook) -> bool:
    return book.in_sync


# --- the worked example from the KuCoin docs -------------------------------------------


def _calibration() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "ws_level2_calibration_example.json").read_text())
    return data


def _levels(raw: list[list[Any]]) -> Levels:
    return [(float(price), float(size)) for price, size in raw]


def _changes(raw: list[dict[str, Any]]) -> list[tuple[int, Side, float, float]]:
    out = []
    for update in raw:
        price, side, size = update["change"].split(",")
        out.append(
            (
                update["sequence"],
                Side.BUY if side == "buy" else Side.SELL,
                float(price),
                float(size),
            )
        )
    return out


def test_calibration_example() -> None:
    data = _calibration()
    snap = data["rest_snapshot"]
    book = OrderBook("ETHUSDTM")
    assert book.apply_snapshot(snap["sequence"], _levels(snap["bids"]), _levels(snap["asks"]))
    assert book.sequence == 16
    for change in _changes(data["ws_updates"]):
        assert book.apply_change(*change) == APPLIED
    expected = data["expected_book_after"]
    assert book.sequence == expected["sequence"] == 18
    assert book.levels(Side.BUY) == _levels(expected["bids"])
    assert book.levels(Side.SELL) == _levels(expected["asks"])
    assert book.in_sync
    assert len(book) == 7
    assert book.best_bid() == (3988.51, 56.0)
    assert book.best_ask() == (3988.59, 3.0)


def test_calibration_example_with_changes_buffered_before_the_snapshot() -> None:
    data = _calibration()
    snap = data["rest_snapshot"]
    book = OrderBook("ETHUSDTM")
    # Changes 15 and 16 are already in the snapshot; 17 and 18 must be replayed.
    early = [(15, Side.BUY, 3988.40, 1.0), (16, Side.SELL, 3988.70, 2.0)]
    for change in early + _changes(data["ws_updates"]):
        assert book.apply_change(*change) == BUFFERED
    assert not book.in_sync and len(book) == 0
    assert book.apply_snapshot(snap["sequence"], _levels(snap["bids"]), _levels(snap["asks"]))
    expected = data["expected_book_after"]
    assert book.sequence == 18
    assert book.levels(Side.BUY) == _levels(expected["bids"])
    assert book.levels(Side.SELL) == _levels(expected["asks"])
    assert book.resyncs == 0 and book.gaps == 0 and book.stale_changes == 0


# --- sequencing ----------------------------------------------------------------------


def test_new_book_is_empty_and_out_of_sync() -> None:
    book = OrderBook("XBTUSDTM")
    assert book.symbol == "XBTUSDTM"
    assert book.sequence == -1
    assert not book.in_sync
    assert len(book) == 0
    assert book.best_bid() is None and book.best_ask() is None
    assert book.best_bid_price() == 0.0 and book.best_ask_price() == 0.0
    assert book.mid() == 0.0
    assert book.spread_bps() == float("inf")
    assert book.depth_within_bps(100) == (0.0, 0.0)
    assert book.notional_within_bps(100) == (0.0, 0.0)
    assert book.imbalance(5) == 0.0
    assert book.levels(Side.BUY) == [] and book.levels(Side.SELL) == []


def test_max_buffered_must_be_positive() -> None:
    with pytest.raises(ValueError):
        OrderBook("XBTUSDTM", max_buffered=0)


def test_stale_change_is_dropped() -> None:
    book = make_book(sequence=10)
    assert book.apply_change(10, Side.BUY, 99.0, 50.0) == STALE
    assert book.apply_change(3, Side.SELL, 101.0, 0.0) == STALE
    assert book.stale_changes == 2
    assert book.sequence == 10
    assert book.best_bid() == (99.0, 1.0) and book.best_ask() == (101.0, 3.0)
    assert book.in_sync


def test_change_replaces_size_and_zero_removes() -> None:
    book = make_book(sequence=10)
    assert book.apply_change(11, Side.BUY, 98.0, 7.0) == APPLIED
    assert book.apply_change(12, Side.SELL, 101.0, 0.0) == APPLIED
    assert book.apply_change(13, Side.BUY, 99.5, 1.5) == APPLIED
    assert book.levels(Side.BUY) == [(99.5, 1.5), (99.0, 1.0), (98.0, 7.0)]
    assert book.levels(Side.SELL) == [(102.0, 4.0)]
    assert book.sequence == 13


def test_removing_a_missing_level_is_fine() -> None:
    book = make_book(sequence=10)
    assert book.apply_change(11, Side.BUY, 50.0, 0.0) == APPLIED
    assert book.apply_change(12, Side.SELL, 500.0, 0.0) == APPLIED
    assert book.in_sync and book.sequence == 12 and len(book) == 4


def test_gap_clears_book_and_next_snapshot_resyncs_with_buffered_changes() -> None:
    book = make_book(sequence=10)
    assert book.apply_change(11, Side.BUY, 98.0, 5.0) == APPLIED
    # 12 is lost: 13 reveals the gap.
    assert book.apply_change(13, Side.BUY, 97.0, 1.0) == GAP
    assert book.gaps == 1
    assert not book.in_sync
    assert len(book) == 0
    assert book.best_bid() is None and book.best_ask() is None
    assert book.apply_change(14, Side.SELL, 103.0, 2.0) == BUFFERED
    assert book.apply_change(15, Side.SELL, 101.0, 0.0) == BUFFERED

    # A snapshot at 13 already contains 13; 14 and 15 must be applied on top of it.
    assert book.apply_snapshot(13, [(99.0, 1.0), (97.0, 1.0)], [(101.0, 3.0), (102.0, 4.0)])
    assert is_in_sync(book)  # a call: mypy keeps `not book.in_sync` narrowed
    assert book.resyncs == 1
    assert book.gaps == 1
    assert book.sequence == 15
    assert book.levels(Side.BUY) == [(99.0, 1.0), (97.0, 1.0)]
    assert book.levels(Side.SELL) == [(102.0, 4.0), (103.0, 2.0)]
    assert book.apply_change(16, Side.BUY, 96.0, 1.0) == APPLIED


def test_no_ghost_levels_after_resync() -> None:
    book = make_book(sequence=10, bids=[(99.0, 1.0), (98.0, 2.0)], asks=[(101.0, 3.0)])
    assert book.apply_change(12, Side.BUY, 97.0, 1.0) == GAP
    # While we were blind the 98 bid was cancelled; the snapshot does not mention it.
    assert book.apply_snapshot(20, [(99.0, 1.0)], [(101.0, 3.0)])
    assert book.levels(Side.BUY) == [(99.0, 1.0)]
    assert book.levels(Side.SELL) == [(101.0, 3.0)]


def test_first_sync_is_not_a_resync() -> None:
    book = OrderBook("XBTUSDTM")
    assert book.apply_change(5, Side.BUY, 99.0, 1.0) == BUFFERED
    assert book.apply_snapshot(4, [(98.0, 1.0)], [(101.0, 1.0)])
    assert book.resyncs == 0
    assert book.levels(Side.BUY) == [(99.0, 1.0), (98.0, 1.0)]
    assert book.sequence == 5


def test_gap_inside_the_buffer_keeps_the_book_out_of_sync() -> None:
    book = OrderBook("XBTUSDTM")
    for change in [
        (11, Side.BUY, 98.0, 1.0),
        (12, Side.BUY, 97.0, 1.0),
        (14, Side.BUY, 96.0, 1.0),  # 13 never arrives
        (15, Side.SELL, 103.0, 1.0),
    ]:
        assert book.apply_change(*change) == BUFFERED
    assert not book.apply_snapshot(10, [(99.0, 1.0)], [(101.0, 1.0)])
    assert not book.in_sync
    assert book.gaps == 1
    assert len(book) == 0
    assert book.resyncs == 0
    # Buffering continued from the change after the hole: a snapshot at 13 picks up 14, 15.
    assert book.apply_change(16, Side.SELL, 104.0, 1.0) == BUFFERED
    assert book.apply_snapshot(13, [(99.0, 1.0), (98.0, 1.0)], [(101.0, 1.0)])
    assert is_in_sync(book)  # a call: mypy keeps `not book.in_sync` narrowed
    assert book.sequence == 16
    assert book.levels(Side.BUY) == [(99.0, 1.0), (98.0, 1.0), (96.0, 1.0)]
    assert book.levels(Side.SELL) == [(101.0, 1.0), (103.0, 1.0), (104.0, 1.0)]
    assert book.resyncs == 0  # never in sync before this


def test_first_buffered_change_must_follow_the_snapshot() -> None:
    book = OrderBook("XBTUSDTM")
    assert book.apply_change(13, Side.BUY, 98.0, 1.0) == BUFFERED
    assert not book.apply_snapshot(11, [(99.0, 1.0)], [(101.0, 1.0)])
    assert book.gaps == 1 and len(book) == 0


def test_buffer_is_replayed_in_sequence_order_and_duplicates_dropped() -> None:
    book = OrderBook("XBTUSDTM")
    for change in [
        (12, Side.BUY, 97.0, 1.0),
        (11, Side.BUY, 98.0, 1.0),
        (12, Side.BUY, 97.0, 1.0),
        (9, Side.BUY, 50.0, 1.0),
    ]:
        assert book.apply_change(*change) == BUFFERED
    assert book.apply_snapshot(10, [(99.0, 1.0)], [(101.0, 1.0)])
    assert book.sequence == 12
    assert book.levels(Side.BUY) == [(99.0, 1.0), (98.0, 1.0), (97.0, 1.0)]
    assert book.stale_changes == 1  # the duplicate 12; 9 is simply older than the snapshot


def test_snapshot_newer_than_all_buffered_changes() -> None:
    book = OrderBook("XBTUSDTM")
    book.apply_change(5, Side.BUY, 98.0, 1.0)
    book.apply_change(6, Side.BUY, 97.0, 1.0)
    assert book.apply_snapshot(8, [(99.0, 1.0)], [(101.0, 1.0)])
    assert book.sequence == 8 and len(book) == 2
    assert book.apply_change(7, Side.BUY, 96.0, 1.0) == STALE
    assert book.apply_change(9, Side.BUY, 96.0, 1.0) == APPLIED


def test_snapshot_skips_empty_levels() -> None:
    book = make_book(bids=[(99.0, 1.0), (98.0, 0.0), (97.0, -1.0)], asks=[(101.0, 0.0)])
    assert book.levels(Side.BUY) == [(99.0, 1.0)]
    assert book.levels(Side.SELL) == []


def test_stale_snapshot_is_ignored_while_in_sync() -> None:
    book = make_book(sequence=10)
    book.apply_change(11, Side.BUY, 98.5, 1.0)
    before = (book.levels(Side.BUY), book.levels(Side.SELL))
    assert book.apply_snapshot(9, [(50.0, 1.0)], [(60.0, 1.0)])
    assert book.stale_snapshots == 1
    assert (book.levels(Side.BUY), book.levels(Side.SELL)) == before
    assert book.sequence == 11 and book.in_sync


def test_newer_snapshot_while_in_sync_replaces_the_book() -> None:
    book = make_book(sequence=10)
    assert book.apply_snapshot(10, [(99.0, 2.0)], [(101.0, 3.0)])  # same sequence: replaces
    assert book.levels(Side.BUY) == [(99.0, 2.0)]
    assert book.apply_snapshot(15, [(95.0, 1.0)], [(105.0, 1.0)])
    assert book.levels(Side.BUY) == [(95.0, 1.0)]
    assert book.levels(Side.SELL) == [(105.0, 1.0)]
    assert book.sequence == 15
    assert book.resyncs == 0 and book.stale_snapshots == 0
    assert book.apply_change(16, Side.BUY, 96.0, 1.0) == APPLIED


@pytest.mark.parametrize(
    ("side", "price"),
    [
        (Side.BUY, 101.0),  # bid at the best ask (locked)
        (Side.BUY, 105.0),  # bid through the asks
        (Side.SELL, 99.0),  # ask at the best bid
        (Side.SELL, 90.0),  # ask through the bids
    ],
)
def test_crossing_change_throws_the_book_away(side: Side, price: float) -> None:
    book = make_book(sequence=10)
    assert book.apply_change(11, side, price, 1.0) == CROSSED
    assert book.crossed == 1
    assert book.gaps == 0
    assert not book.in_sync
    assert len(book) == 0
    assert book.sequence == 10
    # The next snapshot brings it back, and that is a resync.
    assert book.apply_snapshot(12, [(99.0, 1.0)], [(101.0, 1.0)])
    assert book.resyncs == 1


def test_removal_at_a_crossing_price_is_not_crossing() -> None:
    book = make_book(sequence=10)
    assert book.apply_change(11, Side.BUY, 101.0, 0.0) == APPLIED
    assert book.apply_change(12, Side.SELL, 99.0, 0.0) == APPLIED
    assert book.in_sync and len(book) == 4


def test_bid_into_empty_asks_is_fine() -> None:
    book = make_book(sequence=10, asks=[])
    assert book.apply_change(11, Side.BUY, 1000.0, 1.0) == APPLIED
    assert book.best_bid_price() == 1000.0


def test_crossed_snapshot_is_refused() -> None:
    book = OrderBook("XBTUSDTM")
    assert book.apply_change(11, Side.BUY, 98.0, 1.0) == BUFFERED
    assert not book.apply_snapshot(10, [(101.0, 1.0)], [(100.0, 1.0)])
    assert book.crossed == 1
    assert not book.in_sync and len(book) == 0
    assert not book.apply_snapshot(10, [(100.0, 1.0)], [(100.0, 1.0)])  # locked counts
    assert book.crossed == 2
    # The buffer survived: a good snapshot still picks up change 11.
    assert book.apply_snapshot(10, [(99.0, 1.0)], [(100.0, 1.0)])
    assert book.levels(Side.BUY) == [(99.0, 1.0), (98.0, 1.0)]


def test_crossed_snapshot_while_in_sync_leaves_the_book_alone() -> None:
    book = make_book(sequence=10)
    assert book.apply_snapshot(20, [(101.0, 1.0)], [(100.0, 1.0)])
    assert book.crossed == 1
    assert book.in_sync and book.sequence == 10
    assert book.best_bid() == (99.0, 1.0)


def test_invalidate() -> None:
    book = make_book(sequence=10)
    book.invalidate()
    assert not book.in_sync
    assert len(book) == 0
    # The exchange restarted its sequences: whatever its sequence, the next snapshot resyncs.
    assert book.apply_change(4, Side.BUY, 98.0, 1.0) == BUFFERED
    assert book.apply_snapshot(3, [(99.0, 1.0)], [(101.0, 1.0)])
    assert book.resyncs == 1
    assert book.sequence == 4
    assert book.levels(Side.BUY) == [(99.0, 1.0), (98.0, 1.0)]
    assert book.apply_change(5, Side.SELL, 101.0, 0.0) == APPLIED


def test_invalidate_discards_the_buffer() -> None:
    book = OrderBook("XBTUSDTM")
    book.apply_change(5, Side.BUY, 98.0, 1.0)
    book.invalidate()
    assert book.apply_snapshot(4, [(99.0, 1.0)], [(101.0, 1.0)])
    assert book.levels(Side.BUY) == [(99.0, 1.0)]
    assert book.sequence == 4


def test_bounded_buffer_drops_the_oldest() -> None:
    book = OrderBook("XBTUSDTM", max_buffered=3)
    for sequence in range(1, 6):
        assert book.apply_change(sequence, Side.BUY, 90.0 + sequence, 1.0) == BUFFERED
    assert book.buffer_dropped == 2
    # 1 and 2 were dropped; 3..5 remain, so a snapshot at 2 can resync.
    assert book.apply_snapshot(2, [(80.0, 1.0)], [(101.0, 1.0)])
    assert book.sequence == 5
    assert book.levels(Side.BUY) == [(95.0, 1.0), (94.0, 1.0), (93.0, 1.0), (80.0, 1.0)]


def test_bounded_buffer_losing_a_needed_change_is_a_gap() -> None:
    book = OrderBook("XBTUSDTM", max_buffered=2)
    for sequence in range(1, 5):
        book.apply_change(sequence, Side.BUY, 90.0 + sequence, 1.0)
    assert not book.apply_snapshot(1, [(80.0, 1.0)], [(101.0, 1.0)])  # 2 was dropped
    assert book.gaps == 1


# --- reads -----------------------------------------------------------------------------


@pytest.fixture
def deep_book() -> OrderBook:
    return make_book(
        bids=[(99.0, 1.0), (98.0, 2.0), (97.0, 3.0), (90.0, 10.0)],
        asks=[(101.0, 4.0), (102.0, 5.0), (103.0, 6.0), (110.0, 20.0)],
    )


def test_top_of_book(deep_book: OrderBook) -> None:
    assert deep_book.best_bid() == (99.0, 1.0)
    assert deep_book.best_ask() == (101.0, 4.0)
    assert deep_book.best_bid_price() == 99.0
    assert deep_book.best_ask_price() == 101.0
    assert deep_book.mid() == 100.0
    assert deep_book.spread_bps() == pytest.approx(200.0)
    assert len(deep_book) == 8


def test_levels(deep_book: OrderBook) -> None:
    assert deep_book.levels(Side.BUY, 2) == [(99.0, 1.0), (98.0, 2.0)]
    assert deep_book.levels(Side.SELL, 3) == [(101.0, 4.0), (102.0, 5.0), (103.0, 6.0)]
    assert deep_book.levels(Side.SELL, 100) == [
        (101.0, 4.0),
        (102.0, 5.0),
        (103.0, 6.0),
        (110.0, 20.0),
    ]
    assert deep_book.levels(Side.BUY, 0) == []
    assert len(deep_book.levels(Side.BUY)) == 4


def test_depth_within_bps(deep_book: OrderBook) -> None:
    # mid 100: 250 bps -> bids >= 97.5, asks <= 102.5
    assert deep_book.depth_within_bps(250) == (3.0, 9.0)
    # 350 bps -> bids >= 96.5, asks <= 103.5
    assert deep_book.depth_within_bps(350) == (6.0, 15.0)
    # 1000.5 bps -> bids >= 89.995, asks <= 110.005: everything
    assert deep_book.depth_within_bps(1000.5) == (16.0, 35.0)
    assert deep_book.depth_within_bps(50) == (0.0, 0.0)


def test_notional_within_bps(deep_book: OrderBook) -> None:
    assert deep_book.notional_within_bps(250) == (99.0 * 1 + 98.0 * 2, 101.0 * 4 + 102.0 * 5)
    assert deep_book.notional_within_bps(350) == pytest.approx((586.0, 1532.0))
    assert deep_book.notional_within_bps(50) == (0.0, 0.0)


def test_depth_needs_both_sides() -> None:
    book = make_book(asks=[])
    assert book.depth_within_bps(1e6) == (0.0, 0.0)
    assert book.notional_within_bps(1e6) == (0.0, 0.0)
    assert book.mid() == 0.0
    assert book.spread_bps() == float("inf")


def test_imbalance(deep_book: OrderBook) -> None:
    assert deep_book.imbalance(1) == pytest.approx((1 - 4) / 5)
    assert deep_book.imbalance(2) == pytest.approx((3 - 9) / 12)
    assert deep_book.imbalance(100) == pytest.approx((16 - 35) / 51)
    assert deep_book.imbalance(0) == 0.0
    assert make_book(asks=[]).imbalance(3) == 1.0
    assert make_book(bids=[]).imbalance(3) == -1.0


def _plain_reads(book: OrderBook, bps: float, n: int) -> tuple[Any, ...]:
    """depth, notional and imbalance by a plain walk over `levels`, best level first."""
    bids, asks = book.levels(Side.BUY), book.levels(Side.SELL)
    if not bids or not asks:
        depth = notional = (0.0, 0.0)
    else:
        mid = book.mid()
        lo, hi = mid * (1.0 - bps / 1e4), mid * (1.0 + bps / 1e4)
        bd = bn = ad = an = 0.0
        for price, size in bids:
            if price >= lo:
                bd += size
                bn += price * size
        for price, size in asks:
            if price <= hi:
                ad += size
                an += price * size
        depth, notional = (bd, ad), (bn, an)
    if n <= 0:
        return depth, notional, 0.0
    bs = as_ = 0.0
    for _, size in bids[:n]:
        bs += size
    for _, size in asks[:n]:
        as_ += size
    total = bs + as_
    return depth, notional, 0.0 if total <= 0.0 else (bs - as_) / total


@pytest.mark.parametrize("levels", [1, 7, 300, 1_999, 2_500, 6_000])
def test_depth_reads_match_a_plain_walk(levels: int) -> None:
    # From one level to books far deeper than any live one: the bisect bounds and the
    # best-first walks must give the same floats as a plain walk over `levels`.
    mid = 50_000.0
    bids = [(mid - 0.5 - 0.1 * i, 0.001 * ((i * 7919) % 1000 + 1)) for i in range(levels)]
    asks = [(mid + 0.5 + 0.1 * i, 0.001 * ((i * 104729) % 1000 + 1)) for i in range(levels)]
    book = make_book(bids=bids, asks=asks)
    for bps in (0.0, 0.05, 1.0, 10.0, 30.0, 1e4, float("inf"), -1e5):
        for n in (0, 1, 5, 50, 1_000, 10**6):
            reads = (book.depth_within_bps(bps), book.notional_within_bps(bps), book.imbalance(n))
            assert reads == _plain_reads(book, bps, n)
    # A NaN band compares false everywhere, so every level counts (as it always did).
    everything = _plain_reads(book, float("inf"), 0)
    assert book.depth_within_bps(float("nan")) == everything[0]
    assert book.notional_within_bps(float("nan")) == everything[1]


# --- properties against a model exchange ---------------------------------------------------

Change = tuple[int, Side, float, float]
Model = tuple[dict[float, float], dict[float, float]]

BASE_SEQUENCE = 1_000
TICK = 0.5

op = st.tuples(
    st.booleans(),  # bid?
    st.integers(-20, 20),  # price offset in ticks from 100
    st.one_of(st.just(0.0), st.integers(1, 50).map(float)),  # 0 removes the level
)
ops = st.lists(op, min_size=1, max_size=80)
long_ops = st.lists(op, min_size=10, max_size=80)


def exchange(operations: list[tuple[bool, int, float]]) -> tuple[list[Change], list[Model]]:
    """Run `operations` on a model exchange book, skipping any that would cross it.

    Returns the emitted changes (sequences BASE_SEQUENCE + 1, + 2, ...) and the model book
    after each sequence: states[i] is the book at sequence BASE_SEQUENCE + i.
    """
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    states: list[Model] = [({}, {})]
    changes: list[Change] = []
    sequence = BASE_SEQUENCE
    for is_bid, offset, size in operations:
        # Bids lean low and asks lean high so that most operations are valid.
        price = 100.0 + (offset - 8 if is_bid else offset + 8) * TICK
        if is_bid:
            if size > 0 and asks and price >= min(asks):
                continue
            if size > 0:
                bids[price] = size
            else:
                bids.pop(price, None)
        else:
            if size > 0 and bids and price <= max(bids):
                continue
            if size > 0:
                asks[price] = size
            else:
                asks.pop(price, None)
        sequence += 1
        changes.append((sequence, Side.BUY if is_bid else Side.SELL, price, size))
        states.append((dict(bids), dict(asks)))
    return changes, states


def snapshot_at(states: list[Model], sequence: int) -> tuple[Levels, Levels]:
    bids, asks = states[sequence - BASE_SEQUENCE]
    # Snapshot order is irrelevant to the book; give it in dict order.
    return list(bids.items()), list(asks.items())


def assert_consistent(book: OrderBook, states: list[Model]) -> None:
    """Never crossed; out of sync means empty; in sync means exactly the model book."""
    bid_levels, ask_levels = book.levels(Side.BUY), book.levels(Side.SELL)
    assert book.best_bid() == (bid_levels[0] if bid_levels else None)
    assert book.best_ask() == (ask_levels[0] if ask_levels else None)
    bid, ask = book.best_bid_price(), book.best_ask_price()
    assert bid == (bid_levels[0][0] if bid_levels else 0.0)
    assert ask == (ask_levels[0][0] if ask_levels else 0.0)
    if bid and ask:
        assert bid < ask, "crossed book"
    if not book.in_sync:
        assert len(book) == 0
        return
    bids, asks = states[book.sequence - BASE_SEQUENCE]
    assert bid_levels == sorted(bids.items(), reverse=True)
    assert ask_levels == sorted(asks.items())


FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(operations=ops, data=st.data())
def test_valid_stream_tracks_the_exchange_exactly(
    operations: list[tuple[bool, int, float]], data: st.DataObject
) -> None:
    changes, states = exchange(operations)
    last = BASE_SEQUENCE + len(changes)
    # We subscribe at some point, the REST snapshot is taken no earlier than just before the
    # first change we receive, and it reaches us after `delivered_before` changes.
    first = data.draw(st.integers(BASE_SEQUENCE + 1, last + 1), label="first change received")
    snap_seq = data.draw(st.integers(first - 1, last), label="snapshot sequence")
    stream = [c for c in changes if c[0] >= first]
    delivered_before = data.draw(st.integers(0, len(stream)), label="changes before snapshot")

    book = OrderBook("XBTUSDTM")
    for change in stream[:delivered_before]:
        assert book.apply_change(*change) == BUFFERED
        assert_consistent(book, states)
    assert book.apply_snapshot(snap_seq, *snapshot_at(states, snap_seq))
    assert_consistent(book, states)
    for change in stream[delivered_before:]:
        code = book.apply_change(*change)
        assert code == (STALE if change[0] <= snap_seq else APPLIED)
        assert book.in_sync
        assert_consistent(book, states)
    assert book.sequence == max(last, snap_seq)
    assert book.gaps == book.crossed == book.resyncs == book.buffer_dropped == 0


@FAST
@given(operations=long_ops, data=st.data())
def test_faulty_stream_never_diverges_silently(
    operations: list[tuple[bool, int, float]], data: st.DataObject
) -> None:
    changes, states = exchange(operations)
    last = BASE_SEQUENCE + len(changes)
    max_buffered = data.draw(st.sampled_from([3, 50_000]), label="max_buffered")
    book = OrderBook("XBTUSDTM", max_buffered=max_buffered)
    codes = {APPLIED, STALE, BUFFERED, GAP, CROSSED}
    # Highest sequence delivered since the last disconnect: an in-sync book that is behind
    # it has silently missed something (e.g. took a gap for a duplicate).
    newest = -1

    def deliver(change: Change) -> None:
        nonlocal newest
        assert book.apply_change(*change) in codes
        newest = max(newest, change[0])
        check()

    def check() -> None:
        assert_consistent(book, states)
        if book.in_sync:
            assert book.sequence >= newest

    index = 0
    while index < len(changes):
        # Out of sync, snapshots come sooner (as the bot asks for one).
        fault = data.draw(st.integers(0, 19 if book.in_sync else 9), label="fault")
        change = changes[index]
        if fault == 0:  # lost
            pass
        elif fault == 1:  # duplicated
            deliver(change)
            deliver(change)
        elif fault == 2 and index + 1 < len(changes):  # swapped with the next one
            deliver(changes[index + 1])
            deliver(change)
            index += 1
        elif fault == 3:  # replay of an old change
            deliver(changes[data.draw(st.integers(0, index), label="old change")])
            deliver(change)
        elif fault in (4, 5, 6):  # a REST snapshot: usually recent, sometimes any age
            current = change[0] - 1
            if data.draw(st.integers(0, 4), label="any age"):
                low, high = max(BASE_SEQUENCE, current - 3), min(last, current + 3)
            else:
                low, high = BASE_SEQUENCE, last
            seq = data.draw(st.integers(low, high), label="snapshot sequence")
            assert book.apply_snapshot(seq, *snapshot_at(states, seq)) == book.in_sync
            check()
            deliver(change)
        elif fault == 7:  # disconnect
            book.invalidate()
            newest = -1
            check()
            deliver(change)
        else:
            deliver(change)
        index += 1

    # Recovery: a fresh snapshot of the final book always brings it back, exactly.
    assert book.apply_snapshot(last, *snapshot_at(states, last))
    assert book.sequence == last
    check()
    # Only true changes were ever applied, each on top of its predecessor: never crossed.
    assert book.crossed == 0
