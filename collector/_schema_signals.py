"""ClickHouse DDL for logs and metrics: the OpenTelemetry Collector exporter's tables.

Layouts followed (opentelemetry-collector-contrib, ``exporter/clickhouseexporter/internal/
sqltemplates``, the default non-JSON templates; the ``*_json_*`` templates with a separate
``SeriesHash`` series table are an opt-in layout and are not used):

* ``otel_logs``: the ``text/template`` ``logs_table.sql`` of main (after v0.152, the version
  whose ``exporter_logs.go`` renders it with ``HasFullTextSearch`` and a TTL on
  ``toDateTime(Timestamp)``): column comments, ``EventName``, the eight
  ``__otel_materialized_*`` columns read from resource attributes, ``text`` indexes from
  ClickHouse 26.2 and bloom filters before, ordered by ``toStartOfFiveMinutes(Timestamp)``.
  It replaced the layout with a ``TimestampTime`` column (commit e3bd2d1d), which Grafana's
  ClickHouse plugin still reads because it queries ``Timestamp``.
* ``otel_metrics_*``: the newest of the two layouts the templates have had (as in commits
  0d21cdd3 for sums and 469a40ce for exponential histograms, applied to all five there):
  ``MetricName LowCardinality``, times as ``DateTime`` (seconds), an ``idx_time_minmax``
  index, ordered by ``(ServiceName, MetricName, toStartOfHour(TimeUnix),
  cityHash64(Attributes), TimeUnix)``. The older layout (``DateTime64(9)``, ordered by the
  whole ``Attributes`` map) cost two to three times the primary-key memory.

The column tuples below are the insert order of every row the OTLP mappers produce.
"""

from __future__ import annotations

from ._schema import SchemaOptions, _ident, _ttl

LOGS_TABLE = "otel_logs"
GAUGE_TABLE = "otel_metrics_gauge"
SUM_TABLE = "otel_metrics_sum"
HISTOGRAM_TABLE = "otel_metrics_histogram"
EXP_HISTOGRAM_TABLE = "otel_metrics_exponential_histogram"
SUMMARY_TABLE = "otel_metrics_summary"

LOG_COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "TraceFlags",
    "SeverityText",
    "SeverityNumber",
    "ServiceName",
    "Body",
    "ResourceSchemaUrl",
    "ResourceAttributes",
    "ScopeSchemaUrl",
    "ScopeName",
    "ScopeVersion",
    "ScopeAttributes",
    "LogAttributes",
    "EventName",
)

_METRIC_HEAD: tuple[str, ...] = (
    "ResourceAttributes",
    "ResourceSchemaUrl",
    "ScopeName",
    "ScopeVersion",
    "ScopeAttributes",
    "ScopeDroppedAttrCount",
    "ScopeSchemaUrl",
    "ServiceName",
    "MetricName",
    "MetricDescription",
    "MetricUnit",
    "Attributes",
    "StartTimeUnix",
    "TimeUnix",
)
_EXEMPLARS: tuple[str, ...] = (
    "Exemplars.FilteredAttributes",
    "Exemplars.TimeUnix",
    "Exemplars.Value",
    "Exemplars.SpanId",
    "Exemplars.TraceId",
)
_DISTRIBUTION_TAIL: tuple[str, ...] = ("Flags", "Min", "Max", "AggregationTemporality")

GAUGE_COLUMNS = (*_METRIC_HEAD, "Value", "Flags", *_EXEMPLARS)
SUM_COLUMNS = (*GAUGE_COLUMNS, "AggregationTemporality", "IsMonotonic")
HISTOGRAM_COLUMNS = (
    *_METRIC_HEAD, "Count", "Sum", "BucketCounts", "ExplicitBounds", *_EXEMPLARS,
    *_DISTRIBUTION_TAIL,
)  # fmt: skip
EXP_HISTOGRAM_COLUMNS = (
    *_METRIC_HEAD, "Count", "Sum", "Scale", "ZeroCount", "PositiveOffset",
    "PositiveBucketCounts", "NegativeOffset", "NegativeBucketCounts", *_EXEMPLARS,
    *_DISTRIBUTION_TAIL,
)  # fmt: skip
SUMMARY_COLUMNS = (
    *_METRIC_HEAD, "Count", "Sum", "ValueAtQuantiles.Quantile", "ValueAtQuantiles.Value", "Flags",
)  # fmt: skip

