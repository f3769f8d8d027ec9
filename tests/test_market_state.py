"""Market state driven through the Engine: freshness, listings, level-2 top of book, gaps."""

from __future__ import annotations

import pytest

from tests.helpers import ASKS, BIDS, T0, S, Scenario, contract, ns

A = "AAAUSDTM"
B = "BBBUSDTM"
C = "CCCUSDTM"


def _market(*symbols: str) -> Scenario:
    sc = Scenario(trading=False)
    sc.open_market(symbols)
    return sc


def _keepalive(
    sc: Scenario, symbol: str, start_ms: int, stop_ms: int, every_ms: int = 1_000
) -> None:
    """Quote `symbol` every `every_ms` so the scans run at every boundary in between."""
    for t in range(start_ms, stop_ms, every_ms):
        sc.touch(t, symbol)


# --- stale periods ---------------------------------------------------------------------------


def test_silence_longer_than_the_limit_is_one_stale_period_then_fresh() -> None:
    sc = _market(A, B)
    sc.touch(300, A)  # A's last quote before the silence
    _keepalive(sc, B, 500, 20_000)  # scans run every second meanwhile
    sc.touch(20_100, A)  # quotes resume

    stale = sc.of("stale", A)
    fresh = sc.of("fresh", A)
    assert [e.kind for e in sc.entries if e.symbol == A and e.kind in ("stale", "fresh")] == [
        "stale",
        "fresh",
    ]
    # The first scan that sees the quote more than 5 s old: 6 s - 0.3 s = 5.7 s (5 s: 4.7 s).
    assert stale[0].ts_ns == T0 + 6 * S
    assert f'"since_ns":{ns(300)}' in stale[0].detail
    assert fresh[0].ts_ns == ns(20_100)
    # Thirteen more scans saw A stale; none counted again.
    assert sc.counters["stale_periods"] == 1
    assert sc.engine.market.stale_periods == 1
    assert not sc.state(A).stale


def test_silence_shorter_than_the_limit_counts_nothing() -> None:
    sc = _market(A, B)
    sc.touch(300, A)
    _keepalive(sc, B, 500, 5_200, every_ms=250)
    sc.touch(5_200, A)  # 4.9 s later
    _keepalive(sc, B, 5_250, 10_200, every_ms=250)
    sc.touch(10_200, A)  # exactly 5.0 s later, between scans: still fresh (limit is "> 5 s")
    _keepalive(sc, B, 10_250, 12_000, every_ms=250)
    assert sc.of("stale") == []
    assert sc.of("fresh") == []
    assert sc.counters["stale_periods"] == 0


def test_quote_exactly_at_the_limit_on_a_scan_is_fresh() -> None:
    sc = _market(A, B)
    sc.touch(1_000, A)  # on a boundary
    _keepalive(sc, B, 1_500, 7_000, every_ms=500)  # the scan at 6 s sees exactly 5.0 s
    assert sc.of("stale") == []
    _keepalive(sc, B, 7_000, 7_100)  # the scan at 7 s sees 6.0 s
    assert [e.ts_ns for e in sc.of("stale", A)] == [T0 + 7 * S]
    assert sc.counters["stale_periods"] == 1


def test_silence_ending_between_two_scans_still_counts_on_arrival() -> None:
    sc = _market(A, B)
    sc.touch(200, A)
    _keepalive(sc, B, 300, 5_600, every_ms=100)  # scans at 1..5 s see A at most 4.8 s old
    assert sc.of("stale") == []
    sc.touch(5_700, A)  # 5.5 s of silence, noticed when the quote arrives (next scan: 6 s)

    stale, fresh = sc.of("stale", A), sc.of("fresh", A)
    assert len(stale) == 1 and len(fresh) == 1
    assert stale[0].ts_ns == fresh[0].ts_ns == ns(5_700)
    assert f'"since_ns":{ns(200)}' in stale[0].detail
    assert sc.counters["stale_periods"] == 1
    # The scan at 6 s must not count it again.
    _keepalive(sc, B, 5_800, 8_000, every_ms=500)
    sc.touch(8_000, A)
    assert sc.counters["stale_periods"] == 1


def test_silence_ending_between_scans_counts_on_a_ticker_too() -> None:
    sc = _market(A)
    sc.ticker(200, A, 99.99, 100.0)
    sc.ticker(5_700, A, 99.99, 100.0)
    assert [e.kind for e in sc.entries if e.kind in ("stale", "fresh")] == ["stale", "fresh"]
    assert sc.counters["stale_periods"] == 1


@pytest.mark.parametrize("how", ["disappears", "closed"])
def test_delisted_symbol_going_silent_is_not_a_stale_period(how: str) -> None:
    sc = _market(A, B)
    sc.touch(300, A)
    if how == "disappears":
        sc.contracts(500, contract(B))
    else:
        sc.contracts(500, contract(A, "Closed"), contract(B))
    assert sc.counters["delistings"] == [A]
    _keepalive(sc, B, 600, 20_000)
    sc.touch(20_100, A)  # a late quote of the delisted symbol: no on-arrival period either
    assert sc.of("stale") == [] and sc.of("fresh") == []
    assert sc.counters["stale_periods"] == 0


