"""Pictures of a run (`tradebot report --plot`) and of a sweep (`tradebot sweep --plot`).

matplotlib is an optional extra (``pip install 'tradebot[plot]'``), imported only here and
only when drawing; without it `PlotError` says how to install it, in one line. Figures are
drawn with the Agg canvas directly (no pyplot, no global state) at a fixed pixel size.

A run's picture, from the audit log (`plot_run`):

* equity: the starting equity (the run's stored config) plus every booked amount, in
  order: fees at fills, funding payments, and each position's trading PnL at its close.
  This is the realized (cash) equity; its last step equals start + ``pnl.realized``. The
  equity marked at the end (with unrealized PnL, from the stored report) is a dot.
* drawdown of that equity from its running peak, in percent;
* per traded symbol (the most traded `MAX_SYMBOLS`): its mid price from the recording's
  tickerV2 frames when the run's source recording is readable, else its fill prices, with
  entries (triangles: up long, down short) and exits (crosses) at their prices.

A sweep's picture (`plot_sweep`): the metric against one grid key (a line per recording),
or for two keys or more a heatmap over the first two, averaged over the rest.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from tradebot.errors import TradebotError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["MAX_SYMBOLS", "RUN_SIZE_PX", "SWEEP_SIZE_PX", "PlotError", "plot_run", "plot_sweep"]

MAX_SYMBOLS: Final = 4
DPI: Final = 100
RUN_SIZE_PX: Final = (1200, 900)
SWEEP_SIZE_PX: Final = (1000, 700)
_NS: Final = 1_000_000_000


class PlotError(TradebotError):
    """A picture cannot be drawn or written; the message is one line."""


def _figure(size_px: tuple[int, int]) -> Figure:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError(
            "plots need matplotlib: pip install 'tradebot[plot]' (or pip install matplotlib)"
        ) from None
    fig = Figure(figsize=(size_px[0] / DPI, size_px[1] / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out: Path, inputs: Sequence[str | os.PathLike[str]]) -> None:
    target = out.resolve()
    if any(Path(i).resolve() == target for i in inputs):
        raise PlotError(f"{out}: is an input of this command; choose another file")
    try:
        fig.savefig(out, dpi=DPI, format=out.suffix.lstrip(".").lower() or "png")
    except OSError as exc:
        raise PlotError(f"{out}: cannot write the picture ({exc.strerror or exc})") from None
    except ValueError as exc:  # an unknown format, e.g. FILE.xyz
        raise PlotError(f"{out}: {exc}") from None


# --- a run ----------------------------------------------------------------------------------


def _dec(value: object) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    return number if number.is_finite() else None


def _detail(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _start_equity(config_toml: str | None) -> Decimal | None:
    try:
        paper = tomllib.loads(config_toml or "").get("paper", {})
    except tomllib.TOMLDecodeError:
        return None
    return _dec(paper.get("starting_equity_usdt")) if isinstance(paper, dict) else None


def equity_steps(rows: Sequence[Any], start: Decimal) -> tuple[list[int], list[Decimal]]:
    """The realized equity after each booked amount (fill fee, funding, close PnL)."""
    times, values, equity = [], [], start
    for entry in rows:
        d = _detail(entry.detail)
        if entry.kind == "fill":
            delta = -(_dec(d.get("fee")) or Decimal(0))
        elif entry.kind == "funding":
            delta = _dec(d.get("payment")) or Decimal(0)
        elif entry.kind == "position_close":
            delta = _dec(d.get("realized_pnl")) or Decimal(0)
        else:
            continue
        equity += delta
        times.append(entry.ts_ns)
        values.append(equity)
    return times, values


def _mids(source: str | None, symbols: set[str]) -> dict[str, tuple[list[int], list[float]]]:
    """Mid prices of `symbols` from the recording's tickerV2 frames ({} if unreadable)."""
    if not source or not symbols:
        return {}
    import orjson

    from simulator.recording import RecordingReader

    out: dict[str, tuple[list[int], list[float]]] = {s: ([], []) for s in symbols}
    try:
        reader = RecordingReader(source)
    except TradebotError:
        return {}
    with reader:
        for recv_ns, kind, payload, _conn in reader:
            if kind != "ws":
                continue
            if isinstance(payload, str | bytes):
                if b"tickerV2" not in (payload if isinstance(payload, bytes) else payload.encode()):
                    continue
                try:
                    msg = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    continue
            else:
                msg = payload
            data = msg.get("data") if isinstance(msg, dict) else None
            if msg.get("subject") != "tickerV2" or not isinstance(data, dict):
                continue
            series = out.get(str(data.get("symbol")))
            bid, ask = _dec(data.get("bestBidPrice")), _dec(data.get("bestAskPrice"))
            if series is None or bid is None or ask is None or bid <= 0 or ask <= 0:
                continue
            series[0].append(recv_ns)
            series[1].append(float((bid + ask) / 2))
    return {s: v for s, v in out.items() if v[0]}


