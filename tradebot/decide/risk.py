"""Risk manager: may we open a position now, and how large.

Limits (`RiskConfig`):

* Daily loss: when equity falls to start-of-day equity x (1 - max_daily_loss_fraction),
  entries stop for the rest of the UTC day. Equity includes unrealized PnL, so an open
  losing position counts before it is closed. The halt is latched: equity recovering
  later that day does not lift it; the next UTC day does, with a new start-of-day equity.
* Open positions: at most `max_open_positions` at once.
* Minimum balance: no entry while cash is below `min_balance_usdt`.
* One position per symbol: no entry on a symbol that already has one.
* Contracts we can book: a linear contract settled in the account's currency (USDT).
  An inverse contract (PnL in the base coin) is refused as "inverse_contract", one
  settled in another coin (USDC) as "settle_currency:<coin>" (`contract_refusal`).
* Position size: `size()` returns the largest whole number of lots (a multiple of the
  lot size, at most the max order quantity) whose notional at the given price is within
  equity x max_position_fraction x confidence. The limit holds at entry, at the price
  given; later price moves are the exits' business, not this module's.

UTC days come from the run's clock (`now_ns // 86_400 s`), never from a wall clock, so a
replay halts and resumes on the same events as the live run did. Sizing is exact: the
price is converted to ticks and the limit compared as fractions, so float noise cannot
let a lot through that does not fit. Synchronous, no I/O.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

from tradebot.config import RiskConfig
from tradebot.journal import Journal
from tradebot.kucoin.events import Contract

__all__ = [
    "ACCOUNT_CURRENCY",
    "DAILY_LOSS_LIMIT",
    "INVERSE_CONTRACT",
    "MAX_OPEN_POSITIONS",
    "MIN_BALANCE",
    "NS_PER_DAY",
    "POSITION_EXISTS",
    "RiskManager",
    "contract_refusal",
    "utc_day",
]

NS_PER_DAY = 86_400_000_000_000

DAILY_LOSS_LIMIT = "daily_loss_limit"
MAX_OPEN_POSITIONS = "max_open_positions"
MIN_BALANCE = "min_balance"
POSITION_EXISTS = "position_exists"
INVERSE_CONTRACT = "inverse_contract"
ACCOUNT_CURRENCY = "USDT"


def contract_refusal(contract: Contract) -> str | None:
    """Why the account cannot hold `contract`, or None: an inverse contract settles in the
    base coin, and a contract settled in another coin than USDT (USDC) would be booked
    1:1 into a USDT account."""
    if contract.is_inverse:
        return INVERSE_CONTRACT
    if contract.settle_currency != ACCOUNT_CURRENCY:
        return f"settle_currency:{contract.settle_currency}"
    return None


def utc_day(day: int) -> str:
    """Day number since 1970-01-01 as YYYY-MM-DD (proleptic Gregorian calendar).

    Pure integer arithmetic (H. Hinnant's civil_from_days), so the core imports no
    `datetime`.
    """
    z = day + 719_468  # days since 0000-03-01
    era = z // 146_097
    doe = z - era * 146_097  # day of the 400-year era, [0, 146096]
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365  # [0, 399]
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)  # day of the March-based year
    mp = (5 * doy + 2) // 153  # March-based month, [0, 11]
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (1 if m <= 2 else 0)
    return f"{y:04d}-{m:02d}-{d:02d}"


def _decimal(value: float) -> Decimal:
    """A config float as the decimal it was written as (0.05, not binary noise)."""
    return Decimal(repr(value))


class RiskManager:
    """Entry checks and position sizing against `RiskConfig` (see module docstring)."""

    def __init__(self, cfg: RiskConfig, journal: Journal) -> None:
        self.cfg = cfg
        self.journal = journal
        self.start_of_day_equity = Decimal(0)
        self.halted = False
        self._day: int | None = None
        self._now_ns = 0
        self._keep = Decimal(1) - _decimal(cfg.max_daily_loss_fraction)
        self._min_balance = _decimal(cfg.min_balance_usdt)
        self._position_fraction = Fraction(_decimal(cfg.max_position_fraction))
        self._fraction_ratio = self._position_fraction.as_integer_ratio()
        # (tick_size_text, multiplier_text) -> tick size x multiplier as an exact ratio
        self._lot_ratios: dict[tuple[str, str], tuple[int, int]] = {}

    @property
    def day(self) -> int | None:
        """The current UTC day number (None before the first `on_clock`)."""
        return self._day

    def on_clock(self, now_ns: int, equity: Decimal) -> None:
        """Advance the run's clock. On a new UTC day: journal "daily_pnl" for the day that
        ended (its start equity, `equity` as its end), then start the new day at `equity`
        and lift the daily halt. The first call only starts the day. Time going backwards
        is ignored."""
        day = now_ns // NS_PER_DAY
        if now_ns > self._now_ns:
            self._now_ns = now_ns
        if self._day is None:
            self._day = day
            self.start_of_day_equity = equity
            return
        if day <= self._day:
            return
        self._journal_day(now_ns, self._day, equity)
        self._day = day
        self.start_of_day_equity = equity
        self.halted = False

    def close_day(self, now_ns: int, equity: Decimal) -> None:
        """End of the run: journal "daily_pnl" for the day in progress, marked partial."""
        if self._day is not None:
            self._journal_day(now_ns, self._day, equity, partial=True)

    def _journal_day(self, now_ns: int, day: int, equity: Decimal, **extra: object) -> None:
        start = self.start_of_day_equity
        self.journal.record(
            now_ns,
            "daily_pnl",
            "",
            day=utc_day(day),
            start_equity=start,
            end_equity=equity,
            pnl=equity - start,
            **extra,
        )

    def daily_loss_hit(self, equity: Decimal) -> bool:
        """True when the daily loss limit is hit: equity <= start of day x (1 - fraction).

        Latched for the rest of the UTC day; journals "daily_halt" once when it latches.
        False before the first `on_clock` (no start-of-day equity yet).
        """
        if self.halted:
            return True
        if self._day is None:
            return False
        limit = self.start_of_day_equity * self._keep
        if equity > limit:
            return False
        self.halted = True
        self.journal.record(
            self._now_ns,
            "daily_halt",
            "",
            day=utc_day(self._day),
            start_equity=self.start_of_day_equity,
            equity=equity,
            limit=limit,
        )
        return True

    def check_entry(
        self,
        now_ns: int,
        equity: Decimal,
        cash: Decimal,
        open_positions: int,
        symbol_has_position: bool,
    ) -> str | None:
        """None when a new position may be opened; else the first limit that forbids it:
        "daily_loss_limit", "min_balance", "max_open_positions" or "position_exists".

        Advances the clock first (`on_clock`), so the daily limit is the one of now_ns's
        UTC day.
        """
        self.on_clock(now_ns, equity)
        if self.daily_loss_hit(equity):
            return DAILY_LOSS_LIMIT
        if cash < self._min_balance:
            return MIN_BALANCE
        if open_positions >= self.cfg.max_open_positions:
            return MAX_OPEN_POSITIONS
        if symbol_has_position:
            return POSITION_EXISTS
        return None

    def size(self, contract: Contract, price: float, confidence: float, equity: Decimal) -> int:
        """Lots to open: the largest multiple of the lot size with
        lots x multiplier x price <= equity x max_position_fraction x confidence,
        and <= the max order quantity; 0 when not even one lot fits.

        `confidence` is clamped to [0, 1] (NaN counts as 0). `price` is converted to ticks
        first. Inverse contracts (sized in USD, settled in coin) are not supported: 0.
        """
        if contract.is_inverse or not (price > 0.0 and math.isfinite(price)):
            return 0
        if not equity.is_finite() or equity <= 0:
            return 0
        if not confidence > 0.0:  # also NaN
            return 0
        if confidence > 1.0:  # min(confidence, 1.0)
            confidence = 1.0
        in_ticks = price / contract.tick_size
        if not math.isfinite(in_ticks):  # a price so large it overflows in ticks
            return 0
        ticks = round(in_ticks)
        if ticks <= 0:
            return 0
        # Exact, as fractions: lots = (equity x fraction x confidence) // (ticks x tick x mult),
        # computed on integer numerators and denominators (the floor of the same rational
        # number, without building Fraction objects). The tick x multiplier ratio depends
        # only on the contract's texts and is cached.
        key = (contract.tick_size_text, contract.multiplier_text)
        lot_ratio = self._lot_ratios.get(key)
        if lot_ratio is None:
            lot_ratio = self._lot_ratio(*key)
        lot_num, lot_den = lot_ratio
        eq_num, eq_den = equity.as_integer_ratio()
        frac_num, frac_den = self._fraction_ratio
        conf_num, conf_den = _decimal(confidence).as_integer_ratio()
        lots = (eq_num * frac_num * conf_num * lot_den) // (
            eq_den * frac_den * conf_den * ticks * lot_num
        )
        lot = contract.lot_size
        lots = lots // lot * lot
        cap = contract.max_order_qty // lot * lot
        return max(0, min(lots, cap))

    def cap_notional(self, confidence: float, equity: Decimal) -> Decimal:
        """The most notional one entry may fill: equity x max_position_fraction x confidence
        (confidence clamped to [0, 1]), rounded down to 8 places; the broker holds an
        entry to it at the fill, whatever the book does during the latency."""
        if not confidence > 0.0 or not equity.is_finite() or equity <= 0:
            return Decimal(0)
        conf = Fraction(_decimal(min(confidence, 1.0)))
        cap = Fraction(equity) * self._position_fraction * conf
        return Decimal(math.floor(cap * 10**8)).scaleb(-8)

    def _lot_ratio(self, tick_size_text: str, multiplier_text: str) -> tuple[int, int]:
        """tick size x multiplier as an exact (numerator, denominator), remembered."""
        ratio = (
            Fraction(Decimal(tick_size_text)) * Fraction(Decimal(multiplier_text))
        ).as_integer_ratio()
        if len(self._lot_ratios) >= 4_096:  # contracts are few; bound it anyway
            self._lot_ratios.clear()
        self._lot_ratios[(tick_size_text, multiplier_text)] = ratio
        return ratio
