"""Shared fixtures: every test runs with a clean AGENTWATCH_* / OTEL_* environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("AGENTWATCH_", "OTEL_")):
            monkeypatch.delenv(name)
    yield
