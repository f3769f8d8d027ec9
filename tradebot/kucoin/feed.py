"""One public KuCoin Futures WebSocket feed under trio: connects, stays alive, reconnects.

`Feed.run` (or `run_feed`) loops forever: a token from `POST /api/v1/bullet-public` (through
`RestClient`, so it is rate-limited and retried), a socket to the endpoint the answer names
with the token and a connectId, and a `Session` (`tradebot.kucoin.connection`) that decides
what to send and when the connection is dead. Every frame received goes to `out` as it
arrived, as `(recv_ns, "ws", frame, conn)`; the connection's life as `(recv_ns, "conn",
{"event", "conn", "reason"}, conn)` records: the shapes of a version-2 recording
(RECORDING_FORMAT.md), so the pump hands the engine exactly what replay does. `recv_ns` is
the wall clock (`time.time_ns`) when the frame was read; `conn` an int unique per process
when the `conn_ids` counter is shared by every feed.

Every feed given the same `DialGate` shares one budget for opening connections (KuCoin
allows 30 a minute). After a drop the feed waits per its `Backoff` (capped, jittered, reset
after a healthy period; it never gives up), takes a fresh token and subscribes its full topic
set again.
Topics the server rejected are dropped from the set and kept in `rejected`.

If `out` is closed by its receiver the feed ends with `trio.BrokenResourceError` (you closed
it; nothing broke). If `out` is full the reader waits: memory stays bounded, and a connection
whose frames the engine cannot take for longer than the freshness limit is judged dead and
reopened.

Cancellation is the normal way out: it closes the socket (bounded by `close_timeout`); frames
already in `out` stay there.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn
from urllib.parse import urlencode

import orjson
import trio
import trio_websocket

from tradebot.errors import ConfigError, ExchangeError
from tradebot.kucoin.backoff import Backoff
from tradebot.kucoin.connection import (
    Control,
    Limits,
    Rejected,
    Session,
    Welcome,
    check_topics,
)
from tradebot.kucoin.rest import InstanceServer, RestClient, check_url, parse_bullet
from tradebot.kucoin.window import SlidingWindow

__all__ = ["BULLET_PUBLIC", "DialGate", "Feed", "FeedItem", "run_feed"]

log = logging.getLogger(__name__)

BULLET_PUBLIC = "/api/v1/bullet-public"
FeedItem = tuple[int, str, Any, int]
"""(recv_ns, kind "ws" | "conn", payload, conn): one record of a version-2 recording."""

_NETWORK_ERRORS = (
    trio_websocket.HandshakeError,
    trio_websocket.ConnectionClosed,
    OSError,
    trio.TooSlowError,
)


class DialGate:
    """At most `per_window` new connections in any `window` seconds, shared by every feed
    given it (KuCoin: 30 per minute). Waiters are served first come, first served."""

    def __init__(self, per_window: int = 30, window: float = 60.0) -> None:
        self._window = SlidingWindow(per_window, window)
        self._lock = trio.Lock()
        self.opened = 0

    async def wait(self) -> None:
        """Wait for a slot and take it; cancelled while waiting, none is taken."""
        async with self._lock:
            while (delay := self._window.wait(trio.current_time())) > 0:
                await trio.sleep(delay)
            self._window.spend(trio.current_time())
            self.opened += 1


class Feed:
    """One feed: one socket at a time, carrying `topics` (at most `limits.max_topics`)."""

    def __init__(
        self,
        rest: RestClient,
        topics: Iterable[str],
        out: trio.MemorySendChannel[FeedItem],
        *,
        conn_ids: Iterator[int] | None = None,
        dial_gate: DialGate | None = None,
        backoff: Backoff | None = None,
        limits: Limits | None = None,
        connect_timeout: float = 10.0,
        close_timeout: float = 2.0,
        rng: random.Random | None = None,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.rest = rest
        self.topics: dict[str, None] = dict.fromkeys(topics)
        self.out = out
        self.conn_ids = conn_ids if conn_ids is not None else itertools.count(1)
        self.dial_gate = dial_gate if dial_gate is not None else DialGate()
        self.backoff = backoff if backoff is not None else Backoff()
        self.limits = limits or Limits()
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.rng = rng if rng is not None else random.Random()
        self.wall_ns = wall_ns
        self.session: Session | None = None
        self.rejected: dict[str, Rejected] = {}
        self.connections = 0
        self.reconnects = 0
        self.last_close_reason = ""
        self._kick = trio.Event()
        self._started = False
        check_topics(self.topics, self.limits.max_topics)

    # --- topic changes while running ---

    def subscribe(self, topics: Iterable[str]) -> None:
        """Add `topics` now (on the open connection) and on every reconnect."""
        new = [topic for topic in topics if topic not in self.topics]
        check_topics([*self.topics, *new], self.limits.max_topics)
        if self.session is not None and self.session.dead is None:
            self.session.subscribe(new)
        self.topics.update(dict.fromkeys(new))
        self._kick.set()

    def unsubscribe(self, topics: Iterable[str]) -> None:
        """Drop `topics` now and from every reconnect."""
        gone = [topic for topic in topics if topic in self.topics]
        for topic in gone:
            del self.topics[topic]
        if self.session is not None:
            self.session.unsubscribe(gone)
        self._kick.set()

    def statistics(self) -> dict[str, Any]:
        session = self.session.statistics() if self.session is not None else None
        return {
            "connections": self.connections,
            "reconnects": self.reconnects,
            "topics": len(self.topics),
            "rejected": len(self.rejected),
            "last_close_reason": self.last_close_reason,
            "session": session,
            "backoff_failures_in_a_row": self.backoff.failures_in_a_row,
        }

    # --- the loop ---

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Connect, and reconnect, forever. Calls `task_status.started()` at the first
        welcome (the feed is really up); ends only by cancellation."""
        while True:
            conn = next(self.conn_ids)
            reason = await self._one_connection(conn, task_status)
            self.last_close_reason = reason
            self.reconnects += 1
            delay = self.backoff.down(trio.current_time())
            log.warning("feed conn %d closed (%s); reconnecting in %.1f s", conn, reason, delay)
            await trio.sleep(delay)

    async def _one_connection(self, conn: int, task_status: trio.TaskStatus[None]) -> str:
        """One connection attempt, from the token to the socket's end; why it ended."""
        try:
            server, url, connect_id = await self._dial_plan()
        except (ExchangeError, ConfigError) as exc:
            await self._conn_record("error", conn, str(exc))
            return str(exc)
        opened = False
        try:
            async with trio_websocket.open_websocket_url(
                url,
                connect_timeout=self.connect_timeout,
                disconnect_timeout=self.close_timeout,
                message_queue_size=256,
            ) as ws:
                opened = True
                self.connections += 1
                session = Session(
                    connect_id,
                    server.ping_interval,
                    server.ping_timeout,
                    trio.current_time(),
                    self.limits,
                )
                session.subscribe(self.topics)
                self.session = session
                await self._conn_record("open", conn, "")
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._reader, ws, session, conn)
                    await self._writer(ws, session, task_status)
                    nursery.cancel_scope.cancel()
                reason = session.dead or "closed"
                with trio.move_on_after(self.close_timeout, shield=True):
                    await ws.aclose()
        except* _NETWORK_ERRORS as group:
            reason = self._session_reason() or _describe(group.exceptions[0])
        await self._conn_record("close" if opened else "error", conn, reason)
        return reason

    def _session_reason(self) -> str | None:
        return self.session.dead if self.session is not None else None

    async def _dial_plan(self) -> tuple[InstanceServer, str, str]:
        self.session = None
        await self.dial_gate.wait()
        bullet = parse_bullet(await self.rest.post(BULLET_PUBLIC))
        server = bullet.servers[self.rng.randrange(len(bullet.servers))]
        endpoint = check_url(server.endpoint, option="bullet endpoint", secure="wss")
        connect_id = str(self.wall_ns())
        query = urlencode({"token": bullet.token, "connectId": connect_id})
        sep = "&" if "?" in endpoint else "?"
        return server, f"{endpoint}{sep}{query}", connect_id

    async def _reader(
        self, ws: trio_websocket.WebSocketConnection, session: Session, conn: int
    ) -> None:
        out, wall_ns, clock = self.out, self.wall_ns, trio.current_time
        try:
            while True:
                frame = await ws.get_message()
                recv_ns = wall_ns()
                control = session.receive(clock(), frame)
                await out.send((recv_ns, "ws", frame, conn))
                if control is not None:
                    self._on_control(control)
                if session.dead is not None:
                    self._kick.set()
        except trio_websocket.ConnectionClosed as exc:
            session.close(f"socket closed ({_close_text(exc)})")
            self._kick.set()

    def _on_control(self, control: Control) -> None:
        if isinstance(control, Welcome):
            self.backoff.up(trio.current_time())
        elif isinstance(control, Rejected) and control.kind == "subscribe":
            self.topics.pop(control.topic, None)
            self.rejected[control.topic] = control
            log.warning("topic %s rejected: %s %s", control.topic, control.code, control.reason)
        self._kick.set()

    async def _writer(
        self,
        ws: trio_websocket.WebSocketConnection,
        session: Session,
        task_status: trio.TaskStatus[None],
    ) -> None:
        clock = trio.current_time
        while True:
            kick = self._kick = trio.Event()
            for msg in session.poll(clock()):
                try:
                    await ws.send_message(orjson.dumps(msg).decode())
                except trio_websocket.ConnectionClosed as exc:
                    session.close(f"socket closed ({_close_text(exc)})")
                    break
            if session.welcomed_at is not None and not self._started:
                self._started = True
                task_status.started()
            if session.dead is not None:
                return
            with trio.move_on_at(session.deadline(clock())):
                await kick.wait()

    async def _conn_record(self, event: str, conn: int, reason: str) -> None:
        await self.out.send(
            (self.wall_ns(), "conn", {"event": event, "conn": conn, "reason": reason}, conn)
        )


def _close_text(exc: trio_websocket.ConnectionClosed) -> str:
    reason = exc.reason
    if reason is None:
        return "no close frame"
    return f"{reason.code} {reason.name}" + (f": {reason.reason}" if reason.reason else "")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, trio_websocket.ConnectionClosed):
        return f"socket closed ({_close_text(exc)})"
    if isinstance(exc, trio_websocket.ConnectionRejected):
        return f"connection refused with HTTP {exc.status_code}"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def run_feed(
    rest: RestClient,
    topics: Iterable[str],
    out: trio.MemorySendChannel[FeedItem],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> NoReturn:
    """Keep one public KuCoin socket carrying `topics` open; send every frame and connection
    record to `out` (see the module docstring; `options` go to `Feed`). Calls
    task_status.started() at the first welcome; reconnects by itself and ends only by
    cancellation, which closes the socket; items already in `out` stay."""
    await Feed(rest, topics, out, **options).run(task_status=task_status)
