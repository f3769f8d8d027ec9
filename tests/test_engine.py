"""The Engine: ticks on the run's clock, connection loss and resync, counters, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from tests.helpers import (
    MS,
    T0,
    TRADING,
    S,
    Scenario,
    contract,
    contracts_answer,
    detail,
    level2_msg,
    ns,
    snapshot_answer,
)
from tradebot.decide.quality import assess
from tradebot.decide.tracker import SymbolTracker
from tradebot.engine import Engine

A = "AAAUSDTM"
B = "BBBUSDTM"
FIXTURES = Path(__file__).parent / "fixtures" / "kucoin"


class _TickSpy:
    """Records the times the engine ticks at (wraps Market.scan_stale)."""

    def __init__(self, engine: Engine) -> None:
        self.times: list[int] = []
        inner = engine.market.scan_stale

        def scan(now_ns: int) -> None:
            self.times.append(now_ns)
            inner(now_ns)

        engine.market.scan_stale = scan  # type: ignore[method-assign]


# --- ticks -----------------------------------------------------------------------------------


def test_first_message_only_schedules_the_next_boundary() -> None:
    sc = Scenario(trading=False)
    spy = _TickSpy(sc.engine)
    sc.contracts(300, contract(A))
    assert spy.times == []
    assert sc.engine.next_tick_ns == T0 + S
    sc.contracts(999.999, contract(A))
    assert spy.times == []
    sc.contracts(1_000, contract(A))  # exactly on the boundary: that tick runs first
    assert spy.times == [T0 + S]
    assert sc.engine.next_tick_ns == T0 + 2 * S


def test_ticks_after_a_long_silence_each_run_at_their_own_boundary() -> None:
    sc = Scenario(trading=False)
    spy = _TickSpy(sc.engine)
    sc.open_market([A, B])
    sc.touch(300, A)  # A's last quote: stale at the 6 s scan (5.7 s old)
    sc.touch(2_500, B)  # B's last quote: stale at the 8 s scan (5.5 s old)
    assert spy.times == [T0 + S, T0 + 2 * S]
    assert sc.of("stale") == []

    sc.contracts(12_200, contract(A), contract(B))  # one message after 9.7 s of silence
    assert spy.times == [T0 + k * S for k in range(1, 13)]
    stale = sc.of("stale")
    assert [(e.symbol, e.ts_ns) for e in stale] == [(A, T0 + 6 * S), (B, T0 + 8 * S)]
    assert [detail(e)["since_ns"] for e in stale] == [ns(300), ns(2_500)]
    assert sc.engine.next_tick_ns == T0 + 13 * S
    assert sc.counters["stale_periods"] == 2


def test_conn_records_and_finish_advance_the_clock_too() -> None:
    sc = Scenario(trading=False)
    spy = _TickSpy(sc.engine)
    sc.contracts(0, contract(A))
    sc.conn(2_500, "open")
    assert spy.times == [T0 + S, T0 + 2 * S]
    sc.finish(4_000)
    assert spy.times == [T0 + k * S for k in range(1, 5)]


def test_tick_length_is_configurable_and_boundaries_are_absolute() -> None:
    sc = Scenario(trading=False, tick_ms=250)
    spy = _TickSpy(sc.engine)
    sc.contracts(130, contract(A))
    sc.contracts(900, contract(A))
    assert spy.times == [T0 + 250 * MS, T0 + 500 * MS, T0 + 750 * MS]


# --- connection loss -------------------------------------------------------------------------


def test_conn_close_invalidates_books_and_a_snapshot_resyncs_them() -> None:
    sc = Scenario(TRADING)
    sc.open_market([A, B])
    sc.trade(50, A, "buy", 100.0, 5)
    assert sc.counters["books_in_sync"] == 2

    sc.conn(100, "close", conn=1, reason="eof")
    assert sc.counters["books_in_sync"] == 0
    assert sc.counters["connection_events"] == {"close": 1}
    assert [(e.ts_ns, e.detail) for e in sc.of("disconnect")] == [
        (ns(100), '{"conn":1,"reason":"eof"}')
    ]
    st = sc.state(A)
    assert not st.book.in_sync and len(st.book) == 0

    # Quotes keep coming (tickers): trading waits, quality says why.
    sc.ticker(200, A, 99.99, 100.0, bid_size=200, ask_size=100)
    verdict = assess(
        st,
        sc.engine.market.contracts,
        SymbolTracker(
            completeness_window_s=60, volume_window_s=900, volume_bucket_s=60, momentum_window_s=60
        ),
        ns(200),
        sc.config.quality,
    )
    assert not verdict.tradable
    assert verdict.reasons[0] == "book_out_of_sync"
    rejections = sc.details("rejection", A)
    assert rejections and rejections[0]["layer"] == "data_quality"
    assert rejections[0]["reason"] == "book_out_of_sync"
    assert sc.of("order") == []
    # Level-2 changes are buffered meanwhile (not counted as gaps).
    sc.l2(300, A, 99.5, "buy", 3)
    assert sc.counters["sequence_gaps"] == 0

    sc.snapshot(400, A, sequence=100)  # the change at 101 is replayed on top
    assert sc.counters["book_resyncs"] == 1
    assert sc.counters["books_in_sync"] == 1  # B still waits for its snapshot
    assert st.book.in_sync and st.book.sequence == 101
    assert [e.ts_ns for e in sc.of("book_resync", A)] == [ns(400)]

    # The resync snapshot is itself a quote: trading resumes with an entry at once.
    orders = sc.of("order", A)
    assert [(e.ts_ns, detail(e)["reason"]) for e in orders] == [(ns(400), "entry")]


def test_conn_open_does_not_invalidate() -> None:
    sc = Scenario(trading=False)
    sc.open_market([A])
    sc.conn(100, "open")
    sc.conn(200, "error", reason="boom")
    assert sc.counters["connection_events"] == {"error": 1, "open": 1}
    assert len(sc.of("disconnect")) == 1  # the error, not the open
    assert sc.counters["books_in_sync"] == 0


# --- counters --------------------------------------------------------------------------------


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_messages_are_counted_by_channel_and_rest_by_endpoint() -> None:
    sc = Scenario(trading=False)
    sc.open_market([A])
    for _ in range(3):
        sc.touch(10, A)
    sc.ticker(20, A, 99.99, 100.0)
    sc.trade(30, A, "buy", 100.0, 1)
    sc.mark(40, A, 100.0)
    sc.funding(50, A, 0.0001)
    sc.ws(60, _fixture("ws_tickerV2.json"))
    sc.ws(70, _fixture("ws_execution.json"))
    sc.ws(80, {"type": "welcome", "id": "abc"})
    sc.ws(90, {"type": "pong", "id": "1"})
    sc.rest(
        100,
        {
            "method": "GET",
            "path": "/api/v1/timestamp",
            "status": 200,
            "body": {"code": "200000", "data": 1_700_000_000_000},
        },
    )
    sc.rest(
        110,
        {
            "method": "GET",
            "path": "/api/v1/level2/snapshot",
            "params": {"symbol": A},
            "status": 429,
            "body": {"code": "429000", "msg": "Too Many Requests"},
        },
    )
    c = sc.counters
    assert c["messages_by_topic"] == {
        "announcement": 1,
        "execution": 2,
        "instrument": 1,
        "level2": 3,
        "tickerV2": 2,
    }
    assert c["rest_by_endpoint"] == {"rest_contracts": 1, "rest_snapshot": 1, "rest_timestamp": 1}
    assert c["rest_errors"] == {"rest_snapshot": 1}
    assert c["control_messages"] == {"pong": 1, "welcome": 1}
    assert c["malformed_payloads"] == {}
    assert c["symbols_seen"] == 2  # AAAUSDTM and the fixtures' XBTUSDTM
    assert sc.engine.ws_messages == 11


def _ws(topic: str, data: Any, subject: str = "x") -> dict[str, Any]:
    return {"type": "message", "topic": topic, "subject": subject, "data": data}


L2 = f"/contractMarket/level2:{A}"
MALFORMED_WS: list[tuple[Any, str]] = [
    ("not json {", "ws_not_json"),
    ([1, 2, 3], "ws_not_object"),
    (None, "ws_not_object"),
    ({"type": "message", "data": {}}, "message_without_topic"),
    (_ws("/contractMarket/nope:XBTUSDTM", {}), "unknown_topic"),
    (_ws("/contractMarket/level2", {"sequence": 1}), "level2_no_symbol"),
    (_ws(L2, "text"), "level2_no_data"),
    (_ws(L2, {"sequence": 1, "timestamp": 1}), "level2_missing_field"),
    (_ws(L2, {"sequence": 1, "change": "abc", "timestamp": 1}), "level2_bad_value"),
    (_ws(L2, {"sequence": 1, "change": "1,buy,nan", "timestamp": 1}), "level2_bad_value"),
    (_ws(L2, {"sequence": 1, "change": "1,hold,2", "timestamp": 1}), "level2_bad_value"),
    (_ws(L2, {"sequence": "x", "change": "1,buy,2", "timestamp": 1}), "level2_bad_value"),
    (_ws(L2, {"sequence": 1, "change": 5, "timestamp": 1}), "level2_bad_value"),
    (_ws(f"/contractMarket/tickerV2:{A}", {"bestBidPrice": "1"}), "tickerV2_missing_field"),
    (
        _ws(
            f"/contractMarket/tickerV2:{A}",
            {
                "sequence": 1,
                "bestBidPrice": "inf",
                "bestAskPrice": "1",
                "bestBidSize": 1,
                "bestAskSize": 1,
                "ts": 1,
            },
        ),
        "tickerV2_bad_value",
    ),
    (
        _ws(
            f"/contractMarket/execution:{A}",
            {"sequence": 1, "side": "up", "price": "1", "size": 1, "ts": 1},
        ),
        "execution_bad_value",
    ),
    (
        _ws(f"/contract/instrument:{A}", {"markPrice": 1}, "mark.index.price"),
        "instrument_missing_field",
    ),
    (_ws(f"/contract/instrument:{A}", {}, "weird.subject"), "instrument_bad_value"),
    (
        _ws(
            "/contract/announcement",
            {"fundingRate": 0.1, "fundingTime": 1, "timestamp": 1},
            "funding.begin",
        ),
        "announcement_bad_value",
    ),
    ({"type": "surprise"}, "ws_unknown_type"),
]


@pytest.mark.parametrize(("msg", "reason"), MALFORMED_WS)
def test_malformed_ws_payloads_are_counted_by_reason(msg: Any, reason: str) -> None:
    sc = Scenario(TRADING)
    sc.open_market([A])
    sc.ws(10, msg)
    assert sc.counters["malformed_payloads"] == {reason: 1}
    assert sc.counters["messages_by_topic"] == {}
    assert sc.state(A).book.sequence == 100  # nothing reached the book


MALFORMED_REST: list[tuple[Any, str]] = [
    ("nope", "rest_not_object"),
    (
        {"path": "/api/v1/unknown", "status": 200, "body": {"code": "200000", "data": 1}},
        "rest_unknown_path",
    ),
    (
        {"path": "/api/v1/contracts/active", "status": 200, "body": {"code": "200000"}},
        "rest_contracts_missing_field",
    ),
    (
        {"path": "/api/v1/contracts/active", "status": 200, "body": {"code": "200000", "data": {}}},
        "rest_contracts_bad_value",
    ),
    (snapshot_answer(A, 1, [(1, "x")], []), "rest_snapshot_bad_value"),
    (
        {
            "path": "/api/v1/level2/snapshot",
            "params": {},
            "status": 200,
            "body": {"code": "200000", "data": {"sequence": 1, "bids": [], "asks": []}},
        },
        "rest_snapshot_bad_value",
    ),
    (
        {
            "path": "/api/v1/level2/snapshot",
            "params": {"symbol": A},
            "status": 200,
            "body": {"code": "200000", "data": []},
        },
        "rest_snapshot_bad_value",
    ),
    (
        {"path": "/api/v1/timestamp", "status": 200, "body": {"code": "200000", "data": "1"}},
        "rest_timestamp_bad_value",
    ),
]


@pytest.mark.parametrize(("answer", "reason"), MALFORMED_REST)
def test_malformed_rest_answers_are_counted_by_reason(answer: Any, reason: str) -> None:
    sc = Scenario(TRADING)
    sc.rest(0, answer)
    assert sc.counters["malformed_payloads"] == {reason: 1}
    assert sc.counters["rest_by_endpoint"] == {}


def test_a_malformed_contract_is_skipped_the_others_kept() -> None:
    sc = Scenario(trading=False)
    bad_tick = contract(B, tickSize=0)
    no_status = contract("CCCUSDTM")
    del no_status["status"]
    sc.rest(0, contracts_answer([contract(A), bad_tick, no_status, "junk"]))
    assert sc.counters["malformed_payloads"] == {"contract_malformed": 3}
    assert sc.counters["rest_by_endpoint"] == {"rest_contracts": 1}
    assert sc.engine.market.contracts.is_open(A)
    assert sc.engine.market.contracts.get(B) is None


# Values that parse into events but are odd: they must not raise further down either.
_ODD = hs.one_of(
    hs.none(),
    hs.booleans(),
    hs.integers(min_value=-(2**70), max_value=2**70),
    hs.floats(allow_nan=True, allow_infinity=True),
    hs.sampled_from(["", "0", "-1", "1e400", "nan", "buy", "sell", "1,buy,2", "abc"]),
    hs.lists(hs.integers(), max_size=2),
    hs.dictionaries(hs.sampled_from(["a", "b"]), hs.integers(), max_size=2),
)

_TEMPLATES = [
    level2_msg(A, 101, 99.5, "buy", 1),
    _fixture("ws_tickerV2.json"),
    _fixture("ws_execution.json"),
    _fixture("ws_instrument.json"),
    _fixture("ws_announcement.json"),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    template=hs.sampled_from(range(len(_TEMPLATES))),
    mutations=hs.lists(hs.tuples(hs.integers(0, 20), _ODD), min_size=1, max_size=3),
)
def test_mutated_ws_payloads_never_raise(template: int, mutations: list[tuple[int, Any]]) -> None:
    msg = json.loads(json.dumps(_TEMPLATES[template]))
    keys = list(msg["data"])
    for index, value in mutations:
        msg["data"][keys[index % len(keys)]] = value
    sc = Scenario(TRADING)
    sc.open_market([A, "XBTUSDTM"])
    sc.touch(5, A)
    sc.ws(10, msg)
    sc.touch(20, A)
    sc.finish(1_500)
    c = sc.counters
    assert sum(c["malformed_payloads"].values()) + sum(c["messages_by_topic"].values()) >= 3
