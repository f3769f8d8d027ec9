"""The audit store: every run and every journal entry it derived, in one SQLite file.

What is stored (schema version 1, kept in ``PRAGMA user_version``):

    runs   one row per run: run_id, mode ('replay' | 'paper' | 'live'), source (the
           recording path for a replay), started_wall_ns / ended_wall_ns (wall clock,
           epoch ns), config (the effective TOML), status ('running' | 'finished' |
           'failed' | 'interrupted': Ctrl-C or SIGTERM) and report (the final report as
           JSON, NULL until the run ends)
    audit  one row per `JournalEntry`: (run_id, seq) is the key, then ts_ns (the run's
           clock), kind, symbol and detail (the entry's canonical JSON object text);
           indexed on (run_id, kind) so a report can pull the fills or closes of one run

Design: one writer, batches. `AuditStore` is the only writer of a run. The journal hands
it entries in batches between messages (`AuditStore.add_batch` is the `Journal` batch
sink, `Journal.hand_off` calls it), never from inside a booking, so a failing write can
never leave a fill half booked; `add` takes one entry. Both only append to an in-memory
batch; when the batch reaches `batch_size` entries, or on `flush`, `end_run`, `close`,
the batch is written with one ``executemany`` in one transaction. The file is
in WAL mode with ``synchronous=NORMAL``: a commit appends to the write-ahead log without
waiting for the disk, and readers (``tradebot report``) never block the writer.

What a crash can lose: a killed or crashed process loses only the entries still in the
in-memory batch (at most `batch_size`); every committed batch is in the file, and a
transaction is all or nothing, so a batch is never half written. An operating-system
crash or power cut may in addition lose the last few commits (``synchronous=NORMAL``
does not sync the log at each commit), but never corrupts the file. A run whose process
died stays 'running' in `runs`.

Errors: opening a file that cannot be opened, is not an SQLite database, holds some other
program's tables, or was written by a newer tradebot (a larger ``user_version``), and a
write that fails (disk full, read-only file...), raise `StoreError` with a one-line
message naming the file. Misuse (`add` with no run begun, anything after `close`) is a
`RuntimeError`; a bad `mode` or `status` is a `ValueError`.

The class is synchronous and keeps one `sqlite3` connection with the module's defaults
(so it is used from the thread that opened it): the live app drives it from one writer
task. `read_runs` and `read_audit` open the file read-only and may run while a writer
is active.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterable, Mapping
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from tradebot.clock import wall_ns
from tradebot.errors import TradebotError
from tradebot.journal import JournalEntry

__all__ = [
    "MODES",
    "SCHEMA_VERSION",
    "AuditStore",
    "RunRow",
    "StoreError",
    "default_db_path",
    "read_audit",
    "read_runs",
]

SCHEMA_VERSION: Final = 1
MODES: Final = ("replay", "paper", "live")
_END_STATUSES: Final = ("finished", "failed", "interrupted")
_TABLES: Final = frozenset({"runs", "audit"})
_DB_FILENAME: Final = "tradebot.sqlite"

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS runs (
        run_id INTEGER PRIMARY KEY,
        mode TEXT NOT NULL,
        source TEXT,
        started_wall_ns INTEGER,
        ended_wall_ns INTEGER,
        config TEXT,
        status TEXT,
        report TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS audit (
        run_id INTEGER NOT NULL REFERENCES runs,
        seq INTEGER NOT NULL,
        ts_ns INTEGER NOT NULL,
        kind TEXT NOT NULL,
        symbol TEXT NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    )""",
    "CREATE INDEX IF NOT EXISTS audit_run_kind ON audit (run_id, kind)",
)
# SQLite INTEGER is a signed 64-bit int: a value outside cannot be bound.
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1

_INSERT_AUDIT: Final = (
    "INSERT INTO audit (run_id, seq, ts_ns, kind, symbol, detail) VALUES (?, ?, ?, ?, ?, ?)"
)

