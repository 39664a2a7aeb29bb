"""Fuzzing the OTLP receivers over real sockets: never a 5xx, never a crash, bounded memory."""

from __future__ import annotations

import json
import resource
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agentwatch.collector import RunningService
from agentwatch.collector._grpc import LOGS_EXPORT, METRICS_EXPORT, TRACE_EXPORT
from tests.support import local_settings

pytestmark = pytest.mark.integration
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    data = Path(tmp_path_factory.mktemp("fuzz"))
    with RunningService(local_settings(data, max_request_bytes=256 * 1024)) as service:
        yield service


def _valid() -> bytes:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="execute_tool x")
    return request.SerializeToString()


def _valid_logs() -> bytes:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.add(key="service.name").value.string_value = "svc"
    record = resource_logs.scope_logs.add().log_records.add(
        time_unix_nano=1_764_000_000_000_000_000, severity_number=9, severity_text="INFO"
    )
    record.body.string_value = "tool call failed"
    record.attributes.add(key="gen_ai.tool.name").value.string_value = "search"
    return request.SerializeToString()


def _valid_metrics() -> bytes:
    request = ExportMetricsServiceRequest()
    metrics = request.resource_metrics.add().scope_metrics.add().metrics
    gauge = metrics.add(name="agent.memory", unit="By")
    gauge.gauge.data_points.add(time_unix_nano=1_764_000_000_000_000_000, as_double=1.5)
    total = metrics.add(name="agent.actions")
    total.sum.is_monotonic = True
    total.sum.aggregation_temporality = 2
    total.sum.data_points.add(time_unix_nano=1_764_000_000_000_000_000, as_int=7)
    histogram = metrics.add(name="agent.decision.latency", unit="s")
    histogram.histogram.data_points.add(
        time_unix_nano=1_764_000_000_000_000_000,
        count=3,
        sum=0.6,
        bucket_counts=[1, 2, 0],
        explicit_bounds=[0.1, 1.0],
    )
    return request.SerializeToString()


def _mutated(valid: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, and a valid body with a few bytes inserted or cut short: the bodies that
    get deepest into a decoder."""
    return st.one_of(
        st.binary(max_size=2048),
        st.tuples(st.integers(0, len(valid)), st.binary(min_size=1, max_size=8)).map(
            lambda t: valid[: t[0]] + t[1] + valid[t[0] :]
        ),
        st.integers(1, len(valid)).map(lambda n: valid[:n]),
    )


bodies = _mutated(_valid())
# Each signal: its OTLP/HTTP path, its gRPC method, and bodies for it.
SIGNALS = {
    "logs": ("/v1/logs", LOGS_EXPORT, _mutated(_valid_logs())),
    "metrics": ("/v1/metrics", METRICS_EXPORT, _mutated(_valid_metrics())),
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "resourceSpans",
                    "scopeSpans",
                    "spans",
                    "traceId",
                    "spanId",
                    "name",
                    "attributes",
                    "value",
                    "kind",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=30,
)


@FUZZ
@given(body=bodies, content_type=st.sampled_from(["application/x-protobuf", "application/json"]))
def test_http_never_fails_with_5xx(running: RunningService, body: bytes, content_type: str) -> None:
    response = httpx.post(
        f"{running.otlp_endpoint}/v1/traces", content=body, headers={"content-type": content_type}
    )
    assert response.status_code in (200, 400, 413), response.text


@FUZZ
@given(document=json_values)
def test_http_json_structures_never_fail_with_5xx(
    running: RunningService, document: object
) -> None:
    response = httpx.post(
        f"{running.otlp_endpoint}/v1/traces",
        content=json.dumps(document).encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code in (200, 400), response.text


@FUZZ
@given(body=bodies)
def test_grpc_answers_ok_or_invalid_argument(running: RunningService, body: bytes) -> None:
    assert running.otlp_grpc_endpoint
    with grpc.insecure_channel(running.otlp_grpc_endpoint) as channel:
        try:
            channel.unary_unary(TRACE_EXPORT)(body, timeout=10)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()


@pytest.mark.parametrize("signal", sorted(SIGNALS))
def test_logs_and_metrics_receivers_never_fail_with_5xx(
    running: RunningService, signal: str
) -> None:
    path, method, signal_bodies = SIGNALS[signal]

    @FUZZ
    @given(body=signal_bodies, content_type=st.sampled_from(["application/x-protobuf"]))
    def over_http(body: bytes, content_type: str) -> None:
        response = httpx.post(
            f"{running.otlp_endpoint}{path}", content=body, headers={"content-type": content_type}
        )
        assert response.status_code in (200, 400, 413), response.text

    @FUZZ
    @given(body=signal_bodies)
    def over_grpc(body: bytes) -> None:
        assert running.otlp_grpc_endpoint
        with grpc.insecure_channel(running.otlp_grpc_endpoint) as channel:
            try:
                channel.unary_unary(method)(body, timeout=10)
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()

    over_http()
    over_grpc()


def test_the_service_survived_with_bounded_memory(running: RunningService) -> None:
    # Runs after the fuzzing above (same module): the service still answers, memory stayed sane.
    ok = httpx.post(
        f"{running.otlp_endpoint}/v1/traces",
        content=_valid(),
        headers={"content-type": "application/x-protobuf"},
    )
    assert ok.status_code == 200
    for path, body in (("/v1/logs", _valid_logs()), ("/v1/metrics", _valid_metrics())):
        response = httpx.post(
            f"{running.otlp_endpoint}{path}",
            content=body,
            headers={"content-type": "application/x-protobuf"},
        )
        assert response.status_code == 200, response.text
    assert running.service.flush(30)
    query = running.service.storage.query
    assert query("SELECT count() FROM otel_logs WHERE Body = 'tool call failed'")[1][0][0] >= 1
    assert query("SELECT count() FROM otel_metrics_sum WHERE MetricName = 'agent.actions'")[1][0][0]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert peak_mib < 1536, f"peak RSS {peak_mib:.0f} MiB"
