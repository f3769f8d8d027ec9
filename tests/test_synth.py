"""Tests for simulator.synth: determinism, payload shapes, book consistency, every scenario."""

from __future__ import annotations

import json
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import msgpack
import pytest

from simulator.synth import SynthSummary, generate

FIXTURES = Path(__file__).parent / "fixtures" / "kucoin"
ARGS: dict[str, Any] = {"symbols": 4, "minutes": 2.2, "seed": 7, "rate": 8.0}

Record = tuple[int, str, Any]


def _decoded(obj: list[Any]) -> Record:
    """A format-2 record with its frame or REST body decoded from JSON, as the tests read it
    (a frame that is not JSON stays its text); checks that it is format 2 on the way."""
    recv, kind, payload = obj[:3]
    if kind == "ws":
        assert len(obj) == 4 and type(obj[3]) is int, obj  # every frame names its connection
        assert type(payload) is str
        try:
            return recv, kind, json.loads(payload)
        except ValueError:
            return recv, kind, payload
    assert len(obj) == 3, obj
    if kind == "rest":
        assert type(payload["body"]) is str
        return recv, kind, {**payload, "body": json.loads(payload["body"])}
    return recv, kind, payload


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthSummary, list[Record]]:
    path = tmp_path_factory.mktemp("synth") / "a.msgpack"
    summary = generate(path, **ARGS)
    with open(path, "rb") as f:
        objects = list(msgpack.Unpacker(f, raw=False))
    assert objects[0]["format"] == "tradebot-recording"
    assert objects[0]["version"] == 2
    assert objects[0]["source"] == "tradebot-synth 2 seed=7"
    assert objects[0]["symbols"] == []
    return summary, [_decoded(o) for o in objects[1:]]


def test_frames_are_compact_json_text_on_the_connection_open_when_received(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.msgpack"
    generate(path, **ARGS)
    with open(path, "rb") as f:
        objects = list(msgpack.Unpacker(f, raw=False))[1:]
    conn = None
    frames = 0
    for obj in objects:
        if obj[1] == "conn" and obj[2]["event"] == "open":
            conn = obj[2]["conn"]
        elif obj[1] == "ws":
            frames += 1
            assert obj[3] == conn
            text = obj[2]
            try:
                message = json.loads(text)
            except ValueError:
                continue  # the injected frame that is not JSON
            assert text == json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    assert conn == 2 and frames > 1000


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def topic_symbol(payload: Any) -> str | None:
    """The symbol a ws message is about, or None."""
    if not isinstance(payload, dict) or payload.get("type") != "message":
        return None
    topic: str = payload.get("topic", "")
    symbol: str | None = topic.split(":", 1)[1] if ":" in topic else payload["data"].get("symbol")
    return symbol


def ws_of(records: list[Record], subject: str) -> list[tuple[int, dict[str, Any]]]:
    return [
        (recv, p)
        for recv, kind, p in records
        if kind == "ws" and isinstance(p, dict) and p.get("subject") == subject
    ]


def rest_of(records: list[Record], path: str) -> list[tuple[int, dict[str, Any]]]:
    return [(recv, p) for recv, kind, p in records if kind == "rest" and p["path"] == path]


def events(summary: SynthSummary, what: str) -> list[tuple[int, str, str]]:
    return [e for e in summary.events if e[1] == what]


# --- determinism and arguments ----------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    args: dict[str, Any] = {"symbols": 3, "minutes": 0.5, "seed": 3, "rate": 5.0}
    a, b, c = tmp_path / "a.msgpack", tmp_path / "b.msgpack", tmp_path / "c.msgpack"
    sa, sb = generate(a, **args), generate(b, **args)
    generate(c, **{**args, "seed": 4})
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert (sa.messages, sa.events) == (sb.messages, sb.events)


def test_two_minutes_hold_every_scenario_and_shorter_runs_skip_what_does_not_fit(
    tmp_path: Path,
) -> None:
    every = {"listing", "delisting", "stale", "wide_spread", "sequence_gap", "disconnect"}
    full = generate(tmp_path / "a.msgpack", symbols=2, minutes=2.0, rate=4.0)
    assert {what for _, what, _ in full.events} == every | {"malformed", "funding"}
    short = generate(tmp_path / "b.msgpack", symbols=2, minutes=0.5, rate=4.0)
    whats = {what for _, what, _ in short.events}
    assert "listing" not in whats and "delisting" not in whats
    assert {"stale", "wide_spread", "disconnect", "malformed", "funding"} <= whats
    assert generate(tmp_path / "c.msgpack", symbols=1, minutes=0.05).events == ()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"symbols": 0}, "symbols"),
        ({"symbols": 2.0}, "symbols"),
        ({"minutes": 0}, "minutes"),
        ({"minutes": -1.0}, "minutes"),
        ({"minutes": float("nan")}, "minutes"),
        ({"rate": 0.0}, "rate"),
        ({"rate": float("inf")}, "rate"),
        ({"rate": 1_001.0}, "rate"),
        ({"minutes": 1_441.0}, "minutes"),
        ({"symbols": 1_001}, "symbols"),
        ({"seed": "1"}, "seed"),
    ],
)
def test_bad_arguments_raise_one_line_value_error(
    tmp_path: Path, kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be") as info:
        generate(tmp_path / "x.msgpack", **kwargs)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "x.msgpack").exists()


