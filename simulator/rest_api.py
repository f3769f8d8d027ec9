"""The simulated exchange's REST API, sans-IO: a request line in, a KuCoin answer out.

Serves what PROTOCOL.md §1 lists for public market data: bullet-public, contracts (all
active, one), level2 snapshot / depth20 / depth100, ticker and server time. Answers are
``{"code": "200000", "data": ...}``; errors are KuCoin's ``{"code", "msg"}`` bodies:
``404000`` for an unknown path, ``400100`` for a missing or bad parameter, ``100003`` for an
unknown contract. Every answer carries the ``gw-ratelimit-*`` headers of the Public pool
(weight per endpoint, `Limits.rest_weight_per_window` per IP per window); past the quota the
answer is HTTP 429 with ``429000`` and the violation is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import orjson

from simulator.market_model import MarketModel
from simulator.ws_session import Limits, Tokens, Violations

__all__ = ["Quota", "Response", "RestApi", "error_response"]

_JSON: Final = (b"content-type", b"application/json")
_WEIGHTS: Final = {
    "bullet": 10,
    "active": 3,
    "contract": 3,
    "snapshot": 3,
    "depth": 5,
    "ticker": 2,
    "timestamp": 2,
    "unknown": 1,
}


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP answer: status, extra headers, body."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def json(self) -> Any:
        return orjson.loads(self.body)


def error_response(
    status: int, code: str, msg: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> Response:
    """KuCoin's error answer."""
    return Response(status, orjson.dumps({"code": code, "msg": msg}), (_JSON, *headers))


def _ok(data: Any, headers: tuple[tuple[bytes, bytes], ...]) -> Response:
    return Response(200, orjson.dumps({"code": "200000", "data": data}), (_JSON, *headers))


class Quota:
    """The Public pool per IP: a window opens at the first request and lasts `rest_window_s`."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._windows: dict[str, tuple[float, int]] = {}  # ip -> (window start, weight used)

    def take(self, ip: str, weight: int, now_s: float) -> tuple[bool, int, int]:
        """Spend `weight`: (allowed, remaining, ms until the window resets)."""
        limit, span = self._limits.rest_weight_per_window, self._limits.rest_window_s
        start, used = self._windows.get(ip, (now_s, 0))
        if now_s >= start + span:
            start, used = now_s, 0
        reset_ms = max(0, int((start + span - now_s) * 1000))
        if used + weight > limit:
            self._windows[ip] = (start, used)
            return False, max(0, limit - used), reset_ms
        self._windows[ip] = (start, used + weight)
        return True, limit - used - weight, reset_ms


class RestApi:
    """Routes one request to its answer; `endpoint()` is the WebSocket URL to hand out."""

    def __init__(
        self,
        model: MarketModel,
        tokens: Tokens,
        limits: Limits,
        violations: Violations,
        endpoint: Callable[[], str],
    ) -> None:
        self._model = model
        self._tokens = tokens
        self._limits = limits
        self._violations = violations
        self._endpoint = endpoint
        self._quota = Quota(limits)

    def handle(self, method: str, target: str, ip: str, now_s: float) -> Response:
        """The answer to `method` `target` (path and query) from `ip` at `now_s`."""
        parts = urlsplit(target)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        route = self._route(method, path)
        allowed, remaining, reset_ms = self._quota.take(ip, _WEIGHTS[route], now_s)
        headers = (
            (b"gw-ratelimit-limit", str(self._limits.rest_weight_per_window).encode()),
            (b"gw-ratelimit-remaining", str(remaining).encode()),
            (b"gw-ratelimit-reset", str(reset_ms).encode()),
        )
        if not allowed:
            self._violations.add("rest_quota")
            return error_response(429, "429000", "Too Many Requests", headers)
        if route == "unknown":
            return error_response(404, "404000", f"{method} {path}: url not found", headers)
        if route == "bullet":
            return _ok(self._bullet(now_s), headers)
        if route == "active":
            return _ok(self._model.active(), headers)
        if route == "timestamp":
            return _ok(self._model.now_ns // 1_000_000, headers)
        if route == "contract":
            symbol = path.rsplit("/", 1)[1]
            contract = self._model.contract(symbol)
            if contract is None:
                return error_response(200, "100003", "Contract parameter invalid", headers)
            return _ok(contract, headers)
        symbol = query.get("symbol", "")
        if not symbol:
            return error_response(400, "400100", "symbol is required", headers)
        if not self._model.known(symbol):
            return error_response(200, "100003", "Contract parameter invalid", headers)
        if route == "ticker":
            return _ok(self._model.ticker(symbol), headers)
        depth = None if route == "snapshot" else int(path.rsplit("depth", 1)[1])
        return _ok(self._model.snapshot(symbol, depth), headers)

    def _route(self, method: str, path: str) -> str:
        if method == "POST":
            return "bullet" if path == "/api/v1/bullet-public" else "unknown"
        if method != "GET":
            return "unknown"
        if path == "/api/v1/contracts/active":
            return "active"
        if path.startswith("/api/v1/contracts/") and path.count("/") == 4 and path[18:]:
            return "contract"
        return {
            "/api/v1/level2/snapshot": "snapshot",
            "/api/v1/level2/depth20": "depth",
            "/api/v1/level2/depth100": "depth",
            "/api/v1/ticker": "ticker",
            "/api/v1/timestamp": "timestamp",
        }.get(path, "unknown")

    def _bullet(self, now_s: float) -> dict[str, Any]:
        return {
            "token": self._tokens.issue(now_s),
            "instanceServers": [
                {
                    "endpoint": self._endpoint(),
                    "encrypt": False,
                    "protocol": "websocket",
                    "pingInterval": self._limits.ping_interval_ms,
                    "pingTimeout": self._limits.ping_timeout_ms,
                }
            ],
        }
