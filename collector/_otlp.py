"""OTLP trace requests to ``otel_traces`` rows, stringified exactly as the exporter does.

The OpenTelemetry Collector's ClickHouse exporter stores every attribute value through pdata's
``Value.AsString()``: strings as is, booleans ``true``/``false``, integers in base 10, doubles
in ES6 number form (``1``, ``0.5``, ``1e-7``, ``1e+21``), bytes as standard base64, and arrays
and maps as compact JSON with sorted keys. Span kind and status code are pdata's names
(``Internal``, ``Server`` ...; ``Unset``, ``Ok``, ``Error``). This module reproduces that so rows
written here and rows written by an OTel Collector are indistinguishable.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from agentwatch.sdk import semconv

SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")
STATUS_ERROR = "Error"

M = TypeVar("M", bound=Message)


class OtlpDecodeError(ValueError):
    """The request body is not a valid OTLP export request; the reason says why."""


def format_double(value: float) -> str:
    """A double as pdata's ``float64AsString`` writes it (ES6 number to string)."""
    if math.isinf(value) or math.isnan(value):
        go = "+Inf" if value > 0 else "-Inf" if value < 0 else "NaN"
        return "json: unsupported value: " + go
    if value == 0:
        return "0" if math.copysign(1.0, value) > 0 else "-0"
    magnitude = abs(value)
    if magnitude < 1e-6 or magnitude >= 1e21:
        text = repr(value)  # shortest round-trip digits, exponent form in this range
        mantissa, _, exponent = text.partition("e")
        sign, digits = exponent[0], exponent[1:].lstrip("0")
        # Go writes at least two exponent digits, then the exporter trims "e-07" to "e-7".
        if sign == "+":
            digits = digits.zfill(2)
        return f"{mantissa}e{sign}{digits}"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _raw(value: AnyValue) -> Any:
    """pdata's ``Value.AsRaw()``: the plain Python value under an AnyValue."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "kvlist_value":
        return {kv.key: _raw(kv.value) for kv in value.kvlist_value.values}
    if which == "array_value":
        return [_raw(v) for v in value.array_value.values]
    return getattr(value, which)


def _json(raw: Any) -> str:
    """Go's encoding/json of an AsRaw value: compact, sorted keys, ES6 numbers, bytes base64."""
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        return format_double(raw)
    if isinstance(raw, bytes):
        return '"' + base64.b64encode(raw).decode("ascii") + '"'
    if isinstance(raw, str):
        return json.dumps(raw, ensure_ascii=False)
    if isinstance(raw, list):
        return "[" + ",".join(_json(v) for v in raw) + "]"
    items = sorted(raw.items())
    return (
        "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _json(v) for k, v in items) + "}"
    )


def as_string(value: AnyValue) -> str:
    """pdata's ``Value.AsString()``."""
    which = value.WhichOneof("value")
    if which is None:
        return ""
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "int_value":
        return str(value.int_value)
    if which == "double_value":
        return format_double(value.double_value)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return _json(_raw(value))


def attributes_to_map(attributes: Any) -> dict[str, str]:
    """KeyValue list to the exporter's ``Map(LowCardinality(String), String)``; last key wins."""
    out: dict[str, str] = {}
    kv: KeyValue
    for kv in attributes:
        value = kv.value
        # Hot path: most attribute values are non-empty strings, and a non-empty string_value
        # can only be the set member of the oneof; ask which member only otherwise.
        text = value.string_value
        if not text and value.WhichOneof("value") != "string_value":
            text = as_string(value)
        out[kv.key] = text
    return out


_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def _hex_id(raw: bytes) -> str:
    # traceutil.TraceIDToHexOrEmptyString: the all-zero id is the empty string.
    text = raw.hex()
    return "" if text in (_ZERO_TRACE, _ZERO_SPAN) else text


