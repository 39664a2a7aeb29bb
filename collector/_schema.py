"""ClickHouse DDL: the OpenTelemetry Collector exporter's trace tables and agentwatch's own.

``otel_traces``, ``otel_traces_trace_id_ts`` and ``otel_traces_trace_id_ts_mv`` are rendered
exactly as the opentelemetry-collector-contrib ClickHouse exporter renders them (newest layout:
ScopeName/ScopeVersion columns, the attribute-item ALIAS columns, ``text`` indexes on servers
from 26.2 and bloom filters before, an AggregatingMergeTree lookup table), so Grafana's
ClickHouse plugin in OTel mode, and an OTel Collector writing beside us, read them unchanged.

Migrations are versioned and idempotent: each is a list of ``IF NOT EXISTS`` statements recorded
in ``agentwatch_schema_migrations`` once applied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

TRACES_TABLE = "otel_traces"
ANOMALIES_TABLE = "agentwatch_anomalies"
REMEDIATIONS_TABLE = "agentwatch_remediations"
INCIDENTS_TABLE = "agentwatch_incidents"
MIGRATIONS_TABLE = "agentwatch_schema_migrations"

# ClickHouse 26.2 introduced `TYPE text(...)` indexes; the exporter switches to them there.
FULL_TEXT_SEARCH_VERSION = (26, 2)

TRACE_COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
)

_TEXT_INDEXES = """\
    INDEX idx_trace_id TraceId TYPE text(tokenizer = 'array'),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE text(tokenizer = 'array'),
    INDEX idx_res_attr_items ResourceAttributeItems TYPE text(tokenizer = 'array'),
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE text(tokenizer = 'array'),
    INDEX idx_span_attr_items SpanAttributeItems TYPE text(tokenizer = 'array'),"""

_BLOOM_INDEXES = """\
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,"""


@dataclass(frozen=True, slots=True)
class SchemaOptions:
    """How to render the DDL.

    Attributes:
        database: Database holding every table.
        ttl_days: Rows older than this are dropped (0 keeps them forever).
        full_text_search: Use ``text`` indexes (ClickHouse >= 26.2) instead of bloom filters.
    """

    database: str = "default"
    ttl_days: int = 0
    full_text_search: bool = True

    def __post_init__(self) -> None:
        if self.ttl_days < 0:
            raise ValueError(f"ttl_days must be >= 0, got {self.ttl_days}")
        if not self.database.replace("_", "").isalnum():
            raise ValueError(f"database must be an identifier, got {self.database!r}")


def _ident(name: str) -> str:
    return "`" + name.replace("`", "\\`") + "`"


def _ttl(options: SchemaOptions, column: str) -> str:
    # The exporter's GenerateTTLExpr: "TTL <column> + toIntervalDay(N)".
    return f"TTL {column} + toIntervalDay({options.ttl_days})" if options.ttl_days else ""


def traces_table_ddl(options: SchemaOptions) -> str:
    """The exporter's ``traces_table.sql`` with engine MergeTree() and no cluster."""
    indexes = _TEXT_INDEXES if options.full_text_search else _BLOOM_INDEXES
    table = f"{_ident(options.database)}.{_ident(TRACES_TABLE)}"
    return f"""CREATE TABLE IF NOT EXISTS {table}  (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(T64, ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    ResourceAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(ResourceAttributes, 'Array(Tuple(String, String))')),
    SpanAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(SpanAttributes, 'Array(Tuple(String, String))')),
{indexes}
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1,
    INDEX idx_lower_span_name lower(SpanName) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = MergeTree()
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp))
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)
{_ttl(options, "toDateTime(Timestamp)")}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""  # noqa: E501 - the exporter's lines, kept verbatim


def trace_id_ts_table_ddl(options: SchemaOptions) -> str:
    """The exporter's ``traces_id_ts_lookup_table.sql`` (AggregatingMergeTree for MergeTree)."""
    table = f"{_ident(options.database)}.{_ident(TRACES_TABLE + '_trace_id_ts')}"
    return f"""CREATE TABLE IF NOT EXISTS {table}  (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) ENGINE = AggregatingMergeTree()
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
{_ttl(options, "toDateTime(Start)")}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""


def trace_id_ts_view_ddl(options: SchemaOptions) -> str:
    """The exporter's ``traces_id_ts_lookup_mv.sql``."""
    db = _ident(options.database)
    view = _ident(TRACES_TABLE + "_trace_id_ts_mv")
    return f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{view} 
TO {db}.{_ident(TRACES_TABLE + "_trace_id_ts")}
AS SELECT
    TraceId,
    min(toDateTime(Timestamp)) AS Start,
    max(toDateTime(Timestamp)) AS End
