"""Incidents: what was detected and with which evidence, who was told and whether it arrived,
and how recovery went (rollbacks, failovers, their RTO and RPO)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as model

from agentwatch.sdk import semconv as sc

from ._clickhouse import Format
from ._common import (
    AGENT,
    ANOMALIES,
    CLICKHOUSE,
    IS_HEARTBEAT,
    IS_RECOVERY,
    REMEDIATIONS,
    SEVERITY_COLORS,
    TRACES,
    UID_INCIDENTS,
    agent_in_services,
    attr,
    ch,
    color_mappings,
    dashboard,
    lit,
    row,
    service_filter,
    service_variable,
    stat_panel,
    table_panel,
    thresholds,
    trace_link_override,
    ts,
)

ANOMALY_FILTER = (
    f"$__timeFilter(DetectedAt) AND {service_filter('Service')} "
    "AND $__conditionalAll(Severity IN (${severity}), $severity) "
    "AND $__conditionalAll(Detector IN (${detector}), $detector)"
)
DELIVERY_FILTER = f"$__timeFilter(Timestamp) AND {agent_in_services()}"

DETECTORS = f"""
SELECT DISTINCT Detector FROM {ANOMALIES} WHERE $__timeFilter(DetectedAt) ORDER BY Detector
"""

SUMMARY = f"""
SELECT count() AS anomalies,
       countIf(Severity = 'critical') AS critical,
       quantile(0.5)(dateDiff('millisecond', OnsetAt, DetectedAt)) / 1000 AS median_time_to_detect_s
FROM {ANOMALIES}
WHERE {ANOMALY_FILTER}
"""

DELIVERY_SUMMARY = f"""
SELECT count() AS deliveries, countIf(NOT Ok) AS failed
FROM {REMEDIATIONS}
WHERE {DELIVERY_FILTER}
"""

ANOMALIES_BY_DETECTOR = f"""
SELECT $__timeInterval(DetectedAt) AS time, Detector AS detector, count() AS anomalies
FROM {ANOMALIES}
WHERE {ANOMALY_FILTER}
GROUP BY time, detector
ORDER BY time
"""

ANOMALY_TABLE = f"""
SELECT DetectedAt AS detected_at,
       OnsetAt AS onset_at,
       Agent AS agent,
       Service AS cohort,
       Detector AS detector,
       Severity AS severity,
       Score AS score,
       Threshold AS threshold,
       Summary AS summary,
       Evidence AS evidence,
       TraceId AS trace_id,
       Id AS anomaly_id
FROM {ANOMALIES}
WHERE {ANOMALY_FILTER}
ORDER BY DetectedAt DESC
LIMIT 500
"""

DELIVERY_OUTCOMES = f"""
SELECT $__timeInterval(Timestamp) AS time,
       concat(Kind, if(Ok, ' delivered', ' failed')) AS outcome,
       count() AS deliveries
FROM {REMEDIATIONS}
WHERE {DELIVERY_FILTER}
GROUP BY time, outcome
ORDER BY time
"""

DELIVERY_LATENCY = f"""
SELECT $__timeInterval(Timestamp) AS time, Kind AS channel, quantile(0.95)(LatencyMs) AS p95
FROM {REMEDIATIONS}
WHERE {DELIVERY_FILTER}
GROUP BY time, channel
ORDER BY time
"""

DELIVERIES = f"""
SELECT Timestamp AS time,
       Agent AS agent,
       Kind AS channel,
       Action AS action,
       AnomalyId AS anomaly_id,
       Attempts AS attempts,
       StatusCode AS status_code,
       Ok AS delivered,
       Error AS error,
       LatencyMs AS latency_ms,
       WebhookId AS webhook_id
