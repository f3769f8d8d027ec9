"""One KuCoin WebSocket session as a state machine: what to send, when, and when it is dead.

Sans-IO in the h11 / wsproto style: no sockets, no clock. The caller (`tradebot.kucoin.feed`)
passes in every frame it receives with the time it arrived (`receive`), asks what to send
(`poll`) and sleeps until `deadline()`; it closes the socket once `dead` says why. Times are
seconds on any monotonic clock.

What the session enforces (PROTOCOL.md §3, ARCHITECTURE.md "What bites real bots"):

* nothing is sent before the server's `welcome`, and no welcome within `welcome_timeout` is
  death;
* a ping every `ping_interval` (the bullet answer's `pingInterval`); no pong for it within
  `ping_timeout` is death;
* every subscribe and unsubscribe asks for an ack and is tracked by request id; no ack within
  `ack_timeout` is death, an `error` answer is a rejection of that topic;
* on a connection that should carry data (an acked market-data topic), no data frame for
  `freshness` seconds is death: a socket that stays open but says nothing is not alive;
* at most `max_messages` client messages in any `window` seconds, pings included, with
  `ping_reserve` of them kept for pings so subscriptions can never starve the heartbeat;
* at most `max_topics` topics on the connection, counted per symbol (a topic
  `/contractMarket/level2:A,B` is two), so KuCoin's per-connection cap holds however the
  symbols are batched. Going over is the caller's mistake (ValueError): shard first with
  `plan_connections`.

Liveness is judged by pongs and by data age, never by the socket merely staying open.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from tradebot.kucoin import topics as t
from tradebot.kucoin.protocol import build_ping, build_subscribe, build_unsubscribe, topics_of
from tradebot.kucoin.window import SlidingWindow

__all__ = [
    "Acked",
    "Control",
    "Limits",
    "Pong",
    "Rejected",
    "Session",
    "Welcome",
    "check_topics",
    "plan_connections",
    "topic_size",
]

Kind = Literal["subscribe", "unsubscribe"]


@dataclass(frozen=True, slots=True)
class Limits:
    """The session's limits and timeouts (seconds); defaults from ARCHITECTURE.md."""

    max_messages: int = 90
    window: float = 10.0
    ping_reserve: int = 2
    max_topics: int = 100
    welcome_timeout: float = 10.0
    ack_timeout: float = 10.0
    freshness: float = 5.0

    def __post_init__(self) -> None:
        if not 0 <= self.ping_reserve < self.max_messages or self.max_topics < 1:
            raise ValueError(f"bad session limits {self}")
        if min(self.window, self.welcome_timeout, self.ack_timeout, self.freshness) <= 0:
            raise ValueError(f"session timeouts must be positive: {self}")


@dataclass(frozen=True, slots=True)
class Welcome:
    """The server greeted us; sending may start."""


@dataclass(frozen=True, slots=True)
class Pong:
    """The answer to one of our pings."""

    rtt: float  # seconds from our ping to this pong


@dataclass(frozen=True, slots=True)
class Acked:
    """The server confirmed a subscribe or unsubscribe."""

    kind: Kind
    topic: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """The server refused a subscribe or unsubscribe (`code` and text as it sent them)."""

    kind: Kind
    topic: str
    code: int | str | None
    reason: str


Control = Welcome | Pong | Acked | Rejected

_DATA_MARK = '"type":"message"'
_DATA_MARK_BYTES = _DATA_MARK.encode()


def topic_size(topic: str) -> int:
    """How many of a connection's topics `topic` uses: one per symbol it names."""
    _, _, symbols = topic.partition(":")
    return symbols.count(",") + 1 if symbols else 1


def check_topics(topics: Iterable[str], max_topics: int = 100) -> None:
    """ValueError unless every topic is one we can subscribe and together they fit."""
    names = list(dict.fromkeys(topics))
    for topic in names:
        build_subscribe("check", topic)
    used = sum(topic_size(topic) for topic in names)
    if used > max_topics:
        raise ValueError(
            f"{used} topics do not fit one connection of {max_topics}; shard with plan_connections"
        )