FROM {db}.{_ident(TRACES_TABLE)}
WHERE TraceId != ''
GROUP BY TraceId
"""  # noqa: W291 - the exporter renders an empty cluster clause there


def anomalies_table_ddl(options: SchemaOptions) -> str:
    """agentwatch's anomalies: one row per detector finding."""
    table = f"{_ident(options.database)}.{_ident(ANOMALIES_TABLE)}"
    return f"""CREATE TABLE IF NOT EXISTS {table} (
    Id String CODEC(ZSTD(1)),
    Agent LowCardinality(String) CODEC(ZSTD(1)),
    Service LowCardinality(String) CODEC(ZSTD(1)),
    Detector LowCardinality(String) CODEC(ZSTD(1)),
    Score Float64 CODEC(ZSTD(1)),
    Threshold Float64 CODEC(ZSTD(1)),
    Severity LowCardinality(String) CODEC(ZSTD(1)),
    OnsetAt DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    DetectedAt DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    Summary String CODEC(ZSTD(1)),
    Evidence String CODEC(ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    INDEX idx_id Id TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = ReplacingMergeTree()
PARTITION BY toDate(DetectedAt)
ORDER BY (Agent, DetectedAt, Id)
{_ttl(options, "toDateTime(DetectedAt)")}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""


def remediations_table_ddl(options: SchemaOptions) -> str:
    """agentwatch's remediation and notification log: one row per delivery attempt series."""
    table = f"{_ident(options.database)}.{_ident(REMEDIATIONS_TABLE)}"
    return f"""CREATE TABLE IF NOT EXISTS {table} (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    Agent LowCardinality(String) CODEC(ZSTD(1)),
    Kind LowCardinality(String) CODEC(ZSTD(1)),
    Action LowCardinality(String) CODEC(ZSTD(1)),
    AnomalyId String CODEC(ZSTD(1)),
    WebhookId String CODEC(ZSTD(1)),
    Attempts UInt32 CODEC(ZSTD(1)),
    StatusCode Int32 CODEC(ZSTD(1)),
    Ok Bool CODEC(ZSTD(1)),
    Error String CODEC(ZSTD(1)),
    LatencyMs Float64 CODEC(ZSTD(1))
) ENGINE = MergeTree()
PARTITION BY toDate(Timestamp)
ORDER BY (Agent, Timestamp)
{_ttl(options, "toDateTime(Timestamp)")}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""


def _signal_tables(options: SchemaOptions) -> Sequence[str]:
    # Imported here: _schema_signals builds on this module's helpers.
    from ._schema_signals import signal_tables_ddl

    return signal_tables_ddl(options)


def incidents_table_ddl(options: SchemaOptions) -> str:
    """agentwatch's incidents: written when one opens and again when it closes (RTO known)."""
    table = f"{_ident(options.database)}.{_ident(INCIDENTS_TABLE)}"
    return f"""CREATE TABLE IF NOT EXISTS {table} (
    Id String CODEC(ZSTD(1)),
    Agent LowCardinality(String) CODEC(ZSTD(1)),
    Kind LowCardinality(String) CODEC(ZSTD(1)),
    AnomalyId String CODEC(ZSTD(1)),
    DetectedAt DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    HealthyAt DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    CheckpointId String CODEC(ZSTD(1)),
    CheckpointStep Int64 CODEC(ZSTD(1)),
    FailedStep Int64 CODEC(ZSTD(1)),
    Standby LowCardinality(String) CODEC(ZSTD(1)),
    RtoSeconds Float64 CODEC(ZSTD(1)),
    RpoSteps Int64 CODEC(ZSTD(1)),
    UpdatedAt DateTime64(9) CODEC(Delta(8), ZSTD(1))
) ENGINE = ReplacingMergeTree()
PARTITION BY toDate(DetectedAt)
ORDER BY (Agent, Id)
{_ttl(options, "toDateTime(DetectedAt)")}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema version: statements that are each safe to run again."""

    version: int
    description: str
    statements: Callable[[SchemaOptions], Sequence[str]]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "OpenTelemetry Collector exporter trace tables",
        lambda o: (traces_table_ddl(o), trace_id_ts_table_ddl(o), trace_id_ts_view_ddl(o)),
    ),
    Migration(
        2,
        "agentwatch anomalies and remediation log",
        lambda o: (anomalies_table_ddl(o), remediations_table_ddl(o)),
    ),
    Migration(3, "OpenTelemetry Collector exporter log and metric tables", _signal_tables),
    Migration(4, "agentwatch incidents with RTO and RPO", lambda o: (incidents_table_ddl(o),)),
)


def migrations_table_ddl(options: SchemaOptions) -> str:
    table = f"{_ident(options.database)}.{_ident(MIGRATIONS_TABLE)}"
    return f"""CREATE TABLE IF NOT EXISTS {table} (
    Version UInt32,
    Description String,
    AppliedAt DateTime64(3) DEFAULT now64(3)
) ENGINE = ReplacingMergeTree()
ORDER BY Version
"""
