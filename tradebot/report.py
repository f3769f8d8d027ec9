"""The run report (`--report-json`, version 1) and the terminal summary.

The keys named in the report contract keep their names and meaning; more keys are
added beside them. The `digest` is a SHA-256 over the journal (every derived fact in
order) followed by the canonical JSON of the deterministic part of the report. It
leaves out what depends on the machine: `wall_s`, `messages_per_s`, `latency_ns`,
`recording` and any path.
"""

from __future__ import annotations

import json
from typing import Any

from tradebot.journal import Journal, fmt_float

__all__ = ["MACHINE_KEYS", "REPORT_VERSION", "build_report", "canonical_json", "render_summary"]

REPORT_VERSION = 1

# Keys whose values depend on the machine, the path or the moment: never in the digest.
MACHINE_KEYS = frozenset(
    {"recording", "db", "run_id", "wall_s", "messages_per_s", "latency_ns", "digest"}
)


def _canon(value: Any) -> Any:
    if isinstance(value, float):
        return fmt_float(value)
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canon(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no spaces, floats as fixed-format strings."""
    return json.dumps(_canon(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def build_report(
    *,
    recording: str,
    records: int,
    malformed: dict[str, int],
    truncated: bool,
    counters: dict[str, Any],
    corruption: dict[str, Any] | None = None,
    latency_ns: dict[str, Any],
    journal: Journal,
    wall_s: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report dict, digest included. `counters` comes from `Engine.counters()`;
    `corruption` describes invalid objects mid-file (`corrupt: true` beside `truncated`)."""
    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "recording": recording,
        "messages": records,
        "messages_by_topic": counters["messages_by_topic"],
        "malformed": dict(sorted(malformed.items())),
        "truncated": truncated,
        "corrupt": corruption is not None,
        "sequence_gaps": counters["sequence_gaps"],
        "book_resyncs": counters["book_resyncs"],
        "stale_periods": counters["stale_periods"],
        "listings": counters["listings"],
        "delistings": counters["delistings"],
    }
    for key, value in counters.items():
        report.setdefault(key, value)
    if extra:
        for key, value in extra.items():
            report.setdefault(key, value)
    if corruption is not None:
        report["corruption"] = corruption
    derived = {k: v for k, v in report.items() if k not in MACHINE_KEYS}
    if corruption is None:
        # A clean file's digest stays what it was before `corrupt` existed.
        del derived["corrupt"]
    report["digest"] = journal.digest(canonical_json(derived))
    report["wall_s"] = round(wall_s, 6)
    report["messages_per_s"] = round(records / wall_s, 1) if wall_s > 0 else 0.0
    report["latency_ns"] = latency_ns
    return report


def _counts(counts: dict[str, int]) -> str:
    if not counts:
        return "none"
    return ", ".join(
        f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )


def render_summary(report: dict[str, Any]) -> str:
    """A short human summary of a report, a few lines."""
    lines = [
        f"recording    {report['recording']}"
        + ("  (TRUNCATED: the file ends inside a record)" if report["truncated"] else "")
        + ("  (CORRUPT: " + report["corruption"]["message"] + ")" if report.get("corrupt") else ""),
        f"messages     {report['messages']:,} in {report['wall_s']:.2f} s"
        f" ({report['messages_per_s']:,.0f}/s)",
        f"by topic     {_counts(report['messages_by_topic'])}",
        f"malformed    {_counts(report['malformed'])}",
        *_order_lines(report),
        f"books        {report['sequence_gaps']} sequence gaps, {report['book_resyncs']} resyncs,"
        f" {report.get('crossed_books', 0)} crossed",
        f"freshness    {report['stale_periods']} stale periods",
        f"listings     {', '.join(report['listings']) or 'none'}",
        f"delistings   {', '.join(report['delistings']) or 'none'}",
    ]
    if "signals" in report:
        lines.extend(_trading_lines(report))
    lat = report.get("latency_ns", {}).get("message")
    if lat:
        p50, p99, top = lat["p50"] / 1000, lat["p99"] / 1000, lat["max"] / 1000
        lines.append(
            f"latency      per message p50 {p50:.1f} us, p99 {p99:.1f} us, max {top:.0f} us"
        )
    lines.append(f"digest       {report['digest']}")
    return "\n".join(lines)


def _order_lines(report: dict[str, Any]) -> list[str]:
    """A line when the recording's receive times went backwards (replayed in file order)."""
    backwards = report.get("recv_ns_backwards", 0)
    if not backwards:
        return []
    times = "once" if backwards == 1 else f"{backwards:,} times"
    return [f"clock        recv_ns went backwards {times} (records replayed in file order)"]


def _trading_lines(report: dict[str, Any]) -> list[str]:
    pnl = report["pnl"]
    win_rate = report["win_rate"]
    positions = report["positions"]
    return [
        f"signals      {_counts(report['signals'])}",
        f"rejections   {_counts(report['rejections'])}",
        f"orders       {report['orders']} orders, {report['fills']} fills,"
        f" fees {report['fees']:.4f} USDT",
        f"positions    {positions['opened']} opened, {positions['closed']} closed,"
        f" win rate {'n/a' if win_rate is None else f'{win_rate * 100:.1f} %'}",
        f"pnl          realized {pnl['realized']:+.4f} USDT,"
        f" unrealized {pnl['unrealized']:+.4f} USDT,"
        f" max drawdown {report['max_drawdown'] * 100:.2f} %",
    ]
