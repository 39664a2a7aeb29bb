"""The agentwatch service: storage, detection and remediation wired into one process.

Path of a batch: ``ingest`` queues its rows for ClickHouse (``TableWriter``) and its normalized
events for the detection thread (``_detection``), which runs the per-agent detectors; the
service records each anomaly and hands it to the remediator (control webhooks, Slack). Listeners
let the CLI's demo and tests watch anomalies and deliveries as they happen.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agentwatch.alerts import Delivery, Incident, Transition
from agentwatch.detectors import Anomaly, DetectorPipeline

from ._decode_pool import DecoderPool, Observation
from ._detection import Detection
from ._drain import SpoolDrain
from ._metrics import COUNTER_METRICS, SIGNAL_KINDS, ServiceMetrics
from ._native import Block
from ._otlp import Limits
from ._records import (
    ANOMALY_COLUMNS,
    INCIDENT_COLUMNS,
    REMEDIATION_COLUMNS,
    anomaly_json,
    anomaly_row,
    decode_record,
    delivery_row,
)
from ._registry import AgentRegistry
from ._response import Response
from ._schema import (
    ANOMALIES_TABLE,
    INCIDENTS_TABLE,
    REMEDIATIONS_TABLE,
    TRACE_COLUMNS,
    TRACES_TABLE,
)
from ._settings import ServiceSettings
from ._signals import SignalStore
from ._spool import Spool, SpoolFull
from ._storage import Storage, embedded_dsn
from ._writer import TableWriter

logger = logging.getLogger(__name__)


AnomalyListener = Callable[[Anomaly], None]
DeliveryListener = Callable[[Delivery], None]


class Service:
    """One agentwatch process (without its HTTP front ends; see ``_http``).

    Args:
        settings: What to run.
        clock: Wall clock in ns (detection times); tests inject a fake.

    Thread-safe: ``ingest`` is called from request threads.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        clock: Callable[[], int] = time.time_ns,
        storage: Storage | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        dsn = settings.clickhouse_dsn or embedded_dsn(settings.data_dir)
        self.storage = storage or Storage(dsn, ttl_days=settings.ttl_days)
        self.storage.migrate(settings.clickhouse_cluster)
        self.metrics = ServiceMetrics()
        self.span_encoder = self.storage.encoder(TRACES_TABLE, TRACE_COLUMNS)
        self.limits = Limits(
            max_spans_per_request=settings.max_spans_per_request,
            max_attributes_per_span=settings.max_attributes_per_span,
            max_attribute_value_length=settings.max_attribute_value_length,
        )
        self.decoders = (
            DecoderPool(settings.decode_workers, self.span_encoder, self.limits)
            if settings.decode_workers
            else None
        )
        spool_dir = settings.data_dir / "spool"
        self.spool = Spool(
            spool_dir,
            segment_bytes=min(64 * 1024 * 1024, max(settings.spool_max_bytes, 64)),
            max_bytes=max(settings.spool_max_bytes, 64),
            fsync=settings.spool_fsync,
        )
        self._spool_budget = settings.spool_max_bytes
        self.span_writer = SpoolDrain(
            self.storage,
            self.spool,
            TRACES_TABLE,
            TRACE_COLUMNS,
            self.span_encoder,
            functools.partial(decode_record, limits=self.limits),  # replay rejects what ingest did
            self._span_stored,
            max_cached_rows=settings.max_pending_rows,
            max_batch_rows=100_000,
            flush_interval_s=1.0,  # as the OTel Collector's batching: spans queryable within ~1 s
            on_insert=self.metrics.observe_insert(TRACES_TABLE),
            on_failure=self.metrics.insert_failures.labels(table=TRACES_TABLE).inc,
        )
        # Logs and metrics: their own spools and drains under the same budget; no detection.
        self.signals = SignalStore(
            self.storage,
            spool_dir,
            budget_bytes=settings.spool_max_bytes,
            used_elsewhere=lambda: self.spool.size_bytes,
            metrics=self.metrics,
            fsync=settings.spool_fsync,
            max_cached_rows=settings.max_pending_rows,
        )
        self.metrics.spool_bytes.set_function(
            lambda: self.spool.size_bytes + self.signals.size_bytes
        )
        self.anomaly_writer = self._writer(ANOMALIES_TABLE, ANOMALY_COLUMNS, flush_interval_s=0.05)
        self.remediation_writer = self._writer(
            REMEDIATIONS_TABLE, REMEDIATION_COLUMNS, flush_interval_s=0.05
        )
        self.incident_writer = self._writer(
            INCIDENTS_TABLE, INCIDENT_COLUMNS, flush_interval_s=0.05
        )
        self._writers: tuple[SpoolDrain | TableWriter, ...] = (
            self.span_writer,
            self.anomaly_writer,
            self.remediation_writer,
            self.incident_writer,
        )
        self.metrics.queue_depth.set_function(lambda: self.span_writer.pending_rows)
        self.registry = AgentRegistry()
        self.response = Response(
            settings,
            self.storage,
            on_delivery=self._on_delivery,
            on_transition=self._on_transition,
            on_incident=self._on_incident,
            clock=clock,
        )
        self.remediator = self.response.remediator
        self._stop = threading.Event()
        self._maintenance = threading.Thread(target=self._maintain, name="maintenance", daemon=True)
        self._anomaly_listeners: list[AnomalyListener] = []
        self._delivery_listeners: list[DeliveryListener] = []
        self._lock = threading.Lock()
        self._started = False
        self.detection = Detection(
            settings,
            clock=clock,
            registry=self.registry,
            response=self.response,
            on_anomaly=self._on_anomaly,
            on_dropped=functools.partial(self.count, "detection_events_dropped"),
            lock=self._lock,  # also guards the detection backlog's count
        )
        self._pipeline_lock = self.detection.pipeline_lock  # tests hold it to stall detection
        self.metrics.agents.set_function(lambda: len(self.registry))
        self.counters: dict[str, int] = {
            "spans_received": 0,
            "spans_accepted": 0,
            "spans_rejected": 0,
            "spans_refused": 0,
            "detection_events_dropped": 0,
            "anomalies": 0,
            **{
                f"{kind}_{what}": 0
                for kind in SIGNAL_KINDS
                for what in ("received", "accepted", "rejected", "refused")
            },
        }

    def _writer(self, table: str, columns: Sequence[str], **options: Any) -> TableWriter:
        failures = self.metrics.insert_failures.labels(table=table)
        return TableWriter(
            self.storage,
            table,
            columns,
            on_insert=self.metrics.observe_insert(table),
            on_failure=failures.inc,
            **options,
        )

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        for writer in self._writers:
            writer.start()
        self.signals.start()
        self.detection.start()
        self.response.start()
        self._maintenance.start()

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Drain detection, deliveries and writers, then close storage."""
        with self._lock:
            if not self._started:
                self.spool.close()
                self.signals.close()
                if self.decoders is not None:
                    self.decoders.shutdown()
                self.storage.close()
                return
            self._started = False
        self._stop.set()
        self._maintenance.join(timeout_s)
        self.detection.shutdown(timeout_s)  # and saves the detectors' learned state
        self.response.shutdown(timeout_s)
        for writer in self._writers:
            writer.shutdown(timeout_s)
        self.signals.shutdown(timeout_s)
        self.spool.close()
        if self.decoders is not None:
            self.decoders.shutdown()
        self.storage.close()

    def add_anomaly_listener(self, listener: AnomalyListener) -> None:
        self._anomaly_listeners.append(listener)

    def add_delivery_listener(self, listener: DeliveryListener) -> None:
        self._delivery_listeners.append(listener)

    # --- ingest ------------------------------------------------------------------------------
    def ingest(self, block: Block, record: bytes, observations: list[Observation]) -> bool:
        """Accept one request: its encoded rows, the spool record they came from, and their
        events (``_decode_pool`` makes all three).

        Returns only after the record is durably in the spool (the acknowledgement); False,
        with nothing accepted, when the spool is at its disk budget.
        """
        self.count("spans_received", block.rows)
        try:
            # One budget for the trace spool and the logs and metrics spools together.
            used = self.spool.size_bytes + self.signals.size_bytes
            if used + len(record) > self._spool_budget:
                raise SpoolFull("the spool budget is spent")
            seq = self.spool.append(record)
        except SpoolFull:
            self.count("spans_refused", block.rows)
            return False
        self.span_writer.submit(seq, block)
        self.count("spans_accepted", block.rows)
        # The acknowledgement waits for nothing else: the detection thread makes the events.
        self.detection.submit(observations, MAX_QUEUED_EVENTS)
        return True

    def ingest_signal(self, kind: str, parts: Mapping[str, tuple[list[list[Any]], bytes]]) -> bool:
        """Accept one logs or metrics request: ``{table: (rows, spool record)}``.

        ``kind`` names the counters (``log_records`` or ``data_points``). Returns only after
        every record is durably spooled; False, with nothing accepted, when the spool budget
        is spent. The rows do not reach the detectors.
        """
        n = sum(len(rows) for rows, _ in parts.values())
        self.count(f"{kind}_received", n)
        if not self.signals.ingest(parts):
            self.count(f"{kind}_refused", n)
            return False
        self.count(f"{kind}_accepted", n)
        return True

    def count(self, name: str, n: int = 1) -> None:
        """Add n to one of the service's counters and its Prometheus metric (thread-safe)."""
        with self._lock:
            self.counters[name] += n
        metric = COUNTER_METRICS.get(name)
        if metric is not None:
            metric(self.metrics).inc(n)

    def _span_stored(self, row: list[Any]) -> bool:
        _, found = self.storage.query(
            f"SELECT 1 FROM {TRACES_TABLE} WHERE ServiceName = {{service:String}}"
            " AND SpanName = {name:String}"
            " AND Timestamp = fromUnixTimestamp64Nano({ts:Int64})"
            " AND TraceId = {trace:String} AND SpanId = {span:String} LIMIT 1",
            {
                "service": row[_SERVICE],
                "name": row[_NAME],
                "ts": row[_TS],
                "trace": row[_TRACE],
                "span": row[_SPAN],
            },
        )
        return bool(found)

    # --- detection and remediation -----------------------------------------------------------
    @property
    def pipeline(self) -> DetectorPipeline:
        """The per-agent detectors; assign a new one only before traffic arrives."""
        return self.detection.pipeline

    @pipeline.setter
    def pipeline(self, pipeline: DetectorPipeline) -> None:
        self.detection.pipeline = pipeline

    def snapshot_detectors(self, agents: set[str] | None = None) -> bytes:
        """The detectors' learned state (of ``agents``, default all), for a restart or hand-off."""
        return self.detection.snapshot(agents)

    def restore_detectors(self, blob: bytes, *, merge: bool = True) -> int:
        """Load a snapshot (a hand-off merges by default); returns the agents it held."""
        return self.detection.restore(blob, merge=merge)

    def _on_anomaly(self, anomaly: Anomaly) -> None:
        self.count("anomalies")
        self.metrics.anomalies.labels(detector=anomaly.detector, severity=anomaly.severity).inc()
        self.anomaly_writer.submit([anomaly_row(anomaly)])
        self.response.handle(anomaly, self.registry.control_url(anomaly.agent))
        for listener in self._anomaly_listeners:
            listener(anomaly)

    def control_state(self, agent: str) -> dict[str, Any] | None:
        """What an agent should obey now (the SDK's pull fallback); None for an unknown agent."""
        if self.registry.get(agent) is None:
            return None
        return self.response.control_state(agent)

    def _on_transition(self, t: Transition) -> None:
        action = f"{t.from_state}->{t.to_state}" + (" (shadow)" if t.shadow else "")
        self.remediation_writer.submit(
            [[t.at_ns, t.agent, "breaker", action, t.anomaly_id, "", 0, -1, True, t.reason, 0.0]]
        )

    def _on_incident(self, incident: Incident) -> None:
        """Store the incident when it opens and again when it closes (RTO and RPO known)."""
        rto, rpo = incident.rto_s, incident.rpo_steps
        self.incident_writer.submit(
            [[
                incident.id, incident.agent, incident.kind, incident.anomaly_id,
                incident.detected_ns, incident.healthy_ns, incident.checkpoint_id,
                incident.checkpoint_step, incident.failed_step, incident.standby,
                -1.0 if rto is None else rto, -1 if rpo is None else rpo, self.clock(),
            ]]
        )  # fmt: skip

    def _maintain(self) -> None:
        """Once a second: breaker timers, alert group flushes, missed heartbeats, agent counts."""
        while not self._stop.wait(1.0):
            try:
                self.response.tick()
                self.detection.check_liveness(self.clock())
            except Exception:  # the maintenance loop must outlive any one failure
                logger.exception("maintenance tick failed")

    def _on_delivery(self, delivery: Delivery) -> None:
        outcome = "ok" if delivery.ok else "failed"
        self.metrics.deliveries.labels(target=delivery.target, outcome=outcome).inc()
        self.remediation_writer.submit([delivery_row(delivery)])
        for listener in self._delivery_listeners:
            listener(delivery)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until queued events are scored, deliveries made and rows stored."""
        deadline = time.monotonic() + timeout_s
        ok = self.detection.join(timeout_s)
        ok = self.response.flush(max(0.0, deadline - time.monotonic())) and ok
        for writer in self._writers:
            ok = writer.force_flush(max(0.0, deadline - time.monotonic())) and ok
        return self.signals.force_flush(max(0.0, deadline - time.monotonic())) and ok

    # --- reads -------------------------------------------------------------------------------
    def anomalies(
        self, *, since_ns: int = 0, agent: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Anomalies detected at or after ``since_ns``, oldest first, as API JSON."""
        where = "DetectedAt >= fromUnixTimestamp64Nano({since:Int64})"
        params: dict[str, Any] = {"since": since_ns, "limit": limit}
        if agent:
            where += " AND Agent = {agent:String}"
            params["agent"] = agent
        _, rows = self.storage.query(
            "SELECT Id, Agent, Service, Detector, Score, Threshold, Severity,"
            " toUnixTimestamp64Nano(OnsetAt), toUnixTimestamp64Nano(DetectedAt), Evidence,"
            f" TraceId, SpanId FROM {ANOMALIES_TABLE} FINAL WHERE {where}"
            " ORDER BY DetectedAt, Id LIMIT {limit:UInt32}",
            params,
        )
        return [anomaly_json(row) for row in rows]


_COL = {name: i for i, name in enumerate(TRACE_COLUMNS)}
_TS, _TRACE, _SPAN = _COL["Timestamp"], _COL["TraceId"], _COL["SpanId"]
_NAME, _SERVICE = _COL["SpanName"], _COL["ServiceName"]

# Bounded by events, not batches: a backlog of 250,000 events (about 5 s at 50,000 spans/s)
# holds ~100 MiB; past it, events are counted as not scored and dropped. Read at each ingest.
MAX_QUEUED_EVENTS = 250_000
