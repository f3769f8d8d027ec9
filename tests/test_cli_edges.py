"""The command line at its edges: paths a user passes, pipes, signals, what it says.

Issue 13: output never overwrites input (5), files as users pass them (7), signals and
foreign databases (8), saying what happened (9); and out-of-range receive times end to
end (2).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
from click.testing import CliRunner, Result

import simulator.replay as replay_module
from simulator.recording import RecordingReader, RecordingWriter
from simulator.replay import ReplayOptions, replay
from simulator.synth import generate
from tradebot.cli import main
from tradebot.cli_run import ProgressBar
from tradebot.store import AuditStore, StoreError, read_audit, read_runs

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "recordings" / "sample.msgpack"
TRADEBOT = [str(Path(sys.executable).with_name("tradebot"))]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "small.msgpack"
    generate(path, symbols=3, minutes=1.0, seed=5, rate=4)
    return path


def run_cli(args: list[str], tmp_path: Path) -> Result:
    return CliRunner().invoke(main, args, env={"TRADEBOT_DATA_DIR": str(tmp_path / "data")})


def one_line_error(result: Result) -> str:
    """The single stderr line of a refused command (exit 1, no traceback, no usage text)."""
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output and "Usage:" not in result.stderr
    return lines[0]


def run_tradebot(
    args: list[str], tmp_path: Path, **kwargs: Any
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "TRADEBOT_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [*TRADEBOT, *args], env=env, capture_output=True, timeout=120, check=False, **kwargs
    )


def copy_records(src: Path, dst: Path, change: dict[int, int]) -> int:
    """Copy `src` to `dst`, giving record number n (0-based) the recv_ns change[n]."""
    with RecordingReader(src) as reader:
        header = reader.header.to_map()
        records = list(reader)
    with dst.open("wb") as out:
        out.write(msgpack.packb(header))
        for n, (recv_ns, kind, payload, conn) in enumerate(records):
            recv_ns = change.get(n, recv_ns)
            row = [recv_ns, kind, payload] if conn is None else [recv_ns, kind, payload, conn]
            out.write(msgpack.packb(row, use_bin_type=True))
    return len(records)


# --- 13.2: a receive time of 2^63 or more is a malformed record -----------------------------


def test_a_recv_ns_of_two_to_the_63_is_a_malformed_record_not_a_crash(
    tmp_path: Path, small: Path
) -> None:
    rec = tmp_path / "big.msgpack"
    n = copy_records(small, rec, {100: 1 << 63, 200: (1 << 64) - 1})
    out = tmp_path / "r.json"
    result = run_cli(["replay", str(rec), "--report-json", str(out)], tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["malformed"]["recv_ns_out_of_range"] == 2
    assert report["messages"] == n
    (run,) = read_runs(tmp_path / "data" / "tradebot.sqlite")
    assert run.status == "finished"


# --- 13.5: output never overwrites input ----------------------------------------------------


def _snapshot(paths: list[Path]) -> dict[Path, bytes | None]:
    return {p: p.read_bytes() if p.exists() else None for p in paths}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--report-json", "{rec}"], "--report-json {rec} is the recording"),
        (["--db", "{rec}"], "--db {rec} is the recording"),
        (["--db", "{db}", "--report-json", "{db}"], "--report-json {db} is the audit database"),
        (["--report-json", "{default_db}"], "is the audit database"),
        (["--report-json", "{default_db}-wal"], "is the audit database"),
        (["--db", "{db}", "--report-json", "{alias}"], "is the audit database"),
    ],
)
def test_the_same_file_twice_is_refused_before_anything_is_written(
    tmp_path: Path, small: Path, args: list[str], expected: str
) -> None:
    rec = tmp_path / "rec.msgpack"
    shutil.copy(small, rec)
    default_db = tmp_path / "data" / "tradebot.sqlite"
    db = tmp_path / "audit.sqlite"
    alias = tmp_path / "sub" / ".." / "audit.sqlite"
    (tmp_path / "sub").mkdir()
    if "{default_db}" in " ".join(args):  # an existing database from an earlier run
        assert run_cli(["replay", str(rec)], tmp_path).exit_code == 0
        with sqlite3.connect(default_db) as conn:
            conn.execute("PRAGMA wal_checkpoint")
        (tmp_path / "data" / "tradebot.sqlite-wal").touch()
    names = {"rec": rec, "db": db, "default_db": default_db, "alias": alias}
    argv = [a.format(**names) for a in args]
    watched = [rec, db, default_db, Path(f"{default_db}-wal")]
    before = _snapshot(watched)
    result = run_cli(["replay", str(rec), *argv], tmp_path)
    line = one_line_error(result)
    assert expected.format(**names) in line
    assert _snapshot(watched) == before


def test_the_report_is_written_atomically(
    tmp_path: Path, small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "r.json"
    result = run_cli(["replay", str(small), "--report-json", str(out)], tmp_path)
    assert result.exit_code == 0
    assert json.loads(out.read_text())["report_version"] == 1
    out.write_text('{"old": true}\n')

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    result = run_cli(["replay", str(small), "--report-json", str(out)], tmp_path)
    assert "cannot write the report (No space left on device)" in one_line_error(result)
    assert out.read_text() == '{"old": true}\n'  # the old report, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "r.json"]  # no temp file


# --- 13.6: corruption is not truncation -------------------------------------------------------


def _record_offsets(path: Path) -> list[int]:
    """The byte offset at which each object of the file ends (the header's first)."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(path.read_bytes())
    ends = []
    for _ in unpacker:
        ends.append(unpacker.tell())
    return ends


def test_a_bad_byte_mid_file_is_corruption_reported_and_exits_non_zero(
    tmp_path: Path, small: Path
) -> None:
    data = small.read_bytes()
    ends = _record_offsets(small)
    bad_at = ends[500]  # after 500 records
    rec = tmp_path / "bad.msgpack"
    rec.write_bytes(data[:bad_at] + b"\xc1\xc1\xc1" + data[bad_at:])
    out = tmp_path / "r.json"
    result = run_cli(["replay", str(rec), "--report-json", str(out)], tmp_path)
    assert result.exit_code == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error == (
        f"Error: {rec} is corrupt: an invalid object at byte {bad_at:,} after 500 records;"
        " 3 bytes skipped; the run is marked failed"
    )
    assert "warning" not in result.stderr  # not called a truncation
    report = json.loads(out.read_text())
    assert report["corrupt"] is True and report["truncated"] is False
    assert report["corruption"]["offset"] == bad_at
    assert report["corruption"]["skipped_bytes"] == 3
    assert report["messages"] == len(ends) - 1  # resynchronised: every record read
    assert "CORRUPT" in result.stdout
    (run,) = read_runs(tmp_path / "data" / "tradebot.sqlite")
    assert run.status == "failed"
    clean = replay(small)
    assert report["digest"] != clean["digest"]


def test_a_clean_file_keeps_its_digest_without_corruption_keys(small: Path) -> None:
    report = replay(small)
    assert report["corrupt"] is False and "corruption" not in report


# --- 13.7: files as users pass them ----------------------------------------------------------


def test_a_recording_on_standard_input_is_replayed(tmp_path: Path, small: Path) -> None:
    out = tmp_path / "r.json"
    with small.open("rb") as stdin:
        proc = run_tradebot(["replay", "-", "--report-json", str(out)], tmp_path, stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    expected = replay(small)
    assert report["digest"] == expected["digest"]
    assert report["recording"] == "<stdin>"
    cat = subprocess.Popen(["cat", str(small)], stdout=subprocess.PIPE)
    assert cat.stdout is not None
    piped = run_tradebot(["replay", "-", "--report-json", str(out)], tmp_path, stdin=cat.stdout)
    cat.wait()
    assert piped.returncode == 0, piped.stderr
    assert json.loads(out.read_text())["digest"] == expected["digest"]


def test_a_fifo_is_read_once_and_does_not_hang(tmp_path: Path, small: Path) -> None:
    fifo = tmp_path / "rec.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as out:
            out.write(small.read_bytes())

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    out = tmp_path / "r.json"
    proc = run_tradebot(["replay", str(fifo), "--report-json", str(out)], tmp_path)
    writer.join(5)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["digest"] == replay(small)["digest"]


@pytest.mark.parametrize("option", ["--db", "--config", "--report-json"])
def test_a_folder_for_a_file_option_is_one_line(tmp_path: Path, small: Path, option: str) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    line = one_line_error(run_cli(["replay", str(small), option, str(folder)], tmp_path))
    assert str(folder) in line
    assert not (tmp_path / "data").exists()


def test_report_on_a_folder_is_one_line(tmp_path: Path) -> None:
    line = one_line_error(run_cli(["report", "--db", str(tmp_path)], tmp_path))
    assert str(tmp_path) in line


def test_unreadable_files_are_one_line(tmp_path: Path, small: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    config = tmp_path / "c.toml"
    config.write_text("")
    config.chmod(0)
    line = one_line_error(run_cli(["replay", str(small), "--config", str(config)], tmp_path))
    assert str(config) in line
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    out = folder / "r.json"
    line = one_line_error(run_cli(["replay", str(small), "--report-json", str(out)], tmp_path))
    assert "is not writable" in line


def test_a_path_that_is_not_utf8_works(tmp_path: Path, small: Path) -> None:
    folder = tmp_path / os.fsdecode(b"d\xfe")
    folder.mkdir()
    rec = folder / os.fsdecode(b"r\xff.msgpack")
    shutil.copy(small, rec)
    out = folder / os.fsdecode(b"o\xfd.json")
    result = CliRunner().invoke(
        main,
        ["replay", str(rec), "--report-json", str(out)],
        env={"TRADEBOT_DATA_DIR": str(folder / os.fsdecode(b"\xfc"))},
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["recording"].endswith("r\\xff.msgpack")
    assert "r\\xff.msgpack" in result.stdout
    (run,) = read_runs(folder / os.fsdecode(b"\xfc") / "tradebot.sqlite")
    assert run.source is not None and run.source.endswith("r\\xff.msgpack")


def _as_nobody() -> list[str] | None:
    """A command prefix that runs as an unprivileged user, or None when unavailable."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_report_reads_a_database_in_a_read_only_folder(tmp_path: Path, small: Path) -> None:
    prefix = _as_nobody()
    if prefix is None:
        pytest.skip("no way to drop root here")
    probe = subprocess.run(
        [*prefix, *TRADEBOT, "--help"], capture_output=True, check=False, cwd="/"
    )
    if probe.returncode != 0:  # e.g. a virtualenv under a folder the other user cannot read
        pytest.skip("the unprivileged user cannot run this tradebot")
    with tempfile.TemporaryDirectory(prefix="tradebot-ro-") as top:
        _report_in_a_read_only_folder(Path(top), small, prefix)


def _report_in_a_read_only_folder(top: Path, small: Path, prefix: list[str]) -> None:
    top.chmod(0o755)  # the unprivileged user must reach the folder
    tmp_path = top
    folder = tmp_path / "ro"
    db = folder / "audit.sqlite"
    result = run_cli(["replay", str(small), "--db", str(db)], tmp_path)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["audit.sqlite"]  # WAL merged
    folder.chmod(0o555)
    db.chmod(0o444)
    try:
        proc = subprocess.run(
            [*prefix, *TRADEBOT, "report", "--db", str(db)],
            capture_output=True,
            timeout=60,
            check=False,
            cwd="/",
        )
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    assert b"status       finished" in proc.stdout


# --- 13.8: signals and foreign databases -----------------------------------------------------


def _wait_for_a_running_run(db: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            runs = read_runs(db)
        except StoreError:
            runs = []
        if runs and runs[-1].status == "running":
            return
        time.sleep(0.05)
    raise AssertionError("the replay never began its run")


def test_sigterm_ends_a_replay_like_ctrl_c(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    proc = subprocess.Popen(
        [*TRADEBOT, "replay", str(SAMPLE), "--speed", "20", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _wait_for_a_running_run(db, proc)
    time.sleep(1.5)  # ~30 s of recorded time: some journal entries wait in the batch
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert b"Traceback" not in err
    assert b"interrupted by SIGTERM: run 1 is marked interrupted" in err
    (run,) = read_runs(db)
    assert run.status == "interrupted" and run.ended_wall_ns is not None
    report = json.loads(run.report or "{}")
    assert report["interrupted"] == "SIGTERM"
    rows = read_audit(db, run.run_id)
    assert len(rows) == report["audit_rows"] > 0  # the unflushed batch was written
    assert [e.seq for e in rows] == list(range(1, len(rows) + 1))
    with AuditStore(db) as store:  # not locked, not left mid-transaction
        store.begin_run(mode="replay", source="x", config_toml="", started_wall_ns=1)


def test_a_keyboard_interrupt_marks_the_run_interrupted(
    tmp_path: Path, small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real_on_ws = replay_module.Engine.on_ws

    def on_ws(self: Any, *args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 500:
            raise KeyboardInterrupt
        return real_on_ws(self, *args)

    monkeypatch.setattr(replay_module.Engine, "on_ws", on_ws)
    result = run_cli(["replay", str(small)], tmp_path)
    assert result.exit_code == 130
    assert "interrupted by Ctrl-C: run 1 is marked interrupted" in result.stderr
    (run,) = read_runs(tmp_path / "data" / "tradebot.sqlite")
    assert run.status == "interrupted"


def _foreign_db(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    "statements",
    [
        ("CREATE TABLE runs (id INTEGER, name TEXT)", "INSERT INTO runs VALUES (1, 'x')"),
        ("CREATE TABLE audit (who TEXT)",),
        ("CREATE TABLE notes (t TEXT)",),
        ("CREATE VIEW v AS SELECT 1",),
        (
            "CREATE TABLE runs (a)",
            "CREATE TABLE audit (b)",
            "PRAGMA user_version=1",
        ),
    ],
)
def test_a_foreign_sqlite_file_is_refused_before_anything_in_it_changes(
    tmp_path: Path, statements: tuple[str, ...]
) -> None:
    db = tmp_path / "theirs.sqlite"
    _foreign_db(db, *statements)
    before = db.read_bytes()
    with pytest.raises(StoreError, match="is not a tradebot database") as exc:
        AuditStore(db)
    assert "\n" not in str(exc.value)
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theirs.sqlite"]  # no -wal, -shm
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_an_empty_sqlite_file_is_adopted(tmp_path: Path) -> None:
    db = tmp_path / "empty.sqlite"
    _foreign_db(db, "PRAGMA user_version=0")
    with AuditStore(db) as store:
        store.begin_run(mode="replay", source="x", config_toml="", started_wall_ns=1)
        store.end_run(status="finished", report={}, ended_wall_ns=2)
    assert read_runs(db)[0].status == "finished"


# --- 13.9: say what happened -----------------------------------------------------------------


def test_the_summary_shows_recv_ns_going_backwards(tmp_path: Path, small: Path) -> None:
    with RecordingReader(small) as reader:
        times = [r[0] for r in reader]
    rec = tmp_path / "back.msgpack"
    copy_records(small, rec, {300: times[300] - 5_000_000_000, 600: times[600] - 1})
    result = run_cli(["replay", str(rec)], tmp_path)
    assert result.exit_code == 0, result.output
    assert "recv_ns went backwards 2 times (records replayed in file order)" in result.stdout
    clean = run_cli(["replay", str(small)], tmp_path)
    assert "backwards" not in clean.stdout


def test_a_header_of_another_venue_is_refused_in_one_line(tmp_path: Path) -> None:
    rec = tmp_path / "other.msgpack"
    with RecordingWriter.create(rec, created_ns=1, source="t", venue="binance-futures") as w:
        w.write(1, "ws", "{}")
    line = one_line_error(run_cli(["replay", str(rec)], tmp_path))
    assert "recorded on venue 'binance-futures'" in line
    assert not (tmp_path / "data").exists()


def test_progress_moves_by_bytes_at_least_every_fifth_of_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [0]

    def fake_perf_ns() -> int:  # each read of the clock: 30 ms of wall time
        clock[0] += 30_000_000
        return clock[0]

    monkeypatch.setattr(replay_module, "perf_ns", fake_perf_ns)
    seen: list[tuple[int, int, int]] = []
    replay(SAMPLE, options=ReplayOptions(progress=lambda d, t: seen.append((clock[0], d, t))))
    size = SAMPLE.stat().st_size
    assert len(seen) > 50  # not in thirds
    assert seen[-1][1:] == (size, size)
    assert all(t == size for _, _, t in seen)
    dones = [d for _, d, _ in seen]
    assert dones == sorted(dones) and len(set(dones)) == len(dones)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(seen)]
    assert max(gaps) <= 200_000_000


def test_the_progress_bar_shows_bytes() -> None:
    assert ProgressBar.line("replaying", 1_500_000, 3_000_000) == (
        "replaying  [###############---------------]  50%  1.5 of 3.0 MB"
    )
    assert ProgressBar.line("replaying", 2_000_000, 0) == "replaying  2.0 MB"


def test_the_first_run_says_where_the_audit_database_is(tmp_path: Path, small: Path) -> None:
    first = run_cli(["replay", str(small)], tmp_path)
    db = tmp_path / "data" / "tradebot.sqlite"
    assert f"audit database created at {db}" in first.stderr
    second = run_cli(["replay", str(small)], tmp_path)
    assert "created" not in second.stderr
