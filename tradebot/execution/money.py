"""Exact money arithmetic: integer ticks and lots, Fractions, Decimals rounded once.

Orders are integer lots at integer ticks (price = ticks x tick size). A market-data float
price becomes ticks with `round(price / tick_size)` before it touches money. Tick size,
multiplier and fee rates are taken from their decimal text and carried as `Fraction`s, so
notional, fees, PnL and funding are computed exactly and rounded once, to 8 decimal places
(ROUND_HALF_EVEN), when booked as `Decimal`. Every Decimal built here comes from an
integer and an exponent, so rounding never depends on the thread's `decimal` context.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from tradebot.kucoin.events import Contract, Side

__all__ = [
    "LOT_EPSILON",
    "MAX_PRICE",
    "MIN_PRICE_PLACES",
    "MONEY_PLACES",
    "ZERO",
    "float_fraction",
    "money",
    "price_of",
    "ratio_to_decimal",
    "side_name",
    "text_fraction",
    "text_places",
    "to_decimal",
    "usable",
]

MONEY_PLACES = 8
MIN_PRICE_PLACES = 12
LOT_EPSILON = 1e-9  # book sizes are float lots; 2.9999999999 is 3 lots
ZERO = Decimal(0)


@lru_cache(maxsize=1024)
def text_fraction(text: str) -> Fraction:
    """The exact value of a decimal text ("0.1" is 1/10)."""
    return Fraction(Decimal(text))


@lru_cache(maxsize=1024)
def text_places(text: str) -> int:
    """Decimal places of a decimal text ("0.25" -> 2, "5" -> 0)."""
    exponent = Decimal(text).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


@lru_cache(maxsize=1024)
def float_fraction(value: float) -> Fraction:
    """A float rate as the decimal it was written as (0.0006 is 6/10000, not binary noise)."""
    return Fraction(Decimal(repr(value)))


def to_decimal(value: Fraction, places: int) -> Decimal:
    """`value` rounded half-even to `places` decimals, as a Decimal without trailing zeros.

    Built from an integer and an exponent, so it is exact and independent of the decimal
    context.
    """
    return ratio_to_decimal(value.numerator, value.denominator, places)


def ratio_to_decimal(num: int, den: int, places: int) -> Decimal:
    """`num / den` (den > 0) rounded half-even to `places` decimals, as `to_decimal` does.

    Integer arithmetic only: the same rounding as `round(Fraction(num, den) * 10**places)`
    without building Fractions (marking positions to market runs on every entry attempt).
    """
    digits, rest = divmod(num * 10**places, den)
    twice = rest * 2
    if twice > den or (twice == den and digits & 1):
        digits += 1
    if digits == 0:
        return ZERO
    exponent = -places
    while exponent < 0 and digits % 10 == 0:
        digits //= 10
        exponent += 1
    return Decimal(f"{digits}e{exponent}")


def money(value: Fraction) -> Decimal:
    return to_decimal(value, MONEY_PLACES)


# No contract trades above this; bounding prices keeps price / tick_size finite (the
# protocol refuses tick sizes below 1e-12), so converting to ticks cannot overflow.
MAX_PRICE = 1e15


def usable(price: float) -> bool:
    return 0.0 < price < MAX_PRICE


def side_name(side: int) -> str:
    return "buy" if side == Side.BUY else "sell"


def price_of(ticks: int, contract: Contract) -> Decimal:
    """ticks x tick size, exactly."""
    text = contract.tick_size_text
    return to_decimal(ticks * text_fraction(text), text_places(text))
