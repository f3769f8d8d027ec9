"""Tests for tradebot.kucoin.protocol: the sans-IO parser, the request builders and to_ns.

Fixtures are public KuCoin documentation examples (tests/fixtures/kucoin/SOURCES.txt).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradebot.kucoin import topics as t
from tradebot.kucoin.events import (
    Ack,
    BookDepth,
    BookSnapshot,
    Contract,
    ContractsActive,
    FundingRate,
    FundingSettlement,
    Level2Change,
    MarkIndexPrice,
    Pong,
    RestError,
    ServerTime,
    Side,
    Snapshot24h,
    Ticker,
    Trade,
    Welcome,
    WsError,
)
from tradebot.kucoin.protocol import (
    REST_OK,
    Parser,
    build_ping,
    build_subscribe,
    build_unsubscribe,
    to_ns,
    topics_of,
)

FIXTURES = Path(__file__).parent / "fixtures" / "kucoin"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def rest(path: Any, body: Any, params: dict[str, Any] | None = None, status: Any = 200) -> Any:
    """A recorded REST answer as `Parser.parse_rest` takes it."""
    return {"method": "GET", "path": path, "params": params or {}, "status": status, "body": body}


def with_data(msg: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of `msg` with keys of its `data` replaced."""
    out = copy.deepcopy(msg)
    out["data"].update(changes)
    return out


def without_data(msg: dict[str, Any], *keys: str) -> dict[str, Any]:
    """A copy of `msg` with keys of its `data` removed."""
    out = copy.deepcopy(msg)
    for key in keys:
        del out["data"][key]
    return out


FUNDING_RATE_MSG = {
    "topic": "/contract/instrument:XBTUSDTM",
    "type": "message",
    "subject": "funding.rate",
    "data": {"granularity": 60000, "fundingRate": -0.0002, "timestamp": 1558000000000},
}


def funding_end_msg() -> dict[str, Any]:
    msg: dict[str, Any] = load("ws_announcement.json")
    msg["subject"] = "funding.end"
    return msg


# name -> (message, expected event, channel name counted in parser.topics)
GOOD_WS: dict[str, tuple[Any, Any, str]] = {
    "tickerV2": (
        load("ws_tickerV2.json"),
        Ticker(
            "XBTUSDTM",
            1709284589209,
            88987.4,
            713.0,
            88987.5,
            1037.0,
            0.0,
            0.0,
            1731665526461000000,  # ns kept
        ),
        "tickerV2",
    ),
    "tickerV1": (
        load("ws_tickerV1.json"),
        Ticker(
            "XBTUSDTM",
            1793133570931,
            90147.7,
            2186.0,
            90147.8,
            275.0,
            90147.7,
            1.0,
            1731679215637000000,
        ),
        "ticker",
    ),
    "level2": (
        load("ws_orderbookIncrement.json"),
        Level2Change("XBTUSDTM", 1709400450243, Side.SELL, 90631.2, 2.0, 1731897467182000000),
        "level2",
    ),
    "level2Depth5": (
        load("ws_orderbookLevel5.json"),
        BookDepth(
            "XBTUSDTM",
            5,
            1709294294670,
            [
                (89720.9, 513.0),
                (89720.8, 12.0),
                (89718.6, 113.0),
                (89718.4, 19.0),
                (89718.3, 7.0),
            ],
            [
                (89721.0, 906.0),
                (89721.1, 203.0),
                (89721.4, 113.0),
                (89723.2, 113.0),
                (89725.4, 113.0),
            ],
            1731680019100000000,  # ms * 1e6
        ),
        "level2Depth5",
    ),
    "level2Depth50": (
        load("ws_orderbookLevel50.json"),
        BookDepth(
            "XBTUSDTM",
            50,
            1709294490099,
            [(89778.6, 1534.0), (89778.2, 54.0)],
            [(89778.7, 854.0), (89779.2, 4.0)],
            1731680249700000000,
        ),
        "level2Depth50",
    ),
    "execution": (
        load("ws_execution.json"),
        Trade(
            "XBTUSDTM",
            1794100537695,
            Side.BUY,
            90503.9,
            2.0,
            "1794100537695",
            1731898619520000000,
        ),
        "execution",
    ),
    "mark.index.price": (
        load("ws_instrument.json"),
        MarkIndexPrice("XBTUSDTM", 90445.02, 90445.02, 1731899129000000000),
        "instrument",
    ),
    "funding.rate": (
        FUNDING_RATE_MSG,
        FundingRate("XBTUSDTM", -0.0002, 1558000000000000000),
        "instrument",
    ),
    "funding.begin": (
        load("ws_announcement.json"),  # no "type": defaults to "message"
        FundingSettlement("XBTUSDTM", "begin", 1551770400000000000, -0.002966, 1551770400000000000),
        "announcement",
    ),
    "funding.end": (
        funding_end_msg(),
        FundingSettlement("XBTUSDTM", "end", 1551770400000000000, -0.002966, 1551770400000000000),
        "announcement",
    ),
    "snapshot.24h": (
        load("ws_symbolSnapshot.json"),
        Snapshot24h(
            "XBTUSDTM",
            90326.7,
            91512.8,
            88747.8,
            5834.46,
            526928331.0482178,
            1731900415023929239,  # ns kept exactly
        ),
        "snapshot",
    ),
}


# --- 1. every market-data kind, good -------------------------------------------------------


@pytest.mark.parametrize("name", list(GOOD_WS))
def test_good_ws_message(name: str) -> None:
    msg, expected, channel = GOOD_WS[name]
    parser = Parser()
    event = parser.parse_ws(copy.deepcopy(msg))
    assert event == expected
    assert type(event) is type(expected)
    assert type(event.ts_exchange_ns) is int
    assert parser.topics == Counter({channel: 1})
    assert parser.rejects == Counter()
    assert parser.control == Counter()


@pytest.mark.parametrize("name", list(GOOD_WS))
def test_channel_names_match_topics_module(name: str) -> None:
    msg, _, channel = GOOD_WS[name]
    assert t.CHANNEL_NAMES[msg["topic"].partition(":")[0]] == channel


def test_topics_count_by_channel_over_a_stream() -> None:
    parser = Parser()
    for _ in range(3):
        for msg, expected, _ in GOOD_WS.values():
            assert parser.parse_ws(copy.deepcopy(msg)) == expected
    assert parser.topics == Counter(
        {
            "tickerV2": 3,
            "ticker": 3,
            "level2": 3,
            "level2Depth5": 3,
            "level2Depth50": 3,
            "execution": 3,
            "instrument": 6,
            "announcement": 6,
            "snapshot": 3,
        }
    )
    assert parser.rejects == Counter()


def test_parse_does_not_mutate_the_message() -> None:
    for msg, _, _ in GOOD_WS.values():
        before = copy.deepcopy(msg)
        Parser().parse_ws(msg)
        assert msg == before


def test_data_symbol_wins_and_topic_symbol_is_the_fallback() -> None:
    msg = without_data(load("ws_tickerV2.json"), "symbol")
    msg["topic"] = "/contractMarket/tickerV2:ETHUSDTM"
    event = Parser().parse_ws(msg)
    assert isinstance(event, Ticker)
    assert event.symbol == "ETHUSDTM"
    event = Parser().parse_ws(without_data(load("ws_execution.json"), "symbol"))
    assert isinstance(event, Trade)
    assert event.symbol == "XBTUSDTM"


def test_depth_falls_back_to_timestamp_without_ts() -> None:
    msg = without_data(load("ws_orderbookLevel5.json"), "ts")
    msg["data"]["timestamp"] = 1731680019999
    event = Parser().parse_ws(msg)
    assert isinstance(event, BookDepth)
    assert event.ts_exchange_ns == 1731680019999000000
    event = Parser().parse_ws(with_data(load("ws_orderbookLevel5.json"), ts=None))
    assert isinstance(event, BookDepth)
    assert event.ts_exchange_ns == 1731680019100000000


def test_execution_optional_fields() -> None:
    # matchSize when size is absent, "time" when ts is absent, "" for a missing tradeId
    msg = without_data(load("ws_execution.json"), "size", "ts", "tradeId")
    msg["data"].update(matchSize=7, time=1731898619520)
    event = Parser().parse_ws(msg)
    assert event == Trade(
        "XBTUSDTM", 1794100537695, Side.BUY, 90503.9, 7.0, "", 1731898619520000000
    )


# --- control frames and errors --------------------------------------------------------------

