"""Files as users pass them to the command line: checked before anything is written.

* `shown(path)`: a path as printable text (bytes that are not UTF-8 as backslash escapes).
* `open_recording(arg)`: the recording opened once ("-" is standard input), so a pipe,
  ``<(...)`` or a FIFO is read as it arrives and never opened twice.
* `check_output(option, path)`: an output file we can create or replace, not a folder.
* `check_distinct(...)`: the recording, the audit database (and its -wal, -shm, -journal
  files) and the report are different files, by inode when they exist, by resolved path
  when they do not yet.
* `write_atomic(path, text)`: a temporary file beside `path`, then a rename: a reader
  never sees half a report, and a failed write leaves the old file as it was.

Each failure is a `CliFileError` whose message is one line naming the option and the file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Final, cast

from simulator.recording import RecordingReader
from tradebot.errors import TradebotError

__all__ = [
    "CliFileError",
    "check_distinct",
    "check_output",
    "open_recording",
    "shown",
    "write_atomic",
]

STDIN: Final = "-"
_DB_COMPANIONS: Final = ("", "-wal", "-shm", "-journal")


class CliFileError(TradebotError):
    """A path given on the command line cannot be used as given."""


def shown(path: str | os.PathLike[str]) -> str:
    """`path` as text any terminal, JSON file or SQLite column takes."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def open_recording(arg: str) -> RecordingReader:
    """The recording at `arg` ("-": standard input), opened once, header checked."""
    if arg == STDIN:
        stdin = open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)  # noqa: SIM115
        return RecordingReader("<stdin>", file=cast(BinaryIO, stdin))
    return RecordingReader(arg)


def check_output(option: str, path: Path) -> None:
    """Refuse an output path that is a folder, or whose folder is missing or read-only."""
    where = f"{option} {shown(path)}"
    if path.is_dir():
        raise CliFileError(f"{where} is a folder; give a file path")
    folder = path.parent
    if not folder.is_dir():
        raise CliFileError(f"{where}: its folder {shown(folder)} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CliFileError(f"{where}: its folder {shown(folder)} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise CliFileError(f"{where}: the file is not writable")


def _identity(path: Path) -> tuple[int, int] | str:
    """The file's (device, inode) when it exists, else the absolute path it will have."""
    try:
        st = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return (st.st_dev, st.st_ino)


def check_distinct(recording: RecordingReader, db: Path, report: Path | None) -> None:
    """Refuse when two of the recording, the database and the report are one file."""
    st = os.fstat(recording.fileno())
    rec_id: tuple[int, int] | None = (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None
    db_ids = {_identity(Path(f"{os.fspath(db)}{suffix}")) for suffix in _DB_COMPANIONS}
    rec = f"the recording {recording.path}"
    if rec_id is not None and rec_id in db_ids:
        raise CliFileError(f"--db {shown(db)} is {rec}; give the audit database another path")
    if report is None:
        return
    report_id = _identity(report)
    if rec_id is not None and report_id == rec_id:
        raise CliFileError(f"--report-json {shown(report)} is {rec}; give the report another path")
    if report_id in db_ids:
        raise CliFileError(
            f"--report-json {shown(report)} is the audit database {shown(db)} (or one of its"
            " files); give the report another path"
        )


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename; OSError on failure."""
    folder = path.parent
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
