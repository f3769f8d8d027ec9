"""Data quality: may we trade this symbol on what we know right now? Three tiers of checks.

What: `assess` judges one symbol's market state at `now_ns` (the receive time of the
message being processed, so replay judges in the recording's time) and returns a
`QualityVerdict`: tradable or not, the most severe failed tier, every failed check as a
short stable reason string, and a confidence factor for the signal.

Why: a strategy that trades on a stale, crossed, thin or gappy book trades on prices that
do not exist. Failures are values (journaled and hashed into the run's digest), never
exceptions.

Tiers (docs/quality.md has the exact rules and the reason strings):

    critical   quote present; book in sync and not crossed; quote fresh; contract Open
    important  spread < max_spread_bps; some volume; liquidity within the band >=
               min_liquidity_usdt; completeness >= min_completeness
    optional   mark price present (confidence * 0.9); funding rate present (* 0.95)

`tradable` is False when any critical or important check fails. Completeness is
field_share * update_share: the share present of the six required fields (bid, ask,
bid_size, ask_size, last_price, volume_24h) times received / expected level-2 updates over
the rolling window (`SymbolTracker.completeness_updates`). Liquidity is the book notional
within `liquidity_band_bps` of mid, both sides, in USDT (linear: price * size *
multiplier; inverse: size * multiplier USD).

Synchronous, no I/O, no clock; only + - * / and comparisons on floats.
"""

from __future__ import annotations

from dataclasses import dataclass

from tradebot.config import QualityConfig
from tradebot.decide.tracker import SymbolTracker
from tradebot.market.contracts import ContractTable
from tradebot.market.state import SymbolState

__all__ = [
    "CRITICAL",
    "FUNDING_MISSING_FACTOR",
    "IMPORTANT",
    "MARK_MISSING_FACTOR",
    "OK",
    "OPTIONAL",
    "QualityVerdict",
    "assess",
    "liquidity_usdt",
]

OK, CRITICAL, IMPORTANT, OPTIONAL = "ok", "critical", "important", "optional"

MARK_MISSING_FACTOR = 0.9
FUNDING_MISSING_FACTOR = 0.95

_NS_PER_MS = 1_000_000
_REQUIRED_FIELDS = 6  # bid, ask, bid_size, ask_size, last_price, volume_24h
_INF = float("inf")


@dataclass(slots=True)
class QualityVerdict:
    """The outcome of `assess` for one symbol at one time."""

    tradable: bool  # False when any critical or important check failed
    tier: str  # "ok", or the most severe failed tier: "critical", "important", "optional"
    reasons: tuple[str, ...]  # every failed check, critical first (docs/quality.md)
    confidence_factor: float  # 1.0, times 0.9 if the mark is missing, 0.95 if funding is
    completeness: float  # field_share * update_share, in [0, 1]
    spread_bps: float  # (ask - bid) / mid * 1e4; inf when a side is missing
    liquidity_usdt: float  # book notional within liquidity_band_bps of mid, both sides


def _positive(x: float) -> bool:
    """Present: a finite number > 0 (False for 0, negatives, NaN and inf)."""
    return 0.0 < x < _INF


def liquidity_usdt(st: SymbolState, contracts: ContractTable, band_bps: float) -> float:
    """Book notional within `band_bps` of mid, both sides summed, in USDT (0.0 if unknown).

    Linear: sum(price * size) * multiplier. Inverse: sum(size) * multiplier (one lot is
    `multiplier` USD). 0.0 when the book is out of sync, a side is empty or the contract
    is unknown.
    """
    contract = contracts.get(st.symbol)
    book = st.book
    if contract is None or not book.in_sync:
        return 0.0
    if contract.is_inverse:
        bid, ask = book.depth_within_bps(band_bps)
    else:
        bid, ask = book.notional_within_bps(band_bps)
    total: float = (bid + ask) * contract.multiplier
    return total if total > 0.0 else 0.0


