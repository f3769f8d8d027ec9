"""Finding the next record after corruption in a recording.

A recording has no framing: after an invalid object the reader does not know where the
next record starts. `find_record` scans forward for the first offset where a record this
reader would accept begins, and is strict about it, so that bytes inside a frame are not
taken for a record:

* an array of 3 or 4 elements (4 in version 2 only) whose first element is encoded as a
  64-bit int (every epoch-ns receive time is), the whole object decodable;
* a receive time in range, not before the last good record's and at most `MAX_GAP_NS`
  after it;
* a kind the reader knows with a payload of the right type (a frame, or a map).

A complete valid record in what looks like a truncated tail means the tail was not a
record cut short but a corrupt length prefix: the reader tells them apart with this too.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgpack

__all__ = ["MAX_GAP_NS", "find_record"]

MAX_GAP_NS: Final = 86_400 * 1_000_000_000  # a day
# An array of 3 or 4, then a 64-bit int (uint 64 or int 64): where a record can begin.
_CANDIDATE: Final = re.compile(rb"[\x93\x94][\xcf\xd3]")
_MAX_NS: Final = (1 << 63) - 1
_DECODE_ERRORS: Final = (msgpack.UnpackException, ValueError, TypeError)
_PROBE: Final = 1 << 16


def _acceptable(obj: object, prev_ns: int | None, v2: bool) -> bool:
    if type(obj) is not list or len(obj) not in ((3, 4) if v2 else (3,)):
        return False
    recv_ns, kind, payload = obj[0], obj[1], obj[2]
    if type(recv_ns) is not int or not 0 <= recv_ns <= _MAX_NS:
        return False
    if prev_ns is not None and not prev_ns <= recv_ns <= prev_ns + MAX_GAP_NS:
        return False
    if len(obj) == 4 and type(obj[3]) is not int:
        return False
    if kind == "ws":
        return type(payload) in ((str, bytes) if v2 else (str, dict))
    return kind in ("rest", "conn") and type(payload) is dict


def _decode_at(data: memoryview, at: int, make: Any) -> tuple[object, int] | None:
    """The object starting at `at` and its length; None if none decodes there."""
    size = _PROBE
    while True:
        unpacker = make()
        unpacker.feed(data[at : at + size])
        try:
            obj = unpacker.unpack()
        except msgpack.OutOfData:
            if at + size >= len(data):
                return None
            size *= 4
            continue
        except _DECODE_ERRORS:
            return None
        return obj, int(unpacker.tell())


def find_record(
    data: bytes | bytearray, start: int, prev_ns: int | None, v2: bool, make: Any
) -> int | None:
    """The first offset >= `start` in `data` where an acceptable record begins, or None.

    `make()` returns a fresh feed-mode Unpacker configured as the reader's.
    """
    view = memoryview(data)
    for match in _CANDIDATE.finditer(data, start):
        at = match.start()
        found = _decode_at(view, at, make)
        if found is not None and _acceptable(found[0], prev_ns, v2):
            return at
    return None
