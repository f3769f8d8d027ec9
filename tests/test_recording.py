"""Tests for simulator.recording: the recording format contract and its bad-input rules.

Every bad-input rule is tested on both format versions (the `version` fixture): version 1
records hold decoded maps, version 2 records the raw frames and bodies.
"""

from __future__ import annotations

import io
import json
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
TICKER_FRAME = json.dumps(TICKER, separators=(",", ":"))
REST_RAW: dict[str, Any] = {**REST, "body": json.dumps(REST["body"])}


@pytest.fixture(params=[1, 2], ids=["v1", "v2"])
def version(request: pytest.FixtureRequest) -> int:
    """The format version a test writes its file in."""
    return int(request.param)


def ws_payload(version: int, message: dict[str, Any] | None = None) -> Any:
    """A good "ws" payload of `version`: the map (1) or its JSON text (2)."""
    message = TICKER if message is None else message
    return message if version == 1 else json.dumps(message, separators=(",", ":"))


def rest_payload(version: int) -> dict[str, Any]:
    """A good "rest" payload of `version`: a decoded body (1) or the body's text (2)."""
    return REST if version == 1 else REST_RAW


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


def read_all(path: Path) -> tuple[RecordingReader, list[tuple[Any, ...]]]:
    """The reader and its records, a record that names no connection as a 3-tuple."""
    with RecordingReader(path) as reader:
        return reader, [r if r[3] is not None else r[:3] for r in reader]


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
    path = write_raw(tmp_path / "x.msgpack", {"format": FORMAT, "version": 3, "other": 1})
    message = refusal(path)
    assert "version 3 is newer than this tradebot reads (up to 2)" in message


@pytest.mark.parametrize("venue", ["binance", "kucoin", "KUCOIN-FUTURES", ""])
def test_another_venue_is_refused_in_one_line(tmp_path: Path, venue: str) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header(venue=venue), [T0, "ws", "{}"])
    message = refusal(path)
    assert f"recorded on venue {venue!r}" in message
    assert "'kucoin-futures' only" in message


@pytest.mark.parametrize("version", [0, -1])
def test_version_below_one_is_refused(tmp_path: Path, version: int) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header(version=version))
    assert "'version'" in refusal(path)


def test_unknown_header_keys_are_ignored(tmp_path: Path, version: int) -> None:
    header = good_header(
        compression=None, host={"name": "box", "tz": "UTC"}, symbols=[], version=version
    )
    path = write_raw(tmp_path / "x.msgpack", header, [T0, "ws", ws_payload(version)])
    reader, records = read_all(path)
    assert reader.header == Header(
        version=version, venue=VENUE, created_ns=T0, source="tests", symbols=()
    )
    assert records == [(T0, "ws", ws_payload(version))]


def test_header_only_file_has_no_records(tmp_path: Path, version: int) -> None:
    reader, records = read_all(write_raw(tmp_path / "x.msgpack", good_header(version=version)))
    assert records == []
    assert reader.records == 0 and not reader.truncated and not reader.malformed


# --- bad records are counted and skipped -------------------------------------------------


def test_records_that_are_not_arrays_are_counted_and_skipped(tmp_path: Path, version: int) -> None:
    good = ws_payload(version)
    path = write_raw(
        tmp_path / "x.msgpack",
        good_header(version=version),
        [T0, "ws", good],
        {"recv_ns": T0, "kind": "ws"},
        T0,
        "ws",
        None,
        b"abc",  # a 3-byte bin: must not be unpacked as a record
        "abc",  # a 3-char str, likewise
        [T0 + 1, "ws", good],
    )
    reader, records = read_all(path)
    assert records == [(T0, "ws", good), (T0 + 1, "ws", good)]
    assert reader.malformed == {"record_not_array": 6}
    assert reader.records == 8


