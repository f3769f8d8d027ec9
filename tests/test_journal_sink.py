"""Issue 12.16: a failing journal sink never leaves half-booked money.

Entries reach the audit store in batches between messages (`Journal.hand_off`); a sink
that raises inside a booking is caught and detached; a failed store stops the replay with
one line and the run marked failed.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulator.replay import ReplayOptions, replay
from simulator.synth import generate
from tests.helpers import TRADING, Scenario
from tests.test_trader import ASKS, LOTS, A
from tradebot.cli import main
from tradebot.journal import Journal, JournalEntry, SinkError
from tradebot.store import AuditStore, StoreError, read_audit, read_runs

SAMPLE = Path(__file__).resolve().parents[1] / "recordings" / "sample.msgpack"


class DiskFull(OSError):
    pass


def test_a_sink_that_raises_inside_a_fill_leaves_the_fill_booked_whole() -> None:
    sc = Scenario(TRADING)
    seen: list[JournalEntry] = []

    def full_disk_on_fill(entry: JournalEntry) -> None:
        if entry.kind == "fill":
            raise DiskFull(28, "No space left on device")
        seen.append(entry)

    sc.journal._sink = full_disk_on_fill
    sc.open_market([A], asks=ASKS)
    sc.buy_pressure(100, A)
    sc.touch(151, A)  # the entry fills here: the sink raises inside the booking
    sc.touch(210, A)
    broker = sc.broker
    pos = broker.positions[A]
    assert (pos.direction, pos.lots, pos.entry_price) == (1, LOTS, D("100"))
    assert not broker.has_pending(A, reduce_only_market=True)
    fee = D("100") * LOTS * D("0.1") * D("0.0006")
    assert broker.cash == D(1000) - fee  # the fee, and the position it paid for
    assert sc.journal.failed
    assert sc.journal.sink_error == "DiskFull: [Errno 28] No space left on device"
    assert all(e.kind != "fill" for e in seen)
    assert sc.journal.counts["fill"] == 1  # hashed into the digest all the same


def test_a_sink_that_raises_is_detached_and_the_digest_does_not_change() -> None:
    calls = []

    def flaky(entry: JournalEntry) -> None:
        calls.append(entry.seq)
        raise RuntimeError("boom")

    failing, clean = Journal(flaky), Journal()
    for journal in (failing, clean):
        for i in range(3):
            journal.record(i, "k", "S", n=i)
    assert calls == [1]
    assert failing.digest() == clean.digest()
    assert failing.sink_error == "RuntimeError: boom"


def test_batches_go_out_only_on_hand_off() -> None:
    batches: list[list[JournalEntry]] = []
    journal = Journal(batch_sink=batches.append)
    outbox = journal.outbox
    entries = [journal.record(i, "k", "S", n=i) for i in range(3)]
    assert batches == [] and outbox == entries
    journal.hand_off()
    assert batches == [entries] and journal.outbox is outbox and outbox == []
    journal.hand_off()
    assert batches == [entries]  # nothing new: no empty batch


def test_a_failed_hand_off_is_recorded_and_raised() -> None:
    def full(batch: list[JournalEntry]) -> None:
        raise StoreError("audit database x: cannot write 1 audit rows of run 1: disk full")

    journal = Journal(batch_sink=full)
    journal.record(1, "k", "S")
    with pytest.raises(StoreError):
        journal.hand_off()
    assert journal.failed and "disk full" in (journal.sink_error or "")


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "small.msgpack"
    generate(path, symbols=4, minutes=2.5, seed=3, rate=4)
    return path


def test_the_store_gets_batches_between_messages_and_every_entry_once(
    tmp_path: Path, small: Path
) -> None:
    sizes: list[int] = []
    every: list[JournalEntry] = []
    db = tmp_path / "a.sqlite"
    with AuditStore(db) as store:
        run_id = store.begin_run(mode="replay", source="x", config_toml="", started_wall_ns=1)

        def batch_sink(batch: list[JournalEntry]) -> None:
            sizes.append(len(batch))
            store.add_batch(batch)

        report = replay(SAMPLE, options=ReplayOptions(sink=every.append, batch_sink=batch_sink))
        store.end_run(status="finished", report=report, ended_wall_ns=2)
    rows = read_audit(db, run_id)
    assert [e.seq for e in rows] == list(range(1, len(rows) + 1))
    assert rows == every
    assert sum(sizes) == len(rows)
    assert len(sizes) > 1 and max(sizes) < 1_100  # batches of about 1,024


def test_a_store_failure_stops_the_replay_in_one_line_with_the_run_failed(
    tmp_path: Path, small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_flush = AuditStore.flush
    flushes = []

    def flush_then_fill_the_disk(self: AuditStore) -> None:
        if not self.pending:
            return
        flushes.append(self.pending)
        if len(flushes) >= 2:
            raise StoreError(f"audit database {self.path}: cannot write: database or disk is full")
        real_flush(self)

    monkeypatch.setattr(AuditStore, "flush", flush_then_fill_the_disk)
    monkeypatch.setattr(AuditStore.__init__, "__kwdefaults__", {"batch_size": 100})
    result = CliRunner().invoke(
        main, ["replay", str(SAMPLE)], env={"TRADEBOT_DATA_DIR": str(tmp_path / "data")}
    )
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "database or disk is full; the replay stopped at recv_ns" in lines[0]
    monkeypatch.undo()
    (run,) = read_runs(tmp_path / "data" / "tradebot.sqlite")
    assert run.status == "failed"
    assert len(read_audit(tmp_path / "data" / "tradebot.sqlite", run.run_id)) == flushes[0]


def test_a_sink_error_raised_by_the_replay_is_a_tradebot_error(small: Path) -> None:
    def broken(entry: JournalEntry) -> None:
        raise ValueError("nope")

    with pytest.raises(SinkError, match=r"journal sink failed \(ValueError: nope\); the replay"):
        replay(small, options=ReplayOptions(sink=broken))
