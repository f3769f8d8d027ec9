"""`tradebot sweep`: grid parsing, job keys, results on disk, faults and the CLI, on a real
Dask LocalCluster of 2 small worker processes (shared by the module's tests)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.synth import generate
from tradebot import sweep as sw
from tradebot.cli import main
from tradebot.config import Config
from tradebot.errors import ConfigError, RecordingError

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "recordings" / "sample.msgpack"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with sw.start_client(None, 2) as c:
        yield c


@pytest.fixture(scope="module")
def short_rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "short.msgpack"
    generate(path, symbols=4, minutes=1.0, seed=7, rate=4)
    return path


def _grid(tmp_path: Path, text: str, name: str = "grid.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the grid ---------------------------------------------------------------------------------


def test_grid_dotted_keys_and_tables_in_file_order(tmp_path: Path) -> None:
    grid = sw.load_grid(
        _grid(
            tmp_path,
            "risk.max_position_fraction = [0.1, 0.2]\n"
            "[validation]\nmin_confidence = [0.7, 0.75, 0.8]\nallow_low_volume = true\n",
        )
    )
    assert grid.keys == (
        "risk.max_position_fraction",
        "validation.min_confidence",
        "validation.allow_low_volume",
    )
    assert grid.values == ((0.1, 0.2), (0.7, 0.75, 0.8), (True,))
    assert grid.size == 6
    points = list(grid.points())
    assert len(points) == 6
    assert points[1] == {
        "risk.max_position_fraction": 0.1,
        "validation.min_confidence": 0.75,
        "validation.allow_low_volume": True,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("risk = [1]\n", "risk: expected section.key = [values]"),
        ("risk.max_open_positions = []\n", "risk.max_open_positions: expected at least one"),
        ("risk.max_open_positions = ['2']\n", "expected numbers or true/false, got '2'"),
        ("risk.max_open_positions = [1, 2, 1]\n", "value 1 is listed twice"),
        ("risk.max_open_positions = [[1]]\n", "expected numbers or true/false, got [1]"),
        ("", "the grid names no keys"),
        ("risk.max_open_positions = [1,\n", "not valid TOML"),
    ],
)
def test_bad_grid_files_one_line(tmp_path: Path, text: str, expected: str) -> None:
    path = _grid(tmp_path, text)
    with pytest.raises(sw.SweepError) as info:
        sw.load_grid(path)
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_missing_grid_file(tmp_path: Path) -> None:
    with pytest.raises(sw.SweepError, match="grid file not found"):
        sw.load_grid(tmp_path / "nope.toml")


def test_grid_too_big(tmp_path: Path) -> None:
    values = ", ".join(str(i) for i in range(400))
    path = _grid(tmp_path, f"risk.max_open_positions = [{values}]\nexits.time_stop_s = [{values}]")
    with pytest.raises(sw.SweepError, match="160,000 points; at most 100,000"):
        sw.load_grid(path)


_FLOATS = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, width=32)


@settings(max_examples=40, deadline=None)
@given(
    fractions=st.lists(_FLOATS, min_size=1, max_size=4, unique=True),
    positions=st.lists(st.integers(0, 1000), min_size=1, max_size=4, unique=True),
)
def test_grid_round_trips_and_every_point_is_a_valid_config(
    tmp_path_factory: pytest.TempPathFactory, fractions: list[float], positions: list[int]
) -> None:
    tmp = tmp_path_factory.mktemp("g")
    path = _grid(
        tmp,
        f"risk.max_position_fraction = [{', '.join(map(repr, fractions))}]\n"
        f"risk.max_open_positions = [{', '.join(map(str, positions))}]\n",
    )
    grid = sw.load_grid(path)
    assert grid.values == (tuple(fractions), tuple(positions))
    jobs = sw.plan_jobs([str(SAMPLE)], grid)
    assert len(jobs) == len(fractions) * len(positions)
    for job in jobs:
        point = dict(job.point)
        assert job.config.risk.max_position_fraction == point["risk.max_position_fraction"]
        assert job.config.risk.max_open_positions == point["risk.max_open_positions"]
    assert len({j.key for j in jobs}) == len(jobs)


# --- planning: every value checked before any job ------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("risk.max_position_fraction = [0.1, 1.5]\n", "risk.max_position_fraction: expected a"),
        ("risk.max_open_positions = [1, 2.5]\n", "risk.max_open_positions: expected an integer"),
        ("risk.nope = [1]\n", "risk.nope: unknown key"),
        ("riskk.max_open_positions = [1]\n", "unknown section 'riskk'"),
        ("exits.exit_on_reversal = [1]\n", "exits.exit_on_reversal: expected true or false"),
        ("signals.strong_threshold = [0.1]\n", "signals.strong_threshold: expected a number >="),
    ],
)
def test_bad_values_name_the_key_before_any_job(tmp_path: Path, text: str, expected: str) -> None:
    grid = sw.load_grid(_grid(tmp_path, text))
    with pytest.raises(ConfigError) as info:
        sw.plan_jobs([str(SAMPLE)], grid)
    assert expected in str(info.value)
    assert str(tmp_path / "grid.toml") in str(info.value)


def test_bad_recording_fails_before_any_job(tmp_path: Path) -> None:
    grid = sw.load_grid(_grid(tmp_path, "risk.max_open_positions = [1]\n"))
    bad = tmp_path / "bad.msgpack"
    bad.write_bytes(b"not a recording at all")
    with pytest.raises(RecordingError, match=r"bad\.msgpack"):
        sw.plan_jobs([str(SAMPLE), str(bad)], grid)
    with pytest.raises(RecordingError, match=r"missing\.msgpack"):
        sw.plan_jobs([str(tmp_path / "missing.msgpack")], grid)


def test_job_key_is_content_and_config(tmp_path: Path, short_rec: Path) -> None:
    grid = sw.load_grid(_grid(tmp_path, "risk.max_open_positions = [1, 2]\n"))
    copy = tmp_path / "elsewhere" / short_rec.name
    copy.parent.mkdir()
    shutil.copyfile(short_rec, copy)
    a = sw.plan_jobs([str(short_rec)], grid)
    b = sw.plan_jobs([str(copy)], grid)
    assert [j.key for j in a] == [j.key for j in b]  # same bytes, same config: same key
    assert a[0].key != a[1].key
    c = sw.plan_jobs([str(short_rec)], grid, None, ["paper.latency_ms=60"])
    assert {j.key for j in c}.isdisjoint(j.key for j in a)  # the base config counts too
    assert c[0].config.paper.latency_ms == 60
    other = tmp_path / "other.msgpack"
    generate(other, symbols=2, minutes=0.2, seed=8, rate=2)
    d = sw.plan_jobs([str(other)], grid)
    assert {j.key for j in d}.isdisjoint(j.key for j in a)


def test_out_dir_checks(tmp_path: Path) -> None:
    file = tmp_path / "f"
    file.write_text("x")
    with pytest.raises(sw.SweepError, match="exists and is not a directory"):
        sw.check_out_dir(file, [])
    with pytest.raises(sw.SweepError, match="would overwrite its input"):
        sw.check_out_dir(tmp_path, [tmp_path / "summary.csv"])
    sw.check_out_dir(tmp_path / "new" / "dir", [SAMPLE])
    assert (tmp_path / "new" / "dir").is_dir()


# --- running: same digest as `tradebot replay`, faults, reruns -------------------------------


def test_job_digest_equals_tradebot_replay(tmp_path: Path, client: Any) -> None:
    base = tmp_path / "base.toml"
    base.write_text("[paper]\nlatency_ms = 40\n")
    grid = sw.load_grid(_grid(tmp_path, "risk.max_position_fraction = [0.1, 0.2]\n"))
    jobs = sw.plan_jobs([str(SAMPLE)], grid, base, ["validation.min_confidence=0.7"])
    out = tmp_path / "out"
    out.mkdir()
    run = sw.run_jobs(client, jobs, out)
    assert not run.interrupted
    assert [r.status for r in run.results] == ["done", "done"]
    digests = []
    for job, result in zip(jobs, run.results, strict=True):
        assert result.report is not None
        report_json = tmp_path / f"{job.key}.json"
        cli = CliRunner().invoke(
            main,
            [
                "replay",
                str(SAMPLE),
                "--config",
                str(base),
                "--set",
                "validation.min_confidence=0.7",
                "--set",
                f"risk.max_position_fraction={dict(job.point)['risk.max_position_fraction']}",
                "--db",
                str(tmp_path / "audit.sqlite"),
                "--report-json",
                str(report_json),
            ],
        )
        assert cli.exit_code == 0, cli.output
        expected = json.loads(report_json.read_text())
        assert result.report["digest"] == expected["digest"]
        stored = json.loads((out / f"{job.name}.report.json").read_text())
        assert stored["digest"] == expected["digest"]
        assert stored["sweep"]["key"] == job.key
        assert stored["report_version"] == 1
        assert (out / f"{job.name}.config.toml").read_text().count("latency_ms = 40") == 1
        digests.append(expected["digest"])
    assert digests[0] != digests[1]  # the grid value changes decisions


def test_failing_job_is_reported_and_the_others_finish(
    tmp_path: Path, client: Any, short_rec: Path
) -> None:
    doomed = tmp_path / "doomed.msgpack"
    shutil.copyfile(short_rec, doomed)
    grid = sw.load_grid(_grid(tmp_path, "risk.max_open_positions = [1, 2]\n"))
    jobs = sw.plan_jobs([str(doomed), str(short_rec)], grid)
    doomed.unlink()  # gone after planning: its jobs raise on the workers
    out = tmp_path / "out"
    out.mkdir()
    run = sw.run_jobs(client, jobs, out, retries=0)
    assert [r.status for r in run.results] == ["failed", "failed", "done", "done"]
    for failed in run.results[:2]:
        assert failed.error is not None
        assert failed.error.startswith("RecordingError: ")
        assert "doomed.msgpack" in failed.error
        assert (out / f"{failed.job.name}.error.txt").read_text().strip() == failed.error
    rows = sw.result_rows(run.results)
    assert [r["status"].split(":")[0] for r in rows] == ["failed", "failed", "done", "done"]
    # A rerun retries the failed jobs and skips the done ones.
    shutil.copyfile(short_rec, doomed)
    again = sw.run_jobs(client, jobs, out)
    assert [r.status for r in again.results] == ["done"] * 2 + ["done (earlier run)"] * 2
    assert not list(out.glob("*.error.txt"))


def test_rerun_skips_done_jobs_by_content_and_config(
    tmp_path: Path, client: Any, short_rec: Path
) -> None:
    grid = sw.load_grid(_grid(tmp_path, "risk.max_open_positions = [1, 2]\n"))
    out = tmp_path / "out"
    out.mkdir()
    first = sw.run_jobs(client, sw.plan_jobs([str(short_rec)], grid), out)
    calls: list[str] = []
    grid3 = sw.load_grid(_grid(tmp_path, "risk.max_open_positions = [1, 2, 3]\n", "g3.toml"))
    second = sw.run_jobs(
        client,
        sw.plan_jobs([str(short_rec)], grid3),
        out,
        on_result=lambda r: calls.append(r.job.key),
    )
    assert [r.skipped for r in second.results] == [True, True, False]
    assert len(calls) == 1  # only the new point ran
    assert second.results[0].report is not None and first.results[0].report is not None
    assert second.results[0].report["digest"] == first.results[0].report["digest"]
    # A damaged report is not "done": the job runs again.
    (out / f"{second.results[0].job.name}.report.json").write_text("{trunc")
    third = sw.run_jobs(client, sw.plan_jobs([str(short_rec)], grid3), out)
    assert [r.skipped for r in third.results] == [False, True, True]


def flaky_runner(recording: str, config: Config) -> dict[str, Any]:
    """Raise on the first call (a marker file beside the recording), then replay."""
    marker = Path(recording + ".flaky")
    if not marker.exists():
        marker.write_text("1")
        raise OSError("transient: the share went away")
    return sw.replay_job(recording, config)


def dying_runner(recording: str, config: Config) -> dict[str, Any]:
    """Kill the worker process on the first call (marker file), then replay."""
    marker = Path(recording + ".died")
    if not marker.exists():
        marker.write_text("1")
        os._exit(1)
    return sw.replay_job(recording, config)


def sigint_ignored() -> bool:
    return signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def test_retries_reach_dask(tmp_path: Path, client: Any, short_rec: Path) -> None:
    rec = tmp_path / "r.msgpack"
    shutil.copyfile(short_rec, rec)
    grid = sw.load_grid(_grid(tmp_path, "risk.max_open_positions = [1]\n"))
    jobs = sw.plan_jobs([str(rec)], grid)
    out = tmp_path / "out"
    out.mkdir()
    no_retry = sw.run_jobs(client, jobs, out, retries=0, runner=flaky_runner)
    assert no_retry.results[0].error == "OSError: transient: the share went away"
    Path(str(rec) + ".flaky").unlink()
    retried = sw.run_jobs(client, jobs, out, retries=1, runner=flaky_runner)
    assert retried.results[0].status == "done"


def test_killed_worker_job_is_rescheduled(tmp_path: Path, client: Any, short_rec: Path) -> None:
    rec = tmp_path / "k.msgpack"
    shutil.copyfile(short_rec, rec)
    grid = sw.load_grid(_grid(tmp_path, "risk.max_open_positions = [1, 2]\n"))
    jobs = sw.plan_jobs([str(rec)], grid)
    out = tmp_path / "out"
    out.mkdir()
    run = sw.run_jobs(client, jobs[:1], out, retries=0, runner=dying_runner)
    assert Path(str(rec) + ".died").exists()  # a worker really died
    assert run.results[0].status == "done"
    client.wait_for_workers(2, timeout=30)  # the nanny restarted it
    assert set(client.run(sigint_ignored).values()) == {True}  # Ctrl-C is still ours alone
    (tmp_path / "plain").mkdir()
    plain = sw.run_jobs(client, jobs, tmp_path / "plain")
    assert plain.results[0].report is not None and run.results[0].report is not None
    assert run.results[0].report["digest"] == plain.results[0].report["digest"]


# --- the table ------------------------------------------------------------------------------


def _row(pnl: float | None, dd: float | None, name: str) -> dict[str, Any]:
    return {"recording": name, "pnl": pnl, "max_drawdown": dd, "status": "done"}


def test_sort_best_first_missing_last() -> None:
    rows = [_row(-1.0, 0.1, "a"), _row(None, None, "b"), _row(2.0, 0.3, "c"), _row(0.5, 0.0, "d")]
    assert [r["recording"] for r in sw.sort_rows(rows, "pnl")] == ["c", "d", "a", "b"]
    assert [r["recording"] for r in sw.sort_rows(rows, "drawdown")] == ["d", "a", "c", "b"]


@given(st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), max_size=30))
def test_sort_is_a_monotone_permutation(values: list[float | None]) -> None:
    rows = [_row(v, None, str(i)) for i, v in enumerate(values)]
    out = sw.sort_rows(rows, "pnl")
    assert sorted(r["recording"] for r in out) == sorted(r["recording"] for r in rows)
    present = [r["pnl"] for r in out if r["pnl"] is not None]
    assert present == sorted(present, reverse=True)
    assert all(r["pnl"] is None for r in out[len(present) :])


# --- the command ----------------------------------------------------------------------------


@pytest.fixture
def shared_cluster(monkeypatch: pytest.MonkeyPatch, client: Any) -> None:
    """`tradebot sweep` on the module's cluster (a new LocalCluster costs seconds)."""

    @contextmanager
    def reuse(scheduler: str | None, workers: int | None) -> Iterator[Any]:
        yield client

    monkeypatch.setattr(sw, "start_client", reuse)


