"""Pre-trade validation: five layers, in order, all must pass.

    1. data_quality       the quality verdict is tradable (no critical or important failure)
    2. market_conditions  spread not wide, liquidity score high enough, volume not low
    3. risk_limits        the risk manager allows a new position and it sizes to >= 1 lot
    4. regulatory         contract Open and not delisted, outside the funding window
    5. confidence         signal confidence >= the minimum (0.75 by default)

`validate` returns None when every layer passes, otherwise the first `Rejection` with its
layer and a short, stable reason (journaled and hashed into the digest). A "no" is a
value, not an exception. The risk layer is asked through a callable, only when the two
cheaper layers before it pass: sizing is exact (Decimal) arithmetic and most candidates
never get that far. Synchronous, no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tradebot.config import ValidationConfig

__all__ = ["LAYERS", "Rejection", "RiskCheck", "Verdicts", "validate"]

LAYERS = ("data_quality", "market_conditions", "risk_limits", "regulatory", "confidence")


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made
# building these per candidate entry 4x slower. Treat them as read-only values.


@dataclass(slots=True)
class Rejection:
    """Validation said no: which layer, and why."""

    layer: str
    reason: str


@dataclass(slots=True, kw_only=True)
class Verdicts:
    """What each layer looks at, gathered by the caller for one candidate entry."""

    quality_ok: bool
    quality_reason: str
    spread_regime: str
    liquidity_score: float
    volume_regime: str
    contract_open: bool
    delisted: bool
    ns_to_funding: int | None  # distance to the nearest funding time (either side); None = unknown
    confidence: float


RiskCheck = Callable[[], tuple[str | None, int]]


def validate(v: Verdicts, cfg: ValidationConfig, risk: RiskCheck) -> Rejection | None:
    """Run the five layers in order; the first failure is the answer.

    `risk()` returns (the risk manager's reason to refuse or None, the size in lots).
    """
    if not v.quality_ok:
        return Rejection("data_quality", v.quality_reason or "quality")
    if v.spread_regime == "wide":
        return Rejection("market_conditions", "spread_wide")
    if not v.liquidity_score >= cfg.min_liquidity_score:  # NaN fails too
        return Rejection(
            "market_conditions", f"liquidity:{v.liquidity_score:.2f}<{cfg.min_liquidity_score:.2f}"
        )
    if v.volume_regime == "low" and not cfg.allow_low_volume:
        return Rejection("market_conditions", "volume_low")
    risk_reason, lots = risk()
    if risk_reason is not None:
        return Rejection("risk_limits", risk_reason)
    if lots <= 0:
        return Rejection("risk_limits", "size_below_one_lot")
    if v.delisted:
        return Rejection("regulatory", "delisted")
    if not v.contract_open:
        return Rejection("regulatory", "contract_not_open")
    if v.ns_to_funding is not None and v.ns_to_funding <= cfg.funding_blackout_s * 1_000_000_000:
        return Rejection("regulatory", "funding_window")
    if not v.confidence >= cfg.min_confidence:  # NaN fails too
        return Rejection("confidence", f"confidence:{v.confidence:.3f}<{cfg.min_confidence:.2f}")
    return None
