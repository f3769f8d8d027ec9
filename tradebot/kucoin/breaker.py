"""A circuit breaker for one REST endpoint: stop calling what keeps failing, probe it later.

Pure (time passed in). Closed: calls go through and consecutive failures are counted; the
`threshold`-th opens the circuit. Open: calls are refused until `cool_down` seconds have
passed, then one probe is let through (half-open). The probe's success closes the circuit,
its failure opens it again for another cool-down. A failure is the endpoint not working
(5xx, timeout, connection error); a KuCoin error answer or a 429 is the endpoint working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["BreakerState", "CircuitBreaker"]

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerState:
    """What ops sees of one breaker."""

    state: State
    consecutive_failures: int
    opened_at: float | None  # when it last opened, on the client's monotonic clock
    times_opened: int


class CircuitBreaker:
    """Allow, or refuse, calls to one endpoint."""

    __slots__ = ("_failures", "_opened", "_opened_at", "_probing", "cool_down", "threshold")

    def __init__(self, threshold: int = 5, cool_down: float = 30.0) -> None:
        if threshold < 1 or cool_down <= 0:
            raise ValueError(f"threshold {threshold} must be >= 1, cool_down {cool_down} > 0")
        self.threshold = threshold
        self.cool_down = cool_down
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._opened = 0

    def state(self, now: float) -> State:
        """closed, open, or half_open (cool-down over: a probe may go, or is under way)."""
        if self._opened_at is None:
            return "closed"
        if self._probing or now >= self._opened_at + self.cool_down:
            return "half_open"
        return "open"

    def allow(self, now: float) -> bool:
        """Whether a call may go now; in half-open, only the first caller gets the probe."""
        state = self.state(now)
        if state == "closed":
            return True
        if state == "half_open" and not self._probing:
            self._probing = True
            return True
        return False

    def retry_in(self, now: float) -> float:
        """Seconds until the next probe may go (0.0 when calls are allowed now)."""
        if self._opened_at is None or self._probing:
            return 0.0
        return max(self._opened_at + self.cool_down - now, 0.0)

    def success(self) -> None:
        """The call got a working answer: close the circuit."""
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def failure(self, now: float) -> None:
        """The call failed: count it; open on the threshold, or again after a failed probe."""
        self._failures += 1
        if self._probing or (self._opened_at is None and self._failures >= self.threshold):
            self._opened_at = now
            self._opened += 1
        self._probing = False

    def release(self) -> None:
        """The call ended with no verdict (cancelled): give the probe back."""
        self._probing = False

    def snapshot(self, now: float) -> BreakerState:
        return BreakerState(self.state(now), self._failures, self._opened_at, self._opened)