def assess(
    st: SymbolState,
    contracts: ContractTable,
    tracker: SymbolTracker,
    now_ns: int,
    cfg: QualityConfig,
) -> QualityVerdict:
    """Run every check on `st` at `now_ns`; see the module docstring and docs/quality.md.

    Runs about once a second per symbol on the trading core's hot path, so the helpers
    are inlined: `0.0 < x < _INF` is `_positive(x)`, and the liquidity block is
    `liquidity_usdt` reusing the one contract lookup. Reasons go into one list in tier
    order (critical, important, optional), and the tier comes from where each tier's
    reasons end.
    """
    reasons: list[str] = []
    symbol = st.symbol
    book = st.book
    in_sync = book.in_sync
    bid = st.bid
    ask = st.ask

    # --- critical -----------------------------------------------------------------------
    bid_ok = 0.0 < bid < _INF
    ask_ok = 0.0 < ask < _INF
    if bid_ok and ask_ok:
        spread = st.spread_bps()
        if not in_sync:
            reasons.append("book_out_of_sync")
        if bid >= ask:
            reasons.append(f"crossed:{spread:.1f}bps")
    else:
        spread = _INF
        if not bid_ok:
            reasons.append("no_bid")
        if not ask_ok:
            reasons.append("no_ask")
        if not in_sync:
            reasons.append("book_out_of_sync")
    quote_ns = st.quote_ns
    if quote_ns == 0:
        reasons.append("stale:never")
    elif now_ns - quote_ns > cfg.stale_after_ms * _NS_PER_MS:
        reasons.append(f"stale:{(now_ns - quote_ns) // _NS_PER_MS}ms")
    contract = contracts.get(symbol)
    if not contracts.is_open(symbol):
        if contract is None:
            reasons.append("contract:unknown")
        elif symbol in contracts.delisted:
            reasons.append("contract:delisted")
        else:
            reasons.append(f"contract:{contract.status}")
    n_critical = len(reasons)

    # --- important ----------------------------------------------------------------------
    if not spread < cfg.max_spread_bps:
        reasons.append(f"spread:{spread:.1f}bps>={cfg.max_spread_bps:.1f}")
    volume_24h = st.volume_24h
    if (volume_24h is None or not 0.0 < volume_24h < _INF) and (
        tracker.trades_in_window(now_ns) == 0
    ):
        reasons.append("no_volume")
    # liquidity_usdt(st, contracts, cfg.liquidity_band_bps), inlined
    if contract is None or not in_sync:
        liquidity = 0.0
    else:
        if contract.is_inverse:
            bid_side, ask_side = book.depth_within_bps(cfg.liquidity_band_bps)
        else:
            bid_side, ask_side = book.notional_within_bps(cfg.liquidity_band_bps)
        total: float = (bid_side + ask_side) * contract.multiplier
        liquidity = total if total > 0.0 else 0.0
    if not liquidity >= cfg.min_liquidity_usdt:
        reasons.append(f"liquidity:{liquidity:.0f}<{cfg.min_liquidity_usdt:.0f}")
    present = (
        bid_ok
        + ask_ok
        + (0.0 < st.bid_size < _INF)
        + (0.0 < st.ask_size < _INF)
        + (0.0 < st.last_price < _INF)
        + (volume_24h is not None and 0.0 <= volume_24h < _INF)
    )
    completeness = present / _REQUIRED_FIELDS * tracker.completeness_updates(now_ns)
    if not completeness >= cfg.min_completeness:
        reasons.append(f"completeness:{completeness:.3f}<{cfg.min_completeness:.3f}")
    n_failed = len(reasons)

    # --- optional -----------------------------------------------------------------------
    factor = 1.0
    if not 0.0 < st.mark_price < _INF:
        reasons.append("no_mark")
        factor *= MARK_MISSING_FACTOR
    funding = st.funding_rate
    if funding is None or not -_INF < funding < _INF:
        reasons.append("no_funding")
        factor *= FUNDING_MISSING_FACTOR

    if n_critical:
        tier = CRITICAL
    elif n_failed:
        tier = IMPORTANT
    elif reasons:
        tier = OPTIONAL
    else:
        tier = OK
    return QualityVerdict(
        not n_failed,  # tradable
        tier,
        tuple(reasons),
        factor,
        completeness,
        spread,
        liquidity,
    )
