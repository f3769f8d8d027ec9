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
"""

from __future__ import annotations

from tradebot.kucoin.events import Contract

__all__ = ["OPEN", "ContractTable"]

OPEN = "Open"
# An answer missing more than half of at least this many open contracts is ignored.
_PARTIAL_MIN_OPEN = 10


class ContractTable:
    """The latest known contract per symbol, plus listing and delisting bookkeeping."""

    __slots__ = ("by_symbol", "delisted", "ignored", "listed_at_ns", "syncs")

    def __init__(self) -> None:
        self.by_symbol: dict[str, Contract] = {}
        self.listed_at_ns: dict[str, int] = {}
        self.delisted: set[str] = set()
        self.syncs = 0
        self.ignored = 0

    def update(
        self, contracts: list[Contract], now_ns: int, unparsed: list[str] | None = None
    ) -> tuple[list[str], list[str]]:
        """Apply one contracts/active answer; return (listed, delisted) symbols, sorted.

        `unparsed`: symbols present in the answer but unreadable; they keep their state.
        """
        if not contracts:
            self.ignored += 1
            return [], []
        fresh = {c.symbol: c for c in contracts}
        present = fresh.keys() | set(unparsed or ())
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

    def is_open(self, symbol: str) -> bool:
        """True when the latest answer lists `symbol` as Open and it has not been delisted."""
        contract = self.by_symbol.get(symbol)
        return contract is not None and contract.status == OPEN and symbol not in self.delisted

    def get(self, symbol: str) -> Contract | None:
        return self.by_symbol.get(symbol)