METRIC_COLUMNS: dict[str, tuple[str, ...]] = {
    GAUGE_TABLE: GAUGE_COLUMNS,
    SUM_TABLE: SUM_COLUMNS,
    HISTOGRAM_TABLE: HISTOGRAM_COLUMNS,
    EXP_HISTOGRAM_TABLE: EXP_HISTOGRAM_COLUMNS,
    SUMMARY_TABLE: SUMMARY_COLUMNS,
}
SIGNAL_COLUMNS: dict[str, tuple[str, ...]] = {LOGS_TABLE: LOG_COLUMNS, **METRIC_COLUMNS}

# Kept beside the DDL so `_cluster.SHARDING_KEYS` can take them: a series stays on one shard.
SIGNAL_SHARDING_KEYS: dict[str, str] = {
    LOGS_TABLE: "cityHash64(ServiceName)",
    **{table: "cityHash64(ServiceName, MetricName)" for table in METRIC_COLUMNS},
}

_MATERIALIZED = (
    "k8s.cluster.name",
    "k8s.container.name",
    "k8s.deployment.name",
    "k8s.namespace.name",
    "k8s.node.name",
    "k8s.pod.name",
    "k8s.pod.uid",
    "deployment.environment.name",
)

_LOG_TEXT_INDEXES = """\
    INDEX idx_trace_id TraceId TYPE text(tokenizer = 'array'),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE text(tokenizer = 'array'),
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE text(tokenizer = 'array'),
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE text(tokenizer = 'array'),
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE text(tokenizer = 'array'),
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE text(tokenizer = 'array'),
    INDEX idx_log_attr_value mapValues(LogAttributes) TYPE text(tokenizer = 'array'),
    INDEX idx_lower_body lower(Body) TYPE text(tokenizer = 'splitByNonAlpha')"""

_LOG_BLOOM_INDEXES = """\
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_lower_body lower(Body) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8"""


def logs_table_ddl(options: SchemaOptions) -> str:
    """The exporter's ``logs_table.sql`` with engine MergeTree() and no cluster."""
    table = f"{_ident(options.database)}.{_ident(LOGS_TABLE)}"
    indexes = _LOG_TEXT_INDEXES if options.full_text_search else _LOG_BLOOM_INDEXES
    materialized = "".join(
        f"    `__otel_materialized_{key}` LowCardinality(String) MATERIALIZED "
        f"ResourceAttributes['{key}'] CODEC(ZSTD(1)),\n"
        for key in _MATERIALIZED
    )
    return f"""CREATE TABLE IF NOT EXISTS {table}  (
    `Timestamp` DateTime64(9) COMMENT 'Event timestamp with nanosecond precision' CODEC(Delta(8), ZSTD(1)),
    `TraceId` String COMMENT 'W3C trace identifier' CODEC(ZSTD(1)),
    `SpanId` String COMMENT 'W3C span identifier' CODEC(ZSTD(1)),
    `TraceFlags` UInt8 COMMENT 'W3C trace flags',
    `SeverityText` LowCardinality(String) COMMENT 'Log severity as text' CODEC(ZSTD(1)),
    `SeverityNumber` UInt8 COMMENT 'Log severity as number (1-24)',
    `ServiceName` LowCardinality(String) COMMENT 'Service that emitted the log' CODEC(ZSTD(1)),
    `Body` String COMMENT 'Log message body' CODEC(ZSTD(1)),
    `ResourceSchemaUrl` LowCardinality(String) COMMENT 'Schema URL for the resource' CODEC(ZSTD(1)),
    `ResourceAttributes` Map(LowCardinality(String), String) COMMENT 'Resource attributes as key-value pairs' CODEC(ZSTD(1)),
    `ScopeSchemaUrl` LowCardinality(String) COMMENT 'Schema URL for the instrumentation scope' CODEC(ZSTD(1)),
    `ScopeName` String COMMENT 'Instrumentation scope name' CODEC(ZSTD(1)),
    `ScopeVersion` LowCardinality(String) COMMENT 'Instrumentation scope version' CODEC(ZSTD(1)),
    `ScopeAttributes` Map(LowCardinality(String), String) COMMENT 'Instrumentation scope attributes' CODEC(ZSTD(1)),
    `LogAttributes` Map(LowCardinality(String), String) COMMENT 'Log record attributes' CODEC(ZSTD(1)),
    `EventName` String COMMENT 'Event name for log records representing events' CODEC(ZSTD(1)),
{materialized}{indexes}
) ENGINE = MergeTree()
PARTITION BY toDate(Timestamp)
ORDER BY (toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp)
{_ttl(options, "toDateTime(Timestamp)")}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""  # noqa: E501 - the exporter's lines, kept verbatim


_METRIC_HEAD_DDL = """\
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ResourceSchemaUrl String CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeDroppedAttrCount UInt32 CODEC(ZSTD(1)),
    ScopeSchemaUrl String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    MetricName LowCardinality(String) CODEC(ZSTD(1)),
    MetricDescription String CODEC(ZSTD(1)),
    MetricUnit String CODEC(ZSTD(1)),
    Attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    StartTimeUnix DateTime CODEC(Delta, ZSTD(1)),
    TimeUnix DateTime CODEC(Delta, ZSTD(1)),
