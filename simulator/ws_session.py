"""The simulated exchange's WebSocket protocol, sans-IO: tokens, admission, one session's rules.

KuCoin's public socket as PROTOCOL.md §3 describes it: a token from bullet-public checked at
connect, ``welcome`` first, JSON ``ping`` answered by ``pong``, ``subscribe`` /
``unsubscribe`` with several symbols per topic and an ``ack`` when ``response`` is true, and
an ``error`` frame (``{"id", "type": "error", "code", "data"}``) for what KuCoin refuses.
The limits are KuCoin's, configurable in `Limits`; every time a client breaks one it is
counted in `Violations`, so a test of a well-behaved client can assert the count is zero.
Times are seconds from any monotonic origin, passed in by the caller.
"""

from __future__ import annotations

import secrets
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from simulator.market_model import ANNOUNCEMENT, TOPICS

__all__ = ["Gate", "Limits", "Reply", "Session", "Tokens", "Violations", "error_frame"]

_NO_SYMBOL_TOPICS: Final = frozenset({ANNOUNCEMENT})


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """KuCoin's public limits (PROTOCOL.md §3.4, §4), as the simulated exchange enforces them."""

    ping_interval_ms: int = 18_000
    ping_timeout_ms: int = 10_000
    messages_per_window: int = 100  # client messages (pings included) per window per socket
    message_window_s: float = 10.0
    topics_per_connection: int = 100  # one per symbol: level2:A,B is two
    topics_per_request: int = 100
    connections_per_token: int = 50
    new_connections_per_minute: int = 30  # per IP
    token_ttl_s: float = 86_400.0
    rest_weight_per_window: int = 2_000  # the Public pool, per IP
    rest_window_s: float = 30.0

    @property
    def idle_close_s(self) -> float:
        """A socket that sends nothing for this long is closed (no ping: dead)."""
        return (self.ping_interval_ms + self.ping_timeout_ms) / 1000


@dataclass(slots=True)
class Violations:
    """Limits clients broke, by kind; `total` is what a test asserts to be zero."""

    by_kind: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str) -> None:
        self.by_kind[kind] += 1

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


def error_frame(id_: object, code: int, text: str) -> str:
    """KuCoin's WebSocket error frame."""
    return orjson.dumps({"id": id_, "type": "error", "code": code, "data": text}).decode()


class Tokens:
    """Tokens bullet-public hands out, each valid for `Limits.token_ttl_s`."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._issued: dict[str, float] = {}

    def issue(self, now_s: float) -> str:
        token = secrets.token_urlsafe(48)
        self._issued[token] = now_s + self._limits.token_ttl_s
        return token

    def problem(self, token: str | None, now_s: float) -> str | None:
        """Why `token` may not connect ("token is invalid" / "token is expired"), or None."""
        expires = self._issued.get(token or "")
        if expires is None:
            return "token is invalid"
        if now_s >= expires:
            return "token is expired"
        return None


class Gate:
    """Admission of new sockets: connections per token, new connections per minute per IP."""

    def __init__(self, limits: Limits, tokens: Tokens, violations: Violations) -> None:
        self._limits = limits
        self._tokens = tokens
        self._violations = violations
        self._open: Counter[str] = Counter()
        self._recent: dict[str, deque[float]] = {}

    def admit(self, token: str | None, ip: str, now_s: float) -> tuple[int, str] | None:
        """None to let the socket in (and count it), else KuCoin's (code, text) to refuse it."""
        problem = self._tokens.problem(token, now_s)
        if problem is not None:
            self._violations.add("bad_token")
            return 401, problem
        recent = self._recent.setdefault(ip, deque())
        while recent and recent[0] <= now_s - 60.0:
            recent.popleft()
        if len(recent) >= self._limits.new_connections_per_minute:
            self._violations.add("connections_per_minute")
            return 509, "exceed max connection count limitation per minute"
        assert token is not None
        if self._open[token] >= self._limits.connections_per_token:
            self._violations.add("connections_per_token")
            return 509, "exceed max session count"
        recent.append(now_s)
        self._open[token] += 1
        return None

    def release(self, token: str) -> None:
        """A socket `admit` let in has closed."""
        self._open[token] -= 1
        if self._open[token] <= 0:
            del self._open[token]

    def open_count(self) -> int:
        return sum(self._open.values())