@pytest.mark.parametrize(
    ("version", "bad"),
    [
        (1, []),
        (1, [T0]),
        (1, [T0, "ws"]),
        (1, [T0, "ws", {}, 4]),  # a connection id is version 2
        (1, [T0, "ws", {}, None]),
        (2, []),
        (2, [T0]),
        (2, [T0, "ws"]),
        (2, [T0, "ws", "{}", 4, 5]),
    ],
)
def test_records_of_the_wrong_length_are_counted_and_skipped(
    tmp_path: Path, version: int, bad: object
) -> None:
    good = ws_payload(version)
    path = write_raw(tmp_path / "x.msgpack", good_header(version=version), bad, [T0, "ws", good])
    reader, records = read_all(path)
    assert records == [(T0, "ws", good)]
    assert reader.malformed == {"record_wrong_length": 1}
    assert reader.records == 2


@pytest.mark.parametrize("conn", [None, "1", True, 1.0, [1], {"conn": 1}, b"\x01"])
@pytest.mark.parametrize("kind", ["ws", "rest", "conn"])
def test_a_connection_id_that_is_not_an_int_is_counted_and_skipped(
    tmp_path: Path, kind: str, conn: object
) -> None:
    payload = {"ws": TICKER_FRAME, "rest": REST_RAW, "conn": CONN}[kind]
    path = write_raw(
        tmp_path / "x.msgpack", good_header(), [T0, kind, payload, conn], [T0, kind, payload, 7]
    )
    reader, records = read_all(path)
    assert records == [(T0, kind, payload, 7)]
    assert reader.malformed == {"conn_not_int": 1}


def test_version_2_records_carry_their_connection_id(tmp_path: Path) -> None:
    path = write_raw(
        tmp_path / "x.msgpack",
        good_header(),
        [T0, "conn", CONN, 1],
        [T0 + 1, "ws", TICKER_FRAME, 1],
        [T0 + 2, "ws", TICKER_FRAME],
        [T0 + 3, "rest", REST_RAW],
        [T0 + 4, "ws", TICKER_FRAME.encode(), (1 << 63) - 1],
    )
    with RecordingReader(path) as reader:
        records = list(reader)
    assert records == [
        (T0, "conn", CONN, 1),
        (T0 + 1, "ws", TICKER_FRAME, 1),
        (T0 + 2, "ws", TICKER_FRAME, None),
        (T0 + 3, "rest", REST_RAW, None),
        (T0 + 4, "ws", TICKER_FRAME.encode(), (1 << 63) - 1),
    ]
    assert not reader.malformed


@pytest.mark.parametrize("recv_ns", [str(T0), float(T0), True, False, None, [T0]])
def test_recv_ns_that_is_not_an_int_is_counted_and_skipped(
    tmp_path: Path, version: int, recv_ns: object
) -> None:
    good = ws_payload(version)
    path = write_raw(
        tmp_path / "x.msgpack",
        good_header(version=version),
        [recv_ns, "ws", good],
        [T0, "ws", good],
    )
    reader, records = read_all(path)
    assert records == [(T0, "ws", good)]
    assert reader.malformed == {"recv_ns_not_int": 1}


@pytest.mark.parametrize("kind", [1, None, b"ws", ["ws"], {"ws": 1}, 1.5])
def test_kind_that_is_not_a_str_is_counted_and_skipped(
    tmp_path: Path, version: int, kind: object
) -> None:
    good = ws_payload(version)
    path = write_raw(
        tmp_path / "x.msgpack", good_header(version=version), [T0, kind, good], [T0, "ws", good]
    )
    reader, records = read_all(path)
    assert records == [(T0, "ws", good)]
    assert reader.malformed == {"kind_not_str": 1}
    assert not reader.unknown_kinds


