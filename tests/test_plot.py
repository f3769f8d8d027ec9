"""Pictures: `tradebot report --plot` from a replay of the sample recording, and the sweep's
metric over its grid; real PNGs checked for signature and pixel size."""

from __future__ import annotations

import json
import struct
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tradebot import plot
from tradebot.cli import main
from tradebot.store import read_audit, read_runs

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "recordings" / "sample.msgpack"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; fails unless the file is a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    assert data[-8:-4] == b"IEND"  # complete, not cut short
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("run")
    db, report = tmp / "audit.sqlite", tmp / "report.json"
    result = CliRunner().invoke(
        main, ["replay", str(SAMPLE), "--db", str(db), "--report-json", str(report)]
    )
    assert result.exit_code == 0, result.output
    return db, json.loads(report.read_text())


def test_report_plot_writes_a_png_of_the_expected_size(
    tmp_path: Path, replayed: tuple[Path, dict[str, Any]]
) -> None:
    db, _ = replayed
    out = tmp_path / "run.png"
    result = CliRunner().invoke(main, ["report", "--db", str(db), "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert "trades" in result.stdout  # the text report is still shown
    assert f"plot         {out}" in result.stdout
    assert png_size(out) == plot.RUN_SIZE_PX
    assert out.stat().st_size > 20_000  # drawn, not blank


def test_equity_steps_end_at_start_plus_realized_pnl(
    replayed: tuple[Path, dict[str, Any]],
) -> None:
    db, report = replayed
    run = read_runs(db)[-1]
    rows = read_audit(db, run.run_id, ("fill", "funding", "position_close"))
    start = plot._start_equity(run.config)
    assert start == Decimal(1000)
    times, equity = plot.equity_steps(rows, start)
    assert times == sorted(times)
    assert len(equity) == len(rows)
    # The realized equity's last step is the report's realized PnL (net of fees, funding).
    assert abs(float(equity[-1] - start) - report["pnl"]["realized"]) < 1e-6


def test_prices_come_from_the_recording(replayed: tuple[Path, dict[str, Any]]) -> None:
    db, _ = replayed
    run = read_runs(db)[-1]
    traded = {e.symbol for e in read_audit(db, run.run_id, ("position_open",))}
    mids = plot._mids(run.source, traded)
    assert set(mids) == traded
    for times, prices in mids.values():
        assert len(times) > 10
        assert times == sorted(times)
        assert all(p > 0 for p in prices)
    assert plot._mids(str(SAMPLE.with_name("missing.msgpack")), traded) == {}


def test_sweep_plot_line_and_heatmap(tmp_path: Path) -> None:
    rows = [
        {"recording": "a.msgpack", "k.x": x, "k.y": y, "pnl": x - y if x != 2 else None}
        for x in (1, 2, 3)
        for y in (0.5, 0.7)
    ]
    heat = tmp_path / "heat.png"
    plot.plot_sweep(rows, ["k.x", "k.y"], "pnl", "pnl", heat)
    assert png_size(heat) == plot.SWEEP_SIZE_PX
    line = tmp_path / "line.png"
    plot.plot_sweep([r for r in rows if r["k.y"] == 0.5], ["k.x"], "pnl", "pnl", line)
    assert png_size(line) == plot.SWEEP_SIZE_PX


def test_missing_matplotlib_one_line(
    tmp_path: Path, replayed: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, _ = replayed
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError
    out = tmp_path / "run.png"
    result = CliRunner().invoke(main, ["report", "--db", str(db), "--plot", str(out)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: plots need matplotlib: pip install 'tradebot[plot]' (or pip install matplotlib)"
    )
    assert not out.exists()


def test_plot_never_overwrites_the_database(
    tmp_path: Path, replayed: tuple[Path, dict[str, Any]]
) -> None:
    db, _ = replayed
    before = db.read_bytes()
    result = CliRunner().invoke(main, ["report", "--db", str(db), "--plot", str(db)])
    assert result.exit_code == 1
    assert "is an input of this command" in result.stderr
    assert db.read_bytes() == before


def test_plot_bad_run_and_bad_target_one_line(
    tmp_path: Path, replayed: tuple[Path, dict[str, Any]]
) -> None:
    db, _ = replayed
    with pytest.raises(plot.TradebotError, match="has no run 999"):
        plot.plot_run(db, 999, tmp_path / "x.png")
    result = CliRunner().invoke(
        main, ["report", "--db", str(db), "--plot", str(tmp_path / "no" / "dir" / "x.png")]
    )
    assert result.exit_code == 1
    assert "cannot write the picture (no directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_sweep_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tradebot sweep --plot` on in-process workers: the heatmap lands in OUT."""
    from contextlib import contextmanager

    from distributed import Client, LocalCluster

    from tradebot import sweep as sw

    @contextmanager
    def in_process(scheduler: str | None, workers: int | None) -> Any:
        with (
            LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            yield client

    monkeypatch.setattr(sw, "start_client", in_process)
    grid = tmp_path / "grid.toml"
    grid.write_text("risk.max_position_fraction = [0.1, 0.2]\nvalidation.min_confidence = [0.7]\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["sweep", str(SAMPLE), "--grid", str(grid), "--out", str(out), "--plot"]
    )
    assert result.exit_code == 0, result.output
    assert png_size(out / "sweep.png") == plot.SWEEP_SIZE_PX