CONTROL = load("ws_control_messages.json")
ERRORS = load("ws_error_examples.json")


@pytest.mark.parametrize(
    ("msg", "expected", "kind"),
    [
        (CONTROL["welcome"], Welcome("hQvf8jkno"), "welcome"),
        (CONTROL["pong"], Pong("1545910590801"), "pong"),
        (CONTROL["ack"], Ack("1545910660739"), "ack"),
        (CONTROL["unsubscribe_ack"], Ack("1545910840805"), "ack"),
        (
            ERRORS["token_expired_401"],
            WsError("64d8732c856851144bded10d", 401, "token is expired"),
            "error",
        ),
        (
            ERRORS["subscription_limit_509"],
            WsError(
                "019ae22f-4718-7da4-846d-999b085cc24a",
                509,
                "exceed max subscription count limitation of 400 per session",
            ),
            "error",
        ),
        ({"type": "ack", "id": 12}, Ack("12"), "ack"),
        ({"type": "pong"}, Pong(""), "pong"),
        ({"type": "error", "id": "x", "code": "401", "data": "t"}, WsError("x", 401, "t"), "error"),
        ({"type": "error", "id": "x", "code": "nope"}, WsError("x", 0, ""), "error"),
        ({"type": "error", "id": "x", "code": float("nan")}, WsError("x", 0, ""), "error"),
        ({"type": "error", "id": "x", "code": float("inf")}, WsError("x", 0, ""), "error"),
        ({"type": "error", "id": "x", "code": [1]}, WsError("x", 0, ""), "error"),
    ],
)
def test_control_frames(msg: dict[str, Any], expected: Any, kind: str) -> None:
    parser = Parser()
    assert parser.parse_ws(copy.deepcopy(msg)) == expected
    assert parser.control == Counter({kind: 1})
    assert parser.topics == Counter()
    assert parser.rejects == Counter()


@pytest.mark.parametrize("kind", ["ping", "notice", "command"])
def test_counted_control_frames_without_event(kind: str) -> None:
    parser = Parser()
    msg = CONTROL["ping"] if kind == "ping" else {"id": "1", "type": kind}
    assert parser.parse_ws(copy.deepcopy(msg)) is None
    assert parser.control == Counter({kind: 1})
    assert parser.rejects == Counter()


@pytest.mark.parametrize("name", ["subscribe", "unsubscribe"])
def test_our_own_requests_are_unknown_types_to_the_parser(name: str) -> None:
    parser = Parser()
    assert parser.parse_ws(copy.deepcopy(CONTROL[name])) is None
    assert parser.rejects == Counter({"ws_unknown_type": 1})


# --- third-party captures and legacy doc examples ---------------------------------------------

THIRDPARTY = load("ws_thirdparty_captures.json")
LEGACY = load("ws_legacy_doc_examples.json")

# key -> (expected event, or None and the reject reason)
THIRDPARTY_EXPECTED: dict[str, tuple[Any, str | None]] = {
    "execution_ADAUSDTM": (
        Trade(
            "ADAUSDTM",
            41320766,
            Side.SELL,
            0.35904,
            2.0,
            "636dd9da0000d400d477eca7",
            1668143578987357700,
        ),
        None,
    ),
    "level2_ADAUSDTM": (
        Level2Change("ADAUSDTM", 1668059586457, Side.SELL, 0.34172, 456.0, 1668573023223000000),
        None,
    ),
    "candle_LTCUSDTM_1min": (None, "unknown_topic"),
    "wallet_availableBalance": (None, "unknown_topic"),
    "execution_ETHUSDCM": (
        Trade(
            "ETHUSDCM",
            31443494,
            Side.BUY,
            23083.0,
            35.0,
            "63f940400000650065f4996f",
            1677279296134648800,
        ),
        None,
    ),
    "level2Depth5_ETHUSDCM": (
        BookDepth(
            "ETHUSDCM",
            5,
            1672332328701,
            [
                (23148.0, 22801.0),
                (23147.0, 4766.0),
                (23146.0, 1388.0),
                (23145.0, 2593.0),
                (23144.0, 6286.0),
            ],
            [
                (23149.0, 13703.0),
                (23150.0, 1460.0),
                (23151.0, 941.0),
                (23152.0, 4591.0),
                (23153.0, 4107.0),
            ],
            1677280435684000000,
        ),
        None,
    ),
}

LEGACY_EXPECTED: dict[str, tuple[Any, str | None]] = {
    "level2": (Level2Change("XBTUSDM", 18, Side.SELL, 5000.0, 83.0, 1551770400000000000), None),
    # no "ts": falls back to "time" (ns); "size" wins over "matchSize"
    "execution_legacy": (
        Trade(
            "XBTUSDM",
            36,
            Side.BUY,
            3200.0,
            1.0,
            "5c9dd00970744d6f5a3d32fc",
            1553846281766256031,
        ),
        None,
    ),
    # the legacy doc's depth-5 example carries no "sequence": rejected
    "level2Depth5": (None, "level2Depth5_missing_field"),
    "mark_index_price": (
        MarkIndexPrice("XBTUSDM", 4010.52, 4000.23, 1551770400000000000),
        None,
    ),
    "funding_rate": (FundingRate("XBTUSDM", -0.002966, 1551770400000000000), None),
    "funding_begin": (
        FundingSettlement("XBTUSDM", "begin", 1551770400000000000, -0.002966, 1551770400000000000),
        None,
    ),
    "funding_end": (
        FundingSettlement("XBTUSDM", "end", 1551770400000000000, -0.002966, 1551770410000000000),
        None,
    ),
    # the legacy doc's 24 h snapshot has no highPrice / lowPrice: rejected
    "snapshot_24h": (None, "snapshot_missing_field"),
    "position_settlement": (None, "unknown_topic"),
    "position_adjust_risk_limit": (None, "unknown_topic"),
    "order_change_all": (None, "unknown_topic"),
}


def test_capture_tables_cover_every_example() -> None:
    assert set(THIRDPARTY_EXPECTED) == set(THIRDPARTY)
    assert set(LEGACY_EXPECTED) | {"rest_error"} == set(LEGACY)


@pytest.mark.parametrize(
    ("source", "key"),
    [("thirdparty", k) for k in THIRDPARTY_EXPECTED] + [("legacy", k) for k in LEGACY_EXPECTED],
)
def test_captured_and_legacy_examples(source: str, key: str) -> None:
    msgs, table = (
        (THIRDPARTY, THIRDPARTY_EXPECTED) if source == "thirdparty" else (LEGACY, LEGACY_EXPECTED)
    )
    expected, reason = table[key]
    msg = msgs[key]
    parser = Parser()
    event = parser.parse_ws(copy.deepcopy(msg))
    assert event == expected
    if expected is None:
        assert parser.rejects == Counter({reason: 1})
        assert parser.topics == Counter()
    else:
        assert parser.rejects == Counter()
        assert parser.topics == Counter({t.CHANNEL_NAMES[msg["topic"].partition(":")[0]]: 1})


def test_legacy_rest_error_body() -> None:
    parser = Parser()
    event = parser.parse_rest(rest("/api/v1/ticker", LEGACY["rest_error"], status=400))
    assert event == RestError("/api/v1/ticker", 400, "400100", "Invalid Parameter.")
    assert parser.rest_errors == Counter({"rest_ticker": 1})
    assert parser.rejects == Counter()


# --- REST ---------------------------------------------------------------------------------

XBTUSDTM_CONTRACT = Contract(
    symbol="XBTUSDTM",
    status="Open",
    multiplier=0.001,
    multiplier_text="0.001",
    lot_size=1,
    tick_size=0.1,
    tick_size_text="0.1",
    max_order_qty=1000000,
    maker_fee_rate=0.0002,
    taker_fee_rate=0.0006,
    is_inverse=False,
    quote_currency="USDT",
    settle_currency="USDT",
    first_open_ms=1585555200000,
    funding_rate=5.2e-05,
    next_funding_in_ms=17752926,
    funding_granularity_ms=28800000,
    mark_price=86378.69,
    index_price=86382.64,
    last_price=86364.0,
    volume_24h=12069.225,
    turnover_24h=1034643198.3265533,
)

