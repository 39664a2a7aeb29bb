"""Three agentwatch processes behind the gateway's routing rule (hash by service).

Each replica is a real ``agentwatch serve`` process with its own embedded ClickHouse; a small
router here does what the OpenTelemetry Collector's loadbalancing exporter does with
``routing_key: service``. Every agent's anomalies come from exactly its owner, and a replica
restarted with its detector snapshot keeps its baselines.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentwatch.collector import Storage, embedded_dsn
from tests.integration.test_replicas import (
    COHORTS,
    PROTOBUF,
    WARMUP_S,
    HashRing,
    _agents,
    _request,
    _spike,
    _warmup,
)

pytestmark = pytest.mark.integration
NAMES = ["agentwatch-0", "agentwatch-1", "agentwatch-2"]


class Replica:
    """One ``agentwatch serve`` process, with its data directory and detector snapshot."""

    def __init__(self, root: Path, name: str, *, snapshot: bool = True) -> None:
        self.data = root / name
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWATCH_")}
        if snapshot:
            env["AGENTWATCH_DETECTOR_SNAPSHOT_PATH"] = str(self.data / "detectors.snapshot")
        command = [
            sys.executable, "-m", "agentwatch.collector._cli", "serve", "--data-dir",
            str(self.data), "--otlp-http-port", "0", "--otlp-grpc-port", "-1", "--api-port", "0",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            assert self.process.stdout is not None
            with self.process.stdout:
                for line in self.process.stdout:
                    lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        line = lines.get(timeout=60)
        self.otlp = line.split("OTLP/HTTP ", 1)[1].split()[0]
        self.api = line.split("API ", 1)[1].split()[0]

    def send(self, body: bytes) -> None:
        response = httpx.post(f"{self.otlp}/v1/traces", content=body, headers=PROTOBUF)
        assert response.status_code == 200, response.text

    def anomalies(self) -> list[dict[str, object]]:
        return list(httpx.get(f"{self.api}/api/v1/anomalies", timeout=30).json())

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)  # drains, then writes the detector snapshot
        assert self.process.wait(60) == 0


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[dict[str, Replica]]:
    started = {name: Replica(tmp_path, name) for name in NAMES}
    yield started
    for replica in started.values():
        if replica.process.poll() is None:
            replica.stop()


def _wait_for_anomalies(replica: Replica, agents: set[str], detector: str) -> set[str]:
    """Agents of ``agents`` with a ``detector`` anomaly on ``replica`` (detection is async)."""
    found: set[str] = set()
    for _ in range(100):
        found = {str(a["agent"]) for a in replica.anomalies() if a["detector"] == detector}
        if agents <= found:
            break
        threading.Event().wait(0.1)
    return found


def test_cohorts_live_on_one_process_and_a_restart_keeps_baselines(
    replicas: dict[str, Replica], tmp_path: Path
) -> None:
    ring = HashRing(NAMES)  # by stable replica names, as the k8s resolver's hostnames
    owners = {cohort: ring.endpoint_for(cohort) for cohort in COHORTS}
    assert len(set(owners.values())) == 3  # every replica owns some cohorts
    for cohort in COHORTS:
        calls = {agent: _warmup(agent) for agent in _agents(cohort)}
        replicas[owners[cohort]].send(_request(cohort, calls).SerializeToString())

    # Every agent's loop is reported by its owner, and by no other replica.
    for name, replica in replicas.items():
        mine = {a for c in COHORTS if owners[c] == name for a in _agents(c)}
        assert _wait_for_anomalies(replica, mine, "loop") == mine

    # Restart agentwatch-1 with its snapshot: a spike right away is caught (baselines survived).
    moved = [c for c in COHORTS if owners[c] == "agentwatch-1"]
    replicas["agentwatch-1"].stop()
    replicas["agentwatch-1"] = Replica(tmp_path, "agentwatch-1")
    restarted = replicas["agentwatch-1"]
    for cohort in moved:
        calls = {agent: _spike(agent, WARMUP_S + 1) for agent in _agents(cohort)}
        restarted.send(_request(cohort, calls).SerializeToString())
    spiked = {a for c in moved for a in _agents(c)}
    assert _wait_for_anomalies(restarted, spiked, "action_rate") >= spiked

    # The control: a replica without the snapshot meets the same spike in warm-up, silent.
    fresh = Replica(tmp_path, "fresh", snapshot=False)
    try:
        cohort = moved[0]
        calls = {agent: _spike(agent, WARMUP_S + 1) for agent in _agents(cohort)}
        fresh.send(_request(cohort, calls).SerializeToString())
        fresh.stop()  # a clean stop drains detection and storage first
        storage = Storage(embedded_dsn(fresh.data))
        _, rows = storage.query(
            "SELECT count() FROM agentwatch_anomalies WHERE Detector = 'action_rate'"
        )
        storage.close()
        assert rows == [(0,)]
    finally:
        if fresh.process.poll() is None:
            fresh.stop()
