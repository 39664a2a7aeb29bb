from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwatch.detectors import DetectorPipeline, EventKind, LoopDetector, Severity
from tests.unit.detectors.streams import action


def _loop_anomalies(fingerprints: list[str]) -> list[tuple[int, Severity, float]]:
    """(index of the triggering call, severity, score) of every loop anomaly."""
    pipeline = DetectorPipeline(clock=lambda: 0)
    found = []
    for i, fingerprint in enumerate(fingerprints):
        for anomaly in pipeline.process(action(100.0 + i, fingerprint=fingerprint)):
            if anomaly.detector == "loop":
                found.append((i, anomaly.severity, anomaly.score))
    return found


def test_score_is_the_would_be_run_length() -> None:
    detector = LoopDetector()
    scores = []
    for fingerprint in ["a", "a", "a", "b", "a", "a"]:
        scores.append(detector.score_one({"fingerprint": fingerprint}))
        detector.learn_one({"fingerprint": fingerprint})
    assert scores == [1.0, 2.0, 3.0, 1.0, 1.0, 2.0]
    assert detector.run_length == 2


def test_flagged_at_third_identical_call_critical_at_sixth_then_silent() -> None:
    found = _loop_anomalies(["x"] * 12)
    assert found == [(2, Severity.WARNING, 3.0), (5, Severity.CRITICAL, 6.0)]


def test_a_different_fingerprint_in_between_resets_the_run() -> None:
    assert _loop_anomalies(["x", "x", "y", "x", "x", "y", "x", "x"]) == []


def test_a_new_run_rearms() -> None:
    found = _loop_anomalies(["x"] * 7 + ["y"] * 3)
    assert [(i, s) for i, s, _ in found] == [
        (2, Severity.WARNING),
        (5, Severity.CRITICAL),
        (9, Severity.WARNING),
    ]


def test_loop_evidence_and_onset() -> None:
    pipeline = DetectorPipeline(clock=lambda: 42, id_factory=lambda: "0" * 32)
    events = [action(10.0 + i, fingerprint="fp1", span_id=f"{i:016x}") for i in range(3)]
    anomalies = [a for e in events for a in pipeline.process(e)]
    [anomaly] = anomalies
    assert anomaly.detector == "loop"
    assert anomaly.onset_ns == events[0].ts_ns
    assert anomaly.detected_ns == 42
    assert anomaly.id == "0" * 32
    assert (anomaly.agent, anomaly.service) == ("a1", "researcher")
    assert (anomaly.trace_id, anomaly.span_id) == (events[2].trace_id, events[2].span_id)
    assert (anomaly.score, anomaly.threshold) == (3.0, 3.0)
    assert anomaly.evidence == {
        "summary": "agent a1 called web_search with identical arguments 3 times in a row",
        "fingerprint": "fp1",
        "tool": "web_search",
        "repeats": 3,
        "expected": "no identical consecutive calls",
    }


def test_actions_without_fingerprint_and_other_kinds_do_not_touch_the_run() -> None:
    pipeline = DetectorPipeline()
    seen = []
    seen += pipeline.process(action(1.0, fingerprint="x"))
    seen += pipeline.process(action(2.0, fingerprint=""))
    seen += pipeline.process(action(3.0, fingerprint="x"))
    heartbeat = action(4.0, fingerprint="x")
    seen += pipeline.process(
        type(heartbeat)(heartbeat.agent, heartbeat.service, EventKind.HEARTBEAT, heartbeat.ts_ns)
    )
    assert seen == []
    assert [a.score for a in pipeline.process(action(5.0, fingerprint="x"))] == [3.0]


def test_long_fingerprints_are_digested() -> None:
    detector = LoopDetector()
    long = "tool(" + "x" * 10_000 + ")"
    for _ in range(2):
        detector.learn_one({"fingerprint": long})
    assert detector.score_one({"fingerprint": long}) == 3.0
    assert detector.score_one({"fingerprint": long + "y"}) == 1.0
    assert len(detector._last or "") <= 64


def test_min_repeats_is_validated() -> None:
    with pytest.raises(ValueError, match="min_repeats"):
        LoopDetector(min_repeats=1)


@settings(derandomize=True, database=None)
@given(st.lists(st.sampled_from(["a", "b", "c"]), max_size=60))
def test_score_matches_a_brute_force_run_length(fingerprints: list[str]) -> None:
    detector = LoopDetector()
    for i, fingerprint in enumerate(fingerprints):
        run = 1
        while run <= i and fingerprints[i - run] == fingerprint:
            run += 1
        assert detector.score_one({"fingerprint": fingerprint}) == run
        detector.learn_one({"fingerprint": fingerprint})


@settings(derandomize=True, database=None)
@given(st.lists(st.sampled_from(["a", "b"]), max_size=80))
def test_at_most_two_loop_anomalies_per_run(fingerprints: list[str]) -> None:
    found = _loop_anomalies(fingerprints)
    runs = 1 + sum(a != b for a, b in itertools.pairwise(fingerprints))
    assert len(found) <= 2 * runs
    for i, severity, score in found:
        assert score == (3.0 if severity is Severity.WARNING else 6.0)
        assert fingerprints[i - int(score) + 1 : i + 1] == [fingerprints[i]] * int(score)
