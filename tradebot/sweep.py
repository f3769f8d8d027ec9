"""`tradebot sweep`: replay recordings under a grid of configurations, on Dask.

A grid file (TOML) names config keys and the values to try::

    risk.max_position_fraction = [0.1, 0.2]
    validation.min_confidence = [0.7, 0.75, 0.8]

Every (recording, grid point) pair is one job: the same `simulator.replay.replay` that
`tradebot replay` runs, in-process on a Dask worker, with the base config (`--config`,
`--set`) plus the point's values applied as `--set` overrides would be. So a job's digest
equals that of `tradebot replay REC --config BASE --set KEY=VALUE ...`.

A job is keyed by the SHA-256 of its recording's content and its effective config (TOML).
Its report (REPORT v1 JSON, plus a ``sweep`` map: key, recording hash, grid values) goes to
``OUT/<stem>-<key>.report.json`` beside ``OUT/<stem>-<key>.config.toml``; a failed job
leaves ``OUT/<stem>-<key>.error.txt`` instead. A rerun with the same OUT skips the jobs
whose report is there. The summary table is printed sorted by a metric and written to
``OUT/summary.csv``.

Bad input (grid file, key, value, recording, out dir) raises `SweepError` (or the
`ConfigError` / `RecordingError` that names it), one line, before any job starts.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import os
import tomllib
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import distributed

from tradebot.config import Config, load_config, to_toml
from tradebot.errors import ConfigError, TradebotError

__all__ = [
    "MAX_JOBS",
    "METRICS",
    "Grid",
    "Job",
    "JobResult",
    "SweepError",
    "SweepRun",
    "load_grid",
    "plan_jobs",
    "render_table",
    "replay_job",
    "result_rows",
    "run_jobs",
    "sort_rows",
    "start_client",
    "table_columns",
    "write_csv",
]

GridValue = bool | int | float
MAX_JOBS: Final = 100_000
SUMMARY_CSV: Final = "summary.csv"

# Sortable metrics: (row column, best first is descending).
METRICS: Final[dict[str, tuple[str, bool]]] = {
    "pnl": ("pnl", True),
    "fees": ("fees", False),
    "drawdown": ("max_drawdown", False),
    "win_rate": ("win_rate", True),
    "orders": ("orders", True),
    "fills": ("fills", True),
    "messages_per_s": ("messages_per_s", True),
}
_METRIC_COLUMNS: Final = (
    "digest",
    "orders",
    "fills",
    "pnl",
    "fees",
    "max_drawdown",
    "win_rate",
    "messages_per_s",
)


class SweepError(TradebotError):
    """A bad grid, recording list or output directory; the message is one line."""


# --- the grid -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grid:
    """Config keys (``section.key``) in file order and the values to try for each."""

    keys: tuple[str, ...]
    values: tuple[tuple[GridValue, ...], ...]
    source: str = ""  # the grid file, for messages

    def points(self) -> Iterator[dict[str, GridValue]]:
        """Every combination, the last key varying fastest."""
        for combo in itertools.product(*self.values):
            yield dict(zip(self.keys, combo, strict=True))

    @property
    def size(self) -> int:
        return math.prod(len(v) for v in self.values)


def _grid_value(where: str, value: object) -> GridValue:
    if isinstance(value, bool | int | float):
        return value
    raise SweepError(f"{where}: expected numbers or true/false, got {value!r}")


def load_grid(path: str | os.PathLike[str]) -> Grid:
    """Read and shape-check a grid file (values are checked against the config later)."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepError(f"{p}: grid file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(f"{p}: cannot read grid file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{p}: not valid TOML ({exc})") from None
    keys: list[str] = []
    values: list[tuple[GridValue, ...]] = []
    for section, table in data.items():
        if not isinstance(table, dict):
            raise SweepError(
                f"{p}: {section}: expected section.key = [values], e.g. risk.max_open_positions"
                " = [1, 2]"
            )
        for name, raw in table.items():
            key = f"{section}.{name}"
            where = f"{p}: {key}"
            if not isinstance(raw, list):
                raw = [raw]  # one value: a fixed override for the whole sweep
            if not raw:
                raise SweepError(f"{where}: expected at least one value, got []")
            checked = tuple(_grid_value(where, v) for v in raw)
            seen: set[str] = set()
            for v in checked:
                text = _value_text(v)
                if text in seen:
                    raise SweepError(f"{where}: value {text} is listed twice")
                seen.add(text)
            keys.append(key)
            values.append(checked)
    if not keys:
        raise SweepError(f"{p}: the grid names no keys; e.g. risk.max_open_positions = [1, 2]")
    grid = Grid(tuple(keys), tuple(values), str(p))
    if grid.size > MAX_JOBS:
        raise SweepError(f"{p}: the grid has {grid.size:,} points; at most {MAX_JOBS:,}")
    return grid


