"""Liveness against real SDK agents: a silent agent is lost, one that said goodbye is not, and a
cohort that loses several agents at once raises one agent-count anomaly."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from agentwatch.collector import RunningService
from agentwatch.detectors import Anomaly
from agentwatch.sdk import init, semconv
from tests.support import TickWatch, local_settings


def test_an_agent_that_shut_down_cleanly_is_not_reported_lost(tmp_path: Path) -> None:
    with RunningService(local_settings(tmp_path / "d", heartbeat_misses=2.0)) as running:
        lost: list[Anomaly] = []
        silent_found = threading.Event()

        def listen(anomaly: Anomaly) -> None:
            if anomaly.detector == "liveness":
                lost.append(anomaly)
                if anomaly.agent == "silent-1":
                    silent_found.set()

        running.service.add_anomaly_listener(listen)
        kwargs = {"endpoint": running.otlp_endpoint, "heartbeat_interval_s": 0.2}
        leaving = init("workers", instance_id="leaving-1", control_server=False, **kwargs)
        silent = init("workers", instance_id="silent-1", control_server=False, **kwargs)
        try:
            leaving.shutdown()  # its last beat says "stopped"
            silent._heartbeat.stop()  # our seam: the process "dies" without a word ...
            silent._heartbeat.beat()  # ... after a last beat no earlier than the leaver's
            assert silent.force_flush(10_000)
            assert running.service.flush(10)
            info = running.service.registry.get("leaving-1")
            assert info is not None
            assert info.status == semconv.STATUS_STOPPED
            # Same interval, an earlier last beat: by the tick that finds the silent agent
            # lost, the leaver's deadline has passed too.
            assert silent_found.wait(15), "the silent agent was never reported lost"
        finally:
            silent.shutdown()
        assert [a.agent for a in lost] == ["silent-1"]


def test_a_cohort_losing_several_agents_at_once_raises_one_agent_count_anomaly(
    tmp_path: Path,
) -> None:
    clock = TickWatch()
    # Heartbeats every 0.2 s, lost after 1 s: the steady agents' beats have room to arrive late.
    # The breaker threshold is low so that a breaker for the cohort would show.
    settings = local_settings(tmp_path / "d", heartbeat_misses=5.0, breaker_min_severity="warning")
    with RunningService(settings, clock=clock) as running:
        counted: list[Anomaly] = []
        found = threading.Event()

        def listen(anomaly: Anomaly) -> None:
            if anomaly.detector == "agent_count":
                counted.append(anomaly)
                found.set()

        running.service.add_anomaly_listener(listen)
        kwargs = {"endpoint": running.otlp_endpoint, "heartbeat_interval_s": 0.2}
        names = ["steady-1", "steady-2", "leaving-1", "silent-1", "silent-2", "silent-3"]
        agents = {
            name: init("workers", instance_id=name, control_server=False, **kwargs)
            for name in names
        }
        silent = [agents[name] for name in names if name.startswith("silent")]
        try:
            assert all(agent.force_flush(10_000) for agent in agents.values())
            assert running.service.flush(10)
            assert all(running.service.registry.get(name) for name in names)
            # A tick counts all six live, then three die together and one leaves cleanly.
            assert clock.wait_for_a_tick_after(time.time_ns(), 10)
            agents.pop("leaving-1").shutdown()
            for agent in silent:
                agent._heartbeat.stop()  # our seam: the process "dies" without a word ...
            for agent in silent:
                agent._heartbeat.beat()  # ... after a last beat, all three about together
                assert agent.force_flush(10_000)
            assert found.wait(15), "the cohort's drop was never reported"
            assert running.service.flush(10)
            stored = [a for a in running.service.anomalies() if a["detector"] == "agent_count"]
        finally:
            for agent in agents.values():
                agent.shutdown()
        [anomaly] = counted
        assert (anomaly.agent, anomaly.service, anomaly.severity) == ("*", "workers", "warning")
        lost = anomaly.evidence["lost_agents"]
        # Lost on one tick, almost always all three: their last beats were milliseconds apart.
        assert len(lost) >= 2 and set(lost) <= {"silent-1", "silent-2", "silent-3"}
        assert anomaly.evidence["live_before"] == 6
        assert [(a["id"], a["agent"], a["evidence"]["lost_agents"]) for a in stored] == [
            (anomaly.id, "*", lost)
        ]
        assert running.service.remediator.breaker_state("*") == "closed"
