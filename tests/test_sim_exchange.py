"""The simulated exchange on loopback, driven by a client built from httpx and trio-websocket.

Time is trio's MockClock (autojump): the recording's pace, ping deadlines and fault times run
in virtual time, while the bytes go over real loopback sockets.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
import trio_websocket

from simulator.exchange import Exchange, ExchangeOptions, check_loopback
from simulator.faults import parse_fault
from simulator.recording import RecordingWriter
from simulator.ws_session import Limits

FIXTURES = Path(__file__).parent / "fixtures" / "kucoin"
SAMPLE = Path(__file__).parent.parent / "recordings" / "sample.msgpack"
T0 = 1_767_600_000_000_000_000
SYMBOLS = ("AAAUSDTM", "BBBUSDTM", "CCCUSDTM")


def _contract(symbol: str) -> dict[str, Any]:
    template = json.loads((FIXTURES / "rest_contracts_active.json").read_text())["data"][0]
    base = symbol[:-5]
    out = {**template, "symbol": symbol, "baseCurrency": base}
    return out


def _rest(t: int, path: str, data: Any, params: dict[str, str] | None = None) -> tuple:
    body = orjson.dumps({"code": "200000", "data": data}).decode()
    payload = {"method": "GET", "path": path, "params": params or {}, "status": 200, "body": body}
    return (t, "rest", payload)


def write_recording(path: Path, *, seconds: float = 20.0, seed: int = 7) -> Path:
    """Three symbols, snapshots, level2 changes (some crossing), trades, instrument, a bad frame."""
    rng = random.Random(seed)
    records: list[tuple] = [_rest(T0, "/api/v1/contracts/active", [_contract(s) for s in SYMBOLS])]
    seqs = {}
    for i, symbol in enumerate(SYMBOLS):
        seqs[symbol] = 1000 * (i + 1)
        snap = {
            "sequence": seqs[symbol],
            "symbol": symbol,
            "bids": [[round(100.0 - k * 0.1, 1), 10] for k in range(10)],
            "asks": [[round(100.1 + k * 0.1, 1), 10] for k in range(10)],
            "ts": T0,
        }
        records.append(_rest(T0 + 1000, "/api/v1/level2/snapshot", snap, {"symbol": symbol}))
    t = T0 + 10_000_000
    end = T0 + int(seconds * 1e9)
    n = 0
    while t < end:
        symbol = SYMBOLS[n % len(SYMBOLS)]
        seqs[symbol] += 1
        side = rng.choice(["buy", "sell"])
        price = round(100.05 + rng.uniform(-0.6, 0.6), 1)
        size = rng.choice([0, 0, 3, 10, 25])
        frame = {
            "topic": f"/contractMarket/level2:{symbol}",
            "type": "message",
            "subject": "level2",
            "sn": seqs[symbol],
            "data": {
                "sequence": seqs[symbol],
                "change": f"{price},{side},{size}",
                "timestamp": t // 10**6,
            },
        }
        records.append((t, "ws", orjson.dumps(frame).decode(), 1))
        if n % 5 == 0:
            trade = {
                "topic": f"/contractMarket/execution:{symbol}",
                "type": "message",
                "subject": "match",
                "sn": seqs[symbol],
                "data": {
                    "symbol": symbol,
                    "sequence": seqs[symbol],
                    "side": side,
                    "size": 2,
                    "price": str(price),
                    "tradeId": str(n),
                    "takerOrderId": "t",
                    "makerOrderId": "m",
                    "ts": t,
                },
            }
            records.append((t, "ws", orjson.dumps(trade).decode(), 1))
        if n % 10 == 0:
            mark = {
                "topic": f"/contract/instrument:{symbol}",
                "type": "message",
                "subject": "mark.index.price",
                "data": {
                    "markPrice": price,
                    "indexPrice": price,
                    "granularity": 1000,
                    "timestamp": t // 10**6,
                },
            }
            records.append((t, "ws", orjson.dumps(mark).decode(), 1))
        if n == 40:
            records.append((t, "ws", '{"type":"message","topic":"/contractMarket/level2:AAA', 1))
        t += 50_000_000
        n += 1
    with RecordingWriter.create(path, created_ns=T0, source="test") as writer:
        for record in records:
            writer.write(*record)
    return path


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    return write_recording(tmp_path / "rec.msgpack")


async def start(nursery: trio.Nursery, path: Path, **options: Any) -> Exchange:
    exchange = Exchange(path, ExchangeOptions(**options))
    await nursery.start(exchange.run)
    return exchange


class Client:
    """A small KuCoin client: token, socket, subscriptions, JSON frames."""

    def __init__(self, exchange: Exchange) -> None:
        self.http = httpx.AsyncClient(base_url=exchange.rest_url, timeout=5)

    async def get(self, path: str, **params: str) -> httpx.Response:
        return await self.http.get(path, params=params)

    async def bullet(self) -> tuple[str, str]:
        data = (await self.http.post("/api/v1/bullet-public")).json()["data"]
        return data["instanceServers"][0]["endpoint"], data["token"]

    async def connect(
        self, nursery: trio.Nursery, connect_id: str = "c1", token: str | None = None
    ) -> Any:
        endpoint, fresh = await self.bullet()
        url = f"{endpoint}?token={token or fresh}&connectId={connect_id}"
        return await trio_websocket.connect_websocket_url(nursery, url)


async def send(ws: Any, **msg: Any) -> None:
    await ws.send_message(orjson.dumps(msg).decode())


async def recv(ws: Any, timeout: float = 5) -> Any:
    with trio.fail_after(timeout):
        return orjson.loads(await ws.get_message())


async def frames(ws: Any, quiet: float = 2.0) -> list[str]:
    """Every frame until none arrives for `quiet` seconds."""
    out: list[str] = []
    while True:
        with trio.move_on_after(quiet) as waited:
            out.append(await ws.get_message())
        if waited.cancelled_caught:
            return out


class SyncedBook:
    """A client's book: synced from a snapshot, then changes that must follow it exactly."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.seq = snapshot["sequence"]
        self.bids = {p: s for p, s in snapshot["bids"]}
        self.asks = {p: s for p, s in snapshot["asks"]}

    def apply(self, data: dict[str, Any]) -> None:
        seq = data["sequence"]
        if seq <= self.seq:
            return
        assert seq == self.seq + 1, f"gap: {self.seq} then {seq}"
        self.seq = seq
        price_s, side, size_s = data["change"].split(",")
        levels = self.bids if side == "buy" else self.asks
        if float(size_s) == 0:
            levels.pop(float(price_s), None)
        else:
            levels[float(price_s)] = int(size_s)
        assert not self.crossed(), f"crossed at {seq}"

    def crossed(self) -> bool:
        return bool(self.bids and self.asks and max(self.bids) >= min(self.asks))


