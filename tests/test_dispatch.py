"""One dispatch path: frames (live, format v2) and maps (format v1) decide alike, and a
closing connection invalidates only what arrived on it.

The parity streams trade: real contracts, a tradable book, buy pressure that enters,
then random level-2 changes, tickers, prints, marks, gaps and disconnects. Each stream
is fed once as text frames (`Parser.parse_frame`) and once as maps (`Parser.parse_ws`);
journals, counters, reports, quotes and books must be identical, and every stream must
have ordered and filled, so the comparison covers the trading code.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from tests.helpers import TRADING, Scenario, level2_msg

A = "AAAUSDTM"
B = "BBBUSDTM"

# (method of Scenario, arguments after the time)
_Op = tuple[str, tuple[Any, ...]]

_SYMBOL = hs.sampled_from([A, B])
_PRICE = hs.sampled_from([99.97, 99.98, 99.99, 100.00, 100.01, 100.02, 100.03])
_OPS: hs.SearchStrategy[_Op] = hs.one_of(
    hs.tuples(
        hs.just("l2"),
        hs.tuples(
            _SYMBOL,
            _PRICE,
            hs.sampled_from(["buy", "sell"]),
            hs.sampled_from([0.0, 1.0, 50.0, 300.0]),
            hs.sampled_from([0, 0, 0, 0, 2]),  # sometimes a gap
        ),
    ),
    hs.tuples(hs.just("ticker"), hs.tuples(_SYMBOL, _PRICE, _PRICE)),
    hs.tuples(
        hs.just("trade"),
        hs.tuples(_SYMBOL, hs.sampled_from(["buy", "sell"]), _PRICE, hs.integers(1, 20)),
    ),
    hs.tuples(hs.just("mark"), hs.tuples(_SYMBOL, _PRICE)),
    hs.tuples(hs.just("buy_pressure"), hs.tuples(_SYMBOL)),
    hs.tuples(hs.just("snapshot"), hs.tuples(_SYMBOL)),
    hs.tuples(hs.just("conn"), hs.tuples(hs.just("close"))),
)


def _run(ops: list[tuple[int, _Op]], *, frames: bool) -> Scenario:
    sc = Scenario(TRADING, frames=frames)
    sc.open_market([A, B])
    sc.touch(50, B)  # both books have had a change on connection 1: a close hits both
    sc.buy_pressure(100, A)  # enters A at 101 ms, fills at 151 ms
    sc.touch(151, A)
    t = 200.0
    for step, (name, args) in ops:
        t += step
        getattr(sc, name)(t, *args)
    sc.touch(t + 60, A)
    sc.touch(t + 61, B)
    sc.finish(t + 1_000)
    return sc


def _derived(sc: Scenario) -> dict[str, Any]:
    market = sc.engine.market
    return {
        "lines": sc.lines(),
        "digest": sc.journal.digest(),
        "counters": sc.counters,
        "report": sc.report,
        "quotes": {
            s: (st.bid, st.bid_size, st.ask, st.ask_size, st.quote_ns, st.stale, st.lost_ns)
            for s, st in sorted(market.symbols.items())
        },
        "books": {
            s: (st.book.in_sync, st.book.levels(1), st.book.levels(-1))
            for s, st in sorted(market.symbols.items())
        },
    }


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=hs.lists(hs.tuples(hs.sampled_from([1, 20, 120]), _OPS), max_size=50))
def test_frames_and_maps_trade_alike(ops: list[tuple[int, _Op]]) -> None:
    as_frames = _run(ops, frames=True)
    as_maps = _run(ops, frames=False)
    assert _derived(as_frames) == _derived(as_maps)
    kinds = as_frames.kinds()
    assert "order" in kinds and "fill" in kinds  # the comparison covered trading


def _two_connections(frames: bool = True) -> Scenario:
    """A's level-2 changes on connection 1, B's on connection 2 (both books in sync)."""
    sc = Scenario(frames=frames)
    sc.open_market([A, B])
    sc.seq[A] = sc.seq[B] = 100
    for t, symbol, conn in ((10, A, 1), (11, B, 2)):
        sc.seq[symbol] += 1
        sc.ws(
            t, level2_msg(symbol, sc.seq[symbol], 99.0, "buy", 3.0), conn=conn if frames else None
        )
    assert sc.state(A).book.in_sync and sc.state(B).book.in_sync
    return sc


def test_a_closing_connection_invalidates_only_the_books_fed_by_it() -> None:
    sc = _two_connections()
    sc.conn(20, "close", conn=2)
    assert sc.state(A).book.in_sync
    assert not sc.state(B).book.in_sync
    assert sc.state(A).lost_ns == 0
    assert sc.state(B).lost_ns > 0
    assert sc.counters["books_in_sync"] == 1


def test_quotes_from_a_closed_connection_are_no_fill_price() -> None:
    sc = _two_connections()
    sc.ws(15, {"topic": f"/contractMarket/tickerV2:{A}", "type": "message",
               "subject": "tickerV2", "data": {"symbol": A, "sequence": 5,
               "bestBidPrice": "99.99", "bestBidSize": 5, "bestAskPrice": "100.0",
               "bestAskSize": 5, "ts": 1_700_000_000_015_000_000}}, conn=3)  # fmt: skip
    sc.conn(20, "close", conn=3)
    assert sc.state(A).book.in_sync  # its book came on connection 1
    assert sc.state(A).lost_ns > 0  # but its quotes came on 3
    assert sc.state(B).lost_ns == 0


def test_a_version_1_recording_invalidates_every_book_on_any_close() -> None:
    sc = _two_connections(frames=False)
    sc.conn(20, "close", conn=2)
    assert not sc.state(A).book.in_sync
    assert not sc.state(B).book.in_sync
