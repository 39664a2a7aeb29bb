"""Shared pieces of the dashboards: datasources, SQL fragments spelled from the schema's names,
and panel builders preset the way every agentwatch panel is set up."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from agentwatch.collector._schema import ANOMALIES_TABLE, REMEDIATIONS_TABLE, TRACES_TABLE
from agentwatch.sdk import semconv as sc

from ._clickhouse import PLUGIN_ID, ClickHouseQueryBuilder, Format, QueryType

# Provisioned datasource uids: the dashboards reference them directly, so a provisioned Grafana
# opens every panel with data and no datasource picker (see _provisioning).
CLICKHOUSE_UID = "agentwatch-clickhouse"
PROMETHEUS_UID = "agentwatch-prometheus"
CLICKHOUSE = model.DataSourceRef(type_val=PLUGIN_ID, uid=CLICKHOUSE_UID)
PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)

TAGS = ["agentwatch"]
FOLDER_UID = "agentwatch"
UID_FLEET = "agentwatch-fleet"
UID_AGENT = "agentwatch-agent"
UID_INCIDENTS = "agentwatch-incidents"
UID_SERVICE = "agentwatch-service-health"

TRACES = TRACES_TABLE
ANOMALIES = ANOMALIES_TABLE
REMEDIATIONS = REMEDIATIONS_TABLE


def res(key: str) -> str:
    """A resource attribute of a span row."""
    return f"ResourceAttributes['{key}']"


def attr(key: str) -> str:
    """A span attribute of a span row."""
    return f"SpanAttributes['{key}']"


def lit(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# The agent key, with the contract's fallbacks (DESIGN.md: Telemetry contract).
AGENT = (
    f"coalesce(nullIf({res(sc.SERVICE_INSTANCE_ID)}, ''), "
    f"nullIf({res(sc.GEN_AI_AGENT_ID)}, ''), ServiceName)"
)
IS_ACTION = f"{attr(sc.GEN_AI_OPERATION_NAME)} = {lit(sc.OP_EXECUTE_TOOL)}"
IS_HEARTBEAT = f"SpanName = {lit(sc.SPAN_HEARTBEAT)}"
IS_DECISION = f"SpanName = {lit(sc.SPAN_DECISION)}"
IS_STATE = f"SpanName = {lit(sc.SPAN_STATE_TRANSITION)}"
IS_GOAL = f"SpanName = {lit(sc.SPAN_GOAL_PROGRESS)}"
IS_MESSAGE = f"SpanName = {lit(sc.SPAN_MESSAGE)}"
HEARTBEAT_INTERVAL_S = f"toFloat64OrZero({attr(sc.HEARTBEAT_INTERVAL_S)})"

# agentwatch_remediations: Kind is the delivery target, Action "<control type>:<state|checkpoint>"
# for control webhooks and "notify" for notifications (alerts._remediator).
KIND_CONTROL = "control"
IS_BREAKER = (
    f"Kind = {lit(KIND_CONTROL)} AND startsWith(Action, {lit(sc.CONTROL_TYPE_BREAKER + ':')})"
)
IS_RECOVERY = (
    f"Kind = {lit(KIND_CONTROL)} AND (startsWith(Action, {lit(sc.CONTROL_TYPE_ROLLBACK + ':')}) "
    f"OR startsWith(Action, {lit(sc.CONTROL_TYPE_FAILOVER + ':')}))"
)
BREAKER_STATE = f"replaceOne(Action, {lit(sc.CONTROL_TYPE_BREAKER + ':')}, '')"
OPEN_STATES = ", ".join(
    lit(s) for s in (sc.BREAKER_OPEN, sc.BREAKER_HALF_OPEN, sc.BREAKER_FORCED_OPEN)
)


def color_mappings(colors: dict[str, str]) -> list[model.ValueMapping]:
    """Value -> colour mappings for string states (breaker, agent status, severity)."""
    return [
        model.ValueMap(
            options={
                value: model.ValueMappingResult(color=color, index=i)
                for i, (value, color) in enumerate(colors.items())
            }
        )
    ]


BREAKER_COLORS = {
    sc.BREAKER_CLOSED: "green",
    sc.BREAKER_HALF_OPEN: "orange",
    sc.BREAKER_OPEN: "red",
    sc.BREAKER_FORCED_OPEN: "dark-red",
}
SEVERITY_COLORS = {"info": "blue", "warning": "orange", "critical": "red"}


def service_filter(column: str = "ServiceName") -> str:
    """Restrict to the ``$service`` selection; the whole condition drops out on "All"."""
    return f"$__conditionalAll({column} IN (${{service}}), $service)"


def agent_in_services(column: str = "Agent") -> str:
    """For agentwatch's own tables, keyed by agent: agents seen in the selected services."""
    return (
        f"$__conditionalAll({column} IN (SELECT DISTINCT {AGENT} FROM {TRACES} "
        f"WHERE ServiceName IN (${{service}})), $service)"
    )