# What a user can do about an SQLite error, by its code name.
_HINTS: Final = {
    "SQLITE_FULL": "free some disk space",
    "SQLITE_READONLY": "check that the file and its folder are writable",
    "SQLITE_CANTOPEN": "check the path and its permissions",
    "SQLITE_PERM": "check the file's permissions",
    "SQLITE_BUSY": "another process holds a lock on it; try again",
    "SQLITE_LOCKED": "another process holds a lock on it; try again",
    "SQLITE_NOTADB": "it is not an SQLite database; point to another file",
    "SQLITE_CORRUPT": "the file is damaged; move it away to start a new one",
    "SQLITE_IOERR": "the disk reported an I/O error",
}


class StoreError(TradebotError):
    """The audit database cannot be opened, read or written; the message names the file."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _sqlite_error(path: Path, doing: str, exc: Exception) -> StoreError:
    name = str(getattr(exc, "sqlite_errorname", ""))
    # An extended code (SQLITE_IOERR_WRITE) falls back to its primary one (SQLITE_IOERR).
    hint = _HINTS.get(name) or _HINTS.get("_".join(name.split("_")[:2]))
    message = f"audit database {path}: cannot {doing}: {exc}"
    return StoreError(_one_line(f"{message}; {hint}" if hint else message))


@dataclass(frozen=True, slots=True)
class RunRow:
    """One row of `runs`, as stored (None where the column is NULL)."""

    run_id: int
    mode: str
    source: str | None
    started_wall_ns: int | None
    ended_wall_ns: int | None
    config: str | None
    status: str | None
    report: str | None


def default_db_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the audit database lives unless told otherwise.

    ``$TRADEBOT_DATA_DIR/tradebot.sqlite``, else ``$XDG_DATA_HOME/tradebot/tradebot.sqlite``
    (an absolute XDG_DATA_HOME only, as the XDG spec says), else
    ``~/.local/share/tradebot/tradebot.sqlite``. `env` defaults to `os.environ`; its HOME,
    when set, is the home folder.
    """
    env = os.environ if env is None else env
    data_dir = env.get("TRADEBOT_DATA_DIR", "")
    if data_dir:
        return Path(data_dir).expanduser() / _DB_FILENAME
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "tradebot" / _DB_FILENAME
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".local" / "share" / "tradebot" / _DB_FILENAME


def _check_schema(conn: sqlite3.Connection, path: Path, *, allow_empty: bool) -> None:
    """Raise StoreError unless `conn` is a tradebot database we can read (or, if
    `allow_empty`, an empty one we may create the schema in)."""
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = {
            str(row[0])
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        ours = version == SCHEMA_VERSION and tables >= _TABLES and _columns_match(conn)
        empty = version == 0 and not _has_schema(conn)
    except sqlite3.DatabaseError as exc:
        raise _not_tradebot(path, exc) from exc
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"audit database {path} has schema version {version}, newer than this tradebot"
            f" reads ({SCHEMA_VERSION}); upgrade tradebot or use another file"
        )
    if ours or (allow_empty and empty):
        return
    found = ", ".join(sorted(tables)) or "none"
    raise StoreError(
        f"audit database {path} is not a tradebot database (schema version {version},"
        f" tables: {found}); point to another file"
    )


_COLUMNS: Final = {
    "runs": (
        "run_id",
        "mode",
        "source",
        "started_wall_ns",
        "ended_wall_ns",
        "config",
        "status",
        "report",
    ),
    "audit": ("run_id", "seq", "ts_ns", "kind", "symbol", "detail"),
}


def _columns_match(conn: sqlite3.Connection) -> bool:
    """Whether `runs` and `audit` have the columns this tradebot writes (in order)."""
    for table, columns in _COLUMNS.items():
        found = tuple(str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})"))
        if found[: len(columns)] != columns:
            return False
    return True


def _has_schema(conn: sqlite3.Connection) -> bool:
    """Whether the file holds anything at all (a table, index, view or trigger).

    A database someone else made, even one with only a table called `runs`, is never
    adopted: the check runs before anything in the file changes (WAL mode included).
    """
    row = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    return bool(row[0])


