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
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agentwatch.collector import RunningService
from agentwatch.collector._grpc import TRACE_EXPORT
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


# Random bytes, and valid bodies with a few bytes flipped, cut or repeated (the interesting cases).
bodies = st.one_of(
    st.binary(max_size=2048),
    st.tuples(st.integers(0, 40), st.binary(min_size=1, max_size=8)).map(
        lambda t: _valid()[: t[0]] + t[1] + _valid()[t[0] :]
    ),
    st.integers(1, 60).map(lambda n: _valid()[:n]),
)
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


def test_the_service_survived_with_bounded_memory(running: RunningService) -> None:
    # Runs after the fuzzing above (same module): the service still answers, memory stayed sane.
    ok = httpx.post(
        f"{running.otlp_endpoint}/v1/traces",
        content=_valid(),
        headers={"content-type": "application/x-protobuf"},
    )
    assert ok.status_code == 200
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert peak_mib < 1536, f"peak RSS {peak_mib:.0f} MiB"
