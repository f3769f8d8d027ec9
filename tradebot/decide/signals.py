"""Market intelligence: one directional signal per symbol from book, tape and quality.

What: `compute_signal` combines order-book imbalance and trade momentum into a direction
score, adds a bonus for fresh listings, classifies the volume and spread regimes, and
rates how much to believe it (confidence). The result is a `Signal`: StrongBuy, Buy,
Neutral, Sell or StrongSell with strength and confidence in [0, 1].

Why: the validation layer and the strategy need one small, journaled value per symbol and
evaluation, computed the same way live and in replay.

Formulas (docs/signals.md has them with a worked example):

    volume regime  ratio = latest / baseline (SymbolTracker.volume, warm from the contract's
                   24 h turnover until the window has filled); "low" while fewer than
                   2 * volume_bucket_s seconds observed (unless warm) or when
                   baseline == 0; else
                   high if ratio >= high_volume_ratio, low if ratio <= low_volume_ratio
    spread regime  tight if spread <= tight_spread_bps, acceptable if <= max_spread_bps
    d              (wi * imbalance + wm * momentum) / (wi + wm), 0 if wi + wm == 0
    strength       min(1, |d| + new_listing_bonus if newly listed)
    type           Strong* if strength >= strong_threshold, Buy/Sell if >= signal_threshold,
                   by the sign of d; Neutral when d == 0 or below the threshold
    confidence     liquidity_score * spread factor (1, 0.85, 0.5) * volume factor
                   (1, 0.9, 0.6) * agreement (1, or 0.8 when imbalance and momentum have
                   opposite signs) * verdict.confidence_factor * min(1, completeness)

The signal does not look at `verdict.tradable`: refusing to trade is validation's job.
Synchronous, no I/O, no clock; only + - * / min max abs and comparisons on floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tradebot.config import QualityConfig, SignalConfig
from tradebot.decide.quality import QualityVerdict
from tradebot.decide.tracker import NS_PER_S, SymbolTracker, warm_rate
from tradebot.kucoin.events import Contract
from tradebot.market.state import SymbolState

__all__ = [
    "AGREEMENT_FACTOR",
    "SPREAD_FACTOR",
    "VOLUME_FACTOR",
    "Signal",
    "SignalType",
    "compute_signal",
    "spread_regime",
    "volume_regime",
    "warm_volume",
]


class SignalType(StrEnum):
    STRONG_BUY = "StrongBuy"
    BUY = "Buy"
    NEUTRAL = "Neutral"
    SELL = "Sell"
    STRONG_SELL = "StrongSell"


# The members as plain module globals (reading one through the enum class costs ~0.1 us).
_STRONG_BUY, _BUY, _NEUTRAL = SignalType.STRONG_BUY, SignalType.BUY, SignalType.NEUTRAL
_SELL, _STRONG_SELL = SignalType.SELL, SignalType.STRONG_SELL

HIGH, MODERATE, LOW = "high", "moderate", "low"
TIGHT, ACCEPTABLE, WIDE = "tight", "acceptable", "wide"

SPREAD_FACTOR = {TIGHT: 1.0, ACCEPTABLE: 0.85, WIDE: 0.5}
VOLUME_FACTOR = {HIGH: 1.0, MODERATE: 0.9, LOW: 0.6}
AGREEMENT_FACTOR = 0.8  # imbalance and momentum point in opposite directions

_MS_PER_NS = 1_000_000


@dataclass(slots=True)
class Signal:
    """One evaluation of one symbol (see the module docstring)."""

    symbol: str
    type: SignalType
    direction: int  # +1 buy, -1 sell, 0 neutral
    strength: float  # [0, 1]
    confidence: float  # [0, 1]
    volume_regime: str  # "high" | "moderate" | "low"
    spread_regime: str  # "tight" | "acceptable" | "wide"
    imbalance: float  # [-1, 1], top imbalance_levels of the book; 0.0 out of sync
    liquidity_score: float  # [0, 1]
    momentum: float  # [-1, 1]
    new_listing: bool


def _unit(x: float) -> float:
    """Clamp to [0, 1]; NaN becomes 0.0."""
    if not x > 0.0:
        return 0.0
    return x if x < 1.0 else 1.0


def _signed_unit(x: float) -> float:
    """Clamp to [-1, 1]; NaN becomes 0.0."""
    if not x > -1.0:
        return -1.0 if x <= -1.0 else 0.0
    return x if x < 1.0 else 1.0


def warm_volume(st: SymbolState, contract: Contract | None) -> float:
    """The warm-start volume rate (USDT per second) of `st`'s symbol: its 24 h turnover
    (contracts/active `turnoverOf24h`, then the snapshot topic's) over a day.

    0.0, no warm start, without a contract or for an inverse one: an inverse contract's
    turnover is counted in the base currency, not in the quote the tracker counts.
    """
    if contract is None or contract.is_inverse:
        return 0.0
    return warm_rate(st.turnover_24h)


def volume_regime(
    latest: float,
    baseline: float,
    history_s: int,
    bucket_s: int,
    cfg: SignalConfig,
    warm: bool = False,
) -> str:
    """The volume regime, "high", "moderate" or "low", from `SymbolTracker.volume`.

    "low" while less than two bucket lengths have been observed (the baseline would be
    mostly the latest period itself) unless the figures are warm (the baseline comes
    from the 24 h turnover), and when the baseline is 0 (no trades in the window).
    Otherwise ratio = latest / baseline: high if >= high_volume_ratio, low if <=
    low_volume_ratio, else moderate.
    """
    if (history_s < 2 * bucket_s and not warm) or not baseline > 0.0:
        return LOW
    ratio = latest / baseline
    if ratio >= cfg.high_volume_ratio:
        return HIGH
    if ratio <= cfg.low_volume_ratio:
        return LOW
    return MODERATE


def spread_regime(spread_bps: float, cfg: SignalConfig, quality: QualityConfig) -> str:
    """The spread regime: tight <= tight_spread_bps < acceptable <= max_spread_bps < wide."""
    if spread_bps <= cfg.tight_spread_bps:
        return TIGHT
    if spread_bps <= quality.max_spread_bps:
        return ACCEPTABLE
    return WIDE  # also a missing side (inf) or NaN


def _is_new_listing(
    contract: Contract | None, listed_at_ns: int | None, now_ns: int, window_s: int
) -> bool:
    """Listed within `window_s` before `now_ns`: seen appearing in the contracts table, or,
    when it was there from the start, by the contract's first-open time."""
    if listed_at_ns is None:
        if contract is None or contract.first_open_ms is None:
            return False
        listed_at_ns = contract.first_open_ms * _MS_PER_NS
    age_ns = now_ns - listed_at_ns
    return 0 <= age_ns <= window_s * NS_PER_S


def compute_signal(
    st: SymbolState,
    tracker: SymbolTracker,
    verdict: QualityVerdict,
    contract: Contract | None,
    listed_at_ns: int | None,
    now_ns: int,
    cfg: SignalConfig,
    quality: QualityConfig,
) -> Signal:
    """The signal for `st` at `now_ns`; formulas in the module docstring and docs/signals.md.

    `listed_at_ns` is when the contracts table saw the symbol appear (None if it was there
    from the start; then `contract.first_open_ms` is used when given).
    """
    # The helpers (warm_volume, volume_regime, spread_regime, _unit, _signed_unit,
    # _is_new_listing) are inlined below, operation for operation: this runs about once a
    # second per symbol on the trading core's hot path.

    # warm_volume(st, contract)
    warm_per_s = (
        warm_rate(st.turnover_24h) if contract is not None and not contract.is_inverse else 0.0
    )
    latest, baseline, history_s, momentum, warm = tracker.signal_reads(now_ns, warm_per_s)

    # volume_regime(latest, baseline, history_s, tracker.volume_bucket_s, cfg, warm)
    if (history_s < 2 * tracker.volume_bucket_s and not warm) or not baseline > 0.0:
        vol_regime = LOW
    else:
        ratio = latest / baseline
        if ratio >= cfg.high_volume_ratio:
            vol_regime = HIGH
        elif ratio <= cfg.low_volume_ratio:
            vol_regime = LOW
        else:
            vol_regime = MODERATE

    # spread_regime(verdict.spread_bps, cfg, quality)
    spread_bps = verdict.spread_bps
    if spread_bps <= cfg.tight_spread_bps:
        spr_regime = TIGHT
    elif spread_bps <= quality.max_spread_bps:
        spr_regime = ACCEPTABLE
    else:
        spr_regime = WIDE

    # _signed_unit(book imbalance), 0.0 out of sync
    book = st.book
    if book.in_sync:
        imbalance = book.imbalance(cfg.imbalance_levels)
        if not imbalance > -1.0:
            imbalance = -1.0 if imbalance <= -1.0 else 0.0
        elif not imbalance < 1.0:
            imbalance = 1.0
    else:
        imbalance = 0.0
    # _signed_unit(momentum)
    if not momentum > -1.0:
        momentum = -1.0 if momentum <= -1.0 else 0.0
    elif not momentum < 1.0:
        momentum = 1.0
    # _unit(liquidity / min_liquidity_usdt), 1.0 without a minimum
    min_liquidity = quality.min_liquidity_usdt
    if min_liquidity > 0.0:
        liquidity_score = verdict.liquidity_usdt / min_liquidity
        if not liquidity_score > 0.0:
            liquidity_score = 0.0
        elif not liquidity_score < 1.0:
            liquidity_score = 1.0
    else:
        liquidity_score = 1.0

    wi, wm = cfg.imbalance_weight, cfg.momentum_weight
    weights = wi + wm
    d = _signed_unit((wi * imbalance + wm * momentum) / weights) if weights > 0.0 else 0.0

    # _is_new_listing(contract, listed_at_ns, now_ns, cfg.new_listing_window_s)
    if listed_at_ns is None and contract is not None and contract.first_open_ms is not None:
        listed_at_ns = contract.first_open_ms * _MS_PER_NS
    new_listing = listed_at_ns is not None and (
        0 <= now_ns - listed_at_ns <= cfg.new_listing_window_s * NS_PER_S
    )
    strength = abs(d)
    if new_listing:
        strength += cfg.new_listing_bonus
    strength = _unit(strength)

    direction = 1 if d > 0.0 else -1 if d < 0.0 else 0
    if direction != 0 and strength >= cfg.strong_threshold:
        kind = _STRONG_BUY if direction > 0 else _STRONG_SELL
    elif direction != 0 and strength >= cfg.signal_threshold:
        kind = _BUY if direction > 0 else _SELL
    else:
        kind = _NEUTRAL
        direction = 0

    disagree = (imbalance > 0.0 and momentum < 0.0) or (imbalance < 0.0 and momentum > 0.0)
    confidence = _unit(
        liquidity_score
        * SPREAD_FACTOR[spr_regime]
        * VOLUME_FACTOR[vol_regime]
        * (AGREEMENT_FACTOR if disagree else 1.0)
        * verdict.confidence_factor
        * _unit(verdict.completeness)  # min(1, completeness), NaN -> 0
    )
    return Signal(
        st.symbol,
        kind,
        direction,
        strength,
        confidence,
        vol_regime,
        spr_regime,
        imbalance,
        liquidity_score,
        momentum,
        new_listing,
    )
