"""The engine's lanes (fused level-2 and tickerV2 paths) against the general path.

A lane must be invisible: same state, counters, journal and decisions as parsing every
message into an event. Each test runs one input through `Engine(lanes=True)` and
`Engine(lanes=False)` and compares everything they derive.
"""

from __future__ import annotations

import json
from decimal import localcontext
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from simulator.recording import RecordingReader
from tests.helpers import T0, contracts_answer, level2_msg, snapshot_answer, ticker_msg
from tradebot.engine import Engine
from tradebot.journal import MONEY_CONTEXT

SAMPLE = Path(__file__).parent.parent / "recordings" / "sample.msgpack"
A = "AAAUSDTM"
B = "BBBUSDTM"
MS = 1_000_000


def _feed(engine: Engine, records: list[tuple[Any, ...]]) -> None:
    for recv_ns, kind, payload, *_ in records:
        payload = json.loads(json.dumps(payload)) if kind == "ws" else payload  # own copy
        if kind == "ws":
            engine.on_ws(recv_ns, payload)
        elif kind == "rest":
            engine.on_rest(recv_ns, payload)
        else:
            engine.on_conn(recv_ns, payload)
    if records:
        engine.finish(records[-1][0])


def _derived(engine: Engine) -> dict[str, Any]:
    market = engine.market
    return {
        "digest": engine.journal.digest(),
        "counters": engine.counters(),
        "trading": engine.trading_report(),
        "quotes": {
            s: (st.bid, st.bid_size, st.ask, st.ask_size, st.quote_ns, st.stale)
            for s, st in sorted(market.symbols.items())
        },
        "books": {s: st.book.levels(1) + st.book.levels(-1) for s, st in market.symbols.items()},
    }


def _both(records: list[tuple[Any, ...]]) -> tuple[dict[str, Any], dict[str, Any], Engine]:
    with localcontext(MONEY_CONTEXT):
        fast = Engine(lanes=True)
        _feed(fast, records)
        slow = Engine(lanes=False)
        _feed(slow, records)
        return _derived(fast), _derived(slow), fast


def test_the_sample_recording_derives_the_same_with_and_without_lanes() -> None:
    with RecordingReader(SAMPLE) as reader:
        records = list(reader)
    fast, slow, engine = _both(records)
    assert engine._lanes  # the lanes were used
    assert fast == slow


def _market_records() -> list[tuple[int, str, Any]]:
    return [
        (T0, "rest", contracts_answer([A, B])),
        (T0 + MS, "rest", snapshot_answer(A, 100, [(99.0, 5)], [(101.0, 5)])),
        (T0 + 2 * MS, "rest", snapshot_answer(B, 200, [(9.0, 5)], [(11.0, 5)])),
    ]


# Level-2 and ticker messages, valid and broken in the ways a lane must hand back.
_SYMBOL = hs.sampled_from([A, B])
_LEVEL2 = hs.builds(
    level2_msg,
    _SYMBOL,
    hs.integers(99, 215),
    hs.sampled_from([9.0, 9.5, 10.0, 10.5, 11.0, 99.0, 99.5, 100.0, 100.5, 101.0]),
    hs.sampled_from(["buy", "sell"]),
    hs.sampled_from([0, 1, 2.5]),
)
_TICKER = hs.builds(
    ticker_msg,
    _SYMBOL,
    hs.sampled_from([9.0, 99.0, 99.5]),
    hs.sampled_from([11.0, 100.5, 101.0]),
)
_BREAKS: list[tuple[str, Any]] = [
    ("type", "ack"),
    ("type", "notice"),
    ("data", None),
    ("data", []),
    ("data.sequence", "x"),
    ("data.sequence", True),
    ("data.change", "1,up,2"),
    ("data.change", "nan,buy,1"),
    ("data.timestamp", "soon"),
    ("data.symbol", B),
    ("data.symbol", 7),
    ("data.symbol", ""),
    ("data.bestBidPrice", "inf"),
    ("data.bestAskSize", None),
]


def _broken(msg: dict[str, Any], where: str, value: Any) -> dict[str, Any]:
    msg = json.loads(json.dumps(msg))
    if where.startswith("data."):
        if isinstance(msg.get("data"), dict):
            msg["data"][where[5:]] = value
    else:
        msg[where] = value
    return msg


_MESSAGE = hs.one_of(
    _LEVEL2,
    _TICKER,
    hs.tuples(hs.one_of(_LEVEL2, _TICKER), hs.sampled_from(_BREAKS)).map(
        lambda pair: _broken(pair[0], *pair[1])
    ),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=hs.lists(_MESSAGE, min_size=1, max_size=60), step_ms=hs.sampled_from([1, 300]))
def test_any_stream_derives_the_same_with_and_without_lanes(
    messages: list[dict[str, Any]], step_ms: int
) -> None:
    records = _market_records()
    t = T0 + 10 * MS
    for msg in messages:
        t += step_ms * MS
        records.append((t, "ws", msg))
    fast, slow, _ = _both(records)
    assert fast == slow


def test_a_ticker_about_another_symbol_leaves_the_lane() -> None:
    # The lane holds the topic's symbol state; data naming another symbol must reach that
    # symbol, as the general path does, not the topic's.
    records = _market_records()
    records.append((T0 + 10 * MS, "ws", ticker_msg(A, 99.0, 101.0)))  # opens A's lane
    records.append((T0 + 20 * MS, "ws", _broken(ticker_msg(A, 99.5, 100.5), "data.symbol", B)))
    fast, slow, engine = _both(records)
    assert engine._lanes
    assert fast == slow
    assert fast["quotes"][B][:4] == (99.5, 10, 100.5, 10)
    assert fast["quotes"][A][:4] == (99.0, 10, 101.0, 10)