GOOD_REST: dict[str, tuple[Any, Any, str]] = {
    "contracts": (
        rest("/api/v1/contracts/active", load("rest_contracts_active.json")),
        ContractsActive([XBTUSDTM_CONTRACT]),
        "rest_contracts",
    ),
    "snapshot": (
        rest("/api/v1/level2/snapshot", load("rest_level2_snapshot.json"), {"symbol": "XBTUSDM"}),
        BookSnapshot(
            "XBTUSDM",
            1697895963339,
            [(66968.0, 2.0), (66964.8, 25596.0)],
            [(66968.1, 13501.0), (66968.7, 2032.0)],
            1729168101216000000,
        ),
        "rest_snapshot",
    ),
    "ticker": (
        rest("/api/v1/ticker", load("rest_ticker.json"), {"symbol": "XBTUSDM"}),
        Ticker(
            "XBTUSDM",
            1697895100310,
            67169.6,
            32345.0,
            67169.7,
            7251.0,
            67158.4,
            2936.0,
            1729163001780000000,
        ),
        "rest_ticker",
    ),
    "timestamp": (
        rest("/api/v1/timestamp", load("rest_timestamp.json")),
        ServerTime(1729260030774),
        "rest_timestamp",
    ),
}


@pytest.mark.parametrize("name", list(GOOD_REST))
def test_good_rest_answer(name: str) -> None:
    answer, expected, channel = GOOD_REST[name]
    parser = Parser()
    event = parser.parse_rest(copy.deepcopy(answer))
    assert event == expected
    assert parser.rest == Counter({channel: 1})
    assert parser.topics == Counter()
    assert parser.rejects == Counter()
    assert parser.rest_errors == Counter()


def test_rest_ok_constant() -> None:
    assert load("rest_ticker.json")["code"] == REST_OK == "200000"


def test_rest_snapshot_symbol_from_params_and_missing_ts() -> None:
    body = load("rest_level2_snapshot.json")
    del body["data"]["symbol"], body["data"]["ts"]
    event = Parser().parse_rest(rest("/api/v1/level2/snapshot", body, {"symbol": "ETHUSDTM"}))
    assert isinstance(event, BookSnapshot)
    assert event.symbol == "ETHUSDTM"
    assert event.ts_exchange_ns == 0


def test_rest_ticker_symbol_from_params_when_data_has_none() -> None:
    body = load("rest_ticker.json")
    del body["data"]["symbol"]
    event = Parser().parse_rest(rest("/api/v1/ticker", body, {"symbol": "ETHUSDTM"}))
    assert isinstance(event, Ticker)
    assert event.symbol == "ETHUSDTM"


def _contract_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = load("rest_contracts_active.json")
    body["data"][0].update(changes)
    return body


def test_inverse_contract_multiplier_sign_dropped() -> None:
    body = _contract_body(symbol="XBTUSDM", multiplier=-1, isInverse=True, tickSize=1)
    event = Parser().parse_rest(rest("/api/v1/contracts/active", body))
    assert isinstance(event, ContractsActive)
    (c,) = event.contracts
    assert (c.symbol, c.multiplier, c.multiplier_text, c.is_inverse) == ("XBTUSDM", 1.0, "1", True)
    assert (c.tick_size, c.tick_size_text) == (1.0, "1")


@pytest.mark.parametrize(
    ("tick", "text"),
    [(0.1, "0.1"), ("0.1", "0.1"), (" 0.01 ", "0.01"), (5e-05, "5e-05"), (1, "1"), ("0.5", "0.5")],
)
def test_contract_keeps_tick_text(tick: Any, text: str) -> None:
    event = Parser().parse_rest(rest("/api/v1/contracts/active", _contract_body(tickSize=tick)))
    assert isinstance(event, ContractsActive)
    assert event.contracts[0].tick_size_text == text
    assert event.contracts[0].tick_size == float(text)


def test_contract_optional_fields_absent() -> None:
    body = {
        "code": "200000",
        "data": [{"symbol": "A", "status": "Open", "tickSize": "1", "multiplier": "10"}],
    }
    event = Parser().parse_rest(rest("/api/v1/contracts/active", body))
    optional = dict.fromkeys(
        [
            "maker_fee_rate",
            "taker_fee_rate",
            "first_open_ms",
            "funding_rate",
            "next_funding_in_ms",
            "funding_granularity_ms",
            "mark_price",
            "index_price",
            "last_price",
            "volume_24h",
            "turnover_24h",
        ]
    )
    expected = Contract(
        symbol="A",
        status="Open",
        multiplier=10.0,
        multiplier_text="10",
        lot_size=1,
        tick_size=1.0,
        tick_size_text="1",
        max_order_qty=1_000_000,
        is_inverse=False,
        quote_currency="",
        settle_currency="",
        **optional,
    )
    assert event == ContractsActive([expected])


# --- 2. prices as strings or numbers ---------------------------------------------------------

SCALAR_PRICE_FIELDS = [
    ("ws_tickerV2.json", ["bestBidPrice", "bestBidSize", "bestAskPrice", "bestAskSize"]),
    (
        "ws_tickerV1.json",
        ["bestBidPrice", "bestBidSize", "bestAskPrice", "bestAskSize", "price", "size"],
    ),
    ("ws_execution.json", ["price", "size"]),
    ("ws_instrument.json", ["markPrice", "indexPrice"]),
    ("ws_symbolSnapshot.json", ["lastPrice", "highPrice", "lowPrice", "volume", "turnover"]),
    ("ws_announcement.json", ["fundingRate"]),
    ("rest_ticker.json", ["bestBidPrice", "bestBidSize", "bestAskPrice", "bestAskSize", "price"]),
    ("rest_contracts_active.json", ["tickSize", "multiplier", "makerFeeRate", "markPrice"]),
]
LEVEL_FIXTURES = [
    "ws_orderbookLevel5.json",
    "ws_orderbookLevel50.json",
    "rest_level2_snapshot.json",
]
REST_PATHS = {
    "rest_ticker.json": "/api/v1/ticker",
    "rest_level2_snapshot.json": "/api/v1/level2/snapshot",
    "rest_contracts_active.json": "/api/v1/contracts/active",
    "rest_timestamp.json": "/api/v1/timestamp",
}


def _as(value: Any, mode: str) -> Any:
    if mode == "str":
        return value if isinstance(value, str) else str(value)
    return float(value) if isinstance(value, str) else value


def _parse_fixture(name: str, fixture: dict[str, Any]) -> Any:
    parser = Parser()
    if name.startswith("rest_"):
        event = parser.parse_rest(rest(REST_PATHS[name], fixture, {"symbol": "XBTUSDM"}))
    else:
        event = parser.parse_ws(fixture)
    assert parser.rejects == Counter()
    return event


@pytest.mark.parametrize(("name", "fields"), SCALAR_PRICE_FIELDS)
def test_scalar_prices_as_strings_or_numbers(name: str, fields: list[str]) -> None:
    events = {}
    for mode in ("str", "num"):
        fixture = load(name)
        data = fixture["data"][0] if isinstance(fixture["data"], list) else fixture["data"]
        for field in fields:
            data[field] = _as(data[field], mode)
        events[mode] = _parse_fixture(name, fixture)
    assert events["str"] is not None
    assert events["str"] == events["num"] == _parse_fixture(name, load(name))


@pytest.mark.parametrize("name", LEVEL_FIXTURES)
@pytest.mark.parametrize("mode", ["str", "num"])
def test_levels_as_strings_or_numbers(name: str, mode: str) -> None:
    fixture = load(name)
    for side in ("bids", "asks"):
        fixture["data"][side] = [[_as(p, mode), _as(s, mode)] for p, s in fixture["data"][side]]
    event = _parse_fixture(name, fixture)
    assert isinstance(event, BookDepth | BookSnapshot)
    assert event == _parse_fixture(name, load(name))
    assert all(type(x) is float for level in event.bids + event.asks for x in level)


@pytest.mark.parametrize(
    ("change", "price", "size"),
    [
        ("90631.2,sell,2", 90631.2, 2.0),
        ("90631.20,sell,2.0", 90631.2, 2.0),
        ("9.06312e4,sell,2", 90631.2, 2.0),
        ("90631.2,sell,0", 90631.2, 0.0),
    ],
)
def test_level2_change_number_spellings(change: str, price: float, size: float) -> None:
    event = Parser().parse_ws(with_data(load("ws_orderbookIncrement.json"), change=change))
    assert isinstance(event, Level2Change)
    assert (event.side, event.price, event.size) == (Side.SELL, price, size)


