"""Errors a user can act on.

    TradebotError            str(exc) is one line that says what is wrong and what to do
    ├── ConfigError          a config key has a bad value: names the key, the value, what is allowed
    ├── RecordingError       a recording cannot be read: names the file and the problem
    └── ExchangeError        KuCoin could not be reached, or an endpoint's circuit is open

Bad market data is never an exception: the protocol core counts it by reason and skips it.
"""

from __future__ import annotations

__all__ = ["ConfigError", "ExchangeError", "RecordingError", "TradebotError"]


class TradebotError(Exception):
    """Base of the errors a user can act on; the message is one line."""


class ConfigError(TradebotError):
    """A configuration value is missing, unknown or out of range."""


class RecordingError(TradebotError):
    """A recording file is missing, not a recording, or of a version we cannot read."""


class ExchangeError(TradebotError):
    """No answer from KuCoin after every retry, or the endpoint's circuit breaker is open."""
