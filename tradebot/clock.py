"""The clocks tradebot reads, in one place, so the core never reads one itself.

The decision core takes `now_ns` from the message it is handling (receive time).
The shells (live, replay, benchmarks) read the clocks below and pass values in:
`wall_ns` for receive times in live, `perf_ns` for measuring processing latency
(never part of a decision or a digest), `sleep_s` for paced replay.
"""

from __future__ import annotations

import time

__all__ = ["perf_ns", "sleep_s", "wall_ns"]

perf_ns = time.perf_counter_ns
wall_ns = time.time_ns
sleep_s = time.sleep
