"""Fleet: every agent at a glance. Who is alive, how busy each cohort is, what is anomalous,
which breakers are open, who is noisiest and who talks to whom."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as model

from agentwatch.sdk import semconv as sc

from ._clickhouse import Format
from ._common import (
    AGENT,
    ANOMALIES,
    BREAKER_COLORS,
    BREAKER_STATE,
    HEARTBEAT_INTERVAL_S,
    IS_ACTION,
    IS_BREAKER,
    IS_HEARTBEAT,
    IS_MESSAGE,
    OPEN_STATES,
    REMEDIATIONS,
    SEVERITY_COLORS,
    TRACES,
    UID_AGENT,
    UID_FLEET,
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
    ts,
)

MESSAGE_SEND = "send"

# Last heartbeat per agent in the range; "alive" = seen within 3 of its own intervals of the end.
_LAST_BEATS = f"""
    SELECT {AGENT} AS agent,
           argMax({attr(sc.AGENT_STATUS)}, Timestamp) AS status,
           max(Timestamp) AS last_beat,
           argMax({HEARTBEAT_INTERVAL_S}, Timestamp) AS interval_s
    FROM {TRACES}
    WHERE {IS_HEARTBEAT} AND $__timeFilter(Timestamp) AND {service_filter()}
    GROUP BY agent"""
_ALIVE = "dateDiff('second', last_beat, $__toTime) <= 3 * greatest(interval_s, 1)"

ALIVE_BY_STATUS = f"""
SELECT status, count() AS agents
FROM ({_LAST_BEATS}
)
WHERE {_ALIVE}
GROUP BY status
ORDER BY status
"""

SILENT_AGENTS = f"""
SELECT countIf(NOT ({_ALIVE})) AS silent_agents
FROM ({_LAST_BEATS}
)
"""

_LAST_BREAKER = f"""
    SELECT Agent AS agent,
           argMax({BREAKER_STATE}, Timestamp) AS state,
           max(Timestamp) AS since,
           argMax(AnomalyId, Timestamp) AS anomaly_id
    FROM {REMEDIATIONS}
    WHERE {IS_BREAKER} AND Timestamp <= $__toTime AND {agent_in_services()}
    GROUP BY agent"""

OPEN_BREAKER_COUNT = f"""
SELECT countIf(state IN ({OPEN_STATES})) AS open_breakers
FROM ({_LAST_BREAKER}
)
"""

ANOMALY_COUNTS = f"""
SELECT count() AS anomalies, countIf(Severity = 'critical') AS critical
FROM {ANOMALIES}
WHERE $__timeFilter(DetectedAt) AND {service_filter("Service")}
"""

AGENT_COUNT = f"""
SELECT $__timeInterval(Timestamp) AS time, ServiceName AS cohort, uniq({AGENT}) AS agents
FROM {TRACES}
WHERE {IS_HEARTBEAT} AND $__timeFilter(Timestamp) AND {service_filter()}
GROUP BY time, cohort
ORDER BY time
"""

ACTION_RATE = f"""
SELECT $__timeInterval(Timestamp) AS time, ServiceName AS cohort, count() / $__interval_s AS actions
FROM {TRACES}
WHERE {IS_ACTION} AND $__timeFilter(Timestamp) AND {service_filter()}
GROUP BY time, cohort
ORDER BY time
"""

ANOMALIES_OVER_TIME = f"""
SELECT $__timeInterval(DetectedAt) AS time, Severity AS severity, count() AS anomalies
FROM {ANOMALIES}
WHERE $__timeFilter(DetectedAt) AND {service_filter("Service")}
GROUP BY time, severity
ORDER BY time
"""

OPEN_BREAKERS = f"""
SELECT agent, state, since, anomaly_id
FROM ({_LAST_BREAKER}
)
WHERE state IN ({OPEN_STATES})
ORDER BY since DESC
"""

NOISIEST = f"""
SELECT {AGENT} AS agent,
       any(ServiceName) AS cohort,
       countIf({IS_ACTION}) AS actions,
       actions / greatest(dateDiff('second', $__fromTime, $__toTime) / 60, 1) AS actions_per_min,
       countIf({IS_ACTION} AND StatusCode = 'Error') / greatest(actions, 1) AS error_ratio,
       uniqExactIf({attr(sc.ACTION_FINGERPRINT)}, {IS_ACTION})
           / greatest(actions, 1) AS distinct_ratio
FROM {TRACES}
WHERE $__timeFilter(Timestamp) AND {service_filter()}
GROUP BY agent
HAVING actions > 0
ORDER BY actions DESC
LIMIT 10
"""

MESSAGES = f"""
SELECT {AGENT} AS sender,
       {attr(sc.MESSAGE_PEER)} AS receiver,
       count() AS messages,
       sum(toUInt64OrZero({attr(sc.MESSAGE_BYTES)})) AS bytes
FROM {TRACES}
WHERE {IS_MESSAGE} AND {attr(sc.MESSAGE_DIRECTION)} = {lit(MESSAGE_SEND)}
  AND $__timeFilter(Timestamp) AND {service_filter()}
GROUP BY sender, receiver
ORDER BY messages DESC
LIMIT 50
"""

MESSAGE_RATE = f"""
SELECT $__timeInterval(Timestamp) AS time, ServiceName AS cohort,
       sum(toUInt64OrZero({attr(sc.MESSAGE_BYTES)})) / $__interval_s AS bytes
FROM {TRACES}
WHERE {IS_MESSAGE} AND {attr(sc.MESSAGE_DIRECTION)} = {lit(MESSAGE_SEND)}
  AND $__timeFilter(Timestamp) AND {service_filter()}
