"""Sessions judged against their cohort's learned sessions (the live decision-pattern family)."""

from __future__ import annotations

import pickle

import pytest

from agentwatch.detectors import AgentEvent, DetectorPipeline, EventKind, Severity
from agentwatch.detectors._sequence import precision_recall_f1
from agentwatch.detectors._session_pattern import CohortSessions, SessionTrail
from agentwatch.detectors._sessions import synthetic_sessions

NS = 1_000_000_000


def test_a_cohort_model_flags_the_synthetic_faults_and_keeps_normal_sessions_quiet() -> None:
    data = synthetic_sessions(0, n_train=1000, n_test=1000)
    cohort = CohortSessions(min_sessions=500, adopt_after=100)
    assert not any(cohort.judge("svc", keys) for keys in data.train)
    flags = [cohort.judge("svc", keys) is not None for keys in data.test]
    scores = precision_recall_f1(flags, data.labels)
    assert scores.precision > 0.99
    assert scores.recall > 0.9


def test_nothing_is_scored_before_the_cohort_learned_min_sessions() -> None:
    cohort = CohortSessions(min_sessions=3)
    normal = ["plan", "search", "read", "answer"]
    for _ in range(3):
        assert cohort.judge("svc", normal) is None
    verdict = cohort.judge("svc", ["plan", "delete_repo", "answer"])
    assert verdict is not None
    assert (verdict.key, verdict.position, verdict.calls) == ("delete_repo", 1, 3)
    assert verdict.score >= verdict.threshold
    # cohorts do not share a model: another cohort is still learning
    assert cohort.judge("other", ["plan", "delete_repo", "answer"]) is None


def test_a_surprise_that_keeps_coming_back_becomes_the_cohorts_new_normal() -> None:
    cohort = CohortSessions(min_sessions=50, adopt_after=5)
    for _ in range(50):
        cohort.judge("svc", ["plan", "search", "answer"])
    deployed = ["plan", "search", "rerank", "answer"]
    flagged = [cohort.judge("svc", deployed) is not None for _ in range(30)]
    assert flagged[:5] == [True] * 5
    assert not any(flagged[-10:])


def test_a_flagged_session_is_not_learned() -> None:
    cohort = CohortSessions(min_sessions=20)
    for _ in range(20):
        cohort.judge("svc", ["plan", "search", "answer"])
    for _ in range(10):
        assert cohort.judge("svc", ["plan", "drop_table", "answer"]) is not None


def _calls(trail: SessionTrail, start_s: float, keys: list[str]) -> None:
    for i, key in enumerate(keys):
        trail.add(round((start_s + 0.1 * (i + 1)) * NS), key)


@pytest.mark.parametrize("live", [True, False])
def test_a_trail_gives_a_sessions_calls_in_either_arrival_order(live: bool) -> None:
    trail = SessionTrail()
    first, second = ["a", "b", "c"], ["d", "e"]
    if live:  # a span is exported when it ends: the session after its calls
        _calls(trail, 10, first)
        trail.session(10 * NS, 11 * NS, "s1")
    else:  # history replayed in time order: the session's start first
        trail.session(10 * NS, 11 * NS, "s1")
        _calls(trail, 10, first)
    assert trail.due(11 * NS) == []  # the agent's clock has not passed the end yet
    _calls(trail, 12, second)
    [(session_id, start, end, keys)] = trail.due(12 * NS + 1)
    assert (session_id, start, end, keys) == ("s1", 10 * NS, 11 * NS, first)
    assert trail.keys == second  # the closed session's calls are dropped
    assert trail.due(20 * NS) == []


def test_a_trail_is_bounded_and_pickles() -> None:
    trail = SessionTrail(max_calls=8)
    _calls(trail, 0, [str(i) for i in range(20)])
    assert len(trail.keys) == len(trail.times) <= 8
    assert trail.keys[-1] == "19"
    restored = pickle.loads(pickle.dumps(trail))
    assert (restored.keys, list(restored.times)) == (trail.keys, list(trail.times))


def test_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="min_sessions"):
        CohortSessions(min_sessions=0)
    with pytest.raises(ValueError, match="adopt_after"):
        CohortSessions(adopt_after=0)


