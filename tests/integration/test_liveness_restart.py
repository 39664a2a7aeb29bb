"""Liveness across a restart: the agent registry is saved beside the detector snapshot."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from agentwatch.collector import RunningService
from agentwatch.collector._registry import AgentRegistry
from agentwatch.detectors import Anomaly
from agentwatch.sdk import init
from tests.support import TickWatch, local_settings

pytestmark = pytest.mark.integration


class LostAgents:
    """Liveness anomalies as a service reports them; waits for one agent's."""

    def __init__(self) -> None:
        self.agents: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, anomaly: Anomaly) -> None:
        if anomaly.detector == "liveness":
            with self._changed:
                self.agents.append(anomaly.agent)
                self._changed.notify_all()

    def wait_for(self, agent: str, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: agent in self.agents, timeout_s)


def test_an_agent_that_dies_while_the_service_is_down_is_found_lost_after_it(
    tmp_path: Path,
) -> None:
    snapshot = tmp_path / "detectors.snapshot"
    settings = local_settings(
        tmp_path / "data", detector_snapshot_path=snapshot, heartbeat_misses=2.0
    )
    with RunningService(settings) as first:
        lost = LostAgents()
        first.service.add_anomaly_listener(lost)
        kwargs = {"endpoint": first.otlp_endpoint, "heartbeat_interval_s": 0.2}
        early = init("workers", instance_id="early-1", control_server=False, **kwargs)
        during = init("workers", instance_id="during-1", control_server=False, **kwargs)
        try:
            early._heartbeat.stop()  # our seam: this process "dies" while the service runs
            assert lost.wait_for("early-1", 15), "the agent that died first was never lost"
            assert during.force_flush(10_000)
            assert first.service.flush(10)
        finally:
            during._heartbeat.stop()  # ... and this one while the service is down
    saved = json.loads((tmp_path / "detectors.snapshot.agents.json").read_text())
    assert {a["agent"]: a["lost"] for a in saved} == {"early-1": True, "during-1": False}

    with RunningService(settings) as second:
        info = second.service.registry.get("during-1")
        assert info is not None and info.heartbeat_interval_s == 0.2
        lost = LostAgents()
        second.service.add_anomaly_listener(lost)
        assert lost.wait_for("during-1", 15), "the agent that died during the restart was lost"
    assert lost.agents == ["during-1"]  # the one reported before the restart is not again
    early.shutdown()
    during.shutdown()


def test_a_saved_registry_that_is_not_one_is_refused_naming_the_field() -> None:
    registry = AgentRegistry()
    with pytest.raises(ValueError, match="agent"):
        registry.restore([{"service": "workers"}])
    assert registry.restore([{"agent": "a", "service": "s", "first_seen_ns": 1, "last_seen_ns": 2}])
    assert registry.get("a") is not None


def test_the_registry_is_saved_every_minute_so_a_crash_loses_little(tmp_path: Path) -> None:
    saved = tmp_path / "detectors.snapshot.agents.json"
    clock = TickWatch()
    settings = local_settings(
        tmp_path / "data", detector_snapshot_path=tmp_path / "detectors.snapshot"
    )
    with RunningService(settings, clock=clock) as running:
        assert clock.wait_for_a_tick_after(
            time.time_ns(), 10
        )  # the first tick saved the (empty) registry
        assert json.loads(saved.read_text()) == []
        agent = init("workers", instance_id="w-1", control_server=False,
                     endpoint=running.otlp_endpoint, heartbeat_interval_s=0.2)  # fmt: skip
        try:
            assert agent.force_flush(10_000)
            assert running.service.flush(10)
            assert clock.wait_for_a_tick_after(time.time_ns(), 10)
            assert json.loads(saved.read_text()) == []  # not yet a minute since
            clock.offset_ns = 61 * 1_000_000_000
            assert clock.wait_for_a_tick_after(
                time.time_ns(), 10
            )  # a tick a minute later saved it, still running
            assert [a["agent"] for a in json.loads(saved.read_text())] == ["w-1"]
        finally:
            agent.shutdown()