"""

_EXEMPLARS_DDL = """\
    Exemplars Nested (
        FilteredAttributes Map(LowCardinality(String), String),
        TimeUnix DateTime,
        Value Float64,
        SpanId String,
        TraceId String
    ) CODEC(ZSTD(1)),
"""

_DISTRIBUTION_TAIL_DDL = """\
    Flags UInt32 CODEC(ZSTD(1)),
    Min Float64 CODEC(ZSTD(1)),
    Max Float64 CODEC(ZSTD(1)),
    AggregationTemporality Int32 CODEC(ZSTD(1)),
"""

_METRIC_BODIES: dict[str, str] = {
    GAUGE_TABLE: "    Value Float64 CODEC(ZSTD(1)),\n    Flags UInt32 CODEC(ZSTD(1)),\n"
    + _EXEMPLARS_DDL,
    SUM_TABLE: "    Value Float64 CODEC(ZSTD(1)),\n    Flags UInt32 CODEC(ZSTD(1)),\n"
    + _EXEMPLARS_DDL
    + "    AggregationTemporality Int32 CODEC(ZSTD(1)),\n"
    + "    IsMonotonic Boolean CODEC(Delta, ZSTD(1)),\n",
    HISTOGRAM_TABLE: """\
    Count UInt64 CODEC(Delta, ZSTD(1)),
    Sum Float64 CODEC(ZSTD(1)),
    BucketCounts Array(UInt64) CODEC(ZSTD(1)),
    ExplicitBounds Array(Float64) CODEC(ZSTD(1)),
"""
    + _EXEMPLARS_DDL
    + _DISTRIBUTION_TAIL_DDL,
    EXP_HISTOGRAM_TABLE: """\
    Count UInt64 CODEC(Delta, ZSTD(1)),
    Sum Float64 CODEC(ZSTD(1)),
    Scale Int32 CODEC(ZSTD(1)),
    ZeroCount UInt64 CODEC(ZSTD(1)),
    PositiveOffset Int32 CODEC(ZSTD(1)),
    PositiveBucketCounts Array(UInt64) CODEC(ZSTD(1)),
    NegativeOffset Int32 CODEC(ZSTD(1)),
    NegativeBucketCounts Array(UInt64) CODEC(ZSTD(1)),
"""
    + _EXEMPLARS_DDL
    + _DISTRIBUTION_TAIL_DDL,
    SUMMARY_TABLE: """\
    Count UInt64 CODEC(Delta, ZSTD(1)),
    Sum Float64 CODEC(ZSTD(1)),
    ValueAtQuantiles Nested(
        Quantile Float64,
        Value Float64
    ) CODEC(ZSTD(1)),
    Flags UInt32 CODEC(ZSTD(1)),
""",
}

_METRIC_INDEXES = """\
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_time_minmax TimeUnix TYPE minmax GRANULARITY 1"""


def metrics_table_ddl(table: str, options: SchemaOptions) -> str:
    """The exporter's ``metrics_<type>_table.sql`` for one of the five metric tables."""
    try:
        body = _METRIC_BODIES[table]
    except KeyError:
        raise ValueError(f"table must be one of {sorted(_METRIC_BODIES)}, got {table!r}") from None
    qualified = f"{_ident(options.database)}.{_ident(table)}"
    return f"""CREATE TABLE IF NOT EXISTS {qualified}  (
{_METRIC_HEAD_DDL}{body}{_METRIC_INDEXES}
) ENGINE = MergeTree()
{_ttl(options, "toDateTime(TimeUnix)")}
PARTITION BY toDate(TimeUnix)
ORDER BY (ServiceName, MetricName, toStartOfHour(TimeUnix), cityHash64(Attributes), TimeUnix)
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1
"""


def signal_tables_ddl(options: SchemaOptions) -> tuple[str, ...]:
    """Migration 3: ``otel_logs`` and the five ``otel_metrics_*`` tables."""
    return (logs_table_ddl(options), *(metrics_table_ddl(t, options) for t in METRIC_COLUMNS))
