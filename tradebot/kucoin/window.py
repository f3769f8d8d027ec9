"""A sliding-window budget: at most `capacity` units in any `window` seconds.

Pure (time passed in, seconds on any monotonic clock). The REST rate limiter (one per KuCoin
pool, `tradebot.kucoin.rest`) and the WebSocket client message budget
(`tradebot.kucoin.connection`) both use it. A sliding window is stricter than KuCoin's fixed
windows that start at the first request: no `window`-long span of ours holds more than
`capacity`, so neither does any of the server's.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SlidingWindow"]


class SlidingWindow:
    """Units spent in the last `window` seconds, and how long until more may be spent.

    A unit spent at `t` counts for every `now` in `[t, t + window)`.
    """

    __slots__ = ("_spent", "_total", "capacity", "window")

    def __init__(self, capacity: int, window: float) -> None:
        if capacity <= 0 or window <= 0:
            raise ValueError(f"capacity {capacity} and window {window} must be positive")
        self.capacity = capacity
        self.window = window
        self._spent: deque[tuple[float, int]] = deque()
        self._total = 0

    def _expire(self, now: float) -> None:
        spent = self._spent
        while spent and spent[0][0] + self.window <= now:
            self._total -= spent.popleft()[1]

    def used(self, now: float) -> int:
        """Units spent in the window ending at `now`."""
        self._expire(now)
        return self._total

    def wait(self, now: float, weight: int = 1, limit: int | None = None) -> float:
        """Seconds from `now` until `weight` units fit under `limit` (default `capacity`); 0.0
        when they fit now. A weight that can never fit is our mistake: ValueError."""
        cap = self.capacity if limit is None else limit
        if weight > cap or weight <= 0:
            raise ValueError(f"weight {weight} can never fit a budget of {cap}")
        self._expire(now)
        excess = self._total + weight - cap
        if excess <= 0:
            return 0.0
        for t, w in self._spent:
            excess -= w
            if excess <= 0:
                return max(t + self.window - now, 0.0)
        raise AssertionError("unreachable: the spent units cover any excess")  # pragma: no cover

    def spend(self, now: float, weight: int = 1) -> None:
        """Record `weight` units spent at `now` (times must not go backwards)."""
        self._expire(now)
        self._spent.append((now, weight))
        self._total += weight
