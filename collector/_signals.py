"""Durable ingest of logs and metrics: one spool and one drain per table, sharing the budget.

Logs and metrics take the traces' path (append to a fsynced spool, acknowledge, drain into
ClickHouse in large inserts, replay after a crash) but each of their six tables has its own
spool under ``<data_dir>/spool/<table>`` and its own ``SpoolDrain``. A spool has one committed
position, so a spool shared by several tables would either let one table's progress commit
another's unstored records, or make every drain re-read the others' records; one spool per
table keeps the traces' exactly-once replay (a record's first row already stored means the
record is) unchanged. A metrics request is cut into one record per table it touches.

Records are a one-byte signal tag (``b"l"`` logs, ``b"m"`` metrics) and the request as
protobuf (OTLP/JSON bodies are stored re-encoded). They do not feed the detectors.

Thread-safe: ``ingest`` is called from request threads; appends are serialised, which costs
one fsync per table per request (logs and metrics are a small share of the traffic).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from ._drain import SpoolDrain
from ._metrics import ServiceMetrics
from ._otlp_logs import logs_request_to_rows
from ._otlp_metrics import metrics_request_to_rows
from ._schema_signals import LOG_COLUMNS, LOGS_TABLE, METRIC_COLUMNS, SIGNAL_COLUMNS
from ._spool import Spool, SpoolFull
from ._storage import Storage

logger = logging.getLogger(__name__)

Row = list[Any]

LOGS_RECORD = b"l"
METRICS_RECORD = b"m"


def decode_signal_record(payload: bytes) -> dict[str, list[Row]]:
    """A logs or metrics spool record back to its rows, by table."""
    tag, body = payload[:1], payload[1:]
    if tag == LOGS_RECORD:
        request = ExportLogsServiceRequest()
        request.ParseFromString(body)
        return {LOGS_TABLE: logs_request_to_rows(request).rows}
    if tag == METRICS_RECORD:
        metrics = ExportMetricsServiceRequest()
        metrics.ParseFromString(body)
        return metrics_request_to_rows(metrics).rows
    raise ValueError(f"not a logs or metrics record: tag {tag!r}")


_LOG_COL = {name: i for i, name in enumerate(LOG_COLUMNS)}
_METRIC_KEY = ("ServiceName", "MetricName", "StartTimeUnix", "TimeUnix")


def _stored_probe(storage: Storage, table: str) -> Callable[[Row], bool]:
    """Whether a row is in ClickHouse already (replay dedup, as the trace drain does).

    Matches the columns that identify a log record or a data point's series and time, not
    every column: a record is skipped on replay only when its first row's twin is stored.
    """
    if table == LOGS_TABLE:
        c = _LOG_COL
        sql = (
            f"SELECT 1 FROM {LOGS_TABLE} WHERE ServiceName = {{service:String}}"
            " AND Timestamp = fromUnixTimestamp64Nano({ts:Int64})"
            " AND TraceId = {trace:String} AND SpanId = {span:String}"
            " AND cityHash64(Body) = cityHash64({body:String}) LIMIT 1"
        )

        def stored_log(row: Row) -> bool:
            parameters = {
                "service": row[c["ServiceName"]],
                "ts": row[c["Timestamp"]],
                "trace": row[c["TraceId"]],
                "span": row[c["SpanId"]],
                "body": row[c["Body"]],
            }
            return bool(storage.query(sql, parameters)[1])

        return stored_log
    index = [METRIC_COLUMNS[table].index(name) for name in _METRIC_KEY]
    metric_sql = (
        f"SELECT 1 FROM {table} WHERE ServiceName = {{service:String}}"
        " AND MetricName = {name:String} AND StartTimeUnix = toDateTime({start:UInt32})"
        " AND TimeUnix = toDateTime({time:UInt32}) LIMIT 1"
    )

    def stored_point(row: Row) -> bool:
        service, name, start, time = (row[i] for i in index)
        parameters = {"service": service, "name": name, "start": start, "time": time}
        return bool(storage.query(metric_sql, parameters)[1])

    return stored_point


class SignalStore:
    """The spools and drains of ``otel_logs`` and the ``otel_metrics_*`` tables.

    Args:
        storage: Where rows go.
        directory: Parent of the per-table spool directories.
        budget_bytes: Disk budget shared with ``used_elsewhere`` (the trace spool).
        used_elsewhere: Bytes the rest of the budget holds now.
        metrics: Insert latency and failure metrics, per table.
        fsync: Sync every append.
        max_cached_rows: Memory bound on decoded rows, split over the tables.
    """

    def __init__(
        self,
        storage: Storage,
        directory: Path,
        *,
        budget_bytes: int,
        used_elsewhere: Callable[[], int],
        metrics: ServiceMetrics,
        fsync: bool = True,
        max_cached_rows: int = 200_000,
    ) -> None:
        self.budget_bytes = budget_bytes
        self.used_elsewhere = used_elsewhere
        self._lock = threading.Lock()
        self.spools: dict[str, Spool] = {}
        self.drains: dict[str, SpoolDrain] = {}
        budget = max(budget_bytes, 64)
        per_table_rows = max(1_000, max_cached_rows // len(SIGNAL_COLUMNS))
        for table, columns in SIGNAL_COLUMNS.items():
            spool = Spool(
                directory / table,
                segment_bytes=min(64 * 1024 * 1024, budget),
                max_bytes=budget,
                fsync=fsync,
            )
            self.spools[table] = spool
            self.drains[table] = SpoolDrain(
                storage,
                spool,
                table,
                columns,
                storage.encoder(table, columns),
                _table_decoder(table),
                _stored_probe(storage, table),
                max_cached_rows=per_table_rows,
                on_insert=metrics.observe_insert(table),
                on_failure=metrics.insert_failures.labels(table=table).inc,
            )

    @property
    def size_bytes(self) -> int:
        return sum(spool.size_bytes for spool in self.spools.values())

    def ingest(self, parts: Mapping[str, tuple[list[Row], bytes]]) -> bool:
        """Durably append one request's records ({table: (rows, record)}), then queue the rows.

        Returns only after every record is fsynced; False, with nothing appended, when the
        records would take the spools past the budget.
        """
        seqs: dict[str, int] = {}
        with self._lock:
            needed = sum(len(record) for _, record in parts.values())
            if self.used_elsewhere() + self.size_bytes + needed > self.budget_bytes:
                return False
            try:
                for table, (_, record) in parts.items():
                    seqs[table] = self.spools[table].append(record)
            except SpoolFull:
                # Not reached while the check above holds; if it does, the records already
                # appended are durable and will be stored: the client's retry may duplicate.
                logger.error("spool of %s full after the budget check", table)
                return False
        for table, seq in seqs.items():
            drain = self.drains[table]
            drain.submit(seq, drain.encoder.encode(parts[table][0]))
        return True

    def start(self) -> None:
        for drain in self.drains.values():
            drain.start()

    def force_flush(self, timeout_s: float) -> bool:
        ok = True
        for drain in self.drains.values():
            ok = drain.force_flush(timeout_s) and ok
        return ok

    def shutdown(self, timeout_s: float) -> None:
        for drain in self.drains.values():
            drain.shutdown(timeout_s)
        self.close()

    def close(self) -> None:
        for spool in self.spools.values():
            spool.close()


def _table_decoder(table: str) -> Callable[[bytes], list[Row]]:
    def decode(payload: bytes) -> list[Row]:
        return decode_signal_record(payload).get(table, [])

    return decode
