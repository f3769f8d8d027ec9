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
from tradebot.cli_files import check_distinct, check_output, open_recording, shown, write_atomic
from tradebot.cli_run import ProgressBar, Terminated, sigterm_as_interrupt
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
    type=click.Path(path_type=Path),
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
    type=click.Path(path_type=Path),
    help="Audit database (default: tradebot.sqlite in $TRADEBOT_DATA_DIR, else"
    " $XDG_DATA_HOME/tradebot, else ~/.local/share/tradebot).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tradebot")
def main() -> None:
    """KuCoin Futures trading bot with a deterministic replay simulator."""


@main.command()
@click.argument("path", type=click.Path(allow_dash=True))
@click.option(
    "--report-json",
    type=click.Path(path_type=Path),
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
    path: str,
    report_json: Path | None,
    speed: str,
    config_path: Path | None,
    overrides: tuple[str, ...],
    progress: bool | None,
    db: Path | None,
) -> None:
    """Paper-trade the recording at PATH ("-": standard input) through the trading core
    and summarise the run.

    Every decision goes to the audit database (see --db); `tradebot report` shows it.
    Ctrl-C or SIGTERM ends the run early: what it journaled is kept, the run is marked
    'interrupted'.
    """
    from tradebot.store import default_db_path

    pace = _speed(speed)
    config = _load(config_path, overrides)
    db_path = db if db is not None else default_db_path()
    show_progress = sys.stderr.isatty() if progress is None else progress
    try:
        with sigterm_as_interrupt():
            report = _run_replay(path, config, pace, db_path, report_json, show_progress)
    except TradebotError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt as exc:
        what = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
        click.echo(f"interrupted by {what}: {_interrupted_note(db_path)}", err=True)
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    if report.get("corrupt"):
        raise click.ClickException(_corrupt_message(report))


def _run_replay(
    path: str,
    config: Config,
    pace: float | None,
    db_path: Path,
    report_json: Path | None,
    show_progress: bool,
) -> dict[str, Any]:
    """Check every file, replay, write the report and print the summary; return the report."""
    from simulator.replay import ReplayOptions
    from simulator.replay import replay as run_replay
    from tradebot.clock import wall_ns
    from tradebot.report import render_summary
    from tradebot.store import AuditStore

    if report_json is not None:
        check_output("--report-json", report_json)
    reader = open_recording(path)  # a bad file fails here, before a run is recorded
    try:
        check_distinct(reader, db_path, report_json)
        created = not db_path.exists()
        store = AuditStore(db_path)
    except BaseException:
        reader.close()
        raise
    if created:
        click.echo(
            f"audit database created at {shown(store.path)}"
            " (choose another with --db or $TRADEBOT_DATA_DIR)",
            err=True,
        )
    bar = ProgressBar(sys.stderr) if show_progress else None
    options = ReplayOptions(
        speed=pace, progress=bar.update if bar is not None else None, batch_sink=store.add_batch
    )
    try:
        with store:
            run_id = store.begin_run(
                mode="replay",
                source=shown(reader.path),
                config_toml=to_toml(config),
                started_wall_ns=wall_ns(),
            )
            report = run_replay(reader, config, options)
            report["recording"] = shown(reader.path)
            report["run_id"] = run_id
            report["db"] = shown(store.path)
            status = "failed" if report.get("corrupt") else "finished"
            store.end_run(status=status, report=report, ended_wall_ns=wall_ns())
    finally:
        reader.close()
        if bar is not None:
            bar.close()
    if report["truncated"]:
        click.echo(
            f"warning: {report['recording']} ends inside a record (the recorder was stopped"
            " mid-write); everything before it was replayed",
            err=True,
        )
    if report_json is not None:
        _write_json(report_json, report)
    click.echo(render_summary(report))
    click.echo(f"audit        run {report['run_id']} in {report['db']} (tradebot report)")
    return report


def _interrupted_note(db_path: Path) -> str:
    """Where the interrupted run's rows went, read back from the database."""
    from tradebot.store import StoreError, read_runs

    try:
        runs = read_runs(db_path)
    except StoreError:
        return "no run was recorded"
    if not runs or runs[-1].status != "interrupted":
        return "no run was recorded"
    return (
        f"run {runs[-1].run_id} is marked interrupted in {shown(db_path)}; what it journaled"
        " is kept (tradebot report)"
    )


def _corrupt_message(report: dict[str, Any]) -> str:
    detail = report.get("corruption", {})
    return (
        f"{report['recording']} is corrupt: {detail.get('message', 'an invalid object')};"
        " the run is marked failed"
    )


@main.command()
@db_option
@click.option("--run", "run_id", type=int, help="Run id (default: the latest run).")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also draw equity, drawdown, entries and exits to FILE.png (needs tradebot[plot]).",
)
def report(db: Path | None, run_id: int | None, plot_path: Path | None) -> None:
    """Show a run's trades, PnL, fees, drawdown and win rate from the audit database."""
    from tradebot.report_view import render_report
    from tradebot.store import default_db_path

    try:
        click.echo(render_report(db if db is not None else default_db_path(), run_id))
    except TradebotError as exc:
        raise _fail(exc) from None
    if plot_path is not None:
        _report_plot(db if db is not None else default_db_path(), run_id, plot_path)


