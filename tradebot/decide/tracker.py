"""Per-symbol rolling counters for data quality and signals: updates, volume, trade flow.

What: `SymbolTracker` counts, per symbol, level-2 sequences received and expected (for the
completeness check), trade notional and trade count (for the volume regime and the
"volume present" check) and buy/sell taker notional (for momentum), each over its own
rolling window. Quality (`tradebot.decide.quality`) and signals
(`tradebot.decide.signals`) read it about once a second.

Why: those rules need "how much in the last N seconds" and must be cheap to feed, because
`on_sequence` runs for every level-2 message and `on_trade` for every trade.

How: each window is a ring of 1-second buckets (bucket index = `now_ns // 1e9`, the
message's receive time) with running sums. Advancing to a later second zeroes only the
buckets that left the window; a jump of a window length or more clears the ring in one
pass, so the cost is bounded by the ring size, never by the elapsed time. Everything is
counted in integers (notional in micro-USDT), so running sums are exact, expiry subtracts
exactly what was added, and the results do not depend on when the reads happen.

    completeness_updates = received / expected            (1.0 when nothing expected)
    volume               = (notional in the last volume_bucket_s seconds,
                            notional in the window * volume_bucket_s / seconds observed)
    momentum             = (buy - sell) / (buy + sell)     (0.0 when no trades)

Warm start: until the volume window has filled, a caller that knows the contract's 24 h
turnover passes `warm_rate(turnover_24h)` (USDT per second) to `volume`/`signal_reads`.
The seconds of the window not yet observed are then counted at that rate, and the latest
figure is the observed rate over the last min(history, volume_bucket_s) seconds:

    baseline = (notional in the window + warm_per_s * (volume_window_s - history_s))
               * volume_bucket_s / volume_window_s
    latest   = notional in the last volume_bucket_s seconds
               * volume_bucket_s / min(history_s, volume_bucket_s)

so a fresh session can judge its volume within seconds instead of after two buckets, and
the baseline moves smoothly into the purely rolling one as the window fills (at
history_s == volume_window_s both formulas are the same). Warm reads need at least
`WARM_MIN_S` seconds observed; before that, and without a usable 24 h figure, the reads
are the rolling ones.

The exact windows, warm-up and edge cases are in docs/quality.md ("The tracker").
No I/O, no clock, no floats in the running state.
"""

from __future__ import annotations

__all__ = ["DAY_S", "NS_PER_S", "WARM_MIN_S", "SymbolTracker", "warm_rate"]

NS_PER_S = 1_000_000_000
DAY_S = 86_400
# Seconds observed before a warm read: the latest rate over fewer seconds is mostly noise.
WARM_MIN_S = 10
_MICRO = 1_000_000  # notional is counted in micro-USDT (integers)
_MAX_NOTIONAL = 1e15  # a larger, negative, NaN or infinite trade notional is ignored


def warm_rate(turnover_24h: float | None) -> float:
    """The average trade notional per second (USDT/s) of a 24 h turnover; 0.0 (no warm
    baseline) when it is missing, not positive, not finite or above 1e15 USDT a day."""
    if turnover_24h is None or not 0.0 < turnover_24h <= _MAX_NOTIONAL:
        return 0.0
    return turnover_24h / DAY_S


class _Ring:
    """A ring of `size` 1-second buckets with two integer channels, `x` and `y`.

    `head` is the newest bucket index (second) the ring has advanced to; the window is the
    buckets `head - size + 1 .. head`. `sum_x` and `sum_y` are the channels' sums over the
    window. When `recent` > 0, `recent_x` is the sum of `x` over the newest `recent`
    buckets only (`recent` <= `size`).
    """

    __slots__ = ("head", "recent", "recent_x", "size", "sum_x", "sum_y", "x", "y")

    def __init__(self, size: int, recent: int = 0) -> None:
        self.size = size
        self.recent = recent
        self.head = -1  # nothing seen yet; any non-negative second advances the ring
        self.x = [0] * size
        self.y = [0] * size
        self.sum_x = 0
        self.sum_y = 0
        self.recent_x = 0

    def advance(self, second: int) -> None:
        """Move the window forward so that `second` is the newest bucket (no-op if not later)."""
        head = self.head
        if second <= head:
            return
        size = self.size
        x = self.x
        y = self.y
        if second - head >= size:  # the whole window expired: clear it in one pass
            for i in range(size):
                x[i] = 0
                y[i] = 0
            self.sum_x = 0
            self.sum_y = 0
            self.recent_x = 0
        else:
            recent = self.recent
            for s in range(head + 1, second + 1):
                if recent:
                    # Bucket s - recent leaves the recent sub-window. It is still in the ring
                    # (recent <= size); when recent == size it is the slot zeroed just below.
                    self.recent_x -= x[(s - recent) % size]
                slot = s % size
                self.sum_x -= x[slot]
                self.sum_y -= y[slot]
                x[slot] = 0
                y[slot] = 0
        self.head = second

    def add(self, second: int, dx: int, dy: int) -> None:
        """Count `dx` and `dy` in bucket `second`; a bucket already out of the window is dropped."""
        if second > self.head:
            self.advance(second)
        elif second <= self.head - self.size:
            return  # older than the window (a late message after a time jump): not counted
        slot = second % self.size
        self.x[slot] += dx
        self.y[slot] += dy
        self.sum_x += dx
        self.sum_y += dy
        if self.recent and second > self.head - self.recent:
            self.recent_x += dx


