"""The service's settings: the detector snapshot's interval, from each source, validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentwatch.collector import ConfigError, ServiceSettings


def test_the_snapshot_interval_defaults_to_five_minutes() -> None:
    assert ServiceSettings.from_env({}).detector_snapshot_interval_s == 300.0


def test_the_snapshot_interval_comes_from_the_environment_and_the_file(tmp_path: Path) -> None:
    environ = {"AGENTWATCH_DETECTOR_SNAPSHOT_INTERVAL_S": "60"}
    assert ServiceSettings.from_env(environ).detector_snapshot_interval_s == 60.0
    config = tmp_path / "agentwatch.yaml"
    config.write_text("detector_snapshot_interval_s: 0\n")  # at shutdown only
    assert ServiceSettings.from_env({}, config_file=config).detector_snapshot_interval_s == 0


@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan"), "5m", True])
def test_a_bad_snapshot_interval_is_refused_naming_it(bad: object) -> None:
    with pytest.raises(ConfigError, match="detector_snapshot_interval_s"):
        ServiceSettings(detector_snapshot_interval_s=bad)  # type: ignore[arg-type]


def test_an_unparsable_snapshot_interval_variable_is_named() -> None:
    environ = {"AGENTWATCH_DETECTOR_SNAPSHOT_INTERVAL_S": "five"}
    with pytest.raises(ConfigError, match="AGENTWATCH_DETECTOR_SNAPSHOT_INTERVAL_S"):
        ServiceSettings.from_env(environ)
