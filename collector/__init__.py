"""The agentwatch service: OTLP receiver, ClickHouse storage, detection and remediation wiring.

Contract:
    * ``POST /v1/traces`` (OTLP/HTTP, protobuf or JSON, optional gzip) stores spans in
      ``otel_traces`` exactly as the OpenTelemetry Collector's ClickHouse exporter would, and
      feeds each normalized span to the per-agent detectors.
    * Anomalies land in ``agentwatch_anomalies`` and are served by ``GET /api/v1/anomalies``;
      the remediator turns them into signed control webhooks and Slack messages, each delivery
      logged in ``agentwatch_remediations``.
    * Storage is ClickHouse through clickhouse-connect: ``chdb:///path`` (embedded, default)
      or a server DSN. One process may open an embedded directory at a time.

Dependencies: every other agentwatch subpackage, clickhouse-connect, FastAPI, uvicorn.
"""

from ._otlp import OtlpDecodeError, as_string, decode_request, format_double, request_to_rows
from ._runner import RunningService
from ._schema import SchemaOptions
from ._service import Service
from ._settings import ConfigError, ServiceSettings
from ._storage import Storage, StorageError, embedded_dsn

__all__ = [
    "ConfigError",
    "OtlpDecodeError",
    "RunningService",
    "SchemaOptions",
    "Service",
    "ServiceSettings",
    "Storage",
    "StorageError",
    "as_string",
    "decode_request",
    "embedded_dsn",
    "format_double",
    "request_to_rows",
]
