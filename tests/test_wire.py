"""The typed decode path (`Parser.parse_frame`) against the map path (`Parser.parse_ws`).

A frame must give the same event and the same counts whichever path reads it: the typed
readers are the hot path, the map readers the reference (and what a version-1 recording
and every refused frame go through). Frames come from the sample recording and the
exchange's own examples, then are mutated in every slot: keys dropped, values swapped for
any JSON type, numbers as text, huge and non-finite numbers, deep nesting.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from simulator.recording import RecordingReader
from tradebot.kucoin.protocol import Parser

SAMPLE = Path(__file__).parent.parent / "recordings" / "sample.msgpack"
FIXTURES = Path(__file__).parent / "fixtures" / "kucoin"


def _sample_frames() -> list[str]:
    """One well-formed frame per (topic channel, subject) of the sample, plus fixtures."""
    seen: dict[tuple[str, str], str] = {}
    with RecordingReader(SAMPLE) as reader:
        for _, kind, payload, *_ in reader:
            if kind != "ws":
                continue
            try:
                msg = json.loads(payload)
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            key = (str(msg.get("topic", "")).partition(":")[0], str(msg.get("subject")))
            seen.setdefault(key, payload)
    frames = list(seen.values())
    for name in (
        "ws_orderbookIncrement.json",
        "ws_orderbookLevel5.json",
        "ws_orderbookLevel50.json",
        "ws_tickerV1.json",
        "ws_tickerV2.json",
        "ws_execution.json",
        "ws_instrument.json",
        "ws_announcement.json",
        "ws_symbolSnapshot.json",
    ):
        doc = json.loads((FIXTURES / name).read_text())
        if isinstance(doc, dict) and "topic" in doc:
            frames.append(json.dumps(doc))
    return frames


FRAMES = _sample_frames()

_SCALAR = hs.one_of(
    hs.none(),
    hs.booleans(),
    hs.integers(-(2**70), 2**70),
    hs.floats(allow_nan=False, allow_infinity=False),
    hs.sampled_from(["", "x", "12", "-3", "1e3", "5.0", " 7", "nan", "inf", "1e400", "buy"]),
    hs.sampled_from(["2.5,buy,3", "2.5,sell,0", "nan,buy,1", "1,up,2", "1,buy"]),
)
_VALUE = hs.recursive(
    _SCALAR,
    lambda inner: hs.one_of(
        hs.lists(inner, max_size=3), hs.dictionaries(hs.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


@hs.composite
def _mutated(draw: hs.DrawFn) -> tuple[str, str]:
    """(a well-formed frame of some topic, the same frame mutated) as JSON text."""
    original = draw(hs.sampled_from(FRAMES))
    msg = json.loads(original)
    for _ in range(draw(hs.integers(1, 3))):
        target = msg
        data = msg.get("data")
        if isinstance(data, dict) and draw(hs.booleans()):
            target = data
        keys = sorted(target)
        key = draw(hs.sampled_from([*keys, "extra"]))
        if draw(hs.integers(0, 3)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(_VALUE)
    return original, json.dumps(msg)


def _both(warm: str, frame: str | bytes) -> tuple[Any, Any, Parser, Parser]:
    """Parse `warm` then `frame` with a typed and a map parser; the warm-up frame makes
    the topic known, so the typed path really reads the mutated frame."""
    typed, mapped = Parser(), Parser()
    typed.parse_frame(warm)
    mapped.parse_ws(json.loads(warm))
    try:
        as_map = msgspec.json.decode(frame)
    except (msgspec.DecodeError, UnicodeEncodeError):
        as_map = frame if isinstance(frame, str) else ""
    return typed.parse_frame(frame), mapped.parse_ws(as_map), typed, mapped


def _counts(parser: Parser) -> tuple[Any, ...]:
    return (
        dict(parser.topics),
        dict(parser.rejects),
        dict(parser.control),
        dict(parser.rest),
        dict(parser.rest_errors),
    )


def test_every_sample_channel_is_read_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    channels = {json.loads(f)["topic"].partition(":")[0] for f in FRAMES if "topic" in f}
    assert len(channels) >= 8
    parsers = []
    for frame in FRAMES:
        typed, mapped, tp, mp = _both(frame, frame)
        assert typed == mapped
        assert _counts(tp) == _counts(mp)
        parsers.append((tp, frame, typed))

    def untyped(self: Parser, msg: Any) -> None:
        raise AssertionError(f"took the map path: {msg!r}")

    monkeypatch.setattr(Parser, "parse_ws", untyped)
    for parser, frame, event in parsers:  # topics known now: every frame decodes typed
        if json.loads(frame).get("topic", "").partition(":")[0] != "/contractMarket/level3":
            assert parser.parse_frame(frame) == event


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=_mutated(), as_bytes=hs.booleans())
def test_a_mutated_frame_gives_the_same_event_and_counts_on_both_paths(
    pair: tuple[str, str], as_bytes: bool
) -> None:
    warm, frame = pair
    typed, mapped, tp, mp = _both(warm, frame.encode() if as_bytes else frame)
    assert typed == mapped
    assert _counts(tp) == _counts(mp)


@settings(max_examples=300, deadline=None)
@given(
    frame=hs.one_of(
        hs.text(max_size=40),
        hs.binary(max_size=40),
        hs.sampled_from(FRAMES).map(lambda f: f[: len(f) // 2]),
        hs.just('{"topic":"/contractMarket/level2:X","data":{"change":"\ud800"}}'),
    )
)
def test_garbage_frames_are_counted_the_same_on_both_paths(frame: str | bytes) -> None:
    typed, mapped, tp, mp = _both(FRAMES[0], frame)
    assert typed == mapped
    assert _counts(tp) == _counts(mp)


def test_numbers_as_text_or_numbers_decode_alike() -> None:
    as_numbers = (
        '{"topic":"/contractMarket/tickerV2:XBTUSDTM","type":"message","subject":"tickerV2",'
        '"data":{"symbol":"XBTUSDTM","sequence":7,"bestBidPrice":100.5,"bestBidSize":3,'
        '"bestAskPrice":100.6,"bestAskSize":4,"ts":1767599820425000000}}'
    )
    as_text = as_numbers.replace("100.5", '"100.5"').replace(":3,", ':"3",')
    parser = Parser()
    assert parser.parse_frame(as_numbers) == parser.parse_frame(as_text)
    assert parser.parse_frame(as_text.encode()) == parser.parse_frame(as_numbers)
    assert parser.topics["tickerV2"] == 4
