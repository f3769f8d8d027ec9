"""The live feed against a small KuCoin-like WebSocket server on loopback.

The server runs in the test (trio-websocket on 127.0.0.1, REST bullet answers through
httpx.MockTransport) and misbehaves on demand: drops the socket without a close frame, goes
silent, refuses the handshake, or says the token expired. Trio's clock is a MockClock that
jumps once the loop has been idle for a few real milliseconds, so 18 s pings and backoff
take no real time while loopback I/O still completes before any jump.
"""

from __future__ import annotations

import itertools
import json
import random
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import trio
import trio.testing
import trio_websocket

from tradebot.kucoin import topics as t
from tradebot.kucoin.backoff import Backoff
from tradebot.kucoin.connection import Limits
from tradebot.kucoin.feed import DialGate, Feed, FeedItem
from tradebot.kucoin.rest import RestClient

TICKERS = t.topic(t.TICKER_V2, ["A", "B"])


@pytest.fixture
def net_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0.05)


class Exchange:
    """Bullet tokens over REST and a WebSocket that follows `plan`, one mode per connection:
    normal, drop (no close frame after 3 data frames), silent (no pongs, no data), reject
    (HTTP 503 at the handshake), expire (an error 401 after the welcome)."""

    def __init__(self, *plan: str, endpoint: str | None = None) -> None:
        self.plan = list(plan)
        self.endpoint = endpoint
        self.port = 0
        self.bullets = 0
        self.paths: list[str] = []
        self.attempt_times: list[float] = []
        self.received: list[list[tuple[float, dict[str, Any]]]] = []

    def transport(self) -> httpx.MockTransport:
        def bullet(request: httpx.Request) -> httpx.Response:
            assert request.method == "POST" and request.url.path == "/api/v1/bullet-public"
            self.bullets += 1
            server = {
                "endpoint": self.endpoint or f"ws://127.0.0.1:{self.port}/endpoint",
                "encrypt": False,
                "protocol": "websocket",
                "pingInterval": 18000,
                "pingTimeout": 10000,
            }
            data = {"token": f"tok{self.bullets}", "instanceServers": [server]}
            return httpx.Response(200, json={"code": "200000", "data": data})

        return httpx.MockTransport(bullet)

    async def handler(self, request: trio_websocket.WebSocketRequest) -> None:
        index = len(self.paths)
        self.attempt_times.append(trio.current_time())
        mode = self.plan[index] if index < len(self.plan) else "normal"
        self.paths.append(request.path)
        if mode == "reject":
            await request.reject(503)
            return
        ws = await request.accept()
        got: list[tuple[float, dict[str, Any]]] = []
        self.received.append(got)
        connect_id = parse_qs(urlsplit(request.path).query)["connectId"][0]
        await ws.send_message(json.dumps({"id": connect_id, "type": "welcome"}))
        if mode == "expire":
            await ws.send_message(
                json.dumps(
                    {"id": connect_id, "type": "error", "code": 401, "data": "token is expired"}
                )
            )
        topics: list[str] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._push, ws, topics, mode)
            try:
                while True:
                    msg = json.loads(await ws.get_message())
                    got.append((trio.current_time(), msg))
                    if msg["type"] == "ping" and mode != "silent":
                        await ws.send_message(json.dumps({"id": msg["id"], "type": "pong"}))
                    elif msg["type"] == "subscribe":
                        topics.append(msg["topic"])
                        await ws.send_message(json.dumps({"id": msg["id"], "type": "ack"}))
            except trio_websocket.ConnectionClosed:
                nursery.cancel_scope.cancel()

    async def _push(
        self, ws: trio_websocket.WebSocketConnection, topics: list[str], mode: str
    ) -> None:
        sent = 0
        while True:
            await trio.sleep(1.0)
            if mode == "silent":
                continue
            for topic in list(topics):
                if topic == t.ANNOUNCEMENT:
                    continue
                frame = {
                    "type": "message",
                    "topic": topic,
                    "subject": "tickerV2",
                    "data": {"n": sent},
                }
                await ws.send_message(json.dumps(frame))
                sent += 1
            if mode == "drop" and sent >= 3:
                await ws._stream.aclose()  # the TCP connection ends with no close frame
                return

    def subscribes(self, index: int) -> list[str]:
        return [m["topic"] for _, m in self.received[index] if m["type"] == "subscribe"]


