"""What a long command-line run needs: a progress bar by bytes, and SIGTERM as Ctrl-C.

`ProgressBar.update(done, total)` redraws one line on its stream: a bar and a percentage
when the size is known, the bytes read so far when it is not (a pipe). The replay calls it
at most every 0.1 s of wall time, so the bar moves smoothly whatever the file's size.

`sigterm_as_interrupt()` makes SIGTERM raise `Terminated` (a `KeyboardInterrupt`) in the
main thread for the duration of a run, so that `kill` ends a replay the way Ctrl-C does:
the audit store writes its pending batch and marks the run 'interrupted'.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Final, TextIO

__all__ = ["ProgressBar", "Terminated", "sigterm_as_interrupt"]

_WIDTH: Final = 30
_MB: Final = 1_000_000


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run was, so it ends as an interrupt."""


class ProgressBar:
    """One redrawn line on `stream` showing bytes done (of total, when known)."""

    __slots__ = ("_drawn", "label", "stream")

    def __init__(self, stream: TextIO, label: str = "replaying") -> None:
        self.stream = stream
        self.label = label
        self._drawn = False

    @staticmethod
    def line(label: str, done: int, total: int) -> str:
        """The text of the bar for `done` of `total` bytes (`total` 0: unknown)."""
        if total <= 0:
            return f"{label}  {done / _MB:,.1f} MB"
        fraction = min(max(done / total, 0.0), 1.0)
        filled = round(fraction * _WIDTH)
        bar = "#" * filled + "-" * (_WIDTH - filled)
        return (
            f"{label}  [{bar}] {fraction * 100:3.0f}%  {done / _MB:,.1f} of {total / _MB:,.1f} MB"
        )

    def update(self, done: int, total: int) -> None:
        self.stream.write("\r" + self.line(self.label, done, total) + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, the first SIGTERM raises `Terminated`; later ones are ignored
    while the run cleans up. Outside the main thread, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # cleanup is short: let it finish
        raise Terminated("SIGTERM")

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
