"""Faults the simulated exchange injects: ``KIND@SECONDS`` specs and their timing (sans-IO).

=============== ==============================================================================
``drop``         close every socket abruptly: no close frame (the client sees 1006)
``silence``      every open socket stops answering pings and sending data (it stays open)
``outage:S``     a drop, then new WebSocket connections are refused for S seconds
``malformed``    send a frame that is not JSON to every socket; recorded malformed frames
                 are sent only once this fault has fired
``gap[:SYM]``    the next few level2 changes of SYM (default: the first open symbol) are
                 applied to the book but not sent, so its stream skips sequence numbers
``rest-429[:S]`` REST answers HTTP 429 / ``429000`` for S seconds (default 5)
``rest-5xx[:S]`` REST answers HTTP 503 / ``500000`` for S seconds (default 5)
``rest-timeout[:S]`` REST requests get no answer for S seconds (default 5)
``list[:SYM]``   a new contract (named SYM, default NEW<n>...) appears in contracts/active and
                 trades like the first open symbol
``delist[:SYM]`` SYM's status (default: the last open symbol) leaves Open; its data stops
=============== ==============================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

__all__ = ["GAP_SKIP", "KINDS", "REST_FAULT_S", "Fault", "RestFaults", "parse_fault"]

KINDS: Final = (
    "drop",
    "silence",
    "outage",
    "malformed",
    "gap",
    "rest-429",
    "rest-5xx",
    "rest-timeout",
    "list",
    "delist",
)
REST_FAULT_S: Final = 5.0
GAP_SKIP: Final = 3
_SECONDS_ARG: Final = frozenset({"outage", "rest-429", "rest-5xx", "rest-timeout"})
_SYMBOL_ARG: Final = frozenset({"gap", "list", "delist"})


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault: its kind, when it fires (s after start), and its argument."""

    kind: str
    at_s: float
    seconds: float | None = None  # outage and rest-* faults: how long
    symbol: str | None = None  # gap, list, delist: which symbol

    def __str__(self) -> str:
        if self.symbol is not None:
            return f"{self.kind}:{self.symbol}@{self.at_s:g}"
        if self.seconds is not None:
            return f"{self.kind}:{self.seconds:g}@{self.at_s:g}"
        return f"{self.kind}@{self.at_s:g}"


def _number(text: str, what: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"--fault {spec!r}: {what} must be a number of seconds >= 0")
    return value


def parse_fault(spec: str) -> Fault:
    """Parse ``KIND[:ARG]@SECONDS``; ValueError with a one-line message when it is bad."""
    head, at, when = spec.rpartition("@")
    if not at or not head:
        raise ValueError(f"--fault {spec!r}: expected KIND@SECONDS, e.g. drop@30")
    at_s = _number(when, "the time after @", spec)
    kind, colon, arg = head.partition(":")
    if kind not in KINDS:
        raise ValueError(f"--fault {spec!r}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    if kind == "outage" and not colon:
        raise ValueError(f"--fault {spec!r}: outage needs its length, e.g. outage:10@30")
    if colon and kind not in _SECONDS_ARG | _SYMBOL_ARG:
        raise ValueError(f"--fault {spec!r}: {kind} takes no argument")
    if colon and not arg:
        raise ValueError(f"--fault {spec!r}: empty argument after ':'")
    if kind in _SECONDS_ARG:
        seconds = _number(arg, "the length", spec) if colon else REST_FAULT_S
        return Fault(kind, at_s, seconds=seconds)
    return Fault(kind, at_s, symbol=arg if colon else None)


class RestFaults:
    """Which REST fault, if any, is in force at a time."""

    def __init__(self) -> None:
        self._windows: list[tuple[float, float, str]] = []  # (start, end, kind)

    def begin(self, kind: str, now_s: float, seconds: float) -> None:
        self._windows.append((now_s, now_s + seconds, kind))

    def active(self, now_s: float) -> tuple[str, float] | None:
        """(kind, seconds left) of the newest window covering `now_s`, or None."""
        self._windows = [w for w in self._windows if w[1] > now_s]
        for start, end, kind in reversed(self._windows):
            if start <= now_s:
                return kind, end - now_s
        return None