@pytest.mark.parametrize(
    ("version", "kind", "payload", "reason"),
    [
        (1, "ws", [1, 2], "payload_not_map"),
        (1, "ws", 5, "payload_not_map"),
        (1, "ws", None, "payload_not_map"),
        (1, "ws", b"{}", "payload_not_map"),
        (1, "rest", "GET /api/v1/x", "payload_not_map"),
        (1, "rest", [REST], "payload_not_map"),
        (1, "rest", None, "payload_not_map"),
        (1, "conn", "open", "payload_not_map"),
        (1, "conn", 1, "payload_not_map"),
        (2, "ws", TICKER, "payload_not_frame"),  # a decoded map is version 1
        (2, "ws", [1, 2], "payload_not_frame"),
        (2, "ws", 5, "payload_not_frame"),
        (2, "ws", None, "payload_not_frame"),
        (2, "ws", True, "payload_not_frame"),
        (2, "rest", "GET /api/v1/x", "payload_not_map"),
        (2, "rest", [REST_RAW], "payload_not_map"),
        (2, "rest", None, "payload_not_map"),
        (2, "conn", "open", "payload_not_map"),
        (2, "conn", 1, "payload_not_map"),
    ],
)
def test_payload_of_the_wrong_type_is_counted_and_skipped(
    tmp_path: Path, version: int, kind: str, payload: object, reason: str
) -> None:
    good = ws_payload(version)
    path = write_raw(
        tmp_path / "x.msgpack", good_header(version=version), [T0, kind, payload], [T0, "ws", good]
    )
    reader, records = read_all(path)
    assert records == [(T0, "ws", good)]
    assert reader.malformed == {reason: 1}


def _without(payload: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != key}


_REST_BREAKS: list[tuple[str, Any]] = [
    ("path", None),
    ("path", 5),
    ("path", b"/api/v1/x"),
    ("status", None),
    ("status", "200"),
    ("status", True),
    ("status", 200.0),
    ("body", None),
    ("method", 1),
    ("params", []),
    ("params", None),
]


def _break(payload: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """`payload` with `key` set to `value`, or dropped when `value` is None for a required key."""
    if value is None and key in ("path", "status", "body"):
        return _without(payload, key)
    return {**payload, key: value}


@pytest.mark.parametrize(("key", "value"), _REST_BREAKS)
def test_rest_payload_with_bad_fields_is_counted_and_skipped(
    tmp_path: Path, version: int, key: str, value: Any
) -> None:
    good = rest_payload(version)
    path = write_raw(
        tmp_path / "x.msgpack",
        good_header(version=version),
        [T0, "rest", _break(good, key, value)],
        [T0, "rest", good],
    )
    reader, records = read_all(path)
    assert records == [(T0, "rest", good)]
    assert reader.malformed == {"rest_bad_fields": 1}


@pytest.mark.parametrize("body", [REST["body"], None, 200, ["x"]])
def test_version_2_rest_body_that_is_not_the_raw_body_is_counted_and_skipped(
    tmp_path: Path, body: Any
) -> None:
    path = write_raw(
        tmp_path / "x.msgpack",
        good_header(),
        [T0, "rest", {**REST_RAW, "body": body}],
        [T0, "rest", REST_RAW],
        [T0, "rest", {**REST_RAW, "body": REST_RAW["body"].encode()}],
    )
    reader, records = read_all(path)
    assert records == [
        (T0, "rest", REST_RAW),
        (T0, "rest", {**REST_RAW, "body": REST_RAW["body"].encode()}),
    ]
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
    tmp_path: Path, version: int, payload: dict[str, Any]
) -> None:
    path = write_raw(
        tmp_path / "x.msgpack",
        good_header(version=version),
        [T0, "conn", payload],
        [T0, "conn", CONN],
    )
    reader, records = read_all(path)
    assert records == [(T0, "conn", CONN)]
    assert reader.malformed == {"conn_bad_fields": 1}


def test_optional_rest_and_conn_fields_get_their_defaults(tmp_path: Path, version: int) -> None:
    rest = {"path": "/api/v1/timestamp", "status": 200, "body": None if version == 1 else "null"}
    conn = {"event": "close", "conn": 3}
    path = write_raw(
        tmp_path / "x.msgpack",
        good_header(version=version),
        [T0, "rest", rest],
        [T0, "conn", conn],
    )
    reader, records = read_all(path)
    assert records == [
        (T0, "rest", {**rest, "method": "GET", "params": {}}),
        (T0, "conn", {**conn, "reason": ""}),
    ]
    assert not reader.malformed