class SymbolTracker:
    """Rolling counters for one symbol (see the module docstring and docs/quality.md).

    All times are receive times in integer nanoseconds (`now_ns`). Feeding is O(1), plus,
    on the first message of a new second, zeroing the buckets that left the window (at
    most the ring size). Reads advance the windows to `now_ns` (a read with a `now_ns`
    earlier than the newest message sees the windows as of that message).
    """

    __slots__ = (
        "_first_s",
        "_last_sequence",
        "_momentum",
        "_updates",
        "_volume",
        "completeness_window_s",
        "momentum_window_s",
        "volume_bucket_s",
        "volume_window_s",
    )

    def __init__(
        self,
        *,
        completeness_window_s: int,
        volume_window_s: int,
        volume_bucket_s: int,
        momentum_window_s: int,
    ) -> None:
        """Windows in whole seconds; needs 1 <= volume_bucket_s <= volume_window_s."""
        if completeness_window_s < 1 or momentum_window_s < 1 or volume_bucket_s < 1:
            raise ValueError(
                "tracker windows must be >= 1 s, got "
                f"completeness={completeness_window_s} momentum={momentum_window_s} "
                f"volume_bucket={volume_bucket_s}"
            )
        if volume_window_s < volume_bucket_s:
            raise ValueError(
                f"volume_window_s ({volume_window_s}) must be >= volume_bucket_s "
                f"({volume_bucket_s})"
            )
        self.completeness_window_s = completeness_window_s
        self.volume_window_s = volume_window_s
        self.volume_bucket_s = volume_bucket_s
        self.momentum_window_s = momentum_window_s
        self._updates = _Ring(completeness_window_s)  # x: received, y: expected
        self._volume = _Ring(volume_window_s, volume_bucket_s)  # x: micro-USDT, y: trades
        self._momentum = _Ring(momentum_window_s)  # x: buy micro-USDT, y: sell micro-USDT
        self._last_sequence: int | None = None
        self._first_s = -1  # second of the first message fed (on_sequence or on_trade)

    # --- feeding (hot path) -------------------------------------------------------------

    def on_sequence(self, now_ns: int, sequence: int) -> None:
        """Count one level-2 change (applied by the book or not) by its sequence number.

        Received grows by 1 and expected by `sequence - last_sequence` (the first one
        counts 1); a sequence <= the last one is a duplicate and is ignored.
        """
        last = self._last_sequence
        if last is None:
            expected = 1
        elif sequence > last:
            expected = sequence - last
        else:
            return
        self._last_sequence = sequence
        second = now_ns // NS_PER_S
        if self._first_s < 0:
            self._first_s = second
        ring = self._updates
        if second == ring.head:  # the common case, inlined: same second as the last message
            slot = second % ring.size
            ring.x[slot] += 1
            ring.y[slot] += expected
            ring.sum_x += 1
            ring.sum_y += expected
        else:
            ring.add(second, 1, expected)

    def on_trade(self, now_ns: int, side: int, notional_usdt: float) -> None:
        """Count one trade: `side` +1 buy taker, -1 sell taker (0: volume only, no momentum).

        A notional that is negative, NaN, infinite or above 1e15 is ignored (the trade too).
        """
        if not 0.0 <= notional_usdt <= _MAX_NOTIONAL:
            return
        micro = round(notional_usdt * _MICRO)
        second = now_ns // NS_PER_S
        if self._first_s < 0:
            self._first_s = second
        self._volume.add(second, micro, 1)
        if side > 0:
            self._momentum.add(second, micro, 0)
        elif side < 0:
            self._momentum.add(second, 0, micro)

    # --- reads (about once a second) ------------------------------------------------------

    # Each read advances its ring to now_ns's second first; the `second > ring.head` test
    # skips the call when it would be a no-op (reads at or before the newest message).

    def completeness_updates(self, now_ns: int) -> float:
        """Level-2 updates received / expected over the completeness window (1.0 if none)."""
        ring = self._updates
        second = now_ns // NS_PER_S
        if second > ring.head:
            ring.advance(second)
        if ring.sum_y <= 0:
            return 1.0
        return ring.sum_x / ring.sum_y

    def volume(self, now_ns: int, warm_per_s: float = 0.0) -> tuple[float, float]:
        """(latest, baseline) trade notional in USDT; both 0.0 before the first message.

        latest: notional in the last `volume_bucket_s` seconds. baseline: average notional
        per `volume_bucket_s` seconds over the volume window, i.e. window notional *
        volume_bucket_s / `history_s(now_ns)` (the observed part of the window only).
        With `warm_per_s` > 0 (see `warm_rate`) and the window not yet filled, the warm
        figures of the module docstring (`is_warm` says when they apply).
        """
        ring = self._volume
        second = now_ns // NS_PER_S
        if second > ring.head:
            ring.advance(second)
        history = self.history_s(now_ns)
        bucket = self.volume_bucket_s
        if self.is_warm(now_ns, warm_per_s):
            window = self.volume_window_s
            latest = ring.recent_x * bucket / (min(history, bucket) * _MICRO)
            baseline = (ring.sum_x / _MICRO + warm_per_s * (window - history)) * bucket / window
            return latest, baseline
        if history <= 0:
            return 0.0, 0.0
        latest = ring.recent_x / _MICRO
        baseline = ring.sum_x * bucket / (history * _MICRO)
        return latest, baseline

    def is_warm(self, now_ns: int, warm_per_s: float) -> bool:
        """True when `volume(now_ns, warm_per_s)` gives the warm figures: a usable rate
        (positive, at most 1e15 USDT/s), at least `WARM_MIN_S` seconds observed and the
        volume window not yet filled."""
        history = self.history_s(now_ns)
        return WARM_MIN_S <= history < self.volume_window_s and 0.0 < warm_per_s <= _MAX_NOTIONAL

    def history_s(self, now_ns: int) -> int:
        """Seconds of the volume window observed: from the first message fed, counting the
        current second, capped at `volume_window_s`; 0 before the first message."""
        if self._first_s < 0:
            return 0
        now_s = max(now_ns // NS_PER_S, self._volume.head, self._updates.head)
        return min(now_s - self._first_s + 1, self.volume_window_s)

    def momentum(self, now_ns: int) -> float:
        """(buy - sell) / (buy + sell) taker notional over the momentum window; 0.0 if none."""
        ring = self._momentum
        second = now_ns // NS_PER_S
        if second > ring.head:
            ring.advance(second)
        total = ring.sum_x + ring.sum_y
        if total <= 0:
            return 0.0
        return (ring.sum_x - ring.sum_y) / total

    def signal_reads(
        self, now_ns: int, warm_per_s: float = 0.0
    ) -> tuple[float, float, int, float, bool]:
        """(latest, baseline, history_s, momentum, warm) in one call, for the signal.

        `(*self.volume(now_ns, warm_per_s), self.history_s(now_ns), self.momentum(now_ns),
        self.is_warm(now_ns, warm_per_s))`: the same ring advances and the same arithmetic,
        without five calls.
        """
        second = now_ns // NS_PER_S
        ring = self._volume
        if second > ring.head:
            ring.advance(second)
        # history_s, with the volume ring now at or after `second`
        first = self._first_s
        window = self.volume_window_s
        if first < 0:
            history = 0
        else:
            now_s = ring.head
            updates_head = self._updates.head
            if updates_head > now_s:
                now_s = updates_head
            history = now_s - first + 1
            if history > window:
                history = window
        bucket = self.volume_bucket_s
        warm = WARM_MIN_S <= history < window and 0.0 < warm_per_s <= _MAX_NOTIONAL
        if warm:
            # The unobserved seconds of the window at the 24 h rate (module docstring).
            recent_s = history if history < bucket else bucket
            latest = ring.recent_x * bucket / (recent_s * _MICRO)
            baseline = (ring.sum_x / _MICRO + warm_per_s * (window - history)) * bucket / window
        elif history <= 0:
            latest = baseline = 0.0
        else:
            latest = ring.recent_x / _MICRO
            baseline = ring.sum_x * bucket / (history * _MICRO)
        ring = self._momentum
        if second > ring.head:
            ring.advance(second)
        total = ring.sum_x + ring.sum_y
        momentum = (ring.sum_x - ring.sum_y) / total if total > 0 else 0.0
        return latest, baseline, history, momentum, warm

    def trades_in_window(self, now_ns: int) -> int:
        """Number of trades counted in the volume window."""
        ring = self._volume
        second = now_ns // NS_PER_S
        if second > ring.head:
            ring.advance(second)
        return ring.sum_y

    def __repr__(self) -> str:
        return (
            f"SymbolTracker(last_sequence={self._last_sequence}, "
            f"received={self._updates.sum_x}, expected={self._updates.sum_y}, "
            f"trades={self._volume.sum_y})"
        )