def _not_tradebot(path: Path, exc: sqlite3.Error) -> StoreError:
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB" or "not a database" in str(exc):
        return StoreError(
            f"audit database {path} is not a tradebot database (not an SQLite file);"
            " point to another file"
        )
    return _sqlite_error(path, "read it", exc)


class AuditStore:
    """The single writer of the audit database: runs, and journal entries in batches.

    Typical use::

        with AuditStore(default_db_path()) as store:
            run_id = store.begin_run(mode="replay", source=path, config_toml=toml,
                                     started_wall_ns=wall_ns())
            journal = Journal(sink=store.add)
            ...
            store.end_run(status="finished", report=report, ended_wall_ns=wall_ns())

    Leaving the `with` block flushes and closes; leaving it by an exception while a run is
    open first writes the pending batch and marks that run 'failed' ('interrupted' for a
    KeyboardInterrupt: Ctrl-C, or SIGTERM as the CLI raises it), its rows kept. `run_id`
    is the open (or last) run, `rows_written` the audit rows committed since the store was opened,
    `pending` the rows waiting in the batch.
    """

    __slots__ = ("_conn", "_ended", "_pending", "batch_size", "path", "rows_written", "run_id")

    def __init__(self, path: str | os.PathLike[str], *, batch_size: int = 5_000) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.path = Path(path)
        self.batch_size = batch_size
        self.run_id: int | None = None
        self.rows_written = 0
        self._ended = True
        self._pending: list[JournalEntry] = []
        self._conn: sqlite3.Connection | None = self._open()

    def _open(self) -> sqlite3.Connection:
        path = self.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                _one_line(f"audit database {path}: cannot create its folder: {exc.strerror}")
            ) from exc
        if path.is_dir():
            raise StoreError(f"audit database {path} is a folder; give a file path")
        try:
            conn = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise _sqlite_error(path, "open it", exc) from exc
        try:
            _check_schema(conn, path, allow_empty=True)
            self._setup(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _setup(self, conn: sqlite3.Connection) -> None:
        path = self.path
        try:
            mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
            if mode != "wal":
                raise StoreError(
                    f"audit database {path}: cannot use WAL mode (journal mode stays {mode});"
                    " put the file on a local disk"
                )
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Checked again under the write lock: another process may have got here first.
                _check_schema(conn, path, allow_empty=True)
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _sqlite_error(path, "set it up", exc) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"the audit store {self.path} is closed")
        return self._conn

    @property
    def pending(self) -> int:
        """Audit rows waiting in the in-memory batch (lost if the process dies now)."""
        return len(self._pending)

    def begin_run(self, *, mode: str, source: str, config_toml: str, started_wall_ns: int) -> int:
        """Insert a 'running' run, committed at once, and return its run_id."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        conn = self._connection()
        if not self._ended:
            raise RuntimeError(f"run {self.run_id} is still open; end_run() it first")
        try:
            cursor = conn.execute(
                "INSERT INTO runs (mode, source, started_wall_ns, config, status)"
                " VALUES (?, ?, ?, ?, 'running')",
                (mode, _text(source), started_wall_ns, _text(config_toml)),
            )
        except (sqlite3.Error, OverflowError) as exc:
            raise _sqlite_error(self.path, "record a new run", exc) from exc
        run_id = cursor.lastrowid
        assert run_id is not None
        self.run_id = run_id
        self._ended = False
        return run_id

    def add(self, entry: JournalEntry) -> None:
        """Append one journal entry to the batch (the `Journal` sink); flush a full batch."""
        if self._ended:
            raise RuntimeError("AuditStore.add() needs an open run: call begin_run() first")
        self._pending.append(entry)
        if len(self._pending) >= self.batch_size:
            self.flush()

    def add_batch(self, entries: list[JournalEntry]) -> None:
        """Append entries to the batch (the `Journal` batch sink); flush a full batch.

        StoreError when the flush fails; the entries stay in the batch for a retry.
        """
        if self._ended:
            raise RuntimeError("AuditStore.add_batch() needs an open run: call begin_run() first")
        self._pending.extend(entries)
        if len(self._pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Write the pending batch in one transaction.

        On failure (an SQLite error, or a row SQLite cannot hold) the transaction is rolled
        back, the batch is kept (a later flush retries it) and StoreError is raised.
        """
        if not self._pending:
            return
        conn = self._connection()
        run_id = self.run_id
        batch = self._pending
        doing = f"write {len(batch)} audit rows of run {run_id}"
        rows = _audit_rows(self.path, run_id, batch)
        try:
            conn.execute("BEGIN")
            conn.executemany(_INSERT_AUDIT, rows)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback(conn)
            raise _sqlite_error(self.path, doing, exc) from exc
        except Exception as exc:  # what sqlite3 raises outside its own errors (OverflowError)
            self._rollback(conn)
            raise StoreError(
                _one_line(f"audit database {self.path}: cannot {doing}: {exc}")
            ) from exc
        except BaseException:  # Ctrl-C or SIGTERM mid-write: no transaction left open
            self._rollback(conn)
            raise
        self.rows_written += len(batch)
        self._pending = []

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            # SQLite may have rolled back already (e.g. on SQLITE_FULL).
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    def end_run(self, *, status: str, report: dict[str, Any], ended_wall_ns: int) -> None:
        """Flush, then store the run's status ('finished' | 'failed') and report JSON."""
        if status not in _END_STATUSES:
            raise ValueError(f"status must be one of {', '.join(_END_STATUSES)}, not {status!r}")
        if self._ended:
            raise RuntimeError("AuditStore.end_run() needs an open run: call begin_run() first")
        self.flush()
        try:
            report_json = json.dumps(report, ensure_ascii=False, default=str)
        except ValueError as exc:  # a circular reference: a caller's bug, but say so in one line
            raise StoreError(
                _one_line(
                    f"audit database {self.path}: cannot store run {self.run_id}'s report: {exc}"
                )
            ) from exc
        try:
            self._connection().execute(
                "UPDATE runs SET status = ?, report = ?, ended_wall_ns = ? WHERE run_id = ?",
                (status, _text(report_json), ended_wall_ns, self.run_id),
            )
        except (sqlite3.Error, OverflowError) as exc:
            raise _sqlite_error(self.path, f"record the end of run {self.run_id}", exc) from exc
        self._ended = True

    def close(self) -> None:
        """Flush and close; closing twice is harmless. The open run keeps its status."""
        conn = self._conn
        if conn is None:
            return
        try:
            self.flush()
        finally:
            self._conn = None
            self._pending = []
            conn.close()

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or self._conn is None:
            self.close()
            return
        # Leaving by an exception: keep what we can, mark the run failed, never mask `exc`.
        # Every step catches any Exception: cleanup must reach close() whatever went wrong.
        problems: list[str] = []
        if not self._ended:
            try:
                self.flush()
            except Exception as store_exc:
                problems.append(f"{self.pending} audit rows were lost: {store_exc}")
                self._pending = []
            try:
                if isinstance(exc, KeyboardInterrupt):  # Ctrl-C, or SIGTERM raised as one
                    status = "interrupted"
                    why: dict[str, Any] = {
                        "interrupted": str(exc) or "SIGINT",
                        "audit_rows": self.rows_written,
                    }
                else:
                    status, why = "failed", {"error": _one_line(f"{type(exc).__name__}: {exc}")}
                self.end_run(status=status, report=why, ended_wall_ns=wall_ns())
            except Exception as store_exc:
                problems.append(f"run {self.run_id} could not be marked failed: {store_exc}")
        try:
            self.close()
        except Exception as store_exc:  # pragma: no cover - the batch is empty by now
            problems.append(str(store_exc))
        for problem in problems:
            exc.add_note(f"audit store: {problem}")