@pytest.mark.parametrize("name", list(GOOD_WS))
def test_sequence_and_timestamps_as_strings(name: str) -> None:
    msg, expected, _ = GOOD_WS[name]
    msg = copy.deepcopy(msg)
    for key in ("sequence", "ts", "timestamp", "fundingTime"):
        if key in msg["data"]:
            msg["data"][key] = str(msg["data"][key])
    assert Parser().parse_ws(msg) == expected


# --- 3. bad payloads ---------------------------------------------------------------------------

# name -> (message, numeric fields read from data, counter prefix)
WS_NUMERIC: dict[str, tuple[Any, list[str], str]] = {
    "tickerV2": (
        load("ws_tickerV2.json"),
        ["sequence", "bestBidPrice", "bestBidSize", "bestAskPrice", "bestAskSize", "ts"],
        "tickerV2",
    ),
    "tickerV1": (
        load("ws_tickerV1.json"),
        [
            "sequence",
            "bestBidPrice",
            "bestBidSize",
            "bestAskPrice",
            "bestAskSize",
            "price",
            "size",
            "ts",
        ],
        "ticker",
    ),
    "level2": (load("ws_orderbookIncrement.json"), ["sequence", "timestamp"], "level2"),
    "level2Depth5": (load("ws_orderbookLevel5.json"), ["sequence", "ts"], "level2Depth5"),
    "level2Depth50": (load("ws_orderbookLevel50.json"), ["sequence", "ts"], "level2Depth50"),
    "execution": (load("ws_execution.json"), ["sequence", "price", "size", "ts"], "execution"),
    "mark.index.price": (
        load("ws_instrument.json"),
        ["markPrice", "indexPrice", "timestamp"],
        "instrument",
    ),
    "funding.rate": (FUNDING_RATE_MSG, ["fundingRate", "timestamp"], "instrument"),
    "funding.begin": (
        load("ws_announcement.json"),
        ["fundingTime", "fundingRate", "timestamp"],
        "announcement",
    ),
    "snapshot.24h": (
        load("ws_symbolSnapshot.json"),
        ["lastPrice", "highPrice", "lowPrice", "volume", "turnover", "ts"],
        "snapshot",
    ),
}

# required keys whose absence is `<name>_missing_field`
WS_REQUIRED: dict[str, list[str]] = {
    "tickerV2": ["sequence", "bestBidPrice", "bestBidSize", "bestAskPrice", "bestAskSize", "ts"],
    "tickerV1": [
        "sequence",
        "bestBidPrice",
        "bestBidSize",
        "bestAskPrice",
        "bestAskSize",
        "price",
        "size",
        "ts",
    ],
    "level2": ["sequence", "change", "timestamp"],
    "level2Depth5": ["sequence", "bids", "asks"],
    "level2Depth50": ["sequence", "bids", "asks"],
    "execution": ["sequence", "side", "price", "size", "ts"],
    "mark.index.price": ["markPrice", "indexPrice", "timestamp"],
    "funding.rate": ["fundingRate", "timestamp"],
    "funding.begin": ["fundingTime", "fundingRate", "timestamp"],
    "snapshot.24h": ["lastPrice", "highPrice", "lowPrice", "volume", "turnover", "ts"],
}

BAD_NUMBERS: list[Any] = [
    "abc",
    "",
    " ",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "1,2",
    "0x10",
    "1e400x",
    float("nan"),
    float("inf"),
    float("-inf"),
    [1],
    [],
    {"x": 1},
    {},
]
BAD_PRICES: list[Any] = [*BAD_NUMBERS, True, False, None, "1e400", 10**400]


def assert_rejected(parser: Parser, event: Any, reason: str) -> None:
    assert event is None
    assert parser.rejects == Counter({reason: 1})
    assert parser.topics == Counter()
    assert parser.rest == Counter()
    assert parser.control == Counter()


INT_FIELDS = ("sequence", "ts", "timestamp", "fundingTime")


def assert_each_rejected(msg: dict[str, Any], field: str, values: list[Any], reason: str) -> None:
    for bad in values:
        parser = Parser()
        event = parser.parse_ws(with_data(msg, **{field: bad}))
        assert (event, parser.rejects) == (None, Counter({reason: 1})), bad
        assert parser.topics == Counter()


@pytest.mark.parametrize(
    ("name", "field"),
    [(n, f) for n, (_, fields, _) in WS_NUMERIC.items() for f in fields if f not in INT_FIELDS],
)
def test_bad_price_values(name: str, field: str) -> None:
    msg, _, channel = WS_NUMERIC[name]
    values = BAD_PRICES
    if (name, field) == ("execution", "size"):
        values = [v for v in values if v is not None]  # None falls back to matchSize
    assert_each_rejected(msg, field, values, channel + "_bad_value")


@pytest.mark.parametrize(
    ("name", "field"),
    [(n, f) for n, (_, fields, _) in WS_NUMERIC.items() for f in fields if f in INT_FIELDS],
)
def test_bad_sequence_and_timestamp_values(name: str, field: str) -> None:
    msg, _, channel = WS_NUMERIC[name]
    assert_each_rejected(msg, field, BAD_NUMBERS, channel + "_bad_value")


@pytest.mark.parametrize(
    ("name", "field"), [(n, f) for n, fields in WS_REQUIRED.items() for f in fields]
)
def test_missing_fields(name: str, field: str) -> None:
    msg, _, channel = WS_NUMERIC[name]
    msg = without_data(msg, field)
    if name.startswith("level2Depth") and field == "ts":
        del msg["data"]["timestamp"]
    parser = Parser()
    assert_rejected(parser, parser.parse_ws(msg), channel + "_missing_field")


def test_depth_missing_both_timestamps() -> None:
    parser = Parser()
    msg = without_data(load("ws_orderbookLevel5.json"), "ts", "timestamp")
    assert_rejected(parser, parser.parse_ws(msg), "level2Depth5_missing_field")


def test_execution_missing_size_and_match_size_or_ts_and_time() -> None:
    # size null and no matchSize
    parser = Parser()
    msg = with_data(load("ws_execution.json"), size=None)
    assert_rejected(parser, parser.parse_ws(msg), "execution_missing_field")
    # no ts and no time
    parser = Parser()
    msg = without_data(load("ws_execution.json"), "ts")
    assert_rejected(parser, parser.parse_ws(msg), "execution_missing_field")
    # a null ts is not a fallback to time (unlike size): it is a bad value
    parser = Parser()
    msg = with_data(load("ws_execution.json"), ts=None, time=1731898619520)
    assert_rejected(parser, parser.parse_ws(msg), "execution_bad_value")


@pytest.mark.parametrize(
    "change",
    [
        "abc,buy,",
        "1,up,2",
        "1,buy",
        "1,buy,2,3",
        "",
        ",,",
        "1;buy;2",
        "1,BUY,2",
        " 1 , buy ,2",
        "nan,buy,1",
        "1,sell,inf",
        "inf,sell,1",
        "1,sell,NaN",
        "1,sell,",
        ",sell,1",
        "1e400,buy,1",
        1,
        None,
        True,
        ["1", "buy", "2"],
        {"price": "1"},
    ],
)
def test_garbage_level2_change(change: Any) -> None:
    parser = Parser()
    event = parser.parse_ws(with_data(load("ws_orderbookIncrement.json"), change=change))
    assert_rejected(parser, event, "level2_bad_value")


@pytest.mark.parametrize("side", ["up", "BUY", "Sell", "", None, 1, True, ["buy"], {"buy": 1}])
def test_bad_execution_side(side: Any) -> None:
    parser = Parser()
    event = parser.parse_ws(with_data(load("ws_execution.json"), side=side))
    assert_rejected(parser, event, "execution_bad_value")


@pytest.mark.parametrize("depth", ["ws_orderbookLevel5.json", "ws_orderbookLevel50.json"])
@pytest.mark.parametrize("side", ["bids", "asks"])
def test_bad_depth_levels(depth: str, side: str) -> None:
    msg = load(depth)
    name = msg["topic"].partition(":")[0].rpartition("/")[2]
    levels: list[Any] = [
        "12",  # a string is not a list of levels
        {"12": 1},  # nor is a dict
        None,
        5,
        ["12", "34"],  # rows that are strings
        [{"0": 1, "1": 2}],
        [[1]],
        [1],
        [None],
        [["nan", 1]],
        [[1, "inf"]],
        [[True, 1]],
        [["1", False]],
        [["abc", "1"]],
        [["1", "2"], ["3"]],
    ]
    assert_each_rejected(msg, side, levels, name + "_bad_value")


