"""The service's own Prometheus metrics, in a registry per service (never the global one).

Names follow ``agentwatch_<subsystem>_<name>_<unit>``; counters end in ``_total``. The Grafana
"Service health" dashboard queries exactly these names.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics", "detectors_build", "version"]


def version() -> str:
    """The installed distribution's version ("unknown" when run from a bare source tree)."""
    try:
        return metadata.version("agentwatch")
    except metadata.PackageNotFoundError:
        return "unknown"


def detectors_build() -> str:
    """``compiled`` or ``interpreted``: how the detectors' per-event modules run (setup.py)."""
    from agentwatch.detectors import compiled

    return "compiled" if compiled() else "interpreted"


# Insert latency buckets (seconds): embedded inserts cost ~8 ms each, server ones more.
_INSERT_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    """Counters, gauges and histograms of one service. Thread-safe (prometheus_client is)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        build = Gauge(
            "agentwatch_build_info",
            "1, labelled with the version and whether the detectors run compiled or interpreted.",
            ["version", "detectors"],
            registry=r,
        )
        build.labels(version=version(), detectors=detectors_build()).set(1)
        self.spans_received = Counter(
            "agentwatch_collector_spans_received", "Spans received over OTLP.", registry=r
        )
        self.spans_accepted = Counter(
            "agentwatch_collector_spans_accepted",
            "Spans acknowledged (queued for storage and detection).",
            registry=r,
        )
        self.spans_rejected = Counter(
            "agentwatch_collector_spans_rejected",
            "Spans refused as invalid or over a limit (partial_success rejected_spans), by reason.",
            ["reason"],
            registry=r,
        )
        self.spans_dropped = Counter(
            "agentwatch_collector_spans_dropped",
            "Spans not accepted for a reason other than their content.",
            ["reason"],
            registry=r,
        )
        # Logs and metrics: one counter per item kind, labelled by outcome.
        self.log_records = Counter(
            "agentwatch_collector_log_records",
            "OTLP log records by outcome (received, accepted, rejected, refused).",
            ["outcome"],
            registry=r,
        )
        self.data_points = Counter(
            "agentwatch_collector_data_points",
            "OTLP metric data points by outcome (received, accepted, rejected, refused).",
            ["outcome"],
            registry=r,
        )
        self.requests_rejected = Counter(
            "agentwatch_collector_requests_rejected",
            "Requests refused whole, by reason.",
            ["reason"],
            registry=r,
        )
        self.spool_bytes = Gauge(
            "agentwatch_collector_spool_bytes",
            "Bytes held in the spool, not yet in ClickHouse.",
            registry=r,
        )
        self.queue_depth = Gauge(
            "agentwatch_collector_queue_depth", "Rows waiting for ClickHouse.", registry=r
        )
        self.insert_seconds = Histogram(
            "agentwatch_clickhouse_insert_seconds",
            "Duration of one ClickHouse insert.",
            ["table"],
            buckets=_INSERT_BUCKETS,
            registry=r,
        )
        self.insert_failures = Counter(
            "agentwatch_clickhouse_insert_failures",
            "ClickHouse inserts that failed and will be retried.",
            ["table"],
            registry=r,
        )
        self.anomalies = Counter(
            "agentwatch_detector_anomalies",
            "Anomalies raised by the detectors.",
            ["detector", "severity"],
            registry=r,
        )
        self.detection_events_dropped = Counter(
            "agentwatch_detector_events_dropped",
            "Stored spans whose detection was skipped because the detection queue was full.",
            registry=r,
        )
        self.deliveries = Counter(
            "agentwatch_alerts_deliveries",
            "Outbound deliveries (control webhooks, notifications) by target and outcome.",
            ["target", "outcome"],
            registry=r,
        )
        self.agents = Gauge("agentwatch_agents", "Agents known to the service.", registry=r)
        self.requests_in_flight = Gauge(
            "agentwatch_otlp_http_requests_in_flight",
            "OTLP/HTTP requests being read or handled (at most max_inflight_requests).",
            registry=r,
        )

    def observe_insert(self, table: str) -> Callable[[int, float], None]:
        """A TableWriter ``on_insert`` callback recording this table's insert latency."""
        histogram = self.insert_seconds.labels(table=table)

        def on_insert(rows: int, seconds: float) -> None:
            histogram.observe(seconds)

        return on_insert

    def exposition(self) -> bytes:
        """The text exposition format of every metric."""
        return bytes(generate_latest(self.registry))


SIGNAL_KINDS = ("log_records", "data_points")


def _signal_counter(kind: str, outcome: str) -> Callable[[ServiceMetrics], Any]:
    return lambda m: getattr(m, kind).labels(outcome=outcome)


# The service's counters (``Service.count``) and the metric each also increments.
COUNTER_METRICS: dict[str, Callable[[ServiceMetrics], Any]] = {
    "spans_received": lambda m: m.spans_received,
    "spans_accepted": lambda m: m.spans_accepted,
    "spans_refused": lambda m: m.spans_dropped.labels(reason="backpressure"),
    "detection_events_dropped": lambda m: m.detection_events_dropped,
    **{
        f"{kind}_{outcome}": _signal_counter(kind, outcome)
        for kind in SIGNAL_KINDS
        for outcome in ("received", "accepted", "rejected", "refused")
    },
}
