"""A simulated KuCoin Futures exchange on loopback: REST and WebSocket from a recording.

The thin trio part. The market (`simulator.market_model`), the REST answers
(`simulator.rest_api`), the socket protocol and limits (`simulator.ws_session`) and the
fault specs (`simulator.faults`) are sans-IO; this module serves them: REST over h11 on
trio streams, the WebSocket over trio-websocket's server on a port of its own (named by the
bullet-public answer), the recording streamed at its recorded pace (or `speed` times faster,
or as fast as the sockets take it), the faults fired at their times.

The recording starts playing when the first socket subscribes to something, so a client
that needs a moment to connect misses nothing; REST answers from the recording's first
state before that. Fault times count from the same moment. Each socket has a bounded queue
of frames: when the stream is paced, a socket whose queue is full is a slow consumer and is
closed (KuCoin drops those too); at ``--speed max`` the stream waits for it instead.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import struct
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn
from urllib.parse import parse_qs, urlsplit

import h11
import trio
import trio_websocket

from simulator.faults import GAP_SKIP, Fault, RestFaults
from simulator.market_model import ANNOUNCEMENT, MALFORMED, Emit, MarketModel, first_snapshots
from simulator.recording import RecordingReader
from simulator.rest_api import Response, RestApi, error_response
from simulator.ws_session import Gate, Limits, Session, Tokens, Violations, error_frame

__all__ = ["Exchange", "ExchangeOptions", "check_loopback"]

log = logging.getLogger("tradebot.sim_exchange")

_REST_IDLE_S: Final = 60.0
_MAX_REQUEST: Final = 64 * 1024
_FALLBACK_MALFORMED: Final = '{"type":"message","topic":"/contractMarket/level2:'


def check_loopback(host: str) -> str:
    """`host` when it is a loopback address; ValueError (one line) for anything else."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the simulated exchange binds to loopback only, not {host!r}")
    return host


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeOptions:
    """How the exchange runs: pace, faults, limits, where it listens."""

    speed: float | None = 1.0  # None: as fast as the sockets take it
    faults: tuple[Fault, ...] = ()
    limits: Limits = field(default_factory=Limits)
    host: str = "127.0.0.1"
    rest_port: int = 0  # 0: any free port
    ws_port: int = 0
    depth_interval_s: float = 0.1  # level2Depth5/50 push period
    queue_frames: int = 4096  # per socket


class _Socket:
    """One accepted WebSocket: its protocol session, its queue, its state."""

    def __init__(self, number: int, ws: Any, session: Session, size: int) -> None:
        self.number = number
        self.ws = ws
        self.session = session
        self.send, self.recv = trio.open_memory_channel[str](size)
        self.silenced = False
        self.cancel = trio.CancelScope()


