"""A bad event costs only itself: the detect thread goes on with its batch and the next ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentwatch.collector import RunningService
from agentwatch.detectors import EventKind
from tests.support import local_settings

pytestmark = pytest.mark.integration

NS = 1_000_000_000


@pytest.fixture
def running(data_dir: Path) -> Iterator[RunningService]:
    with RunningService(local_settings(data_dir)) as service:
        yield service


def _action(agent: str, ts_ns: object) -> tuple[tuple[object, ...], str, float]:
    # An observation as the decoder hands it over: AgentEvent's fields, in order.
    fields = (agent, "svc", EventKind.ACTION, ts_ns, "search", "f", False, "", "", 0.0, 0.0)
    return fields, "", 0.0


def test_an_event_that_fails_is_skipped_and_detection_goes_on(
    running: RunningService, caplog: pytest.LogCaptureFixture
) -> None:
    detection = running.service.detection
    # No time: the registry (and, compiled, AgentEvent itself) raises on it.
    detection.submit([_action("bad", None), _action("a1", 1 * NS)], max_events=100)
    detection.submit([_action("a2", 2 * NS)], max_events=100)
    assert detection.join(30)  # every batch scored: the detect thread is alive
    assert {"a1", "a2"} <= set(running.service.pipeline.agents())
    assert "detection failed on an event ('bad'" in caplog.text  # said, with what it was