def _session_events(
    sessions: list[list[str]], *, live: bool, start_s: float = 0.0
) -> list[AgentEvent]:
    """Sessions of ten agents of one cohort, each a session span around its calls, then a
    heartbeat; in export order (a span after its calls) or in replay order (by start time)."""
    events: list[AgentEvent] = []
    for i, keys in enumerate(sessions):
        agent = f"a{i % 10}"
        start = start_s + 10.0 * (i // 10)
        calls = [
            AgentEvent(agent, "svc", EventKind.ACTION, round((start + 0.1 * (j + 1)) * NS), key=k)
            for j, k in enumerate(keys)
        ]
        duration = 0.1 * (len(keys) + 1)
        session = AgentEvent(
            agent, "svc", EventKind.SESSION, round(start * NS), key=f"s{i}", duration_s=duration
        )
        beat = AgentEvent(
            agent, "svc", EventKind.HEARTBEAT, round((start + 9) * NS), key="running", value=5
        )
        events += [*calls, session, beat] if live else [session, *calls, beat]
    return events


@pytest.mark.parametrize("live", [True, False])
def test_the_pipeline_judges_sessions_against_the_cohort_in_either_order(live: bool) -> None:
    data = synthetic_sessions(1, n_train=1000, n_test=1000)
    pipeline = DetectorPipeline(session_patterns=True, session_min_sessions=200)
    pipeline._sessions.adopt_after = 100  # the test faults recur hundreds of times
    found = []
    for event in _session_events(data.train + data.test, live=live):
        found += [a for a in pipeline.process(event) if a.detector == "session_pattern"]
    flagged = {int(a.evidence["session"][1:]) - len(data.train) for a in found}
    assert min(flagged) >= 0  # no normal training session was flagged
    scores = precision_recall_f1([i in flagged for i in range(1000)], data.labels)
    assert scores.precision > 0.99
    assert scores.recall > 0.9
    [anomaly] = [a for a in found if a.evidence["session"] == found[0].evidence["session"]]
    assert anomaly.severity is Severity.WARNING
    assert "has a step cohort svc never made" in anomaly.evidence["summary"]


def test_the_cohorts_sessions_survive_a_snapshot_and_an_older_snapshot_restores() -> None:
    data = synthetic_sessions(2, n_train=400, n_test=0)
    original = DetectorPipeline(session_patterns=True, session_min_sessions=200)
    for event in _session_events(data.train, live=True):
        original.process(event)
    destructive = [["search_web", "drop_table", "summarize"]] * 10
    restored = DetectorPipeline(session_patterns=True, session_min_sessions=200)
    restored.restore(original.snapshot())
    found = [
        a.detector
        for event in _session_events(destructive, live=True, start_s=5000)
        for a in restored.process(event)
    ]
    assert "session_pattern" in found
    # A version 3 snapshot (no session models) restores; its cohorts start learning afresh.
    blob = original.snapshot()
    state = pickle.loads(blob[6:])
    del state["sessions"]
    old = DetectorPipeline(session_patterns=True)
    assert old.restore(blob[:4] + (3).to_bytes(2, "little") + pickle.dumps(state)) == 10
    assert old._sessions.models == {}


def test_sessions_are_ignored_unless_session_patterns_is_on() -> None:
    data = synthetic_sessions(3, n_train=300, n_test=0)
    destructive = [["search_web", "drop_table", "summarize"]] * 5
    for on in (False, True):
        pipeline = DetectorPipeline(session_patterns=on, session_min_sessions=200)
        found = [
            a.detector
            for event in _session_events(data.train + destructive, live=True)
            for a in pipeline.process(event)
        ]
        assert ("session_pattern" in found) is on
        assert (pipeline._agents["a0"].trail is not None) is on


def test_novel_steps_are_the_ones_never_made() -> None:
    from agentwatch.detectors import TransitionModel

    model = TransitionModel()
    assert model.novel_steps(["a"]) == []  # nothing learned: nothing to compare with
    for _ in range(3):
        model.learn_one({"keys": ["plan", "search", "search", "answer"]})
    assert model.novel_steps(["plan", "search", "search", "answer"]) == []
    assert model.novel_steps(["plan", "answer"]) == [(1, "answer")]  # a skipped step
    assert model.novel_steps(["plan", "search", "search", "search", "answer"]) == [(3, "search")]
    assert model.novel_steps(["plan", "rm", "answer"]) == [(1, "rm"), (2, "answer")]
    assert model.novel_steps(["plan", "search"]) == [(2, "")]  # it never ended there


def test_a_restore_in_place_of_everything_keeps_the_session_settings() -> None:
    source = DetectorPipeline(session_patterns=True, session_min_sessions=200)
    for event in _session_events(synthetic_sessions(4, n_train=40, n_test=0).train, live=True):
        source.process(event)
    target = DetectorPipeline(session_patterns=True, session_min_sessions=200)
    target._sessions.adopt_after = 100
    target._sessions.models["gone"] = target._sessions.make()
    target.restore(source.snapshot(), merge=False)
    assert set(target._sessions.models) == {"svc"}
    assert (target._sessions.adopt_after, target._sessions.min_sessions) == (100, 200)
