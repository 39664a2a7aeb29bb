"""Grafana provisioning as data: datasources, the dashboard provider, and alert rules.

Each function returns the document Grafana reads from ``/etc/grafana/provisioning/<kind>/``;
:mod:`._export` writes them as YAML. Grafana expands ``$VAR`` / ``${VAR}`` from its environment
in these files (except alert-rule query models, which it keeps raw, so SQL macros survive), which
is how the ClickHouse password and addresses are injected without being written down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentwatch.sdk import semconv as sc

from ._clickhouse import PLUGIN_ID, EditorType, Format, QueryType
from ._common import (
    AGENT,
    ANOMALIES,
    CLICKHOUSE_UID,
    FOLDER_UID,
    HEARTBEAT_INTERVAL_S,
    IS_HEARTBEAT,
    PROMETHEUS_UID,
    TRACES,
    UID_AGENT,
    UID_INCIDENTS,
    UID_SERVICE,
    attr,
)
from ._service_health import DROPPED, REJECTED

DASHBOARDS_PATH = "/etc/grafana/provisioning/dashboards/agentwatch"
FOLDER = "agentwatch"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where Grafana reaches ClickHouse and Prometheus (defaults: the compose service names).

    Attributes:
        clickhouse_host: ClickHouse server host (the embedded engine serves no one: Grafana needs
            a ClickHouse server, see deploy/).
        clickhouse_port: Its HTTP port.
        clickhouse_database: Database holding agentwatch's tables.
        clickhouse_user: User; the password comes from ``$AGENTWATCH_CLICKHOUSE_PASSWORD`` in
            Grafana's environment.
        prometheus_url: Prometheus scraping the service's ``/metrics``.
    """

    clickhouse_host: str = "clickhouse"
    clickhouse_port: int = 8123
    clickhouse_database: str = "default"
    clickhouse_user: str = "default"
    prometheus_url: str = "http://prometheus:9090"


def datasources(endpoints: Endpoints = Endpoints()) -> dict[str, Any]:
    """ClickHouse (OTel traces mode over ``otel_traces``) and Prometheus."""
    traces = {
        "defaultDatabase": endpoints.clickhouse_database,
        "defaultTable": TRACES,
        "otelEnabled": True,
        "otelVersion": "latest",
        "durationUnit": "nanoseconds",
        "traceIdColumn": "TraceId",
        "spanIdColumn": "SpanId",
        "operationNameColumn": "SpanName",
        "parentSpanIdColumn": "ParentSpanId",
        "serviceNameColumn": "ServiceName",
        "durationColumn": "Duration",
        "startTimeColumn": "Timestamp",
        "tagsColumn": "SpanAttributes",
        "serviceTagsColumn": "ResourceAttributes",
        "kindColumn": "SpanKind",
        "statusCodeColumn": "StatusCode",
        "statusMessageColumn": "StatusMessage",
        "stateColumn": "TraceState",
        "instrumentationLibraryNameColumn": "ScopeName",
        "instrumentationLibraryVersionColumn": "ScopeVersion",
    }
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "agentwatch ClickHouse",
                "type": PLUGIN_ID,
                "uid": CLICKHOUSE_UID,
                "access": "proxy",
                "orgId": 1,
                "isDefault": True,
                "editable": False,
                "jsonData": {
                    "host": endpoints.clickhouse_host,
                    "port": endpoints.clickhouse_port,
                    "protocol": "http",
                    "secure": False,
                    "username": endpoints.clickhouse_user,
                    "defaultDatabase": endpoints.clickhouse_database,
                    "traces": traces,
                },
                "secureJsonData": {"password": "$AGENTWATCH_CLICKHOUSE_PASSWORD"},
            },
            {
                "name": "agentwatch Prometheus",
                "type": "prometheus",
                "uid": PROMETHEUS_UID,
                "access": "proxy",
                "orgId": 1,
                "url": endpoints.prometheus_url,
                "isDefault": False,
                "editable": False,
                "jsonData": {"httpMethod": "POST", "timeInterval": "15s"},
            },
        ],
    }


def dashboard_provider() -> dict[str, Any]:
    """The file provider that loads the exported dashboards into the ``agentwatch`` folder."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "agentwatch",
                "orgId": 1,
                "folder": FOLDER,
                "folderUid": FOLDER_UID,
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": DASHBOARDS_PATH, "foldersFromFilesStructure": False},
            }
        ],
    }


CRITICAL_ANOMALIES = f"""
SELECT Agent AS agent, any(Service) AS service, count() AS critical_anomalies
FROM {ANOMALIES}
WHERE $__timeFilter(DetectedAt) AND Severity = 'critical'
GROUP BY agent
"""

MISSING_HEARTBEATS = f"""
SELECT agent,
       service,
       dateDiff('millisecond', last_beat, $__toTime) / 1000
           / greatest(interval_s, 1) AS missed_beats
