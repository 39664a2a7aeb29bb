"""OTLP logs and metrics -> rows of the exporter's tables; spool records; GenAI name fallback."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from agentwatch.collector import OtlpDecodeError, decode_request
from agentwatch.collector._normalize import GEN_AI_PROVIDER_NAME, GEN_AI_SYSTEM, to_event
from agentwatch.collector._otlp_logs import logs_request_to_rows
from agentwatch.collector._otlp_metrics import metrics_request_to_rows, split_by_table
from agentwatch.collector._schema import TRACE_COLUMNS
from agentwatch.collector._schema_signals import (
    EXP_HISTOGRAM_COLUMNS,
    EXP_HISTOGRAM_TABLE,
    GAUGE_COLUMNS,
    GAUGE_TABLE,
    HISTOGRAM_COLUMNS,
    HISTOGRAM_TABLE,
    LOG_COLUMNS,
    LOGS_TABLE,
    SUM_COLUMNS,
    SUM_TABLE,
    SUMMARY_COLUMNS,
    SUMMARY_TABLE,
)
from agentwatch.collector._signals import LOGS_RECORD, METRICS_RECORD, decode_signal_record
from agentwatch.detectors import EventKind
from tests.unit.collector.test_otlp import _any, _expected, attribute_maps

LOG = {name: i for i, name in enumerate(LOG_COLUMNS)}
NS = 1_000_000_000


def _kvs(values: dict[str, object]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_any(v)) for k, v in values.items()]


bodies = st.one_of(
    st.text(max_size=20), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.booleans()
)


@settings(max_examples=60, deadline=None)
@given(
    resource=attribute_maps,
    scope_attributes=attribute_maps,
    records=st.lists(
        st.tuples(
            attribute_maps,
            bodies,
            st.integers(min_value=0, max_value=2**62),
            st.integers(min_value=0, max_value=2**62),
            st.integers(min_value=0, max_value=24),
            st.integers(min_value=0, max_value=2**32 - 1),
            st.text(max_size=8),
        ),
        min_size=1,
        max_size=5,
    ),
)
def test_every_log_record_maps_to_one_row_in_exporter_form(
    resource: dict[str, object],
    scope_attributes: dict[str, object],
    records: list[tuple[dict[str, object], object, int, int, int, int, str]],
) -> None:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add(schema_url="https://res")
    rl.resource.attributes.extend(_kvs(resource))
    sl = rl.scope_logs.add(schema_url="https://scope")
    sl.scope.name, sl.scope.version = "agent.logs", "1.2"
    sl.scope.attributes.extend(_kvs(scope_attributes))
    for i, (attributes, body, time, observed, severity, flags, event) in enumerate(records):
        record = sl.log_records.add(
            time_unix_nano=time,
            observed_time_unix_nano=observed,
            severity_number=severity,  # type: ignore[arg-type]  # the proto enum takes an int
            severity_text="WARN",
            body=_any(body),
            flags=flags,
            trace_id=bytes([i + 1]) * 16 if i % 2 else b"",
            span_id=bytes([i + 1]) * 8 if i % 2 else b"",
            event_name=event,
        )
        record.attributes.extend(_kvs(attributes))
    decoded = logs_request_to_rows(request)
    assert decoded.rejected == 0
    assert len(decoded.rows) == len(records)
    for i, (row, (attributes, body, time, observed, severity, flags, event)) in enumerate(
        zip(decoded.rows, records, strict=True)
    ):
        assert len(row) == len(LOG_COLUMNS)
        assert row[LOG["Timestamp"]] == (time or observed)
        assert row[LOG["TraceId"]] == (f"{i + 1:02x}" * 16 if i % 2 else "")
        assert row[LOG["SpanId"]] == (f"{i + 1:02x}" * 8 if i % 2 else "")
        assert row[LOG["TraceFlags"]] == flags & 0xFF
        assert row[LOG["SeverityNumber"]] == severity
        assert row[LOG["SeverityText"]] == "WARN"
        assert row[LOG["Body"]] == _expected(body)
        assert row[LOG["ServiceName"]] == _expected(resource.get("service.name", ""))
        assert row[LOG["ResourceAttributes"]] == {k: _expected(v) for k, v in resource.items()}
        assert row[LOG["ScopeAttributes"]] == {k: _expected(v) for k, v in scope_attributes.items()}
        assert row[LOG["LogAttributes"]] == {k: _expected(v) for k, v in attributes.items()}
        assert row[LOG["ResourceSchemaUrl"]] == "https://res"
        assert row[LOG["ScopeSchemaUrl"]] == "https://scope"
        assert (row[LOG["ScopeName"]], row[LOG["ScopeVersion"]]) == ("agent.logs", "1.2")
        assert row[LOG["EventName"]] == event


def test_log_records_with_bad_ids_are_rejected_and_neighbours_kept() -> None:
    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    records.add(body=AnyValue(string_value="good"))
    records.add(body=AnyValue(string_value="bad"), trace_id=b"\x01" * 3)
    records.add(body=AnyValue(string_value="bad too"), span_id=b"\x01" * 9)
    decoded = logs_request_to_rows(request)
    assert [row[LOG["Body"]] for row in decoded.rows] == ["good"]
    assert decoded.rejected == 2
    assert "trace_id must be 16 bytes" in decoded.errors[0]


def test_log_json_uses_hex_ids_and_a_kvlist_body_is_json() -> None:
    body = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1544712660000000000",
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "severityNumber": "SEVERITY_NUMBER_ERROR",
                                "body": {
                                    "kvlistValue": {
                                        "values": [{"key": "b", "value": {"intValue": "2"}}]
                                    }
                                },
                            }
                        ]
                    }
                ]
            }
        ]
    }
    request = decode_request(
        json.dumps(body).encode(), "application/json", ExportLogsServiceRequest
    )
    (row,) = logs_request_to_rows(request).rows
    assert row[LOG["TraceId"]] == "5b8efff798038103d269b633813fc60c"
    assert row[LOG["SpanId"]] == "eee19b7ec3c1b174"
    assert row[LOG["SeverityNumber"]] == 17
    assert row[LOG["Body"]] == '{"b":2}'


def _scope(request: ExportMetricsServiceRequest, resource: dict[str, object]) -> object:
    rm = request.resource_metrics.add(schema_url="https://res")
    rm.resource.attributes.extend(_kvs(resource))
    sm = rm.scope_metrics.add(schema_url="https://scope")
    sm.scope.name, sm.scope.version, sm.scope.dropped_attributes_count = "meter", "0.1", 3
    return sm


numbers = st.one_of(
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
)


@settings(max_examples=50, deadline=None)
@given(
    resource=attribute_maps,
    points=st.lists(
        st.tuples(
            attribute_maps,
            numbers,
            st.integers(min_value=0, max_value=2**32 - 1),
            st.integers(min_value=0, max_value=2**32 - 1),
        ),
        min_size=1,
        max_size=4,
    ),
    monotonic=st.booleans(),
)
def test_gauge_and_sum_points_map_to_their_tables(
    resource: dict[str, object],
    points: list[tuple[dict[str, object], int | float, int, int]],
    monotonic: bool,
) -> None:
    request = ExportMetricsServiceRequest()
    sm = _scope(request, resource)
    gauge = sm.metrics.add(name="g", description="a gauge", unit="1")  # type: ignore[attr-defined]
    total = sm.metrics.add(name="s", unit="By")  # type: ignore[attr-defined]
    total.sum.aggregation_temporality = 2
    total.sum.is_monotonic = monotonic
    for attributes, value, start_s, time_s in points:
        for data in (gauge.gauge, total.sum):
            point = data.data_points.add(
                start_time_unix_nano=start_s * NS + 999, time_unix_nano=time_s * NS + 5, flags=1
            )
            if isinstance(value, int):
                point.as_int = value
            else:
                point.as_double = value
            point.attributes.extend(_kvs(attributes))
    decoded = metrics_request_to_rows(request)
    assert decoded.rejected == 0
    assert set(decoded.rows) == {GAUGE_TABLE, SUM_TABLE}
    g = {name: i for i, name in enumerate(GAUGE_COLUMNS)}
    s = {name: i for i, name in enumerate(SUM_COLUMNS)}
    for (attributes, value, start_s, time_s), gauge_row, sum_row in zip(
        points, decoded.rows[GAUGE_TABLE], decoded.rows[SUM_TABLE], strict=True
    ):
        assert len(gauge_row) == len(GAUGE_COLUMNS) and len(sum_row) == len(SUM_COLUMNS)
        assert gauge_row[g["Value"]] == float(value) == sum_row[s["Value"]]
        assert gauge_row[g["StartTimeUnix"]] == start_s and gauge_row[g["TimeUnix"]] == time_s
        assert gauge_row[g["Attributes"]] == {k: _expected(v) for k, v in attributes.items()}
        assert gauge_row[g["ServiceName"]] == _expected(resource.get("service.name", ""))
        assert (gauge_row[g["MetricName"]], gauge_row[g["MetricDescription"]]) == ("g", "a gauge")
        assert gauge_row[g["ScopeDroppedAttrCount"]] == 3
        assert gauge_row[g["Flags"]] == 1
        assert sum_row[s["AggregationTemporality"]] == 2
        assert sum_row[s["IsMonotonic"]] is monotonic
        assert sum_row[s["MetricUnit"]] == "By"


def test_histograms_summaries_and_exemplars_keep_the_exporter_shapes() -> None:
    request = ExportMetricsServiceRequest()
    sm = _scope(request, {"service.name": "svc"})
    histogram = sm.metrics.add(name="latency").histogram  # type: ignore[attr-defined]
    histogram.aggregation_temporality = 1
    point = histogram.data_points.add(
        count=3, sum=1.5, bucket_counts=[1, 2, 0], explicit_bounds=[0.5, 1.0], min=0.1, max=0.9
    )
    point.exemplars.add(time_unix_nano=7 * NS, as_int=4, span_id=b"\x01" * 8)
    histogram.data_points.add(count=1, bucket_counts=[1, 1], explicit_bounds=[1.0, 2.0])
    exp = sm.metrics.add(name="exp").exponential_histogram  # type: ignore[attr-defined]
    e = exp.data_points.add(count=4, scale=-2, zero_count=1)
    e.positive.offset, e.negative.offset = 3, -1
    e.positive.bucket_counts.extend([1, 2])
    summary = sm.metrics.add(name="q").summary  # type: ignore[attr-defined]
    summary.data_points.add(count=2, sum=3.0).quantile_values.add(quantile=0.5, value=1.25)
    sm.metrics.add(name="empty")  # type: ignore[attr-defined]  # no data: skipped
    decoded = metrics_request_to_rows(request)
    assert decoded.rejected == 1
    assert "len(explicit_bounds) + 1" in decoded.errors[0]
    assert decoded.data_points == 3
    h = {name: i for i, name in enumerate(HISTOGRAM_COLUMNS)}
    (row,) = decoded.rows[HISTOGRAM_TABLE]
    assert row[h["BucketCounts"]] == [1, 2, 0] and row[h["ExplicitBounds"]] == [0.5, 1.0]
    assert (row[h["Count"]], row[h["Sum"]], row[h["Min"]], row[h["Max"]]) == (3, 1.5, 0.1, 0.9)
    assert row[h["AggregationTemporality"]] == 1
    assert row[h["Exemplars.Value"]] == [4.0] and row[h["Exemplars.TimeUnix"]] == [7]
    assert row[h["Exemplars.SpanId"]] == ["01" * 8]
    assert row[h["Exemplars.TraceId"]] == ["0" * 32]  # hex of the zero id, as the exporter
    x = {name: i for i, name in enumerate(EXP_HISTOGRAM_COLUMNS)}
    (row,) = decoded.rows[EXP_HISTOGRAM_TABLE]
    assert (row[x["Scale"]], row[x["ZeroCount"]], row[x["PositiveOffset"]]) == (-2, 1, 3)
    assert row[x["PositiveBucketCounts"]] == [1, 2] and row[x["NegativeOffset"]] == -1
    q = {name: i for i, name in enumerate(SUMMARY_COLUMNS)}
    (row,) = decoded.rows[SUMMARY_TABLE]
    assert row[q["ValueAtQuantiles.Quantile"]] == [0.5]
    assert row[q["ValueAtQuantiles.Value"]] == [1.25]


def test_exemplar_ids_in_json_are_hex_and_bad_ones_reject_the_point() -> None:
    body = {
        "resourceMetrics": [
            {
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "g",
                                "gauge": {
                                    "dataPoints": [
                                        {
                                            "asDouble": 1.0,
                                            "exemplars": [
                                                {
                                                    "asDouble": 2.0,
                                                    "traceId": "5b8efff798038103d269b633813fc60c",
                                                    "spanId": "eee19b7ec3c1b174",
                                                }
                                            ],
                                        },
                                        {"asInt": "2", "exemplars": [{"spanId": "01"}]},
                                    ]
                                },
                            }
                        ]
                    }
                ]
            }
        ]
    }
    request = decode_request(
        json.dumps(body).encode(), "application/json", ExportMetricsServiceRequest
    )
    decoded = metrics_request_to_rows(request)
    g = {name: i for i, name in enumerate(GAUGE_COLUMNS)}
    (row,) = decoded.rows[GAUGE_TABLE]
    assert row[g["Exemplars.TraceId"]] == ["5b8efff798038103d269b633813fc60c"]
    assert decoded.rejected == 1 and "span_id must be 8 bytes" in decoded.errors[0]


def test_split_by_table_and_spool_records_round_trip() -> None:
    request = ExportMetricsServiceRequest()
    sm = _scope(request, {"service.name": "svc"})
    sm.metrics.add(name="g").gauge.data_points.add(as_int=1)  # type: ignore[attr-defined]
    sm.metrics.add(name="s").sum.data_points.add(as_int=2)  # type: ignore[attr-defined]
    sm.metrics.add(name="g2").gauge.data_points.add(as_int=3)  # type: ignore[attr-defined]
    rows = metrics_request_to_rows(request).rows
    parts = split_by_table(request)
    assert set(parts) == {GAUGE_TABLE, SUM_TABLE}
    for table, part in parts.items():
        record = decode_signal_record(METRICS_RECORD + part.SerializeToString())
        assert record == {table: rows[table]}
    logs = ExportLogsServiceRequest()
    logs.resource_logs.add().scope_logs.add().log_records.add(event_name="e")
    (log_rows,) = decode_signal_record(LOGS_RECORD + logs.SerializeToString()).values()
    assert log_rows[0][LOG["EventName"]] == "e"
    with pytest.raises(ValueError, match="tag"):
        decode_signal_record(b"p")


@pytest.mark.parametrize("depth", [5_000])
def test_deeply_nested_json_is_a_decode_error_not_a_crash(depth: int) -> None:
    body = ('{"resourceLogs": ' + "[" * depth + "]" * depth + "}").encode()
    with pytest.raises(OtlpDecodeError):
        decode_request(body, "application/json", ExportLogsServiceRequest)


def test_log_and_metric_tables_are_named_as_the_exporter_names_them() -> None:
    assert LOGS_TABLE == "otel_logs"
    assert {GAUGE_TABLE, SUM_TABLE, HISTOGRAM_TABLE, EXP_HISTOGRAM_TABLE, SUMMARY_TABLE} == {
        "otel_metrics_gauge",
        "otel_metrics_sum",
        "otel_metrics_histogram",
        "otel_metrics_exponential_histogram",
        "otel_metrics_summary",
    }


def _span_row(attributes: dict[str, str]) -> list[object]:
    row: list[object] = [""] * len(TRACE_COLUMNS)
    col = {name: i for i, name in enumerate(TRACE_COLUMNS)}
    row[col["Timestamp"]] = 1
    row[col["ResourceAttributes"]] = {"service.name": "svc"}
    row[col["SpanAttributes"]] = attributes
    row[col["SpanName"]] = "chat gpt-4o"
    return row


@pytest.mark.parametrize("key", [GEN_AI_PROVIDER_NAME, GEN_AI_SYSTEM])
def test_old_and_new_genai_provider_names_both_mark_a_model_call(key: str) -> None:
    assert to_event(_span_row({key: "openai"})).kind is EventKind.MODEL
    assert to_event(_span_row({})).kind is EventKind.OTHER
