"""The agent-count detector: a cohort losing many agents at once, not one by one nor cleanly."""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest

from agentwatch.alerts import RemediationPolicy
from agentwatch.alerts._policy import COHORT_DETECTORS
from agentwatch.detectors import AgentCountDetector, Anomaly, Severity
from agentwatch.detectors._census import AGENT_COUNT, COHORT_AGENT, MAX_LISTED

S = 1_000_000_000


def x(t_s: float, live: int, lost: dict[str, float] | None = None) -> dict[str, Any]:
    """One tick's count; ``lost`` maps agents to the deadline they missed, in seconds."""
    return {
        "t_ns": int(t_s * S),
        "live": live,
        "lost": {agent: int(d * S) for agent, d in (lost or {}).items()},
    }


def run(detector: AgentCountDetector, ticks: list[dict[str, Any]]) -> list[Anomaly]:
    found = [detector.observe("workers", tick) for tick in ticks]
    return [a for a in found if a is not None]


def steady(start_s: int, end_s: int, live: int, lost: dict[str, float] | None = None) -> list:
    return [x(t, live, lost) for t in range(start_s, end_s)]


def test_fires_once_on_a_mass_loss_with_its_onset_and_evidence() -> None:
    # 40 agents; 12 go silent together: their deadlines pass over 3 s (last beats 1 s apart).
    lost = {f"agent-{i:02d}": 100 + (11 - i) / 4 for i in range(12)}
    ticks = steady(0, 100, 40)
    for t in range(100, 104):
        gone = {a: d for a, d in lost.items() if d < t}
        ticks.append(x(t, 40 - len(gone), gone))
    ticks += steady(104, 200, 28, lost)
    [anomaly] = run(AgentCountDetector(), ticks)

    assert anomaly.detector == AGENT_COUNT == "agent_count"
    assert (anomaly.agent, anomaly.service) == (COHORT_AGENT, "workers")
    assert anomaly.severity is Severity.WARNING
    assert anomaly.score >= anomaly.threshold == 1.0
    # need = max(2, ceil(25% of 40)) = 10: raised on the tick that saw the 10th loss.
    assert anomaly.detected_ns == 103 * S
    assert anomaly.onset_ns == int(100.0 * S)  # agent-11's, the earliest deadline
    evidence = anomaly.evidence
    assert evidence["live_before"] == 40
    assert evidence["live"] == 40 - evidence["lost"]
    assert evidence["lost"] == 12
    assert evidence["lost_agents"] == [f"agent-{i:02d}" for i in range(11, 1, -1)]
    assert len(evidence["lost_agents"]) == MAX_LISTED
    assert "12 of 40 agents of workers lost within 60 s: live 40 -> 28" in anomaly.summary
    assert anomaly.summary.endswith("and 2 more)")
    assert "fewer than 10 agents lost" in evidence["expected"]


def test_a_cohort_scaled_down_cleanly_is_no_drop() -> None:
    # Stopped agents are neither live nor lost: 20 -> 4 in ten seconds, nothing lost.
    ticks = steady(0, 60, 20) + [x(60 + i, 20 - 2 * i) for i in range(9)] + steady(69, 200, 4)
    assert run(AgentCountDetector(), ticks) == []


def test_losses_after_a_clean_scale_down_count_against_the_agents_left() -> None:
    detector = AgentCountDetector()
    ticks = steady(0, 60, 20) + steady(60, 65, 8)  # twelve stopped
    ticks += [x(65, 6, {"a": 64.5, "b": 64.8})]  # two of the eight lost: 25% of them
    [anomaly] = run(detector, ticks)
    assert anomaly.evidence["lost_agents"] == ["a", "b"]
    assert anomaly.evidence["live_before"] == 20


def test_a_single_loss_in_a_small_cohort_is_left_to_per_agent_liveness() -> None:
    for size in (1, 2, 3):
        ticks = steady(0, 30, size) + steady(30, 200, size - 1, {"only": 29.5})
        assert run(AgentCountDetector(), ticks) == [], size


def test_two_of_a_small_cohort_lost_together_is_a_drop() -> None:
    ticks = steady(0, 30, 3) + steady(30, 40, 1, {"a": 29.2, "b": 29.6})
    [anomaly] = run(AgentCountDetector(), ticks)
    assert anomaly.detected_ns == 30 * S


def test_gradual_losses_are_churn_not_a_drop() -> None:
    # One agent lost every 90 s: 20 -> 8 over 18 minutes, never two within the window.
    lost: dict[str, float] = {}
    ticks = []
    for t in range(1200):
        if t and t % 90 == 0 and len(lost) < 12:
            lost[f"a{t}"] = t - 0.5
        ticks.append(x(t, 20 - len(lost), lost))
    assert run(AgentCountDetector(), ticks) == []


