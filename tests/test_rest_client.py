"""The REST client: URL policy, retries, 429 handling, breakers and the shared pool limiter.

Every test runs on trio's autojump clock against httpx.MockTransport: no sockets, no sleeps.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from tradebot.errors import ConfigError, ExchangeError, TradebotError
from tradebot.kucoin.protocol import Parser
from tradebot.kucoin.rest import (
    RateLimits,
    RestClient,
    check_url,
    endpoint_of,
    parse_bullet,
)
from tradebot.kucoin.window import SlidingWindow

TICKER = (
    '{"code": "200000", "data": {"sequence": 7, "symbol": "XBTUSDTM", "side": "buy", '
    '"size": 3, "tradeId": "t1", "price": "100.5", "bestBidPrice": "100.4", '
    '"bestBidSize": 5, "bestAskPrice": "100.6", "bestAskSize": 6, "ts": 1700000000000000000}}'
)
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def client(handler: Handler, **kw: Any) -> RestClient:
    kw.setdefault("rng", random.Random(7))
    return RestClient("http://127.0.0.1:9", transport=httpx.MockTransport(handler), **kw)


class Script:
    """A handler that answers from a list, noting when each request arrived."""

    def __init__(self, *answers: httpx.Response | float | Exception) -> None:
        self.answers = list(answers)
        self.times: list[float] = []
        self.paths: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(trio.current_time())
        self.paths.append(request.url.path)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, float):
            await trio.sleep(answer)
            return httpx.Response(200, text=TICKER)
        if isinstance(answer, Exception):
            raise answer
        return answer


# --- URL policy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://api-futures.kucoin.com",
        "https://api-futures.kucoin.com/",
        "http://127.0.0.1:8080",
        "http://127.5.6.7",
        "http://localhost:1",
        "http://[::1]:9000",
    ],
)
def test_tls_or_loopback_urls_are_accepted(url: str) -> None:
    assert check_url(url) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://api-futures.kucoin.com",
        "http://10.0.0.1:80",
        "http://localhost.evil.com",
        "ftp://127.0.0.1",
        "not a url",
    ],
)
def test_plain_urls_to_other_hosts_are_refused_with_one_line(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_url(url)
    assert isinstance(info.value, TradebotError)
    assert "\n" not in str(info.value) and "--rest-url" in str(info.value)


def test_client_refuses_plain_http_to_a_remote_host() -> None:
    with pytest.raises(ConfigError, match="plain http://"):
        RestClient("http://api-futures.kucoin.com")


def test_websocket_urls_follow_the_same_rule() -> None:
    assert check_url("ws://127.0.0.1:1/x", option="endpoint", secure="wss")
    with pytest.raises(ConfigError, match="wss://"):
        check_url("ws://ws-api-futures.kucoin.com/", option="endpoint", secure="wss")


# --- endpoint table ---------------------------------------------------------------------------


def test_endpoints_resolve_to_their_pool_and_weight() -> None:
    assert endpoint_of("GET", "/api/v1/contracts/active").weight == 3
    assert endpoint_of("get", "/api/v1/contracts/XBTUSDTM").name == (
        "GET /api/v1/contracts/{symbol}"
    )
    assert endpoint_of("POST", "/api/v1/bullet-public").weight == 10
    assert endpoint_of("DELETE", "/api/v1/orders/multi-cancel").weight == 20
    assert endpoint_of("DELETE", "/api/v1/orders/abc").weight == 1
    assert endpoint_of("POST", "/api/v1/orders").pool == "futures"
    with pytest.raises(ValueError, match="unknown KuCoin endpoint"):
        endpoint_of("GET", "/api/v1/nope")


# --- answers -----------------------------------------------------------------------------------


async def test_answer_keeps_the_body_as_received_and_parses_like_replay() -> None:
    script = Script(httpx.Response(200, text=TICKER))
    async with client(script, wall_ns=lambda: 42) as rest:
        answer = await rest.get("/api/v1/ticker", {"symbol": "XBTUSDTM"})
    assert answer.body == TICKER and answer.status == 200 and answer.recv_ns == 42
    payload = answer.payload()
    assert payload == {
        "method": "GET",
        "path": "/api/v1/ticker",
        "params": {"symbol": "XBTUSDTM"},
        "status": 200,
        "body": TICKER,
    }
    event = Parser().parse_rest(payload)
    assert event is not None and type(event).__name__ != "RestError"


async def test_kucoin_error_answers_are_returned_not_retried() -> None:
    body = '{"code":"200003","msg":"bad symbol"}'
    script = Script(httpx.Response(400, text=body))
    async with client(script) as rest:
        answer = await rest.get("/api/v1/ticker", {"symbol": "NOPE"})
    assert (answer.status, answer.body, answer.code()) == (400, body, "200003")
    assert len(script.times) == 1


# --- retries -----------------------------------------------------------------------------------


async def test_5xx_is_retried_with_growing_jittered_delays(autojump_clock: Any) -> None:
    script = Script(httpx.Response(503), httpx.Response(502), httpx.Response(200, text=TICKER))
    async with client(script, backoff_base=1.0) as rest:
        answer = await rest.get("/api/v1/ticker", {"symbol": "XBTUSDTM"})
    assert answer.status == 200 and rest.retries == 2
    gaps = [b - a for a, b in zip(script.times, script.times[1:], strict=False)]
    assert 0.5 <= gaps[0] <= 1.0 and 1.0 <= gaps[1] <= 2.0  # base * 2**n, upper half jittered
    again = Script(httpx.Response(503), httpx.Response(502), httpx.Response(200, text=TICKER))
    async with client(again, backoff_base=1.0) as rest:
        await rest.get("/api/v1/ticker", {"symbol": "XBTUSDTM"})
    assert [b - a for a, b in zip(again.times, again.times[1:], strict=False)] == gaps  # seeded


async def test_backoff_is_capped(autojump_clock: Any) -> None:
    script = Script(httpx.Response(500))
    async with client(
        script, max_attempts=8, backoff_base=1.0, backoff_cap=3.0, breaker_threshold=9
    ) as rest:
        answer = await rest.get("/api/v1/timestamp")
    assert answer.status == 500 and len(script.times) == 8  # the last 5xx is the answer
    gaps = [b - a for a, b in zip(script.times, script.times[1:], strict=False)]
    assert max(gaps) <= 3.0 + 1e-9 and gaps[-1] >= 1.5


async def test_timeouts_are_retried_then_one_line_error(autojump_clock: Any) -> None:
    script = Script(1000.0)
    async with client(script, timeout=2.0, max_attempts=3) as rest:
        start = trio.current_time()
        with pytest.raises(ExchangeError) as info:
            await rest.get("/api/v1/ticker", {"symbol": "XBTUSDTM"})
    assert len(script.times) == 3
    assert "no answer after 3 tries" in str(info.value) and "\n" not in str(info.value)
    assert 6.0 <= trio.current_time() - start < 6.0 + 0.5 + 1.0 + 1e-9


async def test_a_slow_answer_within_the_timeout_is_fine(autojump_clock: Any) -> None:
    async with client(Script(1.5), timeout=2.0) as rest:
        assert (await rest.get("/api/v1/timestamp")).status == 200


async def test_connection_errors_are_retried(autojump_clock: Any) -> None:
    script = Script(httpx.ConnectError("refused"), httpx.Response(200, text=TICKER))
    async with client(script) as rest:
        assert (await rest.get("/api/v1/timestamp")).status == 200
    with pytest.raises(ExchangeError, match="ConnectError: refused"):
        async with client(Script(httpx.ConnectError("refused")), max_attempts=2) as rest:
            await rest.get("/api/v1/timestamp")


# --- 429 -------------------------------------------------------------------------------------


async def test_429_with_reset_waits_as_told_and_holds_back_the_whole_pool(
    autojump_clock: Any,
) -> None:
    limited = httpx.Response(
        429,
        text='{"code":"429000","msg":"Too Many Requests"}',
        headers={"gw-ratelimit-reset": "7000", "gw-ratelimit-remaining": "0"},
    )
    script = Script(limited, httpx.Response(200, text=TICKER))
    async with client(script) as rest, trio.open_nursery() as nursery:
        nursery.start_soon(rest.get, "/api/v1/ticker", {"symbol": "A"})
        await trio.sleep(0.1)  # the 429 has come back; another caller of the pool:
        nursery.start_soon(rest.get, "/api/v1/contracts/active")
    assert script.times[0] == pytest.approx(0.0, abs=1e-6)
    assert all(t >= 7.0 for t in script.times[1:]) and len(script.times) == 3
    assert rest.breakers()["GET /api/v1/ticker"].state == "closed"  # a 429 is no failure


async def test_429000_without_quota_headers_is_overload_and_backs_off(
    autojump_clock: Any,
) -> None:
    busy = httpx.Response(200, text='{"code":"429000","msg":"busy"}')
    script = Script(busy, busy, httpx.Response(200, text=TICKER))
    async with client(script, backoff_base=1.0) as rest:
        answer = await rest.get("/api/v1/timestamp")
    assert answer.body == TICKER and len(script.times) == 3
    assert script.times[1] - script.times[0] >= 0.5


async def test_retry_after_is_honoured_on_a_plain_429(autojump_clock: Any) -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "12"}), httpx.Response(200))
    async with client(script) as rest:
        await rest.get("/api/v1/timestamp")
    assert script.times[1] - script.times[0] == pytest.approx(12.0)


async def test_server_remaining_count_tightens_the_limiter(autojump_clock: Any) -> None:
    low = httpx.Response(
        200, text=TICKER, headers={"gw-ratelimit-remaining": "4", "gw-ratelimit-reset": "9000"}
    )
    script = Script(low, httpx.Response(200, text=TICKER))
    async with client(script) as rest:
        await rest.get("/api/v1/timestamp")  # the server says 4 weight left for 9 s
        await rest.get("/api/v1/timestamp")  # weight 2: fits
        await rest.get("/api/v1/contracts/active")  # weight 3 > 2 left: waits for the reset
    assert script.times[1] < 1.0 and script.times[2] >= 9.0


# --- breaker ------------------------------------------------------------------------------------


async def test_breaker_opens_refuses_then_probes_and_closes(autojump_clock: Any) -> None:
    script = Script(httpx.Response(500))
    rest = client(script, max_attempts=1, breaker_threshold=3, breaker_cool_down=20.0)
    async with rest:
        for _ in range(3):
            assert (await rest.get("/api/v1/timestamp")).status == 500
        state = rest.breakers()["GET /api/v1/timestamp"]
        assert (state.state, state.consecutive_failures, state.times_opened) == ("open", 3, 1)
        with pytest.raises(ExchangeError, match="circuit open"):
            await rest.get("/api/v1/timestamp")
        assert len(script.times) == 3  # refused without a request
        assert (await rest.get("/api/v1/ticker", {"symbol": "A"})).status == 500  # per endpoint
        await trio.sleep(20.0)
        assert rest.breakers()["GET /api/v1/timestamp"].state == "half_open"
        assert (await rest.get("/api/v1/timestamp")).status == 500  # the probe fails
        assert rest.breakers()["GET /api/v1/timestamp"].state == "open"
        await trio.sleep(20.0)
        script.answers = [httpx.Response(200, text=TICKER)]
        assert (await rest.get("/api/v1/timestamp")).status == 200
        assert rest.breakers()["GET /api/v1/timestamp"].state == "closed"
        assert rest.breakers()["GET /api/v1/timestamp"].times_opened == 2


async def test_only_one_probe_goes_while_half_open(autojump_clock: Any) -> None:
    script = Script(httpx.Response(500))
    rest = client(script, max_attempts=1, breaker_threshold=1, breaker_cool_down=5.0)
    async with rest:
        await rest.get("/api/v1/timestamp")
        await trio.sleep(5.0)
        script.answers = [3.0]  # the probe takes 3 s, then succeeds
        refused: list[str] = []

        async def second() -> None:
            await trio.sleep(1.0)
            try:
                await rest.get("/api/v1/timestamp")
            except ExchangeError as exc:
                refused.append(str(exc))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(rest.get, "/api/v1/timestamp")
            nursery.start_soon(second)
    assert len(refused) == 1 and len(script.times) == 2


# --- the shared limiter -----------------------------------------------------------------------


async def test_concurrent_callers_share_one_pool_budget(autojump_clock: Any) -> None:
    limits = RateLimits({"public": 10, "futures": 10}, window=30.0)
    script = Script(httpx.Response(200, text=TICKER))
    a, b = client(script, limits=limits), client(script, limits=limits)
    async with a, b, trio.open_nursery() as nursery:
        for rest in (a, b, a, b, a, b):
            nursery.start_soon(rest.get, "/api/v1/contracts/active")  # weight 3
    times = sorted(script.times)
    assert times[:3] == [pytest.approx(0.0)] * 3  # 9 of 10
    assert times[3] == pytest.approx(30.0) and times[5] == pytest.approx(30.0)
    assert limits.statistics()["public"]["waited_s"] > 0


@given(
    st.lists(
        st.tuples(st.floats(0, 20, allow_nan=False), st.integers(1, 10)),
        min_size=1,
        max_size=60,
    ),
    st.integers(10, 40),
    st.floats(0.5, 30),
)
def test_sliding_window_never_admits_more_than_its_capacity(
    arrivals: list[tuple[float, int]], capacity: int, window: float
) -> None:
    budget = SlidingWindow(capacity, window)
    now = 0.0
    admitted: list[tuple[float, int]] = []
    for gap, weight in arrivals:
        now += gap
        while (delay := budget.wait(now, weight)) > 0:
            now += delay
        budget.spend(now, weight)
        admitted.append((now, weight))
    for start, _ in admitted:
        inside = sum(w for t, w in admitted if start <= t < start + window)
        assert inside <= capacity
    # and it is not needlessly strict: a request that fits is admitted at once
    assert budget.used(now + window) == 0
    assert budget.wait(now + window, capacity) == 0.0


def test_a_weight_that_can_never_fit_is_our_mistake() -> None:
    with pytest.raises(ValueError):
        SlidingWindow(5, 1.0).wait(0.0, 6)


# --- bullet ---------------------------------------------------------------------------------


def _answer(body: str, status: int = 200) -> Any:
    from tradebot.kucoin.rest import RestAnswer

    return RestAnswer("POST", "/api/v1/bullet-public", {}, status, body, 0)


def test_bullet_answer_gives_token_and_servers_in_seconds() -> None:
    bullet = parse_bullet(
        _answer(
            '{"code":"200000","data":{"token":"tok","instanceServers":[{"endpoint":'
            '"wss://ws-api-futures.kucoin.com/","encrypt":true,"protocol":"websocket",'
            '"pingInterval":18000,"pingTimeout":10000}]}}'
        )
    )
    assert bullet.token == "tok"
    assert bullet.servers[0].ping_interval == 18.0 and bullet.servers[0].ping_timeout == 10.0


@pytest.mark.parametrize(
    "body",
    [
        "<html>",
        '{"code":"400100","msg":"bad"}',
        '{"code":"200000","data":{"token":"t","instanceServers":[]}}',
        '{"code":"200000","data":{"token":"t"}}',
        '{"code":"200000","data":{"token":"t","instanceServers":[{"endpoint":"x",'
        '"pingInterval":0,"pingTimeout":1}]}}',
    ],
)
def test_bad_bullet_answers_are_one_line_exchange_errors(body: str) -> None:
    with pytest.raises(ExchangeError) as info:
        parse_bullet(_answer(body))
    assert "\n" not in str(info.value)
