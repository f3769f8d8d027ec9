"""Shared test builders: KuCoin payloads and a scripted scenario that drives an `Engine`.

Payloads are shaped like the recorded fixtures in tests/fixtures/kucoin/ (level2, tickerV2,
execution, instrument mark.index.price, announcement funding.begin, REST contracts/active
and level2/snapshot answers, conn records). `Scenario` feeds them to one `Engine` at
chosen receive times, given in milliseconds after `T0` (a whole second of the run's
clock), and keeps every journal entry for the assertions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from tradebot.config import load_config
from tradebot.engine import Engine
from tradebot.journal import Journal, JournalEntry
from tradebot.kucoin.events import Contract

T0 = 1_700_000_000_000_000_000  # a whole second (and ms) of the run's clock, in ns
S = 1_000_000_000
MS = 1_000_000

Levels = Sequence[tuple[float, float]]

# A tradable book for the default contract (tick 0.01, multiplier 0.1): spread 1 bps,
# bid heavy (imbalance (400 - 200) / 600 = 1/3).
BIDS: list[tuple[float, float]] = [(99.99, 200.0), (99.98, 200.0)]
ASKS: list[tuple[float, float]] = [(100.00, 100.0), (100.01, 100.0)]

# Overrides that let a tiny scenario trade: every layer passes on a one-trade tape.
TRADING = (
    "validation.min_confidence=0",
    "validation.allow_low_volume=true",
    "validation.min_liquidity_score=0",
    "quality.min_liquidity_usdt=0",
    "signals.evaluate_every_ms=100",
    "paper.latency_ms=50",
)


def ns(ms: float) -> int:
    """The run's clock `ms` milliseconds after T0 (integer ns, exact for whole µs)."""
    return T0 + round(ms * 1_000) * 1_000


# --- payloads --------------------------------------------------------------------------------


def contract(
    symbol: str,
    status: str = "Open",
    *,
    multiplier: float = 0.1,
    lot_size: int = 1,
    tick_size: float = 0.01,
    maker_fee: float = 0.0002,
    taker_fee: float = 0.0006,
    next_funding_ms: int | None = 4 * 3_600_000,
    funding_rate: float | None = 0.0001,
    volume_24h: float | None = 1_000_000.0,
    **extra: Any,
) -> dict[str, Any]:
    """One contracts/active entry (the fields of rest_contracts_active.json we use)."""
    c: dict[str, Any] = {
        "symbol": symbol,
        "rootSymbol": "USDT",
        "type": "FFWCSX",
        "baseCurrency": symbol[:3],
        "quoteCurrency": "USDT",
        "settleCurrency": "USDT",
        "maxOrderQty": 1_000_000,
        "lotSize": lot_size,
        "tickSize": tick_size,
        "multiplier": multiplier,
        "makerFeeRate": maker_fee,
        "takerFeeRate": taker_fee,
        "isInverse": False,
        "status": status,
        "fundingFeeRate": funding_rate,
        "fundingRateGranularity": 28_800_000,
        "nextFundingRateTime": next_funding_ms,
        "volumeOf24h": volume_24h,
        "turnoverOf24h": None if volume_24h is None else volume_24h * 100.0,
    }
    c.update(extra)
    return c


def contract_value(**overrides: Any) -> Contract:
    """A parsed `Contract` (XBTUSDTM-like: multiplier 0.1, tick 0.1) with `overrides`."""
    fields: dict[str, Any] = {
        "symbol": "XBTUSDTM",
        "status": "Open",
        "multiplier": 0.1,
        "multiplier_text": "0.1",
        "lot_size": 1,
        "tick_size": 0.1,
        "tick_size_text": "0.1",
        "max_order_qty": 1_000_000,
        "maker_fee_rate": None,
        "taker_fee_rate": None,
        "is_inverse": False,
        "quote_currency": "USDT",
        "settle_currency": "USDT",
        "first_open_ms": None,
        "funding_rate": None,
        "next_funding_in_ms": None,
        "funding_granularity_ms": None,
        "mark_price": None,
        "index_price": None,
        "last_price": None,
        "volume_24h": None,
        "turnover_24h": None,
    }
    fields.update(overrides)
    return Contract(**fields)