@dataclass(frozen=True, slots=True)
class Limits:
    """What one request and one span may carry; beyond it they are refused, with the reason.

    Attributes:
        max_spans_per_request: A larger request is refused whole (400): send smaller batches.
        max_attributes_per_span: A span with more (its own or its resource's) is rejected.
        max_attribute_value_length: A span with a longer attribute value is rejected.
    """

    max_spans_per_request: int = 10_000
    max_attributes_per_span: int = 128
    max_attribute_value_length: int = 16_384

    def __post_init__(self) -> None:
        for name in ("max_spans_per_request", "max_attributes_per_span"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_attribute_value_length < 1:
            raise ValueError(
                f"max_attribute_value_length must be >= 1, got {self.max_attribute_value_length}"
            )


DEFAULT_LIMITS = Limits()


class LimitExceeded(OtlpDecodeError):
    """The request is over a configured limit; ``reason`` names which, for metrics."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(slots=True)
class DecodedTraces:
    """Rows for ``otel_traces`` (in ``TRACE_COLUMNS`` order) and what was rejected, by reason."""

    rows: list[list[Any]] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str, message: str) -> None:
        self.rejected += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        if len(self.errors) < 5:
            self.errors.append(message)


def decode_request(
    body: bytes, content_type: str, message: type[M] = ExportTraceServiceRequest
) -> M:
    """Parse an OTLP/HTTP body into ``message`` (an Export*ServiceRequest class).

    Raises:
        OtlpDecodeError: The body is not that message in the content type; the reason says why.
    """
    request: M = message()
    name = request.DESCRIPTOR.name
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-protobuf":
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError) as exc:
            raise OtlpDecodeError(f"body is not an OTLP protobuf {name}: {exc}") from exc
        return request
    if media == "application/json":
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise OtlpDecodeError(f"body is not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise OtlpDecodeError(f"body must be a JSON object (an OTLP {name})")
        try:
            _hex_ids_to_base64(document)
            json_format.ParseDict(document, request, ignore_unknown_fields=True)
        except (
            json_format.ParseError,
            ValueError,
            TypeError,
            AttributeError,
            RecursionError,
        ) as exc:
            raise OtlpDecodeError(f"body is not an OTLP JSON {name}: {exc}") from exc
        return request
    raise OtlpDecodeError(
        f"unsupported content type {content_type!r}: use application/x-protobuf or application/json"
    )


_ID_FIELDS = frozenset(
    ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
)


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """OTLP/JSON carries ids as hex strings where protobuf JSON expects base64: convert them.

    Walks the whole document (spans, links, log records, exemplars) without recursion, so a
    deeply nested body cannot exhaust the stack. Only OTLP field names are object keys here
    (attribute keys are values of ``"key"``), so an id field is never confused with data.
    """
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))
            continue
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                stack.append(value)
            elif key in _ID_FIELDS and isinstance(value, str) and value:
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
                except ValueError as exc:
                    raise ValueError(f"{key} {value!r} is not hex") from exc


def request_to_rows(
    request: ExportTraceServiceRequest, limits: Limits = DEFAULT_LIMITS
) -> DecodedTraces:
    """Map every valid span to a row; reject invalid ones (bad ids, over a limit) with reasons.

    Raises:
        LimitExceeded: The request holds more than ``limits.max_spans_per_request`` spans.
    """
    total = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    if total > limits.max_spans_per_request:
        raise LimitExceeded(
            f"request has {total} spans; the limit is {limits.max_spans_per_request}: "
            "send smaller batches (e.g. OTEL_BSP_MAX_EXPORT_BATCH_SIZE)",
            "too_many_spans",
        )
    out = DecodedTraces()
    longest = limits.max_attribute_value_length
    max_attributes = limits.max_attributes_per_span
    for resource_spans in request.resource_spans:
        resource_attributes = attributes_to_map(resource_spans.resource.attributes)
        service_name = resource_attributes.get(semconv.SERVICE_NAME, "")
        resource_problem = _map_problem(resource_attributes, limits, "resource")
        for scope_spans in resource_spans.scope_spans:
            scope_name = scope_spans.scope.name
            scope_version = scope_spans.scope.version
            for span in scope_spans.spans:
                trace_id, span_id, parent_id = span.trace_id, span.span_id, span.parent_span_id
                if len(trace_id) != 16 or len(span_id) != 8 or len(parent_id) not in (0, 8):
                    out.reject("invalid_id", _span_problem(span))
                    continue
                if resource_problem:
                    out.reject(resource_problem[0], f"span {span.name!r}: {resource_problem[1]}")
                    continue
                attributes = span.attributes
                if len(attributes) > max_attributes:
                    out.reject(
                        "too_many_attributes",
                        f"span {span.name!r} has {len(attributes)} attributes; the limit "
                        f"is {max_attributes}",
                    )
                    continue
                span_attributes = attributes_to_map(attributes)
                if span_attributes and max(map(len, span_attributes.values())) > longest:
                    _, why = _map_problem(span_attributes, limits, "span") or ("", "")
                    out.reject("value_too_long", f"span {span.name!r}: {why}")
                    continue
                start = span.start_time_unix_nano
                duration = max(0, span.end_time_unix_nano - start)
                status = span.status
                code, kind = status.code, span.kind
                events, links = span.events, span.links
                out.rows.append(
                    [
                        start,
                        _hex_id(trace_id),
                        _hex_id(span_id),
                        _hex_id(parent_id) if parent_id else "",
                        span.trace_state,
                        span.name,
                        SPAN_KINDS[kind] if 0 <= kind < len(SPAN_KINDS) else "",
                        service_name,
                        resource_attributes,
                        scope_name,
                        scope_version,
                        span_attributes,
                        duration,
                        STATUS_CODES[code] if 0 <= code < len(STATUS_CODES) else "",
                        status.message,
                        *(_events(events) if events else _NO_EVENTS),
                        *(_links(links) if links else _NO_LINKS),
                    ]
                )
    return out


# Shared, immutable empty columns for the common span without events or links.
_NO_EVENTS: tuple[tuple[Any, ...], ...] = ((), (), ())
_NO_LINKS: tuple[tuple[Any, ...], ...] = ((), (), (), ())


def _events(events: Any) -> tuple[list[Any], ...]:
    return (
        [e.time_unix_nano for e in events],
        [e.name for e in events],
        [attributes_to_map(e.attributes) for e in events],
    )


def _links(links: Any) -> tuple[list[Any], ...]:
    return (
        [_hex_id(link.trace_id) for link in links],
        [_hex_id(link.span_id) for link in links],
        [link.trace_state for link in links],
        [attributes_to_map(link.attributes) for link in links],
    )


def _map_problem(attributes: dict[str, str], limits: Limits, where: str) -> tuple[str, str] | None:
    """(reason, message) when a resource's or span's attributes break a limit, else None."""
    if len(attributes) > limits.max_attributes_per_span:
        return (
            "too_many_attributes",
            f"{where} has {len(attributes)} attributes; the limit is "
            f"{limits.max_attributes_per_span}",
        )
    for key, value in attributes.items():
        if len(value) > limits.max_attribute_value_length:
            return (
                "value_too_long",
                f"{where} attribute {key!r} is {len(value)} characters; the limit is "
                f"{limits.max_attribute_value_length}",
            )
    return None


def _span_problem(span: Any) -> str:
    if len(span.trace_id) != 16:
        return f"span {span.name!r}: trace_id must be 16 bytes, got {len(span.trace_id)}"
    if len(span.span_id) != 8:
        return f"span {span.name!r}: span_id must be 8 bytes, got {len(span.span_id)}"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return f"span {span.name!r}: parent_span_id must be 8 bytes or empty"
    return ""
