"""The sans-IO WebSocket session: welcome, acks, ping/pong, data age, budget and topic caps."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import orjson
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_layering import FORBIDDEN_MODULES, ROOT, _imports
from tradebot.kucoin import topics as t
from tradebot.kucoin.connection import (
    Acked,
    Limits,
    Pong,
    Rejected,
    Session,
    Welcome,
    plan_connections,
    topic_size,
)

WELCOME = '{"id":"c1","type":"welcome"}'
DATA = '{"type":"message","topic":"/contractMarket/tickerV2:A","subject":"tickerV2","data":{}}'


def session(now: float = 0.0, **limits: Any) -> Session:
    return Session("c1", ping_interval=18.0, ping_timeout=10.0, now=now, limits=Limits(**limits))


def ack(msg: dict[str, Any]) -> str:
    return json.dumps({"id": msg["id"], "type": "ack"})


def welcomed(**limits: Any) -> Session:
    s = session(**limits)
    assert s.receive(0.0, WELCOME) == Welcome()
    return s


@pytest.mark.parametrize("module", ["connection.py", "window.py", "breaker.py", "backoff.py"])
def test_the_session_pieces_do_no_io_and_read_no_clock(module: str) -> None:
    allowed = {"random"} if module == "backoff.py" else set()  # an injectable seeded source
    assert not (_imports(ROOT / "kucoin" / module) & (FORBIDDEN_MODULES - allowed))


def test_nothing_is_sent_before_welcome_and_no_welcome_is_death() -> None:
    s = session()
    s.subscribe([t.topic(t.TICKER_V2, ["A"])])
    assert s.poll(0.0) == [] and s.deadline(0.0) == 10.0
    assert s.poll(9.9) == [] and s.dead is None
    assert s.poll(10.0) == [] and s.dead == "no welcome within 10 s"
    assert s.deadline(10.0) == math.inf


def test_subscribes_go_after_welcome_and_acks_make_them_active() -> None:
    s = session()
    topic = t.topic(t.LEVEL2, ["A", "B"])
    s.subscribe([topic])
    s.receive(1.0, WELCOME)
    sent = s.poll(1.0)
    assert sent == [
        {"id": "1", "type": "subscribe", "topic": topic, "privateChannel": False, "response": True}
    ]
    assert topic not in s.active
    assert s.receive(1.2, ack(sent[0])) == Acked("subscribe", topic)
    assert list(s.active) == [topic] and s.topics_used == 2
    assert s.receive(1.3, ack(sent[0])) is None  # a duplicate ack is ignored


def test_pings_at_the_interval_and_a_missing_pong_is_death() -> None:
    s = welcomed()
    assert s.deadline(0.0) == 18.0 and s.poll(17.9) == []
    (ping,) = s.poll(18.0)
    assert ping == {"id": "1", "type": "ping"}
    assert s.receive(18.5, json.dumps({"id": "1", "type": "pong"})) == Pong(0.5)
    assert s.deadline(18.5) == 36.0
    (ping,) = s.poll(36.0)
    assert s.deadline(36.0) == 46.0  # the pong deadline
    assert s.receive(40.0, '{"id":"999","type":"pong"}') is None  # not ours
    assert s.poll(45.9) == [] and s.dead is None
    assert s.poll(46.0) == [] and s.dead == "no pong within 10 s"


def test_no_data_on_a_data_connection_is_death() -> None:
    s = welcomed(freshness=5.0)
    (sub,) = (s.subscribe([t.topic(t.TICKER_V2, ["A"])]), s.poll(0.0))[1]
    s.receive(2.0, ack(sub))  # the data clock starts at the ack
    assert s.deadline(2.0) == 7.0
    s.receive(6.0, DATA)
    s.receive(9.0, DATA.encode())  # bytes frames count too
    assert s.poll(13.9) == [] and s.dead is None and s.data_frames == 2
    s.poll(14.0)
    assert s.dead == "no data for 5 s"


def test_a_connection_with_no_data_topic_may_stay_quiet() -> None:
    s = welcomed(freshness=5.0)
    s.subscribe([t.ANNOUNCEMENT])
    (sub,) = s.poll(0.0)
    s.receive(0.1, ack(sub))
    for now in (18.0, 36.0, 54.0):
        (ping,) = s.poll(now)
        s.receive(now + 0.1, json.dumps({"id": ping["id"], "type": "pong"}))
    assert s.dead is None


def test_no_ack_in_time_is_death() -> None:
    s = welcomed(ack_timeout=3.0)
    s.subscribe([t.topic(t.EXECUTION, ["A"])])
    s.poll(1.0)
    assert s.deadline(1.0) == 4.0
    s.poll(4.0)
    assert s.dead == "no ack for subscribe /contractMarket/execution:A within 3 s"


def test_an_error_answer_rejects_the_topic_an_unrelated_error_kills() -> None:
    s = welcomed()
    bad = t.topic(t.LEVEL2, ["NOPE"])
    s.subscribe([bad])
    (sub,) = s.poll(0.0)
    error = {"id": sub["id"], "type": "error", "code": 404, "data": "topic does not exist"}
    assert s.receive(0.5, json.dumps(error)) == Rejected(
        "subscribe", bad, 404, "topic does not exist"
    )
    assert bad not in s.wanted and s.rejected[bad].code == 404 and s.dead is None
    s.receive(1.0, '{"id":"c1","type":"error","code":401,"data":"token is expired"}')
    assert s.dead == "server error 401: token is expired"
    assert s.poll(1.0) == []


def test_garbage_and_unknown_types_are_ignored() -> None:
    s = welcomed()
    for frame in ("not json", "[1,2]", '{"type":"notice"}', b"\xff\x00", '"x"'):
        assert s.receive(1.0, frame) is None
    assert s.dead is None


def test_the_topic_cap_counts_symbols_and_refuses_whole_batches() -> None:
    s = welcomed()
    assert topic_size(t.topic(t.LEVEL2, ["A", "B", "C"])) == 3
    assert topic_size(t.ANNOUNCEMENT) == 1
    names = [f"S{i:03d}" for i in range(100)]
    s.subscribe([t.topic(t.TICKER_V2, names[:60])])
    assert s.room == 40
    with pytest.raises(ValueError, match="shard with plan_connections"):
        s.subscribe([t.topic(t.LEVEL2, names[:30]), t.topic(t.EXECUTION, names[:30])])
    assert s.room == 40  # nothing of the refused batch was added
    s.subscribe([t.topic(t.LEVEL2, names[:40])])
    assert s.room == 0
    with pytest.raises(ValueError, match=r"bad topic|unknown topic"):
        s.subscribe(["nonsense"])


def test_unsubscribe_drops_unsent_subscribes_and_acks_remove_sent_ones() -> None:
    s = session()
    a, b = t.topic(t.TICKER_V2, ["A"]), t.topic(t.TICKER_V2, ["B"])
    s.subscribe([a, b])
    s.unsubscribe([b])  # never sent: nothing goes out for it
    s.receive(0.0, WELCOME)
    (sub,) = s.poll(0.0)
    assert sub["topic"] == a
    s.receive(0.1, ack(sub))
    s.unsubscribe([a])
    (unsub,) = s.poll(0.2)
    assert unsub["type"] == "unsubscribe" and unsub["topic"] == a
    assert s.receive(0.3, ack(unsub)) == Acked("unsubscribe", a)
    assert not s.active and not s.wanted


def test_a_burst_of_subscribes_keeps_the_budget_and_the_heartbeat() -> None:
    s = welcomed(max_topics=1000, freshness=60.0)
    s.subscribe([t.topic(t.TICKER_V2, [f"S{i}"]) for i in range(200)])
    first = s.poll(0.0)
    assert len(first) == 88  # 90 less the 2 kept for pings
    for msg in first:
        s.receive(1.0, ack(msg))
    assert s.poll(5.0) == [] and s.deadline(5.0) == 10.0
    second = s.poll(10.0)
    assert len(second) == 88
    for msg in second:
        s.receive(11.0, ack(msg))
    sent = s.poll(18.0)
    assert sent[0]["type"] == "ping"  # the heartbeat is never starved


def test_plan_connections_batches_and_shards_under_the_cap() -> None:
    symbols = [f"S{i:03d}" for i in range(530)]
    channels = [t.LEVEL2, t.TICKER_V2, t.ANNOUNCEMENT]
    plans = plan_connections(reversed(symbols), channels)
    assert all(sum(topic_size(x) for x in plan) <= 100 for plan in plans)
    assert len(plans) == math.ceil(530 / 49)
    for channel in (t.LEVEL2, t.TICKER_V2):
        covered = [
            name
            for plan in plans
            for topic in plan
            if topic.startswith(channel + ":")
            for name in topic.partition(":")[2].split(",")
        ]
        assert covered == symbols
    assert [i for i, plan in enumerate(plans) if t.ANNOUNCEMENT in plan] == [0]
    with pytest.raises(ValueError):
        plan_connections(symbols, channels, max_topics=2)


class FakeServer:
    """Answers acks and pongs (unless silenced) and pushes a data frame now and then."""

    def __init__(self, pong: bool = True) -> None:
        self.pong = pong
        self.sent_times: list[float] = []

    def answer(self, msg: dict[str, Any]) -> str | None:
        if msg["type"] == "ping":
            return orjson.dumps({"id": msg["id"], "type": "pong"}).decode() if self.pong else None
        return ack(msg)


def drive(s: Session, server: FakeServer, events: list[tuple[float, list[str]]]) -> None:
    """Run `s` well past the time its budget needs for `events` (times and topics to add),
    feeding data every second."""
    now, pending = 0.0, sorted(events)
    total = sum(len(topics) for _, topics in events)
    rate = s.limits.max_messages - s.limits.ping_reserve
    end = pending[-1][0] + 10.0 * math.ceil(total / (rate - 1)) + 30.0  # pings take a slot
    next_data = 1.0
    while now < end and s.dead is None:
        while pending and pending[0][0] <= now:
            s.subscribe(pending.pop(0)[1])
        for msg in s.poll(now):
            server.sent_times.append(now)
            reply = server.answer(msg)
            if reply is not None:
                s.receive(now, reply)
        if now >= next_data:
            s.receive(now, DATA)
            next_data = now + 1.0
        wake = [s.deadline(now), next_data, end]
        if pending:
            wake.append(pending[0][0])
        now = max(min(wake), now)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 60, allow_nan=False), st.integers(1, 150)),
        min_size=1,
        max_size=8,
    ),
    st.integers(5, 90),
)
def test_never_more_than_the_budget_in_any_window(
    bursts: list[tuple[float, int]], budget: int
) -> None:
    s = session(max_topics=10_000, max_messages=budget, ping_reserve=2)
    s.receive(0.0, WELCOME)
    counter = itertools.count()
    events = [
        (at, [t.topic(t.TICKER_V2, [f"S{next(counter)}"]) for _ in range(n)]) for at, n in bursts
    ]
    server = FakeServer()
    drive(s, server, events)
    assert s.dead is None, s.dead
    times = server.sent_times
    for i, start in enumerate(times):
        assert sum(1 for x in times[i:] if x < start + 10.0) <= budget
    assert len(s.active) == sum(n for _, n in bursts)  # and everything got through


async def test_a_silent_server_is_found_dead_on_the_trio_clock(autojump_clock: Any) -> None:
    """The feed's loop shape on trio time: sleep to the deadline, poll, send."""
    s = Session("c1", 18.0, 10.0, trio.current_time())
    s.subscribe([t.ANNOUNCEMENT])
    server = FakeServer(pong=False)
    await trio.sleep(0.5)
    s.receive(trio.current_time(), WELCOME)
    while s.dead is None:
        await trio.sleep_until(s.deadline(trio.current_time()))
        for msg in s.poll(trio.current_time()):
            reply = server.answer(msg)
            if reply is not None:
                s.receive(trio.current_time(), reply)
    assert s.dead == "no pong within 10 s"
    assert trio.current_time() == pytest.approx(0.5 + 18.0 + 10.0)
