"""The engine's outbox: what the core needs from outside leaves it as values.

A book that loses sync asks for a resync once per loss (not per message); a listing asks
to subscribe, a delisting to unsubscribe; the paper broker sends nothing.
"""

from __future__ import annotations

from tests.helpers import ASKS, BIDS, TRADING, Scenario, contract
from tradebot.market.requests import BookResync, Subscribe, Unsubscribe, symbol_topics

A = "AAAUSDTM"
B = "BBBUSDTM"


def _market() -> Scenario:
    sc = Scenario(TRADING)
    sc.open_market([A, B])
    sc.touch(10, A)
    sc.touch(11, B)
    # The first contracts answer is the starting universe, not a listing: the shell
    # subscribes to it itself.
    assert sc.engine.take_requests() == []
    return sc


def test_a_gap_asks_for_one_resync_however_many_messages_follow() -> None:
    sc = _market()
    sc.l2(20, A, 99.0, "buy", 2.0, skip=3)
    for t in range(21, 40):
        sc.touch(t, A)  # buffered while out of sync: no more asks
    assert sc.engine.take_requests() == [BookResync(A, "gap")]
    assert sc.engine.take_requests() == []  # taken once
    sc.snapshot(50, A)
    assert sc.state(A).book.in_sync
    sc.l2(60, A, 99.0, "buy", 2.0, skip=1)  # a new loss asks again
    assert sc.engine.take_requests() == [BookResync(A, "gap")]


def test_a_crossing_change_asks_for_a_resync() -> None:
    sc = _market()
    sc.l2(20, A, ASKS[0][0] + 1.0, "buy", 5.0)  # a bid above the best ask
    assert not sc.state(A).book.in_sync
    assert sc.engine.take_requests() == [BookResync(A, "crossed")]


def test_a_refused_snapshot_asks_again() -> None:
    sc = _market()
    sc.l2(20, A, 99.0, "buy", 2.0, skip=3)
    assert sc.engine.take_requests() == [BookResync(A, "gap")]
    crossed = [(ASKS[0][0] + 1.0, 5.0)]
    sc.snapshot(30, A, bids=crossed, asks=ASKS)  # refused: the answer did not restore sync
    assert sc.engine.take_requests() == [BookResync(A, "snapshot_refused")]
    sc.snapshot(40, A, bids=BIDS, asks=ASKS)
    assert sc.state(A).book.in_sync and sc.engine.take_requests() == []


def test_a_disconnect_asks_for_each_book_it_invalidated_once() -> None:
    sc = _market()
    sc.conn(20, "close")
    sc.conn(21, "close")  # already out of sync: nothing new to ask
    assert sc.engine.take_requests() == [BookResync(A, "disconnect"), BookResync(B, "disconnect")]


def test_listings_and_delistings_change_subscriptions() -> None:
    sc = _market()
    sc.contracts(100, contract(A), contract(B), contract("CCCUSDTM"))
    assert sc.engine.take_requests() == [Subscribe(symbol_topics("CCCUSDTM"))]
    sc.contracts(200, contract(A), contract("CCCUSDTM"))
    assert sc.engine.take_requests() == [Unsubscribe(symbol_topics(B))]
    assert symbol_topics(B)[0] == f"/contractMarket/level2:{B}"


def test_the_paper_broker_satisfies_its_orders_itself() -> None:
    sc = _market()
    sc.buy_pressure(100, A)
    sc.touch(151, A)
    assert sc.of("fill", A)  # it traded
    assert sc.engine.take_requests() == []  # and asked nothing of the outside world


def test_the_outbox_is_bounded_when_nobody_takes_it() -> None:
    from tradebot.market.state import MAX_REQUESTS

    sc = _market()
    for i in range(MAX_REQUESTS + 10):
        sc.l2(20 + i, A, 99.0, "buy", 2.0, skip=1)
        sc.snapshot(20 + i, A)
    assert len(sc.engine.take_requests()) == MAX_REQUESTS
