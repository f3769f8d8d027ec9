"""The KuCoin Futures REST client: httpx under trio, with retries, breakers and rate limits.

Every answer the server gives comes back as a `RestAnswer` holding the body exactly as
received, so live hands the engine what replay reads from a recording (`Engine.on_rest`
takes `RestAnswer.payload()`). What the client adds around each call, in order:

* **Rate limits.** One `SlidingWindow` per KuCoin pool ("public", "futures"; quotas per 30 s,
  weights from PROTOCOL.md §1.2), held by a `RateLimits` that every caller shares (pass one
  `RateLimits` to several clients to share it across them). A caller waits, in FIFO order,
  until its weight fits. The server's `gw-ratelimit-remaining` / `-reset` headers tighten it:
  a pool the server says is spent waits for its reset.
* **A circuit breaker per endpoint** (`tradebot.kucoin.breaker`): refused calls raise
  `ExchangeError` at once; `breakers()` shows every state for ops.
* **Retries** with jittered exponential backoff on 5xx, timeouts and connection errors; on
  HTTP 429 or KuCoin code 429000 it waits as told (`gw-ratelimit-reset`, `Retry-After`) or,
  when the server names no wait (overload), backs off. The random source is injectable.
* **A deadline per attempt** on trio's clock (`timeout`), so a hung server is a timeout.

`ExchangeError` is raised only when there is no answer to give: the circuit is open, or
every attempt timed out or failed to connect. A 5xx or 429 still there after the last retry
is returned as an answer, like any KuCoin error body, for the engine to count.

Plain http:// is refused for every host but loopback (`check_url`): `ConfigError`.
"""

from __future__ import annotations

import ipaddress
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self

import httpx
import orjson
import trio

from tradebot.errors import ConfigError, ExchangeError
from tradebot.kucoin.breaker import BreakerState, CircuitBreaker
from tradebot.kucoin.window import SlidingWindow

__all__ = [
    "DEFAULT_REST_URL",
    "ENDPOINTS",
    "POOL_LIMITS",
    "POOL_WINDOW",
    "Bullet",
    "Endpoint",
    "InstanceServer",
    "RateLimits",
    "RestAnswer",
    "RestClient",
    "check_url",
    "endpoint_of",
    "parse_bullet",
]

DEFAULT_REST_URL: Final = "https://api-futures.kucoin.com"
POOL_WINDOW: Final = 30.0
"""Seconds after which a KuCoin pool's quota refills."""
POOL_LIMITS: Final[Mapping[str, int]] = {"public": 1800, "futures": 1800}
"""Client budgets per pool and window: 90 % of the VIP0 quota of 2000 (PROTOCOL.md §4)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One REST endpoint: its name for breakers and logs, its pool and its weight."""

    name: str  # "GET /api/v1/contracts/{symbol}"
    pool: str
    weight: int


