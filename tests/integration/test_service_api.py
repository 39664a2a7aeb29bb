"""The service's REST surface: Prometheus metrics, control state, bearer tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from agentwatch.collector import ConfigError, RunningService, ServiceSettings
from agentwatch.sdk import semconv
from tests.support import local_settings

pytestmark = pytest.mark.integration
PROTOBUF = {"content-type": "application/x-protobuf"}


def _actions(agent: str, fingerprints: list[str]) -> bytes:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    for key, value in ((semconv.SERVICE_NAME, "cohort"), (semconv.SERVICE_INSTANCE_ID, agent)):
        rs.resource.attributes.add(key=key, value=AnyValue(string_value=value))
    spans = rs.scope_spans.add().spans
    for i, fp in enumerate(fingerprints):
        span = spans.add(
            trace_id=b"\x01" * 16,
            span_id=bytes([i + 1]) * 8,
            name="execute_tool web_search",
            start_time_unix_nano=1_700_000_000_000_000_000 + i * 10_000_000,
            end_time_unix_nano=1_700_000_000_000_000_000 + i * 10_000_000 + 1000,
        )
        for key, value in (
            (semconv.GEN_AI_OPERATION_NAME, semconv.OP_EXECUTE_TOOL),
            (semconv.GEN_AI_TOOL_NAME, "web_search"),
            (semconv.ACTION_FINGERPRINT, fp),
        ):
            span.attributes.add(key=key, value=AnyValue(string_value=value))
    return request.SerializeToString()


@pytest.fixture
def running(data_dir: Path) -> Iterator[RunningService]:
    settings = local_settings(
        data_dir,
        breaker_min_severity="warning",
    )
    with RunningService(settings) as service:
        yield service


def test_metrics_count_what_happened(running: RunningService) -> None:
    url = f"{running.otlp_endpoint}/v1/traces"
    assert httpx.post(url, content=_actions("a-1", ["f", "f", "f"]), headers=PROTOBUF).is_success
    assert httpx.post(url, content=b"junk", headers=PROTOBUF).status_code == 400
    assert running.service.flush(10)
    text = httpx.get(f"{running.api_url}/metrics").text
    assert "agentwatch_collector_spans_received_total 3.0" in text
    assert "agentwatch_collector_spans_accepted_total 3.0" in text
    assert 'agentwatch_collector_requests_rejected_total{reason="malformed"} 1.0' in text
    assert 'agentwatch_detector_anomalies_total{detector="loop",severity="warning"} 1.0' in text
    assert 'agentwatch_clickhouse_insert_seconds_count{table="otel_traces"} 1.0' in text
    assert "agentwatch_collector_queue_depth 0.0" in text
    assert "agentwatch_agents 1.0" in text


def test_control_state_follows_the_breaker(running: RunningService) -> None:
    control = f"{running.api_url}/api/v1/agents/a-2/control"
    assert httpx.get(control).status_code == 404
    url = f"{running.otlp_endpoint}/v1/traces"
    assert httpx.post(url, content=_actions("a-2", ["x", "y"]), headers=PROTOBUF).is_success
    assert running.service.flush(10)
    state = httpx.get(control).json()
    assert (state["breaker"], state["version"]) == ("closed", 0)
    assert httpx.post(url, content=_actions("a-2", ["z", "z", "z"]), headers=PROTOBUF).is_success
    assert running.service.flush(10)
    state = httpx.get(control).json()
    assert (state["agent"], state["breaker"], state["version"]) == ("a-2", "open", 1)
    (anomaly,) = httpx.get(f"{running.api_url}/api/v1/anomalies").json()
    assert state["anomaly_id"] == anomaly["id"]


def test_tokens_guard_ingest_and_api(data_dir: Path) -> None:
    settings = local_settings(
        data_dir,
        ingest_token="in-t",
        api_token="api-t",
    )
    with RunningService(settings) as running:
        url = f"{running.otlp_endpoint}/v1/traces"
        body = _actions("a-3", ["q"])
        refused = httpx.post(url, content=body, headers=PROTOBUF)
        assert refused.status_code == 401
        wrong = httpx.post(url, content=body, headers={**PROTOBUF, "authorization": "Bearer x"})
        assert wrong.status_code == 401
        good = {**PROTOBUF, "authorization": "Bearer in-t"}
        assert httpx.post(url, content=body, headers=good).status_code == 200
        api = f"{running.api_url}/api/v1/agents"
        assert httpx.get(api).status_code == 401
        assert httpx.get(api, headers={"authorization": "Bearer api-t"}).status_code == 200
        assert httpx.get(f"{running.api_url}/healthz").status_code == 200  # probes stay open


def test_an_exposed_service_needs_tokens() -> None:
    with pytest.raises(ConfigError, match="AGENTWATCH_INGEST_TOKEN"):
        ServiceSettings(host="0.0.0.0")
    ServiceSettings(host="0.0.0.0", ingest_token="a", api_token="b")
    ServiceSettings(host="::1")