@dataclass(slots=True)
class Reply:
    """What one client message does: frames to send back, topics added and removed."""

    frames: list[str] = field(default_factory=list)
    add: list[tuple[str, str]] = field(default_factory=list)
    remove: list[tuple[str, str]] = field(default_factory=list)


class Session:
    """One socket's protocol state: its topics and its message budget."""

    def __init__(
        self,
        connect_id: str,
        limits: Limits,
        violations: Violations,
        known_symbol: Callable[[str], bool],
    ) -> None:
        self.connect_id = connect_id
        self.topics: set[tuple[str, str]] = set()
        self.errors: Counter[int] = Counter()
        self._limits = limits
        self._violations = violations
        self._known = known_symbol
        self._times: deque[float] = deque()

    def welcome(self) -> str:
        return orjson.dumps({"id": self.connect_id, "type": "welcome"}).decode()

    def on_message(self, text: str | bytes, now_s: float) -> Reply:
        """Handle one client message received at `now_s`."""
        reply = Reply()
        times = self._times
        while times and times[0] <= now_s - self._limits.message_window_s:
            times.popleft()
        if len(times) >= self._limits.messages_per_window:
            self._violations.add("messages_per_window")
            reply.frames.append(self._error(self.connect_id, 509, "exceed max permits per second"))
            return reply
        times.append(now_s)
        try:
            msg: Any = orjson.loads(text)
        except orjson.JSONDecodeError:
            msg = None
        if type(msg) is not dict:
            reply.frames.append(self._error(self.connect_id, 415, "message is not a JSON object"))
            return reply
        id_ = msg.get("id", self.connect_id)
        kind = msg.get("type")
        if kind == "ping":
            reply.frames.append(orjson.dumps({"id": id_, "type": "pong"}).decode())
        elif kind in ("subscribe", "unsubscribe"):
            self._subscription(msg, id_, kind == "subscribe", reply)
        else:
            reply.frames.append(self._error(id_, 415, "command type is invalid"))
        return reply

    def _error(self, id_: object, code: int, text: str) -> str:
        self.errors[code] += 1
        return error_frame(id_, code, text)

    def _subscription(self, msg: dict[str, Any], id_: object, add: bool, reply: Reply) -> None:
        topic = msg.get("topic")
        if type(topic) is not str or not topic:
            reply.frames.append(self._error(id_, 406, "topic is required"))
            return
        if msg.get("privateChannel") is True:
            reply.frames.append(self._error(id_, 403, "login is required"))
            return
        prefix, colon, rest = topic.partition(":")
        if prefix not in TOPICS:
            reply.frames.append(self._error(id_, 404, f"topic {topic} does not exist"))
            return
        symbols = [s for s in rest.split(",")] if colon else []
        if not symbols:
            if prefix not in _NO_SYMBOL_TOPICS:
                reply.frames.append(self._error(id_, 400, f"topic {topic} is invalid"))
                return
            symbols = [""]
        if any(not s for s in symbols) and symbols != [""]:
            reply.frames.append(self._error(id_, 400, f"topic {topic} is invalid"))
            return
        if len(symbols) > self._limits.topics_per_request:
            self._violations.add("topics_per_request")
            limit = self._limits.topics_per_request
            reply.frames.append(
                self._error(
                    id_, 509, f"exceed max subscription count limitation of {limit} per time"
                )
            )
            return
        unknown = [s for s in symbols if s and not self._known(s)]
        if unknown:
            reply.frames.append(
                self._error(id_, 404, f"topic {prefix}:{','.join(unknown)} does not exist")
            )
            return
        pairs = [(prefix, s) for s in symbols]
        if add:
            new = [p for p in dict.fromkeys(pairs) if p not in self.topics]
            if len(self.topics) + len(new) > self._limits.topics_per_connection:
                self._violations.add("topics_per_connection")
                limit = self._limits.topics_per_connection
                reply.frames.append(
                    self._error(
                        id_, 509, f"exceed max subscription count limitation of {limit} per session"
                    )
                )
                return
            self.topics.update(new)
            reply.add = new
        else:
            gone = [p for p in dict.fromkeys(pairs) if p in self.topics]
            self.topics.difference_update(gone)
            reply.remove = gone
        if msg.get("response") is True:
            reply.frames.append(orjson.dumps({"id": id_, "type": "ack"}).decode())