@pytest.mark.parametrize("name", list(WS_NUMERIC))
def test_data_not_a_dict(name: str) -> None:
    msg, _, channel = WS_NUMERIC[name]
    for data in [None, [], [1, 2], "data", 1, 1.5, True, "missing"]:
        bad = copy.deepcopy(msg)
        if data == "missing":
            del bad["data"]
        else:
            bad["data"] = data
        parser = Parser()
        assert_rejected(parser, parser.parse_ws(bad), channel + "_no_data")


@pytest.mark.parametrize("subject", ["funding.begin", "mark.index", None, "", 1, ["x"], "missing"])
def test_unknown_instrument_subject(subject: Any) -> None:
    msg = copy.deepcopy(load("ws_instrument.json"))
    if subject == "missing":
        del msg["subject"]
    else:
        msg["subject"] = subject
    parser = Parser()
    assert_rejected(parser, parser.parse_ws(msg), "instrument_bad_value")


@pytest.mark.parametrize("subject", ["funding.rate", "funding", "funding.middle", None, 1, ["x"]])
def test_unknown_announcement_subject(subject: Any) -> None:
    msg = copy.deepcopy(load("ws_announcement.json"))
    msg["subject"] = subject
    parser = Parser()
    assert_rejected(parser, parser.parse_ws(msg), "announcement_bad_value")


@pytest.mark.parametrize("symbol", [None, "", 5, ["XBTUSDTM"], "missing"])
def test_announcement_without_a_symbol(symbol: Any) -> None:
    msg = load("ws_announcement.json")
    if symbol == "missing":
        del msg["data"]["symbol"]
    else:
        msg["data"]["symbol"] = symbol
    parser = Parser()
    assert_rejected(parser, parser.parse_ws(msg), "announcement_bad_value")


def test_announcement_symbol_from_topic() -> None:
    msg = without_data(load("ws_announcement.json"), "symbol")
    msg["topic"] = "/contract/announcement:ETHUSDTM"
    event = Parser().parse_ws(msg)
    assert isinstance(event, FundingSettlement)
    assert event.symbol == "ETHUSDTM"


@pytest.mark.parametrize(
    "topic",
    [
        "/contractMarket/level3:XBTUSDTM",
        "/contractMarket/level3v2:XBTUSDTM",
        "/market/ticker:BTC-USDT",
        "/contractMarket/limitCandle:XBTUSDTM_1min",
        "/contractMarket/tradeOrders",
        "/contractMarket/tickerV2x:XBTUSDTM",
        "/contractmarket/tickerV2:XBTUSDTM",
        "contractMarket/tickerV2:XBTUSDTM",
        "",
        ":XBTUSDTM",
        "nonsense",
    ],
)
def test_unknown_topic(topic: str) -> None:
    msg = copy.deepcopy(load("ws_tickerV2.json"))
    msg["topic"] = topic
    parser = Parser()
    assert_rejected(parser, parser.parse_ws(msg), "unknown_topic")


@pytest.mark.parametrize("topic", [None, 1, ["/contractMarket/tickerV2:XBTUSDTM"], {}, "missing"])
def test_message_without_topic(topic: Any) -> None:
    msg = copy.deepcopy(load("ws_tickerV2.json"))
    if topic == "missing":
        del msg["topic"]
    else:
        msg["topic"] = topic
    parser = Parser()
    assert_rejected(parser, parser.parse_ws(msg), "message_without_topic")


@pytest.mark.parametrize(
    "kind", ["foo", "MESSAGE", "Message", "", None, 1, True, ["message"], {"a": 1}, "subscribe"]
)
def test_unknown_type(kind: Any) -> None:
    msg = copy.deepcopy(load("ws_tickerV2.json"))
    msg["type"] = kind
    parser = Parser()
    assert_rejected(parser, parser.parse_ws(msg), "ws_unknown_type")


@pytest.mark.parametrize("text", ["not json", "", "{", '{"type": "welcome"', "null"])
def test_text_frame_that_was_not_json(text: str) -> None:
    parser = Parser()
    assert_rejected(parser, parser.parse_ws(text), "ws_not_json")


@pytest.mark.parametrize(
    "payload", [None, 0, 1.5, True, [], [load("ws_tickerV2.json")], b"{}", bytearray(b"x"), ()]
)
def test_payload_not_an_object(payload: Any) -> None:
    parser = Parser()
    assert_rejected(parser, parser.parse_ws(payload), "ws_not_object")


def test_one_bad_frame_does_not_stop_the_stream() -> None:
    parser = Parser()
    good = load("ws_orderbookIncrement.json")
    frames = [good, "garbage", with_data(good, change="1,up,2"), None, good]
    events = [parser.parse_ws(copy.deepcopy(f)) for f in frames]
    assert [e is not None for e in events] == [True, False, False, False, True]
    assert parser.topics == Counter({"level2": 2})
    assert parser.rejects == Counter({"ws_not_json": 1, "level2_bad_value": 1, "ws_not_object": 1})


# --- REST errors and bad REST answers --------------------------------------------------------


@pytest.mark.parametrize("name", list(GOOD_REST))
def test_rest_http_500(name: str) -> None:
    answer, _, channel = GOOD_REST[name]
    answer = copy.deepcopy(answer)
    answer["status"] = 500
    answer["body"] = {"code": "500000", "msg": "Internal Server Error"}
    parser = Parser()
    event = parser.parse_rest(answer)
    assert event == RestError(answer["path"], 500, "500000", "Internal Server Error")
    assert parser.rest_errors == Counter({channel: 1})
    assert parser.rejects == Counter()
    assert parser.topics == Counter()


@pytest.mark.parametrize("status", [200, 429])
@pytest.mark.parametrize("name", list(GOOD_REST))
def test_rest_rate_limited(name: str, status: int) -> None:
    answer, _, channel = GOOD_REST[name]
    answer = copy.deepcopy(answer)
    answer["status"] = status
    answer["body"] = {"code": "429000", "msg": "Too Many Requests"}
    parser = Parser()
    event = parser.parse_rest(answer)
    assert event == RestError(answer["path"], status, "429000", "Too Many Requests")
    assert parser.rest_errors == Counter({channel: 1})
    assert parser.rejects == Counter()


def test_rest_500_with_an_ok_body_is_still_an_error() -> None:
    parser = Parser()
    event = parser.parse_rest(rest("/api/v1/timestamp", load("rest_timestamp.json"), status=500))
    assert event == RestError("/api/v1/timestamp", 500, "200000", "")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, None, RestError("/api/v1/timestamp", 200, "None", "")),
        (200, [1], RestError("/api/v1/timestamp", 200, "None", "")),
        (200, "oops", RestError("/api/v1/timestamp", 200, "None", "")),
        (200, {"data": 1}, RestError("/api/v1/timestamp", 200, "None", "")),
        (200, {"code": 200000, "data": 1}, RestError("/api/v1/timestamp", 200, "200000", "")),
        ("200", load("rest_timestamp.json"), RestError("/api/v1/timestamp", 0, "200000", "")),
        (None, load("rest_timestamp.json"), RestError("/api/v1/timestamp", 0, "200000", "")),
    ],
)
def test_rest_bad_status_or_body_is_a_rest_error(status: Any, body: Any, expected: Any) -> None:
    parser = Parser()
    assert parser.parse_rest(rest("/api/v1/timestamp", body, status=status)) == expected
    assert parser.rest_errors == Counter({"rest_timestamp": 1})
    assert parser.rejects == Counter()


@pytest.mark.parametrize(
    "path",
    ["/api/v1/allTickers", "/api/v1/ticker/", "api/v1/ticker", "", None, 5, ["/api/v1/ticker"]],
)
def test_rest_unknown_path(path: Any) -> None:
    parser = Parser()
    assert_rejected(
        parser, parser.parse_rest(rest(path, load("rest_ticker.json"))), "rest_unknown_path"
    )


def test_rest_without_path() -> None:
    parser = Parser()
    answer = rest("/api/v1/ticker", load("rest_ticker.json"))
    del answer["path"]
    assert_rejected(parser, parser.parse_rest(answer), "rest_unknown_path")


@pytest.mark.parametrize("answer", [None, 1, "x", [], [{"path": "/api/v1/timestamp"}], True])
def test_rest_answer_not_an_object(answer: Any) -> None:
    parser = Parser()
    assert_rejected(parser, parser.parse_rest(answer), "rest_not_object")


