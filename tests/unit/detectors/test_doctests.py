from __future__ import annotations

import doctest
from types import ModuleType

import pytest

import agentwatch.detectors
from agentwatch.detectors import _census, _loop, _pace, _pipeline, _rate, _sequence, _series


@pytest.mark.parametrize(
    "module",
    [_census, _loop, _pace, _rate, _pipeline, _series, _sequence],
    ids=lambda m: m.__name__,
)
def test_doctests(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_public_names() -> None:
    exported = agentwatch.detectors.__all__
    assert exported == sorted(exported)
    assert all(hasattr(agentwatch.detectors, name) for name in exported)
    assert agentwatch.detectors.__doc__
