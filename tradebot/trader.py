"""The decision pipeline: quality -> signal -> validation -> risk -> broker, and exits.

`Trader` is called by the engine after each market event has been folded into state.
Per message it does only cheap bookkeeping (rolling counters, fills of pending orders,
price-based exits for symbols that hold a position); the full evaluation of a symbol
(quality verdict, signal, validation) runs at most once per `signals.evaluate_every_ms`
of the run's clock per symbol, when that symbol's quotes change.

Positions are managed to the end: every open position is closed on take-profit (a
resting reduce-only limit placed at entry, filled when the market trades through it),
stop-loss, signal reversal, time stop or delisting, whichever comes first.

The trader talks to its broker through `tradebot.execution.orders.Broker` only: it sends
orders and cancels, passes market events on, and learns what happened to its orders from
the broker's events (`on_fill`, `on_order_update`), whenever they arrive. Which orders
are still working (in flight or resting) it tracks itself from those events.

Everything that reaches validation is journaled: the signal, then either the rejection
(layer and reason) or the order. Synchronous, no I/O, no wall clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from tradebot.config import Config
from tradebot.decide.quality import assess
from tradebot.decide.risk import DAILY_LOSS_LIMIT, RiskManager, contract_refusal
from tradebot.decide.signals import Signal, SignalType, compute_signal
from tradebot.decide.tracker import SymbolTracker
from tradebot.decide.validation import LAYERS, Rejection, Verdicts, validate
from tradebot.execution.orders import (
    Broker,
    Fill,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
)
from tradebot.journal import Journal, fmt_number, fmt_value
from tradebot.kucoin.events import (
    BookDepth,
    BookSnapshot,
    Contract,
    FundingSettlement,
    Level2Change,
    MarkIndexPrice,
    Side,
    Ticker,
    Trade,
)
from tradebot.latency import LatencyHistogram
from tradebot.market.state import Market, SymbolState

__all__ = ["DELISTING_SETTLE_S", "STAGES", "Trader", "exit_sizes"]

STAGES = ("quality", "signal", "validation", "broker")

_NS_PER_S = 1_000_000_000
# SignalType.value is a Python-level enum property; the plain texts, looked up by member.
_TYPE_TEXT = {kind: kind.value for kind in SignalType}
# A delisted symbol's position that no market order could close within this many seconds
# (its data stopped) is settled at the last mark price, as the exchange would.
DELISTING_SETTLE_S = 10


class _Working:
    """An order the trader sent and has not seen done: in flight, or resting."""

    __slots__ = ("entry", "market_exit", "resting")

    def __init__(self, req: OrderRequest) -> None:
        self.entry = not req.reduce_only
        self.market_exit = req.reduce_only and req.type == OrderType.MARKET
        self.resting = False


class _Desk:
    """Per-symbol decision bookkeeping."""

    __slots__ = ("next_eval_ns", "tp_order", "tracker")

    def __init__(self, tracker: SymbolTracker) -> None:
        self.tracker = tracker
        self.next_eval_ns = 0
        self.tp_order: int | None = None


def exit_sizes(lots: int, contract: Contract) -> list[int]:
    """Order sizes that close `lots` and that the exchange accepts: multiples of the lot
    size, none above the max order quantity. A rest below one lot (the lot size changed
    while the position was open) is rounded up to a lot: the orders are reduce-only, so
    the fill stops at the position."""
    lot = contract.lot_size
    biggest = max(lot, contract.max_order_qty // lot * lot)
    whole = -(-lots // lot) * lot  # rounded up to a lot
    sizes = [biggest] * (whole // biggest)
    if whole % biggest:
        sizes.append(whole % biggest)
    return sizes


class Trader:
    """Turns market state into trades through `broker`, and accounts for them."""

    def __init__(
        self,
        config: Config,
        market: Market,
        journal: Journal,
        perf: Callable[[], int],
        broker: Broker,
    ) -> None:
        self.config = config
        self.market = market
        self.journal = journal
        self.perf = perf
        self.broker = broker
        # Orders sent and not yet done, by symbol then id (from submit and order updates).
        self._working: dict[str, dict[int, _Working]] = {}
        # While handling a batch of events: symbols that filled -> time of their last fill.
        self._batch: dict[str, int] | None = None
        # Symbols whose market exit expired unfilled -> when: their take-profit comes back.
        self._restore_tp: dict[str, int] = {}
        self.risk = RiskManager(config.risk, journal)
        self.desks: dict[str, _Desk] = {}
        self.signals: Counter[str] = Counter({t.value: 0 for t in SignalType})
        self.rejections: Counter[str] = Counter({layer: 0 for layer in LAYERS})
        self.quality_tiers: Counter[str] = Counter()  # verdicts by tier (ok, critical, ...)
        self.quality_reasons: Counter[str] = Counter()  # failed checks, by check name
        self.stage_latency = {name: LatencyHistogram() for name in STAGES}
        self.eval_ns = config.signals.evaluate_every_ms * 1_000_000
        self._delisting_since: dict[str, int] = {}
        self.start_equity = Decimal(repr(config.paper.starting_equity_usdt))
        self.peak_equity = self.start_equity
        self.max_drawdown = 0.0
        s = config.signals
        q = config.quality
        self._tracker_args = {
            "completeness_window_s": q.completeness_window_s,
            "volume_window_s": s.volume_window_s,
            "volume_bucket_s": s.volume_bucket_s,
            "momentum_window_s": s.momentum_window_s,
        }

    def desk(self, symbol: str) -> _Desk:
        desk = self.desks.get(symbol)
        if desk is None:
            desk = self.desks[symbol] = _Desk(SymbolTracker(**self._tracker_args))
        return desk

    # --- per message ----------------------------------------------------------------------

    def on_event(self, event: Any, st: SymbolState, now_ns: int) -> None:
        """Bookkeeping for one event of `st`'s symbol, then evaluation when it is due."""
        kind = type(event)
        if kind is Level2Change:
            desk = self.desks.get(st.symbol) or self.desk(st.symbol)
            self.after_level2(st, desk, event, now_ns)
            return
        if kind is Ticker or kind is BookSnapshot or kind is BookDepth:
            desk = self.desks.get(st.symbol) or self.desk(st.symbol)
        elif kind is Trade:
            self._on_trade(event, st, self.desks.get(st.symbol) or self.desk(st.symbol), now_ns)
            return
        elif kind is MarkIndexPrice or kind is FundingSettlement:
            contract = self.market.contracts.get(st.symbol)
            if self.broker.on_market(event, st, contract, now_ns):
                self.handle_broker_events()
            return
        else:
            return
        self.after_quote(st, desk, now_ns, event)

    def after_level2(self, st: SymbolState, desk: _Desk, event: Level2Change, now_ns: int) -> None:
        """After a level-2 change was handed to `st`'s book: count its sequence; if it was
        applied (not buffered, stale or lost), the quote may have moved."""
        desk.tracker.on_sequence(now_ns, event.sequence)
        if st.quote_ns == now_ns:
            self.after_quote(st, desk, now_ns, event)

    def after_quote(self, st: SymbolState, desk: _Desk, now_ns: int, event: Any) -> None:
        """After `st`'s quotes changed (by `event`): the broker fills and marks on it,
        then price exits are checked, and the symbol evaluated when its evaluation is due."""
        symbol = st.symbol
        broker = self.broker
        if broker.on_market(event, st, self.market.contracts.get(symbol), now_ns):
            self.handle_broker_events()
        if symbol in broker.positions:
            self._check_price_exits(st, now_ns)
        if now_ns >= desk.next_eval_ns:
            desk.next_eval_ns = now_ns + self.eval_ns
            self._evaluate(st, desk, now_ns)

    def fill_arrivals(self, now_ns: int) -> None:
        """Let the broker handle what is due by `now_ns` (the paper broker: orders that
        reached the exchange, each at its arrival time on the book as it stood then),
        one at a time, acting on the events of each before the next: called before a
        later payload changes the book."""
        broker = self.broker
        while broker.next_arrival_ns <= now_ns:
            if not broker.on_due(now_ns):
                return
            self.handle_broker_events()

    def _on_trade(self, ev: Trade, st: SymbolState, desk: _Desk, now_ns: int) -> None:
        contract = self.market.contracts.get(ev.symbol)
        if contract is None:
            return
        if contract.is_inverse:
            notional = ev.size * contract.multiplier
        else:
            notional = ev.size * contract.multiplier * ev.price
        desk.tracker.on_trade(now_ns, int(ev.side), notional)
        if self.broker.on_market(ev, st, contract, now_ns):
            self.handle_broker_events()

    # --- broker events ----------------------------------------------------------------------

    def handle_broker_events(self) -> None:
        """Take the broker's queued events and handle them in order, as one batch: the
        positions they changed are acted on once, after the last of them. The trader calls
        this after each call into the broker that may have queued events; a shell whose
        broker received answers from the exchange calls it too."""
        batch: dict[str, int] = {}
        self._batch = batch
        try:
            for event in self.broker.take_events():
                if type(event) is Fill:
                    self.on_fill(event)
                else:
                    self.on_order_update(event)  # type: ignore[arg-type]
        finally:
            self._batch = None
        for symbol, ts_ns in batch.items():
            self._after_fill(symbol, ts_ns)
        if self._restore_tp:
            restore = sorted(self._restore_tp.items())
            self._restore_tp.clear()
            for symbol, ts_ns in restore:
                if not self.has_pending(symbol, reduce_only_market=True):
                    self._place_take_profit(symbol, ts_ns)

    def on_fill(self, fill: Fill) -> None:
        """A fill of one of our orders (the account has booked it): its position is acted
        on (take-profit, halt) now, or after the batch of events it came in."""
        if self._batch is not None:
            self._batch.pop(fill.symbol, None)
            self._batch[fill.symbol] = fill.ts_ns
        else:
            self._after_fill(fill.symbol, fill.ts_ns)

    def on_order_update(self, update: OrderUpdate) -> None:
        """An order of ours changed status: follow which orders are still working. A market
        exit that expired unfilled gets its position's take-profit back."""
        working = self._working.get(update.symbol)
        order = working.get(update.order_id) if working is not None else None
        if order is None or working is None:
            return
        if update.status == OrderStatus.RESTING:
            order.resting = True
            return
        if not update.done:
            return
        del working[update.order_id]
        if not working:
            del self._working[update.symbol]
        if order.market_exit and update.why == "expired":
            self._restore_tp[update.symbol] = update.ts_ns

    # --- working orders ---------------------------------------------------------------------

    def _submit(self, req: OrderRequest, contract: Contract, now_ns: int) -> int | None:
        order_id = self.broker.submit(req, contract, now_ns)
        if order_id is not None:
            self._working.setdefault(req.symbol, {})[order_id] = _Working(req)
        return order_id

    def _cancel_all(self, symbol: str, now_ns: int, why: str = "requested") -> None:
        if self.broker.cancel_all(symbol, now_ns, why):
            self.handle_broker_events()

    def has_pending(self, symbol: str, *, reduce_only_market: bool = False) -> bool:
        """True when `symbol` has an order in flight (sent, not yet resting or done);
        with `reduce_only_market`, only a reduce-only MARKET order counts (a close)."""
        working = self._working.get(symbol)
        if not working:
            return False
        if reduce_only_market:
            return any(order.market_exit for order in working.values())
        return any(not order.resting for order in working.values())

    def pending_entry_symbols(self) -> set[str]:
        """Symbols with an entry order (not reduce-only) in flight or resting."""
        return {
            symbol
            for symbol, working in self._working.items()
            if any(order.entry for order in working.values())
        }

    def is_working(self, symbol: str, order_id: int) -> bool:
        working = self._working.get(symbol)
        return working is not None and order_id in working

    # --- evaluation -------------------------------------------------------------------------

    def _evaluate(self, st: SymbolState, desk: _Desk, now_ns: int) -> None:
        perf = self.perf
        cfg = self.config
        market = self.market
        contract = market.contracts.get(st.symbol)
        t0 = perf()
        verdict = assess(st, market.contracts, desk.tracker, now_ns, cfg.quality)
        t1 = perf()
        self.quality_tiers[verdict.tier] += 1
        for reason in verdict.reasons:
            self.quality_reasons[reason.partition(":")[0]] += 1
        signal = compute_signal(
            st,
            desk.tracker,
            verdict,
            contract,
            market.contracts.listed_at_ns.get(st.symbol),
            now_ns,
            cfg.signals,
            cfg.quality,
        )
        t2 = perf()
        self.stage_latency["quality"].record(t1 - t0)
        self.stage_latency["signal"].record(t2 - t1)
        self.signals[_TYPE_TEXT[signal.type]] += 1
        position = self.broker.positions.get(st.symbol)
        if position is not None:
            if (
                cfg.exits.exit_on_reversal
                and signal.direction == -position.direction
                and signal.confidence >= cfg.validation.min_confidence
            ):
                self._journal_signal(signal, now_ns)
                self.close_position(st.symbol, "reversal", now_ns)
            return
        if signal.direction == 0 or contract is None or self.has_pending(st.symbol):
            return
        self._journal_signal(signal, now_ns)
        self._try_entry(st, contract, signal, verdict.tradable, verdict.reasons, now_ns)
        self.stage_latency["validation"].record(perf() - t2)

    def _journal_signal(self, signal: Signal, now_ns: int) -> None:
        """Journal `signal`: what `journal.record(now_ns, "signal", symbol, type=...,
        strength=..., ..., new_listing=...)` writes, in one f-string (about three times
        cheaper; tests/test_journal_fast.py pins the equality). Regimes are fixed identifiers."""
        num = fmt_number
        self.journal.record_detail(
            now_ns,
            "signal",
            signal.symbol,
            f'{{"type":"{_TYPE_TEXT[signal.type]}","strength":{num(signal.strength)},'
            f'"confidence":{num(signal.confidence)},"imbalance":{num(signal.imbalance)},'
            f'"momentum":{num(signal.momentum)},"liquidity":{num(signal.liquidity_score)},'
            f'"volume":"{signal.volume_regime}","spread":"{signal.spread_regime}",'
            f'"new_listing":{"true" if signal.new_listing else "false"}}}',
        )

    def _journal_rejection(self, symbol: str, rejection: Rejection, now_ns: int) -> None:
        """`journal.record(now_ns, "rejection", symbol, layer=..., reason=...)`, formatted
        here: layers are fixed identifiers, reasons may carry exchange text."""
        self.journal.record_detail(
            now_ns,
            "rejection",
            symbol,
            f'{{"layer":"{rejection.layer}","reason":{fmt_value(rejection.reason)}}}',
        )

    def _try_entry(
        self,
        st: SymbolState,
        contract: Contract,
        signal: Signal,
        quality_ok: bool,
        quality_reasons: tuple[str, ...],
        now_ns: int,
    ) -> None:
        broker = self.broker
        price = st.ask if signal.direction > 0 else st.bid
        max_open_positions = self.config.risk.max_open_positions
        sized: list[int] = []

        def risk() -> tuple[str | None, int]:
            equity = broker.equity()
            positions = broker.positions
            open_positions = len(positions)
            if open_positions < max_open_positions:
                # Entries in flight count as positions: they will be one in a few
                # milliseconds. (At the limit already, they cannot change the answer.)
                open_positions += len(self.pending_entry_symbols() - positions.keys())
            reason = self.risk.check_entry(
                now_ns, equity, broker.stats().cash, open_positions, st.symbol in positions
            )
            if reason is None:
                reason = contract_refusal(contract)
            if reason is not None:
                return reason, 0  # refused: no need to size (exact arithmetic)
            lots = self.risk.size(contract, price, signal.confidence, equity) if price > 0 else 0
            sized.append(lots)
            return reason, lots

        rejection = validate(
            Verdicts(
                quality_ok=quality_ok,
                quality_reason=quality_reasons[0] if quality_reasons else "",
                spread_regime=signal.spread_regime,
                liquidity_score=signal.liquidity_score,
                volume_regime=signal.volume_regime,
                contract_open=self.market.contracts.is_open(st.symbol),
                delisted=st.symbol in self.market.contracts.delisted,
                ns_to_funding=self._ns_to_funding(st, now_ns),
                confidence=signal.confidence,
            ),
            self.config.validation,
            risk,
        )
        if rejection is not None:
            self.rejections[rejection.layer] += 1
            self._journal_rejection(st.symbol, rejection, now_ns)
            if rejection.reason == DAILY_LOSS_LIMIT:
                self._halt(now_ns)  # it may have latched just now
            return
        lots = sized[0]
        side = Side.BUY if signal.direction > 0 else Side.SELL
        t0 = self.perf()
        cap = self.risk.cap_notional(signal.confidence, broker.equity())
        self._submit(
            OrderRequest(st.symbol, side, lots, OrderType.MARKET, "entry", max_notional=cap),
            contract,
            now_ns,
        )
        self.stage_latency["broker"].record(self.perf() - t0)

    def _ns_to_funding(self, st: SymbolState, now_ns: int) -> int | None:
        best: int | None = None
        for t in (st.next_funding_ns, st.last_funding_ns):
            if t:
                d = abs(t - now_ns)
                best = d if best is None or d < best else best
        return best

    # --- exits ------------------------------------------------------------------------------

    def _after_fill(self, symbol: str, now_ns: int) -> None:
        """After any fill: place or cancel the take-profit, follow equity."""
        broker = self.broker
        self._follow_equity(broker.equity())
        desk = self.desk(symbol)
        position = broker.positions.get(symbol)
        if position is None:
            if desk.tp_order is not None:
                if broker.cancel(desk.tp_order, now_ns):
                    self.handle_broker_events()
                desk.tp_order = None
            return
        if self.risk.halted:
            # A fill that arrived after the halt (an entry the exchange filled before our
            # cancel reached it) must not leave a position open: close it at once.
            self.close_position(symbol, DAILY_LOSS_LIMIT, now_ns)
            return
        self._place_take_profit(symbol, now_ns)

    def _place_take_profit(self, symbol: str, now_ns: int) -> None:
        """Rest a reduce-only take-profit for `symbol`'s position, unless one is open."""
        broker = self.broker
        desk = self.desk(symbol)
        position = broker.positions.get(symbol)
        if position is None:
            return
        if desk.tp_order is not None and self.is_working(symbol, desk.tp_order):
            return
        contract = self.market.contracts.get(symbol)
        if contract is None:
            return
        tick = Decimal(contract.tick_size_text)
        target = position.entry_price * (1 + Decimal(repr(self.config.exits.take_profit)))
        if position.direction < 0:
            target = position.entry_price * (1 - Decimal(repr(self.config.exits.take_profit)))
        entry_ticks = position.entry_price / tick
        # Round away from the entry, and at least one tick beyond it: a take-profit rounded
        # back onto the entry price would close at a loss after fees.
        if position.direction > 0:
            ticks = max(int((target / tick).to_integral_value(ROUND_CEILING)), int(entry_ticks) + 1)
        else:
            ticks = min(
                int((target / tick).to_integral_value(ROUND_FLOOR)),
                int(entry_ticks.to_integral_value(ROUND_CEILING)) - 1,
            )
        if ticks <= 0:
            return
        side = Side.SELL if position.direction > 0 else Side.BUY
        desk.tp_order = self._submit(
            OrderRequest(
                symbol, side, position.lots, OrderType.LIMIT, "take_profit", ticks, reduce_only=True
            ),
            contract,
            now_ns,
        )

    def _check_price_exits(self, st: SymbolState, now_ns: int) -> None:
        position = self.broker.positions[st.symbol]
        if st.bid >= st.ask:
            return  # a crossed quote is not a price to act on
        exit_price = st.bid if position.direction > 0 else st.ask
        if exit_price <= 0.0 or self.has_pending(st.symbol, reduce_only_market=True):
            return
        entry = float(position.entry_price)
        change = (exit_price - entry) / entry * position.direction
        if change <= -self.config.exits.stop_loss:
            self.close_position(st.symbol, "stop_loss", now_ns)

    def close_position(self, symbol: str, reason: str, now_ns: int) -> None:
        """Cancel the symbol's resting orders and close its position at market."""
        broker = self.broker
        position = broker.positions.get(symbol)
        contract = self.market.contracts.get(symbol)
        if (
            position is None
            or contract is None
            or self.has_pending(symbol, reduce_only_market=True)
        ):
            return
        self._cancel_all(symbol, now_ns)
        self.desk(symbol).tp_order = None
        side = Side.SELL if position.direction > 0 else Side.BUY
        for lots in exit_sizes(position.lots, contract):
            self._submit(
                OrderRequest(symbol, side, lots, OrderType.MARKET, reason, reduce_only=True),
                contract,
                now_ns,
            )

    # --- periodic --------------------------------------------------------------------------

    def on_tick(self, now_ns: int) -> None:
        """Once per engine tick: time stops, delisting exits, daily limits, drawdown."""
        broker = self.broker
        time_stop_ns = self.config.exits.time_stop_s * _NS_PER_S
        delisted = self.market.contracts.delisted
        for symbol in sorted(self._delisting_since.keys() - delisted):
            del self._delisting_since[symbol]  # listed again
        for symbol in sorted(broker.positions):
            position = broker.positions[symbol]
            if symbol in delisted:
                self._exit_delisted(symbol, now_ns)
            elif now_ns - position.opened_ns >= time_stop_ns:
                self.close_position(symbol, "time_stop", now_ns)
        self._cancel_delisted_entries(now_ns)
        # The broker's own housekeeping (paper: market orders that found no price expire).
        # An exit that expired unfilled leaves its position without the take-profit it
        # cancelled: `on_order_update` has it put back (the next exit cancels it again).
        broker.on_clock(now_ns)
        self.handle_broker_events()
        equity = broker.equity()
        self.risk.on_clock(now_ns, equity)
        if self.risk.daily_loss_hit(equity):
            self._halt(now_ns)
        self._follow_equity(equity)

    def _halt(self, now_ns: int) -> None:
        """The daily loss limit is latched: cancel entries in flight, close every position."""
        broker = self.broker
        for symbol in sorted(self.pending_entry_symbols() - broker.positions.keys()):
            self._cancel_all(symbol, now_ns, DAILY_LOSS_LIMIT)
        for symbol in sorted(broker.positions):
            self.close_position(symbol, DAILY_LOSS_LIMIT, now_ns)

    def on_contracts(self, now_ns: int) -> None:
        """After a contracts answer: act on delistings at once, not at the next tick.

        Entries in flight on a delisted symbol are cancelled (they must not open a position
        on a contract that stopped trading) and open positions start closing.
        """
        self._cancel_delisted_entries(now_ns)
        for symbol in sorted(self.market.contracts.delisted & self.broker.positions.keys()):
            self._exit_delisted(symbol, now_ns)

    def _cancel_delisted_entries(self, now_ns: int) -> None:
        broker = self.broker
        delisted = self.market.contracts.delisted
        for symbol in sorted((delisted & self.pending_entry_symbols()) - broker.positions.keys()):
            self._cancel_all(symbol, now_ns)

    def _exit_delisted(self, symbol: str, now_ns: int) -> None:
        """Close a delisted symbol's position at market; if its market is gone for
        `DELISTING_SETTLE_S`, the exchange settles it at the last mark price instead."""
        since = self._delisting_since.setdefault(symbol, now_ns)
        if now_ns - since < DELISTING_SETTLE_S * _NS_PER_S:
            self.close_position(symbol, "delisting", now_ns)
            return
        st = self.market.symbols.get(symbol)
        contract = self.market.contracts.get(symbol)
        if st is None or contract is None:
            return
        price = st.mark_price or st.last_price or st.mid()
        if self.broker.settle(symbol, contract, price, "delisting_settlement", now_ns):
            self.handle_broker_events()
        self.desk(symbol).tp_order = None

    def _follow_equity(self, equity: Decimal) -> None:
        if equity > self.peak_equity:
            self.peak_equity = equity
        elif self.peak_equity > 0:
            drawdown = float((self.peak_equity - equity) / self.peak_equity)
            if drawdown > self.max_drawdown:
                self.max_drawdown = drawdown

    def finish(self, now_ns: int) -> None:
        """End of the run: mark to market and journal the day so far; open positions stay
        open and are reported."""
        equity = self.broker.equity()
        self._follow_equity(equity)
        if now_ns:
            self.risk.close_day(now_ns, equity)

    # --- report ---------------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        broker = self.broker
        stats = broker.stats()
        closed = stats.positions_closed
        equity = broker.equity()
        realized = stats.cash - stats.starting_equity
        unrealized = equity - stats.cash  # the same marks as `equity`: adds up exactly
        return {
            "signals": dict(self.signals),
            "rejections": dict(self.rejections),
            "quality": {
                "verdicts": dict(sorted(self.quality_tiers.items())),
                "reasons": dict(sorted(self.quality_reasons.items())),
            },
            "orders": stats.orders,
            "orders_rejected": stats.rejects,
            "fills": stats.fills,
            "fees": float(stats.fees_paid),
            "pnl": {
                # realized: everything booked (trading PnL, fees, funding), so that
                # start + realized + unrealized == end equity exactly.
                "realized": float(realized),
                "unrealized": float(unrealized),
                "trading": float(stats.realized_pnl),
                "fees": -float(stats.fees_paid),
                "funding": float(stats.funding),
            },
            "positions": {
                "opened": stats.positions_opened,
                "closed": closed,
                "open": len(broker.positions),
            },
            "max_drawdown": self.max_drawdown,
            "win_rate": (stats.wins / closed) if closed else None,
            "equity": {"start": float(self.start_equity), "end": float(equity)},
            # The same money as exact decimal strings: the floats above are rounded each on
            # its own, these satisfy equity_start + realized + unrealized == equity_end
            # exactly, and realized == trading + fees + funding.
            "money": {
                "equity_start": str(stats.starting_equity),
                "realized": str(realized),
                "unrealized": str(unrealized),
                "equity_end": str(equity),
                "trading": str(stats.realized_pnl),
                "fees": str(-stats.fees_paid),
                "funding": str(stats.funding),
            },
        }
