"""Shared fixtures: a clean AGENTWATCH_* / OTEL_* environment, and a running service; and a
check that the compiled detectors are not older than their sources."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Refuses to test compiled detectors older than their sources (setup.py builds them in
    place): the tests would run the code before the change."""
    detectors = Path(__file__).resolve().parents[1] / "detectors"
    for built in detectors.glob("*.so"):
        source = detectors / (built.name.split(".", 1)[0] + ".py")
        if source.exists() and source.stat().st_mtime > built.stat().st_mtime:
            pytest.exit(
                f"{source.name} changed after it was compiled: run `make test` (it compiles "
                "the detectors again), or `AGENTWATCH_PURE_PYTHON=1 make test` to test them "
                "interpreted",
                returncode=4,
            )


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("AGENTWATCH_", "OTEL_")):
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def webhook_secret() -> str:
    return "whsec_" + base64.b64encode(b"agentwatch-test-secret-0123456").decode()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