@pytest.mark.parametrize("event", ["open", "close", "error"])
def test_every_conn_event_is_accepted(tmp_path: Path, version: int, event: str) -> None:
    payload = {"event": event, "conn": 7, "reason": "because"}
    _, records = read_all(
        write_raw(tmp_path / "x.msgpack", good_header(version=version), [T0, "conn", payload])
    )
    assert records == [(T0, "conn", payload)]


def test_unknown_kinds_are_counted_and_skipped(tmp_path: Path, version: int) -> None:
    good, rest = ws_payload(version), rest_payload(version)
    path = write_raw(
        tmp_path / "x.msgpack",
        good_header(version=version),
        [T0, "fix", {"35": "D"}],
        [T0 + 1, "ws", good],
        [T0 + 2, "fix", None],
        [T0 + 3, "clock", 12],
        [T0 + 4, "rest", rest],
    )
    reader, records = read_all(path)
    assert records == [(T0 + 1, "ws", good), (T0 + 4, "rest", rest)]
    assert reader.unknown_kinds == {"fix": 2, "clock": 1}
    assert not reader.malformed
    assert reader.records == 5


@pytest.mark.parametrize("frame", ['{"type": "message", "data": {oops', b"\x00\xff binary"])
def test_ws_frame_is_kept_as_it_arrived(tmp_path: Path, version: int, frame: str | bytes) -> None:
    # Version 1 kept a frame that was not JSON as its text; version 2 keeps every frame.
    path = write_raw(tmp_path / "x.msgpack", good_header(version=version), [T0, "ws", frame])
    reader, records = read_all(path)
    if version == 1 and type(frame) is bytes:
        assert records == [] and reader.malformed == {"payload_not_map": 1}
        return
    assert records == [(T0, "ws", frame)]
    assert type(records[0][2]) is type(frame)
    assert not reader.malformed


def test_version_1_strings_and_numbers_keep_their_types(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header(version=1), [T0, "ws", TICKER])
    _, [(_, _, payload)] = read_all(path)
    assert payload == TICKER
    assert type(payload["data"]["bestBidPrice"]) is str
    assert type(payload["data"]["bestAskPrice"]) is float
    assert type(payload["data"]["bestBidSize"]) is int


def test_version_2_frames_are_written_and_read_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "x.msgpack"
    frames: list[str | bytes] = [TICKER_FRAME, '{"a": 1.10}', "not json", b"\x81\xa1a\x01", ""]
    with RecordingWriter.create(path, created_ns=T0, source="tests") as writer:
        for frame in frames:
            writer.write(T0, "ws", frame, 3)
    _, records = read_all(path)
    assert [r[2] for r in records] == frames
    assert [type(r[2]) for r in records] == [type(f) for f in frames]
    assert {r[3] for r in records} == {3}


# --- recv_ns order -----------------------------------------------------------------------


def test_backwards_recv_ns_is_counted_and_the_record_still_yielded_in_file_order(
    tmp_path: Path, version: int
) -> None:
    times = [10, 20, 15, 15, 30, 5, 6]
    path = write_raw(
        tmp_path / "x.msgpack",
        good_header(version=version),
        *([t, "ws", ws_payload(version, {"n": t})] for t in times),
    )
    reader, records = read_all(path)
    assert [r[0] for r in records] == times
    assert reader.backwards == 2  # 15 after 20, 5 after 30
    assert not reader.malformed


def test_backwards_is_measured_against_the_previous_good_record(
    tmp_path: Path, version: int
) -> None:
    good = ws_payload(version, {})
    path = write_raw(
        tmp_path / "x.msgpack",
        good_header(version=version),
        [10, "ws", good],
        [50, "unknown", {}],  # skipped: not a reference point
        [99, "ws", [1]],  # malformed: not a reference point
        [20, "ws", good],
    )
    reader, records = read_all(path)
    assert [r[0] for r in records] == [10, 20]
    assert reader.backwards == 0