def test_symbol_not_in_the_contract_table_is_never_stale() -> None:
    sc = Scenario(trading=False)
    sc.snapshot(0, A)
    sc.touch(300, A)
    sc.contracts(400, contract(B))  # A is not a contract we know
    sc.snapshot(500, B)
    _keepalive(sc, B, 600, 12_000)
    assert sc.counters["stale_periods"] == 0


def test_each_silence_is_its_own_period() -> None:
    sc = _market(A, B)
    sc.touch(300, A)
    _keepalive(sc, B, 500, 9_000)
    sc.touch(9_100, A)  # period 1, seen by the scan at 6 s
    _keepalive(sc, B, 9_500, 15_000)
    sc.touch(15_000, A)  # 5.9 s, between scans (period 2, on arrival)
    assert sc.counters["stale_periods"] == 2
    assert [e.ts_ns for e in sc.of("stale", A)] == [T0 + 6 * S, ns(15_000)]
    assert [e.ts_ns for e in sc.of("fresh", A)] == [ns(9_100), ns(15_000)]


# --- listings and delistings -----------------------------------------------------------------


def test_symbol_absent_from_the_first_answer_and_present_in_the_second_is_a_listing() -> None:
    sc = Scenario(trading=False)
    sc.contracts(0, contract(A))
    assert sc.counters["listings"] == []  # the first answer is the baseline
    sc.contracts(1_000, contract(A), contract(B))
    assert sc.counters["listings"] == [B]
    assert sc.counters["delistings"] == []
    assert [(e.ts_ns, e.symbol) for e in sc.of("listing")] == [(ns(1_000), B)]
    assert sc.engine.market.contracts.listed_at_ns == {B: ns(1_000)}


def test_symbols_in_the_baseline_are_not_listings() -> None:
    sc = Scenario(trading=False)
    sc.contracts(0, contract(A), contract(B, "Paused"))
    assert sc.counters["listings"] == [] and sc.counters["delistings"] == []
    assert sc.of("listing") == [] and sc.of("delisting") == []


@pytest.mark.parametrize("status", ["Closed", "Paused", "BeingSettled"])
def test_status_leaving_open_is_a_delisting(status: str) -> None:
    sc = Scenario(trading=False)
    sc.contracts(0, contract(A), contract(B))
    sc.contracts(1_000, contract(A, status), contract(B))
    assert sc.counters["delistings"] == [A]
    assert sc.counters["listings"] == []
    assert [(e.ts_ns, e.symbol) for e in sc.of("delisting")] == [(ns(1_000), A)]
    assert not sc.engine.market.contracts.is_open(A)
    assert sc.engine.market.contracts.is_open(B)


def test_symbol_disappearing_is_a_delisting() -> None:
    sc = Scenario(trading=False)
    sc.contracts(0, contract(A), contract(B), contract(C))
    sc.contracts(1_000, contract(B))
    assert sc.counters["delistings"] == [A, C]  # sorted within one answer
    assert sc.counters["listings"] == []


def test_same_answer_twice_changes_nothing() -> None:
    sc = Scenario(trading=False)
    answer = [contract(A), contract(B, "Paused")]
    sc.contracts(0, *answer)
    sc.contracts(1_000, *answer)
    sc.contracts(2_000, *reversed(answer))  # order does not matter
    assert sc.counters["listings"] == [] and sc.counters["delistings"] == []
    assert sc.of("listing") == [] and sc.of("delisting") == []


def test_delisted_then_open_again_is_listed_again_and_only_once_per_change() -> None:
    sc = Scenario(trading=False)
    sc.contracts(0, contract(A))
    sc.contracts(1_000, contract(A, "Closed"))
    sc.contracts(2_000, contract(A, "Closed"))  # still closed: nothing new
    sc.contracts(3_000, contract(A))
    sc.contracts(4_000, contract(A))
    assert sc.counters["delistings"] == [A]
    assert sc.counters["listings"] == [A]
    assert sc.engine.market.contracts.is_open(A)


def test_vanished_symbol_reappearing_closed_is_not_delisted_twice() -> None:
    sc = Scenario(trading=False)
    sc.contracts(0, contract(A))
    sc.contracts(1_000)  # A disappears: delisted
    sc.contracts(2_000, contract(A, "Closed"))  # back in the list, but not Open
    assert sc.counters["delistings"] == [A]
    assert len(sc.of("delisting")) == 1


# --- level 2 ---------------------------------------------------------------------------------