def _value_text(value: GridValue) -> str:
    """A grid value as `--set` text (and as shown in the table)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


# --- jobs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    """One replay: a recording under one grid point's configuration."""

    recording: str  # the path as given; workers must see the same path
    recording_sha256: str
    point: tuple[tuple[str, GridValue], ...]
    config: Config = field(repr=False)

    @property
    def key(self) -> str:
        """Recording content + effective config: the same pair gives the same key."""
        text = f"{self.recording_sha256}\n{to_toml(self.config)}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def name(self) -> str:
        return f"{Path(self.recording).stem}-{self.key}"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's content, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _check_recording(path: str) -> str:
    """Open the header (a bad file fails here, before any job) and hash the content."""
    from simulator.recording import RecordingReader

    RecordingReader(path).close()
    try:
        return file_sha256(path)
    except OSError as exc:
        raise SweepError(f"{path}: cannot read the recording ({exc.strerror})") from None


def plan_jobs(
    recordings: Sequence[str],
    grid: Grid,
    base_config: str | Path | None = None,
    base_overrides: Sequence[str] = (),
) -> list[Job]:
    """Every (recording, grid point) job, every config validated before any job runs.

    A grid point is applied after the base config and its `--set` overrides, exactly as
    further `--set KEY=VALUE` flags; a bad value raises ConfigError naming the key.
    """
    if not recordings:
        raise SweepError("no recordings given")
    if len(recordings) * grid.size > MAX_JOBS:
        raise SweepError(
            f"{len(recordings)} recordings x {grid.size:,} grid points is more than"
            f" {MAX_JOBS:,} jobs"
        )
    base_overrides = tuple(base_overrides)
    load_config(base_config, base_overrides)  # the base alone: its errors name its file
    configs: list[tuple[tuple[tuple[str, GridValue], ...], Config]] = []
    for point in grid.points():
        sets = [f"{k}={_value_text(v)}" for k, v in point.items()]
        try:
            config = load_config(base_config, [*base_overrides, *sets])
        except ConfigError as exc:
            where = f"{grid.source}: " if grid.source else ""
            raise ConfigError(f"{where}{exc}") from None
        configs.append((tuple(point.items()), config))
    hashes = {path: _check_recording(path) for path in dict.fromkeys(recordings)}
    jobs = [Job(rec, hashes[rec], point, cfg) for rec in recordings for point, cfg in configs]
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise SweepError("the same recording and configuration appear twice in this sweep")
    return jobs


def replay_job(recording: str, config: Config) -> dict[str, Any]:
    """Run one job (on a worker): the replay `tradebot replay` runs, returning its report."""
    from simulator.replay import ReplayOptions, replay

    return replay(recording, config, ReplayOptions())


# --- results on disk ------------------------------------------------------------------------