def test_cli_sweep_table_csv_rerun(tmp_path: Path, short_rec: Path, shared_cluster: None) -> None:
    grid = _grid(tmp_path, "risk.max_position_fraction = [0.1, 0.2]\npaper.latency_ms = [50]\n")
    out = tmp_path / "out"
    args = ["sweep", str(short_rec), str(SAMPLE), "--grid", str(grid), "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--sort", "drawdown", "--progress"])
    assert result.exit_code == 0, result.output
    assert "dashboard    http://" in result.stderr
    assert "jobs" in result.stderr  # the progress bar
    assert "4 done (0 from an earlier run), 0 failed, 0 cancelled" in result.stdout
    with open(out / "summary.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == sw.table_columns(("risk.max_position_fraction", "paper.latency_ms"))
    assert len(table) == 4
    drawdowns = [float(r["max_drawdown"]) for r in table]
    assert drawdowns == sorted(drawdowns)
    assert all(len(r["digest"]) == 64 for r in table)
    reports = sorted(out.glob("*.report.json"))
    assert len(reports) == 4
    assert {json.loads(p.read_text())["digest"] for p in reports} == {r["digest"] for r in table}
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["recording", "risk.max_position_fraction", "paper.latency_ms"]
    again = CliRunner().invoke(main, [*args, "--no-progress"])
    assert again.exit_code == 0, again.output
    assert "4 done (4 from an earlier run)" in again.stdout


def test_cli_sweep_failed_job_exits_1(
    tmp_path: Path, short_rec: Path, shared_cluster: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    grid = _grid(tmp_path, "risk.max_open_positions = [1]\n")
    doomed = tmp_path / "doomed.msgpack"
    shutil.copyfile(short_rec, doomed)
    real_plan = sw.plan_jobs

    def plan_then_lose(*args: Any) -> list[sw.Job]:
        jobs = real_plan(*args)
        doomed.unlink()
        return jobs

    monkeypatch.setattr(sw, "plan_jobs", plan_then_lose)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["sweep", str(doomed), str(short_rec), "--grid", str(grid), "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "1 done (0 from an earlier run), 1 failed" in result.stdout
    assert "failed: RecordingError" in result.stdout
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--sort", "luck"], "--sort: expected one of pnl, fees"),
        (["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], "--workers sizes the local"),
        (["--set", "risk.max_open_positions=x"], "risk.max_open_positions: expected an integer"),
    ],
)
def test_cli_bad_arguments_one_line(tmp_path: Path, extra: list[str], expected: str) -> None:
    grid = _grid(tmp_path, "risk.max_open_positions = [1]\n")
    result = CliRunner().invoke(
        main, ["sweep", str(SAMPLE), "--grid", str(grid), "--out", str(tmp_path / "o"), *extra]
    )
    assert result.exit_code == 1
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # nothing started


def test_unreachable_scheduler_one_line() -> None:
    started = time.monotonic()
    with (
        pytest.raises(sw.SweepError, match=r"--scheduler tcp://127\.0\.0\.1:1: cannot connect"),
        sw.start_client("tcp://127.0.0.1:1", None, timeout="1s"),
    ):
        pass
    assert time.monotonic() - started < 10


def test_ctrl_c_cancels_and_writes_what_finished(tmp_path: Path) -> None:
    values = ", ".join(str(v) for v in range(1, 11))
    grid = _grid(tmp_path, f"risk.max_open_positions = [{values}]\n")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            # A job started in the background by a non-interactive shell inherits SIGINT
            # ignored; a terminal's foreground job has the default handler: give it that.
            "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from tradebot.cli import main; main()",
            "sweep",
            str(SAMPLE),
            "--grid",
            str(grid),
            "--out",
            str(out),
            "--workers",
            "1",
            "--no-progress",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + 20
        while not list(out.glob("*.report.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole group
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted: rerun with the same --out" in stderr
    with open(out / "summary.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 10  # every job accounted for
    done = [r for r in table if r["status"] == "done"]
    cancelled = [r for r in table if r["status"] == "cancelled"]
    assert done and cancelled
    assert len(done) + len(cancelled) == 10
    assert len(done) == len(list(out.glob("*.report.json")))
    assert f"{len(cancelled)} cancelled" in stdout