class Exchange:
    """The simulated exchange; `run` serves it until cancelled.

    Tests read `violations.total` (limits clients broke), `fired` (faults, as they fired),
    `stats` (frames sent, sockets, refusals, ...) and `model` (the books).
    """

    def __init__(self, recording: str | os.PathLike[str], options: ExchangeOptions) -> None:
        self.options = options
        self._host = check_loopback(options.host)
        self._path = recording
        with RecordingReader(recording) as reader:
            start = first_snapshots(reader)
        self.model = MarketModel(start, speed=options.speed, wants=self._wants)
        self.violations = Violations()
        self.tokens = Tokens(options.limits)
        self.gate = Gate(options.limits, self.tokens, self.violations)
        self.rest = RestApi(
            self.model, self.tokens, options.limits, self.violations, self.ws_endpoint
        )
        self.rest_faults = RestFaults()
        self.fired: list[tuple[float, str]] = []
        self.stats: Counter[str] = Counter()
        self.rest_port = 0
        self.ws_port = 0
        self.started = trio.Event()  # the recording started playing
        self.finished = trio.Event()  # the whole recording has been streamed
        self._sockets: dict[int, _Socket] = {}
        self._routes: dict[tuple[str, str], set[_Socket]] = {}
        self._numbers = iter(range(1, 1 << 62))
        self._t0 = 0.0
        self._epoch_ns = 0
        self._start_s = 0.0
        self._outage_until = -1.0
        self._malformed_on = False
        self._malformed_text: str | None = None

    # -- time ------------------------------------------------------------------------------

    def now_s(self) -> float:
        """Seconds since `run` began (trio's clock, so a test's MockClock drives it)."""
        return trio.current_time() - self._t0

    def now_ns(self) -> int:
        """The exchange's epoch time in ns: the wall time `run` began plus `now_s`."""
        return self._epoch_ns + int(self.now_s() * 1e9)

    def ws_endpoint(self) -> str:
        return f"ws://{self._host}:{self.ws_port}/"

    @property
    def rest_url(self) -> str:
        return f"http://{self._host}:{self.rest_port}"

    # -- serving ---------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[Exchange] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Listen (REST, WebSocket), report ready, then play the recording once subscribed.

        Cancelling closes every listener and socket; nothing is kept.
        """
        self._t0 = trio.current_time()
        self._epoch_ns = time.time_ns()
        self.model.now_ns = self._epoch_ns
        async with trio.open_nursery() as nursery:
            rest_listeners = await trio.open_tcp_listeners(self.options.rest_port, host=self._host)
            self.rest_port = rest_listeners[0].socket.getsockname()[1]
            nursery.start_soon(trio.serve_listeners, self._rest_connection, rest_listeners)
            server = await nursery.start(
                trio_websocket.serve_websocket,
                self._ws_connection,
                self._host,
                self.options.ws_port,
                None,
            )
            self.ws_port = server.port
            log.info("REST on %s, WebSocket on %s", self.rest_url, self.ws_endpoint())
            task_status.started(self)
            await self.started.wait()
            self._start_s = self.now_s()
            log.info("first subscription: the recording starts playing")
            nursery.start_soon(self._faults, sorted(self.options.faults, key=lambda f: f.at_s))
            nursery.start_soon(self._depth)
            await self._stream()
            await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the recording ---------------------------------------------------------------------

    async def _stream(self) -> None:
        speed = self.options.speed
        begin = trio.current_time()
        first_ns: int | None = None
        with RecordingReader(self._path) as reader:
            for recv_ns, kind, payload, _conn in reader:
                if first_ns is None:
                    first_ns = recv_ns
                if speed is not None:
                    due = begin + (recv_ns - first_ns) / 1e9 / speed
                    if due > trio.current_time():
                        await trio.sleep_until(due)
                    else:
                        await trio.lowlevel.checkpoint_if_cancelled()
                else:
                    await trio.lowlevel.checkpoint()
                for emit in self.model.feed(recv_ns, kind, payload, self.now_ns()):
                    await self._route(emit)
        log.info("the recording has been streamed to its end (%s frames)", self.stats["frames"])
        self.finished.set()

    async def _depth(self) -> NoReturn:
        while True:
            await trio.sleep(self.options.depth_interval_s)
            self.model.now_ns = self.now_ns()
            for emit in self.model.depth_frames():
                await self._route(emit)

    def _wants(self, prefix: str, symbol: str) -> bool:
        return bool(self._routes.get((prefix, symbol)))

    async def _route(self, emit: Emit) -> None:
        prefix, symbol, text = emit
        if prefix == MALFORMED:
            if self._malformed_text is None:
                self._malformed_text = text
            if not self._malformed_on:
                self.stats["malformed_held_back"] += 1
                return
            targets: Iterable[_Socket] = list(self._sockets.values())
        else:
            targets = self._routes.get((prefix, symbol), ())
            if prefix == ANNOUNCEMENT and symbol:
                targets = [*targets, *self._routes.get((prefix, ""), ())]
        for sock in list(targets):
            await self._push(sock, text)

    async def _push(self, sock: _Socket, text: str) -> None:
        if sock.silenced:
            return
        try:
            sock.send.send_nowait(text)
        except trio.WouldBlock:
            if self.options.speed is None:
                try:
                    await sock.send.send(text)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
            else:
                self.stats["slow_consumers"] += 1
                log.warning("socket %d reads too slowly: closed", sock.number)
                self._forget(sock)
                sock.cancel.cancel()
                return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        self.stats["frames"] += 1

    # -- faults ----------------------------------------------------------------------------

    async def _faults(self, faults: list[Fault]) -> None:
        for fault in faults:
            await trio.sleep_until(self._t0 + self._start_s + fault.at_s)
            self.model.now_ns = self.now_ns()
            what = await self._fire(fault)
            self.fired.append((self.now_s() - self._start_s, what))
            log.warning("fault %s fired: %s", fault, what)

    async def _fire(self, fault: Fault) -> str:
        kind = fault.kind
        if kind in ("drop", "outage"):
            n = len(self._sockets)
            for sock in list(self._sockets.values()):
                _abort(sock)
            if kind == "outage":
                assert fault.seconds is not None
                self._outage_until = self.now_s() + fault.seconds
                return f"dropped {n} sockets; new connections refused for {fault.seconds:g} s"
            return f"dropped {n} sockets"
        if kind == "silence":
            for sock in self._sockets.values():
                sock.silenced = True
            return f"{len(self._sockets)} sockets silent"
        if kind == "malformed":
            self._malformed_on = True
            text = self._malformed_text or _FALLBACK_MALFORMED
            for sock in list(self._sockets.values()):
                await self._push(sock, text)
            return f"sent a frame that is not JSON to {len(self._sockets)} sockets"
        if kind.startswith("rest-"):
            assert fault.seconds is not None
            self.rest_faults.begin(kind, self.now_s(), fault.seconds)
            return f"REST {kind[5:]} for {fault.seconds:g} s"
        open_symbols = self.model.open_symbols()
        if not open_symbols:
            return "no open symbol: nothing done"
        if kind == "gap":
            symbol = fault.symbol or open_symbols[0]
            if symbol not in self.model.books:
                return f"unknown symbol {symbol}: nothing done"
            self.model.books[symbol].hide += GAP_SKIP
            return f"the next {GAP_SKIP} level2 changes of {symbol} are not sent"
        if kind == "list":
            symbol = self.model.list_contract(open_symbols[0], fault.symbol)
            return f"listed {symbol} (trades like {open_symbols[0]})"
        symbol = fault.symbol or open_symbols[-1]
        if self.model.contract(symbol) is None:
            return f"unknown symbol {symbol}: nothing done"
        self.model.delist(symbol)
        return f"{symbol} status Closed; its data stops"

    # -- WebSocket -------------------------------------------------------------------------

    async def _ws_connection(self, request: trio_websocket.WebSocketRequest) -> None:
        now = self.now_s()
        if now < self._outage_until:
            self.stats["refused"] += 1
            await request.reject(503, body=b"service unavailable")
            return
        query = parse_qs(urlsplit(request.path).query)
        token = query.get("token", [None])[-1]
        connect_id = query.get("connectId", [str(time.time_ns())])[-1]
        remote = request.remote
        ip = str(remote.address) if isinstance(remote, trio_websocket.Endpoint) else str(remote)
        problem = self.gate.admit(token, ip, now)
        ws = await request.accept()
        if problem is not None:
            self.stats["refused"] += 1
            await ws.send_message(error_frame(connect_id, *problem))
            await ws.aclose()
            return
        assert token is not None
        number = next(self._numbers)
        session = Session(connect_id, self.options.limits, self.violations, self.model.known)
        sock = _Socket(number, ws, session, self.options.queue_frames)
        self._sockets[number] = sock
        self.stats["connections"] += 1
        try:
            with sock.cancel:
                await ws.send_message(session.welcome())
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer, sock)
                    await self._reader(sock)
                    nursery.cancel_scope.cancel()
        except trio_websocket.ConnectionClosed:
            pass
        finally:
            self._forget(sock)
            self.gate.release(token)

    async def _reader(self, sock: _Socket) -> None:
        limits = self.options.limits
        while True:
            with trio.move_on_after(limits.idle_close_s) as idle:
                message = await sock.ws.get_message()
            if idle.cancelled_caught:
                if not sock.silenced:
                    self.violations.add("ping_timeout")
                    await sock.ws.send_message(
                        error_frame(sock.session.connect_id, 400, "ping timeout")
                    )
                await sock.ws.aclose()
                return
            if sock.silenced:
                continue
            reply = sock.session.on_message(message, self.now_s())
            for pair in reply.add:
                self._routes.setdefault(pair, set()).add(sock)
            for pair in reply.remove:
                self._routes.get(pair, set()).discard(sock)
            if reply.add and not self.started.is_set():
                self.started.set()
            for frame in reply.frames:
                await sock.send.send(frame)

    async def _writer(self, sock: _Socket) -> None:
        async for text in sock.recv:
            if not sock.silenced:
                await sock.ws.send_message(text)

    def _forget(self, sock: _Socket) -> None:
        if self._sockets.pop(sock.number, None) is None:
            return
        for pair in sock.session.topics:
            self._routes.get(pair, set()).discard(sock)
        sock.send.close()

    # -- REST ------------------------------------------------------------------------------

    async def _rest_connection(self, stream: trio.SocketStream) -> None:
        """Serve HTTP/1.1 requests on one TCP connection until it closes or idles."""
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_REQUEST)
        try:
            ip = str(stream.socket.getpeername()[0])
        except OSError:
            return
        try:
            while True:
                request = await self._next_request(conn, stream)
                if request is None:
                    return
                method, target = request
                response = await self._answer(method, target, ip)
                if response is None:  # rest-timeout: no answer at all
                    return
                await self._send(conn, stream, response)
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (h11.RemoteProtocolError, h11.LocalProtocolError):
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                bad = error_response(400, "400100", "bad HTTP request")
                await self._send(conn, stream, bad)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async def _next_request(
        self, conn: h11.Connection, stream: trio.SocketStream
    ) -> tuple[str, str] | None:
        request: h11.Request | None = None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                with trio.move_on_after(_REST_IDLE_S):
                    data = await stream.receive_some(65536)
                    conn.receive_data(data)
                    continue
                return None
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                return request.method.decode("ascii", "replace"), request.target.decode(
                    "ascii", "replace"
                )
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None

    async def _answer(self, method: str, target: str, ip: str) -> Response | None:
        now = self.now_s()
        self.stats["rest_requests"] += 1
        fault = self.rest_faults.active(now)
        if fault is not None:
            kind, left = fault
            self.stats[f"rest_fault_{kind[5:]}"] += 1
            if kind == "rest-429":
                reset = ((b"gw-ratelimit-reset", str(int(left * 1000)).encode()),)
                return error_response(429, "429000", "Too Many Requests", reset)
            if kind == "rest-5xx":
                return error_response(503, "500000", "Service unavailable, try again later")
            await trio.sleep(left)
            return None
        self.model.now_ns = self.now_ns()
        return self.rest.handle(method, target, ip, now)

    @staticmethod
    async def _send(conn: h11.Connection, stream: trio.SocketStream, response: Response) -> None:
        headers = [*response.headers, (b"content-length", str(len(response.body)).encode())]
        data = conn.send(h11.Response(status_code=response.status, headers=headers))
        data = (data or b"") + (conn.send(h11.Data(data=response.body)) or b"")
        data += conn.send(h11.EndOfMessage()) or b""
        await stream.send_all(data)


def _abort(sock: _Socket) -> None:
    """Close a socket's TCP connection at once, with a reset and no close frame."""
    stream = getattr(sock.ws, "_stream", None)  # trio-websocket keeps the TCP stream here
    raw = getattr(stream, "socket", None)
    if raw is not None:
        with contextlib.suppress(OSError):
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()
    sock.cancel.cancel()
