"""Several agentwatch replicas behind the gateway's routing rule, and detector state hand-off.

Three replicas run on loopback; a router in the test does what the OpenTelemetry Collector's
``loadbalancing`` exporter does with ``routing_key: service`` (its consistent-hash ring, ported
below), so each cohort (``service.name``), and the baselines of its agents, lives on one replica.
The replicas share one embedded ClickHouse, standing for the cluster they all write to (the
embedded engine opens one directory per process).

The service has no snapshot hook yet, so the tests take and restore snapshots by pickling
``Service.pipeline`` (``DetectorPipeline`` documents that it pickles) and assigning it before
traffic arrives: the stand-in for ``Service.snapshot_detectors()`` / ``restore_detectors()``.
"""

from __future__ import annotations

import bisect
import pickle
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from agentwatch.collector import RunningService, Storage, embedded_dsn
from agentwatch.detectors import AgentEvent, Anomaly, DetectorPipeline, EventKind
from agentwatch.sdk import semconv
from tests.support import local_settings

pytestmark = pytest.mark.integration
PROTOBUF = {"content-type": "application/x-protobuf"}
T0_NS = 1_700_000_000_000_000_000
NS = 1_000_000_000
WARMUP_S = 15  # > the rate detector's 10 warm-up windows of 1 s
RATE = 3  # actions per agent per second during warm-up
COHORTS = [f"cohort-{i:02d}" for i in range(12)]
AGENTS_PER_COHORT = 2


class HashRing:
    """The loadbalancing exporter's ring (``consistent_hashing.go``): 100 points per endpoint at
    ``crc32(endpoint + byte(i)) % 36000``, the first endpoint keeping a contested point; a key
    goes to the first point at or after ``crc32(key) % 36000``, wrapping around."""

    POSITIONS = 36_000
    WEIGHT = 100

    def __init__(self, endpoints: Iterable[str]) -> None:
        points: dict[int, str] = {}
        for endpoint in endpoints:
            for i in range(self.WEIGHT):
                points.setdefault(
                    zlib.crc32(endpoint.encode() + bytes([i])) % self.POSITIONS, endpoint
                )
        self._points = sorted(points)
        self._owners = [points[p] for p in self._points]

    def endpoint_for(self, key: str) -> str:
        i = bisect.bisect_left(self._points, zlib.crc32(key.encode()) % self.POSITIONS)
        return self._owners[i % len(self._owners)]


class SharedStorage(Storage):
    """The embedded ClickHouse every replica writes to; a replica's shutdown leaves it open."""

    def close(self) -> None:  # the fixture closes it, once, after every replica
        pass

    def close_for_real(self) -> None:
        super().close()


class Fleet:
    """Named replicas (stable names, like StatefulSet pods) and the router in front of them."""

    def __init__(self, root: Path, storage: Storage) -> None:
        self.root = root
        self.storage = storage
        self.replicas: dict[str, RunningService] = {}
        self.anomalies: list[tuple[str, Anomaly]] = []
        self.ring = HashRing([])
        self.client = httpx.Client(timeout=30)

    def start(self, name: str, pipeline: DetectorPipeline | None = None) -> RunningService:
        settings = local_settings(self.root / name, otlp_grpc_port=-1, spool_fsync=False)
        running = RunningService(settings, storage=self.storage)
        if pipeline is not None:  # stand-in for the service's restore hook: before any traffic
            running.service.pipeline = pipeline
        running.service.add_anomaly_listener(lambda a: self.anomalies.append((name, a)))
        self.replicas[name] = running
        self.ring = HashRing(sorted(self.replicas))
        return running

    def stop(self, name: str) -> None:
        self.replicas.pop(name).stop()
        self.ring = HashRing(sorted(self.replicas))

    def owner(self, cohort: str) -> str:
        return self.ring.endpoint_for(cohort)

    def send(self, cohort: str, request: ExportTraceServiceRequest) -> None:
        """Route by service.name, as ``routing_key: service`` does."""
        url = f"{self.replicas[self.owner(cohort)].otlp_endpoint}/v1/traces"
        response = self.client.post(url, content=request.SerializeToString(), headers=PROTOBUF)
        assert response.status_code == 200, response.text

    def flush(self) -> None:
        for running in self.replicas.values():
            assert running.service.flush(30)

    def close(self) -> None:
        for name in list(self.replicas):
            self.stop(name)
        self.client.close()