async def run(
    exchange: Exchange,
    topics: list[str],
    until: Any,
    *,
    seconds: float = 600.0,
    gate: DialGate | None = None,
    start: bool = False,
) -> tuple[list[FeedItem], Feed]:
    """Run a feed against `exchange` until `until(items, feed)` holds; every item it made."""
    items: list[FeedItem] = []
    send, recv = trio.open_memory_channel[FeedItem](10_000)
    wall = itertools.count(1_700_000_000_000_000_000, 1_000)
    rest = RestClient("http://127.0.0.1:1", transport=exchange.transport(), rng=random.Random(1))
    feed = Feed(
        rest,
        topics,
        send,
        backoff=Backoff(base=1.0, cap=8.0, healthy_after=30.0, rng=random.Random(2)),
        limits=Limits(freshness=5.0),
        dial_gate=gate,
        rng=random.Random(3),
        wall_ns=wall.__next__,
    )
    with trio.fail_after(seconds):
        async with rest, trio.open_nursery() as nursery:
            server = await nursery.start(
                trio_websocket.serve_websocket, exchange.handler, "127.0.0.1", 0, None
            )
            exchange.port = server.port
            if start:  # returns at the first welcome, the feed really up
                await nursery.start(feed.run)
                assert feed.session is not None and feed.session.welcomed_at is not None
            else:
                nursery.start_soon(feed.run)
            async for item in recv:
                items.append(item)
                if until(items, feed):
                    break
            nursery.cancel_scope.cancel()
    return items, feed


def conn_records(items: list[FeedItem]) -> list[tuple[str, int, str]]:
    return [(p["event"], p["conn"], p["reason"]) for _, kind, p, _ in items if kind == "conn"]


def data_frames(items: list[FeedItem], conn: int | None = None) -> list[str]:
    return [p for _, kind, p, c in items if kind == "ws" and '"message"' in p and conn in (None, c)]


async def test_frames_arrive_raw_with_receive_time_and_conn_id(net_clock: Any) -> None:
    exchange = Exchange()
    items, feed = await run(
        exchange, [TICKERS], lambda items, _: len(data_frames(items)) >= 40, start=True
    )
    assert conn_records(items)[0] == ("open", 1, "")
    ws = [(ns, p, c) for ns, kind, p, c in items if kind == "ws"]
    assert json.loads(ws[0][1])["type"] == "welcome"
    assert all(c == 1 for _, _, c in ws) and all(isinstance(p, str) for _, p, _ in ws)
    stamps = [ns for ns, _, _, _ in items]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    query = parse_qs(urlsplit(exchange.paths[0]).query)
    assert query["token"] == ["tok1"] and query["connectId"][0].isdigit()
    assert exchange.subscribes(0) == [TICKERS]
    pings = [at for at, m in exchange.received[0] if m["type"] == "ping"]
    assert pings == pytest.approx([18.0, 36.0], abs=0.5)  # 40 s of data, a frame a second
    assert feed.statistics()["session"]["topics_active"] == 1


async def test_a_drop_without_close_frame_reconnects_with_a_new_token_and_resubscribes(
    net_clock: Any,
) -> None:
    exchange = Exchange("drop")
    topics = [TICKERS, t.topic(t.LEVEL2, ["A", "B"])]
    items, feed = await run(exchange, topics, lambda items, _: len(data_frames(items, 2)) >= 2)
    records = conn_records(items)
    assert records[0] == ("open", 1, "")
    assert records[1][:2] == ("close", 1) and "socket closed" in records[1][2]
    assert records[2] == ("open", 2, "")
    assert exchange.bullets == 2
    assert "tok2" in exchange.paths[1]
    assert sorted(exchange.subscribes(1)) == sorted(topics)  # the full set again
    closed = next(ns for ns, kind, p, _ in items if kind == "conn" and p["event"] == "close")
    reopened = next(ns for ns, kind, p, _ in items if kind == "conn" and p["conn"] == 2)
    assert reopened > closed and feed.reconnects == 1


