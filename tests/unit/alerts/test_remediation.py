"""Remediation semantics: the breaker machine, shadow mode, rollback, failover, incidents."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agentwatch.alerts import (
    AgentBreakers,
    Dispatcher,
    Incident,
    Outbox,
    RemediationPolicy,
    Remediator,
    Transition,
    checkpoint_before,
)

from .conftest import FakeAnomaly, FakeClock, LoopbackReceiver
from .test_remediator import RecordingSender
from .test_signing import SPEC_SECRET

NS = 10**9
ONSET = 1_700_000_000_000_000_000


class Checkpoints:
    def __init__(self, rows: dict[str, list[tuple[str, int, int]]]) -> None:
        self.rows = rows

    def checkpoints(self, agent: str, /) -> list[tuple[str, int, int]]:
        return self.rows.get(agent, [])


@dataclass
class World:
    clock: FakeClock
    outbox: Outbox
    remediator: Remediator
    transitions: list[Transition] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)

    def sent(self, server: LoopbackReceiver) -> list[tuple[str, str]]:
        self.outbox.drain()
        return [
            (r.json()["type"], r.json().get("state") or r.json()["checkpoint_id"])
            for r in server.delivered()
        ]


def make_world(
    tmp_path: Path,
    clock: FakeClock,
    *,
    shadow: bool = False,
    checkpoints: Checkpoints | None = None,
) -> World:
    transitions: list[Transition] = []
    incidents: list[Incident] = []
    box = Outbox(
        tmp_path / "outbox.sqlite3", secret=SPEC_SECRET, clock=clock.time, rng=random.Random(1)
    )
    breakers = AgentBreakers(
        tmp_path / "breakers.json",
        open_wait_s=60,
        probe_actions=2,
        shadow=shadow,
        clock=clock.time_ns,
        on_transition=transitions.append,
    )
    remediator = Remediator(
        RemediationPolicy(rollback_min_severity="critical"),
        RecordingSender(),
        dispatcher=Dispatcher(workers=1),
        clock=clock.time_ns,
        breakers=breakers,
        outbox=box,
        checkpoints=checkpoints,
        on_incident=incidents.append,
    )
    return World(clock, box, remediator, transitions, incidents)


@pytest.fixture
def world(tmp_path: Path, clock: FakeClock) -> Iterator[World]:
    w = make_world(tmp_path, clock)
    yield w
    w.remediator.shutdown()
    w.outbox.close()


def test_open_half_open_close_and_reopen(world: World, receiver: LoopbackReceiver) -> None:
    r = world.remediator
    r.handle(FakeAnomaly(id="1" * 32), receiver.url)
    r.handle(FakeAnomaly(id="2" * 32), receiver.url)  # already open: nothing
    assert r.breaker_state("agent-1") == "open"
    world.clock.advance(59)
    assert r.tick(world.clock.time_ns()) == []
    world.clock.advance(1)
    assert [t.to_state for t in r.tick(world.clock.time_ns())] == ["half_open"]
    r.handle(FakeAnomaly(id="3" * 32), receiver.url)  # a new anomaly reopens
    world.clock.advance(60)
    r.tick(world.clock.time_ns())
    assert r.record_normal_action("agent-1") is None  # 1 of 2 probes
    assert r.record_normal_action("agent-1") is not None
    assert r.breaker_state("agent-1") == "closed"
    assert world.sent(receiver) == [
        ("breaker", "open"),
        ("breaker", "half_open"),
        ("breaker", "open"),
        ("breaker", "half_open"),
        ("breaker", "closed"),
    ]
    assert [(t.from_state, t.to_state) for t in world.transitions][-1] == ("half_open", "closed")
    [incident] = [i for i in world.incidents if i.healthy_ns]
    assert incident.rto_s == pytest.approx(120.0)


def test_forced_open_is_a_kill_switch(world: World, receiver: LoopbackReceiver) -> None:
    r = world.remediator
    r.set_control_url("agent-1", receiver.url)
    r.force_open("agent-1", "operator said so")
    r.handle(FakeAnomaly(), receiver.url)  # does not change a forced-open breaker
    world.clock.advance(3600)
    r.tick()
    assert r.breaker_state("agent-1") == "forced_open"
    r.close("agent-1")
    assert world.sent(receiver) == [("breaker", "forced_open"), ("breaker", "closed")]
    assert [t.manual for t in world.transitions] == [True, True]


def test_metrics_only_decides_and_logs_but_sends_nothing(
    tmp_path: Path, clock: FakeClock, receiver: LoopbackReceiver
) -> None:
    w = make_world(tmp_path, clock, shadow=True)
    assert w.remediator.handle(FakeAnomaly(), receiver.url) == []
    assert w.remediator.breaker_state("agent-1") == "metrics_only"
    assert [(t.to_state, t.shadow) for t in w.transitions] == [("open", True)]
    assert w.sent(receiver) == []
    w.outbox.close()


@pytest.mark.parametrize(
    ("onset", "expected"),
    [
        (100, "c2"),  # newest strictly before onset
        (50, "c1"),  # c2 was recorded at exactly 50: not before
        (10, None),  # all after
    ],
)
def test_checkpoint_before_never_after_onset(onset: int, expected: str | None) -> None:
    rows = [("c1", 1, 20), ("c2", 2, 50), ("c3", 3, 150)]
    found = checkpoint_before(rows, onset)
    assert (found.checkpoint_id if found else None) == expected


def test_rollback_and_failover(
    tmp_path: Path, clock: FakeClock, receiver: LoopbackReceiver
) -> None:
    rows = {"agent-1": [("c1", 10, ONSET - 5 * NS), ("c2", 14, ONSET - NS), ("c3", 20, ONSET + NS)]}
    w = make_world(tmp_path, clock, checkpoints=Checkpoints(rows))
    anomaly = FakeAnomaly(onset_ns=ONSET, evidence={"summary": "loop", "step": 19})
    issued = w.remediator.handle(anomaly, receiver.url)
    assert [(c.type, c.checkpoint_id) for c in issued] == [("breaker", ""), ("rollback", "c2")]
    assert w.remediator.handle(anomaly, receiver.url) == []  # the same anomaly: no second rollback
    w.outbox.drain()
    [rollback] = [r.json() for r in receiver.delivered() if r.json()["type"] == "rollback"]
    assert {k: rollback[k] for k in ("type", "agent", "checkpoint_id", "anomaly_id")} == {
        "type": "rollback",
        "agent": "agent-1",
        "checkpoint_id": "c2",
        "anomaly_id": anomaly.id,
    }
    [incident] = w.remediator.incidents.list()
    assert (incident.checkpoint_id, incident.rpo_steps) == ("c2", 5)

    standby = LoopbackReceiver()
    try:
        w.remediator.register_standby("agent-1", "agent-1b", standby.url)
        w.remediator.close("agent-1")  # the first incident ends
        failover = w.remediator.heartbeat_lost("agent-1")
        assert failover is not None and w.remediator.heartbeat_lost("agent-1") is None
        w.outbox.drain()
        [request] = standby.delivered()
        payload = request.json()
        assert {k: payload[k] for k in ("type", "agent", "failed_agent", "checkpoint_id")} == {
            "type": "failover",
            "agent": "agent-1b",
            "failed_agent": "agent-1",
            "checkpoint_id": "c3",
        }
        clock.advance(7)
        w.remediator.record_normal_action("agent-1b")
        last = w.remediator.incidents.list()[-1]
        assert (last.kind, last.standby, last.rto_s, last.rpo_steps) == (
            "failover",
            "agent-1b",
            7.0,
            0,
        )
    finally:
        standby.close()
        w.outbox.close()


def test_breaker_state_survives_a_restart(
    tmp_path: Path, clock: FakeClock, receiver: LoopbackReceiver
) -> None:
    first = make_world(tmp_path, clock)
    first.remediator.handle(FakeAnomaly(), receiver.url)
    first.outbox.close()
    second = make_world(tmp_path, clock)
    assert second.remediator.breaker_state("agent-1") == "open"
    assert second.remediator.handle(FakeAnomaly(), receiver.url) == []
    assert second.sent(receiver) == [("breaker", "open")]
    second.outbox.close()
