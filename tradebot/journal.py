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
from collections.abc import Callable, ItemsView
from dataclasses import dataclass
from decimal import Context, Decimal
from typing import Any

from tradebot.errors import TradebotError

__all__ = [
    "MONEY_CONTEXT",
    "Journal",
    "JournalEntry",
    "SinkError",
    "fmt_float",
    "fmt_number",
    "fmt_value",
]


_INF = float("inf")
_NEG_INF = float("-inf")

# The fast paths below dispatch on the exact type and must write exactly what the general
# code after them writes (tests/test_journal.py pins the text): the digest hashes it.


# The decimal context every run's money arithmetic uses (the shells enter it), so that
# a digest never depends on a caller's thread-local context.
MONEY_CONTEXT = Context(prec=28)


def fmt_float(x: float) -> str:
    """A float written one fixed way: 12 significant digits, `nan`/`inf` spelled out."""
    if type(x) is float and _NEG_INF < x < _INF:  # the common case: a finite float
        text = f"{x:.12g}"
        return "0" if text == "-0" else text
    if x != x:
        return "nan"
    if x in (_INF, _NEG_INF):
        return "inf" if x > 0 else "-inf"
    text = format(x, ".12g")
    return "0" if text == "-0" else text


def fmt_number(x: float) -> str:
    """A float as `record` writes it: `fmt_float` text, quoted when not finite."""
    if _NEG_INF < x < _INF:
        text = f"{x:.12g}"
        return "0" if text == "-0" else text
    return f'"{fmt_float(x)}"'


def _fmt_str(text: str) -> str:
    """`text` as `json.dumps(text, ensure_ascii=False)` writes it.

    json.dumps escapes only the quote, the backslash and the control characters below
    U+0020; a printable string has none of the latter, so without a quote or backslash it
    is written as is, between quotes. Results are remembered (most journaled strings are
    a few names: kinds of signal, regimes, layers, reasons), up to `_QUOTED_MAX` of them.
    """
    if type(text) is not str:  # a subclass: json.dumps reads its characters directly
        return json.dumps(text, ensure_ascii=False)
    quoted = _QUOTED.get(text)
    if quoted is None:
        if text.isprintable() and '"' not in text and "\\" not in text:
            quoted = f'"{text}"'
        else:
            quoted = json.dumps(text, ensure_ascii=False)
        if len(_QUOTED) < _QUOTED_MAX:
            _QUOTED[text] = quoted
    return quoted


_QUOTED: dict[str, str] = {}
_QUOTED_MAX = 4_096


def fmt_value(value: object) -> str:
    """Any journaled value as canonical JSON text (Decimals as exact JSON numbers)."""
    if type(value) is float:
        return fmt_number(value)
    kind = type(value)
    if kind is str:
        return _fmt_str(value)  # type: ignore[arg-type]
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    return _fmt_general(value)


