# cython: language_level=3, boundscheck=False, wraparound=False
"""Prototype, not shipped: the parse stage's hot path (`Parser.parse_frame` for level-2
and tickerV2 frames) as a typed Cython module, to measure what compiling it would buy.

Same decode (msgspec into `WsFrame`), same events; the route table is the parser's own.
Returns the event, or None where `Parser.parse_frame` would take its untyped fallback.
"""

from tradebot.kucoin.events import Level2Change, Side, Ticker
from tradebot.kucoin.wire import WsData, decode_ws

cdef object BUY = Side.BUY
cdef object SELL = Side.SELL
cdef long long NS_LIMIT_MS = 9_223_372_036_854


cdef object level2(str symbol, object d):
    cdef str change = d.change
    cdef Py_ssize_t a = change.find(",")
    cdef Py_ssize_t b = change.find(",", a + 1)
    if a < 0 or b < 0 or change.find(",", b + 1) >= 0:
        return None
    cdef double price = float(change[:a])
    cdef double size = float(change[b + 1:])
    cdef str side_text = change[a + 1:b]
    if price - price != 0.0 or size - size != 0.0:
        return None
    side = BUY if side_text == "buy" else SELL if side_text == "sell" else None
    sequence = d.sequence
    ts = d.timestamp
    if side is None or type(sequence) is not int or type(ts) is not int:
        return None
    cdef long long ms = ts
    if not 100_000_000_000 <= ms < NS_LIMIT_MS:
        return None
    return Level2Change(symbol, sequence, side, price, size, ms * 1_000_000)


cdef object ticker_v2(str symbol, object d):
    cdef double bid = float(d.bestBidPrice)
    cdef double ask = float(d.bestAskPrice)
    cdef double bid_size = float(d.bestBidSize)
    cdef double ask_size = float(d.bestAskSize)
    sequence = d.sequence
    ts = d.ts
    if (bid - bid) + (ask - ask) + (bid_size - bid_size) + (ask_size - ask_size) != 0.0:
        return None
    if type(sequence) is not int or type(ts) is not int or ts < 100_000_000_000_000_000:
        return None
    name = d.symbol
    return Ticker(name if name else symbol, sequence, bid, bid_size, ask, ask_size, 0.0, 0.0, ts)


def parse_frame(frame, dict routes):
    msg = decode_ws(frame)
    if msg.type != "message":
        return None
    route = routes.get(msg.topic)
    data = msg.data
    if route is None or type(data) is not WsData:
        return None
    name = route[0]
    if name == "level2":
        event = level2(route[2], data)
    elif name == "tickerV2":
        event = ticker_v2(route[2], data)
    else:
        return None
    if event is not None:
        route[3] += 1
    return event
