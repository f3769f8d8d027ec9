"""Tests for tradebot.journal: the canonical entry text is pinned byte for byte.

The expected strings below were produced by the original (straightforward) implementation
of `fmt_value` / `Journal.record`; the fast paths must keep producing exactly this text,
because every entry is hashed into the run's digest.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from enum import IntEnum, StrEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradebot.journal import Journal, JournalEntry, fmt_float, fmt_value


class Colour(StrEnum):
    RED = "red"


class Level(IntEnum):
    TWO = 2


class Price(float):
    pass


class Name(str):
    __slots__ = ()


class Loud(str):
    """A str subclass whose formatting hooks lie: the text must come from its characters."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        return "LOUD"

    def __str__(self) -> str:
        return self


VALUES: list[tuple[object, str]] = [
    (0.0, "0"),
    (-0.0, "0"),
    (1.0, "1"),
    (-1.5, "-1.5"),
    (0.1, "0.1"),
    (0.3333333333333333, "0.333333333333"),
    (0.6666666666666666, "0.666666666667"),
    (1e-07, "1e-07"),
    (-1e-07, "-1e-07"),
    (123456789.123, "123456789.123"),
    (1234567890123.456, "1.23456789012e+12"),
    (0.000123456789012345, "0.000123456789012"),
    (1e16, "1e+16"),
    (1e22, "1e+22"),
    (-2.5e-300, "-2.5e-300"),
    (5e-324, "4.94065645841e-324"),
    (1.7976931348623157e308, "1.79769313486e+308"),
    (float("nan"), '"nan"'),
    (float("inf"), '"inf"'),
    (float("-inf"), '"-inf"'),
    (0, "0"),
    (1, "1"),
    (-17, "-17"),
    (100000000000000000000, "100000000000000000000"),
    (-1000000000000000000000000000000, "-1000000000000000000000000000000"),
    (True, "true"),
    (False, "false"),
    (None, "null"),
    (Decimal("0"), "0"),
    (Decimal("-0"), "0"),
    (Decimal("0.000"), "0"),
    (Decimal("1.2300"), "1.23"),
    (Decimal("1E+3"), "1000"),
    (Decimal("-0.000001"), "-0.000001"),
    (Decimal("123.456"), "123.456"),
    (Decimal("1E-10"), "0.0000000001"),
    ("", '""'),
    ("plain", '"plain"'),
    ("liquidity:0.42<0.50", '"liquidity:0.42<0.50"'),
    ("a b  c", '"a b  c"'),
    ('say "hi"', '"say \\"hi\\""'),
    ('"', '"\\""'),
    ("back\\slash", '"back\\\\slash"'),
    ("\\", '"\\\\"'),
    ("tab\there", '"tab\\there"'),
    ("nl\nx", '"nl\\nx"'),
    ("cr\rx", '"cr\\rx"'),
    ("\x08\x0c", '"\\b\\f"'),
    ("\x00\x1f", '"\\u0000\\u001f"'),
    ("\x7f", '"\x7f"'),
    ("héllo €", '"héllo €"'),
    ("日本語", '"日本語"'),
    ("\u2028\u2029", '"\u2028\u2029"'),
    ("\ud800", '"\ud800"'),
    ("emoji 😀", '"emoji 😀"'),
    ("/slash' <&>", '"/slash\' <&>"'),
    ("\xa0nbsp", '"\xa0nbsp"'),
    ("\u200bzw", '"\u200bzw"'),
    (Colour.RED, '"red"'),
    (Level.TWO, "2"),
    (Price(2.5), "2.5"),
    (Name("sub"), '"sub"'),
    (Loud("quiet"), '"quiet"'),
    (b"bytes", "\"b'bytes'\""),
    ((1, 2), '"(1, 2)"'),
    ([1.5, "a"], "\"[1.5, 'a']\""),
    ({"k": 1}, "\"{'k': 1}\""),
]

FLOATS: list[tuple[float, str]] = [
    (0.0, "0"),
    (-0.0, "0"),
    (1e-07, "1e-07"),
    (123456789.123, "123456789.123"),
    (float("nan"), "nan"),
    (float("inf"), "inf"),
    (float("-inf"), "-inf"),
    (0.30000000000000004, "0.3"),
]


@pytest.mark.parametrize(("value", "text"), VALUES)
def test_fmt_value_pinned(value: object, text: str) -> None:
    assert fmt_value(value) == text


@pytest.mark.parametrize(("value", "text"), FLOATS)
def test_fmt_float_pinned(value: float, text: str) -> None:
    assert fmt_float(value) == text