def _ok(data: Any) -> dict[str, Any]:
    return {"code": "200000", "data": data}


def _ticker_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = load("rest_ticker.json")["data"]
    data.update(changes)
    return data


def _snapshot_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = load("rest_level2_snapshot.json")["data"]
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/api/v1/timestamp", {"code": "200000"}, "rest_timestamp_missing_field"),
        ("/api/v1/timestamp", _ok("1729260030774"), "rest_timestamp_bad_value"),
        ("/api/v1/timestamp", _ok(1729260030774.0), "rest_timestamp_bad_value"),
        ("/api/v1/timestamp", _ok(True), "rest_timestamp_bad_value"),
        ("/api/v1/timestamp", _ok(None), "rest_timestamp_bad_value"),
        ("/api/v1/ticker", {"code": "200000"}, "rest_ticker_missing_field"),
        ("/api/v1/ticker", _ok(None), "rest_ticker_bad_value"),
        ("/api/v1/ticker", _ok([]), "rest_ticker_bad_value"),
        ("/api/v1/ticker", _ok("x"), "rest_ticker_bad_value"),
        ("/api/v1/ticker", _ok(_ticker_data(bestBidPrice="nan")), "rest_ticker_bad_value"),
        ("/api/v1/ticker", _ok(_ticker_data(price=True)), "rest_ticker_bad_value"),
        ("/api/v1/ticker", _ok(_ticker_data(size=None)), "rest_ticker_bad_value"),
        ("/api/v1/ticker", _ok(_ticker_data(sequence="x")), "rest_ticker_bad_value"),
        ("/api/v1/ticker", _ok(_ticker_data(ts="inf")), "rest_ticker_bad_value"),
        ("/api/v1/ticker", _ok({"symbol": "XBTUSDM"}), "rest_ticker_missing_field"),
        ("/api/v1/level2/snapshot", {"code": "200000"}, "rest_snapshot_missing_field"),
        ("/api/v1/level2/snapshot", _ok([]), "rest_snapshot_bad_value"),
        ("/api/v1/level2/snapshot", _ok(None), "rest_snapshot_bad_value"),
        ("/api/v1/level2/snapshot", _ok(_snapshot_data(symbol=5)), "rest_snapshot_bad_value"),
        ("/api/v1/level2/snapshot", _ok(_snapshot_data(symbol="")), "rest_snapshot_bad_value"),
        ("/api/v1/level2/snapshot", _ok(_snapshot_data(bids="x")), "rest_snapshot_bad_value"),
        (
            "/api/v1/level2/snapshot",
            _ok(_snapshot_data(bids=[["a", 1]])),
            "rest_snapshot_bad_value",
        ),
        (
            "/api/v1/level2/snapshot",
            _ok(_snapshot_data(asks=[[1, "inf"]])),
            "rest_snapshot_bad_value",
        ),
        ("/api/v1/level2/snapshot", _ok(_snapshot_data(ts="x")), "rest_snapshot_bad_value"),
        ("/api/v1/level2/snapshot", _ok(_snapshot_data(sequence=None)), "rest_snapshot_bad_value"),
        ("/api/v1/level2/snapshot", _ok({"symbol": "XBTUSDM"}), "rest_snapshot_missing_field"),
        ("/api/v1/contracts/active", {"code": "200000"}, "rest_contracts_missing_field"),
        ("/api/v1/contracts/active", _ok({"symbol": "XBTUSDTM"}), "rest_contracts_bad_value"),
        ("/api/v1/contracts/active", _ok(None), "rest_contracts_bad_value"),
        ("/api/v1/contracts/active", _ok("x"), "rest_contracts_bad_value"),
    ],
)
def test_bad_rest_data(path: str, body: Any, reason: str) -> None:
    parser = Parser()
    assert_rejected(parser, parser.parse_rest(rest(path, body)), reason)
    assert parser.rest_errors == Counter()


def test_rest_snapshot_without_any_symbol() -> None:
    body = load("rest_level2_snapshot.json")
    del body["data"]["symbol"]
    parser = Parser()
    event = parser.parse_rest(rest("/api/v1/level2/snapshot", body, {}))
    assert_rejected(parser, event, "rest_snapshot_bad_value")


BAD_CONTRACTS: list[Any] = [
    {"symbol": "X"},  # no status
    {"status": "Open", "tickSize": 1, "multiplier": 1},  # no symbol
    {"symbol": "X", "status": "Open", "multiplier": 1},  # no tickSize
    {"symbol": "X", "status": "Open", "tickSize": 1},  # no multiplier
    {"symbol": "", "status": "Open", "tickSize": 1, "multiplier": 1},
    {"symbol": 5, "status": "Open", "tickSize": 1, "multiplier": 1},
    {"symbol": "X", "status": None, "tickSize": 1, "multiplier": 1},
    {"symbol": "X", "status": "Open", "tickSize": 0, "multiplier": 1},
    {"symbol": "X", "status": "Open", "tickSize": -0.1, "multiplier": 1},
    {"symbol": "X", "status": "Open", "tickSize": "abc", "multiplier": 1},
    {"symbol": "X", "status": "Open", "tickSize": "nan", "multiplier": 1},
    {"symbol": "X", "status": "Open", "tickSize": True, "multiplier": 1},
    {"symbol": "X", "status": "Open", "tickSize": None, "multiplier": 1},
    {"symbol": "X", "status": "Open", "tickSize": 1, "multiplier": 0},
    {"symbol": "X", "status": "Open", "tickSize": 1, "multiplier": "inf"},
    {"symbol": "X", "status": "Open", "tickSize": 1, "multiplier": 1, "lotSize": -1},
    {"symbol": "X", "status": "Open", "tickSize": 1, "multiplier": 1, "lotSize": "x"},
    {"symbol": "X", "status": "Open", "tickSize": 1, "multiplier": 1, "maxOrderQty": "x"},
    {"symbol": "X", "status": "Open", "tickSize": 1, "multiplier": 1, "makerFeeRate": "nan"},
    {"symbol": "X", "status": "Open", "tickSize": 1, "multiplier": 1, "markPrice": [1]},
    {"symbol": "X", "status": "Open", "tickSize": 1, "multiplier": 1, "firstOpenDate": "x"},
    "XBTUSDTM",
    None,
    5,
    [],
    ["symbol", "XBTUSDTM"],
]


def test_contracts_list_keeps_good_ones_among_bad() -> None:
    good = load("rest_contracts_active.json")["data"][0]
    other = dict(good, symbol="ETHUSDTM", tickSize="0.01", multiplier="0.01")
    body = _ok([good, *BAD_CONTRACTS[:10], other, *BAD_CONTRACTS[10:]])
    parser = Parser()
    event = parser.parse_rest(rest("/api/v1/contracts/active", body))
    assert isinstance(event, ContractsActive)
    assert [c.symbol for c in event.contracts] == ["XBTUSDTM", "ETHUSDTM"]
    assert event.contracts[0] == XBTUSDTM_CONTRACT
    assert (event.contracts[1].tick_size_text, event.contracts[1].multiplier_text) == (
        "0.01",
        "0.01",
    )
    assert parser.rejects == Counter({"contract_malformed": len(BAD_CONTRACTS)})
    assert parser.rest == Counter({"rest_contracts": 1})


@pytest.mark.parametrize("bad", BAD_CONTRACTS)
def test_each_bad_contract_is_counted(bad: Any) -> None:
    parser = Parser()
    event = parser.parse_rest(rest("/api/v1/contracts/active", _ok([bad])))
    assert isinstance(event, ContractsActive) and event.contracts == []
    # A readable symbol on a bad entry is named, so the symbol is not taken for delisted.
    symbol = bad.get("symbol") if isinstance(bad, dict) else None
    expected = [symbol] if isinstance(symbol, str) and symbol else []
    assert event.unparsed == expected
    assert parser.rejects == Counter({"contract_malformed": 1})


# --- weaknesses found by review, now fixed: each stays as a regression test ---------------------


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("level2", "sequence"),
        ("level2", "timestamp"),
        ("tickerV2", "ts"),
        ("execution", "sequence"),
    ],
)
def test_bool_sequence_or_timestamp_is_rejected(name: str, field: str) -> None:
    msg, _, channel = WS_NUMERIC[name]
    parser = Parser()
    assert_rejected(
        parser, parser.parse_ws(with_data(msg, **{field: True})), channel + "_bad_value"
    )


