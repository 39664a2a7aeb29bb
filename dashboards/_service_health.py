"""Service health: the agentwatch service's own Prometheus metrics (ingest, rejects and drops,
spool and queue, ClickHouse insert latency, detector output)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as model

from ._common import (
    PROMETHEUS,
    UID_SERVICE,
    dashboard,
    prom,
    row,
    stat_panel,
    thresholds,
    ts,
)

# The service's self-metrics (STYLE.md: agentwatch_<subsystem>_<name>_<unit>).
RECEIVED = "agentwatch_collector_spans_received_total"
ACCEPTED = "agentwatch_collector_spans_accepted_total"
REJECTED = "agentwatch_collector_spans_rejected_total"
DROPPED = "agentwatch_collector_spans_dropped_total"
SPOOL_BYTES = "agentwatch_collector_spool_bytes"
QUEUE_DEPTH = "agentwatch_collector_queue_depth"
INSERT_SECONDS = "agentwatch_clickhouse_insert_seconds"
ANOMALIES = "agentwatch_detector_anomalies_total"
METRICS = (
    RECEIVED,
    ACCEPTED,
    REJECTED,
    DROPPED,
    SPOOL_BYTES,
    QUEUE_DEPTH,
    INSERT_SECONDS,
    ANOMALIES,
)

SEL = '{instance=~"$instance"}'
RATE = "[$__rate_interval]"


def _rate(metric: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping}(rate({metric}{SEL}{RATE}))"


def _quantile(q: float) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({INSERT_SECONDS}_bucket{SEL}{RATE})))"


def instance_variable() -> dash.QueryVariable:
    return (
        dash.QueryVariable("instance")
        .label("Instance")
        .description("agentwatch service replicas scraped by Prometheus")
        .datasource(PROMETHEUS)
        .query(f"label_values({RECEIVED}, instance)")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )


def build() -> dash.Dashboard:
    """The Service health dashboard."""
    red_above_zero = thresholds((None, "green"), (0.000001, "red"))
    return (
        dashboard(
            UID_SERVICE,
            "agentwatch / Service health",
            "The agentwatch service itself: ingest, rejects and drops, backlog, insert latency.",
        )
        .with_variable(instance_variable())
        .with_row(row("Ingest"))
        .with_panel(
            stat_panel(
                "Ingest rate",
                "Spans received per second, all instances.",
                prom(_rate(RECEIVED), "received"),
                unit="ops",
                steps=thresholds((None, "blue")),
                datasource=PROMETHEUS,
            )
        )
        .with_panel(
            stat_panel(
                "Rejected",
                "Spans refused as invalid (bad ids, undecodable) per second; should be 0.",
                prom(_rate(REJECTED), "rejected"),
                unit="ops",
                steps=red_above_zero,
                datasource=PROMETHEUS,
            )
        )
        .with_panel(
            stat_panel(
                "Dropped",
                "Spans dropped under backpressure per second; should be 0.",
                prom(_rate(DROPPED), "dropped"),
                unit="ops",
                steps=red_above_zero,
                datasource=PROMETHEUS,
            )
        )
        .with_panel(
            stat_panel(
                "Queue depth",
                "Rows waiting for ClickHouse.",
                prom(f"sum({QUEUE_DEPTH}{SEL})", "queue"),
                steps=thresholds((None, "green"), (10000, "orange"), (50000, "red")),
                datasource=PROMETHEUS,
            )
        )
        .with_panel(
            stat_panel(
                "Spool",
                "Bytes in the durable spool (acked, not yet in ClickHouse).",
                prom(f"sum({SPOOL_BYTES}{SEL})", "spool"),
                unit="bytes",
                steps=thresholds((None, "green"), (64 * 2**20, "orange"), (512 * 2**20, "red")),
                datasource=PROMETHEUS,
            )
        )
        .with_panel(
            stat_panel(
                "Insert p95",
                "95th percentile of a ClickHouse insert.",
                prom(_quantile(0.95), "p95"),
                unit="s",
                steps=thresholds((None, "green"), (0.5, "orange"), (2, "red")),
                datasource=PROMETHEUS,
            )
        )
        .with_panel(
            ts(
                "Spans",
                "Received, accepted and rejected spans per second.",
                prom(_rate(RECEIVED), "received"),
                unit="ops",
                datasource=PROMETHEUS,
            )
            .with_target(prom(_rate(ACCEPTED), "accepted", "B"))
            .with_target(prom(_rate(REJECTED), "rejected", "C"))
        )
        .with_panel(
            ts(
                "Dropped spans by reason",
                "Why spans were dropped (queue full, spool full, shutdown...).",
                prom(_rate(DROPPED, "reason"), "{{reason}}"),
                unit="ops",
                datasource=PROMETHEUS,
            )
        )
        .with_row(row("Backlog and storage"))
        .with_panel(
            ts(
                "Spool size",
                "Durable spool bytes per instance.",
                prom(f"sum by (instance) ({SPOOL_BYTES}{SEL})", "{{instance}}"),
                unit="bytes",
                w=8,
                datasource=PROMETHEUS,
            )
        )
        .with_panel(
            ts(
                "Queue depth",
                "Rows waiting for ClickHouse per instance.",
                prom(f"sum by (instance) ({QUEUE_DEPTH}{SEL})", "{{instance}}"),
                w=8,
                datasource=PROMETHEUS,
            )
        )
        .with_panel(
            ts(
                "ClickHouse insert latency",
                "Insert duration percentiles (agentwatch_clickhouse_insert_seconds histogram).",
                prom(_quantile(0.5), "p50"),
                unit="s",
                w=8,
                datasource=PROMETHEUS,
            )
            .with_target(prom(_quantile(0.95), "p95", "B"))
            .with_target(prom(_quantile(0.99), "p99", "C"))
        )
        .with_row(row("Detection"))
        .with_panel(
            ts(
                "Anomalies by detector",
                "Anomalies per second by detector and severity.",
                prom(_rate(ANOMALIES, "detector, severity"), "{{detector}} {{severity}}"),
                unit="ops",
                w=24,
                bars=True,
                stacked=True,
                datasource=PROMETHEUS,
            )
        )
    )
