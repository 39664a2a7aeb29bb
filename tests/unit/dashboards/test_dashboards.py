"""Dashboards as code: SDK round-trips, conventions, provisioning documents, macro expansion."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.models import dashboard as model

from agentwatch.dashboards import (
    PLUGIN_ID,
    ClickHouseAnnotationTarget,
    ClickHouseQuery,
    ClickHouseQueryBuilder,
    Format,
    Selection,
    alert_rules,
    build_dashboards,
    dashboard_from_json,
    dashboard_provider,
    datasources,
    expand,
    export,
    to_json,
)
from agentwatch.dashboards._macros import ALL
from agentwatch.dashboards._service_health import METRICS

BOARDS = {board.uid: to_json(board) for board in build_dashboards()}
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T1 = datetime(2026, 1, 2, 4, 4, 5, tzinfo=UTC)


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_json_round_trips_through_the_sdk_models(uid: str) -> None:
    data = BOARDS[uid]
    assert to_json(dashboard_from_json(json.loads(json.dumps(data)))) == data


def test_targets_decode_into_the_clickhouse_variant() -> None:
    decoded = dashboard_from_json(BOARDS["agentwatch-fleet"])
    panels = [p for p in decoded.panels or [] if isinstance(p, model.Panel)]
    targets = [t for p in panels for t in p.targets or []]
    assert targets and all(isinstance(t, ClickHouseQuery) for t in targets)
    agent = dashboard_from_json(BOARDS["agentwatch-agent"])
    annotations = agent.annotations.list_val if agent.annotations else []
    assert any(isinstance(a.target, ClickHouseAnnotationTarget) for a in annotations or [])


def test_the_variant_is_the_sdks_registered_dataquery() -> None:
    query = ClickHouseQueryBuilder("SELECT 1").ref_id("A").format(Format.TABLE).build()
    data = query.to_json()
    assert data == {"rawSql": "SELECT 1", "refId": "A", "editorType": "sql", "format": 1}
    decoded = cogruntime.dataquery_from_json(data, PLUGIN_ID)
    assert isinstance(decoded, ClickHouseQuery) and decoded.to_json() == data


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_dashboards_follow_the_house_conventions(uid: str) -> None:
    board = BOARDS[uid]
    assert board["uid"] == uid and board["title"].startswith("agentwatch / ")
    assert "agentwatch" in board["tags"] and board["time"]["to"] == "now"
    assert board["refresh"] and board["description"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    assert any(p["type"] == "row" for p in board["panels"])
    for panel in _panels(board):
        assert panel["description"], panel["title"]
        assert panel["datasource"]["uid"].startswith("agentwatch-")
        assert 1 <= panel["gridPos"]["w"] <= 24 and panel["gridPos"]["h"] >= 4
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        defaults = panel["fieldConfig"]["defaults"]
        assert "thresholds" in defaults, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]


def test_panel_counts() -> None:
    counts = {uid: len(_panels(b)) for uid, b in BOARDS.items()}
    assert counts == {
        "agentwatch-fleet": 11,
        "agentwatch-agent": 10,
        "agentwatch-incidents": 9,
        "agentwatch-service-health": 12,
    }


def test_trace_ids_link_into_the_plugins_trace_view() -> None:
    for uid in ("agentwatch-agent", "agentwatch-incidents"):
        links = [
            link
            for p in _panels(BOARDS[uid])
            for o in p["fieldConfig"]["overrides"]
            if o["matcher"]["options"] == "trace_id"
            for prop in o["properties"]
            if prop["id"] == "links"
            for link in prop["value"]
        ]
        assert links, uid
        query = links[0]["internal"]["query"]
        assert query["builderOptions"]["queryType"] == "traces"
        assert query["builderOptions"]["meta"]["isTraceIdMode"] is True
        assert query["builderOptions"]["meta"]["traceId"] == "${__value.raw}"


def test_service_health_uses_only_the_services_metrics() -> None:
    exprs = [t["expr"] for p in _panels(BOARDS["agentwatch-service-health"]) for t in p["targets"]]
    names = {m for e in exprs for m in re.findall(r"agentwatch_\w+", e)}
    assert names <= {*METRICS, "agentwatch_clickhouse_insert_seconds_bucket"}
    assert set(METRICS) <= {n.removesuffix("_bucket") for n in names}
    for expr in exprs:
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")


def test_datasources_point_the_plugin_at_otel_traces() -> None:
    doc = datasources()
    assert doc["apiVersion"] == 1
    (clickhouse,) = [d for d in doc["datasources"] if d["type"] == PLUGIN_ID]
    traces = clickhouse["jsonData"]["traces"]
    assert traces["defaultTable"] == "otel_traces" and traces["otelEnabled"] is True
    assert {"name", "type", "uid", "access", "jsonData"} <= clickhouse.keys()
    assert {"host", "port", "protocol"} <= clickhouse["jsonData"].keys()
    uids = {d["uid"] for d in doc["datasources"]}
    used = {
        p["datasource"]["uid"] for b in BOARDS.values() for p in _panels(b) if "datasource" in p
    }
    assert used <= uids


def test_dashboard_provider_is_a_file_provider() -> None:
    (provider,) = dashboard_provider()["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    assert {"name", "orgId", "folder", "options"} <= provider.keys()


def test_alert_rules_have_what_grafana_requires() -> None:
    doc = alert_rules()
    assert doc["apiVersion"] == 1
    titles = []
    for group in doc["groups"]:
        assert {"orgId", "name", "folder", "interval", "rules"} <= group.keys()
        for rule in group["rules"]:
            assert {"uid", "title", "condition", "data", "noDataState", "execErrState", "for"} <= (
                rule.keys()
            )
            ref_ids = [d["refId"] for d in rule["data"]]
            assert rule["condition"] in ref_ids
            for data in rule["data"]:
                assert {"refId", "datasourceUid", "model", "relativeTimeRange"} <= data.keys()
            # Labels are expanded from the environment by Grafana; no "$" may reach them.
            assert "$" not in json.dumps(rule["labels"])
            titles.append(rule["title"])
    assert len(titles) == len(set(titles)) >= 3


def test_export_writes_parseable_files(tmp_path: Path) -> None:
    paths = export(tmp_path)
    rel = sorted(str(p.relative_to(tmp_path)) for p in paths)
    assert rel == [
        "alerting/agentwatch.yaml",
        "dashboards/agentwatch.yaml",
        "dashboards/agentwatch/agentwatch-agent.json",
        "dashboards/agentwatch/agentwatch-fleet.json",
        "dashboards/agentwatch/agentwatch-incidents.json",
        "dashboards/agentwatch/agentwatch-service-health.json",
        "datasources/agentwatch.yaml",
    ]
    for path in paths:
        text = path.read_text()
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        assert doc
    assert yaml.safe_load((tmp_path / "alerting/agentwatch.yaml").read_text()) == alert_rules()
    assert export(tmp_path) == paths  # idempotent


# --- macro expansion (what the plugin sends to ClickHouse) ---------------------------------


def test_time_macros_expand_as_the_plugin_does() -> None:
    sql = expand(
        "SELECT $__timeInterval(Timestamp) t, $__interval_s i FROM x WHERE $__timeFilter(Timestamp)"
        " AND $__timeFilter_ms( T2 ) AND a > $__fromTime AND b < $__toTime_ms",
        time_from=T0,
        time_to=T1,
        interval_s=0.2,
    )
    f, t = int(T0.timestamp()), int(T1.timestamp())
    assert sql == (
        f"SELECT toStartOfInterval(toDateTime(Timestamp), INTERVAL 1 second) t, 1 i FROM x "
        f"WHERE Timestamp >= toDateTime({f}) AND Timestamp <= toDateTime({t}) AND "
        f"T2 >= fromUnixTimestamp64Milli({f}000) AND T2 <= fromUnixTimestamp64Milli({t}000) "
        f"AND a > toDateTime({f}) AND b < fromUnixTimestamp64Milli({t}000)"
    )


def test_conditional_all_and_variable_formatting() -> None:
    template = "WHERE $__conditionalAll(s IN (${service}), $service) AND a = '${agent}'"
    options = ("x", "y")

    def run(value: str | tuple[str, ...]) -> str:
        variables = {"service": Selection(value, options), "agent": Selection("r-1")}
        return expand(template, time_from=T0, time_to=T1, interval_s=60, variables=variables)

    assert run((ALL,)) == "WHERE 1=1 AND a = 'r-1'"
    assert run(ALL) == "WHERE 1=1 AND a = 'r-1'"
    assert run(("x", "y")) == "WHERE s IN ('x','y') AND a = 'r-1'"
    assert run(("x",)) == "WHERE s IN ('x') AND a = 'r-1'"


def test_conditional_all_keeps_nested_parentheses_and_unknown_variables() -> None:
    sql = (
        "$__conditionalAll(a IN (SELECT b FROM c WHERE d IN (${v})), $v)"
        " AND $__conditionalAll(z, $w)"
    )
    out = expand(sql, time_from=T0, time_to=T1, interval_s=1, variables={"v": Selection(("q",))})
    assert out == "a IN (SELECT b FROM c WHERE d IN ('q')) AND z"


def test_a_macro_with_the_wrong_arguments_fails_like_the_plugin() -> None:
    from agentwatch.dashboards._macros import MacroError

    with pytest.raises(MacroError):
        expand("$__timeFilter(a, b)", time_from=T0, time_to=T1, interval_s=1)