def check_out_dir(out: Path, inputs: Iterable[str | os.PathLike[str]]) -> None:
    """OUT must be a directory (created if missing) that holds none of the inputs."""
    if out.exists() and not out.is_dir():
        raise SweepError(f"--out {out}: exists and is not a directory")
    resolved = out.resolve()
    for item in inputs:
        p = Path(item).resolve()
        if p.parent == resolved and (p.name == SUMMARY_CSV or p.name.endswith(".report.json")):
            raise SweepError(f"--out {out}: the sweep would overwrite its input {item}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"--out {out}: cannot create the directory ({exc.strerror})") from None


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise SweepError(f"{path}: cannot write ({exc.strerror})") from None


def load_done(out: Path, job: Job) -> dict[str, Any] | None:
    """The stored report of a job already done in OUT, or None (missing or unreadable)."""
    try:
        report = json.loads((out / f"{job.name}.report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or not isinstance(report.get("digest"), str):
        return None
    sweep = report.get("sweep")
    if not isinstance(sweep, dict) or sweep.get("key") != job.key:
        return None
    return report


def save_report(out: Path, job: Job, report: dict[str, Any]) -> dict[str, Any]:
    """Write the job's config and report (the report last: its presence means done)."""
    report = dict(report)
    report["sweep"] = {
        "key": job.key,
        "recording_sha256": job.recording_sha256,
        "grid": dict(job.point),
    }
    _atomic_write(out / f"{job.name}.config.toml", to_toml(job.config))
    _atomic_write(out / f"{job.name}.report.json", json.dumps(report, indent=2) + "\n")
    (out / f"{job.name}.error.txt").unlink(missing_ok=True)
    return report


def save_error(out: Path, job: Job, error: str) -> None:
    _atomic_write(out / f"{job.name}.config.toml", to_toml(job.config))
    _atomic_write(out / f"{job.name}.error.txt", error + "\n")


# --- running on Dask ------------------------------------------------------------------------


@dataclass(slots=True)
class JobResult:
    """What became of a job: a report, an error, or neither (cancelled)."""

    job: Job
    report: dict[str, Any] | None = None
    error: str | None = None
    skipped: bool = False  # done by an earlier run with the same OUT

    @property
    def status(self) -> str:
        if self.report is not None:
            return "done" if not self.skipped else "done (earlier run)"
        return "failed" if self.error is not None else "cancelled"


@dataclass(slots=True)
class SweepRun:
    """All jobs' results, in plan order, and whether Ctrl-C stopped the sweep."""

    results: list[JobResult]
    interrupted: bool = False


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def start_client(
    scheduler: str | None, workers: int | None, *, timeout: str = "10s"
) -> Iterator[Any]:
    """A Dask client: of the cluster at `scheduler`, else of a new LocalCluster with
    `workers` single-threaded worker processes (default: the machine's cores)."""
    import logging
    import signal

    import distributed

    dd: Any = distributed  # distributed's API is untyped

    if scheduler is not None:
        try:
            client = dd.Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SweepError(
                f"--scheduler {scheduler}: cannot connect ({_one_line(exc)})"
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    n = workers if workers is not None else len(os.sched_getaffinity(0))
    # The worker processes ignore SIGINT: Ctrl-C reaches the whole process group, and
    # only this process should act on it (cancel, write what finished).
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        cluster = dd.LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.CRITICAL,  # a failed job is reported in the table, once
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        with dd.Client(cluster) as client:
            client.register_plugin(_IgnoreSigint())  # restarted workers too
            yield client
    finally:
        cluster.close()


class _IgnoreSigint(distributed.WorkerPlugin):
    """Local workers leave Ctrl-C to the sweep process, even after a restart."""

    name = "tradebot-ignore-sigint"

    def setup(self, worker: Any) -> None:
        import signal

        with suppress(ValueError):  # not the main thread: nothing to do
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def dashboard_link(client: Any) -> str | None:
    """The scheduler's dashboard address, when it serves one."""
    try:
        services = client.scheduler_info().get("services", {})
    except (OSError, TimeoutError):
        return None
    return str(client.dashboard_link) if "dashboard" in services else None


def run_jobs(
    client: Any,
    jobs: Sequence[Job],
    out: Path,
    *,
    retries: int = 1,
    runner: Callable[[str, Config], dict[str, Any]] = replay_job,
    on_result: Callable[[JobResult], None] | None = None,
) -> SweepRun:
    """Run the jobs not done yet in OUT, writing each result as it arrives.

    A job that raises is recorded with its error; the others go on. A job whose worker
    dies is rescheduled by Dask (up to ``distributed.scheduler.allowed-failures`` times,
    then it fails with KilledWorker); one that raises is retried `retries` times first.
    Ctrl-C cancels what is still outstanding; what finished is already written.
    """
    import distributed

    as_completed: Any = distributed.as_completed

    results = [JobResult(job) for job in jobs]
    futures: dict[Any, JobResult] = {}
    try:
        for result in results:
            done = load_done(out, result.job)
            if done is not None:
                result.report, result.skipped = done, True
                continue
            future = client.submit(
                runner,
                result.job.recording,
                result.job.config,
                key=f"replay-{result.job.name}-{uuid.uuid4().hex[:8]}",  # a rerun: a new task
                retries=retries,
                pure=False,
            )
            futures[future] = result
        for future in as_completed(list(futures)):
            result = futures[future]
            exc = future.exception() if future.status != "cancelled" else None
            if future.status == "cancelled":
                result.error = "cancelled by the scheduler"
                save_error(out, result.job, result.error)
            elif exc is None:
                result.report = save_report(out, result.job, future.result())
            else:
                result.error = _one_line(exc)
                save_error(out, result.job, result.error)
            if on_result is not None:
                on_result(result)
    except KeyboardInterrupt:
        client.cancel([f for f in futures if not f.done()])
        return SweepRun(results, interrupted=True)
    return SweepRun(results)


# --- the table ------------------------------------------------------------------------------


def table_columns(grid_keys: Sequence[str]) -> list[str]:
    return ["recording", *grid_keys, *_METRIC_COLUMNS, "status"]


def result_rows(results: Iterable[JobResult]) -> list[dict[str, Any]]:
    """One row per job: recording, grid values, the report's metrics, status or error."""
    rows = []
    for r in results:
        row: dict[str, Any] = {"recording": r.job.recording, **dict(r.job.point)}
        rep = r.report or {}
        pnl = rep.get("pnl")
        row.update(
            digest=rep.get("digest"),
            orders=rep.get("orders"),
            fills=rep.get("fills"),
            pnl=pnl.get("realized") if isinstance(pnl, dict) else None,
            fees=rep.get("fees"),
            max_drawdown=rep.get("max_drawdown"),
            win_rate=rep.get("win_rate"),
            messages_per_s=rep.get("messages_per_s"),
            status=r.status if r.error is None else f"failed: {r.error}",
        )
        rows.append(row)
    return rows


def sort_rows(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Best first by `metric` (a METRICS name); rows without a value go last."""
    column, descending = METRICS[metric]

    def key(row: dict[str, Any]) -> tuple[int, float]:
        value = row.get(column)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return (1, 0.0)
        return (0, -float(value) if descending else float(value))

    return sorted(rows, key=key)  # stable: ties keep plan order


def _cell(column: str, value: Any, *, short: bool) -> str:
    if value is None:
        return "" if not short else "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if column == "digest" and short:
        return str(value)[:12]
    if column in ("max_drawdown", "win_rate") and isinstance(value, int | float):
        return f"{value * 100:.2f}%" if short else repr(float(value))
    if column in ("pnl", "fees") and isinstance(value, int | float):
        return f"{value:+.4f}" if short and column == "pnl" else f"{value:.4f}"
    if column == "messages_per_s" and isinstance(value, int | float):
        return f"{value:,.0f}" if short else repr(float(value))
    if column == "recording" and short:
        return Path(str(value)).name
    return repr(value) if isinstance(value, float) else str(value)


def render_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """The summary as an aligned text table (short digest, percentages, 4-decimal USDT)."""
    cells = [[_cell(c, row.get(c), short=True) for c in columns] for row in rows]
    widths = [max([len(c), *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)]
    text_cols = {"recording", "digest", "status"}

    def fmt(values: Sequence[str]) -> str:
        parts = [
            v.ljust(w) if c in text_cols else v.rjust(w)
            for c, v, w in zip(columns, values, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([fmt(columns), *(fmt(line) for line in cells)])


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """The summary as CSV: full digests, raw numbers (fractions, USDT)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_cell(c, row.get(c), short=False) for c in columns])
        os.replace(tmp, path)
    except OSError as exc:
        raise SweepError(f"{path}: cannot write ({exc.strerror})") from None