def test_level2_topic_without_symbol_is_rejected() -> None:
    msg = copy.deepcopy(load("ws_orderbookIncrement.json"))
    msg["topic"] = "/contractMarket/level2"
    assert Parser().parse_ws(msg) is None


def test_non_string_data_symbol_is_rejected() -> None:
    assert Parser().parse_ws(with_data(load("ws_tickerV2.json"), symbol=["XBTUSDTM"])) is None


def test_contract_with_infinite_tick_size_is_rejected() -> None:
    parser = Parser()
    event = parser.parse_rest(rest("/api/v1/contracts/active", _contract_body(tickSize=10**400)))
    assert isinstance(event, ContractsActive) and event.contracts == []


def test_contract_with_zero_lot_size_is_rejected() -> None:
    parser = Parser()
    event = parser.parse_rest(rest("/api/v1/contracts/active", _contract_body(lotSize=0)))
    assert isinstance(event, ContractsActive) and event.contracts == []


def test_private_subscribe_without_topic_raises() -> None:
    with pytest.raises(ValueError):
        build_subscribe(1, "", private=True)


def test_subscribe_to_a_channel_without_symbols_raises() -> None:
    with pytest.raises(ValueError):
        build_subscribe(1, t.LEVEL2)


# --- 4. Hypothesis: never raises, one count per payload, finite prices -------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)
# mostly scalars, sometimes a small container: cheap to draw, still reaches every branch
json_leafy = json_scalars | json_values

MARKET_EVENTS = (
    Ticker,
    Level2Change,
    BookDepth,
    BookSnapshot,
    Trade,
    MarkIndexPrice,
    FundingRate,
    FundingSettlement,
    Snapshot24h,
    ContractsActive,
    ServerTime,
)
CONTROL_EVENTS = (Welcome, Ack, Pong, WsError)

WS_FIXTURES: list[Any] = [
    *(msg for msg, _, _ in GOOD_WS.values()),
    *THIRDPARTY.values(),
    *(v for k, v in LEGACY.items() if k != "rest_error"),
    *(v for k, v in CONTROL.items()),
    *ERRORS.values(),
]
REST_FIXTURES: list[Any] = [answer for answer, _, _ in GOOD_REST.values()]

FAST = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _finite_floats(event: Any) -> None:
    """Every float of a market-data event is finite and every int field is an int."""
    if isinstance(event, ContractsActive):
        for contract in event.contracts:
            assert isinstance(contract.symbol, str) and contract.symbol
            assert contract.tick_size > 0 and contract.multiplier > 0 and contract.lot_size > 0
        return
    if isinstance(event, msgspec.Struct):
        fields = [(f.name, f.type) for f in msgspec.structs.fields(event)]
    else:
        fields = [(f.name, f.type) for f in dataclasses.fields(event)]
    for name, kind in fields:
        value = getattr(event, name)
        if name in ("bids", "asks"):
            for price, size in value:
                assert type(price) is float and math.isfinite(price)
                assert type(size) is float and math.isfinite(size)
        elif kind in ("float", float):
            assert type(value) is float and math.isfinite(value), name
        elif kind in ("int", int):
            assert type(value) is int, name


COUNTERS = ("rejects", "control", "topics", "rest", "rest_errors")


def counts(parser: Parser) -> dict[str, int]:
    return {name: sum(getattr(parser, name).values()) for name in COUNTERS}


def check_outcome(parser: Parser, before: dict[str, int], event: Any) -> None:
    """One payload: None with exactly one reject or control count, or an event counted once."""
    after = counts(parser)
    d = {name: after[name] - before[name] for name in COUNTERS}
    if event is None:
        assert d["topics"] == d["rest"] == d["rest_errors"] == 0
        assert (d["rejects"], d["control"]) in ((1, 0), (0, 1))
    elif isinstance(event, CONTROL_EVENTS):
        assert d == {**dict.fromkeys(COUNTERS, 0), "control": 1}
    elif isinstance(event, RestError):
        assert d == {**dict.fromkeys(COUNTERS, 0), "rest_errors": 1}
    else:
        assert isinstance(event, MARKET_EVENTS)
        assert d["control"] == d["rest_errors"] == 0
        assert d["topics"] + d["rest"] == 1
        # only a contracts list may count rejects along with its event (one per bad contract)
        assert d["rejects"] == 0 or isinstance(event, ContractsActive)
        if isinstance(event, ContractsActive):
            assert parser.rejects.keys() <= {"contract_malformed"}
        _finite_floats(event)
    if isinstance(event, Level2Change):
        assert all(type(p) is float and math.isfinite(p) for p in (event.price, event.size))
    if isinstance(event, Ticker):
        prices = (event.bid, event.bid_size, event.ask, event.ask_size, event.last_price)
        assert all(type(p) is float and math.isfinite(p) for p in (*prices, event.last_size))


def run_ws(msg: Any) -> Any:
    parser = Parser()
    before = counts(parser)
    event = parser.parse_ws(msg)
    check_outcome(parser, before, event)
    return event


def run_rest(answer: Any) -> Any:
    parser = Parser()
    before = counts(parser)
    event = parser.parse_rest(answer)
    check_outcome(parser, before, event)
    return event


@FAST
@given(value=json_values)
def test_arbitrary_json_never_raises(value: Any) -> None:
    run_ws(value)
    run_rest(value)


ws_shaped = st.fixed_dictionaries(
    {
        "topic": st.sampled_from([f"{c}:XBTUSDTM" for c in t.CHANNEL_NAMES] + [t.ANNOUNCEMENT]),
        "data": st.dictionaries(
            st.sampled_from(
                [
                    "symbol",
                    "sequence",
                    "change",
                    "bids",
                    "asks",
                    "ts",
                    "timestamp",
                    "side",
                    "price",
                    "size",
                    "matchSize",
                    "time",
                    "bestBidPrice",
                    "bestBidSize",
                    "bestAskPrice",
                    "bestAskSize",
                    "markPrice",
                    "indexPrice",
                    "fundingRate",
                    "fundingTime",
                    "lastPrice",
                    "highPrice",
                    "lowPrice",
                    "volume",
                    "turnover",
                    "tradeId",
                ]
            ),
            json_leafy,
            max_size=10,
        ),
    },
    optional={
        "type": st.sampled_from(["message", "welcome", "ack", "pong", "error", "x"]) | json_scalars,
        "subject": st.sampled_from(
            ["mark.index.price", "funding.rate", "funding.begin", "funding.end"]
        )
        | json_scalars,
        "id": json_scalars,
        "code": json_scalars,
    },
)


@FAST
@given(msg=ws_shaped)
def test_topic_shaped_messages_never_raise(msg: Any) -> None:
    run_ws(msg)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out += _paths(value, (*prefix, i))
    return out


def _mutate(obj: Any, path: tuple[Any, ...], op: str, value: Any) -> Any:
    if not path:
        return value if op == "replace" else None
    out = copy.deepcopy(obj)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    if op == "drop":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


@st.composite
def mutations(draw: st.DrawFn, fixtures: list[Any]) -> Any:
    obj = draw(st.sampled_from(fixtures))
    for _ in range(draw(st.integers(1, 3))):
        if not isinstance(obj, dict | list):
            break
        path = draw(st.sampled_from(_paths(obj)))
        op = draw(st.sampled_from(["drop", "replace"]))
        obj = _mutate(obj, path, op, draw(json_leafy) if op == "replace" else None)
    return obj


@FAST
@given(msg=mutations(WS_FIXTURES))
def test_mutated_ws_fixtures_never_raise(msg: Any) -> None:
    run_ws(msg)


@FAST
@given(answer=mutations(REST_FIXTURES))
def test_mutated_rest_fixtures_never_raise(answer: Any) -> None:
    run_rest(answer)


LEVEL2_MSG = load("ws_orderbookIncrement.json")
TICKER_V2_MSG = load("ws_tickerV2.json")
number_texts = (
    st.floats(allow_nan=True, allow_infinity=True).map(repr)
    | st.integers().map(str)
    | st.sampled_from(["nan", "inf", "-inf", "1e400", "-0", "1_0", " 1 ", ""])
    | st.text(max_size=6)
)


@FAST
@given(
    price=number_texts,
    size=number_texts,
    side=st.sampled_from(["buy", "sell"]) | st.text(max_size=5),
)
def test_level2_change_prices_are_finite(price: str, size: str, side: str) -> None:
    change = f"{price},{side},{size}"
    event = run_ws(with_data(LEVEL2_MSG, change=change))
    if event is not None:
        assert isinstance(event, Level2Change)
        assert math.isfinite(event.price) and math.isfinite(event.size)
        assert event.side in (Side.BUY, Side.SELL)


