"""Read and write tradebot recordings: what the exchange sent, as it arrived, with local times.

The format (`FORMAT` "tradebot-recording", extension ``.msgpack``; RECORDING_FORMAT.md): a
plain concatenation of MessagePack objects, no extra framing, strings UTF-8. The reader reads
versions 1 and 2; the writer writes `VERSION` 2.

Object 0 is the header map: ``format`` (str, always "tradebot-recording"), ``version`` (int),
``venue`` (str, "kucoin-futures"), ``created_ns`` (int, epoch ns), ``source`` (str, free
text), ``symbols`` (list of str; empty means all). Unknown header keys are ignored.

Every later object is a record; ``recv_ns`` is the epoch ns at which the local process
received the item and is non-decreasing through the file.

Version 2 (raw frames): ``[recv_ns, kind, payload]`` or ``[recv_ns, kind, payload, conn]``,
``conn`` the int id of the connection the item arrived on (expected on "ws" records). Kinds:

    "ws"    the frame exactly as received: a str (text frame) or bytes (binary frame)
    "rest"  {"method": "GET", "path": "/api/v1/...", "params": {...}, "status": 200,
             "body": <the body as received, str or bytes>}   (method and params optional)
    "conn"  {"event": "open" | "close" | "error", "conn": <int id>, "reason": <str>}
             (reason optional)

Version 1 (decoded maps): ``[recv_ns, kind, payload]`` only; a "ws" payload is the message
decoded to a map, or the text of a frame that was not JSON; a "rest" ``body`` is the decoded
JSON body; "conn" as in version 2.

Bad input, as `RecordingReader` handles it:

* a missing or unreadable file, a file that is not MessagePack, whose first object is not a
  valid header, whose venue is not `VENUE`, or whose version is newer than `VERSION`:
  `tradebot.errors.RecordingError` with a one-line message naming the file and the problem;
* a record that is not an array of 3 elements (version 1) or 3 or 4 (version 2), has the
  wrong types (a version-2 "ws" payload that is neither str nor bytes, a ``conn`` that is
  not an int, ...), or a payload of the wrong shape for its kind: counted in
  `RecordingReader.malformed` by reason and skipped;
* a record of an unknown kind (a later version may add kinds): counted in
  `RecordingReader.unknown_kinds` and skipped;
* ``recv_ns`` negative or 2^63 or more (outside a signed 64-bit int): counted as
  ``malformed["recv_ns_out_of_range"]`` and skipped;
* ``recv_ns`` smaller than the previous yielded record's: counted in
  `RecordingReader.backwards`, and the record is still yielded in file order;
* a file that ends inside its last object (the recorder was killed mid-write): everything
  before it is yielded and `RecordingReader.truncated` is set;
* an invalid object before the end of the file (bytes MessagePack cannot decode, a string
  over the unpacker's limit, a map keyed by an array, a length prefix that swallows the
  records after it): corruption, not truncation. Its byte offset and the records read
  before it go to `RecordingReader.corruption`, ``malformed["undecodable"]`` counts it,
  and the reader resumes at the next valid record (simulator/resync.py), counting the
  bytes skipped in `RecordingReader.skipped_bytes`; with none to resume at, the rest of the
  file is skipped.

`RecordingReader` fills the optional payload fields in place: a "rest" payload without
``method`` / ``params`` gets "GET" / {}, a "conn" payload without ``reason`` gets "".
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO, Final, Self, TypeVar

import msgpack

from simulator.resync import find_record
from tradebot.errors import RecordingError

__all__ = [
    "FORMAT",
    "KINDS",
    "VENUE",
    "VERSION",
    "Header",
    "Record",
    "RecordingReader",
    "RecordingWriter",
]

FORMAT: Final = "tradebot-recording"
VERSION: Final = 2
"""The version the writer writes and the newest the reader reads (it reads 1 too)."""
VENUE: Final = "kucoin-futures"
KINDS: Final = frozenset({"ws", "rest", "conn"})

_T = TypeVar("_T")

Record = tuple[int, str, Any, int | None]
"""One record as `RecordingReader` yields it: ``(recv_ns, kind, payload, conn)``; ``conn``
is None for a record that names no connection (every version-1 record)."""

_CONN_EVENTS: Final = frozenset({"open", "close", "error"})
_EMPTY: Final[dict[str, object]] = {}  # only read, never handed out
# The smallest int MessagePack can carry: every recv_ns compares >= to it.
_MIN_NS: Final = -(1 << 63)
# The largest receive time the core represents (a signed 64-bit int, as the audit store
# holds it): a recv_ns of 2^63 or more, or a negative one, is a malformed record.
_MAX_NS: Final = (1 << 63) - 1
_READ_SIZE: Final = 1 << 20
# How far past an invalid object the reader looks for the next valid record.
_RESYNC_LIMIT: Final = 16 << 20
# Cap on the array / map lengths the unpacker accepts (it allocates a declared length up
# front): an honest length cannot exceed the file size, and the cap stops a corrupt length
# prefix from allocating gigabytes. Strings and binaries are bounded by max_buffer_size.
_MIN_LEN_CAP: Final = 1 << 20
_MAX_LEN_CAP: Final = 100 * 1024 * 1024
# What msgpack raises on bytes it cannot decode (FormatError, StackError, BufferFull,
# UnicodeDecodeError, "unhashable type" for a map keyed by an array, bad ext data, ...).
_DECODE_ERRORS: Final = (msgpack.UnpackException, ValueError, TypeError)


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    """Object 0 of a recording (``format`` is implied: always `FORMAT`)."""

    version: int
    venue: str
    created_ns: int
    source: str
    symbols: tuple[str, ...]

    def to_map(self) -> dict[str, object]:
        """The header as written to the file."""
        return {
            "format": FORMAT,
            "version": self.version,
            "venue": self.venue,
            "created_ns": self.created_ns,
            "source": self.source,
            "symbols": list(self.symbols),
        }


def _rest_problem(payload: object, raw_body: bool) -> str | None:
    """The malformed reason for a "rest" payload, or None when it is well-formed.

    `raw_body` (version 2): the body must be the bytes or text as received.
    """
    if type(payload) is not dict:
        return "payload_not_map"
    if (
        type(payload.get("path")) is not str
        or type(payload.get("status")) is not int
        or "body" not in payload
        or type(payload.get("method", "GET")) is not str
        or type(payload.get("params", _EMPTY)) is not dict
    ):
        return "rest_bad_fields"
    if raw_body and type(payload["body"]) is not str and type(payload["body"]) is not bytes:
        return "rest_bad_fields"
    return None


def _conn_problem(payload: object) -> str | None:
    """The malformed reason for a "conn" payload, or None when it is well-formed."""
    if type(payload) is not dict:
        return "payload_not_map"
    event = payload.get("event")
    if (
        type(event) is not str
        or event not in _CONN_EVENTS
        or type(payload.get("conn")) is not int
        or type(payload.get("reason", "")) is not str
    ):
        return "conn_bad_fields"
    return None


class RecordingWriter:
    """Writes a header then records; flushes on close. Use as a context manager."""

    __slots__ = (
        "_closed",
        "_file",
        "_owns_file",
        "_packer",
        "_prev_ns",
        "header",
        "records_written",
    )

    header: Header
    records_written: int

    def __init__(
        self,
        file: BinaryIO,
        *,
        created_ns: int,
        source: str,
        symbols: Iterable[str] = (),
        venue: str = VENUE,
    ) -> None:
        """Write the header to `file` now; the caller keeps ownership of `file`."""
        if type(created_ns) is not int:
            raise ValueError(f"created_ns must be an int, got {type(created_ns).__name__}")
        if type(source) is not str:
            raise ValueError(f"source must be a str, got {type(source).__name__}")
        if type(venue) is not str:
            raise ValueError(f"venue must be a str, got {type(venue).__name__}")
        if isinstance(symbols, str):
            raise ValueError(f"symbols must be an iterable of str, not the str {symbols!r}")
        symbol_tuple = tuple(symbols)
        for symbol in symbol_tuple:
            if type(symbol) is not str:
                raise ValueError(f"symbols must be str, got {type(symbol).__name__}")
        self.header = Header(
            version=VERSION,
            venue=venue,
            created_ns=created_ns,
            source=source,
            symbols=symbol_tuple,
        )
        self._file = file
        self._owns_file = False
        self._closed = False
        self._packer = msgpack.Packer(use_bin_type=True)
        self._prev_ns = _MIN_NS
        self.records_written = 0
        file.write(self._packer.pack(self.header.to_map()))

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        created_ns: int,
        source: str,
        symbols: Iterable[str] = (),
        venue: str = VENUE,
    ) -> Self:
        """Create (or truncate) the file at `path` and write the header; close() closes it."""
        file = open(path, "wb")  # noqa: SIM115 - owned by the writer, closed by close()
        try:
            writer = cls(file, created_ns=created_ns, source=source, symbols=symbols, venue=venue)
        except BaseException:
            file.close()
            raise
        writer._owns_file = True
        return writer

    def write(self, recv_ns: int, kind: str, payload: object, conn: int | None = None) -> None:
        """Append one record; `conn` is the id of the connection it arrived on, if any.

        Raises ValueError for the caller's mistakes, writing nothing: `recv_ns` not an int or
        smaller than the previous record's, `kind` not in `KINDS`, a "ws" payload that is not
        the frame (str or bytes), a "rest" / "conn" payload of the wrong shape (a "rest"
        ``body`` that is not str or bytes), a `conn` that is not an int, a payload
        MessagePack cannot encode, or a closed writer.
        """
        if self._closed:
            raise ValueError("write to a closed RecordingWriter")
        if type(recv_ns) is not int:
            raise ValueError(f"recv_ns must be an int, got {type(recv_ns).__name__}")
        if type(kind) is not str or kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
        if conn is not None and type(conn) is not int:
            raise ValueError(f"conn must be an int or None, got {type(conn).__name__}")
        if recv_ns < self._prev_ns:
            raise ValueError(
                f"recv_ns {recv_ns} is smaller than the previous record's {self._prev_ns}"
            )
        if kind == "ws":
            if type(payload) is not str and type(payload) is not bytes:
                raise ValueError(f"a ws payload is the frame (str or bytes), got {payload!r:.200}")
        else:
            problem = _rest_problem(payload, True) if kind == "rest" else _conn_problem(payload)
            if problem is not None:
                raise ValueError(f"bad {kind} payload ({problem}): {payload!r:.200}")
        record = [recv_ns, kind, payload] if conn is None else [recv_ns, kind, payload, conn]
        try:
            data = self._packer.pack(record)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"cannot encode {kind} record at {recv_ns}: {exc}") from exc
        self._file.write(data)
        self._prev_ns = recv_ns
        self.records_written += 1

    def flush(self) -> None:
        """Push buffered records to the operating system."""
        if not self._closed:
            self._file.flush()

    def close(self) -> None:
        """Flush, and close the file if `create` opened it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._file.flush()
        finally:
            if self._owns_file:
                self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _show(value: object, limit: int = 60) -> str:
    """A short one-line repr of `value` for error messages."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: object) -> str:
    return "nil" if value is None else type(value).__name__


def _looks_like_text(head: bytes) -> bool:
    """Whether the first bytes of a file read as text (a JSON or CSV file, say)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # The cut may have split a multi-byte character at the end.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return bool(text) and all(ch.isprintable() or ch in "\t\n\r" for ch in text)