def _agents(cohort: str) -> list[str]:
    return [f"{cohort}/agent-{j}" for j in range(AGENTS_PER_COHORT)]


def _request(cohort: str, calls: dict[str, list[tuple[int, str]]]) -> ExportTraceServiceRequest:
    """One OTLP request: per agent a resource, per (time, fingerprint) a tool-call span."""
    request = ExportTraceServiceRequest()
    for n, (agent, agent_calls) in enumerate(calls.items()):
        resource_spans = request.resource_spans.add()
        for key, value in ((semconv.SERVICE_NAME, cohort), (semconv.SERVICE_INSTANCE_ID, agent)):
            resource_spans.resource.attributes.add(key=key, value=AnyValue(string_value=value))
        spans = resource_spans.scope_spans.add().spans
        for i, (ts_ns, fingerprint) in enumerate(agent_calls):
            span = spans.add(
                trace_id=zlib.crc32(agent.encode()).to_bytes(16, "big"),
                span_id=(n * 100_000 + i + 1).to_bytes(8, "big"),
                name="execute_tool search",
                start_time_unix_nano=ts_ns,
                end_time_unix_nano=ts_ns + 1000,
            )
            for key, text in (
                (semconv.GEN_AI_OPERATION_NAME, semconv.OP_EXECUTE_TOOL),
                (semconv.GEN_AI_TOOL_NAME, "search"),
                (semconv.ACTION_FINGERPRINT, fingerprint),
            ):
                span.attributes.add(key=key, value=AnyValue(string_value=text))
    return request


