"""Agent: one agent's liveness and behaviour, with its anomalies and remediations as
annotations, and links from its spans into the ClickHouse plugin's trace view."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import statetimeline
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from agentwatch.sdk import semconv as sc

from ._clickhouse import ClickHouseAnnotationTargetBuilder, Format
from ._common import (
    AGENT,
    ANOMALIES,
    BREAKER_COLORS,
    BREAKER_STATE,
    CLICKHOUSE,
    GREEN,
    HEARTBEAT_INTERVAL_S,
    IS_ACTION,
    IS_BREAKER,
    IS_DECISION,
    IS_GOAL,
    IS_HEARTBEAT,
    IS_STATE,
    REMEDIATIONS,
    TRACES,
    UID_AGENT,
    attr,
    ch,
    color_mappings,
    dashboard,
    row,
    service_filter,
    service_variable,
    stat_panel,
    table_panel,
    thresholds,
    trace_link_override,
    ts,
)

THIS_AGENT = f"{AGENT} = '${{agent}}'"
STATUS_COLORS = {"running": "green", "idle": "blue", "paused": "orange"}

AGENTS = f"""
SELECT DISTINCT {AGENT} AS agent
FROM {TRACES}
WHERE $__timeFilter(Timestamp) AND {service_filter()}
ORDER BY agent
"""

STATUS = f"""
SELECT argMax({attr(sc.AGENT_STATUS)}, Timestamp) AS status
FROM {TRACES}
WHERE {IS_HEARTBEAT} AND $__timeFilter(Timestamp) AND {THIS_AGENT}
"""

MISSED = f"""
SELECT dateDiff('millisecond', max(Timestamp), $__toTime) / 1000 AS since_last_beat_s,
       since_last_beat_s / greatest(argMax({HEARTBEAT_INTERVAL_S}, Timestamp), 1) AS missed_beats
FROM {TRACES}
WHERE {IS_HEARTBEAT} AND $__timeFilter(Timestamp) AND {THIS_AGENT}
"""

HEARTBEAT_GAPS = f"""
SELECT time, gap_s, 3 * interval_s AS missed_after_s
FROM (
    SELECT Timestamp AS time,
           dateDiff('millisecond',
                    lagInFrame(Timestamp, 1, Timestamp) OVER (ORDER BY Timestamp
                        ROWS BETWEEN 1 PRECEDING AND CURRENT ROW),
                    Timestamp) / 1000 AS gap_s,
           {HEARTBEAT_INTERVAL_S} AS interval_s
    FROM {TRACES}
    WHERE {IS_HEARTBEAT} AND $__timeFilter(Timestamp) AND {THIS_AGENT}
)
ORDER BY time
"""

ACTIONS_BY_TOOL = f"""
SELECT $__timeInterval(Timestamp) AS time, {attr(sc.GEN_AI_TOOL_NAME)} AS tool, count() AS actions
FROM {TRACES}
WHERE {IS_ACTION} AND $__timeFilter(Timestamp) AND {THIS_AGENT}
GROUP BY time, tool
ORDER BY time
"""

DECISION_LATENCY = f"""
SELECT $__timeInterval(Timestamp) AS time,
       quantile(0.5)(Duration) / 1e6 AS p50,
       quantile(0.95)(Duration) / 1e6 AS p95,
       quantile(0.99)(Duration) / 1e6 AS p99