def contracts_answer(contracts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {
        "method": "GET",
        "path": "/api/v1/contracts/active",
        "params": {},
        "status": 200,
        "body": {"code": "200000", "data": list(contracts)},
    }


def snapshot_answer(
    symbol: str, sequence: int, bids: Levels, asks: Levels, ts_ns: int = T0
) -> dict[str, Any]:
    return {
        "method": "GET",
        "path": "/api/v1/level2/snapshot",
        "params": {"symbol": symbol},
        "status": 200,
        "body": {
            "code": "200000",
            "data": {
                "symbol": symbol,
                "sequence": sequence,
                "bids": [[p, s] for p, s in bids],
                "asks": [[p, s] for p, s in asks],
                "ts": ts_ns,
            },
        },
    }


def level2_msg(symbol: str, sequence: int, price: float, side: str, size: float) -> dict[str, Any]:
    return {
        "type": "message",
        "topic": f"/contractMarket/level2:{symbol}",
        "subject": "level2",
        "data": {
            "sequence": sequence,
            "change": f"{price},{side},{size:g}",
            "timestamp": T0 // MS,
        },
    }


def ticker_msg(
    symbol: str, bid: float, ask: float, bid_size: float = 10, ask_size: float = 10, seq: int = 1
) -> dict[str, Any]:
    return {
        "topic": f"/contractMarket/tickerV2:{symbol}",
        "type": "message",
        "subject": "tickerV2",
        "sn": seq,
        "data": {
            "symbol": symbol,
            "sequence": seq,
            "bestBidSize": bid_size,
            "bestBidPrice": str(bid),
            "bestAskPrice": str(ask),
            "bestAskSize": ask_size,
            "ts": T0,
        },
    }


def execution_msg(symbol: str, side: str, price: float, size: int, seq: int = 1) -> dict[str, Any]:
    """A public trade; `side` is the taker's side."""
    return {
        "topic": f"/contractMarket/execution:{symbol}",
        "type": "message",
        "subject": "match",
        "sn": seq,
        "data": {
            "symbol": symbol,
            "sequence": seq,
            "side": side,
            "size": size,
            "price": str(price),
            "takerOrderId": "t",
            "makerOrderId": "m",
            "tradeId": str(seq),
            "ts": T0,
        },
    }


def mark_msg(symbol: str, mark: float, index: float | None = None) -> dict[str, Any]:
    return {
        "topic": f"/contract/instrument:{symbol}",
        "type": "message",
        "subject": "mark.index.price",
        "data": {
            "markPrice": mark,
            "indexPrice": mark if index is None else index,
            "granularity": 1000,
            "timestamp": T0 // MS,
        },
    }


def funding_msg(symbol: str, rate: float, phase: str = "begin") -> dict[str, Any]:
    return {
        "topic": "/contract/announcement",
        "type": "message",
        "subject": f"funding.{phase}",
        "data": {
            "symbol": symbol,
            "fundingTime": T0 // MS,
            "fundingRate": rate,
            "timestamp": T0 // MS,
        },
    }


# --- the scenario ----------------------------------------------------------------------------


class Scenario:
    """One Engine, a captured journal, and per-symbol level-2 sequence numbers.

    Every feeding method takes the receive time in ms after T0. `checks` are called after
    every payload (e.g. to assert an invariant at every step).
    """

    def __init__(
        self,
        overrides: Iterable[str] = (),
        *,
        trading: bool = True,
        tick_ms: int = 1_000,
        frames: bool = True,
    ) -> None:
        self.frames = frames
        self.ws_conn: int | None = 1 if frames else None
        self.entries: list[JournalEntry] = []
        self.journal = Journal(sink=self.entries.append)
        self.config = load_config(overrides=list(overrides))
        self.engine = Engine(
            self.config, journal=self.journal, perf=lambda: 0, tick_ms=tick_ms, trading=trading
        )
        self.seq: dict[str, int] = {}
        self.trade_seq = 0
        self.checks: list[Callable[[Scenario], None]] = []

    # feeding

    def _after(self) -> None:
        for check in self.checks:
            check(self)

    def ws(self, t_ms: float, msg: Any, conn: int | None = None) -> None:
        """A WebSocket message on connection `conn` (default: 1; none with `frames=False`).

        Sent as the text frame live and format v2 carry (a str or bytes `msg` as it is),
        or with `frames=False` as the decoded map, as a version-1 recording holds it."""
        if self.frames and not isinstance(msg, str | bytes):
            msg = json.dumps(msg)
        self.engine.on_ws(ns(t_ms), msg, conn if conn is not None else self.ws_conn)
        self._after()

    def rest(self, t_ms: float, answer: Any) -> None:
        self.engine.on_rest(ns(t_ms), answer)
        self._after()

    def conn(self, t_ms: float, event: str = "close", conn: int = 1, reason: str = "x") -> None:
        self.engine.on_conn(ns(t_ms), {"event": event, "conn": conn, "reason": reason})
        self._after()

    def contracts(self, t_ms: float, *contracts: dict[str, Any]) -> None:
        self.rest(t_ms, contracts_answer(contracts))

    def snapshot(
        self,
        t_ms: float,
        symbol: str,
        bids: Levels = BIDS,
        asks: Levels = ASKS,
        sequence: int | None = None,
    ) -> None:
        """A level-2 snapshot at `sequence` (default: the symbol's latest change, or 100).

        Later changes continue from the latest sequence sent, whatever the snapshot's.
        """
        if sequence is None:
            sequence = self.seq.get(symbol, 100)
        self.seq[symbol] = max(sequence, self.seq.get(symbol, 0))
        self.rest(t_ms, snapshot_answer(symbol, sequence, bids, asks))

    def l2(
        self, t_ms: float, symbol: str, price: float, side: str, size: float, skip: int = 0
    ) -> None:
        """The symbol's next level-2 change (`skip` sequence numbers are lost first)."""
        sequence = self.seq.get(symbol, 100) + 1 + skip
        self.seq[symbol] = sequence
        self.ws(t_ms, level2_msg(symbol, sequence, price, side, size))

    def touch(self, t_ms: float, symbol: str, price: float = 99.0, side: str = "buy") -> None:
        """A quote update that leaves the top of book alone: a deep level changes size."""
        size = 1.0 + (self.seq.get(symbol, 100) % 7)
        self.l2(t_ms, symbol, price, side, size)

    def ticker(self, t_ms: float, symbol: str, bid: float, ask: float, **kw: Any) -> None:
        self.ws(t_ms, ticker_msg(symbol, bid, ask, **kw))

    def trade(self, t_ms: float, symbol: str, side: str, price: float, size: int) -> None:
        self.trade_seq += 1
        self.ws(t_ms, execution_msg(symbol, side, price, size, self.trade_seq))

    def mark(self, t_ms: float, symbol: str, price: float) -> None:
        self.ws(t_ms, mark_msg(symbol, price))

    def funding(self, t_ms: float, symbol: str, rate: float, phase: str = "begin") -> None:
        self.ws(t_ms, funding_msg(symbol, rate, phase))

    def finish(self, t_ms: float) -> None:
        self.engine.finish(ns(t_ms))

    # canned openings

    def open_market(
        self,
        symbols: Sequence[str],
        t_ms: float = 0,
        bids: Levels = BIDS,
        asks: Levels = ASKS,
    ) -> None:
        """Snapshots for `symbols`, then the contracts answer listing them Open.

        The snapshots come first so the states exist when the contracts answer arrives
        (the answer fills in volume, funding rate and next funding time only for symbols
        the market already knows).
        """
        for symbol in symbols:
            self.snapshot(t_ms, symbol, bids, asks)
        self.contracts(t_ms + 1, *(contract(s) for s in symbols))

    def buy_pressure(self, t_ms: float, symbol: str, size: int = 5) -> None:
        """A buy-side print at the best ask (buy momentum) and a quote update right after
        it, which is what triggers an evaluation."""
        self.trade(t_ms, symbol, "buy", ASKS[0][0], size)
        self.touch(t_ms + 1, symbol)

    # reading

    def of(self, kind: str, symbol: str | None = None) -> list[JournalEntry]:
        return [
            e for e in self.entries if e.kind == kind and (symbol is None or e.symbol == symbol)
        ]

    def details(self, kind: str, symbol: str | None = None) -> list[dict[str, Any]]:
        """The details of `kind` entries, numbers as Decimal (exact)."""
        return [detail(e) for e in self.of(kind, symbol)]

    def kinds(self) -> list[str]:
        return [e.kind for e in self.entries]

    def lines(self) -> list[str]:
        return [e.line() for e in self.entries]

    @property
    def counters(self) -> dict[str, Any]:
        return self.engine.counters()

    @property
    def report(self) -> dict[str, Any]:
        return self.engine.trading_report()

    @property
    def broker(self) -> Any:
        assert self.engine.trader is not None
        return self.engine.trader.broker

    def state(self, symbol: str) -> Any:
        return self.engine.market.symbols[symbol]


def detail(entry: JournalEntry) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(entry.detail, parse_float=Decimal, parse_int=Decimal)
    return out