# --- truncated and corrupt files ---------------------------------------------------------


def _recording_bytes(
    records: list[tuple[Any, ...]], version: int = VERSION
) -> tuple[bytes, list[int]]:
    """A recording of `records` and the byte offset at which each object ends (version 2
    through the writer, version 1 packed by hand: the writer writes version 2 only)."""
    buffer = io.BytesIO()
    ends = []
    if version == 1:
        buffer.write(pack(good_header(version=1)))
        ends.append(buffer.tell())
        for record in records:
            buffer.write(pack(list(record)))
            ends.append(buffer.tell())
        return buffer.getvalue(), ends
    with RecordingWriter(buffer, created_ns=T0, source="tests", symbols=["XBTUSDTM"]) as writer:
        ends.append(buffer.tell())
        for record in records:
            writer.write(*record)
            ends.append(buffer.tell())
    return buffer.getvalue(), ends


SAMPLES: dict[int, list[tuple[Any, ...]]] = {
    1: [
        (T0, "conn", CONN),
        (T0 + 5, "ws", {"id": "1", "type": "welcome"}),
        (T0 + 9, "rest", REST),
        (T0 + 9, "ws", TICKER),
        (T0 + 12, "ws", "not json"),
        (T0 + 20, "conn", {"event": "close", "conn": 1, "reason": "bye"}),
    ],
    2: [
        (T0, "conn", CONN),
        (T0 + 5, "ws", '{"id":"1","type":"welcome"}', 1),
        (T0 + 9, "rest", REST_RAW),
        (T0 + 9, "ws", TICKER_FRAME, 1),
        (T0 + 12, "ws", "not json", 1),
        (T0 + 20, "conn", {"event": "close", "conn": 1, "reason": "bye"}),
    ],
}
SAMPLE = SAMPLES[VERSION]


def test_truncated_last_object_yields_everything_before_it(tmp_path: Path, version: int) -> None:
    SAMPLE = SAMPLES[version]
    data, _ = _recording_bytes(SAMPLE, version)
    path = tmp_path / "x.msgpack"
    path.write_bytes(data[:-3])
    reader, records = read_all(path)
    assert records == SAMPLE[:-1]
    assert reader.truncated
    assert not reader.malformed
    assert reader.records == len(SAMPLE) - 1


def test_complete_file_is_not_truncated(tmp_path: Path, version: int) -> None:
    SAMPLE = SAMPLES[version]
    data, _ = _recording_bytes(SAMPLE, version)
    path = tmp_path / "x.msgpack"
    path.write_bytes(data)
    reader, records = read_all(path)
    assert records == SAMPLE
    assert not reader.truncated


def test_truncating_at_every_offset_yields_a_prefix(tmp_path: Path, version: int) -> None:
    SAMPLE = SAMPLES[version]
    data, ends = _recording_bytes(SAMPLE, version)
    path = tmp_path / "x.msgpack"
    for cut in range(ends[0], len(data) + 1):
        path.write_bytes(data[:cut])
        reader, records = read_all(path)
        complete = sum(1 for end in ends[1:] if end <= cut)
        assert records == SAMPLE[:complete], cut
        assert reader.truncated == (cut not in ends), cut
        assert not reader.malformed, cut


