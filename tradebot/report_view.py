"""`tradebot report`: one run of the audit database as text for the terminal.

`render_report(path, run_id)` reads the run (the latest when `run_id` is None) and its
audit rows read-only, so it can run while a bot is still writing. It shows:

* the run: id, mode, source, status, wall-clock start and end;
* its trades, one line per "position_close" row (close time on the run's clock, symbol,
  direction, lots, entry → exit price, realized PnL, reason, time held), the last
  `MAX_TRADES` of them with a line saying how many earlier ones are not shown;
* totals: closed trades, wins (realized PnL > 0), win rate (wins / closed trades, "n/a"
  when none), realized PnL, fees (the "fill" rows' ``fee``; the closes' ``fees`` when the
  run journaled no fills) and funding (the "funding" rows' ``payment``; likewise the
  closes' ``funding``);
* from the run's stored report JSON, when there is one: unrealized PnL, max drawdown
  (``max_drawdown``, a fraction, shown as a percentage), signals by type and rejections by
  layer, and the error of a failed run.

A database written by an older tradebot may lack fields: a missing or unreadable value is
shown as "?" and left out of the sums, which then say how many rows lacked it (a sum
every row lacked is "?"). The report JSON is read as `tradebot.report.build_report` writes
it (``pnl.unrealized``, ``max_drawdown``, ``signals``, ``rejections``; a flat
``unrealized_pnl`` is read too). Money is in USDT with 4 decimals; prices and lots are
shown as recorded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from tradebot.journal import JournalEntry
from tradebot.store import RunRow, StoreError, read_audit, read_runs

__all__ = ["MAX_TRADES", "render_report"]

MAX_TRADES: Final = 50
_W: Final = 13  # label column width, as in the run summary


def render_report(path: str | os.PathLike[str], run_id: int | None = None) -> str:
    """The report of run `run_id` (the latest run when None) as terminal text.

    StoreError (one line) when the database is missing or not a tradebot database, has no
    runs, or has no run `run_id`.
    """
    runs = read_runs(path)
    if not runs:
        raise StoreError(f"audit database {os.fspath(path)} has no runs yet")
    if run_id is None:
        run = runs[-1]
    else:
        found = [r for r in runs if r.run_id == run_id]
        if not found:
            raise StoreError(
                f"audit database {os.fspath(path)} has no run {run_id}"
                f" (its runs are {runs[0].run_id} to {runs[-1].run_id})"
            )
        run = found[0]
    rows = read_audit(path, run.run_id, ("position_close", "fill", "funding"))
    closes = [(e, _detail(e)) for e in rows if e.kind == "position_close"]
    lines = _run_lines(run)
    lines.extend(_trade_lines(closes))
    lines.extend(_total_lines(closes, rows))
    lines.extend(_report_lines(run))
    return "\n".join(lines)


# --- reading values ------------------------------------------------------------------


def _detail(entry: JournalEntry) -> dict[str, Any]:
    try:
        value = json.loads(entry.detail, parse_float=Decimal)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _num(value: object) -> Decimal | None:
    """A finite number from a JSON value (number or numeric string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    return number if number.is_finite() else None


def _sum(values: Iterable[object]) -> tuple[Decimal, int]:
    """The sum of the readable numbers, and how many values were not readable."""
    total, missing = Decimal(0), 0
    for value in values:
        number = _num(value)
        if number is None:
            missing += 1
        else:
            total += number
    return total, missing


# --- formatting ----------------------------------------------------------------------


def _plain(value: object) -> str:
    number = _num(value)
    return "?" if number is None else format(number.normalize(), "f")


def _money(value: object, *, signed: bool = True) -> str:
    number = _num(value)
    if number is None:
        return "?"
    return format(number, "+.4f" if signed else ".4f")


def _usdt(value: object, *, signed: bool = True) -> str:
    text = _money(value, signed=signed)
    return text if text == "?" else f"{text} USDT"


def _wall(ns: int | None, *, zone: bool = True) -> str:
    if ns is None:
        return "?"
    try:
        when = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
        return when.strftime("%Y-%m-%d %H:%M:%S UTC" if zone else "%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "?"


def _duration(value: object) -> str:
    seconds = _num(value)
    if seconds is None or seconds < 0:
        return "?"
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = int(seconds.to_integral_value())
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h{s % 3600 // 60:02d}m"


def _direction(value: object) -> str:
    if isinstance(value, str) and value.lower() in ("long", "short"):
        return value.lower()
    number = _num(value)
    if number is None or number == 0:
        return "?"
    return "long" if number > 0 else "short"


def _counts(value: object) -> str:
    if not isinstance(value, dict):
        return "?"
    if not value:
        return "none"

    def order(item: tuple[str, object]) -> tuple[Decimal, str]:
        number = _num(item[1])
        return (-number if number is not None else Decimal(0), str(item[0]))

    return ", ".join(f"{k} {_plain(v)}" for k, v in sorted(value.items(), key=order))


def _label(name: str, text: str) -> str:
    return f"{name:<{_W}}{text}"


# --- sections ------------------------------------------------------------------------


def _run_lines(run: RunRow) -> list[str]:
    ended = _wall(run.ended_wall_ns)
    if run.started_wall_ns is not None and run.ended_wall_ns is not None:
        took = _duration(Decimal(run.ended_wall_ns - run.started_wall_ns) / 1_000_000_000)
        ended += f" (took {took})"
    return [
        _label("run", str(run.run_id)),
        _label("mode", run.mode or "?"),
        _label("source", run.source or "-"),
        _label("status", run.status or "?"),
        _label("started", _wall(run.started_wall_ns)),
        _label("ended", ended if run.ended_wall_ns is not None else "-"),
    ]


def _trade_lines(closes: list[tuple[JournalEntry, dict[str, Any]]]) -> list[str]:
    if not closes:
        return [_label("trades", "none")]
    shown = closes[-MAX_TRADES:]
    omitted = len(closes) - len(shown)
    head = f"{len(closes)}" if not omitted else f"last {len(shown)} of {len(closes)}"
    lines = [_label("trades", head + " (closed, times UTC)")]
    if omitted:
        lines.append(f"  ... {omitted} earlier trades omitted")
    symbol_w = max(len(e.symbol) for e, _ in shown)
    for entry, d in shown:
        reason = d.get("reason")
        lines.append(
            f"  {_wall(entry.ts_ns, zone=False)}  {entry.symbol:<{symbol_w}}"
            f"  {_direction(d.get('direction')):<5}  {_plain(d.get('lots'))} lots"
            f"  {_plain(d.get('entry_price'))} → {_plain(d.get('exit_price'))}"
            f"  net pnl {_money(d.get('net_pnl', d.get('realized_pnl')))}"
            f"  {reason if isinstance(reason, str) and reason else '?'}"
            f"  held {_duration(d.get('held_s'))}"
        )
    return lines


def _total(values: list[object], what: str, *, signed: bool = True) -> str:
    """The sum of `values` in USDT, noting how many lacked a value ("?" when all did)."""
    total, missing = _sum(values)
    if values and missing == len(values):
        return "?"
    text = _usdt(total, signed=signed)
    return f"{text} ({missing} of {len(values)} {what} without a value)" if missing else text


def _total_lines(
    closes: list[tuple[JournalEntry, dict[str, Any]]], rows: list[JournalEntry]
) -> list[str]:
    # A win is a positive net result (after fees and funding), as in the run report.
    pnls = [_num(d.get("net_pnl", d.get("realized_pnl"))) for _, d in closes]
    wins = sum(1 for p in pnls if p is not None and p > 0)
    win_rate = f"{wins / len(closes) * 100:.1f} %" if closes else "n/a"
    realized = _total([d.get("realized_pnl") for _, d in closes], "closes")
    net = _total([d.get("net_pnl") for _, d in closes], "closes")

    fills = [_detail(e).get("fee") for e in rows if e.kind == "fill"]
    if fills or not closes:
        fees = _total(fills, "fills", signed=False)
    else:  # a run that journaled no fills: the fees its closes carry
        fees = _total([d.get("fees") for _, d in closes], "closes", signed=False)
        fees += " (from the closes)" if fees != "?" else ""

    payments = [_detail(e).get("payment") for e in rows if e.kind == "funding"]
    if payments or not closes:
        funding = _total(payments, "payments")
    else:
        funding = _total([d.get("funding") for _, d in closes], "closes")
        funding += " (from the closes)" if funding != "?" else ""

    return [
        _label("totals", f"{len(closes)} trades, {wins} winning, win rate {win_rate}"),
        _label("trading pnl", realized + " (closed trades, before fees and funding)"),
        _label("net pnl", net + " (closed trades, after fees and funding)"),
        _label("fees", fees),
        _label("funding", funding),
    ]


def _report_lines(run: RunRow) -> list[str]:
    if run.report is None:
        return [_label("report", f"none stored (the run is {run.status or '?'})")]
    try:
        report = json.loads(run.report, parse_float=Decimal)
    except ValueError:
        return [_label("report", "unreadable")]
    if not isinstance(report, dict):
        return [_label("report", "unreadable")]
    lines = []
    if "error" in report:
        lines.append(_label("error", str(report["error"])))
    pnl = report.get("pnl")
    unrealized = pnl.get("unrealized") if isinstance(pnl, dict) else report.get("unrealized_pnl")
    drawdown = _num(report.get("max_drawdown"))
    keys = ("pnl", "unrealized_pnl", "max_drawdown", "signals", "rejections")
    if lines and not any(k in report for k in keys):
        return lines  # a failed run's report: only the error
    lines += [
        _label("unrealized", _usdt(unrealized)),
        _label("max drawdown", "?" if drawdown is None else f"{drawdown * 100:.2f} %"),
        _label("signals", _counts(report.get("signals"))),
        _label("rejections", _counts(report.get("rejections"))),
    ]
    return lines