def _fmt_general(value: object) -> str:
    """`fmt_value` by isinstance (subclasses such as enums, Decimal, None, anything else)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = fmt_float(value)
        return text if value == value and abs(value) != _INF else f'"{text}"'
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "null"
    return _fmt_str(str(value))


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


_new_entry = object.__new__
_set_seq = JournalEntry.__dict__["seq"].__set__
_set_ts_ns = JournalEntry.__dict__["ts_ns"].__set__
_set_kind = JournalEntry.__dict__["kind"].__set__
_set_symbol = JournalEntry.__dict__["symbol"].__set__
_set_detail = JournalEntry.__dict__["detail"].__set__


class SinkError(TradebotError):
    """A journal sink failed: the entries from then on are not in the audit log."""


class Journal:
    """Hashes entries into a SHA-256 digest and forwards them to optional sinks.

    Two ways out, neither of which can interrupt the booking that records an entry:

    * `sink` is called with each entry as it is recorded (an in-memory collector). If it
      raises, the exception is caught, `sink_error` says what happened and the sink is
      detached: a fill is booked whole whatever the sink does.
    * `batch_sink` (the audit store) gets the entries in batches from `hand_off`, which the
      shell calls between messages, never inside one. `outbox` holds the entries not
      handed off yet. A failing hand-off records `sink_error` and re-raises, so the shell
      stops trading with the account as it stood after the last whole message.

    `failed` is True once either sink has failed: a trader must open no new position then
    (the audit trail has a hole).
    """

    __slots__ = ("_batch_sink", "_hash", "_sink", "counts", "entries", "outbox", "sink_error")

    def __init__(
        self,
        sink: Callable[[JournalEntry], None] | None = None,
        *,
        batch_sink: Callable[[list[JournalEntry]], None] | None = None,
    ) -> None:
        self._hash = hashlib.sha256()
        self._sink = sink
        self._batch_sink = batch_sink
        self.outbox: list[JournalEntry] = []
        self.sink_error: str | None = None
        self.entries = 0
        self.counts: Counter[str] = Counter()

    @property
    def failed(self) -> bool:
        """Whether a sink has failed (see `sink_error`)."""
        return self.sink_error is not None

    def hand_off(self) -> None:
        """Give the outbox to the batch sink (a no-op without one, or when empty).

        The entries are the sink's from then on, also when it raises (the audit store keeps
        a batch it could not write and retries it). On failure `sink_error` is set and the
        exception re-raised.
        """
        outbox = self.outbox
        if not outbox or self._batch_sink is None:
            return
        batch = outbox[:]
        outbox.clear()  # the same list: a shell may hold a reference to watch its length
        try:
            self._batch_sink(batch)
        except BaseException as exc:
            self._failed(exc)
            raise

    def _failed(self, exc: BaseException) -> None:
        if self.sink_error is None:
            self.sink_error = " ".join(f"{type(exc).__name__}: {exc}".split())

    def record(self, ts_ns: int, kind: str, symbol: str = "", **fields: object) -> JournalEntry:
        """Journal one fact; `fields` keep the order given."""
        # fmt_value inlined for the common exact types (same text, see fmt_value).
        parts = []
        items: ItemsView[str, Any] = fields.items()
        for key, value in items:
            vtype = type(value)
            if vtype is float:
                if value == 1.0:  # about one float in five (full scores): skip formatting
                    text = "1"
                elif _NEG_INF < value < _INF:
                    text = f"{value:.12g}"
                    if text == "-0":
                        text = "0"
                else:
                    text = f'"{fmt_float(value)}"'
            elif vtype is str:
                text = _QUOTED.get(value) or _fmt_str(value)
            elif vtype is bool:
                text = "true" if value else "false"
            else:
                text = fmt_value(value)
            parts.append(f'"{key}":{text}')
        return self.record_detail(ts_ns, kind, symbol, "{" + ",".join(parts) + "}")

    def record_detail(self, ts_ns: int, kind: str, symbol: str, detail: str) -> JournalEntry:
        """Journal one fact whose `detail` the caller wrote: canonical JSON object text,
        exactly what `record` would write for the same fields (the hot decision kinds use
        it to format their fields in one f-string; their tests pin the equality)."""
        seq = self.entries = self.entries + 1
        # JournalEntry(seq, ...) without the frozen dataclass __init__ (object.__setattr__
        # per field, the slowest part of a record): the same slots, set directly.
        entry = _new_entry(JournalEntry)
        _set_seq(entry, seq)
        _set_ts_ns(entry, ts_ns)
        _set_kind(entry, kind)
        _set_symbol(entry, symbol)
        _set_detail(entry, detail)
        self._hash.update(f"{seq}|{ts_ns}|{kind}|{symbol}|{detail}\n".encode())  # entry.line()
        self.counts[kind] += 1
        if self._sink is not None:
            try:
                self._sink(entry)
            except Exception as exc:  # never into the booking that recorded the entry
                self._sink = None
                self._failed(exc)
        if self._batch_sink is not None:
            self.outbox.append(entry)
        return entry

    def digest(self, closing: str = "") -> str:
        """The SHA-256 hex of every entry so far plus `closing` (the run's final figures)."""
        h = self._hash.copy()
        h.update(closing.encode())
        return h.hexdigest()
