"""OTLP log requests to ``otel_logs`` rows, as the exporter's ``exporter_logs.go`` writes them.

Per record: ``Timestamp`` is the record's time, or its observed time when the time is unset;
ids are hex (the all-zero id is the empty string); ``TraceFlags`` and ``SeverityNumber`` are the
low byte (Go's ``uint8(...)``); ``Body`` and every attribute value go through pdata's
``AsString``; ``ServiceName`` is the resource's ``service.name``; ``EventName`` is the record's
event name. A record whose ids have the wrong length is rejected (partial success) and its
neighbours kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from agentwatch.sdk import semconv

from ._otlp import _hex_id, as_string, attributes_to_map

# DateTime64(9) holds an Int64 of nanoseconds: a larger uint64 time would fail every insert of
# its batch, and a batch that can never be inserted would stop the drain.
_MAX_NS = 2**63 - 1


@dataclass(slots=True)
class DecodedLogs:
    """Rows for ``otel_logs`` (in ``LOG_COLUMNS`` order) and what was rejected."""

    rows: list[list[Any]] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


def logs_request_to_rows(request: ExportLogsServiceRequest) -> DecodedLogs:
    """Map every valid log record to a row; count records with malformed ids as rejected."""
    out = DecodedLogs()
    for resource_logs in request.resource_logs:
        resource_attributes = attributes_to_map(resource_logs.resource.attributes)
        service_name = resource_attributes.get(semconv.SERVICE_NAME, "")
        resource_url = resource_logs.schema_url
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope
            scope_attributes = attributes_to_map(scope.attributes)
            for record in scope_logs.log_records:
                problem = _record_problem(record)
                if problem:
                    out.rejected += 1
                    if len(out.errors) < 5:
                        out.errors.append(problem)
                    continue
                timestamp = record.time_unix_nano or record.observed_time_unix_nano
                out.rows.append(
                    [
                        min(timestamp, _MAX_NS),
                        _hex_id(record.trace_id),
                        _hex_id(record.span_id),
                        record.flags & 0xFF,
                        record.severity_text,
                        record.severity_number & 0xFF,
                        service_name,
                        as_string(record.body),
                        resource_url,
                        resource_attributes,
                        scope_logs.schema_url,
                        scope.name,
                        scope.version,
                        scope_attributes,
                        attributes_to_map(record.attributes),
                        record.event_name,
                    ]
                )
    return out


def _record_problem(record: Any) -> str:
    if record.trace_id and len(record.trace_id) != 16:
        return f"log record: trace_id must be 16 bytes or empty, got {len(record.trace_id)}"
    if record.span_id and len(record.span_id) != 8:
        return f"log record: span_id must be 8 bytes or empty, got {len(record.span_id)}"
    return ""