def _at_object_boundary(unpacker: Any) -> bool:
    """Whether an exhausted feed-mode `unpacker` holds no part of an unfinished object.

    Iteration stops the same way at a clean end and inside an object, and `tell()` counts
    the bytes of a partial object too. So feed a nil: at a boundary it comes straight back
    as None; inside an object it is swallowed by that object (a container, str or number can
    never decode as None), which then is still incomplete, completes as something else, or
    fails to decode.
    """
    try:
        unpacker.feed(b"\xc0")
        return unpacker.unpack() is None
    except (msgpack.OutOfData, *_DECODE_ERRORS):
        return False


class RecordingReader:
    """Iterates a recording's records; counts bad ones instead of raising."""

    __slots__ = (
        "_base",
        "_closed",
        "_fed",
        "_file",
        "_iterated",
        "_len_cap",
        "_stream",
        "_unpacker",
        "backwards",
        "corruption",
        "header",
        "malformed",
        "path",
        "records",
        "skipped_bytes",
        "truncated",
        "unknown_kinds",
    )

    path: str
    header: Header
    records: int
    """Objects read after the header: every kind, malformed ones included (a truncated or
    undecodable tail is not an object)."""
    malformed: Counter[str]
    """Skipped malformed records, by reason."""
    unknown_kinds: Counter[str]
    """Skipped records of a kind this version does not know, by kind."""
    backwards: int
    """Yielded records whose recv_ns is smaller than the previous yielded record's."""
    truncated: bool
    """The file ended inside its last object (the recorder was stopped mid-write)."""
    corruption: list[tuple[int, int]]
    """Each invalid object before the end of the file: (byte offset, records read before
    it). The reader resumes at the next valid record when it finds one (`skipped_bytes`)."""
    skipped_bytes: int
    """Bytes skipped over corruption (to the next valid record, or to the end)."""

    def __init__(self, path: str | os.PathLike[str], *, file: BinaryIO | None = None) -> None:
        """Open the file and read and validate the header; raise RecordingError if bad.

        `file`, when given, is the recording already open (standard input, a pipe: what can
        be read only once); `path` then only names it in messages. The reader owns it and
        closes it on `close`.
        """
        self.path = os.fspath(path)
        self.records = 0
        self.malformed = Counter()
        self.unknown_kinds = Counter()
        self.backwards = 0
        self.truncated = False
        self.corruption = []
        self.skipped_bytes = 0
        self._fed = bytearray()  # bytes fed to the unpacker from offset _base on
        self._base = 0
        self._stream = 0  # the file offset where the current unpacker's feed starts
        self._len_cap = _MIN_LEN_CAP
        self._iterated = False
        self._closed = True
        if file is not None:
            self._file = file
        else:
            try:
                self._file = open(self.path, "rb", buffering=0)  # noqa: SIM115 - see close()
            except OSError as exc:
                raise RecordingError(self._open_problem(exc)) from None
        self._closed = False
        try:
            self.header = self._read_header()
        except BaseException:
            self.close()
            raise

    def _where(self) -> str:
        return self.path if self.path.isprintable() else repr(self.path)

    def _fail(self, problem: str) -> RecordingError:
        return RecordingError(f"{self._where()}: {problem}")

    def _open_problem(self, exc: OSError) -> str:
        if isinstance(exc, FileNotFoundError):
            problem = "no such file"
        elif isinstance(exc, IsADirectoryError):
            problem = "is a directory, expected a recording file"
        elif isinstance(exc, PermissionError):
            problem = "permission denied"
        else:
            problem = f"cannot read ({' '.join(str(exc.strerror or exc).split())})"
        return f"{self._where()}: {problem}"

    def _read_header(self) -> Header:
        try:
            size = os.fstat(self._file.fileno()).st_size
        except OSError as exc:
            raise RecordingError(self._open_problem(exc)) from None
        self._len_cap = min(max(size, _MIN_LEN_CAP), _MAX_LEN_CAP)
        # Fed by hand rather than given the file: at the end of the file, feeding a sentinel
        # tells a clean end from one inside an object (see `_records`).
        unpacker = self._new_unpacker()
        self._unpacker = unpacker
        head = b""
        while True:
            try:
                chunk = self._file.read(_READ_SIZE)
            except OSError as exc:
                raise RecordingError(self._open_problem(exc)) from None
            if not chunk:
                if not head:
                    raise self._fail("not a tradebot recording (the file is empty)")
                if _looks_like_text(head):
                    raise self._fail("not a tradebot recording (a text file, not MessagePack)")
                raise self._fail("not a tradebot recording (the file ends inside the header)")
            if not head:
                head = chunk[:512]
            self._fed += chunk
            try:
                unpacker.feed(chunk)
                obj: object = unpacker.unpack()
                break
            except msgpack.OutOfData:
                continue
            except _DECODE_ERRORS as exc:
                if _looks_like_text(head):
                    raise self._fail(
                        "not a tradebot recording (a text file, not MessagePack)"
                    ) from None
                detail = " ".join(str(exc).split())
                name = type(exc).__name__
                raise self._fail(
                    f"not a tradebot recording (not a MessagePack stream: {name}"
                    + (f": {detail})" if detail else ")")
                ) from None
        return self._parse_header(obj, head)

    def _new_unpacker(self) -> Any:
        return msgpack.Unpacker(
            raw=False,
            strict_map_key=False,
            max_buffer_size=_MAX_LEN_CAP,
            max_array_len=self._len_cap,
            max_map_len=self._len_cap,
        )

    def _parse_header(self, obj: object, head: bytes) -> Header:
        if type(obj) is not dict:
            if _looks_like_text(head):
                raise self._fail("not a tradebot recording (a text file, not MessagePack)")
            raise self._fail(
                f"not a tradebot recording (first object is {_type_name(obj)} {_show(obj)}, "
                "expected the header map)"
            )
        if "format" not in obj:
            raise self._fail("not a tradebot recording (header has no 'format' key)")
        fmt = obj["format"]
        if fmt != FORMAT:
            raise self._fail(
                f"not a tradebot recording (header 'format' is {_show(fmt)}, expected {FORMAT!r})"
            )
        version = self._header_field(obj, "version", int, "an int")
        if version > VERSION:
            raise self._fail(
                f"recording format version {version} is newer than this tradebot reads "
                f"(up to {VERSION}); upgrade tradebot to replay it"
            )
        if version < 1:
            raise self._fail(
                f"bad recording header ('version' is {version}, expected 1 to {VERSION})"
            )
        venue = self._header_field(obj, "venue", str, "a str")
        if venue != VENUE:
            raise self._fail(
                f"recorded on venue {_show(venue)}, but this tradebot replays {VENUE!r} only"
            )
        created_ns = self._header_field(obj, "created_ns", int, "an int")
        source = self._header_field(obj, "source", str, "a str")
        symbols = self._header_field(obj, "symbols", list, "a list of str")
        for symbol in symbols:
            if type(symbol) is not str:
                raise self._fail(
                    f"bad recording header ('symbols' holds {_type_name(symbol)} "
                    f"{_show(symbol)}, expected a list of str)"
                )
        return Header(
            version=version,
            venue=venue,
            created_ns=created_ns,
            source=source,
            symbols=tuple(symbols),
        )

    def _header_field(self, obj: dict[Any, Any], key: str, kind: type[_T], what: str) -> _T:
        if key not in obj:
            raise self._fail(f"bad recording header (no {key!r} key)")
        value = obj[key]
        if type(value) is not kind:  # exact type: True is not an int here
            raise self._fail(
                f"bad recording header ({key!r} is {_type_name(value)} {_show(value)}, "
                f"expected {what})"
            )
        return value

    def __iter__(self) -> Iterator[Record]:
        """Yield ``(recv_ns, kind, payload, conn)`` for every well-formed record of a known kind.

        In file order; counts and skips the rest. A reader can be iterated once.
        """
        if self._iterated:
            raise RuntimeError(f"{self._where()}: a RecordingReader can be iterated only once")
        if self._closed:
            raise RuntimeError(f"{self._where()}: the RecordingReader is closed")
        self._iterated = True
        return self._records()

    def _records(self) -> Iterator[Record]:
        # The replay hot path: keep the per-record work to a few exact-type checks.
        read = self._file.read
        malformed = self.malformed
        unknown_kinds = self.unknown_kinds
        v2 = self.header.version >= 2
        prev_ns = _MIN_NS
        conn: Any = None
        while True:
            unpacker = self._unpacker
            tell = unpacker.tell
            good_end = tell()  # the end of the last complete object, in this unpacker's feed
            at_eof = False
            try:
                while True:
                    for obj in unpacker:
                        good_end = tell()
                        self.records += 1
                        if type(obj) is not list:
                            malformed["record_not_array"] += 1
                            continue
                        n = len(obj)
                        if n == 3:
                            recv_ns, kind, payload = obj
                            conn = None
                        elif n == 4 and v2:
                            recv_ns, kind, payload, conn = obj
                            if type(conn) is not int:
                                malformed["conn_not_int"] += 1
                                continue
                        else:
                            malformed["record_wrong_length"] += 1
                            continue
                        if type(recv_ns) is not int:
                            malformed["recv_ns_not_int"] += 1
                            continue
                        if not 0 <= recv_ns <= _MAX_NS:
                            malformed["recv_ns_out_of_range"] += 1
                            continue
                        if kind == "ws":
                            if v2:
                                if type(payload) is not str and type(payload) is not bytes:
                                    malformed["payload_not_frame"] += 1
                                    continue
                            elif type(payload) is not dict and type(payload) is not str:
                                malformed["payload_not_map"] += 1
                                continue
                        elif kind == "rest":
                            problem = _rest_problem(payload, v2)
                            if problem is not None:
                                malformed[problem] += 1
                                continue
                            if "method" not in payload:
                                payload["method"] = "GET"
                            if "params" not in payload:
                                payload["params"] = {}
                        elif kind == "conn":
                            problem = _conn_problem(payload)
                            if problem is not None:
                                malformed[problem] += 1
                                continue
                            if "reason" not in payload:
                                payload["reason"] = ""
                        elif type(kind) is str:
                            unknown_kinds[kind] += 1
                            continue
                        else:
                            malformed["kind_not_str"] += 1
                            continue
                        if recv_ns < prev_ns:
                            self.backwards += 1
                        prev_ns = recv_ns
                        yield (recv_ns, kind, payload, conn)
                    chunk = read(_READ_SIZE)
                    if not chunk:
                        break
                    self._keep_from(self._stream + good_end)
                    self._fed += chunk
                    unpacker.feed(chunk)
            except _DECODE_ERRORS:
                if self._closed:  # closed mid-iteration: the read failed, the data did not
                    return
            except OSError as exc:
                if self._closed:
                    return
                raise RecordingError(self._open_problem(exc)) from None
            else:
                if _at_object_boundary(unpacker):
                    return
                at_eof = True
            # An invalid object, or a file that ends inside one: resume at the next valid
            # record if there is one (then this was corruption); a tail with none after the
            # last good object is a record cut short (truncation).
            bad_at = self._stream + good_end
            if not self._resync(bad_at, None if prev_ns == _MIN_NS else prev_ns, v2, at_eof):
                return

    def _keep_from(self, offset: int) -> None:
        """Drop the fed bytes before `offset` (they hold only complete objects)."""
        del self._fed[: offset - self._base]
        self._base = offset

    def _resync(self, bad_at: int, prev_ns: int | None, v2: bool, at_eof: bool) -> bool:
        """After an invalid object at `bad_at` (or, `at_eof`, a file ending inside one):
        restart the unpacker at the next valid record and return True; when there is none,
        record how the file ends and return False.

        At the end of the file, a tail with no valid record in it is a record cut short
        (truncation); one with a valid record after its start is corruption (a damaged
        length prefix swallowed the records after it).
        """
        invalid = not at_eof
        self._keep_from(bad_at)
        tail = self._fed
        while True:
            at = find_record(tail, 1, prev_ns, v2, self._new_unpacker)
            if at is not None or at_eof or len(tail) >= _RESYNC_LIMIT:
                break
            chunk = self._read()
            if chunk:
                tail += chunk
            else:
                at_eof = True
        if at is None and not invalid:
            self.truncated = True
            return False
        self.corruption.append((bad_at, self.records))
        self.malformed["undecodable"] += 1
        if at is None:  # nothing to resume at: the rest of the file is skipped
            skipped = len(tail)
            while chunk := self._read():
                skipped += len(chunk)
            self.skipped_bytes += skipped
            return False
        self.skipped_bytes += at
        del tail[:at]
        self._base = self._stream = bad_at + at
        self._unpacker = self._new_unpacker()
        self._unpacker.feed(bytes(tail))
        return True

    def _read(self) -> bytes:
        try:
            return self._file.read(_READ_SIZE)
        except OSError as exc:
            if self._closed:
                return b""
            raise RecordingError(self._open_problem(exc)) from None

    def tell(self) -> int:
        """Bytes of the file consumed so far (for progress reports)."""
        return self._stream + int(self._unpacker.tell())

    def fileno(self) -> int:
        """The file descriptor of the open recording (for `os.fstat`, say)."""
        return self._file.fileno()

    def close(self) -> None:
        """Close the file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
