"""The decision pipeline: quality -> signal -> validation -> risk -> paper broker, and exits.

`Trader` is called by the engine after each market event has been folded into state.
Per message it does only cheap bookkeeping (rolling counters, fills of pending orders,
price-based exits for symbols that hold a position); the full evaluation of a symbol
(quality verdict, signal, validation) runs at most once per `signals.evaluate_every_ms`
of the run's clock per symbol, when that symbol's quotes change.

Positions are managed to the end: every open position is closed on take-profit (a
resting reduce-only limit placed at entry, filled when the market trades through it),
stop-loss, signal reversal, time stop or delisting, whichever comes first.

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
from tradebot.execution.paper import OrderRequest, OrderType, PaperBroker
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
    """Turns market state into paper trades, and accounts for them."""

    def __init__(
        self, config: Config, market: Market, journal: Journal, perf: Callable[[], int]
    ) -> None:
        self.config = config
        self.market = market
        self.journal = journal
        self.perf = perf
        self.broker = PaperBroker(config.paper, journal)
        self._orders_by_symbol = self.broker.orders_by_symbol
        self.risk = RiskManager(config.risk, journal)
        self.desks: dict[str, _Desk] = {}
        self.signals: Counter[str] = Counter({t.value: 0 for t in SignalType})
        self.rejections: Counter[str] = Counter({layer: 0 for layer in LAYERS})
        self.quality_tiers: Counter[str] = Counter()  # verdicts by tier (ok, critical, ...)
        self.quality_reasons: Counter[str] = Counter()  # failed checks, by check name
        self.stage_latency = {name: LatencyHistogram() for name in STAGES}
        self.eval_ns = config.signals.evaluate_every_ms * 1_000_000
        self._delisting_since: dict[str, int] = {}
        self._funded: dict[str, int] = {}  # symbol -> funding time last settled
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
            self.after_level2(st, desk, event.sequence, now_ns)
            return
        if kind is Ticker or kind is BookSnapshot or kind is BookDepth:
            desk = self.desks.get(st.symbol) or self.desk(st.symbol)
        elif kind is Trade:
            self._on_trade(event, st, self.desks.get(st.symbol) or self.desk(st.symbol), now_ns)
            return
        elif kind is MarkIndexPrice:
            self.broker.mark(st.symbol, event.mark_price)
            return
        elif kind is FundingSettlement:
            if event.phase == "begin":
                self._on_funding(event, st, now_ns)
            return
        else:
            return
        self.after_quote(st, desk, now_ns)

    def after_level2(self, st: SymbolState, desk: _Desk, sequence: int, now_ns: int) -> None:
        """After a level-2 change was handed to `st`'s book: count its sequence; if it was
        applied (not buffered, stale or lost), the quote may have moved."""
        desk.tracker.on_sequence(now_ns, sequence)
        if st.quote_ns == now_ns:
            self.after_quote(st, desk, now_ns)

    def after_quote(self, st: SymbolState, desk: _Desk, now_ns: int) -> None:
        """After `st`'s quotes changed: fill pending orders, check price exits, and
        evaluate the symbol when its evaluation is due."""
        symbol = st.symbol
        broker = self.broker
        if symbol in self._orders_by_symbol and broker.has_pending(symbol):
            contract = self.market.contracts.get(symbol)
            if contract is not None and broker.on_book(st, contract, now_ns):
                self._after_fill(symbol, now_ns)
        if symbol in broker.positions:
            broker.mid(symbol, st.mid())  # its mark while no mark price or trade is known
            self._check_price_exits(st, now_ns)
        if now_ns >= desk.next_eval_ns:
            desk.next_eval_ns = now_ns + self.eval_ns
            self._evaluate(st, desk, now_ns)

    def fill_arrivals(self, now_ns: int) -> None:
        """Execute every order that reached the exchange by `now_ns`, each at its arrival
        time on the book as it stood then: called before a later payload changes it.

        An order that finds no price waits for the next valid book (`after_quote`)."""
        broker = self.broker
        market = self.market
        while broker.next_arrival_ns <= now_ns:
            arrival = broker.pop_arrival(now_ns)
            if arrival is None:
                return
            at_ns, symbol = arrival
            st = market.symbols.get(symbol)
            contract = market.contracts.get(symbol)
            if st is not None and contract is not None and broker.on_book(st, contract, at_ns):
                self._after_fill(symbol, at_ns)

    def _on_trade(self, ev: Trade, st: SymbolState, desk: _Desk, now_ns: int) -> None:
        contract = self.market.contracts.get(ev.symbol)
        if contract is None:
            return
        if contract.is_inverse:
            notional = ev.size * contract.multiplier
        else:
            notional = ev.size * contract.multiplier * ev.price
        desk.tracker.on_trade(now_ns, int(ev.side), notional)
        self.broker.last_trade(ev.symbol, ev.price)
        if self.broker.has_resting(ev.symbol):
            fills = self.broker.on_trade(ev.symbol, ev.price, ev.size, ev.side, contract, now_ns)
            if fills:
                self._after_fill(ev.symbol, now_ns)

    def _on_funding(self, ev: FundingSettlement, st: SymbolState, now_ns: int) -> None:
        """Settle funding once per (symbol, funding time), however often it is announced."""
        if self._funded.get(ev.symbol) == ev.funding_time_ns:
            return
        self._funded[ev.symbol] = ev.funding_time_ns
        mark = st.mark_price or st.mid()
        if ev.symbol in self.broker.positions and mark > 0.0:
            self.broker.on_funding(ev.symbol, ev.funding_rate, mark, now_ns)

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
        if signal.direction == 0 or contract is None or self.broker.has_pending(st.symbol):
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
                open_positions += len(broker.pending_entry_symbols() - positions.keys())
            reason = self.risk.check_entry(
                now_ns, equity, broker.cash, open_positions, st.symbol in positions
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
        broker.submit(
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
                broker.cancel(desk.tp_order, now_ns)
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
        if desk.tp_order is not None and desk.tp_order in broker.open_orders(symbol):
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
        desk.tp_order = broker.submit(
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
        if exit_price <= 0.0 or self.broker.has_pending(st.symbol, reduce_only_market=True):
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
            or broker.has_pending(symbol, reduce_only_market=True)
        ):
            return
        broker.cancel_all(symbol, now_ns)
        self.desk(symbol).tp_order = None
        side = Side.SELL if position.direction > 0 else Side.BUY
        for lots in exit_sizes(position.lots, contract):
            broker.submit(
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
        if broker.expire(now_ns, self.config.paper.order_timeout_ms * 1_000_000):
            # An exit that expired unfilled leaves its position without the take-profit
            # it cancelled: put it back (the next exit decision cancels it again).
            for symbol in sorted(broker.positions):
                if not broker.has_pending(symbol, reduce_only_market=True):
                    self._place_take_profit(symbol, now_ns)
        equity = broker.equity()
        self.risk.on_clock(now_ns, equity)
        if self.risk.daily_loss_hit(equity):
            self._halt(now_ns)
        self._follow_equity(equity)

    def _halt(self, now_ns: int) -> None:
        """The daily loss limit is latched: cancel entries in flight, close every position."""
        broker = self.broker
        for symbol in sorted(broker.pending_entry_symbols() - broker.positions.keys()):
            broker.cancel_all(symbol, now_ns, DAILY_LOSS_LIMIT)
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
        for symbol in sorted((delisted & broker.pending_entry_symbols()) - broker.positions.keys()):
            broker.cancel_all(symbol, now_ns)

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
        self.broker.settle(symbol, contract, price, "delisting_settlement", now_ns)
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
        closed = broker.positions_closed
        equity = broker.equity()
        realized = broker.cash - broker.starting_equity
        unrealized = equity - broker.cash  # the same marks as `equity`: adds up exactly
        return {
            "signals": dict(self.signals),
            "rejections": dict(self.rejections),
            "quality": {
                "verdicts": dict(sorted(self.quality_tiers.items())),
                "reasons": dict(sorted(self.quality_reasons.items())),
            },
            "orders": broker.orders_count,
            "orders_rejected": broker.rejects,
            "fills": broker.fills_count,
            "fees": float(broker.fees_paid),
            "pnl": {
                # realized: everything booked (trading PnL, fees, funding), so that
                # start + realized + unrealized == end equity exactly.
                "realized": float(realized),
                "unrealized": float(unrealized),
                "trading": float(broker.realized_pnl),
                "fees": -float(broker.fees_paid),
                "funding": float(broker.funding),
            },
            "positions": {
                "opened": broker.positions_opened,
                "closed": closed,
                "open": len(broker.positions),
            },
            "max_drawdown": self.max_drawdown,
            "win_rate": (broker.wins / closed) if closed else None,
            "equity": {"start": float(self.start_equity), "end": float(equity)},
            # The same money as exact decimal strings: the floats above are rounded each on
            # its own, these satisfy equity_start + realized + unrealized == equity_end
            # exactly, and realized == trading + fees + funding.
            "money": {
                "equity_start": str(broker.starting_equity),
                "realized": str(realized),
                "unrealized": str(unrealized),
                "equity_end": str(equity),
                "trading": str(broker.realized_pnl),
                "fees": str(-broker.fees_paid),
                "funding": str(broker.funding),
            },
        }