def test_applied_level2_changes_move_the_top_of_book_exactly() -> None:
    sc = _market(A)
    st = sc.state(A)
    assert (st.bid, st.bid_size, st.ask, st.ask_size) == (99.99, 200.0, 100.0, 100.0)

    sc.l2(100, A, 99.995, "buy", 7)  # a better bid
    assert (st.bid, st.bid_size) == (99.995, 7.0)
    assert st.quote_ns == ns(100)
    sc.l2(200, A, 99.98, "buy", 1)  # a deeper bid: top unchanged
    assert (st.bid, st.bid_size) == (99.995, 7.0)
    sc.l2(300, A, 99.995, "buy", 0)  # the best bid leaves: the next one is best
    assert (st.bid, st.bid_size) == (99.99, 200.0)
    sc.l2(400, A, 99.99, "buy", 55)  # the best bid's size changes
    assert (st.bid, st.bid_size) == (99.99, 55.0)

    sc.l2(500, A, 100.0, "sell", 0)  # the best ask leaves
    assert (st.ask, st.ask_size) == (100.01, 100.0)
    sc.l2(600, A, 100.005, "sell", 3)  # a better ask
    assert (st.ask, st.ask_size) == (100.005, 3.0)
    sc.l2(700, A, 100.01, "sell", 9)  # a deeper ask: top unchanged
    assert (st.ask, st.ask_size) == (100.005, 3.0)
    sc.l2(800, A, 100.005, "sell", 4)
    assert (st.ask, st.ask_size) == (100.005, 4.0)

    assert st.book.best_bid() == (st.bid, st.bid_size)
    assert st.book.best_ask() == (st.ask, st.ask_size)
    assert st.book.sequence == 108
    assert sc.counters["sequence_gaps"] == 0
    assert sc.counters["books_in_sync"] == 1


def test_removing_the_last_ask_level_empties_that_side() -> None:
    sc = Scenario(trading=False)
    sc.snapshot(0, A, BIDS, [(100.0, 5.0)])
    sc.l2(100, A, 100.0, "sell", 0)
    st = sc.state(A)
    assert (st.ask, st.ask_size) == (0.0, 0.0)
    assert (st.bid, st.bid_size) == (99.99, 200.0)


def test_a_sequence_gap_loses_the_book_and_is_journaled() -> None:
    sc = _market(A)
    sc.l2(100, A, 99.5, "buy", 1)  # 101
    sc.l2(200, A, 99.6, "buy", 1, skip=2)  # 104: 102 and 103 were lost
    st = sc.state(A)
    assert sc.counters["sequence_gaps"] == 1
    assert sc.counters["books_in_sync"] == 0
    assert not st.book.in_sync
    lost = sc.of("book_lost", A)
    assert len(lost) == 1
    assert lost[0].ts_ns == ns(200)
    assert lost[0].detail == '{"seq":104,"why":3}'
    # The change that revealed the gap was not applied: the quote time did not move.
    assert st.quote_ns == ns(100)
    # Later changes are buffered, not lost again.
    sc.l2(300, A, 99.7, "buy", 1)
    assert sc.counters["sequence_gaps"] == 1 and len(sc.of("book_lost")) == 1


def test_a_crossing_change_loses_the_book_too() -> None:
    sc = _market(A)
    sc.l2(100, A, 100.05, "buy", 1)  # a bid above the best ask (100.00): we missed something
    assert sc.counters["crossed_books"] == 1
    assert sc.counters["sequence_gaps"] == 0
    assert [e.detail for e in sc.of("book_lost", A)] == ['{"seq":101,"why":4}']


def test_snapshot_after_a_gap_resyncs_and_replays_buffered_changes() -> None:
    sc = _market(A)
    sc.l2(100, A, 99.5, "buy", 1, skip=1)  # 102: gap
    sc.l2(150, A, 99.995, "sell", 2)  # 103, buffered: a better ask
    sc.snapshot(200, A, BIDS, ASKS, sequence=102)
    st = sc.state(A)
    assert st.book.in_sync
    assert st.book.sequence == 103  # the buffered 103 was replayed on top
    assert (st.ask, st.ask_size) == (99.995, 2.0)
    assert sc.counters["book_resyncs"] == 1
    assert [e.ts_ns for e in sc.of("book_resync", A)] == [ns(200)]
    assert st.quote_ns == ns(200)


def test_state_fields_are_stamped_with_receive_times() -> None:
    sc = _market(A)
    sc.trade(100, A, "sell", 99.99, 3)
    sc.mark(200, A, 100.02)
    sc.funding(300, A, 0.0003)
    st = sc.state(A)
    assert (st.last_price, st.last_size, int(st.last_side), st.trade_ns) == (
        99.99,
        3.0,
        -1,
        ns(100),
    )
    assert (st.mark_price, st.mark_ns) == (100.02, ns(200))
    assert (st.funding_rate, st.last_funding_ns) == (0.0003, ns(300))
    # From the contracts answer (the state existed): 4 h to the next funding time.
    assert st.next_funding_ns == ns(1) + 4 * 3_600 * S
    assert st.volume_24h == 1_000_000.0


def test_contracts_answer_before_the_first_quote_still_informs_the_state() -> None:
    sc = Scenario(trading=False)
    sc.contracts(0, contract(A))
    sc.snapshot(10, A)
    st = sc.state(A)
    assert st.volume_24h == 1_000_000.0
    assert st.funding_rate == 0.0001
    assert st.next_funding_ns == ns(0) + 4 * 3_600 * S