def _reference_fmt_value(value: object) -> str:
    """The original implementation, kept as the oracle for the property tests."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            text = "nan"
        elif value in (float("inf"), float("-inf")):
            text = "inf" if value > 0 else "-inf"
        else:
            text = format(value, ".12g")
            text = "0" if text == "-0" else text
        return text if value == value and abs(value) != float("inf") else f'"{text}"'
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "null"
    return json.dumps(str(value), ensure_ascii=False)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_fmt_value_float_matches_reference(x: float) -> None:
    assert fmt_value(x) == _reference_fmt_value(x)


@given(st.text())
def test_fmt_value_text_matches_reference(s: str) -> None:
    assert fmt_value(s) == _reference_fmt_value(s)
    assert fmt_value(s) == _reference_fmt_value(s)  # again: remembered strings
    assert json.loads(fmt_value(s)) == s


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)))
def test_fmt_value_ascii_text_matches_reference(s: str) -> None:
    assert fmt_value(s) == _reference_fmt_value(s)


@given(st.integers() | st.booleans() | st.none() | st.decimals(allow_nan=False))
def test_fmt_value_other_matches_reference(v: object) -> None:
    assert fmt_value(v) == _reference_fmt_value(v)


ENTRY_LINES = [
    '1|1700000000123456789|signal|XBTUSDTM|{"type":"StrongBuy","strength":0.734567891234,"confidence":0.8123,"imbalance":0,"momentum":0.333333333333,"liquidity":1,"volume":"high","spread":"tight","new_listing":false}\n',
    '2|1700000001000000000|rejection|XBTUSDTM|{"layer":"market_conditions","reason":"liquidity:0.42<0.50"}\n',
    "3|1700000002000000000|fresh|ETHUSDTM|{}\n",
    '4|1700000003000000000|daily_pnl||{"day":"2023-11-14","start_equity":1000,"end_equity":987.6543,"pnl":-12.3457}\n',
    '5|1700000004000000000|odd|SYM"||{"why":"q\\"\\\\\\né","n":null,"nan":"nan","big":100000000000000000000,"flag":true}\n',
]
DIGEST = "aede3fd96566fe3c953cb9b7750620c68a11d94ad876f6a8eee6f60074e3c894"
DIGEST_CLOSING = "83f51345b9866d82c17d7e6486b0b0dfac3672fc298ac259eb9e55648435ced0"


def _record_all(journal: Journal) -> list[JournalEntry]:
    return [
        journal.record(
            1_700_000_000_123_456_789,
            "signal",
            "XBTUSDTM",
            type="StrongBuy",
            strength=0.734567891234,
            confidence=0.8123,
            imbalance=-0.0,
            momentum=1 / 3,
            liquidity=1.0,
            volume="high",
            spread="tight",
            new_listing=False,
        ),
        journal.record(
            1_700_000_001_000_000_000,
            "rejection",
            "XBTUSDTM",
            layer="market_conditions",
            reason="liquidity:0.42<0.50",
        ),
        journal.record(1_700_000_002_000_000_000, "fresh", "ETHUSDTM"),
        journal.record(
            1_700_000_003_000_000_000,
            "daily_pnl",
            "",
            day="2023-11-14",
            start_equity=Decimal("1000.00"),
            end_equity=Decimal("987.6543"),
            pnl=Decimal("-12.3457"),
        ),
        journal.record(
            1_700_000_004_000_000_000,
            "odd",
            'SYM"|',
            why='q"\\\n\u00e9',
            n=None,
            nan=float("nan"),
            big=10**20,
            flag=True,
        ),
    ]


def test_record_text_and_digest_pinned() -> None:
    seen: list[JournalEntry] = []
    journal = Journal(seen.append)
    entries = _record_all(journal)
    assert [e.line() for e in entries] == ENTRY_LINES
    assert seen == entries
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0] == JournalEntry(
        1, 1_700_000_000_123_456_789, "signal", "XBTUSDTM", ENTRY_LINES[0].split("|", 4)[4][:-1]
    )
    assert journal.entries == 5
    assert dict(journal.counts) == {
        "signal": 1,
        "rejection": 1,
        "fresh": 1,
        "daily_pnl": 1,
        "odd": 1,
    }
    assert journal.digest() == DIGEST
    assert journal.digest("closing") == DIGEST_CLOSING
    assert journal.digest() == DIGEST  # digest() does not consume the running hash


@given(st.lists(st.text(), max_size=5), st.lists(st.floats(), max_size=5))
def test_record_detail_matches_fmt_value(texts: list[str], floats: list[float]) -> None:
    fields: dict[str, object] = {}
    for i, text in enumerate(texts):
        fields[f"s{i}"] = text
    for i, x in enumerate(floats):
        fields[f"f{i}"] = x
    fields["b"] = True
    fields["n"] = None
    fields["i"] = -3
    fields["e"] = Colour.RED
    expected = "{" + ",".join(f'"{k}":{_reference_fmt_value(v)}' for k, v in fields.items()) + "}"
    try:
        entry = Journal().record(1, "k", "S", **fields)
    except UnicodeEncodeError:  # a lone surrogate cannot be hashed (nor could it before)
        assert any(any("\ud800" <= c <= "\udfff" for c in t) for t in texts)
        return
    assert entry.detail == expected


def test_detail_is_json() -> None:
    entries = _record_all(Journal())
    signal = json.loads(entries[0].detail)
    assert list(signal) == [
        "type",
        "strength",
        "confidence",
        "imbalance",
        "momentum",
        "liquidity",
        "volume",
        "spread",
        "new_listing",
    ]
    assert signal["strength"] == 0.734567891234
    odd = json.loads(entries[4].detail)
    assert odd["why"] == 'q"\\\n\u00e9'
    assert odd["nan"] == "nan"
    assert math.isclose(json.loads(entries[0].detail)["momentum"], 1 / 3, rel_tol=1e-11)