GROUP BY time, cohort
ORDER BY time
"""

_AGENT_LINK = f"/d/{UID_AGENT}/agentwatch-agent?var-agent=${{__value.raw}}&${{__url_time_range}}"


def _agent_link(title: str = "Open agent") -> list[model.DynamicConfigValue]:
    return [
        model.DynamicConfigValue(
            id_val="links", value=[{"title": title, "url": _AGENT_LINK, "targetBlank": False}]
        )
    ]


def build() -> dash.Dashboard:
    """The Fleet dashboard."""
    red_above_zero = thresholds((None, "green"), (1, "red"))
    return (
        dashboard(
            UID_FLEET,
            "agentwatch / Fleet",
            "Every agent at a glance: liveness, activity per cohort, anomalies, breakers.",
        )
        .with_variable(service_variable())
        .with_row(row("Now"))
        .with_panel(
            stat_panel(
                "Agents alive by status",
                "Agents whose last heartbeat is within 3 of their heartbeat intervals of the "
                "range end, by the status they reported (running, idle, paused).",
                ch(ALIVE_BY_STATUS, Format.TABLE),
                all_values=True,
                steps=thresholds((None, "blue")),
                w=8,
            )
        )
        .with_panel(
            stat_panel(
                "Silent agents",
                "Agents seen in the range whose heartbeat stopped for more than 3 intervals.",
                ch(SILENT_AGENTS, Format.TABLE),
                steps=red_above_zero,
            )
        )
        .with_panel(
            stat_panel(
                "Open breakers",
                "Agents whose circuit breaker is open, half-open or forced open now.",
                ch(OPEN_BREAKER_COUNT, Format.TABLE),
                steps=red_above_zero,
            )
        )
        .with_panel(
            stat_panel(
                "Anomalies",
                "Anomalies detected in the range; critical ones on the right.",
                ch(ANOMALY_COUNTS, Format.TABLE),
                steps=thresholds((None, "green"), (1, "orange")),
                w=8,
            )
        )
        .with_row(row("Activity"))
        .with_panel(
            ts(
                "Agents reporting",
                "Distinct agents sending heartbeats, per cohort (service.name).",
                ch(AGENT_COUNT),
                stacked=True,
            )
        )
        .with_panel(
            ts(
                "Action rate by cohort",
                "Tool calls (execute_tool spans) per second, per cohort.",
                ch(ACTION_RATE),
                unit="ops",
            )
        )
        .with_panel(
            ts(
                "Anomalies by severity",
                "Detector findings per interval, stacked by severity.",
                ch(ANOMALIES_OVER_TIME),
                bars=True,
                stacked=True,
            ).overrides(
                [
                    dash.DashboardFieldConfigSourceOverrides()
                    .matcher(model.MatcherConfig(id_val="byRegexp", options=f".*{severity}.*"))
                    .properties(
                        [
                            model.DynamicConfigValue(
                                id_val="color", value={"mode": "fixed", "fixedColor": color}
                            )
                        ]
                    )
                    for severity, color in SEVERITY_COLORS.items()
                ]
            )
        )
        .with_panel(
            ts(
                "Message throughput by cohort",
                "Bytes per second sent between agents (agentwatch.message spans, send side).",
                ch(MESSAGE_RATE),
                unit="Bps",
            )
        )
        .with_row(row("Agents"))
        .with_panel(
            table_panel(
                "Breakers open now",
                "Latest breaker transition per agent, where it left the breaker open.",
                ch(OPEN_BREAKERS, Format.TABLE),
                w=8,
            )
            .override_by_name(
                "state",
                [
                    model.DynamicConfigValue(
                        id_val="mappings", value=color_mappings(BREAKER_COLORS)
                    ),
                    model.DynamicConfigValue(
                        id_val="custom.cellOptions", value={"type": "color-background"}
                    ),
                ],
            )
            .override_by_name("agent", _agent_link())
        )
        .with_panel(
            table_panel(
                "Noisiest agents",
                "Top 10 agents by tool calls in the range. A low distinct ratio (distinct action "
                "fingerprints per call) means the agent repeats itself.",
                ch(NOISIEST, Format.TABLE),
                w=16,
            )
            .override_by_name("error_ratio", _percent_gauge())
            .override_by_name("distinct_ratio", _percent_gauge(reverse=True))
            .override_by_name(
                "actions_per_min", [model.DynamicConfigValue(id_val="decimals", value=1)]
            )
            .override_by_name("agent", _agent_link())
        )
        .with_panel(
            table_panel(
                "Messages between agents",
                "Who sends to whom (agentwatch.message spans, send side), busiest pairs first.",
                ch(MESSAGES, Format.TABLE),
                w=24,
            ).override_by_name("bytes", [model.DynamicConfigValue(id_val="unit", value="bytes")])
        )
    )


def _percent_gauge(*, reverse: bool = False) -> list[model.DynamicConfigValue]:
    steps = (
        [
            {"value": None, "color": "red"},
            {"value": 0.3, "color": "orange"},
            {"value": 0.6, "color": "green"},
        ]
        if reverse
        else [
            {"value": None, "color": "green"},
            {"value": 0.05, "color": "orange"},
            {"value": 0.2, "color": "red"},
        ]
    )
    return [
        model.DynamicConfigValue(id_val="unit", value="percentunit"),
        model.DynamicConfigValue(id_val="min", value=0),
        model.DynamicConfigValue(id_val="max", value=1),
        model.DynamicConfigValue(id_val="thresholds", value={"mode": "absolute", "steps": steps}),
        model.DynamicConfigValue(
            id_val="custom.cellOptions", value={"type": "gauge", "mode": "basic"}
        ),
    ]
