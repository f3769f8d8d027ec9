"""The `tradebot` command line.

Commands: `replay` (paper-trade a recording), `report` (show a run from the audit
database), `synth` (generate a recording), `config` (print the effective configuration).
Errors a user can act on (`TradebotError`) print one line on stderr and exit 1; nothing
prints a traceback for a bad file or a bad value.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import click

from tradebot import __version__
from tradebot.config import Config, load_config, to_toml
from tradebot.errors import TradebotError

__all__ = ["main"]


def _fail(exc: TradebotError) -> click.ClickException:
    return click.ClickException(str(exc))


MIN_SPEED, MAX_SPEED = 0.001, 1_000_000.0


def _speed(value: str) -> float | None:
    """`--speed`: 'max' (None: no pacing) or a factor of real time, within sane bounds."""
    if value == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        speed = math.nan
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise click.ClickException(
            f"--speed: expected 'max' or a number from {MIN_SPEED:g} to {MAX_SPEED:,.0f},"
            f" got {value!r}"
        )
    return speed


def _load(config_path: Path | None, overrides: tuple[str, ...]) -> Config:
    try:
        return load_config(config_path, overrides)
    except TradebotError as exc:
        raise _fail(exc) from None


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML configuration file.",
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override one configuration value (repeatable), e.g. risk.max_open_positions=2.",
)


db_option = click.option(
    "--db",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Audit database (default: tradebot.sqlite in $TRADEBOT_DATA_DIR, else"
    " $XDG_DATA_HOME/tradebot, else ~/.local/share/tradebot).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tradebot")
def main() -> None:
    """KuCoin Futures trading bot with a deterministic replay simulator."""


@main.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=True))
@click.option(
    "--report-json",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the run report as JSON.",
)
@click.option("--speed", default="max", show_default=True, help="'max', or N times real time.")
@config_option
@set_option
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: on a terminal)."
)
@db_option
def replay(
    path: Path,
    report_json: Path | None,
    speed: str,
    config_path: Path | None,
    overrides: tuple[str, ...],
    progress: bool | None,
    db: Path | None,
) -> None:
    """Paper-trade the recording at PATH through the trading core and summarise the run.

    Every decision goes to the audit database (see --db); `tradebot report` shows it.
    """
    from simulator.recording import RecordingReader
    from simulator.replay import ReplayOptions
    from simulator.replay import replay as run_replay
    from tradebot.clock import wall_ns
    from tradebot.report import render_summary
    from tradebot.store import AuditStore, default_db_path

    pace = _speed(speed)
    config = _load(config_path, overrides)
    try:
        RecordingReader(path).close()  # a bad file fails here, before a run is recorded
        store = AuditStore(db if db is not None else default_db_path())
    except TradebotError as exc:
        raise _fail(exc) from None
    show_progress = sys.stderr.isatty() if progress is None else progress
    bar: Any = None
    if show_progress:
        bar = click.progressbar(length=1, label="replaying", file=sys.stderr, width=40)
        bar.__enter__()

    def on_progress(done: int, total: int) -> None:
        if total:
            bar.length = total
            bar.update(done - bar.pos)

    options = ReplayOptions(
        speed=pace, progress=on_progress if bar is not None else None, sink=store.add
    )
    try:
        with store:
            run_id = store.begin_run(
                mode="replay",
                source=str(path),
                config_toml=to_toml(config),
                started_wall_ns=wall_ns(),
            )
            report = run_replay(path, config, options)
            report["run_id"] = run_id
            report["db"] = str(store.path)
            store.end_run(status="finished", report=report, ended_wall_ns=wall_ns())
    except TradebotError as exc:
        raise _fail(exc) from None
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if report["truncated"]:
        click.echo(
            f"warning: {path} ends inside a record (the recorder was stopped mid-write);"
            " everything before it was replayed",
            err=True,
        )
    if report_json is not None:
        _write_json(report_json, report)
    click.echo(render_summary(report))
    click.echo(f"audit        run {report['run_id']} in {report['db']} (tradebot report)")


@main.command()
@db_option
@click.option("--run", "run_id", type=int, help="Run id (default: the latest run).")
def report(db: Path | None, run_id: int | None) -> None:
    """Show a run's trades, PnL, fees, drawdown and win rate from the audit database."""
    from tradebot.report_view import render_report
    from tradebot.store import default_db_path

    try:
        click.echo(render_report(db if db is not None else default_db_path(), run_id))
    except TradebotError as exc:
        raise _fail(exc) from None


def _write_json(path: Path, report: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot write the report ({exc.strerror})") from None


@main.command()
@click.argument("out", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--symbols", default=20, show_default=True, help="Number of contracts.")
@click.option("--minutes", default=3.0, show_default=True, help="Recorded duration.")
@click.option("--seed", default=1, show_default=True, help="Random seed: same seed, same file.")
@click.option("--rate", default=10.0, show_default=True, help="Messages per symbol per second.")
def synth(out: Path, symbols: int, minutes: float, seed: int, rate: float) -> None:
    """Generate a realistic synthetic recording at OUT (deterministic for a seed)."""
    from simulator.synth import generate

    try:
        summary = generate(out, symbols=symbols, minutes=minutes, seed=seed, rate=rate)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{out}: cannot write ({exc.strerror})") from None
    click.echo(
        f"wrote {out}: {summary.messages:,} messages, {len(summary.symbols)} symbols,"
        f" seed {summary.seed}"
    )
    for recv_ns, what, symbol in summary.events:
        click.echo(f"  {recv_ns}  {what:<12} {symbol}")


@main.command("config")
@config_option
@set_option
def show_config(config_path: Path | None, overrides: tuple[str, ...]) -> None:
    """Print the effective configuration as TOML."""
    click.echo(to_toml(_load(config_path, overrides)), nl=False)