def test_an_invalid_byte_mid_file_is_corruption_and_the_reader_resumes_after_it(
    tmp_path: Path, version: int
) -> None:
    SAMPLE = SAMPLES[version]
    data, ends = _recording_bytes(SAMPLE, version)
    bad_at = ends[3]  # after three records (ends[0] is the header's end)
    path = tmp_path / "x.msgpack"
    path.write_bytes(data[:bad_at] + b"\xc1" + data[bad_at:])
    reader, records = read_all(path)
    assert records == SAMPLE  # every record, the invalid byte skipped
    assert reader.corruption == [(bad_at, 3)]
    assert reader.skipped_bytes == 1
    assert not reader.truncated
    assert reader.malformed == {"undecodable": 1}
    assert reader.tell() >= len(data) + 1


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xc1",  # a byte MessagePack never uses
        b"\xa3\xff\xfe\xfd",  # a str that is not UTF-8
        b"\x81\x91\x01\x02",  # a map keyed by an array
        b"\xd4\xff\x01",  # a timestamp ext of an impossible length
        b"\xdd\xff\xff\xff\xff",  # an array claiming 4 G elements
        b"\xdb\x7f\xff\xff\xff",  # a str longer than the unpacker takes (and the file)
        b"\xc6\x00\x00\x10\x00",  # a bin claiming 4 KiB, swallowing the records after it
    ],
)
def test_corruption_mid_file_is_not_truncation(
    tmp_path: Path, version: int, garbage: bytes
) -> None:
    SAMPLE = SAMPLES[version]
    data, ends = _recording_bytes(SAMPLE, version)
    bad_at = ends[2]
    path = tmp_path / "x.msgpack"
    path.write_bytes(data[:bad_at] + garbage + data[bad_at:])
    reader, records = read_all(path)
    assert not reader.truncated
    assert reader.corruption == [(bad_at, 2)]
    assert reader.malformed["undecodable"] == 1
    # Resumed at the next record after the garbage: none lost, none invented.
    assert records == SAMPLE
    assert reader.skipped_bytes == len(garbage)


@pytest.mark.parametrize(
    "garbage",
    [b"\xc1", b"\xa3\xff\xfe\xfd", b"\x81\x91\x01\x02", b"\xd4\xff\x01", b"\xdd\xff\xff\xff\xff"],
)
def test_an_invalid_last_object_is_corruption_with_nothing_to_resume_at(
    tmp_path: Path, version: int, garbage: bytes
) -> None:
    good = ws_payload(version, {})
    path = write_raw(tmp_path / "x.msgpack", good_header(version=version), [T0, "ws", good])
    size = path.stat().st_size
    with path.open("ab") as file:
        file.write(garbage)
    reader, records = read_all(path)
    assert records == [(T0, "ws", good)]
    assert not reader.truncated
    assert reader.corruption == [(size, 1)]
    assert reader.skipped_bytes == len(garbage)
    assert reader.malformed == {"undecodable": 1}


def test_two_damaged_places_are_both_counted(tmp_path: Path, version: int) -> None:
    SAMPLE = SAMPLES[version]
    data, ends = _recording_bytes(SAMPLE, version)
    path = tmp_path / "x.msgpack"
    damaged = data[: ends[2]] + b"\xc1" + data[ends[2] : ends[4]] + b"\xc1\xc1" + data[ends[4] :]
    path.write_bytes(damaged)
    reader, records = read_all(path)
    assert records == SAMPLE
    assert reader.corruption == [(ends[2], 2), (ends[4] + 1, 4)]
    assert reader.skipped_bytes == 3
    assert reader.malformed == {"undecodable": 2}


def test_a_truncated_tail_after_corruption_is_still_truncation(
    tmp_path: Path, version: int
) -> None:
    SAMPLE = SAMPLES[version]
    data, ends = _recording_bytes(SAMPLE, version)
    path = tmp_path / "x.msgpack"
    path.write_bytes(data[: ends[2]] + b"\xc1" + data[ends[2] : -3])
    reader, records = read_all(path)
    assert records == SAMPLE[:-1]
    assert reader.corruption == [(ends[2], 2)]
    assert reader.truncated


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(max_size=200), version=st.sampled_from([1, 2]))
def test_garbage_after_the_header_never_raises(
    tmp_path: Path, garbage: bytes, version: int
) -> None:
    path = tmp_path / "x.msgpack"
    path.write_bytes(pack(good_header(version=version)) + garbage)
    yielded = 0
    with RecordingReader(path) as reader:
        for recv_ns, kind, payload, conn in reader:
            assert type(recv_ns) is int and kind in KINDS
            assert conn is None or (version == 2 and type(conn) is int)
            if kind == "ws":
                assert type(payload) in ((dict, str) if version == 1 else (str, bytes))
            yielded += 1
    skipped = sum(reader.malformed.values()) - reader.malformed["undecodable"]
    assert reader.records == yielded + skipped + sum(reader.unknown_kinds.values())
    assert reader.malformed["undecodable"] == len(reader.corruption)
    assert reader.skipped_bytes <= len(garbage)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), version=st.sampled_from([1, 2]))
