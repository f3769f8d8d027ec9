"""The latency histogram: percentiles are bucket upper edges, never below the truth."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from tradebot.latency import LatencyHistogram


def test_empty() -> None:
    assert LatencyHistogram().summary() == {"count": 0, "p50": 0, "p99": 0, "max": 0}


def test_small_values_are_exact() -> None:
    h = LatencyHistogram()
    for ns in range(1, 11):
        h.record(ns)
    assert h.percentile(0.5) == 5 and h.percentile(0.99) == 10 and h.max_ns == 10


@given(st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=300))
def test_percentiles_bound_the_truth_within_one_sixteenth(values: list[int]) -> None:
    h = LatencyHistogram()
    for v in values:
        h.record(v)
    ordered = sorted(values)
    for q in (0.5, 0.9, 0.99, 1.0):
        true = ordered[math.ceil(q * len(ordered)) - 1]
        got = h.percentile(q)
        assert true <= got <= true + true / 16 + 1
    assert h.count == len(values) and h.max_ns == ordered[-1]


def test_negative_counts_as_zero() -> None:
    h = LatencyHistogram()
    h.record(-5)
    assert h.percentile(1.0) == 0 and h.count == 1