# --- shapes and times -------------------------------------------------------------------


def shape(value: Any) -> Any:
    """Keys and leaf types (int and float both count as a number) of a payload."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return "list"
    return "number" if type(value) in (int, float) else type(value).__name__


@pytest.mark.parametrize(
    ("subject", "sample"),
    [
        ("level2", "ws_orderbookIncrement.json"),
        ("tickerV2", "ws_tickerV2.json"),
        ("match", "ws_execution.json"),
        ("mark.index.price", "ws_instrument.json"),
        ("snapshot.24h", "ws_symbolSnapshot.json"),
    ],
)
def test_ws_payloads_have_the_sample_shape(
    synth: tuple[SynthSummary, list[Record]], subject: str, sample: str
) -> None:
    messages = ws_of(synth[1], subject)
    assert messages
    want = shape(fixture(sample))
    want.pop("id", None)
    for _, p in messages:
        got = shape(p)
        got.pop("id", None)
        if subject == "tickerV2" and "bestAskPrice" not in p["data"]:
            continue  # the injected malformed ticker
        assert got == want
        for key, kind in INT_FIELDS.get(subject, {}).items():
            assert type(p["data"][key]) is kind, (subject, key)


INT_FIELDS: dict[str, dict[str, type]] = {
    "level2": {"sequence": int, "timestamp": int},
    "tickerV2": {"sequence": int, "bestBidSize": int, "bestAskSize": int, "ts": int},
    "match": {"sequence": int, "size": int, "ts": int},
    "snapshot.24h": {"ts": int},
}


def test_funding_and_rest_payloads_have_the_sample_shape(
    synth: tuple[SynthSummary, list[Record]],
) -> None:
    records = synth[1]
    begin = fixture("ws_announcement.json")
    for subject in ("funding.begin", "funding.end"):
        for _, p in ws_of(records, subject):
            assert p["topic"] == begin["topic"] and shape(p["data"]) == shape(begin["data"])
    rate = ws_of(records, "funding.rate")
    assert rate and all(
        list(p["data"]) == ["granularity", "fundingRate", "timestamp"] for _, p in rate
    )
    row = shape(fixture("rest_contracts_active.json")["data"][0])
    for _, p in rest_of(records, "/api/v1/contracts/active"):
        for contract in p["body"]["data"]:
            got = shape(contract)
            assert got.keys() == row.keys()
            assert {k: v for k, v in got.items() if row[k] != "NoneType"} == {
                k: v for k, v in row.items() if v != "NoneType"
            }
    snap = fixture("rest_level2_snapshot.json")["data"]
    for _, p in rest_of(records, "/api/v1/level2/snapshot"):
        data = p["body"]["data"]
        assert data.keys() == snap.keys() and p["params"] == {"symbol": data["symbol"]}
        assert all(type(size) is int and type(px) in (int, float) for px, size in data["bids"])
    assert all(type(p["body"]["data"]) is int for _, p in rest_of(records, "/api/v1/timestamp"))


def test_recv_ns_non_decreasing_and_exchange_times_before_it(
    synth: tuple[SynthSummary, list[Record]],
) -> None:
    records = synth[1]
    assert all(a[0] <= b[0] for a, b in pairwise(records))
    for recv, kind, p in records:
        if kind == "ws" and isinstance(p, dict) and "data" in p:
            data = p["data"]
            if "ts" in data:
                assert data["ts"] <= recv
            if "timestamp" in data:
                assert data["timestamp"] * 1_000_000 <= recv
        elif kind == "rest" and p["path"] == "/api/v1/level2/snapshot":
            assert p["body"]["data"]["ts"] < recv


def test_startup_order(synth: tuple[SynthSummary, list[Record]]) -> None:
    summary, records = synth
    first = records[0]
    assert first[1] == "conn" and first[2] == {"event": "open", "conn": 1, "reason": ""}
    assert records[1][2]["type"] == "welcome"
    assert records[2][2]["path"] == "/api/v1/timestamp"
    assert records[3][2]["path"] == "/api/v1/contracts/active"
    acks = 5 + 1  # five topic groups of <= 100 symbols, and the announcements
    assert [r[2]["type"] for r in records[4 : 4 + acks]] == ["ack"] * acks
    snaps = [r[2]["params"]["symbol"] for r in records[4 + acks : 4 + acks + ARGS["symbols"]]]
    assert snaps == list(summary.symbols)


# --- the books --------------------------------------------------------------------------


def parses(change: str) -> bool:
    price, side, size = change.split(",")
    try:
        return float(price) > 0 and side in ("buy", "sell") and int(size) >= 0
    except ValueError:
        return False


def replay_books(records: list[Record]) -> tuple[list[tuple[int, str]], dict[str, float], int]:
    """Apply every level-2 stream to a dict book rebuilt from each REST snapshot.

    Follows KuCoin's recipe: buffer while there is no book, drop what the snapshot already
    holds, then demand contiguous sequences. Checks that the book never crosses and that
    every tickerV2 matches the book at its sequence. Returns the sequence jumps (recv,
    symbol), the widest spread seen per symbol (bps) and the tickers checked.
    """
    books: dict[str, tuple[dict[float, int], dict[float, int]]] = {}
    last: dict[str, int] = {}
    buffered: dict[str, list[tuple[int, str]]] = {}
    jumps: list[tuple[int, str]] = []
    widest: dict[str, float] = {}
    checked = 0

    def apply(sym: str, seq: int, change: str) -> None:
        bids, asks = books[sym]
        price_s, side, size_s = change.split(",")
        price, size = float(price_s), int(size_s)
        levels = bids if side == "buy" else asks
        if size:
            levels[price] = size
        else:
            del levels[price]
        if bids and asks:
            bb, ba = max(bids), min(asks)
            assert bb < ba, f"{sym} crossed at {seq}"
            widest[sym] = max(widest.get(sym, 0.0), (ba - bb) / ((ba + bb) / 2) * 1e4)
        last[sym] = seq

    for recv, kind, p in records:
        if kind == "rest" and p["path"] == "/api/v1/level2/snapshot":
            data = p["body"]["data"]
            sym = data["symbol"]
            books[sym] = ({px: n for px, n in data["bids"]}, {px: n for px, n in data["asks"]})
            last[sym] = data["sequence"]
            for seq, change in buffered.pop(sym, []):
                if seq > last[sym]:
                    assert seq == last[sym] + 1, f"{sym}: buffered {seq} after {last[sym]}"
                    apply(sym, seq, change)
            continue
        if kind != "ws" or not isinstance(p, dict) or p.get("type") != "message":
            continue
        sym = topic_symbol(p) or ""
        if p["subject"] == "level2":
            seq, change = p["data"]["sequence"], p["data"]["change"]
            if not parses(change):
                continue  # the injected garbage change: skipped, the sequence not advanced
            if sym in buffered:
                buffered[sym].append((seq, change))
            elif seq <= last[sym]:
                continue
            elif seq == last[sym] + 1:
                apply(sym, seq, change)
            else:
                jumps.append((recv, sym))
                buffered[sym] = [(seq, change)]
        elif p["subject"] == "tickerV2" and sym not in buffered and "bestAskPrice" in p["data"]:
            data = p["data"]
            if last.get(sym) == data["sequence"]:
                bids, asks = books[sym]
                bb, ba = max(bids), min(asks)
                assert (float(data["bestBidPrice"]), data["bestBidSize"]) == (bb, bids[bb])
                assert (float(data["bestAskPrice"]), data["bestAskSize"]) == (ba, asks[ba])
                checked += 1
    return jumps, widest, checked


def test_books_contiguous_except_gap_and_disconnect_never_crossed_tickers_match(
    synth: tuple[SynthSummary, list[Record]],
) -> None:
    summary, records = synth
    jumps, widest, checked = replay_books(records)
    assert checked > 500
    [(gap_recv, _, gap_sym)] = events(summary, "sequence_gap")
    assert (gap_recv, gap_sym) in jumps
    opens = [recv for recv, kind, p in records if kind == "conn" and p["event"] == "open"]
    reopen = opens[1]
    for recv, sym in jumps:
        assert (recv, sym) == (gap_recv, gap_sym) or reopen < recv < reopen + 2_000_000_000
    [(_, _, wide_sym)] = events(summary, "wide_spread")
    assert 80 <= widest[wide_sym] <= 125
    assert all(bps < 50 for sym, bps in widest.items() if sym != wide_sym)


def test_trades_reduce_the_level_they_hit(synth: tuple[SynthSummary, list[Record]]) -> None:
    records = synth[1]
    last_change: dict[str, dict[str, Any]] = {}
    matches = lost = 0
    for _, kind, p in records:
        if kind != "ws" or not isinstance(p, dict):
            continue
        if p.get("subject") == "level2":
            last_change[topic_symbol(p) or ""] = p["data"]
        elif p.get("subject") == "match":
            data = p["data"]
            change = last_change[data["symbol"]]
            if change["sequence"] != data["sequence"]:
                lost += 1  # its level-2 change was lost (sequence gap or disconnect)
                continue
            price, side, _ = change["change"].split(",")
            assert price == data["price"]
            assert side == ("sell" if data["side"] == "buy" else "buy")
            matches += 1
    assert matches > 100 and lost <= 5


# --- scenarios --------------------------------------------------------------------------


def test_every_scenario_is_in_the_summary(synth: tuple[SynthSummary, list[Record]]) -> None:
    summary = synth[0]
    whats = Counter(what for _, what, _ in summary.events)
    for what in ("listing", "delisting", "stale", "wide_spread", "sequence_gap", "disconnect"):
        assert whats[what] == 1, what
    assert 3 <= whats["malformed"] <= 6
    assert whats["funding"] >= ARGS["symbols"] - 1
    assert len(summary.listed) == len(summary.delisted) == 1
    assert summary.symbols[0] == "XBTUSDTM" and len(summary.symbols) == ARGS["symbols"]


def test_listing_and_delisting_in_contract_lists(synth: tuple[SynthSummary, list[Record]]) -> None:
    summary, records = synth
    [new], [gone] = summary.listed, summary.delisted
    answers = rest_of(records, "/api/v1/contracts/active")
    status = [{c["symbol"]: c for c in p["body"]["data"]} for _, p in answers]
    assert new not in status[0] and gone in status[0]
    seen = next(i for i, s in enumerate(status) if new in s)
    assert status[seen][new]["status"] == "Open"
    assert status[seen][new]["firstOpenDate"] // 1000 == answers[seen][0] // 10**9
    [(listed_at, _, _)] = events(summary, "listing")
    assert answers[seen][0] == listed_at
    first_data = min(r for r, k, p in records if k == "ws" and topic_symbol(p) == new)
    snap = min(
        r for r, p in rest_of(records, "/api/v1/level2/snapshot") if p["params"]["symbol"] == new
    )
    assert listed_at < snap < first_data
    closed = next(i for i, s in enumerate(status) if s.get(gone, {}).get("status") == "Closed")
    assert all(s[gone]["status"] == "Open" for s in status[:closed])
    assert all(gone not in s for s in status[closed + 1 :])
    last_data = max(r for r, k, p in records if k == "ws" and topic_symbol(p) == gone)
    assert last_data < answers[closed][0]
    assert all(c["nextFundingRateTime"] > 0 for s in status for c in s.values())


def test_stale_symbol_is_silent_for_more_than_5_s(synth: tuple[SynthSummary, list[Record]]) -> None:
    summary, records = synth
    [(at, _, sym)] = events(summary, "stale")
    times = [r for r, k, p in records if k == "ws" and topic_symbol(p) == sym]
    silences = [(b - a, a) for a, b in pairwise(times)]
    longest, began = max(silences)
    assert longest > 5 * 10**9 and abs(began - at) < 10**9
    others = [r for r, k, p in records if k == "ws" and topic_symbol(p) not in (sym, None)]
    assert any(began < r < began + longest for r in others)


def test_sequence_gap_then_snapshot_about_300_ms_later(
    synth: tuple[SynthSummary, list[Record]],
) -> None:
    summary, records = synth
    [(at, _, sym)] = events(summary, "sequence_gap")
    snaps = [
        r for r, p in rest_of(records, "/api/v1/level2/snapshot") if p["params"]["symbol"] == sym
    ]
    after = [r - at for r in snaps if r > at]
    assert after and 200_000_000 < after[0] < 500_000_000


def test_disconnect_and_reconnect(synth: tuple[SynthSummary, list[Record]]) -> None:
    summary, records = synth
    conns = [(r, p) for r, k, p in records if k == "conn"]
    assert [p for _, p in conns[1:]] == [
        {"event": "close", "conn": 1, "reason": "1006 abnormal closure"},
        {"event": "open", "conn": 2, "reason": ""},
    ]
    (closed, _), (opened, _) = conns[1], conns[2]
    [(at, _, _)] = events(summary, "disconnect")
    assert at == closed and 1.9e9 < opened - closed < 2.1e9
    assert not [r for r, k, _ in records if k == "ws" and closed <= r <= opened]
    after = [p for r, k, p in records if r > opened and k == "ws"][:2]
    assert [after[0]["type"], after[1]["type"]] == ["welcome", "ack"]
    resync = {
        p["params"]["symbol"]
        for r, p in rest_of(records, "/api/v1/level2/snapshot")
        if opened < r < opened + 10**9
    }
    delisted_before = {s for r, what, s in summary.events if what == "delisting" and r < closed}
    assert resync == (set(summary.symbols) | set(summary.listed)) - delisted_before


def test_malformed_messages(synth: tuple[SynthSummary, list[Record]]) -> None:
    summary, records = synth
    texts = [p for _, k, p in records if k == "ws" and isinstance(p, str)]
    assert len(texts) == 1 and texts[0].startswith(
        '{"type":"message","topic":"/contractMarket/level2:'
    )
    changes = [p["data"]["change"] for _, p in ws_of(records, "level2")]
    assert changes.count("abc,buy,") == 1
    tickers = [p for _, p in ws_of(records, "tickerV2") if "bestAskPrice" not in p["data"]]
    assert len(tickers) == 1
    known = ("/contractMarket/", "/contract/instrument:", "/contract/announcement")
    topics = [
        p["topic"] for _, k, p in records if k == "ws" and isinstance(p, dict) and "topic" in p
    ]
    unknown = [t for t in topics if not t.startswith(known) or t.split(":")[0].endswith("level3")]
    assert len(unknown) == 1
    malformed = [recv for recv, what, _ in summary.events if what == "malformed"]
    assert len(malformed) == 4
    assert max(malformed) - min(malformed) > 30 * 10**9  # spread out


def test_funding_at_0800_about_60_percent_in(synth: tuple[SynthSummary, list[Record]]) -> None:
    records = synth[1]
    funding_ms = 1_767_600_000_000  # 2026-01-05T08:00:00Z
    begins = ws_of(records, "funding.begin")
    ends = ws_of(records, "funding.end")
    assert begins and len(begins) == len(ends)
    assert all(p["data"]["fundingTime"] == funding_ms for _, p in begins + ends)
    assert all(p["data"]["timestamp"] > funding_ms for _, p in ends)
    start, end = records[0][0], records[-1][0]
    assert 0.55 < (funding_ms * 10**6 - start) / (end - start) < 0.65