def plan_connections(
    symbols: Iterable[str], channels: Iterable[str], max_topics: int = 100
) -> list[list[str]]:
    """Topics for `symbols` on `channels`, batched (many symbols per topic) and sharded so no
    connection carries more than `max_topics`. The announcement channel, which takes no
    symbol, rides on the first connection. Deterministic: symbols are sorted."""
    chans = list(dict.fromkeys(channels))
    per_symbol = [c for c in chans if c != t.ANNOUNCEMENT]
    extra = 1 if t.ANNOUNCEMENT in chans else 0
    names = sorted(set(symbols))
    if not per_symbol:
        return [[t.ANNOUNCEMENT]] if extra else []
    per_conn = (max_topics - extra) // len(per_symbol)
    if per_conn < 1:
        raise ValueError(f"{len(per_symbol)} channels per symbol do not fit {max_topics} topics")
    plans = [topics_of(names[i : i + per_conn], per_symbol) for i in range(0, len(names), per_conn)]
    if extra:
        if not plans:
            plans.append([])
        plans[0].append(t.ANNOUNCEMENT)
    return plans


class Session:
    """One connection's protocol state, from the socket opening at `now` until it is dead."""

    def __init__(
        self,
        connect_id: str,
        ping_interval: float,
        ping_timeout: float,
        now: float,
        limits: Limits | None = None,
    ) -> None:
        if ping_interval <= 0 or ping_timeout <= 0:
            raise ValueError(
                f"ping interval {ping_interval} and timeout {ping_timeout} must be > 0"
            )
        self.connect_id = connect_id
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.limits = limits or Limits()
        self.opened_at = now
        self.welcomed_at: float | None = None
        self.dead: str | None = None
        self._budget = SlidingWindow(self.limits.max_messages, self.limits.window)
        self._sub_limit = self.limits.max_messages - self.limits.ping_reserve
        self._next_id = 0
        self._next_ping = math.inf
        self._pings: dict[str, float] = {}  # id -> when sent
        self._pending: dict[str, tuple[Kind, str, float]] = {}  # id -> (kind, topic, sent at)
        self._queue: deque[tuple[Kind, str]] = deque()
        self.wanted: dict[str, None] = {}  # topics we want, in the order asked
        self.active: dict[str, None] = {}  # topics the server acked
        self.rejected: dict[str, Rejected] = {}
        self._last_data = now
        self._expects_data = False
        self.sent = 0
        self.data_frames = 0
        self.last_rtt: float | None = None

    # --- what the caller asks for ------------------------------------------------------------

    @property
    def topics_used(self) -> int:
        return sum(topic_size(topic) for topic in self.wanted)

    @property
    def room(self) -> int:
        """How many more topics (symbols × channels) this connection can take."""
        return self.limits.max_topics - self.topics_used

    def subscribe(self, topics: Iterable[str]) -> None:
        """Want `topics`; the subscribes go out as the budget allows once welcomed.
        ValueError if they would take the connection past `max_topics` (nothing is added)."""
        new = [topic for topic in dict.fromkeys(topics) if topic not in self.wanted]
        for topic in new:
            build_subscribe("check", topic)  # our own bad topic raises here, not mid-queue
        need = sum(topic_size(topic) for topic in new)
        if need > self.room:
            raise ValueError(
                f"{need} more topics do not fit connection {self.connect_id}: "
                f"{self.room} of {self.limits.max_topics} left; shard with plan_connections"
            )
        for topic in new:
            self.wanted[topic] = None
            self.rejected.pop(topic, None)
            self._queue.append(("subscribe", topic))

    def unsubscribe(self, topics: Iterable[str]) -> None:
        """Stop wanting `topics`; a subscribe not sent yet is simply dropped."""
        for topic in dict.fromkeys(topics):
            if topic not in self.wanted:
                continue
            del self.wanted[topic]
            if ("subscribe", topic) in self._queue:
                self._queue.remove(("subscribe", topic))
            else:
                self._queue.append(("unsubscribe", topic))

    def close(self, reason: str) -> None:
        """The socket went away (or the caller is closing it): the session is dead."""
        if self.dead is None:
            self.dead = reason

    # --- frames in ----------------------------------------------------------------------------

    def receive(self, now: float, frame: str | bytes) -> Control | None:
        """Take one received frame. Data frames only refresh liveness (the engine decodes
        them); control frames update the session and come back as a `Control`. A frame that
        is not JSON, or of a type we do not use, is ignored here (the engine counts it)."""
        mark = _DATA_MARK if type(frame) is str else _DATA_MARK_BYTES
        if mark in frame:  # type: ignore[operator]
            self._data(now)
            return None
        try:
            msg: Any = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return None
        if type(msg) is not dict:
            return None
        kind = msg.get("type")
        if kind == "message" or (kind is None and "topic" in msg):
            self._data(now)
            return None
        request_id = str(msg.get("id"))
        if kind == "welcome":
            if self.welcomed_at is None:
                self.welcomed_at = now
                self._next_ping = now + self.ping_interval
                return Welcome()
            return None
        if kind == "pong":
            sent = self._pings.pop(request_id, None)
            if sent is None:
                return None
            self.last_rtt = now - sent
            return Pong(self.last_rtt)
        if kind == "ack":
            return self._acked(now, request_id)
        if kind == "error":
            return self._error(msg, request_id)
        return None

    def _data(self, now: float) -> None:
        self.data_frames += 1
        if now > self._last_data:
            self._last_data = now

    def _acked(self, now: float, request_id: str) -> Control | None:
        entry = self._pending.pop(request_id, None)
        if entry is None:
            return None
        kind, topic, _ = entry
        if kind == "subscribe":
            if topic in self.wanted:
                self.active[topic] = None
            if topic != t.ANNOUNCEMENT and not self._expects_data:
                self._expects_data = True
                self._last_data = max(self._last_data, now)  # the data clock starts now
        else:
            self.active.pop(topic, None)
            self._expects_data = any(topic != t.ANNOUNCEMENT for topic in self.active)
        return Acked(kind, topic)

    def _error(self, msg: dict[str, Any], request_id: str) -> Control | None:
        code = msg.get("code")
        text = str(msg.get("data", msg.get("msg", "")))
        entry = self._pending.pop(request_id, None)
        if entry is None:  # not about one request: about the connection (a bad token, ...)
            self.close(f"server error {code}: {text}")
            return None
        kind, topic, _ = entry
        rejected = Rejected(kind, topic, code, text)
        if kind == "subscribe":
            self.wanted.pop(topic, None)
            self.rejected[topic] = rejected
        return rejected

    # --- frames out -----------------------------------------------------------------------------

    def poll(self, now: float) -> list[dict[str, Any]]:
        """The messages to send now, in order (encode each as JSON); [] once dead. Checks
        every deadline first, so a dead session sends nothing more."""
        if self.dead is not None:
            return []
        self._check(now)
        if self.dead is not None or self.welcomed_at is None:
            return []
        out: list[dict[str, Any]] = []
        budget = self._budget
        if now >= self._next_ping and budget.wait(now) == 0.0:
            request_id = self._new_id()
            out.append(build_ping(request_id))
            budget.spend(now)
            self._pings[request_id] = now
            self._next_ping = now + self.ping_interval
        while self._queue and budget.wait(now, 1, self._sub_limit) == 0.0:
            kind, topic = self._queue.popleft()
            request_id = self._new_id()
            build = build_subscribe if kind == "subscribe" else build_unsubscribe
            out.append(build(request_id, topic))
            budget.spend(now)
            self._pending[request_id] = (kind, topic, now)
        self.sent += len(out)
        return out

    def deadline(self, now: float) -> float:
        """When `poll` next has something to do (send or declare death); inf once dead."""
        if self.dead is not None:
            return math.inf
        limits = self.limits
        if self.welcomed_at is None:
            return self.opened_at + limits.welcome_timeout
        due = self._next_ping <= now  # a ping is due: it waits only for the budget
        times = [now + self._budget.wait(now) if due else self._next_ping]
        if self._queue:
            times.append(now + self._budget.wait(now, 1, self._sub_limit))
        if self._pings:
            times.append(next(iter(self._pings.values())) + self.ping_timeout)
        if self._pending:
            times.append(next(iter(self._pending.values()))[2] + limits.ack_timeout)
        if self._expects_data:
            times.append(self._last_data + limits.freshness)
        return min(times)

    def _check(self, now: float) -> None:
        limits = self.limits
        if self.welcomed_at is None:
            if now >= self.opened_at + limits.welcome_timeout:
                self.close(f"no welcome within {limits.welcome_timeout:g} s")
            return
        if self._pings and now >= next(iter(self._pings.values())) + self.ping_timeout:
            self.close(f"no pong within {self.ping_timeout:g} s")
        elif self._pending:
            kind, topic, sent = next(iter(self._pending.values()))
            if now >= sent + limits.ack_timeout:
                self.close(f"no ack for {kind} {topic} within {limits.ack_timeout:g} s")
        if self.dead is None and self._expects_data and now >= self._last_data + limits.freshness:
            self.close(f"no data for {limits.freshness:g} s")

    def _new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def statistics(self) -> dict[str, Any]:
        """A snapshot for ops."""
        return {
            "connect_id": self.connect_id,
            "dead": self.dead,
            "sent": self.sent,
            "data_frames": self.data_frames,
            "topics_wanted": len(self.wanted),
            "topics_active": len(self.active),
            "topics_used": self.topics_used,
            "pending_acks": len(self._pending),
            "queued": len(self._queue),
            "rejected": len(self.rejected),
            "last_rtt": self.last_rtt,
        }
