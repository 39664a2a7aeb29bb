"""Every dashboard query on data from the simulator: the real SDK, the fleet, a runaway agent."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from agentwatch.collector import RunningService
from agentwatch.collector._fleet import Fleet
from agentwatch.dashboards import Selection, expand
from agentwatch.dashboards._macros import ALL
from tests.integration.test_dashboards_sql import CASES, Case
from tests.support import local_settings

pytestmark = pytest.mark.integration
AGENTS = 6
RUNAWAY = 1


@pytest.fixture(scope="module")
def fleet_data(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningService, str, float]]:
    secret = "whsec_" + base64.b64encode(b"agentwatch-dashboard-fleet-0123").decode()
    settings = local_settings(
        tmp_path_factory.mktemp("fleet"),
        webhook_secret=secret,
        rollback_min_severity="warning",  # the loop rolls back; the flood opens the breaker
    )
    with RunningService(settings) as running:
        fleet = Fleet(
            AGENTS, endpoint=running.otlp_endpoint, webhook_secret=secret, runaway_index=RUNAWAY
        )
        fleet.start()
        fleet.stop.wait(12)  # normal traffic past the 10-window warm-up: every signal
        fleet.runaway.go.set()
        fleet.members[RUNAWAY].thread.join(30)
        fleet.stop.set()  # agents stop working but keep listening for control webhooks
        for member in fleet.members:
            member.thread.join(10)
            assert member.agent.force_flush(10_000)
        assert running.service.flush(30)
        # Dashboards are read "now", while the fleet still runs; macros expand to whole seconds.
        ended = float(int(time.time()) + 1)
        fleet.shutdown()
        yield running, fleet.members[RUNAWAY].agent.instance_id, ended


def _run(
    running: RunningService, case: Case, agent: str, now: float
) -> tuple[list[str], list[Any]]:
    sql = expand(
        case.sql,
        time_from=datetime.fromtimestamp(now - 600, UTC),
        time_to=datetime.fromtimestamp(now, UTC),
        interval_s=1,
        variables={
            "service": Selection(ALL, ("coding-agent", "research-agent", "support-agent")),
            "agent": Selection(agent),
            "severity": Selection((ALL,), ("critical", "warning", "info")),
            "detector": Selection((ALL,), ("action_rate", "loop", "liveness")),
        },
    )
    names, rows = running.service.storage.query(sql)
    return names, rows


# Panels whose data the simulator cannot produce in seconds: lost agents, failovers, recovery.
MAY_BE_EMPTY = ("failover", "recovery", "rto", "rpo", "lost", "silent", "heartbeat gap")


@pytest.mark.parametrize("case", CASES, ids=[f"{c.dashboard}:{c.title}" for c in CASES])
def test_every_query_runs_on_simulator_data(
    fleet_data: tuple[RunningService, str, float], case: Case
) -> None:
    running, agent, now = fleet_data
    names, rows = _run(running, case, agent, now)
    text = f"{case.title} {case.sql}".lower()
    if not rows:
        assert any(word in text for word in MAY_BE_EMPTY), f"{case.title}: no rows"
        return
    if case.kind == "variable":
        assert len(names) == 1 and all(isinstance(r[0], str) for r in rows)
    if case.fmt == 0:  # time series: a time column first
        assert names[0] == "time" and isinstance(rows[0][0], datetime), names


def test_the_simulator_emits_every_signal(
    fleet_data: tuple[RunningService, str, float],
) -> None:
    running, _, _ = fleet_data
    _, rows = running.service.storage.query("SELECT DISTINCT SpanName FROM otel_traces")
    names = {r[0] for r in rows}
    assert {
        "agentwatch.heartbeat",
        "agentwatch.decision",
        "agentwatch.state_transition",
        "agentwatch.goal_progress",
        "agentwatch.checkpoint",
        "agentwatch.message",
    } <= names
    assert any(n.startswith("invoke_agent") for n in names)
    assert any(n.startswith("execute_tool") for n in names)