FROM {TRACES}
WHERE {IS_DECISION} AND $__timeFilter(Timestamp) AND {THIS_AGENT}
GROUP BY time
ORDER BY time
"""

ERROR_RATE = f"""
SELECT $__timeInterval(Timestamp) AS time, countIf(StatusCode = 'Error') / count() AS error_ratio
FROM {TRACES}
WHERE {IS_ACTION} AND $__timeFilter(Timestamp) AND {THIS_AGENT}
GROUP BY time
ORDER BY time
"""

# The state held when the range starts, then every transition in it.
STATES = f"""
SELECT time, state FROM (
    SELECT toDateTime64($__fromTime, 9) AS time, argMax({attr(sc.STATE_TO)}, Timestamp) AS state
    FROM {TRACES}
    WHERE {IS_STATE} AND Timestamp < $__fromTime AND {THIS_AGENT}
    HAVING count() > 0
    UNION ALL
    SELECT Timestamp AS time, {attr(sc.STATE_TO)} AS state
    FROM {TRACES}
    WHERE {IS_STATE} AND $__timeFilter(Timestamp) AND {THIS_AGENT}
)
ORDER BY time
"""

GOAL_PROGRESS = f"""
SELECT Timestamp AS time,
       {attr(sc.GOAL_ID)} AS goal,
       toFloat64OrZero({attr(sc.GOAL_PROGRESS)}) AS progress
FROM {TRACES}
WHERE {IS_GOAL} AND $__timeFilter(Timestamp) AND {THIS_AGENT}
ORDER BY time
"""

BREAKER_HISTORY = f"""
SELECT time, breaker FROM (
    SELECT toDateTime64($__fromTime, 9) AS time, argMax({BREAKER_STATE}, Timestamp) AS breaker
    FROM {REMEDIATIONS}
    WHERE {IS_BREAKER} AND Timestamp < $__fromTime AND Agent = '${{agent}}'
    HAVING count() > 0
    UNION ALL
    SELECT Timestamp AS time, {BREAKER_STATE} AS breaker
    FROM {REMEDIATIONS}
    WHERE {IS_BREAKER} AND $__timeFilter(Timestamp) AND Agent = '${{agent}}'
)
ORDER BY time
"""

RECENT_SPANS = f"""
SELECT Timestamp AS time,
       SpanName AS span,
       {attr(sc.GEN_AI_TOOL_NAME)} AS tool,
       Duration / 1e6 AS duration_ms,
       StatusCode AS status,
       TraceId AS trace_id,
       SpanId AS span_id
FROM {TRACES}
WHERE $__timeFilter(Timestamp) AND {THIS_AGENT} AND NOT ({IS_HEARTBEAT})
ORDER BY Timestamp DESC
LIMIT 200
"""

ANOMALY_ANNOTATIONS = f"""
SELECT OnsetAt AS time,
       DetectedAt AS timeEnd,
       concat(Detector, ' (', Severity, ')') AS title,
       Summary AS text,
       concat(Severity, ',', Detector) AS tags
FROM {ANOMALIES}
WHERE $__timeFilter(DetectedAt) AND Agent = '${{agent}}'
ORDER BY time
"""

REMEDIATION_ANNOTATIONS = f"""
SELECT Timestamp AS time,
       Action AS title,
       concat(Kind, ' ', Action, if(Ok, ' delivered', concat(' failed: ', Error))) AS text,
       Kind AS tags