def _table() -> list[tuple[re.Pattern[str], Endpoint]]:
    rows = [
        ("GET", "/api/v1/contracts/active", "public", 3),
        ("GET", "/api/v1/contracts/{symbol}", "public", 3),
        ("GET", "/api/v1/ticker", "public", 2),
        ("GET", "/api/v1/allTickers", "public", 5),
        ("GET", "/api/v1/level2/snapshot", "public", 3),
        ("GET", "/api/v1/level2/depth20", "public", 5),
        ("GET", "/api/v1/level2/depth100", "public", 5),
        ("GET", "/api/v1/trade/history", "public", 5),
        ("GET", "/api/v1/kline/query", "public", 3),
        ("GET", "/api/v1/mark-price/{symbol}/current", "public", 3),
        ("GET", "/api/v1/funding-rate/{symbol}/current", "public", 2),
        ("GET", "/api/v1/timestamp", "public", 2),
        ("GET", "/api/v1/status", "public", 4),
        ("POST", "/api/v1/bullet-public", "public", 10),
        ("POST", "/api/v1/bullet-private", "futures", 10),
        ("POST", "/api/v1/orders", "futures", 2),
        ("POST", "/api/v1/orders/test", "futures", 2),
        ("POST", "/api/v1/orders/multi", "futures", 20),
        ("DELETE", "/api/v1/orders/client-order/{clientOid}", "futures", 1),
        ("DELETE", "/api/v1/orders/multi-cancel", "futures", 20),
        ("DELETE", "/api/v1/orders/{orderId}", "futures", 1),
        ("DELETE", "/api/v3/orders", "futures", 10),
        ("DELETE", "/api/v1/orders", "futures", 800),
        ("DELETE", "/api/v1/stopOrders", "futures", 15),
        ("GET", "/api/v1/orders", "futures", 2),
        ("GET", "/api/v1/orders/byClientOid", "futures", 5),
        ("GET", "/api/v1/orders/{orderId}", "futures", 5),
        ("GET", "/api/v1/position", "futures", 2),
        ("GET", "/api/v1/positions", "futures", 2),
        ("GET", "/api/v1/account-overview", "futures", 5),
    ]
    out = []
    for method, path, pool, weight in rows:
        pattern = re.escape(path).replace(r"\{", "{").replace(r"\}", "}")
        pattern = re.sub(r"\{[A-Za-z]+\}", "[^/]+", pattern)
        out.append((re.compile(f"{method} {pattern}"), Endpoint(f"{method} {path}", pool, weight)))
    return out


ENDPOINTS: Final = _table()
"""(pattern of "METHOD /path", Endpoint), literal paths before templated ones where both fit."""


def endpoint_of(method: str, path: str) -> Endpoint:
    """The endpoint `method path` calls; an endpoint we do not know is our mistake."""
    key = f"{method.upper()} {path}"
    for pattern, endpoint in ENDPOINTS:
        if pattern.fullmatch(key):
            return endpoint
    raise ValueError(f"unknown KuCoin endpoint {key!r}: add it with its pool and weight")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, option: str = "--rest-url", secure: str = "https") -> str:
    """`url` without a trailing slash, if it is `secure` (https/wss), or plain (http/ws) to a
    loopback host; anything else is a ConfigError that names `option`."""
    plain = secure[:-1]
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigError(f"{option} {url!r} is not a URL ({exc})") from None
    if not parsed.host or parsed.scheme not in (secure, plain):
        raise ConfigError(f"{option} {url!r} must be a {secure}:// URL")
    if parsed.scheme == plain and not _is_loopback(parsed.host):
        raise ConfigError(
            f"{option} {url!r}: plain {plain}:// is allowed only to loopback "
            f"(127.0.0.1, ::1, localhost); use {secure}://"
        )
    return url.rstrip("/")


@dataclass(frozen=True, slots=True)
class RestAnswer:
    """One answer as received; `payload()` is what `Engine.on_rest` and a recording take."""

    method: str
    path: str
    params: dict[str, str]
    status: int
    body: str
    recv_ns: int  # epoch ns when the answer was read (the wall clock, as for WS frames)
    headers: Mapping[str, str] = field(default_factory=dict, compare=False)

    def payload(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "params": dict(self.params),
            "status": self.status,
            "body": self.body,
        }

    def code(self) -> str | None:
        """KuCoin's `code` field of the body, or None when the body has none."""
        return _body_code(self.body)


def _body_code(body: str) -> str | None:
    if '"code"' not in body:
        return None
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    code = decoded.get("code") if isinstance(decoded, dict) else None
    return str(code) if code is not None else None