FROM {REMEDIATIONS}
WHERE {DELIVERY_FILTER}
ORDER BY Timestamp DESC
LIMIT 500
"""

# RTO and RPO, derived until the collector records them (see the panel description):
#   RTO = anomaly onset -> the agent's first "running" heartbeat after the command,
#   RPO = the restored checkpoint's time -> anomaly onset (the work the rollback discards).
RECOVERIES = f"""
SELECT r.time AS time,
       r.agent AS agent,
       r.kind AS kind,
       r.checkpoint_id AS checkpoint_id,
       r.delivered AS delivered,
       a.onset_at AS onset_at,
       c.checkpoint_at AS checkpoint_at,
       h.recovered_at AS recovered_at,
       dateDiff('millisecond', coalesce(a.onset_at, r.time), h.recovered_at) / 1000 AS rto_s,
       dateDiff('millisecond', c.checkpoint_at, coalesce(a.onset_at, r.time)) / 1000 AS rpo_s,
       r.anomaly_id AS anomaly_id
FROM (
    SELECT Timestamp AS time,
           Agent AS agent,
           splitByChar(':', toString(Action))[1] AS kind,
           substring(Action, position(Action, ':') + 1) AS checkpoint_id,
           AnomalyId AS anomaly_id,
           Ok AS delivered
    FROM {REMEDIATIONS}
    WHERE {IS_RECOVERY} AND {DELIVERY_FILTER}
) AS r
LEFT JOIN (
    SELECT Id, any(OnsetAt) AS onset_at FROM {ANOMALIES} GROUP BY Id
) AS a ON a.Id = r.anomaly_id
LEFT JOIN (
    SELECT {attr(sc.CHECKPOINT_ID)} AS checkpoint_id,
           {AGENT} AS agent,
           max(Timestamp) AS checkpoint_at
    FROM {TRACES}
    WHERE SpanName = {lit(sc.SPAN_CHECKPOINT)} AND Timestamp >= $__fromTime - INTERVAL 1 DAY
    GROUP BY checkpoint_id, agent
) AS c ON c.checkpoint_id = r.checkpoint_id AND c.agent = r.agent
ASOF LEFT JOIN (
    SELECT {AGENT} AS agent, Timestamp AS recovered_at
    FROM {TRACES}
    WHERE {IS_HEARTBEAT} AND {attr(sc.AGENT_STATUS)} = 'running' AND Timestamp >= $__fromTime
) AS h ON h.agent = r.agent AND h.recovered_at > r.time
ORDER BY time DESC
SETTINGS join_use_nulls = 1
"""

RECOVERY_SUMMARY = f"""
SELECT count() AS recoveries, median(rto_s) AS median_rto_s, max(rpo_s) AS worst_rpo_s
FROM ({RECOVERIES.replace("SETTINGS join_use_nulls = 1", "").strip()})
SETTINGS join_use_nulls = 1
"""

_RTO_NOTE = (
    " RTO and RPO are derived: RTO from the anomaly's onset to the agent's first 'running' "
    "heartbeat after the command, RPO from the restored checkpoint (agentwatch.checkpoint span) "
    "to the onset. A failover's standby reports under its own id, so its RTO stays empty until "
    "the collector records RecoveredAt/CheckpointAt on agentwatch_remediations."
)


def severity_variable() -> dash.CustomVariable:
    return (
        dash.CustomVariable("severity")
        .label("Severity")
        .values("critical,warning,info")
        .multi(True)
        .include_all(True)
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )


def detector_variable() -> dash.QueryVariable:
    return (
        dash.QueryVariable("detector")
        .label("Detector")
        .datasource(CLICKHOUSE)
        .query(" ".join(DETECTORS.split()))
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )


def _unit(unit: str) -> list[model.DynamicConfigValue]:
    return [model.DynamicConfigValue(id_val="unit", value=unit)]


def _severity_cells() -> list[model.DynamicConfigValue]:
    return [
        model.DynamicConfigValue(id_val="mappings", value=color_mappings(SEVERITY_COLORS)),
        model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"}),
    ]


def build() -> dash.Dashboard:
    """The Incidents dashboard."""
    return (
        dashboard(
            UID_INCIDENTS,
            "agentwatch / Incidents",
            "Anomalies with their evidence, alert delivery, rollbacks and failovers.",
            time_from="now-24h",
        )
        .with_variable(service_variable())
        .with_variable(severity_variable())
        .with_variable(detector_variable())
        .with_row(row("Overview"))
        .with_panel(
            stat_panel(
                "Anomalies",
                "Anomalies in the range, critical ones, and the median time from onset to "
                "detection.",
                ch(SUMMARY, Format.TABLE),
                w=9,
                steps=thresholds((None, "green"), (1, "orange")),
            ).override_by_name("median_time_to_detect_s", _unit("s"))
        )
        .with_panel(
            stat_panel(
                "Deliveries",
                "Notifications and control webhooks sent, and how many failed for good.",
                ch(DELIVERY_SUMMARY, Format.TABLE),
                w=6,
            ).override_by_name(
                "failed",
                [
                    model.DynamicConfigValue(
                        id_val="thresholds",
                        value={
                            "mode": "absolute",
                            "steps": [
                                {"value": None, "color": "green"},
                                {"value": 1, "color": "red"},
                            ],
                        },
                    )
                ],
            )
        )
        .with_panel(
            stat_panel(
                "Recovery",
                "Rollbacks and failovers in the range, median RTO, worst RPO." + _RTO_NOTE,
                ch(RECOVERY_SUMMARY, Format.TABLE),
                w=9,
                steps=thresholds((None, "blue")),
            )
            .override_by_name("median_rto_s", _unit("s"))
            .override_by_name("worst_rpo_s", _unit("s"))
        )
        .with_row(row("Anomalies"))
        .with_panel(
            ts(
                "Anomalies by detector",
                "Findings per interval, stacked by detector.",
                ch(ANOMALIES_BY_DETECTOR),
                bars=True,
                stacked=True,
                w=24,
                h=7,
            )
        )
        .with_panel(
            table_panel(
                "Anomalies with evidence",
                "Newest first. Evidence is the detector's JSON (window, counts, baseline); the "
                "trace id opens the triggering trace in the ClickHouse plugin's trace view.",
                ch(ANOMALY_TABLE, Format.TABLE),
                w=24,
                h=12,
            )
            .override_by_name("severity", _severity_cells())
            .override_by_name(
                "evidence",
                [
                    model.DynamicConfigValue(
                        id_val="custom.cellOptions", value={"type": "json-view"}
                    ),
                    model.DynamicConfigValue(id_val="custom.inspect", value=True),
                ],
            )
            .override_by_name("trace_id", trace_link_override())
            .override_by_name("score", [model.DynamicConfigValue(id_val="decimals", value=2)])
            .override_by_name("threshold", [model.DynamicConfigValue(id_val="decimals", value=2)])
        )
        .with_row(row("Alerts and delivery"))
        .with_panel(
            ts(
                "Deliveries by outcome",
                "Slack notifications and control webhooks per interval, delivered or failed "
                "after all retries.",
                ch(DELIVERY_OUTCOMES),
                bars=True,
                stacked=True,
            )
        )
        .with_panel(
            ts(
                "Delivery latency p95",
                "95th percentile of delivery time per channel, retries included.",
                ch(DELIVERY_LATENCY),
                unit="ms",
            )
        )
        .with_panel(
            table_panel(
                "Deliveries",
                "Every delivery with its attempts, final HTTP status and error.",
                ch(DELIVERIES, Format.TABLE),
                w=24,
                h=10,
            )
            .override_by_name("latency_ms", _unit("ms"))
            .override_by_name(
                "delivered",
                [
                    model.DynamicConfigValue(
                        id_val="mappings",
                        value=[
                            model.ValueMap(
                                options={
                                    "true": model.ValueMappingResult(
                                        text="yes", color="green", index=0
                                    ),
                                    "false": model.ValueMappingResult(
                                        text="no", color="red", index=1
                                    ),
                                }
                            )
                        ],
                    ),
                    model.DynamicConfigValue(
                        id_val="custom.cellOptions", value={"type": "color-text"}
                    ),
                ],
            )
        )
        .with_row(row("Recovery"))
        .with_panel(
            table_panel(
                "Rollbacks and failovers",
                "Each recovery command with its checkpoint, delivery, RTO and RPO." + _RTO_NOTE,
                ch(RECOVERIES, Format.TABLE),
                w=24,
                h=10,
            )
            .override_by_name("rto_s", _unit("s"))
            .override_by_name("rpo_s", _unit("s"))
        )
    )
