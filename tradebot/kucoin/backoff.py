"""Reconnect backoff: capped, jittered, exponential; resets after a healthy period; endless.

Pure (time passed in, seconds on any monotonic clock; the random source is injectable so
tests are deterministic). The n-th delay in a row is `min(cap, base * 2**n)` scaled by a
random factor in [0.5, 1], so a fleet of clients dropped together does not reconnect in
step, and no delay exceeds `cap`. A connection that stayed up for `healthy_after` seconds
resets the run: its next drop waits only about `base` again. There is no last attempt.
"""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """How long to wait before the next connection attempt."""

    __slots__ = ("_run", "_up_since", "base", "cap", "healthy_after", "rng", "total_failures")

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 60.0,
        healthy_after: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < base <= cap or healthy_after <= 0:
            raise ValueError(f"need 0 < base {base} <= cap {cap} and healthy_after > 0")
        self.base = base
        self.cap = cap
        self.healthy_after = healthy_after
        self.rng = rng if rng is not None else random.Random()
        self._run = 0  # failures since the last healthy period
        self._up_since: float | None = None
        self.total_failures = 0

    @property
    def failures_in_a_row(self) -> int:
        return self._run

    def up(self, now: float) -> None:
        """The connection is established (welcome received) at `now`."""
        self._up_since = now

    def down(self, now: float) -> float:
        """The connection dropped, or an attempt failed, at `now`: seconds to wait before the
        next attempt."""
        if self._up_since is not None and now - self._up_since >= self.healthy_after:
            self._run = 0
        self._up_since = None
        exponent = min(self._run, 62)  # far past any cap; keeps 2**n a float we can hold
        delay = min(self.cap, self.base * float(2**exponent))
        self._run += 1
        self.total_failures += 1
        return delay * (0.5 + 0.5 * self.rng.random())
