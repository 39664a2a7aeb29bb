"""New agents start from their cohort's baselines (DESIGN.md, Detectors)."""

from __future__ import annotations

import pickle

from agentwatch.detectors import KeyDriftDetector

_MIX = ["search", "read", "read", "write", "summarize"] * 40  # 200 calls, the cohort's tool mix


def _warm() -> KeyDriftDetector:
    detector = KeyDriftDetector()
    for key in _MIX * 3:
        detector.observe(key)
    return detector


def _takeover(detector: KeyDriftDetector) -> float:
    """A rarely used destructive tool takes 70 % of a new agent's first 40 calls."""
    calls = (["drop_table"] * 7 + ["search", "read", "write"]) * 4
    return max(detector.observe(key)[0] for key in calls)


def test_a_new_agent_judged_against_its_cohort_sees_drift_in_its_first_window() -> None:
    cold, adopted = KeyDriftDetector(), KeyDriftDetector()
    adopted.start_from(_warm())
    assert _takeover(cold) == 0.0  # its own warm-up is 200 calls
    assert _takeover(adopted) > 14


def test_the_cohorts_usual_mix_is_quiet_for_a_new_agent() -> None:
    adopted = KeyDriftDetector()
    adopted.start_from(_warm())
    assert max(adopted.observe(key)[0] for key in _MIX) < 5


def test_start_from_copies_the_baseline_not_the_recent_actions_and_shares_nothing() -> None:
    cohort = _warm()
    adopted = KeyDriftDetector()
    adopted.start_from(cohort)
    assert adopted.baseline("read") == cohort.baseline("read")
    assert adopted.share("read") == 0.0
    adopted.observe("drop_table")
    for _ in range(40):
        adopted.observe("drop_table")
    assert cohort.baseline("drop_table") == 0.0  # the exemplar's baseline is untouched
    restored = pickle.loads(pickle.dumps(adopted))
    assert restored.warmup == adopted.warmup == adopted.window


def test_a_cold_exemplar_does_not_shorten_the_warm_up() -> None:
    exemplar = KeyDriftDetector()
    for key in _MIX[:50]:
        exemplar.observe(key)
    adopted = KeyDriftDetector()
    adopted.start_from(exemplar)
    assert adopted.warmup == 200


def test_the_pipeline_starts_a_new_agent_from_its_cohorts_tool_mix() -> None:
    from agentwatch.detectors import AgentEvent, DetectorPipeline, EventKind

    pipeline = DetectorPipeline()

    def call(agent: str, t_s: float, key: str) -> list[str]:
        event = AgentEvent(agent, "research", EventKind.ACTION, round(t_s * 1e9), key=key)
        return [a.detector for a in pipeline.process(event)]

    for i, key in enumerate(_MIX * 3):  # a veteran of the cohort, 3 calls per second
        call("veteran", i / 3, key)
    calls = (["drop_table"] * 7 + ["search", "read", "write"]) * 4
    found = [d for i, key in enumerate(calls) for d in call("newcomer", 200 + i / 3, key)]
    assert "decision_drift" in found
    # an agent of another cohort has no baseline to start from
    pipeline_other = DetectorPipeline()
    other = [
        a.detector
        for i, key in enumerate(calls)
        for a in pipeline_other.process(
            AgentEvent("loner", "coding", EventKind.ACTION, round((200 + i / 3) * 1e9), key=key)
        )
    ]
    assert "decision_drift" not in other
