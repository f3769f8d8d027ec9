"""Instructions per message by stage, counted by valgrind (deterministic, unlike time).

    python benchmarks/instructions.py [--messages 20000] [--symbols 50] [--minutes 34]

Runs this file under `valgrind --tool=callgrind` once per stage with records 20,000 to
20,000 + `--messages` of the benchmark recording (benchmarks/bench_replay.py makes it) and
once with only the first 20,000, and prints (instructions with N - instructions with 0) / N,
cumulative and per stage:

    read      the recording reader (`RecordingReader`: msgpack records)
    parse     + `Parser.parse_frame` / `parse_rest` (typed decode into events)
    core      + the engine's market core (books, market state, ticks): trading off
    full      + decisions, paper broker, journal and the audit store (SQLite)
    ceiling   for reference: `msgpack.Unpacker` + `orjson.loads` on every frame

The count is the same on a busy machine and an idle one, for the same Python, packages
and inputs. Target (issue 11): at most 30k instructions per message for `full`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

STAGES = ("read", "parse", "core", "full", "ceiling")
# Records every run processes before the measured ones: the opening (contracts, snapshots,
# first sight of every topic) is not what the other million messages cost.
WARM = 20_000


def work(stage: str, path: Path, messages: int, folder: Path) -> None:
    """Process the first `messages` records of `path` up to `stage` (after the first
    `WARM` records, which every run processes alike: startup is subtracted with them)."""
    messages += WARM
    import itertools

    from simulator.recording import RecordingReader

    if stage == "ceiling":
        import msgpack
        import orjson

        with path.open("rb") as f:
            records = msgpack.Unpacker(f, raw=False, read_size=1 << 20)
            next(records)
            for record in itertools.islice(records, messages):
                if record[1] == "ws":
                    try:  # noqa: SIM105 (as in bench_replay.ceiling)
                        orjson.loads(record[2])
                    except orjson.JSONDecodeError:
                        pass
        return
    with RecordingReader(path) as reader:
        records = itertools.islice(reader, messages)
        if stage == "read":
            for _ in records:
                pass
            return
        if stage == "parse":
            from tradebot.kucoin.protocol import Parser

            parser = Parser()
            for _, kind, payload, _ in records:
                if kind == "ws":
                    parser.parse_frame(payload)
                elif kind == "rest":
                    parser.parse_rest(payload)
            return
        from tradebot.engine import Engine
        from tradebot.journal import Journal
        from tradebot.store import AuditStore

        store = None
        journal = None
        if stage == "full":
            store = AuditStore(folder / "instructions.sqlite")
            store.begin_run(mode="replay", source=str(path), config_toml="", started_wall_ns=0)
            journal = Journal(sink=store.add)
        engine = Engine(journal=journal, trading=stage == "full")
        last = 0
        for recv_ns, kind, payload, conn in records:
            last = recv_ns
            if kind == "ws":
                engine.on_ws(recv_ns, payload, conn)
            elif kind == "rest":
                engine.on_rest(recv_ns, payload)
            else:
                engine.on_conn(recv_ns, payload)
        engine.finish(last)
        if store is not None:
            store.end_run(status="finished", report={}, ended_wall_ns=0)
            store.close()


def instructions(stage: str, path: Path, messages: int) -> int:
    """Instructions callgrind counted for one run of `work(stage, path, messages)`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--worker",
            stage,
            str(path),
            str(messages),
            tmp,
        ]
        env = dict(os.environ, PYTHONHASHSEED="0")
        subprocess.run(cmd, check=True, env=env, capture_output=True)
        match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
        if match is None:
            raise SystemExit(f"no totals in {out}")
        return int(match.group(1))


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        stage, path, messages, folder = sys.argv[2:6]
        sys.path.insert(0, str(Path(__file__).parent.parent))
        work(stage, Path(path), int(messages), Path(folder))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--symbols", type=int, default=50)
    ap.add_argument("--minutes", type=float, default=34.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rate", type=float, default=10.0)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent.parent))
    from benchmarks.bench_replay import recording

    path = recording(args.symbols, args.minutes, args.seed, args.rate)
    n = args.messages
    print(f"instructions per message, records {WARM:,} to {WARM + n:,} of {path.name} (callgrind)")
    previous = 0.0
    for stage in STAGES:
        per = (instructions(stage, path, n) - instructions(stage, path, 0)) / n
        if stage == "ceiling":
            print(f"  {stage:<8} {per:>9,.0f}")
            continue
        print(f"  {stage:<8} {per:>9,.0f}   (+{per - previous:,.0f})")
        previous = per
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
