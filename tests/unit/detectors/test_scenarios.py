"""The simulated fleet and its scoring: seeded, ordered, labelled, matched as documented."""

from __future__ import annotations

import collections
import dataclasses
import itertools

import pytest

from agentwatch.detectors import AgentEvent, Anomaly, EventKind, Severity
from agentwatch.detectors._chains import CHAINS, DESTRUCTIVE_TOOLS
from agentwatch.detectors._evaluate import _score, evaluate
from agentwatch.detectors._scenarios import FAULT_TYPES, STATUS_STOPPED, make_scenario

NS = 1_000_000_000


@pytest.fixture(scope="module")
def small() -> list[AgentEvent]:
    return list(make_scenario(4, agents=24, hours=0.5, warmup_s=300).events())


def test_events_are_ordered_and_reproducible(small: list[AgentEvent]) -> None:
    events = small
    assert [e.ts_ns for e in events] == sorted(e.ts_ns for e in events)
    again = list(make_scenario(4, agents=24, hours=0.5, warmup_s=300).events())
    assert again == events
    other = list(itertools.islice(make_scenario(5, agents=24, hours=0.5).events(), 2000))
    assert other != events[:2000]


def test_every_signal_the_detectors_read_is_there(small: list[AgentEvent]) -> None:
    events = small
    kinds = collections.Counter(e.kind for e in events)
    for kind in (EventKind.ACTION, EventKind.DECISION, EventKind.GOAL, EventKind.HEARTBEAT):
        assert kinds[kind] > 1000
    decisions = [e for e in events if e.kind is EventKind.DECISION]
    assert all(e.duration_s > 0 for e in decisions)
    goals = [e.value for e in events if e.kind is EventKind.GOAL]
    assert min(goals) >= 0 and max(goals) == 1.0
    tools = {e.key for e in events if e.kind is EventKind.ACTION}
    assert tools <= {t for chain in CHAINS.values() for t in chain} | set(
        DESTRUCTIVE_TOOLS.values()
    )


def test_faults_are_labelled_after_warm_up_and_cover_every_type() -> None:
    scenario = make_scenario(1, agents=60, hours=1.0)
    kinds = collections.Counter(f.kind for f in scenario.faults)
    assert set(kinds) == set(FAULT_TYPES)
    assert max(kinds.values()) - min(kinds.values()) <= 1  # balanced
    profiles = {p.agent: p for p in scenario.profiles}
    for fault in scenario.faults:
        joined_ns = scenario.start_ns + round(profiles[fault.agent].join_s * NS)
        assert fault.start_ns >= joined_ns + scenario.warmup_s * NS
        assert fault.start_ns < fault.end_ns <= scenario.end_ns
    assert make_scenario(1, agents=60, hours=1.0, fault_share=0.0).faults == []


def test_injected_faults_show_in_the_events() -> None:
    scenario = make_scenario(2, agents=40, hours=1.0)
    by_agent = collections.defaultdict(list)
    for e in scenario.events():
        by_agent[e.agent].append(e)
    seen = set()
    for fault in scenario.faults:
        inside = [e for e in by_agent[fault.agent] if fault.start_ns <= e.ts_ns < fault.end_ns]
        actions = [e for e in inside if e.kind is EventKind.ACTION]
        beats = [e for e in inside if e.kind is EventKind.HEARTBEAT]
        first = fault.start_ns + NS // 10
        if fault.kind == "heartbeat_loss":
            assert not inside
        elif fault.kind == "stall":
            assert not actions and beats and {b.key for b in beats} == {"running"}
        elif fault.kind == "tool_loop":
            assert len({a.fingerprint for a in actions}) == 1 and len(actions) >= 4
        elif fault.kind == "cycle":
            assert len({a.fingerprint for a in actions}) in (2, 3) and len(actions) >= 6
        elif fault.kind == "error_burst":
            assert sum(a.error for a in actions) >= 0.4 * len(actions)
        elif fault.kind == "decision_drift":
            destructive = DESTRUCTIVE_TOOLS[fault.service]
            assert sum(a.key == destructive for a in actions) >= 0.4 * len(actions)
        elif fault.kind == "goal_stall":
            # (the step before the onset may report its progress a few ms into the window)
            goals = {e.value for e in inside if e.kind is EventKind.GOAL and e.ts_ns > first}
            assert len(goals) == 1 and actions
        elif fault.kind == "message_flood":
            usual = f"{fault.service}-peer"
            messages = [e for e in inside if e.kind is EventKind.MESSAGE and e.key != usual]
            # 10-20x the usual message rate (a message after a tenth of the steps) to one peer
            assert len({m.key for m in messages}) == 1 and len(messages) >= 0.5 * len(actions)
            assert actions
        seen.add(fault.kind)
    assert seen == set(FAULT_TYPES)


