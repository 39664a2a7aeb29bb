"""Detector baselines survive a restart (snapshot file) and move between replicas (API)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from agentwatch.collector import RunningService
from agentwatch.sdk import semconv
from tests.support import TickWatch, local_settings

pytestmark = pytest.mark.integration
NS = 1_000_000_000
T0 = 1_800_000_000 * NS
PROTOBUF = {"content-type": "application/x-protobuf"}


def _actions(agent: str, times_ns: list[int]) -> bytes:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    for key, value in ((semconv.SERVICE_NAME, "c"), (semconv.SERVICE_INSTANCE_ID, agent)):
        rs.resource.attributes.add(key=key, value=AnyValue(string_value=value))
    spans = rs.scope_spans.add().spans
    for i, ts in enumerate(times_ns):
        span = spans.add(
            trace_id=(i + 1).to_bytes(16, "big"),
            span_id=(i + 1).to_bytes(8, "big"),
            name="execute_tool t",
            start_time_unix_nano=ts,
            end_time_unix_nano=ts + 1000,
        )
        for key, value in (
            (semconv.GEN_AI_OPERATION_NAME, semconv.OP_EXECUTE_TOOL),
            (semconv.ACTION_FINGERPRINT, f"f{i}-{ts}"),
        ):
            span.attributes.add(key=key, value=AnyValue(string_value=value))
    return request.SerializeToString()


WARM = [T0 + s * NS + k * 300_000_000 for s in range(30) for k in range(3)]
SPIKE = [T0 + 31 * NS + k * 10_000_000 for k in range(40)]


def _post(running: RunningService, body: bytes) -> None:
    assert httpx.post(
        f"{running.otlp_endpoint}/v1/traces", content=body, headers=PROTOBUF
    ).is_success
    assert running.service.flush(10)


def _severities(running: RunningService) -> list[str]:
    return [a["severity"] for a in running.service.anomalies()]


def test_baselines_survive_a_restart(tmp_path: Path) -> None:
    snapshot = tmp_path / "detectors.snapshot"
    settings = local_settings(tmp_path / "data", detector_snapshot_path=snapshot)
    with RunningService(settings) as running:
        _post(running, _actions("a1", WARM))
    assert snapshot.exists()
    with RunningService(settings) as running:
        _post(running, _actions("a1", SPIKE))
        assert "critical" in _severities(running)
    # Without the snapshot, the same spike meets an agent still warming up.
    with RunningService(local_settings(tmp_path / "fresh")) as running:
        _post(running, _actions("a1", SPIKE))
        assert _severities(running) == []


def test_a_cohort_hand_off_over_the_api(tmp_path: Path) -> None:
    with RunningService(local_settings(tmp_path / "old")) as old:
        _post(old, _actions("a1", WARM))
        _post(old, _actions("a2", WARM))
        blob = httpx.get(f"{old.api_url}/api/v1/detectors/snapshot", params={"agents": "a2"})
        assert blob.status_code == 200
    with RunningService(local_settings(tmp_path / "new")) as new:
        loaded = httpx.post(f"{new.api_url}/api/v1/detectors/snapshot", content=blob.content)
        assert loaded.json() == {"agents": 1}
        assert new.service.pipeline.agents() == ["a2"]
        _post(new, _actions("a2", SPIKE))
        assert "critical" in _severities(new)
        junk = httpx.post(f"{new.api_url}/api/v1/detectors/snapshot", content=b"junk")
        assert junk.status_code == 400


def test_baselines_survive_a_crash_the_tick_saved_them_before(tmp_path: Path) -> None:
    snapshot = tmp_path / "detectors.snapshot"
    clock = TickWatch()
    settings = local_settings(
        tmp_path / "data", detector_snapshot_path=snapshot, detector_snapshot_interval_s=300.0
    )
    crashed = tmp_path / "crashed.snapshot"  # what a crash would have left on disk
    with RunningService(settings, clock=clock) as running:
        _post(running, _actions("a1", WARM))
        assert clock.wait_for_a_tick_after(time.time_ns(), 10)
        assert not snapshot.exists()  # the interval starts at the first tick
        clock.offset_ns = 301 * NS
        assert clock.wait_for_a_tick_after(time.time_ns(), 10)
        assert snapshot.exists(), "the tick did not save the detectors after the interval"
        shutil.copy(snapshot, crashed)  # taken while running: no shutdown wrote it
    with RunningService(
        local_settings(tmp_path / "after", detector_snapshot_path=crashed)
    ) as running:
        _post(running, _actions("a1", SPIKE))
        assert "critical" in _severities(running)
