"""Rollback end to end: the newest checkpoint before the anomaly's onset, run once per agent."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from agentwatch.collector import RunningService
from agentwatch.sdk import Agent, init
from tests.support import local_settings

pytestmark = pytest.mark.e2e
QUERY = {"query": "same thing again"}


def _sync(agent: Agent, running: RunningService) -> None:
    assert agent.force_flush(10_000)
    assert running.service.flush(10)


def test_rollback_picks_the_checkpoint_before_onset_and_runs_once(
    data_dir: Path, webhook_secret: str
) -> None:
    settings = local_settings(
        data_dir, webhook_secret=webhook_secret, rollback_min_severity="warning"
    )
    with (
        RunningService(settings) as running,
        init(
            "coder",
            instance_id="coder-1",
            endpoint=running.otlp_endpoint,
            webhook_secret=webhook_secret,
            heartbeat_interval_s=60,
            api_url=running.api_url,
            control_poll_interval_s=3600,  # polled by hand below
        ) as agent,
    ):
        restored: list[str] = []
        agent.on_rollback(restored.append)
        agent.checkpoint("ck-1", 1)
        with agent.action("read_file", args={"path": "a.py"}):
            pass
        agent.checkpoint("ck-2", 2)
        _sync(agent, running)
        with agent.action("run_tests", args=QUERY):  # the loop's onset
            pass
        _sync(agent, running)
        agent.checkpoint("ck-3", 3)  # recorded after the onset: must never be chosen
        _sync(agent, running)
        for _ in range(2):
            with agent.action("run_tests", args=QUERY):
                pass
        _sync(agent, running)
        assert agent.join_remediations(10)
        assert restored == ["ck-2"]

        state = httpx.get(f"{running.api_url}/api/v1/agents/coder-1/control").json()
        assert state["rollback"]["checkpoint_id"] == "ck-2"
        agent.poll_control()  # the pull path brings the same rollback: not run again
        assert agent.join_remediations(10)
        assert restored == ["ck-2"]

        # The incident is stored with its recovery point: steps since the checkpoint used.
        _, incidents = running.service.storage.query(
            "SELECT Kind, CheckpointId, CheckpointStep FROM agentwatch_incidents FINAL"
            " WHERE Agent = 'coder-1'"
        )
        assert ("rollback", "ck-2", 2) in incidents
