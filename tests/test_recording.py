"""Tests for simulator.recording: the recording format contract and its bad-input rules."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.recording import (
    FORMAT,
    KINDS,
    VENUE,
    VERSION,
    Header,
    RecordingReader,
    RecordingWriter,
)
from tradebot.errors import RecordingError

T0 = 1_700_000_000_000_000_000

TICKER: dict[str, Any] = {
    "type": "message",
    "topic": "/contractMarket/tickerV2:XBTUSDTM",
    "subject": "tickerV2",
    "sn": 1_700_000_000_001,
    "data": {
        "symbol": "XBTUSDTM",
        "bestBidSize": 795,
        "bestBidPrice": "51012.0",
        "bestAskPrice": 51013.0,
        "bestAskSize": 284,
        "ts": 1_700_000_000_000_000_001,
    },
}
REST: dict[str, Any] = {
    "method": "GET",
    "path": "/api/v1/contracts/active",
    "params": {},
    "status": 200,
    "body": {"code": "200000", "data": [{"symbol": "XBTUSDTM", "tickSize": 1.0}]},
}
CONN: dict[str, Any] = {"event": "open", "conn": 1, "reason": ""}


def good_header(**changes: object) -> dict[str, object]:
    header: dict[str, object] = {
        "format": FORMAT,
        "version": VERSION,
        "venue": VENUE,
        "created_ns": T0,
        "source": "tests",
        "symbols": ["XBTUSDTM"],
    }
    header.update(changes)
    return header


def pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def write_raw(path: Path, *objects: object) -> Path:
    """Write arbitrary objects, unchecked, as a MessagePack stream."""
    path.write_bytes(b"".join(pack(obj) for obj in objects))
    return path


def read_all(path: Path) -> tuple[RecordingReader, list[tuple[int, str, Any]]]:
    with RecordingReader(path) as reader:
        return reader, list(reader)


def refusal(path: Path) -> str:
    """The message RecordingReader(path) refuses with; it must be one line naming the file."""
    with pytest.raises(RecordingError) as info:
        RecordingReader(path)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    assert message.startswith(f"{path}: ")
    assert "Traceback" not in message
    return message


# --- refusing files that are not recordings ----------------------------------------------


def test_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    assert refusal(tmp_path / "nope.msgpack") == f"{tmp_path / 'nope.msgpack'}: no such file"


def test_directory_is_refused(tmp_path: Path) -> None:
    assert "is a directory" in refusal(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header())
    path.chmod(0)
    try:
        assert "permission denied" in refusal(path)
    finally:
        path.chmod(0o644)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.msgpack"
    path.write_bytes(b"")
    assert "empty" in refusal(path)


@pytest.mark.parametrize(
    "text",
    [
        "hello, world\n",
        '{"format": "tradebot-recording", "version": 1}\n',
        "recv_ns,kind,payload\n1,ws,{}\n",
        "Ňo recording here\n",  # starts with 0xc5: a MessagePack bin16 longer than the file
    ],
)
def test_text_file_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "x.msgpack"
    path.write_text(text)
    message = refusal(path)
    assert "not a tradebot recording" in message and "text file" in message


def test_undecodable_bytes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.msgpack"
    path.write_bytes(b"\xc1\x00\xff\xfe")  # 0xc1 is never valid MessagePack
    assert "not a MessagePack stream" in refusal(path)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_random_bytes_are_refused(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "random.msgpack"
    path.write_bytes(data)
    refusal(path)


def test_truncated_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.msgpack"
    path.write_bytes(pack(good_header())[:-3])
    assert "ends inside the header" in refusal(path)


@pytest.mark.parametrize("first", [[1, "ws", {}], 123, "tradebot-recording", None, b"\x00"])
def test_header_not_a_map_is_refused(tmp_path: Path, first: object) -> None:
    path = write_raw(tmp_path / "x.msgpack", first, [T0, "ws", TICKER])
    message = refusal(path)
    assert "not a tradebot recording" in message and "expected the header map" in message


def test_header_with_wrong_format_is_refused_with_the_documented_message(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header(format="foo"))
    assert refusal(path) == (
        f"{path}: not a tradebot recording (header 'format' is 'foo', "
        "expected 'tradebot-recording')"
    )


@pytest.mark.parametrize("key", ["format", "version", "venue", "created_ns", "source", "symbols"])
def test_header_missing_a_key_is_refused_naming_it(tmp_path: Path, key: str) -> None:
    header = good_header()
    del header[key]
    path = write_raw(tmp_path / "x.msgpack", header)
    assert repr(key) in refusal(path)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("format", b"tradebot-recording"),
        ("format", None),
        ("version", "1"),
        ("version", 1.0),
        ("version", True),
        ("venue", 1),
        ("venue", None),
        ("created_ns", "1700000000000000000"),
        ("created_ns", 1.7e18),
        ("created_ns", True),
        ("source", b"tests"),
        ("source", None),
        ("symbols", "XBTUSDTM"),
        ("symbols", {"XBTUSDTM": 1}),
        ("symbols", ["XBTUSDTM", 1]),
        ("symbols", None),
    ],
)
def test_header_with_a_wrong_type_is_refused_naming_the_key(
    tmp_path: Path, key: str, value: object
) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header(**{key: value}))
    assert repr(key) in refusal(path)


def test_newer_version_is_refused(tmp_path: Path) -> None:
    # A newer version may change anything after 'version': it is refused on the version alone.
    path = write_raw(tmp_path / "x.msgpack", {"format": FORMAT, "version": 2, "other": 1})
    message = refusal(path)
    assert "version 2 is newer than this tradebot reads" in message


@pytest.mark.parametrize("version", [0, -1])
def test_version_below_one_is_refused(tmp_path: Path, version: int) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header(version=version))
    assert "'version'" in refusal(path)


def test_unknown_header_keys_are_ignored(tmp_path: Path) -> None:
    header = good_header(compression=None, host={"name": "box", "tz": "UTC"}, symbols=[])
    path = write_raw(tmp_path / "x.msgpack", header, [T0, "ws", TICKER])
    reader, records = read_all(path)
    assert reader.header == Header(
        version=1, venue=VENUE, created_ns=T0, source="tests", symbols=()
    )
    assert records == [(T0, "ws", TICKER)]


def test_header_only_file_has_no_records(tmp_path: Path) -> None:
    reader, records = read_all(write_raw(tmp_path / "x.msgpack", good_header()))
    assert records == []
    assert reader.records == 0 and not reader.truncated and not reader.malformed


# --- bad records are counted and skipped -------------------------------------------------


def test_records_that_are_not_arrays_are_counted_and_skipped(tmp_path: Path) -> None:
    path = write_raw(
        tmp_path / "x.msgpack",
        good_header(),
        [T0, "ws", TICKER],
        {"recv_ns": T0, "kind": "ws"},
        T0,
        "ws",
        None,
        b"abc",  # a 3-byte bin: must not be unpacked as a record
        "abc",  # a 3-char str, likewise
        [T0 + 1, "ws", TICKER],
    )
    reader, records = read_all(path)
    assert records == [(T0, "ws", TICKER), (T0 + 1, "ws", TICKER)]
    assert reader.malformed == {"record_not_array": 6}
    assert reader.records == 8


@pytest.mark.parametrize("bad", [[], [T0], [T0, "ws"], [T0, "ws", {}, 4], [T0, "ws", {}, None]])
def test_records_of_the_wrong_length_are_counted_and_skipped(tmp_path: Path, bad: object) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header(), bad, [T0, "ws", TICKER])
    reader, records = read_all(path)
    assert records == [(T0, "ws", TICKER)]
    assert reader.malformed == {"record_wrong_length": 1}
    assert reader.records == 2


@pytest.mark.parametrize("recv_ns", [str(T0), float(T0), True, False, None, [T0]])
def test_recv_ns_that_is_not_an_int_is_counted_and_skipped(tmp_path: Path, recv_ns: object) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header(), [recv_ns, "ws", TICKER], [T0, "ws", {}])
    reader, records = read_all(path)
    assert records == [(T0, "ws", {})]
    assert reader.malformed == {"recv_ns_not_int": 1}


@pytest.mark.parametrize("kind", [1, None, b"ws", ["ws"], {"ws": 1}, 1.5])
def test_kind_that_is_not_a_str_is_counted_and_skipped(tmp_path: Path, kind: object) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header(), [T0, kind, TICKER], [T0, "ws", {}])
    reader, records = read_all(path)
    assert records == [(T0, "ws", {})]
    assert reader.malformed == {"kind_not_str": 1}
    assert not reader.unknown_kinds


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("ws", [1, 2]),
        ("ws", 5),
        ("ws", None),
        ("ws", b"{}"),
        ("rest", "GET /api/v1/x"),
        ("rest", [REST]),
        ("rest", None),
        ("conn", "open"),
        ("conn", 1),
    ],
)
def test_payload_of_the_wrong_type_is_counted_and_skipped(
    tmp_path: Path, kind: str, payload: object
) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header(), [T0, kind, payload], [T0, "ws", {}])
    reader, records = read_all(path)
    assert records == [(T0, "ws", {})]
    assert reader.malformed == {"payload_not_map": 1}


def _without(payload: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != key}


@pytest.mark.parametrize(
    "payload",
    [
        _without(REST, "path"),
        {**REST, "path": 5},
        {**REST, "path": b"/api/v1/x"},
        _without(REST, "status"),
        {**REST, "status": "200"},
        {**REST, "status": True},
        {**REST, "status": 200.0},
        _without(REST, "body"),
        {**REST, "method": 1},
        {**REST, "params": []},
        {**REST, "params": None},
    ],
)
def test_rest_payload_with_bad_fields_is_counted_and_skipped(
    tmp_path: Path, payload: dict[str, Any]
) -> None:
    path = write_raw(
        tmp_path / "x.msgpack", good_header(), [T0, "rest", payload], [T0, "rest", REST]
    )
    reader, records = read_all(path)
    assert records == [(T0, "rest", REST)]
    assert reader.malformed == {"rest_bad_fields": 1}


@pytest.mark.parametrize(
    "payload",
    [
        _without(CONN, "event"),
        {**CONN, "event": "opened"},
        {**CONN, "event": ["open"]},
        {**CONN, "event": None},
        _without(CONN, "conn"),
        {**CONN, "conn": "1"},
        {**CONN, "conn": True},
        {**CONN, "reason": 5},
        {**CONN, "reason": None},
    ],
)
def test_conn_payload_with_bad_fields_is_counted_and_skipped(
    tmp_path: Path, payload: dict[str, Any]
) -> None:
    path = write_raw(
        tmp_path / "x.msgpack", good_header(), [T0, "conn", payload], [T0, "conn", CONN]
    )
    reader, records = read_all(path)
    assert records == [(T0, "conn", CONN)]
    assert reader.malformed == {"conn_bad_fields": 1}


def test_optional_rest_and_conn_fields_get_their_defaults(tmp_path: Path) -> None:
    rest = {"path": "/api/v1/timestamp", "status": 200, "body": None}
    conn = {"event": "close", "conn": 3}
    path = write_raw(tmp_path / "x.msgpack", good_header(), [T0, "rest", rest], [T0, "conn", conn])
    reader, records = read_all(path)
    assert records == [
        (T0, "rest", {**rest, "method": "GET", "params": {}}),
        (T0, "conn", {**conn, "reason": ""}),
    ]
    assert not reader.malformed


@pytest.mark.parametrize("event", ["open", "close", "error"])
def test_every_conn_event_is_accepted(tmp_path: Path, event: str) -> None:
    payload = {"event": event, "conn": 7, "reason": "because"}
    _, records = read_all(write_raw(tmp_path / "x.msgpack", good_header(), [T0, "conn", payload]))
    assert records == [(T0, "conn", payload)]


def test_unknown_kinds_are_counted_and_skipped(tmp_path: Path) -> None:
    path = write_raw(
        tmp_path / "x.msgpack",
        good_header(),
        [T0, "fix", {"35": "D"}],
        [T0 + 1, "ws", TICKER],
        [T0 + 2, "fix", None],
        [T0 + 3, "clock", 12],
        [T0 + 4, "rest", REST],
    )
    reader, records = read_all(path)
    assert records == [(T0 + 1, "ws", TICKER), (T0 + 4, "rest", REST)]
    assert reader.unknown_kinds == {"fix": 2, "clock": 1}
    assert not reader.malformed
    assert reader.records == 5


def test_ws_text_frame_is_kept_as_a_str(tmp_path: Path) -> None:
    frame = '{"type": "message", "data": {oops'
    path = write_raw(tmp_path / "x.msgpack", good_header(), [T0, "ws", frame])
    reader, records = read_all(path)
    assert records == [(T0, "ws", frame)]
    assert type(records[0][2]) is str
    assert not reader.malformed


def test_strings_and_numbers_keep_their_types(tmp_path: Path) -> None:
    path = tmp_path / "x.msgpack"
    with RecordingWriter.create(path, created_ns=T0, source="tests") as writer:
        writer.write(T0, "ws", TICKER)
    _, [(_, _, payload)] = read_all(path)
    assert payload == TICKER
    assert type(payload["data"]["bestBidPrice"]) is str
    assert type(payload["data"]["bestAskPrice"]) is float
    assert type(payload["data"]["bestBidSize"]) is int


# --- recv_ns order -----------------------------------------------------------------------


def test_backwards_recv_ns_is_counted_and_the_record_still_yielded_in_file_order(
    tmp_path: Path,
) -> None:
    times = [10, 20, 15, 15, 30, 5, 6]
    path = write_raw(tmp_path / "x.msgpack", good_header(), *([t, "ws", {"n": t}] for t in times))
    reader, records = read_all(path)
    assert [r[0] for r in records] == times
    assert reader.backwards == 2  # 15 after 20, 5 after 30
    assert not reader.malformed


def test_backwards_is_measured_against_the_previous_good_record(tmp_path: Path) -> None:
    path = write_raw(
        tmp_path / "x.msgpack",
        good_header(),
        [10, "ws", {}],
        [50, "unknown", {}],  # skipped: not a reference point
        [99, "ws", [1]],  # malformed: not a reference point
        [20, "ws", {}],
    )
    reader, records = read_all(path)
    assert [r[0] for r in records] == [10, 20]
    assert reader.backwards == 0


# --- truncated and corrupt files ---------------------------------------------------------


def _recording_bytes(records: list[tuple[int, str, Any]]) -> tuple[bytes, list[int]]:
    """A recording of `records` and the byte offset at which each object ends."""
    buffer = io.BytesIO()
    ends = []
    with RecordingWriter(buffer, created_ns=T0, source="tests", symbols=["XBTUSDTM"]) as writer:
        ends.append(buffer.tell())
        for record in records:
            writer.write(*record)
            ends.append(buffer.tell())
    return buffer.getvalue(), ends


SAMPLE: list[tuple[int, str, Any]] = [
    (T0, "conn", CONN),
    (T0 + 5, "ws", {"id": "1", "type": "welcome"}),
    (T0 + 9, "rest", REST),
    (T0 + 9, "ws", TICKER),
    (T0 + 12, "ws", "not json"),
    (T0 + 20, "conn", {"event": "close", "conn": 1, "reason": "bye"}),
]


def test_truncated_last_object_yields_everything_before_it(tmp_path: Path) -> None:
    data, _ = _recording_bytes(SAMPLE)
    path = tmp_path / "x.msgpack"
    path.write_bytes(data[:-3])
    reader, records = read_all(path)
    assert records == SAMPLE[:-1]
    assert reader.truncated
    assert not reader.malformed
    assert reader.records == len(SAMPLE) - 1


def test_complete_file_is_not_truncated(tmp_path: Path) -> None:
    data, _ = _recording_bytes(SAMPLE)
    path = tmp_path / "x.msgpack"
    path.write_bytes(data)
    reader, records = read_all(path)
    assert records == SAMPLE
    assert not reader.truncated


def test_truncating_at_every_offset_yields_a_prefix(tmp_path: Path) -> None:
    data, ends = _recording_bytes(SAMPLE)
    path = tmp_path / "x.msgpack"
    for cut in range(ends[0], len(data) + 1):
        path.write_bytes(data[:cut])
        reader, records = read_all(path)
        complete = sum(1 for end in ends[1:] if end <= cut)
        assert records == SAMPLE[:complete], cut
        assert reader.truncated == (cut not in ends), cut
        assert not reader.malformed, cut


def test_undecodable_bytes_after_the_header_stop_the_iteration(tmp_path: Path) -> None:
    data, _ = _recording_bytes(SAMPLE[:2])
    path = tmp_path / "x.msgpack"
    path.write_bytes(data + b"\xc1" + pack([T0 + 30, "ws", {}]))
    reader, records = read_all(path)
    assert records == SAMPLE[:2]
    assert reader.truncated
    assert reader.malformed == {"undecodable": 1}


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xa3\xff\xfe\xfd",  # a str that is not UTF-8
        b"\x81\x91\x01\x02",  # a map keyed by an array
        b"\xd4\xff\x01",  # a timestamp ext of an impossible length
        b"\xdd\xff\xff\xff\xff",  # an array claiming 4 G elements
    ],
)
def test_other_undecodable_data_after_the_header_is_counted(tmp_path: Path, garbage: bytes) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header(), [T0, "ws", {}])
    with path.open("ab") as file:
        file.write(garbage)
    reader, records = read_all(path)
    assert records == [(T0, "ws", {})]
    assert reader.truncated
    assert set(reader.malformed) <= {"undecodable"}


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(max_size=200))
def test_garbage_after_the_header_never_raises(tmp_path: Path, garbage: bytes) -> None:
    path = tmp_path / "x.msgpack"
    path.write_bytes(pack(good_header()) + garbage)
    yielded = 0
    with RecordingReader(path) as reader:
        for recv_ns, kind, _ in reader:
            assert type(recv_ns) is int and kind in KINDS
            yielded += 1
    skipped = sum(reader.malformed.values()) - reader.malformed["undecodable"]
    assert reader.records == yielded + skipped + sum(reader.unknown_kinds.values())
    assert reader.malformed["undecodable"] <= 1
    if reader.malformed["undecodable"]:
        assert reader.truncated


# --- reader lifecycle --------------------------------------------------------------------


def test_reader_iterates_once(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header(), [T0, "ws", {}])
    with RecordingReader(path) as reader:
        assert list(reader) == [(T0, "ws", {})]
        with pytest.raises(RuntimeError):
            iter(reader)


def test_closed_reader_refuses_to_iterate_and_close_is_idempotent(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header(), [T0, "ws", {}])
    reader = RecordingReader(path)
    reader.close()
    reader.close()
    with pytest.raises(RuntimeError):
        iter(reader)


def test_closing_mid_iteration_is_not_corruption(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header(), [T0, "ws", {}], [T0 + 1, "ws", {}])
    reader = RecordingReader(path)
    records = iter(reader)
    assert next(records) == (T0, "ws", {})
    reader.close()
    list(records)
    assert not reader.truncated and not reader.malformed


def test_tell_and_fileno_report_progress_through_the_file(tmp_path: Path) -> None:
    data, ends = _recording_bytes(SAMPLE)
    path = tmp_path / "x.msgpack"
    path.write_bytes(data)
    with RecordingReader(path) as reader:
        assert os.fstat(reader.fileno()).st_size == len(data)
        assert reader.tell() == ends[0]
        positions = [reader.tell() for _ in reader]
    assert positions == ends[1:]


def test_reader_accepts_str_and_pathlike(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header())
    with RecordingReader(str(path)) as a, RecordingReader(path) as b:
        assert a.path == b.path == str(path)
        assert a.header == b.header


# --- writer ------------------------------------------------------------------------------


def test_writer_writes_the_header_immediately() -> None:
    buffer = io.BytesIO()
    writer = RecordingWriter(buffer, created_ns=T0, source="tradebot 0.1.0", symbols=["A", "B"])
    unpacked = msgpack.unpackb(buffer.getvalue(), raw=False)
    assert unpacked == {
        "format": "tradebot-recording",
        "version": 1,
        "venue": "kucoin-futures",
        "created_ns": T0,
        "source": "tradebot 0.1.0",
        "symbols": ["A", "B"],
    }
    assert unpacked == writer.header.to_map()
    assert writer.records_written == 0


def test_writer_close_flushes_but_leaves_a_callers_file_open() -> None:
    buffer = io.BytesIO()
    with RecordingWriter(buffer, created_ns=T0, source="tests") as writer:
        writer.write(T0, "ws", {})
        writer.write(T0, "ws", {})
    assert writer.records_written == 2
    assert not buffer.closed


def test_writer_create_owns_and_closes_its_file(tmp_path: Path) -> None:
    path = tmp_path / "x.msgpack"
    with RecordingWriter.create(path, created_ns=T0, source="tests", symbols=("XBTUSDTM",)) as w:
        for record in SAMPLE:
            w.write(*record)
    reader, records = read_all(path)
    assert records == SAMPLE
    assert reader.header == Header(
        version=1, venue=VENUE, created_ns=T0, source="tests", symbols=("XBTUSDTM",)
    )
    with pytest.raises(ValueError, match="closed"):
        w.write(T0 + 99, "ws", {})


@pytest.mark.parametrize("kind", ["trade", "WS", "", 1, None, b"ws"])
def test_writer_rejects_a_bad_kind(kind: Any) -> None:
    buffer = io.BytesIO()
    writer = RecordingWriter(buffer, created_ns=T0, source="tests")
    size = len(buffer.getvalue())
    with pytest.raises(ValueError, match="kind"):
        writer.write(T0, kind, {})
    assert len(buffer.getvalue()) == size and writer.records_written == 0


@pytest.mark.parametrize("recv_ns", [float(T0), str(T0), True, None])
def test_writer_rejects_a_recv_ns_that_is_not_an_int(recv_ns: Any) -> None:
    writer = RecordingWriter(io.BytesIO(), created_ns=T0, source="tests")
    with pytest.raises(ValueError, match="recv_ns"):
        writer.write(recv_ns, "ws", {})


def test_writer_rejects_a_decreasing_recv_ns_but_accepts_an_equal_one() -> None:
    buffer = io.BytesIO()
    writer = RecordingWriter(buffer, created_ns=T0, source="tests")
    writer.write(T0 + 10, "ws", {})
    writer.write(T0 + 10, "ws", {})
    size = len(buffer.getvalue())
    with pytest.raises(ValueError, match="smaller"):
        writer.write(T0 + 9, "ws", {})
    assert len(buffer.getvalue()) == size and writer.records_written == 2
    writer.write(T0 + 11, "ws", {})
    assert writer.records_written == 3


@pytest.mark.parametrize(
    ("kind", "payload"),
    [("rest", {"path": "/x"}), ("rest", None), ("conn", {"event": "up", "conn": 1}), ("conn", [])],
)
def test_writer_rejects_rest_and_conn_payloads_of_the_wrong_shape(kind: str, payload: Any) -> None:
    writer = RecordingWriter(io.BytesIO(), created_ns=T0, source="tests")
    with pytest.raises(ValueError, match=kind):
        writer.write(T0, kind, payload)


def test_writer_records_any_ws_payload_and_the_reader_judges_it(tmp_path: Path) -> None:
    path = tmp_path / "x.msgpack"
    with RecordingWriter.create(path, created_ns=T0, source="tests") as writer:
        writer.write(T0, "ws", [1, 2, 3])  # exchange data: recorded as it came
        writer.write(T0 + 1, "ws", TICKER)
    reader, records = read_all(path)
    assert records == [(T0 + 1, "ws", TICKER)]
    assert reader.malformed == {"payload_not_map": 1}


def test_writer_rejects_an_unencodable_payload_and_stays_usable(tmp_path: Path) -> None:
    path = tmp_path / "x.msgpack"
    with RecordingWriter.create(path, created_ns=T0, source="tests") as writer:
        with pytest.raises(ValueError, match="encode"):
            writer.write(T0, "ws", {"a": [1, object()]})
        with pytest.raises(ValueError, match="encode"):
            writer.write(T0, "ws", {"big": 1 << 64})
        writer.write(T0, "ws", TICKER)
    reader, records = read_all(path)
    assert records == [(T0, "ws", TICKER)]
    assert not reader.malformed and not reader.truncated


@pytest.mark.parametrize(
    "changes",
    [
        {"created_ns": float(T0)},
        {"created_ns": True},
        {"source": None},
        {"symbols": "XBTUSDTM"},
        {"symbols": ["XBTUSDTM", 1]},
        {"venue": None},
    ],
)
def test_writer_rejects_a_bad_header(changes: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"created_ns": T0, "source": "tests", **changes}
    with pytest.raises(ValueError):
        RecordingWriter(io.BytesIO(), **arguments)


# --- properties --------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["51012.0", "0.0001", "-1", "1e3", ""])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
json_maps = st.dictionaries(st.text(max_size=8), json_values, max_size=5)

ws_payloads = json_maps | st.text(max_size=40)
rest_payloads = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "POST", "DELETE"]),
        "path": st.text(max_size=30),
        "params": json_maps,
        "status": st.integers(min_value=100, max_value=599),
        "body": json_values,
    }
)
conn_payloads = st.fixed_dictionaries(
    {
        "event": st.sampled_from(["open", "close", "error"]),
        "conn": st.integers(min_value=0, max_value=1 << 40),
        "reason": st.text(max_size=20),
    }
)
kinds_and_payloads = (
    st.tuples(st.just("ws"), ws_payloads)
    | st.tuples(st.just("rest"), rest_payloads)
    | st.tuples(st.just("conn"), conn_payloads)
)


@st.composite
def record_lists(draw: st.DrawFn) -> list[tuple[int, str, Any]]:
    recv_ns = draw(st.integers(min_value=0, max_value=T0 * 2))
    records = []
    for kind, payload in draw(st.lists(kinds_and_payloads, max_size=12)):
        recv_ns += draw(st.integers(min_value=0, max_value=10**9))
        records.append((recv_ns, kind, payload))
    return records


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=record_lists(), symbols=st.lists(st.text(max_size=10), max_size=3))
def test_round_trip_preserves_records_exactly(
    tmp_path: Path, records: list[tuple[int, str, Any]], symbols: list[str]
) -> None:
    path = tmp_path / "roundtrip.msgpack"
    with RecordingWriter.create(path, created_ns=T0, source="hypothesis", symbols=symbols) as w:
        for record in records:
            w.write(*record)
    reader, read = read_all(path)
    assert read == records
    # == treats 1, 1.0 and True alike; the encoded bytes do not: types survived too.
    assert [pack(list(r)) for r in read] == [pack(list(r)) for r in records]
    assert reader.header.symbols == tuple(symbols)
    assert reader.records == len(records)
    assert not reader.malformed and not reader.unknown_kinds and not reader.truncated
    assert reader.backwards == 0


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=record_lists(), data=st.data())
def test_truncating_anywhere_after_the_header_yields_a_prefix(
    tmp_path: Path, records: list[tuple[int, str, Any]], data: st.DataObject
) -> None:
    encoded, ends = _recording_bytes(records)
    cut = data.draw(st.integers(min_value=ends[0], max_value=len(encoded)), label="cut")
    path = tmp_path / "cut.msgpack"
    path.write_bytes(encoded[:cut])
    reader, read = read_all(path)
    complete = sum(1 for end in ends[1:] if end <= cut)
    assert read == records[:complete]
    assert reader.truncated == (cut not in ends)
    assert not reader.malformed
