"""The trader's hand-formatted journal entries (signal, rejection) against `Journal.record`.

They are formatted in one f-string for speed; the text must stay exactly what the
general `record` writes for the same fields, or the digest and the audit log would
depend on which path wrote an entry.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as hs

from tradebot.config import Config
from tradebot.decide.signals import Signal, SignalType
from tradebot.decide.validation import LAYERS, Rejection
from tradebot.execution.paper import PaperBroker
from tradebot.journal import Journal
from tradebot.market.state import Market
from tradebot.trader import Trader

_ANY_FLOAT = hs.floats(allow_nan=True, allow_infinity=True)
_SIGNALS = hs.builds(
    Signal,
    symbol=hs.sampled_from(["XBTUSDTM", "ETHUSDTM"]),
    type=hs.sampled_from(list(SignalType)),
    direction=hs.sampled_from([-1, 0, 1]),
    strength=_ANY_FLOAT,
    confidence=_ANY_FLOAT,
    volume_regime=hs.sampled_from(["high", "moderate", "low"]),
    spread_regime=hs.sampled_from(["tight", "acceptable", "wide"]),
    imbalance=_ANY_FLOAT,
    liquidity_score=_ANY_FLOAT,
    momentum=_ANY_FLOAT,
    new_listing=hs.booleans(),
)


def _trader() -> tuple[Trader, Journal]:
    journal = Journal()
    config = Config()
    market = Market(journal)
    broker = PaperBroker(config.paper, journal, market)
    return Trader(config, market, journal, lambda: 0, broker), journal


def _signal(**values: float) -> Signal:
    fields: dict[str, float] = {
        "strength": 0.5,
        "confidence": 1.0,
        "imbalance": -0.25,
        "momentum": 0.0,
        "liquidity_score": 1e-13,
    }
    fields.update(values)
    return Signal(
        "XBTUSDTM",
        SignalType.BUY,
        1,
        volume_regime="low",
        spread_regime="wide",
        new_listing=True,
        **fields,
    )  # type: ignore[arg-type]


@example(signal=_signal(strength=-0.0, momentum=-0.0))  # "-0" is written "0"
@example(signal=_signal(confidence=float("nan"), imbalance=float("-inf")))  # quoted
@example(signal=_signal(liquidity_score=123456789.123456789))  # 12 significant digits
@given(signal=_SIGNALS)
def test_signal_entries_are_what_record_writes(signal: Signal) -> None:
    trader, journal = _trader()
    trader._journal_signal(signal, 5)
    reference = Journal()
    reference.record(
        5,
        "signal",
        signal.symbol,
        type=signal.type.value,
        strength=signal.strength,
        confidence=signal.confidence,
        imbalance=signal.imbalance,
        momentum=signal.momentum,
        liquidity=signal.liquidity_score,
        volume=signal.volume_regime,
        spread=signal.spread_regime,
        new_listing=signal.new_listing,
    )
    assert journal.digest() == reference.digest()


@given(layer=hs.sampled_from(LAYERS), reason=hs.text(max_size=30))
def test_rejection_entries_are_what_record_writes(layer: str, reason: str) -> None:
    trader, journal = _trader()
    trader._journal_rejection("XBTUSDTM", Rejection(layer, reason), 7)
    reference = Journal()
    reference.record(7, "rejection", "XBTUSDTM", layer=layer, reason=reason)
    assert journal.digest() == reference.digest()