async def sync_books(
    client: Client, ws: Any, symbols: list[str], exchange: Exchange
) -> dict[str, SyncedBook]:
    """Subscribe, buffer, fetch snapshots, apply; return the books once the stream is quiet."""
    await send(
        ws,
        id="s",
        type="subscribe",
        topic="/contractMarket/level2:" + ",".join(symbols),
        response=True,
    )
    assert (await recv(ws)) == {"id": "s", "type": "ack"}
    books: dict[str, SyncedBook] = {}
    buffered: list[Any] = []
    for _ in range(20):
        buffered.append(orjson.loads(await ws.get_message()))
    for symbol in symbols:
        snap = (await client.get("/api/v1/level2/snapshot", symbol=symbol)).json()["data"]
        books[symbol] = SyncedBook(snap)
        assert not books[symbol].crossed()
    for msg in buffered:
        books[msg["topic"].split(":")[1]].apply(msg["data"])
    for text in await frames(ws):
        msg = orjson.loads(text)
        books[msg["topic"].split(":")[1]].apply(msg["data"])
    return books


async def test_rest_endpoints_answer_as_kucoin(
    nursery: trio.Nursery, recording: Path, autojump_clock: Any
) -> None:
    exchange = await start(nursery, recording)
    client = Client(exchange)
    active = (await client.get("/api/v1/contracts/active")).json()
    documented = set(_contract("AAAUSDTM"))
    assert active["code"] == "200000"
    assert [c["symbol"] for c in active["data"]] == list(SYMBOLS)
    assert documented <= set(active["data"][0])
    one = (await client.get("/api/v1/contracts/BBBUSDTM")).json()["data"]
    assert one["symbol"] == "BBBUSDTM" and one["status"] == "Open"
    snap = (await client.get("/api/v1/level2/snapshot", symbol="AAAUSDTM")).json()["data"]
    assert snap["sequence"] == 1000 and len(snap["bids"]) == 10
    assert snap["bids"] == sorted(snap["bids"], reverse=True) and snap["asks"] == sorted(
        snap["asks"]
    )
    depth = (await client.get("/api/v1/level2/depth20", symbol="AAAUSDTM")).json()["data"]
    assert depth["bids"] == snap["bids"][:20]
    ticker = (await client.get("/api/v1/ticker", symbol="AAAUSDTM")).json()["data"]
    assert ticker["bestBidPrice"] == "100" and ticker["bestAskPrice"] == "100.1"
    stamp = (await client.get("/api/v1/timestamp")).json()["data"]
    assert abs(stamp - exchange.now_ns() // 10**6) < 1000
    response = await client.get("/api/v1/ticker", symbol="ZZZUSDTM")
    assert response.json() == {"code": "100003", "msg": "Contract parameter invalid"}
    response = await client.get("/api/v1/ticker")
    assert response.status_code == 400 and response.json()["code"] == "400100"
    response = await client.get("/api/v1/contracts/ZZZUSDTM")
    assert response.json()["code"] == "100003"
    response = await client.get("/api/v2/nothing")
    assert response.status_code == 404 and response.json()["code"] == "404000"
    assert int(response.headers["gw-ratelimit-remaining"]) < 2000
    assert exchange.violations.total == 0


async def test_socket_protocol(nursery: trio.Nursery, recording: Path, autojump_clock: Any) -> None:
    exchange = await start(nursery, recording)
    client = Client(exchange)
    ws = await client.connect(nursery, "conn-7")
    assert await recv(ws) == {"id": "conn-7", "type": "welcome"}
    await send(ws, id="p1", type="ping")
    assert await recv(ws) == {"id": "p1", "type": "pong"}
    await send(
        ws, id="x", type="subscribe", topic="/contractMarket/nothing:AAAUSDTM", response=True
    )
    error = await recv(ws)
    assert error["type"] == "error" and error["code"] == 404 and error["id"] == "x"
    await send(ws, id="y", type="subscribe", topic="/contractMarket/level2:ZZZUSDTM", response=True)
    assert (await recv(ws))["code"] == 404
    await send(ws, id="z", type="subscribe", topic="/contractMarket/level2", response=True)
    assert (await recv(ws))["code"] == 400
    await send(ws, id="q", type="dance")
    assert (await recv(ws))["code"] == 415
    # response false: no ack, but the data flows
    await send(
        ws, id="s", type="subscribe", topic="/contract/instrument:AAAUSDTM,BBBUSDTM", response=False
    )
    first = await recv(ws)
    assert first["type"] == "message" and first["subject"] == "mark.index.price"
    assert first["topic"] in ("/contract/instrument:AAAUSDTM", "/contract/instrument:BBBUSDTM")
    # the time fields are moved to the moment of sending
    assert abs(first["data"]["timestamp"] - exchange.now_ns() // 10**6) < 5000
    await send(
        ws,
        id="u",
        type="unsubscribe",
        topic="/contract/instrument:AAAUSDTM,BBBUSDTM",
        response=True,
    )
    assert {"id": "u", "type": "ack"} in [orjson.loads(t) for t in await frames(ws)]
    topics = {orjson.loads(t).get("topic") for t in await frames(ws)}
    assert topics == set()
    assert exchange.violations.total == 0


async def test_bad_token_is_refused(
    nursery: trio.Nursery, recording: Path, autojump_clock: Any
) -> None:
    exchange = await start(nursery, recording)
    ws = await Client(exchange).connect(nursery, token="not-a-token")
    error = await recv(ws)
    assert error["type"] == "error" and error["code"] == 401 and error["data"] == "token is invalid"
    with pytest.raises(trio_websocket.ConnectionClosed):
        await ws.get_message()


async def test_a_synced_book_never_crosses(
    nursery: trio.Nursery, recording: Path, autojump_clock: Any
) -> None:
    exchange = await start(nursery, recording, speed=4.0)
    client = Client(exchange)
    ws = await client.connect(nursery)
    await recv(ws)  # welcome
    books = await sync_books(client, ws, list(SYMBOLS), exchange)
    assert exchange.finished.is_set()
    for symbol, book in books.items():
        truth = exchange.model.snapshot(symbol)
        assert book.seq == truth["sequence"]
        assert book.bids == dict(map(tuple, truth["bids"]))
        assert book.asks == dict(map(tuple, truth["asks"]))
    assert exchange.stats["malformed_held_back"] == 1  # recorded, not sent without the fault
    assert exchange.violations.total == 0


async def test_the_sample_recording_syncs_at_max_speed(
    nursery: trio.Nursery, autojump_clock: Any
) -> None:
    exchange = await start(nursery, SAMPLE, speed=None)
    client = Client(exchange)
    ws = await client.connect(nursery)
    await recv(ws)
    listed = [c["symbol"] for c in (await client.get("/api/v1/contracts/active")).json()["data"]]
    symbols = ["XBTUSDTM", "LTCUSDTM", "OPUSDTM"]  # LTC: a recorded gap; OP: a duplicate
    assert set(symbols) <= set(listed)
    books = await sync_books(client, ws, symbols, exchange)
    assert exchange.finished.is_set()
    for symbol, book in books.items():
        assert book.seq == exchange.model.books[symbol].sequence
        assert not book.crossed()
    assert exchange.violations.total == 0


async def test_derived_topics_reach_their_subscribers_only(
    nursery: trio.Nursery, recording: Path, autojump_clock: Any
) -> None:
    exchange = await start(nursery, recording)
    client = Client(exchange)
    ws = await client.connect(nursery)
    await recv(ws)
    for topic in ("ticker", "tickerV2", "execution", "level2Depth5", "level2Depth50"):
        await send(
            ws, id=topic, type="subscribe", topic=f"/contractMarket/{topic}:AAAUSDTM", response=True
        )
    seen: dict[str, dict[str, Any]] = {}
    for text in await frames(ws):
        msg = orjson.loads(text)
        if msg["type"] == "message":
            assert msg["topic"].endswith(":AAAUSDTM")
            seen.setdefault(msg["topic"].split(":")[0], msg)
    assert set(seen) == {
        "/contractMarket/ticker",
        "/contractMarket/tickerV2",
        "/contractMarket/execution",
        "/contractMarket/level2Depth5",
        "/contractMarket/level2Depth50",
    }
    assert seen["/contractMarket/ticker"]["subject"] == "ticker"
    assert len(seen["/contractMarket/level2Depth5"]["data"]["bids"]) <= 5
    book = exchange.model.books["AAAUSDTM"]
    bid, _, ask, _ = book.best()
    last_v2 = seen["/contractMarket/tickerV2"]["data"]
    assert float(last_v2["bestBidPrice"]) < float(last_v2["bestAskPrice"])
    assert bid < ask


async def test_limits_answer_with_kucoin_errors_and_are_counted(
    nursery: trio.Nursery, recording: Path, autojump_clock: Any
) -> None:
    limits = Limits(messages_per_window=5, topics_per_connection=2, connections_per_token=1)
    exchange = await start(nursery, recording, limits=limits)
    client = Client(exchange)
    endpoint, token = await client.bullet()
    url = f"{endpoint}?token={token}&connectId=a"
    ws = await trio_websocket.connect_websocket_url(nursery, url)
    await recv(ws)
    second = await trio_websocket.connect_websocket_url(nursery, url)
    error = await recv(second)
    assert error["code"] == 509 and "session" in error["data"]
    await send(
        ws,
        id="t",
        type="subscribe",
        topic="/contract/instrument:AAAUSDTM,BBBUSDTM,CCCUSDTM",
        response=True,
    )
    error = await recv(ws)
    assert error["code"] == 509 and "per session" in error["data"]
    for i in range(4):
        await send(ws, id=f"p{i}", type="ping")
        assert (await recv(ws))["type"] == "pong"
    await send(ws, id="p5", type="ping")
    error = await recv(ws)
    assert error["code"] == 509
    await trio.sleep(10)  # the window moves on
    await send(ws, id="p6", type="ping")
    assert await recv(ws) == {"id": "p6", "type": "pong"}
    assert exchange.violations.by_kind == {
        "connections_per_token": 1,
        "topics_per_connection": 1,
        "messages_per_window": 1,
    }


async def test_a_socket_that_never_pings_is_closed(
    nursery: trio.Nursery, recording: Path, autojump_clock: Any
) -> None:
    exchange = await start(nursery, recording)
    ws = await Client(exchange).connect(nursery)
    await recv(ws)
    await trio.sleep(29)
    error = await recv(ws)
    assert error["code"] == 400 and error["data"] == "ping timeout"
    assert exchange.violations.by_kind["ping_timeout"] == 1


async def _subscribed(
    nursery: trio.Nursery, recording: Path, *faults: str, **options: Any
) -> tuple[Exchange, Client, Any]:
    exchange = await start(
        nursery, recording, faults=tuple(parse_fault(f) for f in faults), **options
    )
    client = Client(exchange)
    ws = await client.connect(nursery)
    await recv(ws)
    await send(ws, id="s", type="subscribe", topic="/contractMarket/level2:AAAUSDTM", response=True)
    assert (await recv(ws))["type"] == "ack"
    return exchange, client, ws


async def test_fault_drop_closes_without_a_close_frame(
    nursery: trio.Nursery, recording: Path, autojump_clock: Any
) -> None:
    exchange, client, ws = await _subscribed(nursery, recording, "drop@2")
    with pytest.raises(trio_websocket.ConnectionClosed) as closed:
        with trio.fail_after(5):
            while True:
                await ws.get_message()
    assert closed.value.reason.code == 1006
    assert [what for _, what in exchange.fired] == ["dropped 1 sockets"]
    again = await client.connect(nursery, "c2")
    assert (await recv(again))["type"] == "welcome"


async def test_fault_outage_refuses_then_recovers(
    nursery: trio.Nursery, recording: Path, autojump_clock: Any
) -> None:
    exchange, client, _ws = await _subscribed(nursery, recording, "outage:5@1")
    await trio.sleep(2)
    endpoint, token = await client.bullet()
    with pytest.raises(trio_websocket.ConnectionRejected) as refused:
        async with trio_websocket.open_websocket_url(f"{endpoint}?token={token}&connectId=c2"):
            pass
    assert refused.value.status_code == 503
    assert (await client.get("/api/v1/timestamp")).status_code == 200  # REST stays up
    await trio.sleep(5)
    again = await client.connect(nursery, "c3")
    assert (await recv(again))["type"] == "welcome"
    assert exchange.stats["refused"] == 1


async def test_fault_silence_stops_pongs_and_data(
    nursery: trio.Nursery, recording: Path, autojump_clock: Any
) -> None:
    _exchange, client, ws = await _subscribed(nursery, recording, "silence@1")
    await trio.sleep(1.5)
    for _ in await frames(ws, quiet=0.5):
        pass
    await send(ws, id="p", type="ping")
    with trio.move_on_after(15) as quiet:
        await ws.get_message()
    assert quiet.cancelled_caught
    fresh = await client.connect(nursery, "c2")
    assert (await recv(fresh))["type"] == "welcome"
    await send(fresh, id="p", type="ping")
    assert (await recv(fresh))["type"] == "pong"


async def test_fault_malformed_sends_a_frame_that_is_not_json(
    nursery: trio.Nursery, recording: Path, autojump_clock: Any
) -> None:
    exchange, _client, ws = await _subscribed(nursery, recording, "malformed@0.5")
    bad = []
    for text in await frames(ws):
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError:
            bad.append(text)
    assert len(bad) == 2  # the fault's frame, and the recorded one once the fault is on
    assert exchange.stats["malformed_held_back"] == 0


async def test_fault_gap_skips_sequences_and_a_resync_agrees(
    nursery: trio.Nursery, recording: Path, autojump_clock: Any
) -> None:
    _exchange, client, ws = await _subscribed(nursery, recording, "gap:AAAUSDTM@3")
    last = None
    gaps = []
    for text in await frames(ws):
        seq = orjson.loads(text)["data"]["sequence"]
        if last is not None and seq != last + 1:
            gaps.append(seq - last - 1)
        last = seq
    assert gaps == [3]
    snap = (await client.get("/api/v1/level2/snapshot", symbol="AAAUSDTM")).json()["data"]
    assert snap["sequence"] == last


@pytest.mark.parametrize(
    ("fault", "status", "code"), [("rest-429", 429, "429000"), ("rest-5xx", 503, "500000")]
)
async def test_fault_rest_errors(
    nursery: trio.Nursery, recording: Path, autojump_clock: Any, fault: str, status: int, code: str
) -> None:
    _exchange, client, _ws = await _subscribed(nursery, recording, f"{fault}:3@1")
    await trio.sleep(1.5)
    response = await client.get("/api/v1/ticker", symbol="AAAUSDTM")
    assert response.status_code == status and response.json()["code"] == code
    await trio.sleep(3)
    assert (await client.get("/api/v1/ticker", symbol="AAAUSDTM")).status_code == 200


async def test_fault_rest_timeout(
    nursery: trio.Nursery, recording: Path, autojump_clock: Any
) -> None:
    _exchange, client, _ws = await _subscribed(nursery, recording, "rest-timeout:4@1")
    await trio.sleep(1.5)
    with pytest.raises(httpx.HTTPError):
        await client.http.get("/api/v1/timestamp", timeout=2)
    await trio.sleep(4)
    assert (await client.get("/api/v1/timestamp")).status_code == 200


async def test_fault_list_and_delist(
    nursery: trio.Nursery, recording: Path, autojump_clock: Any
) -> None:
    exchange, client, ws = await _subscribed(
        nursery, recording, "list:NEWUSDTM@1", "delist:CCCUSDTM@1"
    )
    await trio.sleep(1.5)
    active = {c["symbol"]: c for c in (await client.get("/api/v1/contracts/active")).json()["data"]}
    assert active["NEWUSDTM"]["status"] == "Open" and active["CCCUSDTM"]["status"] == "Closed"
    await send(
        ws,
        id="n",
        type="subscribe",
        topic="/contractMarket/level2:NEWUSDTM,CCCUSDTM",
        response=True,
    )
    topics = set()
    for text in await frames(ws):
        msg = orjson.loads(text)
        topics.add(msg.get("topic"))
    assert "/contractMarket/level2:NEWUSDTM" in topics
    assert "/contractMarket/level2:CCCUSDTM" not in topics
    assert [what.split()[0] for _, what in exchange.fired] == ["listed", "CCCUSDTM"]


def test_only_loopback() -> None:
    assert check_loopback("127.0.0.1") == "127.0.0.1"
    assert check_loopback("::1") == "::1"
    with pytest.raises(ValueError, match="loopback only"):
        check_loopback("0.0.0.0")
    with pytest.raises(ValueError, match="loopback only"):
        check_loopback("example.com")