def _text(text: str) -> str:
    """`text` as valid UTF-8 for SQLite: a path that is not UTF-8 (its undecodable bytes
    held as surrogates) keeps them as backslash escapes instead of failing the write."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def _audit_rows(
    path: Path, run_id: int | None, batch: list[JournalEntry]
) -> list[tuple[object, ...]]:
    """The batch as `audit` rows; StoreError for an entry SQLite cannot store as is.

    Entries come from the journal, whose clock is the input's: a receive time of 2^63 or
    more is an input error upstream, and is refused here too rather than raise inside
    SQLite (OverflowError) with a transaction half open.
    """
    rows: list[tuple[object, ...]] = []
    for e in batch:
        seq, ts_ns = e.seq, e.ts_ns
        if (
            type(seq) is not int
            or type(ts_ns) is not int
            or not _INT64_MIN <= ts_ns <= _INT64_MAX
            or not 0 < seq <= _INT64_MAX
            or type(e.kind) is not str
            or type(e.symbol) is not str
            or type(e.detail) is not str
        ):
            raise StoreError(
                _one_line(
                    f"audit database {path}: cannot write run {run_id}'s journal entry"
                    f" seq {_short(seq)} (ts_ns {_short(ts_ns)}, kind {_short(e.kind)}):"
                    " a value outside what the database holds (64-bit ints, text)"
                )
            )
        rows.append((run_id, seq, ts_ns, e.kind, e.symbol, e.detail))
    return rows


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _open_readonly(path: str | os.PathLike[str]) -> tuple[sqlite3.Connection, Path]:
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise StoreError(f"audit database {p} does not exist; run tradebot to create it") from None
    except OSError as exc:
        raise StoreError(_one_line(f"audit database {p}: cannot read it: {exc.strerror}")) from None
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"audit database {p} is not a file")
    uri = p.resolve().as_uri() + "?mode=ro"
    try:
        return _connect_checked(uri, p), p
    except StoreError:
        # A WAL database is read with a shared-memory file beside it, which a read-only
        # folder cannot hold. No one can be writing there (the log could not be created),
        # so read the file as it is, unless a log with unmerged commits is left over.
        if os.access(p.parent, os.W_OK) or _has_wal(p):
            raise
    return _connect_checked(uri + "&immutable=1", p), p


def _connect_checked(uri: str, p: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise _sqlite_error(p, "open it", exc) from exc
    try:
        _check_schema(conn, p, allow_empty=False)
    except BaseException:
        conn.close()
        raise
    return conn


def _has_wal(p: Path) -> bool:
    wal = p.with_name(p.name + "-wal")
    try:
        return wal.stat().st_size > 0
    except OSError:
        return False


def read_runs(path: str | os.PathLike[str]) -> list[RunRow]:
    """Every run in the database, oldest (smallest run_id) first; read-only."""
    conn, p = _open_readonly(path)
    with closing(conn):
        try:
            rows = conn.execute(
                "SELECT run_id, mode, source, started_wall_ns, ended_wall_ns, config, status,"
                " report FROM runs ORDER BY run_id"
            ).fetchall()
        except sqlite3.Error as exc:
            raise _sqlite_error(p, "read its runs", exc) from exc
    return [RunRow(*row) for row in rows]


def read_audit(
    path: str | os.PathLike[str], run_id: int, kinds: Iterable[str] | None = None
) -> list[JournalEntry]:
    """The audit rows of one run in seq order, only those of `kinds` when given; read-only.

    StoreError when the run does not exist.
    """
    conn, p = _open_readonly(path)
    kind_list = None if kinds is None else list(kinds)
    with closing(conn):
        try:
            if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
                raise StoreError(f"audit database {p} has no run {run_id}")
            sql = "SELECT seq, ts_ns, kind, symbol, detail FROM audit WHERE run_id = ?"
            params: list[object] = [run_id]
            if kind_list is not None:
                if not kind_list:
                    return []
                sql += f" AND kind IN ({', '.join('?' * len(kind_list))})"
                params.extend(kind_list)
            rows = conn.execute(sql + " ORDER BY seq", params).fetchall()
        except sqlite3.Error as exc:
            raise _sqlite_error(p, f"read the audit rows of run {run_id}", exc) from exc
    return [JournalEntry(*row) for row in rows]
