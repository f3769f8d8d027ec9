"""The journal: every fact a run derives, in the order it happened.

Market facts (a sequence gap, a resync, a stale period, a listing) and decisions (a
signal that reached validation, a rejection, an order, a fill, a position change, a
funding payment) are each one `JournalEntry`. The journal hashes every entry into the
run's digest and hands it to a sink (the audit store) when one is attached.

Determinism: an entry's text is canonical (keys in the order given, floats written
with `fmt_float`, Decimals as plain strings), so the same inputs give the same bytes on
any machine. Nothing machine-dependent (wall time, paths, latency) may be journaled.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["Journal", "JournalEntry", "fmt_float", "fmt_value"]


def fmt_float(x: float) -> str:
    """A float written one fixed way: 12 significant digits, `nan`/`inf` spelled out."""
    if x != x:
        return "nan"
    if x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    text = format(x, ".12g")
    return "0" if text == "-0" else text


def fmt_value(value: object) -> str:
    """Any journaled value as canonical JSON text (Decimals as exact JSON numbers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = fmt_float(value)
        return text if value == value and abs(value) != float("inf") else f'"{text}"'
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "null"
    return json.dumps(str(value), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One derived fact: when (the run's clock), what, which symbol, and its details.

    `detail` is a JSON object (canonical text: keys in the order recorded, floats with
    12 significant digits, Decimals exact), readable back with `json.loads`.
    """

    seq: int
    ts_ns: int
    kind: str
    symbol: str
    detail: str

    def line(self) -> str:
        return f"{self.seq}|{self.ts_ns}|{self.kind}|{self.symbol}|{self.detail}\n"


class Journal:
    """Hashes entries into a SHA-256 digest and forwards them to an optional sink."""

    __slots__ = ("_hash", "_sink", "counts", "entries")

    def __init__(self, sink: Callable[[JournalEntry], None] | None = None) -> None:
        self._hash = hashlib.sha256()
        self._sink = sink
        self.entries = 0
        self.counts: Counter[str] = Counter()

    def record(self, ts_ns: int, kind: str, symbol: str = "", **fields: object) -> JournalEntry:
        """Journal one fact; `fields` keep the order given."""
        detail = "{" + ",".join(f'"{k}":{fmt_value(v)}' for k, v in fields.items()) + "}"
        self.entries += 1
        entry = JournalEntry(self.entries, ts_ns, kind, symbol, detail)
        self._hash.update(entry.line().encode())
        self.counts[kind] += 1
        if self._sink is not None:
            self._sink(entry)
        return entry

    def digest(self, closing: str = "") -> str:
        """The SHA-256 hex of every entry so far plus `closing` (the run's final figures)."""
        h = self._hash.copy()
        h.update(closing.encode())
        return h.hexdigest()