def test_leaving_agents_say_so_and_stop() -> None:
    scenario = make_scenario(3, agents=60, hours=0.5, fault_share=0.0)
    leavers = {p.agent: p for p in scenario.profiles if p.leave_s < scenario.duration_s}
    assert leavers
    last = {}
    for e in scenario.events():
        last[e.agent] = e
    for agent in leavers:
        assert last[agent].kind is EventKind.HEARTBEAT and last[agent].key == STATUS_STOPPED


def _anomaly(agent: str, detector: str, at_ns: int, severity: Severity) -> Anomaly:
    return Anomaly("0" * 32, agent, "c", detector, 9.0, 3.0, severity, at_ns, at_ns)


def test_matching_precision_recall_and_delays() -> None:
    scenario = make_scenario(1, agents=20, hours=0.5)
    loop = next(f for f in scenario.faults if f.kind == "tool_loop")
    spike = next(f for f in scenario.faults if f.kind == "rate_spike")
    quiet = next(p.agent for p in scenario.profiles if not p.plans)
    found = [
        _anomaly(loop.agent, "loop", loop.start_ns + NS, Severity.WARNING),  # TP, delay 1 s
        _anomaly(loop.agent, "action_rate", loop.end_ns + 29 * NS, Severity.WARNING),  # cross
        _anomaly(quiet, "action_rate", spike.start_ns, Severity.CRITICAL),  # FP, other agent
        _anomaly(spike.agent, "action_rate", spike.end_ns + 31 * NS, Severity.WARNING),  # late
    ]
    at_onset = [10 if f is loop else 0 for f in scenario.faults]
    result = _score(scenario, found, [13, 13, 5, 5], at_onset, 30.0, 0)
    loops, spikes = result.scores["tool_loop"], result.scores["rate_spike"]
    assert (loops.detected, loops.tp, loops.fp, loops.delays_s, loops.delays_actions) == (
        1,
        1,
        0,
        [1.0],
        [3],
    )
    assert (spikes.detected, spikes.tp, spikes.fp, spikes.cross, spikes.critical_fp) == (
        0,
        0,
        2,
        1,
        1,
    )
    assert spikes.precision == 0.0 and loops.precision == 1.0
    assert loops.recall == 1 / loops.faults
    assert result.critical_false == 1 and result.false_by_detector == {"action_rate": 2}


def test_evaluate_runs_liveness_on_a_simulated_tick() -> None:
    scenario = make_scenario(2, agents=30, hours=0.5)
    losses = [f for f in scenario.faults if f.kind == "heartbeat_loss"]
    assert losses
    result = evaluate(dataclasses.replace(scenario, faults=losses))
    assert result.scores["heartbeat_loss"].recall == 1.0
    profiles = {p.agent: p for p in scenario.profiles}
    for fault, hit in zip(losses, result.matched, strict=True):
        assert hit is not None and hit.detector == "liveness"
        delay_s = (hit.detected_ns - fault.start_ns) / NS
        assert delay_s <= 3 * profiles[fault.agent].heartbeat_s + 1.0
    # Leaving agents said "stopped": no liveness anomaly for them.
    leavers = {p.agent for p in scenario.profiles if p.leave_s < scenario.duration_s}
    assert not [a for a in result.anomalies if a.detector == "liveness" and a.agent in leavers]
