"""Reconnect backoff: grows, is capped and jittered, resets after a healthy period, never ends."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from tradebot.kucoin.backoff import Backoff


def test_delays_double_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    backoff = Backoff(base=1.0, cap=30.0, rng=random.Random(1))
    delays = [backoff.down(0.0) for _ in range(10)]
    for n, delay in enumerate(delays):
        nominal = min(30.0, 2.0**n)
        assert nominal / 2 <= delay <= nominal
    assert max(delays) <= 30.0 and backoff.failures_in_a_row == 10


def test_same_seed_same_delays() -> None:
    one = [Backoff(rng=random.Random(5)).down(0.0) for _ in range(3)]
    two = [Backoff(rng=random.Random(5)).down(0.0) for _ in range(3)]
    assert one == two and len(set(one)) == 1  # fresh backoffs: the first delay each time


def test_a_healthy_period_resets_the_run_a_short_one_does_not() -> None:
    backoff = Backoff(base=1.0, cap=60.0, healthy_after=60.0, rng=random.Random(2))
    for _ in range(5):
        backoff.down(0.0)
    backoff.up(100.0)
    assert backoff.down(130.0) >= 16.0  # up only 30 s: the run goes on (2**5 / 2)
    backoff.up(200.0)
    assert backoff.down(260.0) <= 1.0  # up 60 s: back to base
    assert backoff.failures_in_a_row == 1 and backoff.total_failures == 7


@given(st.integers(1, 5000), st.floats(0.01, 10), st.floats(10, 600))
def test_never_gives_up_and_never_exceeds_the_cap(n: int, base: float, cap: float) -> None:
    backoff = Backoff(base=base, cap=cap, rng=random.Random(n))
    for _ in range(n):
        delay = backoff.down(0.0)
        assert 0 < delay <= cap


def test_bad_settings_are_our_mistake() -> None:
    with pytest.raises(ValueError):
        Backoff(base=5.0, cap=1.0)


async def test_a_retry_loop_on_the_trio_clock_reaches_the_cap(autojump_clock: Any) -> None:
    backoff = Backoff(base=0.5, cap=8.0, rng=random.Random(3))
    attempts: list[float] = []
    while len(attempts) < 12:
        attempts.append(trio.current_time())
        await trio.sleep(backoff.down(trio.current_time()))
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] <= 0.5 and 4.0 <= gaps[-1] <= 8.0