def test_a_corrupt_stretch_mid_file_never_loses_the_records_after_it(
    tmp_path: Path, data: st.DataObject, version: int
) -> None:
    SAMPLE = SAMPLES[version]
    raw, ends = _recording_bytes(SAMPLE, version)
    i = data.draw(st.integers(1, len(SAMPLE) - 1), label="after record")
    garbage = data.draw(st.binary(min_size=1, max_size=40), label="garbage")
    path = tmp_path / "x.msgpack"
    path.write_bytes(raw[: ends[i]] + garbage + raw[ends[i] :])
    with RecordingReader(path) as reader:
        records = [r if r[3] is not None else r[:3] for r in reader]
    # The records before the garbage come through; the records after it too, unless the
    # garbage decodes into objects that swallow them: then the reader says so (corruption,
    # truncation, or objects counted as malformed), never losing records silently.
    assert records[:i] == SAMPLE[:i]
    assert records[-1] == SAMPLE[-1] or reader.corruption or reader.truncated or reader.malformed


# --- reader lifecycle --------------------------------------------------------------------


def test_reader_iterates_once(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header(), [T0, "ws", "{}"])
    with RecordingReader(path) as reader:
        assert list(reader) == [(T0, "ws", "{}", None)]
        with pytest.raises(RuntimeError):
            iter(reader)


def test_closed_reader_refuses_to_iterate_and_close_is_idempotent(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header(), [T0, "ws", "{}"])
    reader = RecordingReader(path)
    reader.close()
    reader.close()
    with pytest.raises(RuntimeError):
        iter(reader)


def test_closing_mid_iteration_is_not_corruption(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "x.msgpack", good_header(), [T0, "ws", "{}"], [T0 + 1, "ws", "{}"])
    reader = RecordingReader(path)
    records = iter(reader)
    assert next(records) == (T0, "ws", "{}", None)
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
        "version": 2,
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
        writer.write(T0, "ws", "{}")
        writer.write(T0, "ws", "{}", 1)
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
        version=2, venue=VENUE, created_ns=T0, source="tests", symbols=("XBTUSDTM",)
    )
    with pytest.raises(ValueError, match="closed"):
        w.write(T0 + 99, "ws", "{}")


@pytest.mark.parametrize("kind", ["trade", "WS", "", 1, None, b"ws"])
def test_writer_rejects_a_bad_kind(kind: Any) -> None:
    buffer = io.BytesIO()
    writer = RecordingWriter(buffer, created_ns=T0, source="tests")
    size = len(buffer.getvalue())
    with pytest.raises(ValueError, match="kind"):
        writer.write(T0, kind, "{}")
    assert len(buffer.getvalue()) == size and writer.records_written == 0


@pytest.mark.parametrize("recv_ns", [float(T0), str(T0), True, None])
def test_writer_rejects_a_recv_ns_that_is_not_an_int(recv_ns: Any) -> None:
    writer = RecordingWriter(io.BytesIO(), created_ns=T0, source="tests")
    with pytest.raises(ValueError, match="recv_ns"):
        writer.write(recv_ns, "ws", "{}")


def test_writer_rejects_a_decreasing_recv_ns_but_accepts_an_equal_one() -> None:
    buffer = io.BytesIO()
    writer = RecordingWriter(buffer, created_ns=T0, source="tests")
    writer.write(T0 + 10, "ws", "{}")
    writer.write(T0 + 10, "ws", "{}")
    size = len(buffer.getvalue())
    with pytest.raises(ValueError, match="smaller"):
        writer.write(T0 + 9, "ws", "{}")
    assert len(buffer.getvalue()) == size and writer.records_written == 2
    writer.write(T0 + 11, "ws", "{}")
    assert writer.records_written == 3


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("rest", {"path": "/x"}),
        ("rest", None),
        ("rest", REST),  # a decoded body is version 1
        ("conn", {"event": "up", "conn": 1}),
        ("conn", []),
    ],
)
def test_writer_rejects_rest_and_conn_payloads_of_the_wrong_shape(kind: str, payload: Any) -> None:
    writer = RecordingWriter(io.BytesIO(), created_ns=T0, source="tests")
    with pytest.raises(ValueError, match=kind):
        writer.write(T0, kind, payload)