@FAST
@given(bid=json_scalars | number_texts, ask=json_scalars | number_texts)
def test_ticker_prices_are_finite(bid: Any, ask: Any) -> None:
    event = run_ws(with_data(TICKER_V2_MSG, bestBidPrice=bid, bestAskPrice=ask))
    if event is not None:
        assert isinstance(event, Ticker)
        assert math.isfinite(event.bid) and math.isfinite(event.ask)


# --- 5. builders and topics ---------------------------------------------------------------------


def test_build_subscribe_matches_the_docs() -> None:
    doc = CONTROL["subscribe"]
    built = build_subscribe(doc["id"], doc["topic"])
    assert built == {**doc, "id": str(doc["id"])}
    assert list(built) == ["id", "type", "topic", "privateChannel", "response"]
    assert type(built["id"]) is str
    assert build_subscribe(str(doc["id"]), doc["topic"]) == built


def test_build_unsubscribe_matches_the_docs() -> None:
    doc = CONTROL["unsubscribe"]
    assert build_unsubscribe(doc["id"], doc["topic"]) == doc
    assert build_unsubscribe(int(doc["id"]), doc["topic"]) == doc


def test_build_ping_matches_the_docs() -> None:
    doc = CONTROL["ping"]
    assert build_ping(doc["id"]) == doc
    assert build_ping(int(doc["id"])) == doc


def test_private_subscribe() -> None:
    built = build_subscribe(7, "/contractMarket/tradeOrders", private=True)
    assert built == {
        "id": "7",
        "type": "subscribe",
        "topic": "/contractMarket/tradeOrders",
        "privateChannel": True,
        "response": True,
    }
    assert build_unsubscribe(7, "/contractMarket/tradeOrders", private=True)["privateChannel"]


@pytest.mark.parametrize("channel", list(t.CHANNEL_NAMES))
def test_subscribe_every_public_channel(channel: str) -> None:
    topic = t.topic(channel) if channel == t.ANNOUNCEMENT else t.topic(channel, ["XBTUSDTM"])
    assert build_subscribe(1, topic)["topic"] == topic
    assert build_unsubscribe(1, topic)["topic"] == topic


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "/contractMarket/level3:XBTUSDTM",
        "/market/ticker:BTC-USDT",
        "/contractMarket/tradeOrders",
        "level2:XBTUSDTM",
    ],
)
def test_subscribe_unknown_public_topic_raises(topic: str) -> None:
    with pytest.raises(ValueError):
        build_subscribe(1, topic)
    with pytest.raises(ValueError):
        build_unsubscribe(1, topic)


@pytest.mark.parametrize("request_id", ["", None, True, False, 1.5, b"1", [1], {"id": 1}])
def test_bad_request_id_raises(request_id: Any) -> None:
    topic = t.topic(t.TICKER_V2, ["XBTUSDTM"])
    with pytest.raises(ValueError):
        build_subscribe(request_id, topic)
    with pytest.raises(ValueError):
        build_unsubscribe(request_id, topic)
    with pytest.raises(ValueError):
        build_ping(request_id)


def test_topic_strings() -> None:
    assert t.topic(t.LEVEL2, ["A", "B"]) == "/contractMarket/level2:A,B"
    assert t.topic(t.LEVEL2, ("A", "B")) == "/contractMarket/level2:A,B"
    assert t.topic(t.TICKER_V2, iter(["XBTUSDTM"])) == "/contractMarket/tickerV2:XBTUSDTM"
    assert t.topic(t.INSTRUMENT, ["XBTUSDTM"]) == "/contract/instrument:XBTUSDTM"
    assert t.topic(t.ANNOUNCEMENT) == "/contract/announcement"
    hundred = [f"S{i}" for i in range(100)]
    assert t.topic(t.EXECUTION, hundred) == "/contractMarket/execution:" + ",".join(hundred)


@pytest.mark.parametrize(
    ("channel", "symbols"),
    [
        (t.LEVEL2, []),
        (t.TICKER_V2, ()),
        (t.LEVEL2, [f"S{i}" for i in range(101)]),
        ("/contractMarket/level3", ["A"]),
        ("level2", ["A"]),
        ("", ["A"]),
        (t.LEVEL2, ["A,B"]),
        (t.LEVEL2, ["A", "B,C"]),
        (t.LEVEL2, [""]),
        (t.LEVEL2, ["A:B"]),
        (t.ANNOUNCEMENT, ["XBTUSDTM"]),
    ],
)
def test_topic_errors(channel: str, symbols: list[str]) -> None:
    with pytest.raises(ValueError):
        t.topic(channel, symbols)


def test_topics_of_splits_over_100_symbols() -> None:
    symbols = [f"S{i:03d}" for i in range(250)]
    out = topics_of([*symbols, *symbols[:10]], [t.LEVEL2, t.ANNOUNCEMENT, t.TICKER_V2])
    level2 = [x for x in out if x.startswith(t.LEVEL2 + ":")]
    ticker = [x for x in out if x.startswith(t.TICKER_V2 + ":")]
    assert out.count(t.ANNOUNCEMENT) == 1
    assert len(out) == 7
    for group in (level2, ticker):
        assert len(group) == 3
        names = [name for x in group for name in x.partition(":")[2].split(",")]
        assert names == sorted(symbols)  # sorted, deduplicated, nothing lost
        assert [len(x.partition(":")[2].split(",")) for x in group] == [100, 100, 50]
    for topic in out:
        assert build_subscribe(1, topic)["topic"] == topic


def test_topics_of_small_and_exact() -> None:
    assert topics_of(["B", "A"], [t.LEVEL2]) == ["/contractMarket/level2:A,B"]
    exactly = [f"S{i:03d}" for i in range(100)]
    assert len(topics_of(exactly, [t.LEVEL2])) == 1
    assert len(topics_of([*exactly, "T"], [t.LEVEL2])) == 2


def test_topics_of_propagates_errors() -> None:
    with pytest.raises(ValueError):
        topics_of(["A"], ["/contractMarket/level3"])
    with pytest.raises(ValueError):
        topics_of(["A,B"], [t.LEVEL2])


# --- 6. to_ns ---------------------------------------------------------------------------------

INSTANT_NS = 1731897467182123456


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1731897467, 1731897467000000000),  # s
        (1731897467182, 1731897467182000000),  # ms
        (1731897467182123, 1731897467182123000),  # us
        (INSTANT_NS, INSTANT_NS),  # ns kept
        ("1731897467182", 1731897467182000000),
        (1731897467182.9, 1731897467182000000),  # truncated to the ms
        (0, 0),
        (9_223_372_036, 9_223_372_036 * 10**9),  # seconds, the last that fit in ns
        (10**11, 10**17),  # 1e11: ms
        (9_223_372_036_854, 9_223_372_036_854 * 10**6),  # ms, the last that fit in ns
        (10**14, 10**17),  # 1e14: us
        (9_223_372_036_854_775, 9_223_372_036_854_775 * 10**3),  # us, the last that fit
        (10**17, 10**17),  # 1e17: ns
        (2**63 - 1, 2**63 - 1),
        (1547697294838004923, 1547697294838004923),
    ],
)
def test_to_ns(value: Any, expected: int) -> None:
    result = to_ns(value)
    assert result == expected
    assert type(result) is int


def test_to_ns_units_agree() -> None:
    assert (
        to_ns(INSTANT_NS // 10**9) // 10**9
        == to_ns(INSTANT_NS // 10**6) // 10**9
        == to_ns(INSTANT_NS // 10**3) // 10**9
        == to_ns(INSTANT_NS) // 10**9
    )
    assert to_ns(INSTANT_NS // 10**3) == INSTANT_NS // 10**3 * 10**3


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "",
        "1.5e12",
        None,
        [],
        {},
        float("nan"),
        float("inf"),
        -1,  # before the epoch
        99_999_999_999,  # seconds past 2^63 ns (the year 5138)
        10**14 - 1,  # ms past 2^63 ns
        2**63,  # ns past what SQLite and the core hold
        10**30,
    ],
)
def test_to_ns_bad_values_raise(value: Any) -> None:
    with pytest.raises((ValueError, TypeError, OverflowError)):
        to_ns(value)
