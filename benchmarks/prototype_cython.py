"""What a typed Cython module would buy for the parse stage: a measured prototype.

    pip install cython   # only for this measurement; not a dependency of tradebot
    python benchmarks/prototype_cython.py [--messages 20000]

Compiles benchmarks/prototype/typed_parse.pyx (level-2 and tickerV2 frames, the two
busiest channels, through the same msgspec decode and into the same events) into a
temporary folder, checks that it returns exactly what `Parser.parse_frame` returns for
those frames of the benchmark recording, then counts instructions per frame with
callgrind for: the msgspec decode alone, `Parser.parse_frame`, and the prototype.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent


def build(folder: Path) -> None:
    """Compile the prototype into `folder` (importable as `typed_parse`)."""
    from Cython.Build import cythonize
    from setuptools import Extension
    from setuptools.dist import Distribution

    ext = Extension("typed_parse", [str(HERE / "prototype" / "typed_parse.pyx")])
    dist = Distribution({"ext_modules": cythonize([ext], build_dir=str(folder), quiet=True)})
    cmd = dist.get_command_obj("build_ext")
    cmd.build_lib = str(folder)  # type: ignore[attr-defined]
    cmd.build_temp = str(folder / "tmp")  # type: ignore[attr-defined]
    cmd.ensure_finalized()
    cmd.run()


def frames(path: Path, n: int) -> list[str]:
    """The first `n` level-2 and tickerV2 frames of the recording."""
    from simulator.recording import RecordingReader

    out = []
    with RecordingReader(path) as reader:
        for _, kind, payload, _ in reader:
            if kind == "ws" and ("/level2:" in payload[:40] or "/tickerV2:" in payload[:40]):
                out.append(payload)
                if len(out) == n:
                    break
    return out


def worker(what: str, path: Path, n: int, folder: Path, loaded: int) -> None:
    sys.path.insert(0, str(folder))
    from tradebot.kucoin.protocol import Parser
    from tradebot.kucoin.wire import decode_ws

    batch = frames(path, 2_000 + loaded)  # the same reading whatever `n` is
    parser = Parser()
    for frame in batch[:2_000]:  # learn the topics
        parser.parse_frame(frame)
    todo = batch[2_000 : 2_000 + n]
    if what == "decode":
        for frame in todo:
            decode_ws(frame)
    elif what == "python":
        parse = parser.parse_frame
        for frame in todo:
            parse(frame)
    else:
        import typed_parse  # type: ignore[import-not-found]

        routes = parser._routes
        parse = typed_parse.parse_frame
        for frame in todo:
            parse(frame, routes)


def instructions(what: str, path: Path, n: int, folder: Path, loaded: int) -> int:
    out = folder / f"cg.{what}.{n}"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
    cmd += [__file__, "--worker", what, str(path), str(n), str(folder), str(loaded)]
    subprocess.run(cmd, check=True, capture_output=True, env={"PYTHONHASHSEED": "0"})
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    assert match is not None
    return int(match.group(1))


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sys.path.insert(0, str(ROOT))
        worker(
            sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]), int(sys.argv[6])
        )
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20_000)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_replay import recording
    from tradebot.kucoin.protocol import Parser

    path = recording(50, 34.0, 7, 10.0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build(folder)
        sys.path.insert(0, str(folder))
        import typed_parse

        checked, reference = frames(path, 20_000), Parser()
        routes_parser = Parser()
        for frame in checked:
            expected = reference.parse_frame(frame)
            routes_parser.parse_frame(frame)  # keeps the prototype's routes known
            got = typed_parse.parse_frame(frame, routes_parser._routes)
            assert got is None or got == expected, (frame, got, expected)
        n = args.messages
        print(f"instructions per level-2/tickerV2 frame, {n:,} frames (callgrind)")
        results = {}
        for what in ("decode", "python", "cython"):
            total = instructions(what, path, n, folder, n)
            per = (total - instructions(what, path, 0, folder, n)) / n
            results[what] = per
            print(f"  {what:<8} {per:>9,.0f}")
        saved = results["python"] - results["cython"]
        print(f"  compiled parse saves {saved:,.0f} per frame ({saved / results['python']:.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