def ch(sql: str, fmt: Format = Format.TIME_SERIES, ref_id: str = "A") -> ClickHouseQueryBuilder:
    query_type = QueryType.TIME_SERIES if fmt == Format.TIME_SERIES else QueryType.TABLE
    return (
        ClickHouseQueryBuilder(sql.strip())
        .ref_id(ref_id)
        .format(fmt)
        .query_type(query_type)
        .datasource(CLICKHOUSE)
    )


def prom(expr: str, legend: str, ref_id: str = "A") -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref_id)
        .range()
        .datasource(PROMETHEUS)
    )


def thresholds(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=v, color=c) for v, c in steps])
    )


GREEN = thresholds((None, "green"))


def row(title: str) -> dash.Row:
    return dash.Row(title)


def ts(
    title: str,
    description: str,
    target: cogbuilder.Builder[Any],
    *,
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    bars: bool = False,
    stacked: bool = False,
    datasource: model.DataSourceRef = CLICKHOUSE,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(datasource)
        .with_target(target)
        .unit(unit)
        .span(w)
        .height(h)
        .thresholds(GREEN)
        .fill_opacity(60 if bars else 12)
        .line_width(1)
        .span_nulls(False)
        .legend(
            cb.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            cb.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS)
    if stacked:
        panel = panel.stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL).group("A"))
    return panel


def stat_panel(
    title: str,
    description: str,
    target: cogbuilder.Builder[Any],
    *,
    unit: str = "short",
    steps: dash.ThresholdsConfig = GREEN,
    w: int = 4,
    h: int = 4,
    all_values: bool = False,
    fields: str = "",
    datasource: model.DataSourceRef = CLICKHOUSE,
) -> stat.Panel:
    """A stat; ``all_values`` shows one value per row (named by the row's string column)."""
    reduce = cb.ReduceDataOptions().calcs(["lastNotNull"]).values(all_values).fields(fields)
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(datasource)
        .with_target(target)
        .unit(unit)
        .span(w)
        .height(h)
        .thresholds(steps)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .reduce_options(reduce)
    )


def table_panel(
    title: str,
    description: str,
    target: cogbuilder.Builder[Any],
    *,
    w: int = 12,
    h: int = 8,
) -> table.Panel:
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(CLICKHOUSE)
        .with_target(target)
        .span(w)
        .height(h)
        .thresholds(GREEN)
        .filterable(True)
        .cell_height(common.TableCellHeight.SM)
    )


def unit_override(name: str, unit: str) -> tuple[str, list[model.DynamicConfigValue]]:
    return name, [model.DynamicConfigValue(id_val="unit", value=unit)]


def trace_link_override() -> list[model.DynamicConfigValue]:
    """A field's data link into the plugin's trace view, for the trace id in that field.

    Mirrors the internal link the plugin itself puts on trace ids: a builder query in trace-id
    mode over the OTel layout of ``otel_traces``.
    """
    columns = [
        ("time", "Timestamp"),
        ("trace_id", "TraceId"),
        ("trace_span_id", "SpanId"),
        ("trace_parent_span_id", "ParentSpanId"),
        ("trace_service_name", "ServiceName"),
        ("trace_operation_name", "SpanName"),
        ("trace_duration_time", "Duration"),
        ("trace_tags", "SpanAttributes"),
        ("trace_service_tags", "ResourceAttributes"),
        ("trace_status_code", "StatusCode"),
        ("trace_kind", "SpanKind"),
    ]
    query = {
        "refId": "Trace ID",
        "datasource": {"type": PLUGIN_ID, "uid": CLICKHOUSE_UID},
        "editorType": "builder",
        "queryType": str(QueryType.TRACES),
        "format": int(Format.TRACE),
        "rawSql": "",
        "builderOptions": {
            "database": "default",
            "table": TRACES,
            "queryType": str(QueryType.TRACES),
            "columns": [{"name": name, "hint": hint} for hint, name in columns],
            "filters": [],
            "orderBy": [],
            "meta": {
                "minimized": True,
                "isTraceIdMode": True,
                "traceId": "${__value.raw}",
                "traceDurationUnit": "nanoseconds",
                "otelEnabled": True,
                "otelVersion": "latest",
            },
        },
    }
    link = {
        "title": "View trace",
        "url": "",
        "targetBlank": False,
        "internal": {"datasourceUid": CLICKHOUSE_UID, "datasourceName": PLUGIN_ID, "query": query},
    }
    return [model.DynamicConfigValue(id_val="links", value=[link])]


def service_variable(label: str = "Cohort", *, multi: bool = True) -> dash.QueryVariable:
    return (
        dash.QueryVariable("service")
        .label(label)
        .description("service.name: the agent type (cohort)")
        .datasource(CLICKHOUSE)
        .query(
            f"SELECT DISTINCT ServiceName FROM {TRACES} "
            "WHERE $__timeFilter(Timestamp) ORDER BY ServiceName"
        )
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(True)
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )


def dashboard(
    uid: str, title: str, description: str, *, time_from: str = "now-1h"
) -> dash.Dashboard:
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .time(time_from, "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .editable()
        .link(
            dash.DashboardLink("agentwatch")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(TAGS)
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
            .icon("external link")
            .tooltip("")
            .url("")
            .target_blank(False)
        )
    )
