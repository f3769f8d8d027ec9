"""Configuration: shipped defaults, TOML and --set overrides, one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from tradebot.cli import main
from tradebot.config import Config, load_config, to_toml
from tradebot.errors import ConfigError


def test_defaults_are_the_documented_ones() -> None:
    c = Config()
    assert c.quality.stale_after_ms == 5_000
    assert c.quality.max_spread_bps == 50.0
    assert c.quality.min_completeness == 0.99
    assert c.quality.liquidity_band_bps == 10.0 and c.quality.min_liquidity_usdt == 5_000.0
    assert c.signals.volume_window_s == 900 and c.signals.imbalance_levels == 5
    assert c.signals.new_listing_bonus == 0.7 and c.signals.new_listing_window_s == 1_800
    assert c.validation.min_confidence == 0.75 and c.validation.funding_blackout_s == 60
    assert c.risk.max_position_fraction == 0.20 and c.risk.max_daily_loss_fraction == 0.05
    assert c.risk.max_open_positions == 3 and c.risk.min_balance_usdt == 10.0
    assert c.exits.take_profit == 0.01 and c.exits.stop_loss == 0.005
    assert c.exits.time_stop_s == 1_800
    assert c.paper.starting_equity_usdt == 1_000.0 and c.paper.latency_ms == 50
    assert c.paper.taker_fee_rate == 0.0006 and c.paper.maker_fee_rate == 0.0002


def test_toml_file_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[risk]\nmax_open_positions = 5\n[exits]\nstop_loss = 0.01\n")
    c = load_config(path, ["risk.max_open_positions=2"])
    assert c.risk.max_open_positions == 2  # the flag wins over the file
    assert c.exits.stop_loss == 0.01


def test_to_toml_round_trips(tmp_path: Path) -> None:
    c = load_config(overrides=["paper.use_contract_fees=false", "signals.imbalance_levels=7"])
    path = tmp_path / "c.toml"
    path.write_text(to_toml(c))
    assert load_config(path) == c


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("risk.max_open_positions=abc", ["risk.max_open_positions", "'abc'", "integer"]),
        ("risk.max_open_positions=-1", ["risk.max_open_positions", "from 0 to 1,000"]),
        ("quality.min_completeness=1.5", ["quality.min_completeness", "from 0 to 1"]),
        ("paper.use_contract_fees=maybe", ["paper.use_contract_fees", "true or false"]),
        ("risk.nope=1", ["risk.nope", "unknown key", "max_open_positions"]),
        ("bogus.key=1", ["bogus.key", "unknown section"]),
        ("novalue", ["novalue", "section.key=value"]),
        ("quality.max_spread_bps=nan", ["quality.max_spread_bps", "nan"]),
        ("signals.strong_threshold=0.1", ["signals.strong_threshold", "signal_threshold"]),
    ],
)
def test_bad_values_name_the_key_value_and_what_is_allowed(
    override: str, fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(overrides=[override])
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_bad_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[risk\nmax_open_positions = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    path.write_text('[risk]\nmax_open_positions = "3"\n')
    with pytest.raises(ConfigError, match=r"risk\.max_open_positions"):
        load_config(path)


@given(st.integers(min_value=0, max_value=1_000))
def test_any_valid_position_count_is_accepted(n: int) -> None:
    assert load_config(overrides=[f"risk.max_open_positions={n}"]).risk.max_open_positions == n


def test_config_command_prints_effective_toml() -> None:
    result = CliRunner().invoke(main, ["config", "--set", "risk.max_open_positions=2"])
    assert result.exit_code == 0
    assert "[risk]" in result.output and "max_open_positions = 2" in result.output
    bad = CliRunner().invoke(main, ["config", "--set", "risk.max_open_positions=x"])
    assert bad.exit_code == 1 and "risk.max_open_positions" in bad.output


def _bounded_fields() -> list[tuple[str, Any]]:
    from dataclasses import fields

    out = []
    for section in fields(Config):
        for f in fields(section.default_factory()):  # type: ignore[misc]
            if f.type in ("int", "float"):
                out.append((f"{section.name}.{f.name}", f.metadata))
    return out


@pytest.mark.parametrize(("key", "meta"), _bounded_fields())
def test_every_number_has_an_upper_bound(key: str, meta: Any) -> None:
    """A huge window or count is refused with the allowed range, not a MemoryError later."""
    assert meta["hi"] is not None, key
    with pytest.raises(ConfigError) as info:
        load_config(overrides=[f"{key}={meta['hi'] * 10 + 1}"])
    message = str(info.value)
    assert message.startswith(f"{key}: expected") and " to " in message and "\n" not in message
    # The bound itself is allowed (with the keys that must not be below it raised too).
    companions = {
        "signals.volume_bucket_s": ["signals.volume_window_s=14400"],
        "signals.signal_threshold": ["signals.strong_threshold=1"],
    }
    load_config(overrides=[f"{key}={meta['hi']}", *companions.get(key, [])])


def test_a_thirty_day_window_is_refused_with_its_range() -> None:
    with pytest.raises(ConfigError, match=r"signals\.volume_window_s.*60 to 14,400.*2592000"):
        load_config(overrides=["signals.volume_window_s=2592000"])


@pytest.mark.parametrize("speed", ["1e-12", "0", "-1", "inf", "nan", "1e7", "fast"])
def test_speed_out_of_range_is_one_line(tmp_path: Path, speed: str) -> None:
    result = CliRunner().invoke(
        main, ["replay", "recordings/sample.msgpack", "--speed", speed, "--db", str(tmp_path / "d")]
    )
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert "--speed" in result.output and speed in result.output
    assert not (tmp_path / "d").exists()  # refused before anything is written
