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


def test_a_cold_agent_adopts_its_cohorts_mix_once_a_member_is_warm() -> None:
    # Both start together, so neither has a warm cohort member at its first call; the bursty
    # one has made fewer than its 200 calls of warm-up when a destructive tool takes over.
    from agentwatch.detectors import AgentEvent, DetectorPipeline, EventKind

    def run(*, with_veteran: bool) -> list[str]:
        pipeline = DetectorPipeline()

        def call(agent: str, t_s: float, key: str) -> list[str]:
            event = AgentEvent(agent, "research", EventKind.ACTION, round(t_s * 1e9), key=key)
            return [a.detector for a in pipeline.process(event)]

        found = []
        for i, key in enumerate(_MIX * 3):  # 600 calls at 3 per second
            if with_veteran:
                call("veteran", i / 3, key)
            if i % 7 == 0:  # the bursty one, with the same mix: 86 calls by t = 200 s
                found += call("bursty", i / 3 + 0.1, key)
        assert found == []  # the cohort's usual mix, judged against the cohort's, is quiet
        takeover = (["drop_table"] * 7 + ["search", "read", "write"]) * 4
        return [d for i, key in enumerate(takeover) for d in call("bursty", 201 + i / 3, key)]

    assert "decision_drift" in run(with_veteran=True)
    assert run(with_veteran=False) == []  # alone, it is still warming up


def test_a_loops_repeats_are_the_loop_familys_not_the_tool_mixs() -> None:
    from agentwatch.detectors import AgentEvent, DetectorPipeline, EventKind

    pipeline = DetectorPipeline()

    def call(t_s: float, key: str, fingerprint: str) -> list[str]:
        event = AgentEvent(
            "a1", "research", EventKind.ACTION, round(t_s * 1e9), key=key, fingerprint=fingerprint
        )
        return [a.detector for a in pipeline.process(event)]

    for i, key in enumerate(_MIX * 3):  # warm, every call its own
        assert call(i / 3, key, f"f{i}") == []
    # The rare tool called 10 times with the same arguments: a loop, and only that; as
    # different calls, 10 of the last 20 would be a drift.
    found = [d for k in range(10) for d in call(200 + k / 3, "drop_table", "same")]
    assert found == ["loop", "loop"]  # WARNING at the 3rd, CRITICAL at the 6th
    found = [d for k in range(10) for d in call(210 + k / 3, "drop_table", f"g{k}")]
    assert "decision_drift" in found
