"""Logs and metrics end to end: the real OTLP exporters (HTTP, gRPC) into embedded ClickHouse."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetrics,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetrics,
)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from agentwatch.collector import RunningService
from agentwatch.collector._grpc import LOGS_EXPORT, METRICS_EXPORT
from agentwatch.collector._schema_signals import SIGNAL_COLUMNS
from tests.support import local_settings

pytestmark = pytest.mark.integration

NS = 1_000_000_000


@pytest.fixture
def running(data_dir: Path) -> Iterator[RunningService]:
    # Embedded ClickHouse is one engine per process: one service at a time.
    with RunningService(local_settings(data_dir)) as r:
        yield r


def _grpc_error(endpoint: str | None, method: str, body: bytes) -> grpc.RpcError:
    assert endpoint
    with grpc.insecure_channel(endpoint) as channel, pytest.raises(grpc.RpcError) as error:
        channel.unary_unary(method)(body, timeout=10)
    return error.value


def _rows(running: RunningService, sql: str) -> list[tuple[Any, ...]]:
    assert running.service.flush(10)
    return running.service.storage.query(sql)[1]


def _emit_logs(exporter: Any, service: str) -> None:
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    provider.get_logger("agent.logs", "1.0").emit(
        timestamp=1_700_000_000 * NS + 123,
        severity_number=SeverityNumber.WARN,
        severity_text="WARN",
        body={"tool": "search", "n": 2},
        attributes={"gen_ai.system": "openai", "retries": 3},
        event_name="gen_ai.client.inference.operation.details",
    )
    provider.shutdown()


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_the_real_log_exporters_deliver_records(running: RunningService, transport: str) -> None:
    if transport == "http":
        exporter: Any = HttpLogs(
            endpoint=f"{running.otlp_endpoint}/v1/logs", compression=Compression.Gzip
        )
    else:
        exporter = GrpcLogs(endpoint=running.otlp_grpc_endpoint, insecure=True)
    service = f"logs-{transport}"
    _emit_logs(exporter, service)
    rows = _rows(
        running,
        "SELECT toUnixTimestamp64Nano(Timestamp), SeverityText, SeverityNumber, Body,"
        " LogAttributes['gen_ai.system'], LogAttributes['retries'], ScopeName, ScopeVersion,"
        " EventName, TraceId FROM otel_logs"
        f" WHERE ServiceName = '{service}'",
    )
    assert rows == [
        (
            1_700_000_000 * NS + 123,
            "WARN",
            13,
            '{"n":2,"tool":"search"}',
            "openai",
            "3",
            "agent.logs",
            "1.0",
            "gen_ai.client.inference.operation.details",
            "",
        )
    ]


def _metrics(exporter: Any, service: str) -> None:
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": service}),
        metric_readers=[reader],
        views=[View(instrument_name="tokens", aggregation=ExponentialBucketHistogramAggregation())],
    )
    meter = provider.get_meter("agent.meter", "2.0")
    meter.create_counter("tool_calls", unit="1").add(3, {"gen_ai.provider.name": "openai"})
    meter.create_up_down_counter("in_flight").add(-2)
    meter.create_gauge("queue_depth").set(7.5)
    latency = meter.create_histogram("latency", unit="s")
    for value in (0.2, 7.0, 300.0):
        latency.record(value)
    tokens = meter.create_histogram("tokens")
    for value in (1, 10, 100):
        tokens.record(value)
    provider.shutdown()  # collects and exports once


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_the_real_metric_exporters_deliver_every_type(
    running: RunningService, transport: str
) -> None:
    if transport == "http":
        exporter: Any = HttpMetrics(endpoint=f"{running.otlp_endpoint}/v1/metrics")
    else:
        exporter = GrpcMetrics(endpoint=running.otlp_grpc_endpoint, insecure=True)
    service = f"metrics-{transport}"
    _metrics(exporter, service)
    where = f"WHERE ServiceName = '{service}'"
    sums = _rows(
        running,
        "SELECT MetricName, Value, IsMonotonic, AggregationTemporality,"
        f" Attributes['gen_ai.provider.name'], ScopeName FROM otel_metrics_sum {where}"
        " ORDER BY MetricName",
    )
    assert sums == [
        ("in_flight", -2.0, False, 2, "", "agent.meter"),
        ("tool_calls", 3.0, True, 2, "openai", "agent.meter"),
    ]
    gauge = _rows(running, f"SELECT MetricName, Value FROM otel_metrics_gauge {where}")
    assert gauge == [("queue_depth", 7.5)]
    histogram = _rows(
        running,
        "SELECT Count, Sum, Min, Max, length(BucketCounts) = length(ExplicitBounds) + 1,"
        f" arraySum(BucketCounts), MetricUnit FROM otel_metrics_histogram {where}",
    )
    assert histogram == [(3, 307.2, 0.2, 300.0, True, 3, "s")]
    exponential = _rows(
        running,
        "SELECT MetricName, Count, Sum, Scale <= 20,"
        " arraySum(PositiveBucketCounts) + ZeroCount"
        f" FROM otel_metrics_exponential_histogram {where}",
    )
    assert exponential == [("tokens", 3, 111.0, True, 3)]


def test_json_gzip_logs_and_metrics_answer_partial_success(running: RunningService) -> None:
    logs = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]
                },
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "observedTimeUnixNano": "1700000000000000000",
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "body": {"stringValue": "kept"},
                                "flags": 1,
                            },
                            {"body": {"stringValue": "dropped"}, "spanId": "ee"},
                        ]
                    }
                ],
            }
        ]
    }
    response = httpx.post(
        f"{running.otlp_endpoint}/v1/logs",
        content=gzip.compress(json.dumps(logs).encode()),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1"
    assert "span_id must be 8 bytes" in partial["errorMessage"]
    assert _rows(
        running,
        "SELECT Body, TraceId, SpanId, TraceFlags, toUnixTimestamp64Nano(Timestamp)"
        " FROM otel_logs WHERE ServiceName = 'json-svc'",
    ) == [("kept", "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", 1, 1700000000 * NS)]

    metrics = {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]
                },
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "rpc_latency",
                                "summary": {
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": "1700000000500000000",
                                            "count": "4",
                                            "sum": 2.0,
                                            "quantileValues": [{"quantile": 0.99, "value": 1.5}],
                                        }
                                    ]
                                },
                            },
                            {
                                "name": "bad_histogram",
                                "histogram": {
                                    "dataPoints": [{"bucketCounts": ["1"], "explicitBounds": [1]}]
                                },
                            },
                        ]
                    }
                ],
            }
        ]
    }
    response = httpx.post(
        f"{running.otlp_endpoint}/v1/metrics",
        content=json.dumps(metrics).encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedDataPoints"] == "1"
    assert _rows(
        running,
        "SELECT MetricName, Count, Sum, ValueAtQuantiles.Quantile, ValueAtQuantiles.Value,"
        " toUnixTimestamp(TimeUnix) FROM otel_metrics_summary WHERE ServiceName = 'json-svc'",
    ) == [("rpc_latency", 4, 2.0, [0.99], [1.5], 1700000000)]
    bad = "SELECT count() FROM otel_metrics_histogram WHERE MetricName = 'bad_histogram'"
    assert _rows(running, bad) == [(0,)]
    # Every outcome is counted in Prometheus too.
    text = httpx.get(f"{running.api_url}/metrics").text
    assert 'agentwatch_collector_log_records_total{outcome="rejected"} 1.0' in text
    assert 'agentwatch_collector_log_records_total{outcome="accepted"} 1.0' in text
    assert 'agentwatch_collector_data_points_total{outcome="rejected"} 1.0' in text


def test_undecodable_logs_get_400_and_grpc_invalid_argument(running: RunningService) -> None:
    response = httpx.post(
        f"{running.otlp_endpoint}/v1/metrics",
        content=b"\xff\xff\xff junk",
        headers={"content-type": "application/x-protobuf"},
    )
    assert response.status_code == 400
    error = _grpc_error(running.otlp_grpc_endpoint, LOGS_EXPORT, b"\xff\xff\xff junk")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ExportLogsServiceRequest" in (error.details() or "")


def test_every_insert_column_exists_in_its_table(running: RunningService) -> None:
    for table, columns in SIGNAL_COLUMNS.items():
        names = {
            row[0]
            for row in running.service.storage.query(
                "SELECT name FROM system.columns WHERE database = currentDatabase()"
                f" AND table = '{table}'"
            )[1]
        }
        assert set(columns) <= names, table


def test_a_full_spool_refuses_logs_and_metrics_and_stores_nothing(data_dir: Path) -> None:
    logs = ExportLogsServiceRequest()
    logs.resource_logs.add().scope_logs.add().log_records.add(event_name="x" * 64)
    metrics = ExportMetricsServiceRequest()
    point = metrics.resource_metrics.add().scope_metrics.add().metrics.add(name="m" * 64)
    point.gauge.data_points.add(as_int=1)
    with RunningService(local_settings(data_dir, spool_max_bytes=16)) as running:
        response = httpx.post(
            f"{running.otlp_endpoint}/v1/logs",
            content=logs.SerializeToString(),
            headers={"content-type": "application/x-protobuf"},
        )
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) > 0
        body = metrics.SerializeToString()
        error = _grpc_error(running.otlp_grpc_endpoint, METRICS_EXPORT, body)
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        counters = running.service.counters
        assert (counters["log_records_refused"], counters["data_points_refused"]) == (1, 1)
        assert _rows(running, "SELECT count() FROM otel_logs") == [(0,)]


def test_ingest_token_guards_logs_and_metrics(data_dir: Path) -> None:
    body = ExportLogsServiceRequest().SerializeToString()
    with RunningService(local_settings(data_dir, ingest_token="tok")) as running:
        url = f"{running.otlp_endpoint}/v1/logs"
        headers = {"content-type": "application/x-protobuf"}
        assert httpx.post(url, content=body, headers=headers).status_code == 401
        ok = httpx.post(url, content=body, headers={**headers, "authorization": "Bearer tok"})
        assert ok.status_code == 200
        partial = ExportLogsServiceResponse.FromString(ok.content).partial_success
        assert partial.rejected_log_records == 0
        error = _grpc_error(running.otlp_grpc_endpoint, METRICS_EXPORT, body)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_logs_and_metrics_survive_a_restart_through_the_spool(data_dir: Path) -> None:
    logs = ExportLogsServiceRequest()
    resource_logs = logs.resource_logs.add()
    resource_logs.resource.attributes.add(key="service.name").value.string_value = "replayed"
    for i in range(3):
        resource_logs.scope_logs.add().log_records.add(time_unix_nano=(i + 1) * NS)
    settings = local_settings(data_dir)
    with RunningService(settings) as running:
        running.service.signals.drains["otel_logs"].shutdown(0)  # stop draining: spool only
        response = httpx.post(
            f"{running.otlp_endpoint}/v1/logs",
            content=logs.SerializeToString(),
            headers={"content-type": "application/x-protobuf"},
        )
        assert response.status_code == 200
    with RunningService(settings) as running:
        assert _rows(running, "SELECT count() FROM otel_logs WHERE ServiceName = 'replayed'") == [
            (3,)
        ]