@pytest.mark.parametrize("payload", [TICKER, [1, 2, 3], None, 5, bytearray(b"{}")])
def test_writer_rejects_a_ws_payload_that_is_not_a_frame(payload: Any) -> None:
    buffer = io.BytesIO()
    writer = RecordingWriter(buffer, created_ns=T0, source="tests")
    size = len(buffer.getvalue())
    with pytest.raises(ValueError, match="frame"):
        writer.write(T0, "ws", payload)
    assert len(buffer.getvalue()) == size and writer.records_written == 0


@pytest.mark.parametrize("conn", ["1", 1.0, True, [1]])
def test_writer_rejects_a_connection_id_that_is_not_an_int(conn: Any) -> None:
    writer = RecordingWriter(io.BytesIO(), created_ns=T0, source="tests")
    with pytest.raises(ValueError, match="conn"):
        writer.write(T0, "ws", "{}", conn)
    assert writer.records_written == 0


def test_writer_rejects_an_unencodable_payload_and_stays_usable(tmp_path: Path) -> None:
    path = tmp_path / "x.msgpack"
    with RecordingWriter.create(path, created_ns=T0, source="tests") as writer:
        with pytest.raises(ValueError, match="encode"):
            writer.write(T0, "rest", {**REST_RAW, "params": {"a": [1, object()]}})
        with pytest.raises(ValueError, match="encode"):
            writer.write(T0, "ws", "{}", 1 << 64)
        writer.write(T0, "ws", TICKER_FRAME, 1)
    reader, records = read_all(path)
    assert records == [(T0, "ws", TICKER_FRAME, 1)]
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

ws_payloads = st.text(max_size=40) | st.binary(max_size=40)
rest_payloads = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "POST", "DELETE"]),
        "path": st.text(max_size=30),
        "params": json_maps,
        "status": st.integers(min_value=100, max_value=599),
        "body": st.text(max_size=40) | st.binary(max_size=40),
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
def record_lists(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    recv_ns = draw(st.integers(min_value=0, max_value=T0 * 2))
    records: list[tuple[Any, ...]] = []
    for kind, payload in draw(st.lists(kinds_and_payloads, max_size=12)):
        recv_ns += draw(st.integers(min_value=0, max_value=10**9))
        conn = draw(st.none() | st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1))
        records.append((recv_ns, kind, payload) if conn is None else (recv_ns, kind, payload, conn))
    return records


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=record_lists(), symbols=st.lists(st.text(max_size=10), max_size=3))
def test_round_trip_preserves_records_exactly(
    tmp_path: Path, records: list[tuple[Any, ...]], symbols: list[str]
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
    tmp_path: Path, records: list[tuple[Any, ...]], data: st.DataObject
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


@pytest.mark.parametrize("recv_ns", [1 << 63, (1 << 64) - 1, -1, -(1 << 63)])
def test_recv_ns_outside_64_bits_is_counted_and_skipped(
    tmp_path: Path, version: int, recv_ns: int
) -> None:
    good = ws_payload(version)
    path = write_raw(
        tmp_path / "x.msgpack",
        good_header(version=version),
        [recv_ns, "ws", good],
        [T0, "ws", good],
        [(1 << 63) - 1, "ws", good],
    )
    reader, records = read_all(path)
    assert records == [(T0, "ws", good), ((1 << 63) - 1, "ws", good)]
    assert reader.malformed == {"recv_ns_out_of_range": 1}
    assert reader.backwards == 0