def _minutes(ts: Sequence[int], t0: int) -> list[float]:
    return [(t - t0) / _NS / 60 for t in ts]


def plot_run(db: str | os.PathLike[str], run_id: int | None, out: Path) -> None:
    """Draw run `run_id` of the audit database `db` (the latest when None) to `out`."""
    from tradebot.store import StoreError, read_audit, read_runs

    runs = read_runs(db)
    if not runs:
        raise StoreError(f"audit database {os.fspath(db)} has no runs yet")
    chosen = [r for r in runs if run_id is None or r.run_id == run_id]
    if not chosen:
        raise StoreError(f"audit database {os.fspath(db)} has no run {run_id}")
    run = chosen[-1]
    if not out.parent.is_dir():
        raise PlotError(f"{out}: cannot write the picture (no directory {out.parent})")
    fig = _figure(RUN_SIZE_PX)  # before reading: a missing matplotlib fails fast
    rows = read_audit(db, run.run_id, ("fill", "funding", "position_open", "position_close"))
    start = _start_equity(run.config)
    times, equity = equity_steps(rows, start if start is not None else Decimal(0))
    report = _detail(run.report or "")
    t_all = [e.ts_ns for e in rows]
    t0 = min(t_all) if t_all else 0
    traded = Counter(e.symbol for e in rows if e.kind in ("position_open", "position_close"))
    symbols = [s for s, _ in traded.most_common(MAX_SYMBOLS)]
    mids = _mids(run.source if run.mode == "replay" else None, set(symbols))
    if mids:
        t0 = (
            min(t0, *(v[0][0] for v in mids.values()))
            if t_all
            else min(v[0][0] for v in mids.values())
        )

    grid = fig.add_gridspec(
        2 + max(1, len(symbols)), 1, height_ratios=[3, 2] + [2] * max(1, len(symbols))
    )
    ax_eq = fig.add_subplot(grid[0])
    ax_dd = fig.add_subplot(grid[1], sharex=ax_eq)
    title = f"run {run.run_id} ({run.mode}) {Path(run.source or '').name}"
    dd = report.get("max_drawdown")
    if isinstance(dd, int | float):
        title += f" - report max drawdown {dd * 100:.2f} %"
    fig.suptitle(title)
    ends = [*(v[0][-1] for v in mids.values()), *t_all]
    _draw_equity(ax_eq, ax_dd, times, equity, start, report, t0, max(ends, default=t0))
    for i, symbol in enumerate(symbols):
        ax = fig.add_subplot(grid[2 + i], sharex=ax_eq)
        _draw_symbol(ax, symbol, [e for e in rows if e.symbol == symbol], mids.get(symbol), t0)
    if not symbols:
        ax = fig.add_subplot(grid[2], sharex=ax_eq)
        ax.text(
            0.5, 0.5, "no positions in this run", ha="center", va="center", transform=ax.transAxes
        )
        ax.set_yticks([])
    fig.axes[-1].set_xlabel("minutes since the run's first event (run clock)")
    fig.tight_layout()
    _save(fig, out, [db, *([run.source] if run.source else [])])


def _draw_equity(
    ax_eq: Axes,
    ax_dd: Axes,
    times: list[int],
    equity: list[Decimal],
    start: Decimal | None,
    report: dict[str, Any],
    t0: int,
    t_end: int,
) -> None:
    base = start if start is not None else Decimal(0)
    xs = [0.0, *_minutes([*times, max(t_end, *times, t0)], t0)]
    ys = [float(base), *(float(v) for v in equity)]
    ys.append(ys[-1])  # flat to the end of the run
    ax_eq.step(xs, ys, where="post", color="tab:blue", label="realized equity")
    pnl = report.get("pnl")
    if isinstance(pnl, dict) and start is not None:
        marked = _dec(pnl.get("realized")), _dec(pnl.get("unrealized"))
        if marked[0] is not None and marked[1] is not None:
            ax_eq.plot(
                [xs[-1]],
                [float(start + marked[0] + marked[1])],
                "o",
                color="tab:orange",
                label="marked equity at the end",
            )
    ax_eq.set_ylabel("equity (USDT)" if start is not None else "PnL (USDT)")
    ax_eq.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax_eq.legend(loc="best", fontsize="small")
    ax_eq.grid(True, alpha=0.3)
    peak, dds = ys[0], []
    for y in ys:
        peak = max(peak, y)
        dds.append(-(peak - y) / peak * 100 if peak > 0 else 0.0)
    ax_dd.fill_between(xs, dds, 0, step="post", color="tab:red", alpha=0.4)
    ax_dd.set_ylabel("drawdown (%)")
    ax_dd.grid(True, alpha=0.3)


