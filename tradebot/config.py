"""Configuration: frozen dataclasses with the shipped defaults, loaded from TOML and flags.

    [quality]  data-quality thresholds        [signals]  market-intelligence inputs
    [validation]  pre-trade validation        [risk]     risk limits
    [exits]    position exits                 [paper]    the paper account and fill model

`load_config(path, overrides)` reads an optional TOML file, then applies `section.key=value`
overrides (the `--set` flag), and checks every value. A bad value raises `ConfigError`
with one line naming the key, the value and what is allowed; an unknown key is an error
too (a typo must not silently fall back to a default). `to_toml(config)` writes the
effective configuration back out (`tradebot config`).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tradebot.errors import ConfigError

__all__ = [
    "Config",
    "ExitConfig",
    "PaperConfig",
    "QualityConfig",
    "RiskConfig",
    "SignalConfig",
    "ValidationConfig",
    "load_config",
    "to_toml",
]


def _limits(
    lo: float | None = None, hi: float | None = None, *, choices: tuple[str, ...] = ()
) -> Any:
    return {"lo": lo, "hi": hi, "choices": choices}


def _f(default: Any, lo: float | None = None, hi: float | None = None, **kw: Any) -> Any:
    return field(default=default, metadata=_limits(lo, hi, **kw))


@dataclass(frozen=True, slots=True, kw_only=True)
class QualityConfig:
    """Data-quality thresholds (docs/quality.md)."""

    stale_after_ms: int = _f(5_000, 1, 3_600_000)
    max_spread_bps: float = _f(50.0, 0.0, 10_000.0)
    min_completeness: float = _f(0.99, 0.0, 1.0)
    completeness_window_s: int = _f(60, 1, 3_600)
    liquidity_band_bps: float = _f(10.0, 0.0, 10_000.0)
    min_liquidity_usdt: float = _f(5_000.0, 0.0, 1e12)


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalConfig:
    """Market-intelligence inputs and signal thresholds (docs/signals.md)."""

    evaluate_every_ms: int = _f(1_000, 1, 3_600_000)
    volume_window_s: int = _f(900, 60, 14_400)
    volume_bucket_s: int = _f(60, 1, 3_600)
    high_volume_ratio: float = _f(1.5, 1.0, 1_000.0)
    low_volume_ratio: float = _f(0.5, 0.0, 1.0)
    tight_spread_bps: float = _f(10.0, 0.0, 10_000.0)
    imbalance_levels: int = _f(5, 1, 50)
    momentum_window_s: int = _f(60, 1, 3_600)
    imbalance_weight: float = _f(0.5, 0.0, 1.0)
    momentum_weight: float = _f(0.5, 0.0, 1.0)
    signal_threshold: float = _f(0.2, 0.0, 1.0)
    strong_threshold: float = _f(0.6, 0.0, 1.0)
    new_listing_bonus: float = _f(0.7, 0.0, 1.0)
    new_listing_window_s: int = _f(1_800, 0, 604_800)


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationConfig:
    """Pre-trade validation: market conditions, trading window, confidence."""

    min_confidence: float = _f(0.75, 0.0, 1.0)
    min_liquidity_score: float = _f(0.5, 0.0, 1.0)
    allow_low_volume: bool = _f(False)
    funding_blackout_s: int = _f(60, 0, 28_800)


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskConfig:
    """Risk limits."""

    max_position_fraction: float = _f(0.20, 0.0, 1.0)
    max_daily_loss_fraction: float = _f(0.05, 0.0, 1.0)
    max_open_positions: int = _f(3, 0, 1_000)
    min_balance_usdt: float = _f(10.0, 0.0, 1e12)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitConfig:
    """When an open position is closed."""

    take_profit: float = _f(0.010, 0.0, 10.0)
    stop_loss: float = _f(0.005, 0.0, 1.0)
    time_stop_s: int = _f(1_800, 1, 2_592_000)
    exit_on_reversal: bool = _f(True)


@dataclass(frozen=True, slots=True, kw_only=True)
class PaperConfig:
    """The paper account and its fill model."""

    starting_equity_usdt: float = _f(1_000.0, 0.0, 1e12)
    taker_fee_rate: float = _f(0.0006, 0.0, 0.1)
    maker_fee_rate: float = _f(0.0002, -0.1, 0.1)
    use_contract_fees: bool = _f(True)
    latency_ms: int = _f(50, 0, 60_000)
    order_timeout_ms: int = _f(5_000, 1, 3_600_000)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration; every section has the shipped defaults."""

    quality: QualityConfig = field(default_factory=QualityConfig)
    signals: SignalConfig = field(default_factory=SignalConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    exits: ExitConfig = field(default_factory=ExitConfig)
    paper: PaperConfig = field(default_factory=PaperConfig)


_SECTIONS = {f.name: f.default_factory for f in fields(Config)}


def _number(value: float) -> str:
    """A limit as a reader writes it: 3,600,000 and 0.5, never 3.6e+06."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:g}"


def _describe(kind: type, meta: dict[str, Any]) -> str:
    lo, hi = meta.get("lo"), meta.get("hi")
    if kind is bool:
        return "true or false"
    noun = "an integer" if kind is int else "a number"
    if lo is not None and hi is not None:
        return f"{noun} from {_number(lo)} to {_number(hi)}"
    if lo is not None:
        return f"{noun} >= {_number(lo)}"
    return noun


def _coerce(key: str, kind: type, meta: dict[str, Any], value: Any, from_text: bool) -> Any:
    """Check one value against its field's type and limits; convert `--set` text."""
    expected = _describe(kind, meta)
    if from_text and isinstance(value, str):
        text = value.strip()
        try:
            if kind is bool:
                if text.lower() not in ("true", "false"):
                    raise ValueError
                value = text.lower() == "true"
            elif kind is int:
                value = int(text)
            elif kind is float:
                value = float(text)
        except ValueError:
            raise ConfigError(f"{key}: expected {expected}, got {value!r}") from None
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok:
            value = float(value)
            ok = math.isfinite(value)
    if not ok:
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if kind is not bool and ((lo is not None and value < lo) or (hi is not None and value > hi)):
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")
    return value


def _field_types(section: type) -> dict[str, tuple[type, dict[str, Any]]]:
    kinds = {"int": int, "float": float, "bool": bool, "str": str}
    return {f.name: (kinds[str(f.type)], dict(f.metadata)) for f in fields(section)}


def _apply(config: Config, key: str, value: Any, *, from_text: bool = False) -> Config:
    section_name, _, name = key.partition(".")
    if section_name not in _SECTIONS:
        allowed = ", ".join(sorted(_SECTIONS))
        raise ConfigError(f"{key}: unknown section {section_name!r}; sections are {allowed}")
    section = getattr(config, section_name)
    types = _field_types(type(section))
    if name not in types:
        allowed = ", ".join(sorted(types))
        raise ConfigError(f"{key}: unknown key; keys in [{section_name}] are {allowed}")
    kind, meta = types[name]
    checked = _coerce(key, kind, meta, value, from_text)
    return replace(config, **{section_name: replace(section, **{name: checked})})


def _cross_check(config: Config) -> None:
    s = config.signals
    if s.strong_threshold < s.signal_threshold:
        raise ConfigError(
            f"signals.strong_threshold: expected a number >= signals.signal_threshold "
            f"({s.signal_threshold:g}), got {s.strong_threshold:g}"
        )
    if s.volume_window_s < s.volume_bucket_s:
        raise ConfigError(
            f"signals.volume_window_s: expected a number >= signals.volume_bucket_s "
            f"({s.volume_bucket_s}), got {s.volume_window_s}"
        )


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """The defaults, then the TOML file at `path` (if any), then `section.key=value` overrides."""
    config = Config()
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config file ({exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        for section_name, table in data.items():
            if not isinstance(table, dict):
                raise ConfigError(f"{section_name}: expected a [{section_name}] table")
            for name, value in table.items():
                config = _apply(config, f"{section_name}.{name}", value)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"{item}: expected section.key=value, e.g. risk.max_open_positions=2")
        config = _apply(config, key.strip(), value, from_text=True)
    _cross_check(config)
    return config


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_toml(config: Config) -> str:
    """The configuration as TOML that `load_config` reads back to an equal Config."""
    lines: list[str] = []
    for section_name in _SECTIONS:
        section = getattr(config, section_name)
        lines.append(f"[{section_name}]")
        for f in fields(section):
            lines.append(f"{f.name} = {_toml_value(getattr(section, f.name))}")
        lines.append("")
    return "\n".join(lines)
