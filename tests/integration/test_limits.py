"""Configurable limits: refused with the reason, counted by reason, neighbours kept."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from agentwatch.collector import RunningService
from agentwatch.collector._grpc import TRACE_EXPORT
from tests.support import local_settings

pytestmark = pytest.mark.integration
PROTOBUF = {"content-type": "application/x-protobuf"}


@pytest.fixture
def running(data_dir: Path) -> Iterator[RunningService]:
    settings = local_settings(
        data_dir, max_spans_per_request=3, max_attributes_per_span=2, max_attribute_value_length=10
    )
    with RunningService(settings) as service:
        yield service


def _request(spans: list[dict[str, str]], resource: dict[str, str] | None = None) -> bytes:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    for key, value in (resource or {"service.name": "svc"}).items():
        rs.resource.attributes.add(key=key, value=AnyValue(string_value=value))
    out = rs.scope_spans.add().spans
    for i, attributes in enumerate(spans):
        span = out.add(trace_id=b"\x01" * 16, span_id=bytes([i + 1]) * 8, name=f"s{i}")
        for key, value in attributes.items():
            span.attributes.add(key=key, value=AnyValue(string_value=value))
    return request.SerializeToString()


def _post(running: RunningService, body: bytes) -> httpx.Response:
    return httpx.post(f"{running.otlp_endpoint}/v1/traces", content=body, headers=PROTOBUF)


def _names(running: RunningService) -> list[str]:
    assert running.service.flush(10)
    return [
        r[0]
        for r in running.service.storage.query(
            "SELECT SpanName FROM otel_traces ORDER BY SpanName"
        )[1]
    ]


def test_too_many_spans_refuse_the_request_with_the_reason(running: RunningService) -> None:
    response = _post(running, _request([{}] * 4))
    assert response.status_code == 400
    assert b"request has 4 spans; the limit is 3" in response.content
    assert running.otlp_grpc_endpoint
    with (
        grpc.insecure_channel(running.otlp_grpc_endpoint) as channel,
        pytest.raises(grpc.RpcError) as error,
    ):
        channel.unary_unary(TRACE_EXPORT)(_request([{}] * 4), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    text = httpx.get(f"{running.api_url}/metrics").text
    assert 'agentwatch_collector_requests_rejected_total{reason="too_many_spans"} 2.0' in text
    assert _names(running) == []


def test_spans_over_a_limit_are_rejected_and_their_neighbours_kept(running: RunningService) -> None:
    body = _request([{"a": "1"}, {"a": "1", "b": "2", "c": "3"}, {"long": "x" * 11}])
    response = _post(running, body)
    assert response.status_code == 200
    parsed = ExportTraceServiceResponse()
    parsed.ParseFromString(response.content)
    assert parsed.partial_success.rejected_spans == 2
    assert "has 3 attributes; the limit is 2" in parsed.partial_success.error_message
    assert "'long' is 11 characters; the limit is 10" in parsed.partial_success.error_message
    assert _names(running) == ["s0"]
    text = httpx.get(f"{running.api_url}/metrics").text
    assert 'agentwatch_collector_spans_rejected_total{reason="too_many_attributes"} 1.0' in text
    assert 'agentwatch_collector_spans_rejected_total{reason="value_too_long"} 1.0' in text


def test_a_resource_over_a_limit_rejects_its_spans(running: RunningService) -> None:
    body = _request([{}, {}], resource={"service.name": "s" * 11})
    response = _post(running, body)
    parsed = ExportTraceServiceResponse()
    parsed.ParseFromString(response.content)
    assert parsed.partial_success.rejected_spans == 2
    assert "resource attribute 'service.name'" in parsed.partial_success.error_message
    assert _names(running) == []


def test_a_decoder_process_gives_the_same_answers(data_dir: Path) -> None:
    settings = local_settings(data_dir, decode_workers=1, max_spans_per_request=3)
    with RunningService(settings) as running:
        assert running.service.decoders is not None
        too_many = _post(running, _request([{}] * 4))
        assert too_many.status_code == 400
        assert b"the limit is 3" in too_many.content
        response = _post(running, _request([{"a": "1"}, {}]))
        assert response.status_code == 200
        assert _names(running) == ["s0", "s1"]


def test_a_decoder_process_refuses_garbage_with_the_reason(data_dir: Path) -> None:
    with RunningService(local_settings(data_dir, decode_workers=1)) as running:
        response = _post(running, b"\xff\xff\xff not protobuf")
        assert response.status_code == 400
        assert b"not an OTLP protobuf" in response.content
        assert running.otlp_grpc_endpoint
        with (
            grpc.insecure_channel(running.otlp_grpc_endpoint) as channel,
            pytest.raises(grpc.RpcError) as error,
        ):
            channel.unary_unary(TRACE_EXPORT)(b"\xff\xff\xff", timeout=10)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        text = httpx.get(f"{running.api_url}/metrics").text
        assert 'agentwatch_collector_requests_rejected_total{reason="malformed"} 2.0' in text


def test_a_dead_decoder_process_is_replaced_and_its_request_retryable(data_dir: Path) -> None:
    with RunningService(local_settings(data_dir, decode_workers=1)) as running:
        pool = running.service.decoders
        assert pool is not None
        [process] = pool.processes
        process.kill()
        process.join(10)
        refused = _post(running, _request([{"a": "1"}]))
        assert refused.status_code == 429
        assert refused.headers["Retry-After"]
        assert b"decoder process died" in refused.content
        accepted = _post(running, _request([{"a": "1"}, {}]))  # a fresh process took over
        assert accepted.status_code == 200
        assert pool.processes[0].pid != process.pid
        assert _names(running) == ["s0", "s1"]


def test_a_detection_backlog_is_bounded_in_events_and_stores_every_span(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("agentwatch.collector._service.MAX_QUEUED_EVENTS", 3)
    with RunningService(local_settings(data_dir)) as running:
        service = running.service
        with service._pipeline_lock:  # detection stalls: its backlog builds up
            assert _post(running, _request([{}, {}])).status_code == 200  # 2 queued
            assert _post(running, _request([{}, {}])).status_code == 200  # 4 > 3: not scored
            assert service.counters["detection_events_dropped"] == 2
        assert _names(running) == ["s0", "s0", "s1", "s1"]  # stored all the same
        assert _post(running, _request([{}, {}, {}])).status_code == 200  # room again
        assert service.flush(10)
        assert service.counters["detection_events_dropped"] == 2


def test_requests_beyond_the_inflight_limit_get_429_before_their_body_is_read(
    data_dir: Path,
) -> None:
    with RunningService(local_settings(data_dir, max_inflight_requests=1)) as running:
        release = threading.Event()
        started = threading.Event()

        def slow_body() -> Iterator[bytes]:
            yield b""  # the request is in flight from here on
            started.set()
            assert release.wait(30)
            yield _request([{}])

        with httpx.Client(timeout=30) as slow_client:
            results: list[httpx.Response] = []
            thread = threading.Thread(
                target=lambda: results.append(
                    slow_client.post(
                        f"{running.otlp_endpoint}/v1/traces", content=slow_body(), headers=PROTOBUF
                    )
                )
            )
            thread.start()
            assert started.wait(30)
            metrics = running.service.metrics.registry
            in_flight = "agentwatch_otlp_http_requests_in_flight"
            deadline = time.monotonic() + 10
            # Until the slow request is admitted (its first chunk may still be on its way):
            # the gauge operators would watch says when.
            while metrics.get_sample_value(in_flight) != 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert metrics.get_sample_value(in_flight) == 1
            refused = _post(running, _request([{}]))
            assert refused.status_code == 429
            assert refused.headers["Retry-After"]
            assert b"in flight" in refused.content
            release.set()
            thread.join(30)
        assert [r.status_code for r in results] == [200]
        assert metrics.get_sample_value(in_flight) == 0
        assert _post(running, _request([{}])).status_code == 200  # admitted again


def test_an_oversize_body_is_refused_without_a_content_length_too(data_dir: Path) -> None:
    with RunningService(local_settings(data_dir, max_request_bytes=64 * 1024)) as running:

        def chunks() -> Iterator[bytes]:  # chunked transfer: no Content-Length to go by
            for _ in range(100):
                yield b"\x00" * 4096

        response = httpx.post(
            f"{running.otlp_endpoint}/v1/traces", content=chunks(), headers=PROTOBUF
        )
        assert response.status_code == 413
        assert b"exceeds 65536 bytes" in response.content
        assert _post(running, _request([{}])).status_code == 200
