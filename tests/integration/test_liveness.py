"""Liveness against real SDK agents: a silent agent is lost, one that said goodbye is not."""

from __future__ import annotations

import threading
from pathlib import Path

from agentwatch.collector import RunningService
from agentwatch.detectors import Anomaly
from agentwatch.sdk import init, semconv
from tests.support import local_settings


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
