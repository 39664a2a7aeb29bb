"""OTLP metric requests to rows of the five ``otel_metrics_*`` tables, as the exporter maps them.

One row per data point (the exporter's ``internal/metrics/*_metrics.go``): resource, scope and
metric metadata repeated on every row, point attributes through pdata's ``AsString``, times
in whole seconds (the tables' ``DateTime``), number values as Float64 whether int or double,
exemplars as the ``Exemplars`` Nested columns with their ids hex-encoded in full (an unset
exemplar id is all zeros there, unlike spans and logs), unset ``sum``/``min``/``max`` as 0.
A data point that breaks the data model (bucket counts not matching the bounds, exemplar ids
of the wrong length) is rejected (partial success); a metric with no data is skipped.

``split_by_table`` cuts a request into one request per table, so each table's rows can be
spooled and replayed on their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from agentwatch.sdk import semconv

from ._otlp import attributes_to_map
from ._schema_signals import (
    EXP_HISTOGRAM_TABLE,
    GAUGE_TABLE,
    HISTOGRAM_TABLE,
    SUM_TABLE,
    SUMMARY_TABLE,
)

Row = list[Any]

# The ``data`` oneof of a Metric, to its table.
TABLE_OF: dict[str, str] = {
    "gauge": GAUGE_TABLE,
    "sum": SUM_TABLE,
    "histogram": HISTOGRAM_TABLE,
    "exponential_histogram": EXP_HISTOGRAM_TABLE,
    "summary": SUMMARY_TABLE,
}

_NS = 1_000_000_000
_MAX_SECONDS = 2**32 - 1  # DateTime is a UInt32: clamp rather than fail the whole insert
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


@dataclass(slots=True)
class DecodedMetrics:
    """Rows by table (each in that table's column order) and what was rejected."""

    rows: dict[str, list[Row]] = field(default_factory=dict)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def data_points(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


def _seconds(ns: int) -> int:
    return min(ns // _NS, _MAX_SECONDS)


def _number(point: Any) -> float:
    which = point.WhichOneof("value")
    if which == "as_double":
        return float(point.as_double)
    if which == "as_int":
        return float(point.as_int)
    return 0.0


def _exemplars(exemplars: Any) -> tuple[list[Any], ...]:
    return (
        [attributes_to_map(e.filtered_attributes) for e in exemplars],
        [_seconds(e.time_unix_nano) for e in exemplars],
        [_number(e) for e in exemplars],
        [e.span_id.hex() if e.span_id else _ZERO_SPAN for e in exemplars],
        [e.trace_id.hex() if e.trace_id else _ZERO_TRACE for e in exemplars],
    )


_NO_EXEMPLARS: tuple[tuple[Any, ...], ...] = ((), (), (), (), ())


def _point_problem(metric: str, point: Any, which: str) -> str:
    for exemplar in getattr(point, "exemplars", ()):
        if exemplar.trace_id and len(exemplar.trace_id) != 16:
            return f"metric {metric!r}: exemplar trace_id must be 16 bytes or empty"
        if exemplar.span_id and len(exemplar.span_id) != 8:
            return f"metric {metric!r}: exemplar span_id must be 8 bytes or empty"
    counts = point.bucket_counts if which == "histogram" else ()
    if counts and len(counts) != len(point.explicit_bounds) + 1:
        return (
            f"metric {metric!r}: a histogram point needs len(explicit_bounds) + 1 bucket "
            f"counts, got {len(counts)} for {len(point.explicit_bounds)} bounds"
        )
    return ""


def _gauge_values(point: Any, data: Any) -> tuple[Any, ...]:
    exemplars = _exemplars(point.exemplars) if point.exemplars else _NO_EXEMPLARS
    return (_number(point), point.flags, *exemplars)


def _sum_values(point: Any, data: Any) -> tuple[Any, ...]:
    return (*_gauge_values(point, data), data.aggregation_temporality, data.is_monotonic)


def _histogram_values(point: Any, data: Any) -> tuple[Any, ...]:
    exemplars = _exemplars(point.exemplars) if point.exemplars else _NO_EXEMPLARS
    return (
        point.count, point.sum, list(point.bucket_counts), list(point.explicit_bounds),
        *exemplars, point.flags, point.min, point.max, data.aggregation_temporality,
    )  # fmt: skip


def _exp_histogram_values(point: Any, data: Any) -> tuple[Any, ...]:
    exemplars = _exemplars(point.exemplars) if point.exemplars else _NO_EXEMPLARS
    return (
        point.count, point.sum, point.scale, point.zero_count,
        point.positive.offset, list(point.positive.bucket_counts),
        point.negative.offset, list(point.negative.bucket_counts),
        *exemplars, point.flags, point.min, point.max, data.aggregation_temporality,
    )  # fmt: skip


def _summary_values(point: Any, data: Any) -> tuple[Any, ...]:
    quantiles = point.quantile_values
    return (
        point.count,
        point.sum,
        [q.quantile for q in quantiles],
        [q.value for q in quantiles],
        point.flags,
    )


_VALUES: dict[str, Callable[[Any, Any], tuple[Any, ...]]] = {
    "gauge": _gauge_values,
    "sum": _sum_values,
    "histogram": _histogram_values,
    "exponential_histogram": _exp_histogram_values,
    "summary": _summary_values,
}


def metrics_request_to_rows(request: ExportMetricsServiceRequest) -> DecodedMetrics:
    """Map every valid data point to a row of its table; count invalid points as rejected."""
    out = DecodedMetrics()
    for resource_metrics in request.resource_metrics:
        resource_attributes = attributes_to_map(resource_metrics.resource.attributes)
        service_name = resource_attributes.get(semconv.SERVICE_NAME, "")
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            head = (
                resource_attributes,
                resource_metrics.schema_url,
                scope.name,
                scope.version,
                attributes_to_map(scope.attributes),
                scope.dropped_attributes_count,
                scope_metrics.schema_url,
                service_name,
            )
            for metric in scope_metrics.metrics:
                which = metric.WhichOneof("data")
                if which is None:
                    continue  # no data: nothing to store (the exporter skips it too)
                data = getattr(metric, which)
                values = _VALUES[which]
                rows = out.rows.setdefault(TABLE_OF[which], [])
                for point in data.data_points:
                    problem = _point_problem(metric.name, point, which)
                    if problem:
                        out.rejected += 1
                        if len(out.errors) < 5:
                            out.errors.append(problem)
                        continue
                    rows.append(
                        [
                            *head,
                            metric.name,
                            metric.description,
                            metric.unit,
                            attributes_to_map(point.attributes),
                            _seconds(point.start_time_unix_nano),
                            _seconds(point.time_unix_nano),
                            *values(point, data),
                        ]
                    )
    out.rows = {table: rows for table, rows in out.rows.items() if rows}
    return out


def split_by_table(request: ExportMetricsServiceRequest) -> dict[str, ExportMetricsServiceRequest]:
    """One request per table holding only that table's metrics (resources and scopes kept)."""
    present = {
        TABLE_OF[which]
        for resource_metrics in request.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if (which := metric.WhichOneof("data")) is not None
    }
    if len(present) == 1:
        return {present.pop(): request}
    parts: dict[str, ExportMetricsServiceRequest] = {}
    for table in present:
        part = ExportMetricsServiceRequest()
        part.CopyFrom(request)
        for resource_metrics in part.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                keep = [
                    m
                    for m in scope_metrics.metrics
                    if TABLE_OF.get(m.WhichOneof("data") or "") == table
                ]
                del scope_metrics.metrics[:]
                scope_metrics.metrics.extend(keep)
        parts[table] = part
    return parts
