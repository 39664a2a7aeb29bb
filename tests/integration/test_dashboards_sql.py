"""Every ClickHouse query of every dashboard (panels, template variables, annotations, alert
rules) runs on the real schema in embedded ClickHouse, with the macros and variables expanded as
Grafana and the plugin expand them, and returns rows of the shape its panel needs."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from agentwatch.collector import Storage, embedded_dsn, request_to_rows
from agentwatch.collector._records import ANOMALY_COLUMNS, REMEDIATION_COLUMNS
from agentwatch.collector._schema import (
    ANOMALIES_TABLE,
    REMEDIATIONS_TABLE,
    TRACE_COLUMNS,
    TRACES_TABLE,
)
from agentwatch.dashboards import (
    PLUGIN_ID,
    Selection,
    alert_rules,
    build_dashboards,
    expand,
    to_json,
)
from agentwatch.dashboards._macros import ALL
from agentwatch.sdk import semconv as sc

pytestmark = pytest.mark.integration

S = 1_000_000_000
NOW = (int(datetime.now(UTC).timestamp()) // 60 * 60 + 30) * S
START = NOW - 3600 * S
AGENTS = {
    "r-1": "research-agent",
    "r-2": "research-agent",
    "s-1": "support-agent",
    "c-1": "coding-agent",
}
TOOLS = {
    "research-agent": ["web_search", "fetch_page"],
    "support-agent": ["search_kb"],
    "coding-agent": ["edit_file"],
}
FOCUS = "r-1"  # the agent with every kind of event: anomaly, breaker, rollback, messages


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


class _Spans:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.by_agent: dict[str, list[Span]] = {a: [] for a in AGENTS}

    def add(
        self,
        agent: str,
        name: str,
        start: int,
        duration: int,
        attrs: dict[str, Any],
        *,
        error: bool = False,
    ) -> None:
        span = Span(
            trace_id=self.rng.randbytes(16),
            span_id=self.rng.randbytes(8),
            name=name,
            kind=Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=start,
            end_time_unix_nano=start + duration,
            attributes=[_kv(k, v) for k, v in attrs.items()],
            status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_OK),
        )
        self.by_agent[agent].append(span)

    def request(self) -> ExportTraceServiceRequest:
        request = ExportTraceServiceRequest()
        for agent, spans in self.by_agent.items():
            resource = Resource(
                attributes=[_kv(sc.SERVICE_NAME, AGENTS[agent]), _kv(sc.SERVICE_INSTANCE_ID, agent)]
            )
            scope = ScopeSpans(spans=spans)
            scope.scope.name = "agentwatch.sdk"
            request.resource_spans.append(ResourceSpans(resource=resource, scope_spans=[scope]))
        return request


def _simulate() -> tuple[ExportTraceServiceRequest, list[list[Any]], list[list[Any]]]:
    rng = random.Random(7)
    spans = _Spans(rng)
    for agent, cohort in AGENTS.items():
        # c-1 goes silent 2 minutes before the end; s-1 idles; state before the range too.
        last_beat = NOW - 150 * S if agent == "c-1" else NOW
        status = "idle" if agent == "s-1" else "running"
        for seq, t in enumerate(range(START - 600 * S, last_beat, 10 * S), start=1):
            spans.add(agent, sc.SPAN_HEARTBEAT, t, S // 1000, {
                sc.HEARTBEAT_SEQ: seq, sc.HEARTBEAT_INTERVAL_S: 10.0, sc.AGENT_STATUS: status,
                sc.ERRORS: 0, sc.SIGNAL: sc.SIGNAL_HEALTH,
            })  # fmt: skip
            tool = rng.choice(TOOLS[cohort])
            spans.add(agent, f"{sc.SPAN_EXECUTE_TOOL_PREFIX} {tool}", t + S, 200_000_000, {
                sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL, sc.GEN_AI_TOOL_NAME: tool,
                sc.ACTION_FINGERPRINT: f"{tool}-{rng.randrange(5)}", sc.SIGNAL: sc.SIGNAL_BEHAVIOR,
            }, error=rng.random() < 0.1)  # fmt: skip
            if seq % 3 == 0:
                spans.add(agent, sc.SPAN_DECISION, t + 2 * S, rng.randrange(50, 500) * 1_000_000, {
                    sc.DECISION_CHOICE: tool, sc.DECISION_OPTIONS: 3,
                })  # fmt: skip
            if seq % 30 == 0:
                states = ["planning", "acting", "reflecting"]
                spans.add(agent, sc.SPAN_STATE_TRANSITION, t + 3 * S, S // 1000, {
                    sc.STATE_FROM: states[(seq // 30 - 1) % 3], sc.STATE_TO: states[seq // 30 % 3],
                })  # fmt: skip
            if seq % 6 == 0:
                spans.add(agent, sc.SPAN_GOAL_PROGRESS, t + 4 * S, S // 1000, {
                    sc.GOAL_ID: "g-1", sc.GOAL_PROGRESS: min(1.0, seq / 400),
                })  # fmt: skip
            if agent == FOCUS and seq % 6 == 0:
                spans.add(agent, sc.SPAN_MESSAGE, t + 5 * S, S // 1000, {
                    sc.MESSAGE_PEER: "r-2", sc.MESSAGE_DIRECTION: "send", sc.MESSAGE_BYTES: 2048,
                })  # fmt: skip
                spans.add("r-2", sc.SPAN_MESSAGE, t + 6 * S, S // 1000, {
                    sc.MESSAGE_PEER: FOCUS, sc.MESSAGE_DIRECTION: "receive", sc.MESSAGE_BYTES: 2048,
                })  # fmt: skip
            if agent == FOCUS and seq % 30 == 0:
                spans.add(agent, sc.SPAN_CHECKPOINT, t + 7 * S, S // 1000, {
                    sc.CHECKPOINT_ID: f"ckpt-{seq}", sc.CHECKPOINT_STEP: seq,
                })  # fmt: skip
    onset, detected = NOW - 1210 * S, NOW - 1200 * S
    anomalies = [
        ["a-1", FOCUS, "research-agent", "loop", 9.0, 3.0, "critical", onset, detected,
         "same fetch_page call 5 times", json.dumps({"repeats": 5}), "ab" * 16, "cd" * 8],
        ["a-2", "s-1", "support-agent", "action_rate", 4.2, 3.0, "warning", NOW - 610 * S,
         NOW - 600 * S, "action rate 4x baseline", json.dumps({"rate": 4.2}), "", ""],
    ]  # fmt: skip
    checkpoint = max(
        (
            s
            for s in spans.by_agent[FOCUS]
            if s.name == sc.SPAN_CHECKPOINT and s.start_time_unix_nano < onset
        ),
        key=lambda s: s.start_time_unix_nano,
    )
    ckpt_id = next(
        kv.value.string_value for kv in checkpoint.attributes if kv.key == sc.CHECKPOINT_ID
    )
    ok = {"Attempts": 1, "StatusCode": 200, "Ok": True, "Error": ""}
    remediations = [
        [detected + S, FOCUS, "control", "breaker:open", "a-1", "w-1", *ok.values(), 12.0],
        [detected + S, FOCUS, "slack", "notify", "a-1", "", *ok.values(), 80.0],
        [detected + 2 * S, FOCUS, "control", f"rollback:{ckpt_id}", "a-1", "w", *ok.values(), 30.0],
        [detected + 60 * S, FOCUS, "control", "breaker:half_open", "a-1", "w-3", *ok.values(), 9.0],
        [detected + 120 * S, FOCUS, "control", "breaker:closed", "a-1", "w-4", *ok.values(), 9.0],
        [NOW - 599 * S, "s-1", "control", "breaker:open", "a-2", "w-5", 3, 503, False, "503", 9.0],
        [NOW - 599 * S, "s-1", "slack", "notify", "a-2", "", 2, 429, False, "429", 2100.0],
        [NOW - 60 * S, "c-1", "control", "failover:", "", "w-6", *ok.values(), 20.0],
    ]  # fmt: skip
    return spans.request(), anomalies, remediations


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    store = Storage(embedded_dsn(tmp_path_factory.mktemp("dashboards")))
    store.migrate()
    request, anomalies, remediations = _simulate()
    decoded = request_to_rows(request)
    assert decoded.rejected == 0
    store.insert(TRACES_TABLE, decoded.rows, TRACE_COLUMNS)
    store.insert(ANOMALIES_TABLE, anomalies, ANOMALY_COLUMNS)
    store.insert(REMEDIATIONS_TABLE, remediations, REMEDIATION_COLUMNS)
    yield store
    store.close()


@dataclass(frozen=True)
class Case:
    dashboard: str
    title: str
    kind: str  # panel, variable, annotation, alert
    sql: str
    fmt: int | None = None
    panel: dict[str, Any] | None = None


def _cases() -> list[Case]:
    cases = []
    for board in map(to_json, build_dashboards()):
        uid = board["uid"]
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                if target.get("datasource", {}).get("type") == PLUGIN_ID:
                    cases.append(Case(uid, panel["title"], panel["type"], target["rawSql"],
                                      target.get("format"), panel))  # fmt: skip
        for variable in board["templating"]["list"]:
            if variable.get("datasource", {}).get("type") == PLUGIN_ID:
                cases.append(Case(uid, variable["name"], "variable", variable["query"]))
        for annotation in board["annotations"]["list"]:
            if annotation["datasource"].get("type") == PLUGIN_ID:
                cases.append(
                    Case(uid, annotation["name"], "annotation", annotation["target"]["rawSql"])
                )
    for group in alert_rules()["groups"]:
        for rule in group["rules"]:
            model = rule["data"][0]["model"]
            if "rawSql" in model:
                cases.append(
                    Case("alerting", rule["title"], "alert", model["rawSql"], model["format"])
                )
    return cases


CASES = _cases()


def _variables(services: str | tuple[str, ...]) -> dict[str, Selection]:
    return {
        "service": Selection(services, tuple(sorted(set(AGENTS.values())))),
        "agent": Selection(FOCUS),
        "severity": Selection((ALL,), ("critical", "warning", "info")),
        "detector": Selection((ALL,), ("action_rate", "loop")),
    }


def _run(
    storage: Storage, case: Case, services: str | tuple[str, ...]
) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
    sql = expand(
        case.sql,
        time_from=datetime.fromtimestamp(START / S, UTC),
        time_to=datetime.fromtimestamp(NOW / S, UTC),
        interval_s=60,
        variables=_variables(services),
    )
    assert "$" not in sql.replace("${__value.raw}", ""), f"unexpanded macro or variable: {sql}"
    # As Grafana runs it: its own ClickHouse user, so panel SQL may set query-level SETTINGS.
    names, rows = storage.query(sql)
    _, types = storage.query(f"SELECT * APPLY(toTypeName) FROM ({sql}) LIMIT 1")
    return names, list(types[0]) if types else [], rows


def _is_time(t: str) -> bool:
    return re.match(r"^(Nullable\()?DateTime", t) is not None


def _is_number(t: str) -> bool:
    return re.match(r"^(Nullable\()?(U?Int|Float|Decimal|Bool)", t) is not None


def _is_text(t: str) -> bool:
    return "String" in t


@pytest.mark.parametrize("services", [ALL, ("research-agent", "support-agent")], ids=["all", "two"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c.dashboard}:{c.title}" for c in CASES])
def test_query_runs_and_has_the_panels_shape(
    storage: Storage, case: Case, services: str | tuple[str, ...]
) -> None:
    names, types, rows = _run(storage, case, services)
    assert rows, f"{case.title}: no rows"
    if case.kind == "variable":
        assert len(names) == 1 and _is_text(types[0])
        return
    if case.kind == "annotation":
        assert names[0] == "time" and _is_time(types[0])
        assert {"text", "title"} <= set(names)
        return
    if case.kind == "alert":
        assert _is_number(types[-1]) and all(_is_text(t) for t in types[:-1])
        return
    if case.fmt == 0:  # time series: time first, then labels and at least one number
        assert names[0] == "time" and _is_time(types[0]), names
        assert any(_is_number(t) for t in types[1:])
        assert all(_is_number(t) or _is_text(t) for t in types[1:])
    if case.kind == "state-timeline":
        assert names == ["time", names[1]] and _is_time(types[0]) and _is_text(types[1])
    if case.kind == "stat":
        assert any(_is_number(t) for t in types) or case.title == "Status"
    # Field overrides must name columns the query returns.
    for override in (case.panel or {}).get("fieldConfig", {}).get("overrides", []):
        matcher = override["matcher"]
        if (matcher["id"] == "byName" and case.dashboard != "agentwatch-fleet") or (
            matcher["id"] == "byName" and case.kind == "table"
        ):
            assert matcher["options"] in names, (case.title, matcher["options"], names)


def test_focus_agent_recovery_has_rto_and_rpo(storage: Storage) -> None:
    (case,) = [c for c in CASES if c.title == "Rollbacks and failovers"]
    names, _, rows = _run(storage, case, ALL)
    by_kind = {row[names.index("kind")]: dict(zip(names, row, strict=True)) for row in rows}
    rollback = by_kind[sc.CONTROL_TYPE_ROLLBACK]
    assert 0 < rollback["rto_s"] < 60 and 0 < rollback["rpo_s"] < 400
    assert by_kind[sc.CONTROL_TYPE_FAILOVER]["rto_s"] is None  # the standby is not identified yet


def test_fleet_sees_the_silent_agent_and_the_open_breaker(storage: Storage) -> None:
    def value(title: str) -> Any:
        (case,) = [c for c in CASES if c.title == title]
        return _run(storage, case, ALL)[2]

    assert value("Silent agents") == [(1,)]
    assert value("Open breakers") == [(1,)]
    assert dict(value("Agents alive by status")) == {"idle": 1, "running": 2}


def test_every_clickhouse_panel_is_covered() -> None:
    kinds = {(c.dashboard, c.kind) for c in CASES}
    for uid in ("agentwatch-fleet", "agentwatch-agent", "agentwatch-incidents"):
        assert (uid, "variable") in kinds
    assert ("agentwatch-agent", "annotation") in kinds
    assert ("agentwatch-agent", "state-timeline") in kinds
    assert len([c for c in CASES if c.kind == "alert"]) == 2


def test_export_paths_are_inside(tmp_path: Path) -> None:
    from agentwatch.dashboards import export

    assert all(p.is_relative_to(tmp_path) for p in export(tmp_path))
