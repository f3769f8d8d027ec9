"""A small log-linear latency histogram for processing times in nanoseconds.

Recording is a few integer operations and one list increment, cheap enough to run once
per message. Values below 32 ns are exact; above, each power of two is split into 16
buckets, so a reported percentile is the upper edge of its bucket: never more than
6.25 % above the true value, never below it. `max_ns` is exact.
"""

from __future__ import annotations

__all__ = ["LatencyHistogram"]

_SUB_BITS = 4
_SUB = 1 << _SUB_BITS  # 16 buckets per power of two
_LINEAR = _SUB * 2  # values below 32 get a bucket each


def _upper_edge(index: int) -> int:
    """The largest value that lands in bucket `index` (see `LatencyHistogram.record`)."""
    if index < _LINEAR:
        return index
    shift = (index >> _SUB_BITS) - 1
    sub = (index & (_SUB - 1)) + _SUB
    return ((sub + 1) << shift) - 1


class LatencyHistogram:
    """Counts of durations in log-linear buckets; percentiles in ns."""

    __slots__ = ("buckets", "max_ns")

    def __init__(self) -> None:
        self.buckets: list[int] = [0] * 1024  # covers every 63-bit duration
        self.max_ns = 0

    @property
    def count(self) -> int:
        """Durations recorded."""
        return sum(self.buckets)

    def record(self, ns: int) -> None:
        """Add one duration (negative values count as 0).

        From 32 on, `shift` drops all but the top 5 bits, so `ns >> shift` is in [16, 31]
        and `(shift << 4) + (ns >> shift)` numbers the buckets contiguously from 32.
        """
        if ns >= _LINEAR:
            shift = ns.bit_length() - 5
            self.buckets[(shift << 4) + (ns >> shift)] += 1
            if ns > self.max_ns:
                self.max_ns = ns
        else:
            self.buckets[ns if ns > 0 else 0] += 1
            if ns > self.max_ns:
                self.max_ns = ns

    def percentile(self, q: float) -> int:
        """The upper bucket edge at or below which a fraction `q` of the durations lie."""
        count = self.count
        if count == 0:
            return 0
        rank = max(1, -(-int(q * count * 1_000_000) // 1_000_000))
        seen = 0
        for index, n in enumerate(self.buckets):
            seen += n
            if seen >= rank:
                return min(_upper_edge(index), self.max_ns)
        return self.max_ns

    def summary(self) -> dict[str, int]:
        """`{count, p50, p99, max}` in ns."""
        return {
            "count": self.count,
            "p50": self.percentile(0.50),
            "p99": self.percentile(0.99),
            "max": self.max_ns,
        }
