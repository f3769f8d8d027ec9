"""The engine: one synchronous loop from exchange payloads to decisions.

    payload -> protocol (parse) -> market state -> trader (decide, paper broker) -> journal

Live and replay feed the same `Engine` the same way: `on_ws`, `on_rest` and `on_conn`
take a receive time (`recv_ns`, the run's clock) and a payload exactly as recorded.
Nothing here awaits, sleeps, logs per message or reads a wall clock: `now_ns` is always
the receive time of the payload being handled. Periodic work (freshness scans, time
stops) runs on `tick_ms` boundaries of that same clock, fired by `advance(now_ns)`
before a payload that is later than the next boundary, so replay and live see ticks at
identical clock values.

One path: every WebSocket frame goes through `Parser.parse_frame` (typed decoding, the
same function the live feed calls), the market's handler for the event, and the trader.
A version-1 recording's messages, already maps, go through `Parser.parse_ws` instead and
then the same handlers.

Processing time is measured per message and per stage with the injected `perf`
counter (`tradebot.clock.perf_ns` by default); the parse and state stages are sampled
on every 16th message (the sample only adds clock reads, never another code path); the
decision stages are timed whenever they run. Timing never influences a decision and is
not part of the digest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from decimal import Context, getcontext, setcontext
from functools import wraps
from typing import Any, ParamSpec, Protocol, TypeVar

from tradebot.clock import perf_ns
from tradebot.config import Config
from tradebot.execution.orders import Broker, CancelOrder, PlaceOrder
from tradebot.execution.paper import NEVER, PaperBroker
from tradebot.journal import MONEY_CONTEXT, Journal
from tradebot.kucoin.events import ContractsActive
from tradebot.kucoin.protocol import Parser
from tradebot.latency import LatencyHistogram
from tradebot.market.requests import BookResync, Subscribe, Unsubscribe
from tradebot.market.state import Market
from tradebot.trader import Trader

__all__ = ["MAX_CATCHUP_TICKS", "Engine", "Request"]

# What leaves the core through `Engine.take_requests()`.
Request = BookResync | Subscribe | Unsubscribe | PlaceOrder | CancelOrder

DEFAULT_TICK_MS = 1_000
# The parse and state stages are timed on every 16th WebSocket message (timing every one
# would add two clock reads and two histogram updates per message); the per-message
# total is timed on every message.
_STAGE_SAMPLE_MASK = 15
# Past this many due ticks at once, the clock jumped: run only the last one.
MAX_CATCHUP_TICKS = 3_600


class _Arrivals(Protocol):
    """Says when an order reaches the exchange next (the broker's `next_arrival_ns`)."""

    @property
    def next_arrival_ns(self) -> int: ...


class _NoArrivals:
    """No broker (trading off): no order ever arrives."""

    next_arrival_ns = NEVER


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _in_money_context(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run an `Engine` entry point in the engine's own decimal context.

    Money is Decimal, and Decimal arithmetic follows the thread's context: without this a
    caller's `localcontext(prec=6)` would change cash, equity and the digest. The caller's
    context is put back on return, so the engine never changes it either.
    """

    @wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        own: Context = args[0]._money_context  # type: ignore[attr-defined]
        caller = getcontext()
        if caller is own:
            return method(*args, **kwargs)
        setcontext(own)
        try:
            return method(*args, **kwargs)
        finally:
            setcontext(caller)

    return wrapper


class Engine:
    """The decision core. Feed it payloads in receive order; read its counters at the end."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        journal: Journal | None = None,
        perf: Callable[[], int] = perf_ns,
        tick_ms: int = DEFAULT_TICK_MS,
        trading: bool = True,
        broker: Broker | None = None,
    ) -> None:
        """`trading=False` runs the market core only (decode, parse, books, state).
        `broker` is the trader's broker (default: a `PaperBroker` on this engine's market)."""
        self._money_context = MONEY_CONTEXT.copy()  # see `_in_money_context`
        self.config = config or Config()
        self.journal = journal or Journal()
        self.parser = Parser()
        self.market = Market(self.journal, stale_after_ms=self.config.quality.stale_after_ms)
        self.perf = perf
        self.tick_ns = tick_ms * 1_000_000
        self.next_tick_ns = 0
        self.tick_window_ns = 0  # a receive time below this is a step back in time
        self.now_ns = 0
        self.ws_messages = 0
        self.clock_jumps = 0
        self.conn_events: Counter[str] = Counter()
        self.latency = LatencyHistogram()
        self.stage_latency: dict[str, LatencyHistogram] = {
            "parse": LatencyHistogram(),
            "state": LatencyHistogram(),
            "tick": LatencyHistogram(),
        }
        if trading:
            if broker is None:
                broker = PaperBroker(self.config.paper, self.journal, self.market)
            self.trader: Trader | None = Trader(
                self.config, self.market, self.journal, perf, broker
            )
        else:
            self.trader = None
        # Whose `next_arrival_ns` says when the broker has something due next.
        self._arrivals: _Arrivals = broker if broker is not None else _NoArrivals()
        self._parse_ws = self.parser.parse_ws
        self._parse_frame = self.parser.parse_frame
        self._handlers = self.market.handlers
        self._lat_parse = self.stage_latency["parse"].record
        self._lat_state = self.stage_latency["state"].record
        self._lat_message = self.latency.record

    # --- input ----------------------------------------------------------------------

    @property
    def money_context(self) -> Context:
        """The engine's own decimal context. A driver that makes it current for a whole
        run (`decimal.setcontext`) saves every entry point the switch in and out."""
        return self._money_context

    def on_ws(self, recv_ns: int, frame: Any, conn: int | None = None) -> None:
        """One WebSocket message: the frame as received (str or bytes), or, from a version-1
        recording, the message decoded to a map; `conn` is the connection it arrived on
        (None when the recording does not say).

        Every message takes the same path: parse, market state, trader. Every 16th also
        has its parse and state stages timed, which only adds clock reads. Runs in the
        engine's decimal context (see `_in_money_context`; checked inline here, the
        busiest entry point)."""
        caller = getcontext()
        if caller is not self._money_context:
            setcontext(self._money_context)
            try:
                self.on_ws(recv_ns, frame, conn)
            finally:
                setcontext(caller)
            return
        if not self.tick_window_ns <= recv_ns < self.next_tick_ns:
            self.advance(recv_ns)
        if recv_ns >= self._arrivals.next_arrival_ns:
            self._fill_arrivals(recv_ns)
        self.now_ns = recv_ns
        perf = self.perf
        t0 = perf()
        n = self.ws_messages = self.ws_messages + 1
        if conn is None:
            self.market.connections_known = False
        event = self._parse_ws(frame) if type(frame) is dict else self._parse_frame(frame)
        sampled = not n & _STAGE_SAMPLE_MASK
        if sampled:
            t1 = perf()
            self._lat_parse(t1 - t0)
        if event is not None:
            handler = self._handlers.get(type(event))
            if handler is not None:
                st = handler(event, recv_ns, conn)
                if sampled:
                    self._lat_state(perf() - t1)
                if st is not None and self.trader is not None:
                    self.trader.on_event(event, st, recv_ns)
        self._lat_message(perf() - t0)

    @_in_money_context
    def on_rest(self, recv_ns: int, answer: dict[str, Any]) -> None:
        """One REST answer as recorded: `{"method", "path", "params", "status", "body"}`."""
        if not self.tick_window_ns <= recv_ns < self.next_tick_ns:
            self.advance(recv_ns)
        if recv_ns >= self._arrivals.next_arrival_ns:
            self._fill_arrivals(recv_ns)
        self.now_ns = recv_ns
        t0 = self.perf()
        event = self.parser.parse_rest(answer)
        if event is not None:
            st = self.market.apply(event, recv_ns)
            if self.trader is not None:
                if st is not None:
                    self.trader.on_event(event, st, recv_ns)
                elif type(event) is ContractsActive:
                    self.trader.on_contracts(recv_ns)
        self._lat_message(self.perf() - t0)

    @_in_money_context
    def on_conn(self, recv_ns: int, info: dict[str, Any]) -> None:
        """A connection lifecycle record: `{"event": "open"|"close"|"error", "conn", "reason"}`."""
        if not self.tick_window_ns <= recv_ns < self.next_tick_ns:
            self.advance(recv_ns)
        if recv_ns >= self._arrivals.next_arrival_ns:
            self._fill_arrivals(recv_ns)
        self.now_ns = recv_ns
        event = str(info.get("event"))
        self.conn_events[event] += 1
        if event in ("close", "error"):
            self.market.connection_lost(
                recv_ns, int(info.get("conn", 0)), str(info.get("reason", ""))
            )

    # --- time -------------------------------------------------------------------------

    @_in_money_context
    def advance(self, now_ns: int) -> None:
        """Run every periodic tick due at or before `now_ns`, each at its own boundary time.

        A jump of more than `MAX_CATCHUP_TICKS` (a recorder's clock stepping forward, a
        laptop waking up) runs only the last due tick instead of one per second of the gap;
        a step backwards past the next boundary re-anchors the ticks on the new time. Both
        are counted in `clock_jumps`.
        """
        tick_ns = self.tick_ns
        if self.next_tick_ns == 0 or now_ns < self.tick_window_ns:
            if self.next_tick_ns:
                self.clock_jumps += 1
            self.next_tick_ns = (now_ns // tick_ns + 1) * tick_ns
            self.tick_window_ns = self.next_tick_ns - 2 * tick_ns
            return
        if now_ns - self.next_tick_ns > MAX_CATCHUP_TICKS * tick_ns:
            self.clock_jumps += 1
            self.next_tick_ns = now_ns // tick_ns * tick_ns
        record = self.stage_latency["tick"].record
        while self.next_tick_ns <= now_ns:
            t0 = self.perf()
            self._tick(self.next_tick_ns)
            record(self.perf() - t0)
            self.next_tick_ns += tick_ns
        self.tick_window_ns = self.next_tick_ns - 2 * tick_ns

    def _tick(self, tick_ns: int) -> None:
        self.market.scan_stale(tick_ns)
        if self.trader is not None:
            self.trader.fill_arrivals(tick_ns)
            self.trader.on_tick(tick_ns)

    def _fill_arrivals(self, now_ns: int) -> None:
        """Orders that reached the exchange before this payload fill on the book as it
        stood when they arrived, not on the book this payload makes."""
        if self.trader is not None:
            self.trader.fill_arrivals(now_ns)

    @_in_money_context
    def finish(self, end_ns: int) -> None:
        """End of input at `end_ns`: run the ticks that are due, then mark to market."""
        if end_ns:
            self.advance(end_ns)
        if self.trader is not None:
            self.trader.finish(end_ns)

    # --- outbox -------------------------------------------------------------------------

    def take_requests(self) -> list[Request]:
        """What the core needs from outside since the last call, oldest first: book
        resyncs and subscription changes from the market, then orders and cancels to
        send from the broker (none for the paper broker: it satisfies them itself). The
        live shell acts on them; replay satisfies or ignores them. Nothing here does I/O."""
        market = self.market
        out: list[Request] = list(market.requests)
        market.requests.clear()
        if self.trader is not None:
            out.extend(self.trader.broker.take_requests())
        return out

    # --- results ------------------------------------------------------------------------

    def counters(self) -> dict[str, Any]:
        """The run's derived figures (deterministic: no timing in here)."""
        market = self.market
        books = [st.book for st in market.symbols.values()]
        return {
            "messages_by_topic": dict(sorted(self.parser.topics.items())),
            "rest_by_endpoint": dict(sorted(self.parser.rest.items())),
            "rest_errors": dict(sorted(self.parser.rest_errors.items())),
            "control_messages": dict(sorted(self.parser.control.items())),
            "connection_events": dict(sorted(self.conn_events.items())),
            "malformed_payloads": dict(sorted(self._refused().items())),
            "sequence_gaps": sum(b.gaps for b in books),
            "crossed_books": sum(b.crossed for b in books),
            "book_resyncs": sum(b.resyncs for b in books),
            "stale_periods": market.stale_periods,
            "listings": list(market.listings),
            "delistings": list(market.delistings),
            "symbols_seen": len(market.symbols),
            "books_in_sync": sum(1 for b in books if b.in_sync),
            "clock_jumps": self.clock_jumps,
        }

    def _refused(self) -> Counter[str]:
        """Payloads and values refused, by reason: the parser's rejects, implausible
        contract entries and implausible funding rates (not booked)."""
        refused = self.parser.rejects + self.market.contracts.refused
        if self.trader is not None:
            refused.update(self.trader.broker.stats().refused)
        return refused

    def latency_summary(self) -> dict[str, Any]:
        """Processing-time percentiles in ns: per message and per stage."""
        stages = dict(self.stage_latency)
        if self.trader is not None:
            stages.update(self.trader.stage_latency)
        return {
            "message": self.latency.summary(),
            "stages": {name: h.summary() for name, h in stages.items()},
        }

    @_in_money_context
    def trading_report(self) -> dict[str, Any]:
        """The decision pipeline's report keys ({} when trading is off)."""
        return self.trader.report() if self.trader is not None else {}
