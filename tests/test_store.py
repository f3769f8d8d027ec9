"""Tests for tradebot.store (the SQLite audit log) and tradebot.report_view (`tradebot report`)."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tradebot.journal import Journal, JournalEntry
from tradebot.report_view import render_report
from tradebot.store import (
    SCHEMA_VERSION,
    AuditStore,
    StoreError,
    default_db_path,
    read_audit,
    read_runs,
)

T0 = 1_714_564_800_000_000_000  # 2024-05-01 12:00:00 UTC


def begin(store: AuditStore, mode: str = "replay", source: str = "rec.msgpack") -> int:
    return store.begin_run(mode=mode, source=source, config_toml="[risk]\n", started_wall_ns=T0)


def journal_some(journal: Journal, n: int) -> list[JournalEntry]:
    return [
        journal.record(
            T0 + i,
            "fill" if i % 3 else "signal",
            "XBTUSDTM" if i % 2 else "ETHUSDTM",
            price=Decimal("60000.5") + i,
            size=i,
            ok=bool(i % 2),
            note=f"n{i} é",
        )
        for i in range(n)
    ]


def count_audit_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0])
    finally:
        conn.close()


def assert_one_line_naming(exc: pytest.ExceptionInfo[StoreError], path: Path) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert str(path) in message


# --- writing and reading back -----------------------------------------------------------


def test_round_trip_entries_in_order(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "audit.sqlite"  # parent folders are created
    with AuditStore(db, batch_size=7) as store:
        run_id = begin(store)
        journal = Journal(sink=store.add)
        entries = journal_some(journal, 50)
        store.end_run(status="finished", report={"pnl": {"realized": 1.5}}, ended_wall_ns=T0 + 9)
        assert store.rows_written == 50
    assert read_audit(db, run_id) == entries
    assert read_audit(db, run_id, kinds=["signal"]) == [e for e in entries if e.kind == "signal"]
    assert read_audit(db, run_id, kinds=[]) == []
    (run,) = read_runs(db)
    assert (run.run_id, run.mode, run.source, run.status) == (
        run_id,
        "replay",
        "rec.msgpack",
        "finished",
    )
    assert (run.started_wall_ns, run.ended_wall_ns, run.config) == (T0, T0 + 9, "[risk]\n")
    assert run.report is not None and json.loads(run.report) == {"pnl": {"realized": 1.5}}


def test_batching_writes_nothing_until_batch_size_or_flush(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    store = AuditStore(db, batch_size=10)
    begin(store)
    journal = Journal(sink=store.add)
    journal_some(journal, 9)
    assert count_audit_rows(db) == 0
    assert (store.pending, store.rows_written) == (9, 0)
    journal_some(journal, 1)  # the 10th entry fills the batch
    assert count_audit_rows(db) == 10
    assert (store.pending, store.rows_written) == (0, 10)
    journal_some(journal, 3)
    assert count_audit_rows(db) == 10
    store.flush()
    assert count_audit_rows(db) == 13
    store.flush()  # nothing pending: a no-op
    assert store.rows_written == 13
    store.close()
    store.close()  # twice is harmless


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    with AuditStore(db) as store:
        begin(store)
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            indexes = {r[1] for r in conn.execute("PRAGMA index_list(audit)")}
            assert "audit_run_kind" in indexes
        finally:
            conn.close()


def test_two_runs_get_different_ids_and_the_report_defaults_to_the_latest(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    with AuditStore(db) as store:
        first = begin(store, source="first.msgpack")
        store.end_run(status="finished", report={}, ended_wall_ns=T0 + 1)
    with AuditStore(db) as store:  # reopening an existing database
        second = begin(store, mode="paper", source="")
        store.end_run(status="finished", report={}, ended_wall_ns=T0 + 2)
    assert first != second
    assert [r.run_id for r in read_runs(db)] == [first, second]
    latest = render_report(db)
    assert f"run          {second}" in latest and "paper" in latest
    older = render_report(db, first)
    assert f"run          {first}" in older and "first.msgpack" in older
    with pytest.raises(StoreError, match="no run 99") as exc:
        render_report(db, 99)
    assert_one_line_naming(exc, db)


def test_misuse_is_a_programming_error(tmp_path: Path) -> None:
    with AuditStore(tmp_path / "audit.sqlite") as store:
        entry = JournalEntry(1, T0, "fill", "XBTUSDTM", "{}")
        with pytest.raises(RuntimeError):
            store.add(entry)
        with pytest.raises(ValueError):
            store.begin_run(mode="demo", source="", config_toml="", started_wall_ns=T0)
        begin(store)
        with pytest.raises(RuntimeError):
            begin(store)
        with pytest.raises(ValueError):
            store.end_run(status="running", report={}, ended_wall_ns=T0)
    with pytest.raises(ValueError):
        AuditStore(tmp_path / "other.sqlite", batch_size=0)


# --- bad files --------------------------------------------------------------------------


def test_missing_database_is_a_store_error(tmp_path: Path) -> None:
    db = tmp_path / "nope.sqlite"
    for read in (lambda: read_runs(db), lambda: read_audit(db, 1), lambda: render_report(db)):
        with pytest.raises(StoreError, match="does not exist") as exc:
            read()
        assert_one_line_naming(exc, db)
    assert not db.exists()  # reading never creates it


def test_a_file_that_is_not_sqlite_is_a_store_error(tmp_path: Path) -> None:
    db = tmp_path / "notes.sqlite"
    db.write_bytes(b"these are my trading notes, not a database\n" * 100)
    with pytest.raises(StoreError, match="not a tradebot database") as exc:
        AuditStore(db)
    assert_one_line_naming(exc, db)
    with pytest.raises(StoreError, match="not a tradebot database") as exc:
        read_runs(db)
    assert_one_line_naming(exc, db)
    assert db.read_bytes().startswith(b"these are my trading notes")  # left untouched


def test_another_programs_database_is_a_store_error(tmp_path: Path) -> None:
    db = tmp_path / "other.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a tradebot database") as exc:
        AuditStore(db)
    assert_one_line_naming(exc, db)
    with pytest.raises(StoreError, match="not a tradebot database"):
        read_runs(db)


def test_newer_schema_version_is_a_store_error(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    AuditStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer") as exc:
        AuditStore(db)
    assert_one_line_naming(exc, db)
    with pytest.raises(StoreError, match="newer") as exc:
        read_runs(db)
    assert_one_line_naming(exc, db)


# --- the context manager ----------------------------------------------------------------


def test_an_exception_marks_the_run_failed_and_keeps_flushed_rows(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    with pytest.raises(ZeroDivisionError), AuditStore(db, batch_size=4) as store:
        run_id = begin(store)
        journal = Journal(sink=store.add)
        entries = journal_some(journal, 6)  # 4 written by the full batch, 2 pending
        1 / 0  # noqa: B018
    (run,) = read_runs(db)
    assert run.status == "failed"
    assert run.ended_wall_ns is not None
    assert run.report is not None and "ZeroDivisionError" in json.loads(run.report)["error"]
    assert read_audit(db, run_id) == entries  # the pending batch is flushed on the way out
    assert "ZeroDivisionError" in render_report(db)


def test_an_exception_after_end_run_keeps_the_status(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    with pytest.raises(KeyError), AuditStore(db) as store:
        begin(store)
        store.end_run(status="finished", report={}, ended_wall_ns=T0 + 1)
        raise KeyError("after the end")
    assert read_runs(db)[0].status == "finished"


# --- default path -----------------------------------------------------------------------


def test_default_db_path() -> None:
    assert default_db_path({"TRADEBOT_DATA_DIR": "/data", "XDG_DATA_HOME": "/xdg"}) == Path(
        "/data/tradebot.sqlite"
    )
    assert default_db_path({"XDG_DATA_HOME": "/xdg", "HOME": "/home/t"}) == Path(
        "/xdg/tradebot/tradebot.sqlite"
    )
    assert default_db_path({"XDG_DATA_HOME": "relative", "HOME": "/home/t"}) == Path(
        "/home/t/.local/share/tradebot/tradebot.sqlite"
    )


# --- render_report ----------------------------------------------------------------------


def close_detail(**fields: Any) -> str:
    return json.dumps(fields)


def build_run(db: Path, report: dict[str, Any] | None) -> int:
    with AuditStore(db) as store:
        run_id = begin(store)
        journal = Journal(sink=store.add)
        journal.record(T0, "fill", "XBTUSDTM", side="buy", fee=Decimal("0.06"))
        journal.record(T0 + 1, "fill", "XBTUSDTM", side="sell", fee=Decimal("0.06"))
        journal.record(
            T0 + 65_000_000_000,
            "position_close",
            "XBTUSDTM",
            direction=1,
            lots=2,
            entry_price=Decimal("60000"),
            exit_price=Decimal("60500"),
            realized_pnl=Decimal("10"),
            fees=Decimal("0.12"),
            funding=Decimal("0"),
            reason="take_profit",
            held_s=65.0,
        )
        journal.record(T0 + 2, "fill", "ETHUSDTM", side="sell", fee=Decimal("0.03"))
        journal.record(T0 + 3, "funding", "ETHUSDTM", payment=Decimal("-0.01"))
        journal.record(
            T0 + 130_000_000_000,
            "position_close",
            "ETHUSDTM",
            direction=-1,
            lots=5,
            entry_price=Decimal("3000"),
            exit_price=Decimal("3010"),
            realized_pnl=Decimal("-5"),
            fees=Decimal("0.03"),
            funding=Decimal("-0.01"),
            reason="stop_loss",
            held_s=3725,
        )
        if report is not None:
            store.end_run(status="finished", report=report, ended_wall_ns=T0 + 10**12)
    return run_id


def test_render_report_totals_and_win_rate(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    report = {
        "pnl": {"realized": 5.0, "unrealized": 1.25},
        "max_drawdown": 0.0123,
        "signals": {"momentum": 3, "breakout": 1},
        "rejections": {"risk": 2},
    }
    build_run(db, report)
    text = render_report(db)
    assert "status       finished" in text
    assert "2 trades, 1 winning, win rate 50.0 %" in text
    assert "trading pnl  +5.0000 USDT (closed trades, before fees and funding)" in text
    assert "fees         0.1500 USDT" in text
    assert "funding      -0.0100 USDT" in text
    assert "unrealized   +1.2500 USDT" in text
    assert "max drawdown 1.23 %" in text
    assert "signals      momentum 3, breakout 1" in text
    assert "rejections   risk 2" in text
    trades = [line for line in text.splitlines() if line.startswith("  2024-")]
    assert len(trades) == 2
    assert "XBTUSDTM  long" in trades[0] and "60000 → 60500" in trades[0]
    assert (
        "net pnl +10.0000" in trades[0] and "take_profit" in trades[0] and "held 1m05s" in trades[0]
    )
    assert "ETHUSDTM  short" in trades[1] and "net pnl -5.0000" in trades[1]
    assert "held 1h02m05s" in trades[1]


def test_render_report_of_a_running_run_without_a_report(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    store = AuditStore(db)
    begin(store)
    store.close()  # ended without end_run: still 'running'
    text = render_report(db)
    assert "status       running" in text
    assert "win rate n/a" in text
    assert "report       none stored" in text


def test_render_report_with_missing_fields_shows_question_marks(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    with AuditStore(db) as store:
        begin(store)
        store.add(JournalEntry(1, T0, "position_close", "XBTUSDTM", '{"realized_pnl":2}'))
        store.add(JournalEntry(2, T0, "position_close", "XBTUSDTM", "{}"))
        store.add(JournalEntry(3, T0, "position_close", "XBTUSDTM", "not json"))
        store.add(JournalEntry(4, T0, "fill", "XBTUSDTM", '{"fee":"nan"}'))
        store.end_run(status="finished", report={"pnl": {}}, ended_wall_ns=T0)
    text = render_report(db)
    assert "3 trades, 1 winning, win rate 33.3 %" in text
    assert "trading pnl  +2.0000 USDT (2 of 3 closes without a value)" in text
    assert "fees         ?" in text
    assert "XBTUSDTM  ?      ? lots  ? → ?  net pnl ?  ?  held ?" in text
    assert "unrealized   ?" in text and "max drawdown ?" in text


def test_render_report_shows_only_the_last_trades(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    with AuditStore(db) as store:
        begin(store)
        journal = Journal(sink=store.add)
        for i in range(62):
            journal.record(T0, "position_close", "XBTUSDTM", realized_pnl=i, reason=f"r{i}")
        store.end_run(status="finished", report={}, ended_wall_ns=T0)
    text = render_report(db)
    assert "trades       last 50 of 62 (closed, times UTC)" in text
    assert "12 earlier trades omitted" in text
    assert " r11 " not in text and " r12 " in text and " r61 " in text
    assert "62 trades, 61 winning" in text


def test_render_report_with_no_runs_is_a_store_error(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    AuditStore(db).close()
    with pytest.raises(StoreError, match="no runs") as exc:
        render_report(db)
    assert_one_line_naming(exc, db)


# --- failures while writing, reading while writing ----------------------------------------


def test_a_failed_flush_is_a_store_error_and_keeps_the_batch(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    store = AuditStore(db)
    begin(store)
    store.add(JournalEntry(1, T0, "fill", "XBTUSDTM", "{}"))
    store.flush()
    store.add(JournalEntry(1, T0, "fill", "XBTUSDTM", "{}"))  # the same seq again
    with pytest.raises(StoreError, match="cannot write 1 audit rows") as exc:
        store.flush()
    assert_one_line_naming(exc, db)
    assert (store.pending, store.rows_written) == (1, 1)
    with pytest.raises(StoreError):
        store.close()  # the connection is closed all the same
    store.close()
    assert count_audit_rows(db) == 1


def test_a_store_failure_while_leaving_by_an_exception_does_not_mask_it(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    with pytest.raises(ZeroDivisionError) as exc, AuditStore(db) as store:
        begin(store)
        store.add(JournalEntry(1, T0, "fill", "XBTUSDTM", "{}"))
        store.flush()
        store.add(JournalEntry(1, T0, "fill", "XBTUSDTM", "{}"))  # cannot be written
        1 / 0  # noqa: B018
    assert any("1 audit rows were lost" in note for note in exc.value.__notes__)
    assert read_runs(db)[0].status == "failed"


def test_reading_while_a_writer_is_open(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    with AuditStore(db, batch_size=2) as store:
        run_id = begin(store, mode="live", source="")
        journal = Journal(sink=store.add)
        entries = journal_some(journal, 3)
        assert read_audit(db, run_id) == entries[:2]  # the committed batch only
        assert "status       running" in render_report(db)
        store.flush()
        assert read_audit(db, run_id) == entries


# --- values SQLite cannot hold, cleanup after any exception (issue 13.2) -------------------


@pytest.mark.parametrize("ts_ns", [1 << 63, (1 << 64) - 1, -(1 << 63) - 1, 10**30])
def test_a_timestamp_outside_64_bits_is_a_store_error_not_an_overflow(
    tmp_path: Path, ts_ns: int
) -> None:
    db = tmp_path / "audit.sqlite"
    store = AuditStore(db)
    begin(store)
    store.add(JournalEntry(1, T0, "fill", "XBTUSDTM", "{}"))
    store.add(JournalEntry(2, ts_ns, "fill", "XBTUSDTM", "{}"))
    with pytest.raises(StoreError, match="outside what the database holds") as exc:
        store.flush()
    assert_one_line_naming(exc, db)
    assert store.pending == 2  # nothing half written, the batch kept
    with pytest.raises(StoreError):
        store.close()
    assert count_audit_rows(db) == 0


def test_a_failed_run_is_marked_failed_and_the_next_run_is_not_locked(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    with pytest.raises(StoreError), AuditStore(db, batch_size=2) as store:
        begin(store)
        store.add(JournalEntry(1, T0, "fill", "XBTUSDTM", "{}"))
        store.add(JournalEntry(2, 1 << 63, "fill", "XBTUSDTM", "{}"))  # flushes: fails
    (run,) = read_runs(db)
    assert run.status == "failed"
    assert "outside what the database holds" in json.loads(run.report or "{}")["error"]
    # The same process opens the file again and writes: no transaction was left open.
    with AuditStore(db) as store:
        run_id = begin(store)
        store.add(JournalEntry(1, T0, "fill", "XBTUSDTM", "{}"))
        store.end_run(status="finished", report={}, ended_wall_ns=T0)
    assert read_runs(db)[-1].status == "finished"
    assert len(read_audit(db, run_id)) == 1


class _Boom(Exception):
    pass


def test_any_exception_on_the_cleanup_path_still_marks_the_run_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "audit.sqlite"
    calls = []

    def broken_rows(*args: object) -> list[tuple[object, ...]]:
        calls.append(args)
        raise _Boom("not a StoreError")

    with pytest.raises(ZeroDivisionError) as exc, AuditStore(db) as store:
        begin(store)
        store.add(JournalEntry(1, T0, "fill", "XBTUSDTM", "{}"))
        monkeypatch.setattr("tradebot.store._audit_rows", broken_rows)
        1 / 0  # noqa: B018
    assert calls
    assert any("1 audit rows were lost" in note for note in exc.value.__notes__)
    assert read_runs(db)[0].status == "failed"
    with AuditStore(db) as store:  # closed, unlocked
        begin(store)
