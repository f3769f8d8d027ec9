"""tradebot: a KuCoin Futures trading bot with a deterministic replay simulator."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
