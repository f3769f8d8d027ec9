"""Replay: drive the engine from a recording on a virtual clock.

The virtual clock is the recording's own `recv_ns`: each record is handed to the same
`Engine` the live bot uses, with its receive time as `now_ns`. At `speed=None` (the
CLI's `--speed max`) nothing sleeps; with `speed=N` the loop sleeps so that recorded
time passes N times faster than real time. Either way the engine sees the same inputs
in the same order, so the digest does not depend on the speed.

`replay()` returns the run report (REPORT.md v1). A bad file raises `RecordingError`
before anything is processed; bad records inside a good file are counted and skipped.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from decimal import getcontext, localcontext, setcontext
from typing import Any

from simulator.recording import RecordingReader
from tradebot.clock import perf_ns, sleep_s
from tradebot.config import Config
from tradebot.engine import Engine
from tradebot.errors import TradebotError
from tradebot.journal import MONEY_CONTEXT, Journal, JournalEntry, SinkError
from tradebot.report import build_report

__all__ = ["ReplayOptions", "replay"]

# Progress is reported by bytes read, every _PROGRESS_NS of wall time at most (the clock is
# read every _PROGRESS_CHECK_EVERY records: a fraction of a microsecond each).
_PROGRESS_NS = 100_000_000
_PROGRESS_CHECK_EVERY = 64
# Journal entries go to the store in batches of about this many, between records.
_HAND_OFF_EVERY = 1_024


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayOptions:
    """How to replay: pacing and where progress and journal entries go."""

    speed: float | None = None  # None: as fast as possible
    progress: Callable[[int, int], None] | None = None  # (bytes read, file size or 0)
    sink: Callable[[JournalEntry], None] | None = None  # each entry as recorded (a collector)
    # The audit store: batches handed off between messages, never inside one (a failing
    # store stops the replay with the account whole).
    batch_sink: Callable[[list[JournalEntry]], None] | None = None
    trading: bool = True  # False: market core only (no decisions), for benchmarks


def replay(
    source: str | os.PathLike[str] | RecordingReader,
    config: Config | None = None,
    options: ReplayOptions | None = None,
) -> dict[str, Any]:
    """Replay the recording at `source` (a path, or a reader already open: a pipe can be
    read only once) and return its report; the reader is closed at the end."""
    opts = options or ReplayOptions()
    journal = Journal(opts.sink, batch_sink=opts.batch_sink)
    started = perf_ns()
    opened = source if isinstance(source, RecordingReader) else RecordingReader(source)
    # Money is Decimal: its arithmetic must not depend on the caller's decimal context.
    with localcontext(MONEY_CONTEXT), opened as reader:
        engine = Engine(config, journal=journal, trading=opts.trading)
        try:
            last_ns = _drive(reader, engine, journal, opts)
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM: what was journaled still goes out
            with suppress(Exception):
                journal.hand_off()
            raise
        engine.finish(last_ns)
        _hand_off(journal, last_ns)
        records = reader.records
        malformed = Counter(reader.malformed)
        for kind, n in reader.unknown_kinds.items():
            malformed[f"unknown_kind:{kind}"] += n
        truncated = reader.truncated
        corruption = _corruption(reader)
        backwards = reader.backwards
        trading = engine.trading_report()  # Decimal money: still inside MONEY_CONTEXT
    wall_s = (perf_ns() - started) / 1e9
    counters = engine.counters()
    malformed.update(counters.pop("malformed_payloads"))  # Counter.update adds
    counters["recv_ns_backwards"] = backwards
    return build_report(
        recording=reader.path,
        records=records,
        malformed=dict(malformed),
        truncated=truncated,
        corruption=corruption,
        counters=counters,
        latency_ns=engine.latency_summary(),
        journal=journal,
        wall_s=wall_s,
        extra=trading,
    )


def _corruption(reader: RecordingReader) -> dict[str, Any] | None:
    """What the report says about invalid objects mid-file (None: there were none)."""
    if not reader.corruption:
        return None
    offset, records = reader.corruption[0]
    regions = len(reader.corruption)
    where = f"an invalid object at byte {offset:,} after {records:,} records"
    if regions > 1:
        where += f" (and {regions - 1:,} more damaged places)"
    return {
        "offset": offset,
        "records_before": records,
        "regions": regions,
        "skipped_bytes": reader.skipped_bytes,
        "message": f"{where}; {reader.skipped_bytes:,} bytes skipped",
    }


def _hand_off(journal: Journal, recv_ns: int) -> None:
    """Hand the journal's outbox to the store; a failure stops the replay here, between
    two messages, so the account is whole (the in-memory state is never half booked)."""
    try:
        journal.hand_off()
    except TradebotError as exc:
        raise SinkError(f"{exc}; the replay stopped at recv_ns {recv_ns}") from exc
    if journal.sink_error is not None:
        raise SinkError(
            f"journal sink failed ({journal.sink_error}); the replay stopped at recv_ns {recv_ns}"
        )


def _drive(reader: RecordingReader, engine: Engine, journal: Journal, opts: ReplayOptions) -> int:
    """Feed every record to the engine, handing the journal's entries to the store between
    records; return the last receive time."""
    progress = opts.progress
    size = _size(reader) if progress is not None else 0
    pace = _Pacer(opts.speed) if opts.speed is not None else None
    caller = getcontext()
    setcontext(engine.money_context)  # the entry points then need no switch per record
    try:
        last_ns = _feed(reader, engine, journal, opts, pace, size)
    finally:
        setcontext(caller)
    return last_ns


def _feed(
    reader: RecordingReader,
    engine: Engine,
    journal: Journal,
    opts: ReplayOptions,
    pace: _Pacer | None,
    size: int,
) -> int:
    on_ws, on_rest, on_conn = engine.on_ws, engine.on_rest, engine.on_conn
    progress = opts.progress
    last_ns = 0
    next_report_ns = perf_ns() + _PROGRESS_NS
    outbox = journal.outbox
    for n, (recv_ns, kind, payload, conn) in enumerate(reader, 1):
        if pace is not None:
            pace.wait_until(recv_ns)
        if kind == "ws":
            on_ws(recv_ns, payload, conn)
        elif kind == "rest":
            on_rest(recv_ns, payload)
        else:
            on_conn(recv_ns, payload)
        last_ns = recv_ns
        if len(outbox) >= _HAND_OFF_EVERY or journal.sink_error is not None:
            _hand_off(journal, recv_ns)
        if progress is not None and n % _PROGRESS_CHECK_EVERY == 0:
            now = perf_ns()
            if now >= next_report_ns:
                next_report_ns = now + _PROGRESS_NS
                progress(reader.tell(), size)
    if progress is not None:
        progress(reader.tell() if size == 0 else size, size)
    return last_ns


def _size(reader: RecordingReader) -> int:
    """The recording's size in bytes; 0 when unknown (a pipe)."""
    st = os.fstat(reader.fileno())
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


class _Pacer:
    """Sleeps so that recorded time advances `speed` times faster than real time."""

    def __init__(self, speed: float) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self.first_recv_ns = 0
        self.first_wall_ns = 0

    def wait_until(self, recv_ns: int) -> None:
        if self.first_recv_ns == 0:
            self.first_recv_ns = recv_ns
            self.first_wall_ns = perf_ns()
            return
        due_ns = self.first_wall_ns + (recv_ns - self.first_recv_ns) / self.speed
        delay_s = (due_ns - perf_ns()) / 1e9
        if delay_s > 0.0005:
            sleep_s(delay_s)