def test_lost_agents_replaced_by_new_ones_are_churn_not_a_drop() -> None:
    # A quarter of the cohort crashes within a minute, but replacements hold the count up.
    lost: dict[str, float] = {}
    ticks = []
    for t in range(300):
        if 100 <= t < 160 and t % 10 == 0:
            lost[f"a{t}"] = t - 0.5
        replaced = sum(1 for d in lost.values() if d < t - 3)  # each one about 3 s later
        ticks.append(x(t, 20 - len(lost) + replaced, lost))
    assert run(AgentCountDetector(), ticks) == []


def mass_loss(start_s: int, live: int, n: int, prefix: str) -> list[dict[str, Any]]:
    lost = {f"{prefix}{i}": start_s - 0.5 for i in range(n)}
    return steady(start_s, start_s + 5, live - n, lost)


def test_rearms_only_when_the_count_recovers() -> None:
    detector = AgentCountDetector()
    ticks = steady(0, 60, 20) + mass_loss(60, 20, 6, "a")
    ticks += steady(65, 200, 13)  # one more stopped: still down, no second anomaly
    assert len(run(detector, ticks)) == 1
    assert run(detector, mass_loss(200, 13, 2, "b")) == []  # raised: not a new drop
    # The lost come back (their heartbeats resume): the count recovers and the detector re-arms.
    assert run(detector, steady(205, 300, 20)) == []
    [again] = run(detector, mass_loss(300, 20, 5, "c"))
    assert again.evidence["lost_agents"] == ["c0", "c1", "c2", "c3", "c4"]


def test_a_cohort_that_stays_smaller_settles_at_its_new_level() -> None:
    detector = AgentCountDetector(settle_s=600.0)
    ticks = steady(0, 60, 20) + mass_loss(60, 20, 6, "a") + steady(65, 400, 14)
    assert len(run(detector, ticks)) == 1
    assert run(detector, mass_loss(400, 14, 4, "b") + steady(405, 660, 10)) == []  # raised
    # No further fall for settle_s since 400 s: a new drop from 10 is a new event.
    assert run(detector, steady(660, 1010, 10)) == []
    [again] = run(detector, mass_loss(1010, 10, 3, "c"))
    assert again.evidence["live_before"] == 10


def test_score_one_is_pure_and_observe_equals_score_then_learn() -> None:
    ticks = steady(0, 60, 20) + mass_loss(60, 20, 6, "a") + steady(65, 100, 20)
    fused, verbs = AgentCountDetector(), AgentCountDetector()
    scores, anomalies = [], []
    for tick in ticks:
        before = pickle.dumps(verbs)
        scores.append(verbs.score_one(tick))
        assert pickle.dumps(verbs) == before
        verbs.learn_one(tick)
        anomalies.append(fused.observe("workers", tick))
    assert all(math.isfinite(s) and s >= 0.0 for s in scores)
    assert sum(s >= 1.0 for s in scores) == 5  # raised on each tick of the loss ...
    raised = [i for i, a in enumerate(anomalies) if a is not None]
    assert raised == [scores.index(1.2)] == [60]  # ... reported on the first
    assert pickle.dumps(fused) == pickle.dumps(verbs)


def test_pickle_round_trip_keeps_state() -> None:
    detector = AgentCountDetector()
    run(detector, steady(0, 60, 20) + steady(60, 62, 18, {"a": 59.5, "b": 59.6}))
    restored = pickle.loads(pickle.dumps(detector))
    lost = {"a": 59.5, "b": 59.6, **{f"c{i}": 61.5 for i in range(4)}}
    rest = steady(62, 100, 14, lost)  # four more: six of twenty within the window
    left, right = run(detector, rest), run(restored, list(rest))
    assert [(a.detected_ns, a.onset_ns, a.score, a.evidence) for a in left] == [
        (a.detected_ns, a.onset_ns, a.score, a.evidence) for a in right
    ]
    assert len(left) == 1
    assert len(pickle.dumps(restored)) < 1024


def test_state_stays_small_over_a_long_run() -> None:
    detector = AgentCountDetector()
    run(detector, [x(t, 100 - t % 60) for t in range(2000)])  # a count falling all window long
    assert len(detector._peaks) <= 61
    assert len(pickle.dumps(detector)) < 4096


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"window_s": 0}, "window_s"),
        ({"min_lost": 0}, "min_lost"),
        ({"min_fraction": 0.0}, "min_fraction"),
        ({"min_fraction": 1.5}, "min_fraction"),
        ({"settle_s": 10.0}, "settle_s"),
    ],
)
def test_bad_parameters_are_named(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        AgentCountDetector(**kwargs)


def test_its_anomalies_call_for_no_per_agent_command() -> None:
    assert AGENT_COUNT in COHORT_DETECTORS  # alerts names it without importing detectors
    [anomaly] = run(AgentCountDetector(), steady(0, 60, 20) + mass_loss(60, 20, 6, "a"))
    policy = RemediationPolicy("info", rollback_min_severity="info")
    assert policy.decide(anomaly) == []
    critical = AgentCountDetector(severity=Severity.CRITICAL)
    [anomaly] = run(critical, steady(0, 60, 20) + mass_loss(60, 20, 6, "a"))
    assert policy.decide(anomaly) == []