FROM (
    SELECT {AGENT} AS agent,
           any(ServiceName) AS service,
           max(Timestamp) AS last_beat,
           argMax({HEARTBEAT_INTERVAL_S}, Timestamp) AS interval_s,
           argMax({attr(sc.AGENT_STATUS)}, Timestamp) AS status
    FROM {TRACES}
    WHERE {IS_HEARTBEAT} AND $__timeFilter(Timestamp)
    GROUP BY agent
)
"""


def _clickhouse_data(sql: str, window_s: int) -> dict[str, Any]:
    return {
        "refId": "A",
        "relativeTimeRange": {"from": window_s, "to": 0},
        "datasourceUid": CLICKHOUSE_UID,
        "model": {
            "refId": "A",
            "datasource": {"type": PLUGIN_ID, "uid": CLICKHOUSE_UID},
            "editorType": str(EditorType.SQL),
            "format": int(Format.TABLE),
            "queryType": str(QueryType.TABLE),
            "rawSql": " ".join(sql.split()),
            "intervalMs": 1000,
            "maxDataPoints": 43200,
        },
    }


def _prometheus_data(expr: str, window_s: int) -> dict[str, Any]:
    return {
        "refId": "A",
        "relativeTimeRange": {"from": window_s, "to": 0},
        "datasourceUid": PROMETHEUS_UID,
        "model": {
            "refId": "A",
            "datasource": {"type": "prometheus", "uid": PROMETHEUS_UID},
            "expr": expr,
            "instant": True,
            "range": False,
            "intervalMs": 1000,
            "maxDataPoints": 43200,
        },
    }


def _threshold(above: float) -> dict[str, Any]:
    return {
        "refId": "C",
        "relativeTimeRange": {"from": 0, "to": 0},
        "datasourceUid": "__expr__",
        "model": {
            "refId": "C",
            "type": "threshold",
            "expression": "A",
            "datasource": {"type": "__expr__", "uid": "__expr__"},
            "conditions": [{"evaluator": {"type": "gt", "params": [above]}}],
        },
    }


def _rule(
    uid: str,
    title: str,
    data: dict[str, Any],
    above: float,
    *,
    severity: str,
    summary: str,
    description: str,
    dashboard_uid: str,
    for_: str = "0s",
    no_data: str = "OK",
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "condition": "C",
        "data": [data, _threshold(above)],
        "noDataState": no_data,
        "execErrState": "Error",
        "for": for_,
        "annotations": {
            "summary": summary,
            "description": description,
            "__dashboardUid__": dashboard_uid,
        },
        "labels": {"severity": severity, "source": "agentwatch"},
        "isPaused": False,
    }


def alert_rules() -> dict[str, Any]:
    """Grafana-managed alert rules for the critical conditions, beside agentwatch's own alerting.

    One series per agent (the SQL's string columns become labels), so each agent alerts on its own.
    """
    rules = [
        _rule(
            "agentwatch-critical-anomaly",
            "Agent has a critical anomaly",
            _clickhouse_data(CRITICAL_ANOMALIES, 300),
            0,
            severity="critical",
            summary="{{ $labels.agent }} ({{ $labels.service }}): critical anomaly",
            description="{{ $values.A }} critical anomalies for this agent in the last 5 minutes.",
            dashboard_uid=UID_INCIDENTS,
        ),
        _rule(
            "agentwatch-heartbeat-missing",
            "Agent heartbeat missing",
            _clickhouse_data(MISSING_HEARTBEATS, 3600),
            3,
            severity="critical",
            summary="{{ $labels.agent }} ({{ $labels.service }}): no heartbeat for 3 intervals",
            description="{{ $values.A }} heartbeat intervals since the agent's last heartbeat.",
            dashboard_uid=UID_AGENT,
        ),
        _rule(
            "agentwatch-ingest-rejects",
            "agentwatch rejects spans",
            _prometheus_data(f"sum(increase({REJECTED}[5m]))", 300),
            0,
            severity="critical",
            summary="agentwatch rejected spans in the last 5 minutes",
            description="{{ $values.A }} spans rejected as invalid; check the senders' SDKs.",
            dashboard_uid=UID_SERVICE,
        ),
        _rule(
            "agentwatch-ingest-drops",
            "agentwatch drops spans",
            _prometheus_data(f"sum(increase({DROPPED}[5m]))", 300),
            0,
            severity="warning",
            summary="agentwatch dropped spans under backpressure",
            description="{{ $values.A }} spans dropped in the last 5 minutes.",
            dashboard_uid=UID_SERVICE,
            for_="5m",
        ),
    ]
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": "agentwatch",
                "folder": FOLDER,
                "interval": "1m",
                "rules": rules,
            }
        ],
    }
