"""OTLP/gRPC over a real socket, with the real OpenTelemetry gRPC exporter as the client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from agentwatch.collector import RunningService
from agentwatch.collector._grpc import TRACE_EXPORT
from tests.support import local_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def running(data_dir: Path) -> Iterator[RunningService]:
    with RunningService(local_settings(data_dir)) as service:
        yield service


def _call(endpoint: str, body: bytes, metadata: tuple[tuple[str, str], ...] = ()) -> bytes:
    with grpc.insecure_channel(endpoint) as channel:
        export = channel.unary_unary(TRACE_EXPORT)
        return bytes(export(body, metadata=metadata, timeout=10))


def test_the_real_grpc_exporter_delivers_spans(running: RunningService) -> None:
    assert running.otlp_grpc_endpoint
    exporter = OTLPSpanExporter(endpoint=running.otlp_grpc_endpoint, insecure=True)
    provider = TracerProvider(resource=Resource.create({"service.name": "grpc-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("execute_tool search") as span:
        span.set_attribute("gen_ai.operation.name", "execute_tool")
    provider.shutdown()
    assert running.service.flush(10)
    _, rows = running.service.storage.query("SELECT ServiceName, SpanName FROM otel_traces")
    assert rows == [("grpc-agent", "execute_tool search")]


def test_garbage_is_invalid_argument_with_a_reason(running: RunningService) -> None:
    assert running.otlp_grpc_endpoint
    with pytest.raises(grpc.RpcError) as error:
        _call(running.otlp_grpc_endpoint, b"\xff\xff\xff junk")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not an OTLP protobuf" in (error.value.details() or "")


def test_partial_success_names_the_rejected_spans(running: RunningService) -> None:
    assert running.otlp_grpc_endpoint
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="good")
    spans.add(trace_id=b"\x01" * 4, span_id=b"\x02" * 8, name="bad")
    response = ExportTraceServiceResponse()
    response.ParseFromString(_call(running.otlp_grpc_endpoint, request.SerializeToString()))
    assert response.partial_success.rejected_spans == 1


def test_backpressure_is_unavailable_with_retry_info(data_dir: Path) -> None:
    with RunningService(local_settings(data_dir, spool_max_bytes=16)) as running:
        assert running.otlp_grpc_endpoint
        request = ExportTraceServiceRequest()
        spans = request.resource_spans.add().scope_spans.add().spans
        for i in range(2):
            spans.add(trace_id=b"\x01" * 16, span_id=bytes([i + 1]) * 8, name="s")
        with pytest.raises(grpc.RpcError) as error:
            _call(running.otlp_grpc_endpoint, request.SerializeToString())
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        trailers = dict(error.value.trailing_metadata() or ())
        status = status_pb2.Status()
        status.ParseFromString(trailers["grpc-status-details-bin"])
        retry = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(retry)
        assert retry.retry_delay.seconds > 0


def test_ingest_token_applies_to_grpc(data_dir: Path) -> None:
    with RunningService(local_settings(data_dir, ingest_token="tok")) as running:
        assert running.otlp_grpc_endpoint
        body = ExportTraceServiceRequest().SerializeToString()
        with pytest.raises(grpc.RpcError) as error:
            _call(running.otlp_grpc_endpoint, body)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert _call(running.otlp_grpc_endpoint, body, (("authorization", "Bearer tok"),)) == b""