FROM {REMEDIATIONS}
WHERE $__timeFilter(Timestamp) AND Agent = '${{agent}}'
ORDER BY time
"""


def _annotation(name: str, sql: str, color: str) -> dash.AnnotationQuery:
    return (
        dash.AnnotationQuery()
        .name(name)
        .datasource(CLICKHOUSE)
        .enable(True)
        .hide(False)
        .icon_color(color)
        .target(ClickHouseAnnotationTargetBuilder(ch(sql, Format.TABLE, "Anno").build()))
    )


def _state_timeline(
    title: str, description: str, sql: str, colors: dict[str, str]
) -> statetimeline.Panel:
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(CLICKHOUSE)
        .with_target(ch(sql, Format.TABLE))
        .span(12)
        .height(5)
        .thresholds(GREEN)
        .mappings(color_mappings(colors))
        .show_value(common.VisibilityMode.AUTO)
        .merge_values(True)
        .row_height(0.8)
        .fill_opacity(80)
        .line_width(0)
    )


def agent_variable() -> dash.QueryVariable:
    return (
        dash.QueryVariable("agent")
        .label("Agent")
        .description("service.instance.id: the agent instance")
        .datasource(CLICKHOUSE)
        .query(" ".join(AGENTS.split()))
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(False)
        .include_all(False)
    )


def build() -> dash.Dashboard:
    """The Agent dashboard."""
    return (
        dashboard(
            UID_AGENT,
            "agentwatch / Agent",
            "One agent: liveness, behaviour, anomalies and remediations, spans into traces.",
            time_from="now-3h",
        )
        .with_variable(service_variable())
        .with_variable(agent_variable())
        .annotation(_annotation("Anomalies", ANOMALY_ANNOTATIONS, "red"))
        .annotation(_annotation("Remediations", REMEDIATION_ANNOTATIONS, "orange"))
        .with_row(row("Liveness"))
        .with_panel(
            stat_panel(
                "Status",
                "The status the agent reported in its last heartbeat.",
                ch(STATUS, Format.TABLE),
                fields="/^status$/",
                w=4,
            ).mappings(color_mappings(STATUS_COLORS))
        )
        .with_panel(
            stat_panel(
                "Since last heartbeat",
                "Time since the last heartbeat and how many of the agent's own intervals "
                "that is; 3 or more and the liveness detector reports it missing.",
                ch(MISSED, Format.TABLE),
                w=8,
                steps=thresholds((None, "green"), (2, "orange"), (3, "red")),
            ).override_by_name(
                "since_last_beat_s",
                [
                    model.DynamicConfigValue(id_val="unit", value="s"),
                    model.DynamicConfigValue(
                        id_val="color", value={"mode": "fixed", "fixedColor": "text"}
                    ),
                ],
            )
        )
        .with_panel(
            ts(
                "Heartbeat gaps",
                "Seconds between consecutive heartbeats; the dashed series is 3 intervals, "
                "where a missed-heartbeat anomaly fires.",
                ch(HEARTBEAT_GAPS),
                unit="s",
            ).override_by_name(
                "missed_after_s",
                [
                    model.DynamicConfigValue(
                        id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
                    ),
                    model.DynamicConfigValue(
                        id_val="color", value={"mode": "fixed", "fixedColor": "red"}
                    ),
                    model.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
                ],
            )
        )
        .with_row(row("Behaviour"))
        .with_panel(
            ts(
                "Actions by tool",
                "Tool calls per interval, stacked by gen_ai.tool.name.",
                ch(ACTIONS_BY_TOOL),
                bars=True,
                stacked=True,
            )
        )
        .with_panel(
            ts(
                "Decision latency",
                "Duration of agentwatch.decision spans: median, p95, p99.",
                ch(DECISION_LATENCY),
                unit="ms",
            )
        )
        .with_panel(
            _state_timeline(
                "State",
                "The agent's state machine (agentwatch.state_transition spans).",
                STATES,
                {},
            )
        )
        .with_panel(
            _state_timeline(
                "Breaker",
                "The agent's circuit breaker, from the remediation log.",
                BREAKER_HISTORY,
                BREAKER_COLORS,
            )
        )
        .with_panel(
            ts(
                "Goal progress",
                "agentwatch.goal.progress per goal (0..1). Flat progress while actions go on is "
                "what the stalled-goal detector looks for.",
                ch(GOAL_PROGRESS),
                unit="percentunit",
            )
            .min(0)
            .max(1)
        )
        .with_panel(
            ts(
                "Tool error rate",
                "Share of tool calls that ended with status Error.",
                ch(ERROR_RATE),
                unit="percentunit",
            )
            .min(0)
            .thresholds(thresholds((None, "green"), (0.05, "orange"), (0.2, "red")))
            .thresholds_style(
                cb.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
            )
        )
        .with_row(row("Spans"))
        .with_panel(
            table_panel(
                "Recent spans",
                "The agent's latest 200 spans (heartbeats excluded). Click a trace id to open "
                "the trace in the ClickHouse plugin's trace view.",
                ch(RECENT_SPANS, Format.TABLE),
                w=24,
                h=10,
            )
            .override_by_name("trace_id", trace_link_override())
            .override_by_name("duration_ms", [model.DynamicConfigValue(id_val="unit", value="ms")])
        )
    )