def _draw_symbol(
    ax: Axes, symbol: str, rows: list[Any], mid: tuple[list[int], list[float]] | None, t0: int
) -> None:
    if mid is not None:
        ax.plot(_minutes(mid[0], t0), mid[1], color="0.5", linewidth=0.8, label="mid")
    else:
        fills = [(e.ts_ns, _dec(_detail(e.detail).get("price"))) for e in rows if e.kind == "fill"]
        pts = [(t, float(p)) for t, p in fills if p is not None]
        ax.plot(
            _minutes([t for t, _ in pts], t0),
            [p for _, p in pts],
            color="0.5",
            linewidth=0.8,
            label="fill prices",
        )
    for e in rows:
        d = _detail(e.detail)
        x = (e.ts_ns - t0) / _NS / 60
        if e.kind == "position_open" and (price := _dec(d.get("entry_price"))) is not None:
            long = d.get("direction") == 1
            ax.plot(
                [x],
                [float(price)],
                "^" if long else "v",
                color="green" if long else "red",
                markersize=9,
            )
        elif e.kind == "position_close" and (price := _dec(d.get("exit_price"))) is not None:
            ax.plot([x], [float(price)], "x", color="black", markersize=9, mew=2)
    ax.set_ylabel(symbol, fontsize="small")
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.grid(True, alpha=0.3)


# --- a sweep ----------------------------------------------------------------------------------


def plot_sweep(
    rows: Sequence[dict[str, Any]], keys: Sequence[str], metric: str, column: str, out: Path
) -> None:
    """Draw `column` of the sweep's rows over its grid keys to `out`."""
    fig = _figure(SWEEP_SIZE_PX)
    ax = fig.add_subplot()
    good = [r for r in rows if isinstance(r.get(column), int | float)]
    label = {"pnl": "realized PnL (USDT)", "drawdown": "max drawdown (fraction)"}.get(
        metric, metric
    )
    if len(keys) == 1:
        key = keys[0]
        for rec in dict.fromkeys(str(r["recording"]) for r in good):
            pts = sorted((r[key], r[column]) for r in good if r["recording"] == rec)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=Path(rec).name)
        ax.set_xlabel(key)
        ax.set_ylabel(label)
        ax.legend(loc="best", fontsize="small")
        ax.grid(True, alpha=0.3)
        ax.set_title(f"{metric} over {key}")
    else:
        kx, ky = keys[0], keys[1]
        xs = sorted(dict.fromkeys(r[kx] for r in rows))
        ys = sorted(dict.fromkeys(r[ky] for r in rows))
        sums: dict[tuple[Any, Any], list[float]] = {}
        for r in good:
            sums.setdefault((r[kx], r[ky]), []).append(float(r[column]))
        nan = float("nan")
        cells = [[sum(v) / len(v) if (v := sums.get((x, y))) else nan for x in xs] for y in ys]
        image = ax.imshow(cells, origin="lower", aspect="auto", cmap="viridis")
        fig.colorbar(image, ax=ax, label=label)
        ax.set_xticks(range(len(xs)), [str(x) for x in xs])
        ax.set_yticks(range(len(ys)), [str(y) for y in ys])
        finite = [v for line in cells for v in line if v == v]
        middle = (min(finite) + max(finite)) / 2 if finite else 0.0
        for j, line in enumerate(cells):
            for i, value in enumerate(line):
                failed = value != value
                text = "failed" if failed else f"{value:.4g}"
                dark = failed or value < middle  # viridis is dark at the low end
                color = "white" if dark else "black"
                ax.text(i, j, text, ha="center", va="center", color=color, fontsize="small")
        ax.set_xlabel(kx)
        ax.set_ylabel(ky)
        over = "recordings" + (" and " + ", ".join(keys[2:]) if len(keys) > 2 else "")
        ax.set_title(f"{metric}, mean over {over}")
    fig.tight_layout()
    _save(fig, out, [])
