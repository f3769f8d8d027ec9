"""The core stays sans-IO: no trio, no httpx, no sockets, no clock reads, no asyncio."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import simulator
import tradebot

ROOT = Path(tradebot.__file__).parent

CORE = [
    "kucoin/events.py",
    "kucoin/protocol.py",
    "kucoin/topics.py",
    "market/book.py",
    "market/state.py",
    "market/contracts.py",
    "market/requests.py",
    "decide/quality.py",
    "decide/signals.py",
    "decide/tracker.py",
    "decide/validation.py",
    "decide/risk.py",
    "execution/paper.py",
    "execution/account.py",
    "execution/money.py",
    "execution/orders.py",
    "journal.py",
    "engine.py",
    "trader.py",
    "latency.py",
]
FORBIDDEN_MODULES = {"trio", "httpx", "socket", "asyncio", "time", "datetime", "random", "sqlite3"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", CORE)
def test_core_module_does_no_io_and_reads_no_clock(module: str) -> None:
    path = ROOT / module
    assert path.exists(), f"core module {module} is missing"
    assert not (_imports(path) & FORBIDDEN_MODULES)


def _modules(package: object) -> list[str]:
    path = package.__path__  # type: ignore[attr-defined]
    prefix = package.__name__ + "."  # type: ignore[attr-defined]
    return sorted(m.name for m in pkgutil.walk_packages(path, prefix))


@pytest.mark.parametrize("name", _modules(tradebot) + _modules(simulator))
def test_all_lists_only_real_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        return
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names missing {item}"
        assert not item.startswith("_") or item == "__version__"
