"""Sweep scaling: the same 8 replay jobs on a LocalCluster of 1 worker, then of 2.

    python benchmarks/bench_sweep.py [--symbols 50] [--minutes 34] [--seed 7] [--jobs 8]

Uses the benchmark recording of bench_replay.py (generated once, cached under benchmarks/)
and a grid of `--jobs` values of risk.max_position_fraction, run through the production
path (`tradebot.sweep.plan_jobs`, `start_client`, `run_jobs`) into a fresh output
directory each time. The workers are started and have imported the replay code before
the clock starts, so the figures are job time, not process start-up. Prints the wall
time per worker count, the speed-up over 1 worker (target on a 2-core machine: >= 1.7x)
checks that every job's digest is the same whichever worker count ran it, and (unless
`--no-ceiling`) times 2 plain replay processes side by side against 1 alone: the most
any scheduler can get from this machine's cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from distributed import get_task_stream

from simulator.synth import generate
from tradebot import sweep as sw

HERE = Path(__file__).parent


def _warm() -> bool:
    import simulator.replay  # noqa: F401  (the import a first job would otherwise pay)

    return True


def timed_sweep(jobs: list[sw.Job], workers: int) -> tuple[float, dict[str, str]]:
    with sw.start_client(None, workers) as client, tempfile.TemporaryDirectory() as tmp:
        client.wait_for_workers(workers)
        client.run(_warm)
        with get_task_stream(client) as stream:
            started = time.perf_counter()
            run = sw.run_jobs(client, jobs, Path(tmp), retries=0)
            elapsed = time.perf_counter() - started
        per_worker = Counter(t["worker"] for t in stream.data)
        print(f"  jobs per worker: {sorted(per_worker.values(), reverse=True)}")
    failed = [r.error for r in run.results if r.report is None]
    if failed:
        raise SystemExit(f"{len(failed)} jobs failed: {failed[0]}")
    digests: dict[str, str] = {}
    for r in run.results:
        report: Any = r.report
        digests[r.job.key] = report["digest"]
    return elapsed, digests


def process_ceiling(recording: Path) -> float:
    """Throughput of 2 plain replay processes side by side over 1 alone, no Dask: what
    this machine's cores allow two jobs at once."""
    code = f"from simulator.replay import replay; replay({str(recording)!r})"
    cmd = [sys.executable, "-c", code]
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    one = time.perf_counter() - started
    started = time.perf_counter()
    procs = [subprocess.Popen(cmd) for _ in range(2)]
    for proc in procs:
        proc.wait()
    two = time.perf_counter() - started
    return 2 * one / two


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=50)
    ap.add_argument("--minutes", type=float, default=34.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument(
        "--no-ceiling", action="store_true", help="skip timing 2 plain replay processes"
    )
    args = ap.parse_args()

    path = (
        HERE / f"bench-{args.symbols}x{args.minutes:g}m-seed{args.seed}-rate{args.rate:g}.msgpack"
    )
    if not path.exists():
        print(f"generating {path.name} ...", file=sys.stderr)
        generate(path, symbols=args.symbols, minutes=args.minutes, seed=args.seed, rate=args.rate)
    fractions = tuple(round(0.05 * (i + 1), 2) for i in range(args.jobs))
    grid = sw.Grid(("risk.max_position_fraction",), (fractions,), "bench")
    jobs = sw.plan_jobs([str(path)], grid)
    print(f"{len(jobs)} jobs on {path.name} ({path.stat().st_size / 1e6:.0f} MB)")

    print(f"load average before: {os.getloadavg()[0]:.2f} (other load skews the figures)")
    t1, d1 = timed_sweep(jobs, 1)
    print(f"1 worker    {t1:7.1f} s  ({t1 / len(jobs):.1f} s per job)")
    t2, d2 = timed_sweep(jobs, 2)
    print(f"2 workers   {t2:7.1f} s  ({t2 / len(jobs):.1f} s per job)")
    print(f"speed-up    {t1 / t2:.2f}x  (target >= 1.7x on 2 cores)")
    if not args.no_ceiling:
        ceiling = process_ceiling(path)
        print(f"ceiling     {ceiling:.2f}x  (2 plain replay processes vs 1, no Dask)")
    if d1 != d2:
        print("digests differ between the 1- and 2-worker runs", file=sys.stderr)
        return 1
    print(f"digests     identical for all {len(jobs)} jobs in both runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