def _warmup(agent: str) -> list[tuple[int, str]]:
    """RATE distinct calls a second, then a loop: three identical calls in the last second."""
    calls = [
        (T0_NS + s * NS + k * NS // (RATE + 3), f"{agent}:{s}:{k}")
        for s in range(WARMUP_S)
        for k in range(RATE)
    ]
    last = T0_NS + (WARMUP_S - 1) * NS
    calls += [(last + (RATE + k) * NS // (RATE + 3), f"{agent}:loop") for k in range(3)]
    return calls


def _spike(agent: str, second: int) -> list[tuple[int, str]]:
    """40 distinct calls within one second: about 20 standard deviations over the baseline."""
    start = T0_NS + second * NS
    return [(start + k * NS // 50, f"{agent}:spike:{second}:{k}") for k in range(40)]


def _by_agent(anomalies: Iterable[tuple[str, Anomaly]], detector: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for replica, anomaly in anomalies:
        if anomaly.detector == detector:
            out[anomaly.agent].add(replica)
    return out


def _cohort_snapshot(pipeline: DetectorPipeline, agents: set[str]) -> bytes:
    """The detector state of some agents only: a pickled copy that forgot the others."""
    copy: DetectorPipeline = pickle.loads(pickle.dumps(pipeline))
    for agent in copy.agents():
        if agent not in agents:
            copy.forget(agent)
    return pickle.dumps(copy)


def _merge(snapshots: Iterable[bytes]) -> DetectorPipeline:
    """One pipeline holding the agents of several snapshots. ``DetectorPipeline`` has no public
    merge yet (the detectors' snapshot/restore work adds one): this reads pickled state."""
    merged = DetectorPipeline()
    for blob in snapshots:
        state: dict[str, Any] = pickle.loads(blob).__getstate__()
        merged._agents.update(state["_agents"])
    return merged


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    storage = SharedStorage(embedded_dsn(tmp_path / "clickhouse"))
    fleet = Fleet(tmp_path, storage)
    try:
        for i in range(3):
            fleet.start(f"agentwatch-{i}")
        yield fleet
    finally:
        fleet.close()
        storage.close_for_real()


def _warm_up_every_cohort(fleet: Fleet) -> None:
    for cohort in COHORTS:
        fleet.send(cohort, _request(cohort, {a: _warmup(a) for a in _agents(cohort)}))
    fleet.flush()


def test_each_cohort_lives_on_one_replica_and_a_restart_keeps_its_baselines(
    fleet: Fleet,
) -> None:
    owners = {cohort: fleet.owner(cohort) for cohort in COHORTS}
    assert set(owners.values()) == set(fleet.replicas)  # every replica owns some cohort
    _warm_up_every_cohort(fleet)

    # Every agent looped once; its anomalies come from exactly one replica, its cohort's owner.
    loops = _by_agent(fleet.anomalies, "loop")
    expected = {agent: {owners[cohort]} for cohort in COHORTS for agent in _agents(cohort)}
    assert loops == expected
    for name, running in fleet.replicas.items():
        mine = {a for cohort, owner in owners.items() if owner == name for a in _agents(cohort)}
        assert set(running.service.pipeline.agents()) == mine

    # Restart one replica from its snapshot: same name, so the ring, and its cohorts, stay.
    restarted = "agentwatch-1"
    snapshot = fleet.root / restarted / "detectors.snapshot"
    snapshot.write_bytes(pickle.dumps(fleet.replicas[restarted].service.pipeline))
    fleet.stop(restarted)
    fleet.start(restarted, pipeline=pickle.loads(snapshot.read_bytes()))
    assert {cohort: fleet.owner(cohort) for cohort in COHORTS} == owners

    cohort = next(c for c in COHORTS if owners[c] == restarted)
    agent = _agents(cohort)[0]
    fleet.anomalies.clear()
    fleet.send(cohort, _request(cohort, {agent: _spike(agent, WARMUP_S)}))
    fleet.flush()
    spikes = [(name, a) for name, a in fleet.anomalies if a.detector == "action_rate"]
    assert {(name, a.agent) for name, a in spikes} == {(restarted, agent)}
    assert max(a.score for _, a in spikes) >= 8.0  # CRITICAL: the baseline survived

    # Without the snapshot the same spike meets an agent in warm-up, and goes unseen.
    fresh = DetectorPipeline()
    events = [
        AgentEvent(agent, cohort, EventKind.ACTION, ts, key="search", fingerprint=fp)
        for ts, fp in _spike(agent, WARMUP_S)
    ]
    assert [a for e in events for a in fresh.process(e)] == []


def test_scaling_out_hands_the_moving_cohorts_state_to_their_new_owner(fleet: Fleet) -> None:
    _warm_up_every_cohort(fleet)
    before = {cohort: fleet.owner(cohort) for cohort in COHORTS}
    after_ring = HashRing([*sorted(fleet.replicas), "agentwatch-3"])
    moving = {c: before[c] for c in COHORTS if after_ring.endpoint_for(c) != before[c]}
    assert moving, "the new replica takes over some cohorts"
    assert all(after_ring.endpoint_for(c) == "agentwatch-3" for c in moving)  # only to the new one

    # 1. each old owner snapshots the cohorts it hands over; 2. the new owner starts from them;
    # 3. the ring changes (the gateway's resolver sees the new replica); 4. old owners forget.
    snapshots = []
    for old in sorted(set(moving.values())):
        agents = {a for c, owner in moving.items() if owner == old for a in _agents(c)}
        snapshots.append(_cohort_snapshot(fleet.replicas[old].service.pipeline, agents))
    fleet.start("agentwatch-3", pipeline=_merge(snapshots))
    assert {c for c in COHORTS if fleet.owner(c) == "agentwatch-3"} == set(moving)
    for cohort, old in moving.items():
        pipeline = fleet.replicas[old].service.pipeline
        fleet.flush()  # nothing of the cohort is still queued for the old owner's detectors
        for agent in _agents(cohort):
            assert pipeline.forget(agent)

    fleet.anomalies.clear()
    for cohort in COHORTS:  # every agent spikes once; each is caught by its current owner only
        fleet.send(cohort, _request(cohort, {a: _spike(a, WARMUP_S) for a in _agents(cohort)}))
    fleet.flush()
    spikes = _by_agent(fleet.anomalies, "action_rate")
    expected = {agent: {fleet.owner(c)} for c in COHORTS for agent in _agents(c)}
    assert spikes == expected  # moved agents too: their baselines arrived with them