class RateLimits:
    """One budget per KuCoin pool, shared by every caller of every client given it."""

    def __init__(
        self,
        limits: Mapping[str, int] = POOL_LIMITS,
        window: float = POOL_WINDOW,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.clock = clock
        self.pools = {name: SlidingWindow(cap, window) for name, cap in limits.items()}
        self._locks = {name: trio.Lock() for name in limits}
        self._blocked_until = dict.fromkeys(limits, 0.0)
        self._server_left: dict[str, int | None] = dict.fromkeys(limits)
        self.waited: dict[str, float] = dict.fromkeys(limits, 0.0)

    async def acquire(self, pool: str, weight: int) -> None:
        """Wait until `weight` fits `pool` and spend it. Callers are served first come, first
        served; cancelled while waiting, nothing is spent."""
        window = self.pools[pool]
        async with self._locks[pool]:
            while True:
                now = self.clock()
                delay = window.wait(now, weight)
                left = self._server_left[pool]
                if left is not None and now >= self._blocked_until[pool]:
                    left = self._server_left[pool] = None  # the server's window has reset
                if left is not None and weight > left:
                    delay = max(delay, self._blocked_until[pool] - now)
                if delay <= 0:
                    window.spend(now, weight)
                    if left is not None:
                        self._server_left[pool] = left - weight
                    return
                self.waited[pool] += delay
                await trio.sleep(delay)

    def observe(self, pool: str, remaining: int | None, reset_s: float) -> None:
        """The server's own count: `remaining` weight left (None: none, the pool is spent)
        until its window resets in `reset_s` seconds."""
        self._server_left[pool] = max(remaining, 0) if remaining is not None else 0
        self._blocked_until[pool] = self.clock() + max(reset_s, 0.0)

    def statistics(self) -> dict[str, dict[str, float]]:
        now = self.clock()
        return {
            name: {"used": w.used(now), "limit": w.capacity, "waited_s": self.waited[name]}
            for name, w in self.pools.items()
        }


def _header_number(headers: httpx.Headers, name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number >= 0 and number == number else None


class RestClient:
    """KuCoin Futures REST over one httpx `AsyncClient`; use as `async with RestClient(...)`.

    Cancelling a call cancels its HTTP request; nothing of it is retried afterwards. A call
    refused by an open circuit raises at once, without spending rate-limit weight.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_REST_URL,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 10.0,
        breaker_threshold: int = 5,
        breaker_cool_down: float = 30.0,
        limits: RateLimits | None = None,
        rng: random.Random | None = None,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        if max_attempts < 1 or timeout <= 0 or backoff_base <= 0 or backoff_cap < backoff_base:
            raise ValueError("max_attempts >= 1, timeout > 0, 0 < backoff_base <= backoff_cap")
        self.base_url = check_url(base_url)
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.limits = limits if limits is not None else RateLimits()
        self.rng = rng if rng is not None else random.Random()
        self.wall_ns = wall_ns
        self._breaker_args = (breaker_threshold, breaker_cool_down)
        self._breakers: dict[str, CircuitBreaker] = {}
        self.retries = 0
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers={"Content-Type": "application/json"},
            follow_redirects=False,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool; calls after it fail."""
        await self._http.aclose()

    def breakers(self) -> dict[str, BreakerState]:
        """Every endpoint's breaker as ops sees it, by endpoint name."""
        now = self.limits.clock()
        return {name: b.snapshot(now) for name, b in sorted(self._breakers.items())}

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> RestAnswer:
        return await self.request("GET", path, params)

    async def post(self, path: str, body: Mapping[str, Any] | None = None) -> RestAnswer:
        return await self.request("POST", path, None, body)

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> RestAnswer:
        """One call with the limits, breaker and retries of the module docstring."""
        method = method.upper()
        endpoint = endpoint_of(method, path)
        breaker = self._breakers.get(endpoint.name)
        if breaker is None:
            breaker = self._breakers[endpoint.name] = CircuitBreaker(*self._breaker_args)
        query = dict(params or {})
        content = orjson.dumps(dict(body)) if body is not None else None
        clock = self.limits.clock
        problem = ""
        for attempt in range(self.max_attempts):
            last = attempt == self.max_attempts - 1
            if attempt:
                self.retries += 1
            if not breaker.allow(clock()):
                raise ExchangeError(
                    f"{endpoint.name}: circuit open after repeated failures; next probe in "
                    f"{breaker.retry_in(clock()):.0f} s"
                )
            try:
                await self.limits.acquire(endpoint.pool, endpoint.weight)
                with trio.fail_after(self.timeout):
                    response = await self._http.request(
                        method, path, params=query or None, content=content
                    )
            except trio.TooSlowError:
                problem = f"no answer within {self.timeout:g} s"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            except BaseException:
                breaker.release()
                raise
            else:
                answer = RestAnswer(
                    method,
                    path,
                    query,
                    response.status_code,
                    response.text,
                    self.wall_ns(),
                    response.headers,
                )
                wait = self._rate_headers(endpoint.pool, response)
                if response.status_code >= 500:
                    breaker.failure(clock())
                    if last:
                        return answer
                    await trio.sleep(self._backoff(attempt))
                    continue
                breaker.success()
                if response.status_code == 429 or answer.code() == "429000":
                    if last:
                        return answer
                    await trio.sleep(wait if wait is not None else self._backoff(attempt))
                    continue
                return answer
            breaker.failure(clock())
            if not last:
                await trio.sleep(self._backoff(attempt))
        raise ExchangeError(
            f"{endpoint.name} at {self.base_url}: no answer after {self.max_attempts} tries "
            f"({problem})"
        )

    def _rate_headers(self, pool: str, response: httpx.Response) -> float | None:
        """Feed the server's quota headers to the pool; the wait a 429 names, if any."""
        headers = response.headers
        reset_ms = _header_number(headers, "gw-ratelimit-reset")
        remaining = _header_number(headers, "gw-ratelimit-remaining")
        limited = response.status_code == 429 or _body_code(response.text) == "429000"
        if reset_ms is not None and (remaining is not None or limited):
            left = 0 if limited or remaining is None else int(remaining)
            self.limits.observe(pool, left, reset_ms / 1000)
            if limited:
                return reset_ms / 1000
        if limited:
            return _header_number(headers, "retry-after")
        return None

    def _backoff(self, attempt: int) -> float:
        """Exponential in `attempt`, capped, with the upper half jittered."""
        delay = min(self.backoff_cap, self.backoff_base * float(2**attempt))
        return delay * (0.5 + 0.5 * self.rng.random())


@dataclass(frozen=True, slots=True)
class InstanceServer:
    """One WebSocket server a bullet answer names."""

    endpoint: str
    ping_interval: float  # seconds
    ping_timeout: float  # seconds


@dataclass(frozen=True, slots=True)
class Bullet:
    """A WebSocket token and the servers it is good for."""

    token: str
    servers: tuple[InstanceServer, ...]


def parse_bullet(answer: RestAnswer) -> Bullet:
    """The token and servers of a bullet-public/-private answer; ExchangeError if it has none."""
    where = f"{answer.method} {answer.path}"
    try:
        decoded = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        raise ExchangeError(f"{where}: HTTP {answer.status}, body is not JSON") from None
    if not isinstance(decoded, dict) or decoded.get("code") != "200000":
        msg = decoded.get("msg", "") if isinstance(decoded, dict) else ""
        code = decoded.get("code") if isinstance(decoded, dict) else None
        raise ExchangeError(f"{where}: HTTP {answer.status}, KuCoin code {code} {msg}".rstrip())
    data: Any = decoded.get("data")
    try:
        token = data["token"]
        servers = tuple(
            InstanceServer(
                str(s["endpoint"]), float(s["pingInterval"]) / 1000, float(s["pingTimeout"]) / 1000
            )
            for s in data["instanceServers"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ExchangeError(f"{where}: answer lacks a usable token or server ({exc!r})") from None
    if not isinstance(token, str) or not token or not servers:
        raise ExchangeError(f"{where}: answer names no token or no server")
    if any(s.ping_interval <= 0 or s.ping_timeout <= 0 for s in servers):
        raise ExchangeError(f"{where}: a server advertises a ping interval or timeout <= 0")
    return Bullet(token, servers)
