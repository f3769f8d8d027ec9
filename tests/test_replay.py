"""End to end: `tradebot replay` on recordings, through the CLI, report and audit log."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgpack
import pytest
from click.testing import CliRunner

from simulator.recording import RecordingWriter
from simulator.replay import ReplayOptions, replay
from simulator.synth import generate
from tradebot.cli import main
from tradebot.config import load_config
from tradebot.journal import JournalEntry
from tradebot.store import read_audit, read_runs

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "recordings" / "sample.msgpack"

# The report contract (REPORT.md v1): key -> type.
CONTRACT_KEYS: dict[str, Any] = {
    "report_version": int,
    "recording": str,
    "messages": int,
    "messages_by_topic": dict,
    "malformed": dict,
    "truncated": bool,
    "corrupt": bool,
    "sequence_gaps": int,
    "book_resyncs": int,
    "stale_periods": int,
    "listings": list,
    "delistings": list,
    "digest": str,
    "wall_s": float,
    "messages_per_s": float,
    "signals": dict,
    "rejections": dict,
    "orders": int,
    "fills": int,
    "fees": float,
    "pnl": dict,
    "positions": dict,
    "max_drawdown": float,
    "latency_ns": dict,
}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "small.msgpack"
    generate(path, symbols=4, minutes=2.5, seed=3, rate=4)
    return path


def run_cli(args: list[str], tmp_path: Path) -> Any:
    runner = CliRunner()
    return runner.invoke(main, args, env={"TRADEBOT_DATA_DIR": str(tmp_path / "data")})


def test_sample_replay_report_follows_the_contract(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = run_cli(["replay", str(SAMPLE), "--report-json", str(out)], tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    for key, kind in CONTRACT_KEYS.items():
        assert isinstance(report[key], kind), key
    assert report["report_version"] == 1
    assert report["recording"] == str(SAMPLE)
    assert re.fullmatch(r"[0-9a-f]{64}", report["digest"])
    assert report["truncated"] is False
    assert report["corrupt"] is False and "corruption" not in report
    # What the sample was generated to contain (see README).
    assert report["messages"] == 24_294
    assert report["listings"] == ["KNAUSDTM"]
    assert report["delistings"] == ["SOLUSDTM"]
    assert report["sequence_gaps"] >= 1
    assert report["book_resyncs"] >= 1
    assert report["stale_periods"] >= 1
    assert set(report["malformed"]) >= {"ws_not_json", "level2_bad_value", "unknown_topic"}
    assert {"level2", "tickerV2", "execution", "instrument"} <= set(report["messages_by_topic"])
    assert set(report["signals"]) == {"StrongBuy", "Buy", "Neutral", "Sell", "StrongSell"}
    assert set(report["rejections"]) == {
        "data_quality",
        "market_conditions",
        "risk_limits",
        "regulatory",
        "confidence",
    }
    assert report["orders"] > 0 and report["fills"] > 0
    verdicts = report["quality"]["verdicts"]
    assert sum(verdicts.values()) == sum(report["signals"].values())  # one per evaluation
    assert {"completeness", "spread"} <= set(report["quality"]["reasons"])
    pnl = report["pnl"]
    end = report["equity"]["end"]
    assert abs(report["equity"]["start"] + pnl["realized"] + pnl["unrealized"] - end) < 1e-6
    assert set(report["pnl"]) >= {"realized", "unrealized"}
    assert set(report["positions"]) >= {"opened", "closed"}
    assert 0.0 <= report["max_drawdown"] < 1.0
    assert report["latency_ns"]["message"]["count"] > 0
    for stage in ("parse", "state", "quality", "signal", "validation"):
        assert report["latency_ns"]["stages"][stage]["p99"] > 0
    # The summary on stdout carries the same digest, and the run is in the audit log.
    assert report["digest"] in result.output
    runs = read_runs(tmp_path / "data" / "tradebot.sqlite")
    assert [r.status for r in runs] == ["finished"]
    shown = run_cli(["report"], tmp_path)
    assert shown.exit_code == 0 and "replay" in shown.output


def _audit(rows: list[JournalEntry]) -> list[tuple[int, int, str, str, str]]:
    return [(e.seq, e.ts_ns, e.kind, e.symbol, e.detail) for e in rows]


def test_two_replays_give_the_same_digest_and_audit_table(tmp_path: Path, small: Path) -> None:
    db = tmp_path / "audit.sqlite"
    for _ in range(2):
        assert run_cli(["replay", str(small), "--db", str(db)], tmp_path).exit_code == 0
    first, second = read_runs(db)
    assert json.loads(first.report or "")["digest"] == json.loads(second.report or "")["digest"]
    rows_a = _audit(read_audit(db, first.run_id))
    rows_b = _audit(read_audit(db, second.run_id))
    assert rows_a == rows_b
    assert any(kind == "signal" for _, _, kind, _, _ in rows_a)


def test_another_seed_or_a_decision_changing_config_changes_the_digest(
    tmp_path: Path, small: Path
) -> None:
    other = tmp_path / "other.msgpack"
    generate(other, symbols=4, minutes=2.5, seed=4, rate=4)
    base = replay(small)["digest"]
    assert replay(other)["digest"] != base
    looser = load_config(overrides=["validation.allow_low_volume=true"])
    assert replay(small, looser)["digest"] != base
    assert replay(small, load_config())["digest"] == base


def test_paced_replay_matches_max_speed(tmp_path: Path) -> None:
    path = tmp_path / "tiny.msgpack"
    start = 1_767_600_000_000_000_000
    with RecordingWriter.create(path, created_ns=start, source="test") as w:
        for i in range(5):
            w.write(start + i * 10_000_000, "ws", f'{{"type":"pong","id":"{i}"}}', 1)
    fast = replay(path)
    paced = replay(path, options=ReplayOptions(speed=10.0))
    assert paced["digest"] == fast["digest"]
    assert paced["wall_s"] >= 0.004  # 40 ms of recording at 10x takes at least 4 ms


def test_sink_sees_every_journal_entry_in_order(small: Path) -> None:
    rows: list[JournalEntry] = []
    replay(small, options=ReplayOptions(sink=rows.append))
    assert [e.seq for e in rows] == list(range(1, len(rows) + 1))
    kinds = {e.kind for e in rows}
    assert {"listing", "delisting", "signal", "rejection"} <= kinds


# --- bad files: one line, non-zero exit, no traceback --------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        (b"hello, this is text\n", "not a tradebot recording"),
        (b"", "empty"),
        (msgpack.packb({"format": "other", "version": 1}), "format"),
        (
            msgpack.packb(
                {
                    "format": "tradebot-recording",
                    "version": 9,
                    "venue": "kucoin-futures",
                    "created_ns": 1,
                    "source": "x",
                    "symbols": [],
                }
            ),
            "version",
        ),
    ],
)
def test_bad_recording_is_one_line_error(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    path = tmp_path / "bad.msgpack"
    if content is not None:
        path.write_bytes(content)
    result = run_cli(["replay", str(path)], tmp_path)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert str(path) in lines[0] and expected in lines[0].lower()
    assert "Traceback" not in result.output
    assert not (tmp_path / "data" / "tradebot.sqlite").exists()  # no run recorded


def test_truncated_recording_replays_the_prefix_and_exits_zero(tmp_path: Path, small: Path) -> None:
    cut = tmp_path / "cut.msgpack"
    cut.write_bytes(small.read_bytes()[:-7])
    out = tmp_path / "r.json"
    result = run_cli(["replay", str(cut), "--report-json", str(out)], tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["truncated"] is True
    assert report["messages"] > 1000
    assert result.output.count("warning:") == 1


def test_bad_config_value_names_the_key(tmp_path: Path) -> None:
    result = run_cli(["replay", str(SAMPLE), "--set", "risk.max_open_positions=lots"], tmp_path)
    assert result.exit_code == 1
    assert "risk.max_open_positions" in result.output and "lots" in result.output
    assert "Traceback" not in result.output


def test_bad_speed_is_refused(tmp_path: Path) -> None:
    result = run_cli(["replay", str(SAMPLE), "--speed", "fast"], tmp_path)
    assert result.exit_code != 0 and "fast" in result.output


def test_sample_regenerates_byte_for_byte(tmp_path: Path) -> None:
    """The README's regeneration command gives the committed sample, on every Python."""
    out = tmp_path / "sample.msgpack"
    generate(out, symbols=20, minutes=5, seed=1, rate=4)
    assert out.read_bytes() == SAMPLE.read_bytes()
