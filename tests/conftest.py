"""Shared fixtures: a clean AGENTWATCH_* / OTEL_* environment, and a running service."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest


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