@pytest.mark.parametrize(
    ("topics", "reason"),
    [([TICKERS], "no data for 5 s"), ([t.ANNOUNCEMENT], "no pong within 10 s")],
)
async def test_a_silent_server_is_declared_dead_and_left(
    net_clock: Any, topics: list[str], reason: str
) -> None:
    exchange = Exchange("silent")
    items, feed = await run(
        exchange, topics, lambda items, _: any(r[:2] == ("open", 2) for r in conn_records(items))
    )
    assert conn_records(items)[1] == ("close", 1, reason)
    assert feed.last_close_reason == reason


async def test_refused_handshakes_back_off_and_never_give_up(net_clock: Any) -> None:
    exchange = Exchange("reject", "reject", "reject", "reject")
    items, feed = await run(exchange, [TICKERS], lambda items, _: len(data_frames(items)) >= 1)
    records = conn_records(items)
    assert [r[0] for r in records] == ["error"] * 4 + ["open"]
    assert all("503" in r[2] for r in records[:4])
    assert records[4][1] == 5 and exchange.bullets == 5
    assert feed.backoff.total_failures == 4


async def test_an_expired_token_closes_and_a_fresh_one_is_fetched(net_clock: Any) -> None:
    exchange = Exchange("expire")
    items, _ = await run(exchange, [TICKERS], lambda items, _: len(data_frames(items, 2)) >= 1)
    assert conn_records(items)[1] == ("close", 1, "server error 401: token is expired")
    assert exchange.bullets == 2


async def test_an_insecure_remote_endpoint_is_refused_and_retried(net_clock: Any) -> None:
    exchange = Exchange(endpoint="ws://ws-api-futures.kucoin.com/")
    items, _ = await run(exchange, [TICKERS], lambda items, _: len(conn_records(items)) >= 2)
    for event, _, reason in conn_records(items):
        assert event == "error" and "wss://" in reason and "\n" not in reason
    assert exchange.paths == []


async def test_subscriptions_can_change_while_running(net_clock: Any) -> None:
    exchange = Exchange()
    extra = t.topic(t.EXECUTION, ["A"])

    def until(items: list[FeedItem], feed: Feed) -> bool:
        if len(data_frames(items)) == 3:
            feed.subscribe([extra])
        return any(extra in p for _, kind, p, _ in items if kind == "ws")

    _, feed = await run(exchange, [TICKERS], until)
    assert exchange.subscribes(0) == [TICKERS, extra]
    with pytest.raises(ValueError, match="shard"):
        feed.subscribe([t.topic(t.LEVEL2, [f"S{i}" for i in range(99)])])
    feed.unsubscribe([extra])
    assert list(feed.topics) == [TICKERS]


async def test_the_dial_gate_spaces_connection_opens(net_clock: Any) -> None:
    exchange = Exchange(*["reject"] * 6)
    gate = DialGate(per_window=3, window=60.0)
    await run(exchange, [TICKERS], lambda items, _: len(conn_records(items)) >= 6, gate=gate)
    stamps = exchange.attempt_times
    assert len(stamps) == 6 and stamps[3] - stamps[0] >= 60.0
    assert gate.opened == 6


async def test_a_closed_output_channel_ends_the_feed(net_clock: Any) -> None:
    exchange = Exchange()
    send, recv = trio.open_memory_channel[FeedItem](0)
    rest = RestClient("http://127.0.0.1:1", transport=exchange.transport())
    feed = Feed(rest, [TICKERS], send)
    await recv.aclose()
    with pytest.raises(trio.BrokenResourceError):
        await feed.run()
