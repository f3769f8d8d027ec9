"""The engine owns its decimal context: a caller's context changes neither money nor digest."""

from __future__ import annotations

from decimal import ROUND_DOWN, Context, getcontext, localcontext
from pathlib import Path

from simulator.recording import RecordingReader
from tradebot.engine import Engine

SAMPLE = Path(__file__).parent.parent / "recordings" / "sample.msgpack"


def _run(context: Context) -> tuple[str, dict[str, object]]:
    with localcontext(context):
        engine = Engine()
        last = 0
        with RecordingReader(SAMPLE) as reader:
            for recv_ns, kind, payload, conn in reader:
                if kind == "ws":
                    engine.on_ws(recv_ns, payload, conn)
                elif kind == "rest":
                    engine.on_rest(recv_ns, payload)
                else:
                    engine.on_conn(recv_ns, payload)
                last = recv_ns
        engine.finish(last)
        assert getcontext().prec == context.prec  # the caller's context is left alone
        return engine.journal.digest(), engine.trading_report()


def test_a_callers_decimal_context_changes_nothing() -> None:
    default = _run(Context())
    assert _run(Context(prec=6, rounding=ROUND_DOWN)) == default
    assert _run(Context(prec=60)) == default
