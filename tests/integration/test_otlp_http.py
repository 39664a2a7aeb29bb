"""OTLP/HTTP over a real socket into embedded ClickHouse, with the real OTel exporter."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from agentwatch.collector import RunningService
from tests.support import local_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def running(data_dir: Path) -> Iterator[RunningService]:
    with RunningService(local_settings(data_dir)) as r:
        yield r


def _count(running: RunningService, where: str = "1") -> int:
    running.service.flush(10)
    return int(
        running.service.storage.query(f"SELECT count() FROM otel_traces WHERE {where}")[1][0][0]
    )


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_the_real_otlp_exporter_delivers_spans(
    running: RunningService, compression: Compression
) -> None:
    exporter = OTLPSpanExporter(
        endpoint=f"{running.otlp_endpoint}/v1/traces", compression=compression
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "plain-otel"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("invoke_agent planner") as span:
        span.set_attribute("gen_ai.operation.name", "invoke_agent")
        span.set_attribute("ratio", 0.25)
        span.set_attribute("tags", ["a", "b"])
    provider.shutdown()
    assert running.service.flush(10)
    _, rows = running.service.storage.query(
        "SELECT ServiceName, SpanAttributes['ratio'], SpanAttributes['tags'] FROM otel_traces"
    )
    assert rows == [("plain-otel", "0.25", '["a","b"]')]


def _json_body(trace_id: str = "5b8efff798038103d269b633813fc60c") -> dict[str, object]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "j"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": "eee19b7ec3c1b174",
                                "name": "execute_tool search",
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                            },
                            {"traceId": trace_id, "spanId": "", "name": "no span id"},
                        ]
                    }
                ],
            }
        ]
    }


def test_json_is_answered_in_json_with_partial_success(running: RunningService) -> None:
    response = httpx.post(
        f"{running.otlp_endpoint}/v1/traces",
        content=gzip.compress(json.dumps(_json_body()).encode()),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "span_id must be 8 bytes" in partial["errorMessage"]
    assert _count(running, "SpanName = 'execute_tool search'") == 1  # its neighbour is kept


def test_undecodable_protobuf_gets_400_with_a_status(running: RunningService) -> None:
    response = httpx.post(
        f"{running.otlp_endpoint}/v1/traces",
        content=b"\xff\xff\xff garbage",
        headers={"content-type": "application/x-protobuf"},
    )
    assert response.status_code == 400
    status = status_pb2.Status()
    status.ParseFromString(response.content)
    assert status.code == 3  # INVALID_ARGUMENT
    assert "not an OTLP protobuf" in status.message


def test_unsupported_content_type_and_encoding_are_refused(running: RunningService) -> None:
    url = f"{running.otlp_endpoint}/v1/traces"
    assert httpx.post(url, content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    response = httpx.post(
        url,
        content=b"x",
        headers={"content-type": "application/json", "content-encoding": "br"},
    )
    assert response.status_code == 400
    assert "Content-Encoding" in response.json()["message"]


def test_a_gzip_bomb_is_refused_before_it_is_inflated(data_dir: Path) -> None:
    settings = local_settings(
        data_dir,
        max_request_bytes=64 * 1024,
    )
    with RunningService(settings) as running:
        bomb = gzip.compress(b"\0" * (10 * 1024 * 1024))
        response = httpx.post(
            f"{running.otlp_endpoint}/v1/traces",
            content=bomb,
            headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"},
        )
        assert response.status_code == 413


def test_a_full_spool_answers_429_with_retry_after_and_stores_nothing(data_dir: Path) -> None:
    settings = local_settings(data_dir, spool_max_bytes=16)
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for i in range(2):
        spans.add(trace_id=b"\x01" * 16, span_id=bytes([i + 1]) * 8, name="s")
    with RunningService(settings) as running:
        response = httpx.post(
            f"{running.otlp_endpoint}/v1/traces",
            content=request.SerializeToString(),
            headers={"content-type": "application/x-protobuf"},
        )
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) > 0
        assert running.service.counters["spans_refused"] == 2
        assert _count(running) == 0


def test_protobuf_response_is_an_export_response(running: RunningService) -> None:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(
        trace_id=b"\x02" * 16, span_id=b"\x03" * 8, name="ok"
    )
    response = httpx.post(
        f"{running.otlp_endpoint}/v1/traces",
        content=request.SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    parsed = ExportTraceServiceResponse()
    parsed.ParseFromString(response.content)
    assert parsed.partial_success.rejected_spans == 0
    assert _count(running) == 1


def test_api_rejects_a_since_without_zone_and_serves_health(running: RunningService) -> None:
    url = f"{running.api_url}/api/v1/anomalies"
    assert httpx.get(url, params={"since": "2026-01-01T00:00:00"}).status_code == 400
    assert httpx.get(url, params={"since": "yesterday"}).status_code == 422  # with its reason
    assert httpx.get(url, params={"since": "2026-01-01T00:00:00Z"}).json() == []
    assert httpx.get(f"{running.api_url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{running.api_url}/readyz").status_code == 200
