"""Which contracts exist, and when they were listed or delisted.

KuCoin has no listing or delisting push: the only signal is the contracts/active list,
polled and compared (see docs/kucoin-protocol notes). `ContractTable.update` takes one
answer and says which symbols are new and which left `Open` or disappeared.

The first answer is the baseline: what is there at the start is not a listing. After
that, a symbol not seen before is a listing (whatever its status); a symbol that was
`Open` and now has another status, or is missing, is a delisting. A symbol whose entry
was present but malformed is neither: it is kept as it was. An empty answer says
nothing (a glitch, not the end of every contract) and is ignored, counted in `ignored`;
so is an answer missing more than half of ten or more open contracts (truncated).
A delisted symbol that comes back `Open` is listed again. Within one answer, symbols are
reported sorted by name so the order never depends on the exchange's list order.

Plausibility: an entry whose numbers no real contract has (`implausible`: a tick size,
multiplier, lot size or maximum order size that is not positive and finite, a lot size
that is not a whole number, a fee rate outside -0.1 % .. 1 %) is refused like a malformed
one: the symbol keeps its previous contract (or stays unknown, so nothing is sized or
booked from it), and the refusal is counted in `refused` under
`contract_implausible_<field>`. A funding rate beyond `MAX_FUNDING_RATE` per interval is
only that field's problem: the contract is kept without it (`funding_rate` None), counted
the same way. `funding_rate_plausible` is the bound the account applies to settlements.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

from tradebot.kucoin.events import Contract

__all__ = [
    "MAX_FEE_RATE",
    "MAX_FUNDING_RATE",
    "MIN_FEE_RATE",
    "OPEN",
    "ContractTable",
    "funding_rate_plausible",
    "implausible",
]

OPEN = "Open"
# An answer missing more than half of at least this many open contracts is ignored.
_PARTIAL_MIN_OPEN = 10

# Fee rates a real schedule can have: a maker rebate of at most 0.1 %, a fee of at most 1 %.
MIN_FEE_RATE = -0.001
MAX_FEE_RATE = 0.01
# |funding rate| per funding interval. KuCoin caps a contract's rate at 75 % x (initial -
# maintenance margin); with the maintenance margin half the initial one (as listed) that
# is 37.5 % / max leverage, below 10 % for every contract allowing 4x or more. A larger
# rate is a data error, not a market.
MAX_FUNDING_RATE = 0.1


def _positive(x: float) -> bool:
    return type(x) is not bool and 0.0 < x < math.inf


def funding_rate_plausible(rate: float) -> bool:
    """True for a finite funding rate within +-`MAX_FUNDING_RATE` (one interval)."""
    return -MAX_FUNDING_RATE <= rate <= MAX_FUNDING_RATE


def implausible(contract: Contract) -> str | None:
    """The first field of `contract` that no real contract has, or None (module docstring).

    The funding rate is not judged here: it is a field-level refusal (`ContractTable`).
    """
    if not _positive(contract.tick_size):
        return "tick_size"
    if not _positive(contract.multiplier):
        return "multiplier"
    lot = contract.lot_size
    if type(lot) is not int or lot <= 0:  # also a float lot size, whole or not
        return "lot_size"
    max_qty = contract.max_order_qty
    if type(max_qty) is not int or max_qty <= 0:
        return "max_order_qty"
    for name, rate in (
        ("maker_fee_rate", contract.maker_fee_rate),
        ("taker_fee_rate", contract.taker_fee_rate),
    ):
        if rate is not None and not MIN_FEE_RATE <= rate <= MAX_FEE_RATE:
            return name
    return None


class ContractTable:
    """The latest known contract per symbol, plus listing and delisting bookkeeping."""

    __slots__ = ("by_symbol", "delisted", "ignored", "listed_at_ns", "refused", "syncs")

    def __init__(self) -> None:
        self.by_symbol: dict[str, Contract] = {}
        self.listed_at_ns: dict[str, int] = {}
        self.delisted: set[str] = set()
        self.syncs = 0
        self.ignored = 0
        # implausible entries and fields, by reason (`contract_implausible_<field>`)
        self.refused: Counter[str] = Counter()

    def update(
        self, contracts: list[Contract], now_ns: int, unparsed: list[str] | None = None
    ) -> tuple[list[str], list[str]]:
        """Apply one contracts/active answer; return (listed, delisted) symbols, sorted.

        `unparsed`: symbols present in the answer but unreadable; they keep their state,
        and so do symbols whose entries are implausible (counted in `refused`).
        """
        if not contracts:
            self.ignored += 1
            return [], []
        fresh, refused = self._plausible(contracts)
        present = fresh.keys() | refused | set(unparsed or ())
        open_now = [
            s for s, c in self.by_symbol.items() if c.status == OPEN and s not in self.delisted
        ]
        missing = sum(1 for s in open_now if s not in present)
        if len(open_now) >= _PARTIAL_MIN_OPEN and missing * 2 > len(open_now):
            # More than half of the open contracts gone in one poll is a truncated answer,
            # not a market event: acting on it would close every position.
            self.ignored += 1
            return [], []
        first = self.syncs == 0
        self.syncs += 1
        listed: list[str] = []
        delisted: list[str] = []
        for symbol in sorted(fresh):
            contract = fresh[symbol]
            before = self.by_symbol.get(symbol)
            if not first and (
                before is None or (symbol in self.delisted and contract.status == OPEN)
            ):
                listed.append(symbol)
                self.listed_at_ns[symbol] = now_ns
                self.delisted.discard(symbol)
            elif (
                before is not None
                and before.status == OPEN
                and contract.status != OPEN
                and symbol not in self.delisted
            ):
                delisted.append(symbol)
                self.delisted.add(symbol)
            self.by_symbol[symbol] = contract
        for symbol in sorted(self.by_symbol.keys() - present):
            if symbol not in self.delisted:
                delisted.append(symbol)
                self.delisted.add(symbol)
        delisted.sort()
        return listed, delisted

    def _plausible(self, contracts: list[Contract]) -> tuple[dict[str, Contract], set[str]]:
        """The answer's plausible entries by symbol (an implausible funding rate dropped),
        and the symbols of the refused ones; each refusal counted in `refused`."""
        fresh: dict[str, Contract] = {}
        refused: set[str] = set()
        for contract in contracts:
            problem = implausible(contract)
            if problem is not None:
                self.refused["contract_implausible_" + problem] += 1
                refused.add(contract.symbol)
                fresh.pop(contract.symbol, None)
                continue
            rate = contract.funding_rate
            if rate is not None and not funding_rate_plausible(rate):
                self.refused["contract_implausible_funding_rate"] += 1
                contract = replace(contract, funding_rate=None)
            if contract.symbol not in refused:
                fresh[contract.symbol] = contract
        return fresh, refused

    def is_open(self, symbol: str) -> bool:
        """True when the latest answer lists `symbol` as Open and it has not been delisted."""
        contract = self.by_symbol.get(symbol)
        return contract is not None and contract.status == OPEN and symbol not in self.delisted

    def get(self, symbol: str) -> Contract | None:
        return self.by_symbol.get(symbol)
