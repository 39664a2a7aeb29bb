"""OTLP -> otel_traces rows: the exporter's stringification and column mapping."""

from __future__ import annotations

import base64
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from agentwatch.collector import OtlpDecodeError, as_string, decode_request, request_to_rows
from agentwatch.collector._otlp import format_double
from agentwatch.collector._schema import TRACE_COLUMNS

COL = {name: i for i, name in enumerate(TRACE_COLUMNS)}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (0.5, "0.5"),
        (-2.25, "-2.25"),
        (100.0, "100"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e300, "1.5e+300"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (1.25e-10, "1.25e-10"),
        (0.0, "0"),
        (math.inf, "json: unsupported value: +Inf"),
        (math.nan, "json: unsupported value: NaN"),
    ],
)
def test_doubles_are_formatted_as_pdata_does(value: float, expected: str) -> None:
    assert format_double(value) == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_double_strings_round_trip_and_use_es6_notation(value: float) -> None:
    text = format_double(value)
    assert float(text) == value
    magnitude = abs(value)
    assert ("e" in text) == (magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21))
    assert not text.endswith(".0")


def _any(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[_any(v) for v in value]))
    if isinstance(value, dict):
        kvs = [KeyValue(key=k, value=_any(v)) for k, v in value.items()]
        return AnyValue(kvlist_value=KeyValueList(values=kvs))
    assert isinstance(value, str)
    return AnyValue(string_value=value)


def test_scalar_and_composite_values_are_stringified_like_as_string() -> None:
    assert as_string(_any("héllo")) == "héllo"
    assert as_string(_any(True)) == "true"
    assert as_string(_any(-42)) == "-42"
    assert as_string(_any(b"\x00\xff")) == "AP8="
    assert as_string(AnyValue()) == ""
    assert as_string(_any([1, "a", 2.5, True])) == '[1,"a",2.5,true]'
    nested = {"z": 1, "a": {"y": [1.0, None]}, "é": "<&>"}
    nested_value = _any({"z": 1, "a": {"y": [1.0]}, "é": "<&>"})
    nested_value.kvlist_value.values[1].value.kvlist_value.values[0].value.array_value.values.add()
    assert as_string(nested_value) == '{"a":{"y":[1,null]},"z":1,"é":"<&>"}'
    assert nested  # the literal above documents the input


scalars = st.one_of(
    st.text(max_size=20),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.binary(max_size=16),
)
attribute_maps = st.dictionaries(st.text(min_size=1, max_size=12), scalars, max_size=6)


def _expected(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    assert isinstance(value, str)
    return value


@settings(max_examples=60, deadline=None)
@given(
    resource=attribute_maps,
    spans=st.lists(
        st.tuples(
            attribute_maps,
            st.integers(min_value=0, max_value=2**62),
            st.integers(min_value=0, max_value=10**12),
            st.sampled_from([0, 1, 2, 3, 4, 5]),
            st.sampled_from([0, 1, 2]),
        ),
        min_size=1,
        max_size=5,
    ),
)
def test_every_span_maps_to_one_row_in_exporter_form(
    resource: dict[str, object], spans: list[tuple[dict[str, object], int, int, int, int]]
) -> None:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(KeyValue(key=k, value=_any(v)) for k, v in resource.items())
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "agentwatch.sdk", "0.1.0"
    for i, (attributes, start, duration, kind, status) in enumerate(spans):
        span = ss.spans.add(
            trace_id=bytes([i + 1]) * 16,
            span_id=bytes([i + 1]) * 8,
            name=f"execute_tool t{i}",
            kind=kind,
            start_time_unix_nano=start,
            end_time_unix_nano=start + duration,
            status=Status(code=status, message="m" if status == 2 else ""),
        )
        span.attributes.extend(KeyValue(key=k, value=_any(v)) for k, v in attributes.items())
        span.events.add(time_unix_nano=start + 1, name="ev").attributes.add(
            key="n", value=AnyValue(int_value=i)
        )
    decoded = request_to_rows(request)
    assert decoded.rejected == 0
    assert len(decoded.rows) == len(spans)
    for i, (row, (attributes, start, duration, kind, status)) in enumerate(
        zip(decoded.rows, spans, strict=True)
    ):
        assert len(row) == len(TRACE_COLUMNS)
        assert row[COL["Timestamp"]] == start
        assert row[COL["TraceId"]] == f"{i + 1:02x}" * 16
        assert row[COL["SpanId"]] == f"{i + 1:02x}" * 8
        assert row[COL["ParentSpanId"]] == ""
        assert row[COL["Duration"]] == duration
        assert row[COL["SpanKind"]] == (
            "Unspecified", "Internal", "Server", "Client", "Producer", "Consumer"
        )[kind]  # fmt: skip
        assert row[COL["StatusCode"]] == ("Unset", "Ok", "Error")[status]
        assert row[COL["SpanAttributes"]] == {k: _expected(v) for k, v in attributes.items()}
        assert row[COL["ResourceAttributes"]] == {k: _expected(v) for k, v in resource.items()}
        assert row[COL["ServiceName"]] == _expected(resource.get("service.name", ""))
        assert row[COL["ScopeName"]] == "agentwatch.sdk"
        assert row[COL["Events.Name"]] == ["ev"]
        assert row[COL["Events.Attributes"]] == [{"n": str(i)}]


def test_invalid_spans_are_rejected_and_their_neighbours_kept() -> None:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="good")
    spans.add(trace_id=b"\x01" * 3, span_id=b"\x02" * 8, name="short trace id")
    spans.add(trace_id=b"\x01" * 16, span_id=b"", name="no span id")
    decoded = request_to_rows(request)
    assert [r[COL["SpanName"]] for r in decoded.rows] == ["good"]
    assert decoded.rejected == 2
    assert "trace_id must be 16 bytes" in decoded.errors[0]


def test_json_bodies_use_hex_ids_as_otlp_json_specifies() -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "execute_tool search",
                                "kind": 1,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "attributes": [{"key": "n", "value": {"intValue": "7"}}],
                                "unknownField": True,
                            }
                        ]
                    }
                ],
            }
        ]
    }
    rows = request_to_rows(decode_request(json.dumps(body).encode(), "application/json")).rows
    assert rows[0][COL["TraceId"]] == "5b8efff798038103d269b633813fc60c"
    assert rows[0][COL["SpanId"]] == "eee19b7ec3c1b174"
    assert rows[0][COL["Timestamp"]] == 1544712660000000000
    assert rows[0][COL["SpanAttributes"]] == {"n": "7"}
    assert rows[0][COL["ServiceName"]] == "svc"


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"\xff\x00garbage", "application/x-protobuf", "not an OTLP protobuf"),
        (b"{not json", "application/json", "not JSON"),
        (b"[1, 2]", "application/json", "JSON object"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            "application/json",
            "not hex",
        ),
        (b"", "text/plain", "unsupported content type"),
    ],
)
def test_undecodable_bodies_raise_with_a_reason(
    body: bytes, content_type: str, reason: str
) -> None:
    with pytest.raises(OtlpDecodeError, match=reason):
        decode_request(body, content_type)


def test_the_raw_span_type_is_the_otlp_one() -> None:
    assert Span.SpanKind.Name(1) == "SPAN_KIND_INTERNAL"  # the proto enum our table indexes