def _report_plot(db: Path, run_id: int | None, plot_path: Path) -> None:
    from tradebot.plot import plot_run

    try:
        plot_run(db, run_id, plot_path)
    except TradebotError as exc:
        raise _fail(exc) from None
    click.echo(f"plot         {plot_path}")


def _write_json(path: Path, report: dict[str, Any]) -> None:
    try:
        write_atomic(path, json.dumps(report, indent=2) + "\n")
    except OSError as exc:
        raise click.ClickException(
            f"{shown(path)}: cannot write the report ({exc.strerror})"
        ) from None


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
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


@main.command()
@click.argument("recordings", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--grid",
    "grid_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML file: section.key = [values to try].",
)
@config_option
@set_option
@click.option("--scheduler", metavar="ADDR", help="Dask scheduler, e.g. tcp://host:8786.")
@click.option(
    "--workers",
    type=click.IntRange(1, 1024),
    help="Worker processes of the local cluster (default: the machine's cores).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("sweep-out"),
    show_default=True,
    help="Directory for the reports, configs and summary.csv; jobs done there are skipped.",
)
@click.option("--sort", "metric", default="pnl", show_default=True, help="Sort metric.")
@click.option(
    "--retries",
    type=click.IntRange(0, 10),
    default=1,
    show_default=True,
    help="Dask retries of a job that raises.",
)
@click.option("--plot", is_flag=True, help="Draw the metric over the grid to OUT/sweep.png.")
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: on a terminal)."
)
def sweep(
    recordings: tuple[str, ...],
    grid_path: Path,
    config_path: Path | None,
    overrides: tuple[str, ...],
    scheduler: str | None,
    workers: int | None,
    out: Path,
    metric: str,
    retries: int,
    plot: bool,
    progress: bool | None,
) -> None:
    """Replay every RECORDING under every point of the --grid, as jobs on Dask.

    Without --scheduler a local cluster runs them; with it, the cluster at ADDR does, and
    its workers must see the recordings at the same paths. Exits 1 if a job failed, 130
    when interrupted (what finished is written; rerun with the same --out to go on).
    """
    from tradebot import sweep as sw

    if metric not in sw.METRICS:
        raise click.ClickException(
            f"--sort: expected one of {', '.join(sw.METRICS)}, got {metric!r}"
        )
    if scheduler is not None and workers is not None:
        raise click.ClickException("--workers sizes the local cluster; drop it with --scheduler")
    try:
        grid = sw.load_grid(grid_path)
        jobs = sw.plan_jobs(recordings, grid, config_path, overrides)
        sw.check_out_dir(out, [*recordings, grid_path, *([config_path] if config_path else [])])
        with sw.start_client(scheduler, workers) as client:
            link = sw.dashboard_link(client)
            if link:
                click.echo(f"dashboard    {link}", err=True)
            run = _sweep_run(sw, client, jobs, out, retries, progress)
    except TradebotError as exc:
        raise _fail(exc) from None
    columns = sw.table_columns(grid.keys)
    rows = sw.sort_rows(sw.result_rows(run.results), metric)
    try:
        sw.write_csv(out / sw.SUMMARY_CSV, rows, columns)
    except TradebotError as exc:
        raise _fail(exc) from None
    click.echo(sw.render_table(rows, columns))
    counts = {
        s: sum(1 for r in run.results if r.status.startswith(s))
        for s in ("done", "failed", "cancelled")
    }
    skipped = sum(1 for r in run.results if r.skipped)
    click.echo(
        f"jobs         {len(jobs)}: {counts['done']} done ({skipped} from an earlier run),"
        f" {counts['failed']} failed, {counts['cancelled']} cancelled; {out / sw.SUMMARY_CSV}"
    )
    if plot:
        from tradebot.plot import plot_sweep

        try:
            plot_sweep(rows, grid.keys, metric, sw.METRICS[metric][0], out / "sweep.png")
        except TradebotError as exc:
            raise _fail(exc) from None
        click.echo(f"plot         {out / 'sweep.png'}")
    if run.interrupted:
        click.echo("interrupted: rerun with the same --out to run the rest", err=True)
        sys.exit(130)
    if counts["failed"]:
        sys.exit(1)


def _sweep_run(
    sw: Any, client: Any, jobs: list[Any], out: Path, retries: int, progress: bool | None
) -> Any:
    """Run the jobs with a progress bar over them on a terminal."""
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return sw.run_jobs(client, jobs, out, retries=retries)
    with click.progressbar(length=len(jobs), label="jobs", file=sys.stderr, width=40) as bar:
        done = sum(1 for j in jobs if sw.load_done(out, j) is not None)
        bar.update(done)
        return sw.run_jobs(client, jobs, out, retries=retries, on_result=lambda _r: bar.update(1))
