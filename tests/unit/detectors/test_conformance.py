"""River-style checks every detector passes (STYLE.md, Tests)."""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentwatch.detectors import (
    ActionRateDetector,
    ActivityDropDetector,
    AgentCountDetector,
    CycleDetector,
    DetectorPipeline,
    ErrorBurstDetector,
    GoalStallDetector,
    KeyDriftDetector,
    LatencyDetector,
    LoopDetector,
    MessageVolumeDetector,
    PaceDetector,
    SeriesDetector,
    TransitionModel,
)
from agentwatch.detectors._sessions import synthetic_sessions
from agentwatch.detectors._types import Detector
from tests.unit.detectors.streams import T0_S, action, poisson_times, spike_times

Stream = list[dict[str, Any]]


def _loop_stream(seed: int, n: int = 400) -> Stream:
    rng = np.random.default_rng(seed)
    return [{"fingerprint": f"tool-{k}"} for k in rng.integers(0, 20, size=n)]


def _rate_stream(seed: int, n: int = 400) -> Stream:
    return [{"t": t} for t in poisson_times(seed, rate_per_s=3, start_s=T0_S, duration_s=n / 3)]


def _series_stream(seed: int, n: int = 400) -> Stream:
    rng = np.random.default_rng(seed)
    return [{"value": float(v)} for v in 20 + 3 * np.sin(np.arange(n) / 10) + rng.normal(size=n)]


def _session_stream(seed: int, n: int = 400) -> Stream:
    return [{"keys": keys} for keys in synthetic_sessions(seed, n_train=n, n_test=0).train]


def _activity_stream(seed: int, n: int = 400) -> Stream:
    """Actions at 3/s and a heartbeat each second, now and then idle."""
    times = poisson_times(seed, rate_per_s=3, start_s=T0_S, duration_s=n / 4)
    beats = [
        {"t": T0_S + s, "heartbeat": True, "status": "idle" if s % 97 == 0 else "running"}
        for s in range(int(n / 4))
    ]
    return sorted([{"t": t} for t in times] + beats, key=lambda x: x["t"])[:n]


def _key_stream(seed: int, n: int = 400) -> Stream:
    rng = np.random.default_rng(seed)
    return [{"key": f"tool-{k}"} for k in rng.choice(5, size=n, p=[0.4, 0.3, 0.2, 0.09, 0.01])]


def _error_stream(seed: int, n: int = 400) -> Stream:
    rng = np.random.default_rng(seed)
    return [{"error": bool(e)} for e in rng.random(n) < 0.03]


def _latency_stream(seed: int, n: int = 400) -> Stream:
    rng = np.random.default_rng(seed)
    return [{"duration_s": float(d)} for d in 0.3 * np.exp(0.3 * rng.standard_normal(n))]


def _goal_stream(seed: int, n: int = 400) -> Stream:
    rng = np.random.default_rng(seed)
    stream: Stream = []
    goal, progress = 0, 0.0
    while len(stream) < n:
        stream.append({})  # an action
        if rng.random() < 0.8:
            progress = min(1.0, progress + 0.2)
            stream.append({"goal": f"g{goal}", "progress": progress})
            if progress >= 1.0:
                goal, progress = goal + 1, 0.0
    return stream[:n]


def _message_stream(seed: int, n: int = 400) -> Stream:
    """Messages at 0.5/s to a few peers, now and then a burst of 30 to one of them."""
    rng = np.random.default_rng(seed)
    times = poisson_times(seed, rate_per_s=0.5, start_s=T0_S, duration_s=n * 2.5)
    stream: Stream = []
    for t in times:
        peer = f"peer-{rng.integers(0, 3)}"
        stream.append({"t": t, "bytes": float(rng.integers(200, 4000)), "peer": peer})
        if rng.random() < 0.01:
            stream += [{"t": t + k / 10, "bytes": 500.0, "peer": peer} for k in range(1, 30)]
    return stream[:n]


def _census_stream(seed: int, n: int = 400) -> Stream:
    """A cohort's tick each second: agents join, stop and are lost, now and then many at once."""
    rng = np.random.default_rng(seed)
    stream: Stream = []
    live, lost = 20, dict[str, int]()
    for t in range(n):
        t_ns = (T0_S + t) * 1_000_000_000
        event = rng.random()
        if event < 0.05:
            live += 1
        elif event < 0.08 and live > 1:
            live -= 1  # stopped
        elif (event < 0.1 and live > 1) or (event > 0.995 and live > 8):
            for _ in range(1 if event < 0.1 else 6):
                live -= 1
                lost[f"a{t}-{live}"] = t_ns - 500_000_000
        lost = {a: d for a, d in lost.items() if d > t_ns - 100_000_000_000}
        stream.append({"t_ns": t_ns, "live": live, "lost": dict(lost)})
    return stream


CASES: dict[str, tuple[Callable[[], Detector], Callable[[int], Stream]]] = {
    "agent_count": (AgentCountDetector, _census_stream),
    "loop": (LoopDetector, _loop_stream),
    "cycle": (CycleDetector, _loop_stream),
    "action_rate": (ActionRateDetector, _rate_stream),
    "pace": (PaceDetector, _rate_stream),
    "activity_drop": (ActivityDropDetector, _activity_stream),
    "key_drift": (KeyDriftDetector, _key_stream),
    "error_burst": (ErrorBurstDetector, _error_stream),
    "latency": (LatencyDetector, _latency_stream),
    "goal_stall": (GoalStallDetector, _goal_stream),
    "message_volume": (MessageVolumeDetector, _message_stream),
    "series": (SeriesDetector, _series_stream),
    "transition": (TransitionModel, _session_stream),
}
# Pickled bytes a warm detector may take. The series detector keeps its last ``suppress_n`` raw
# scores; the transition model is per cohort and grows with the workflows' variety, not traffic;
# the agent count (per cohort) keeps the window's falling maxima of the live count; the action
# rate holds its pace, a CUSUM over six tiers of gaps (about 40 numbers, pickled by name).
MAX_PICKLED_BYTES = {
    "agent_count": 2048,
    "loop": 1024,
    "cycle": 1024,
    "action_rate": 1536,
    "activity_drop": 1024,
    "key_drift": 1024,
    "error_burst": 1024,
    "latency": 1024,
    "goal_stall": 1024,
    "message_volume": 1024,
    "pace": 1536,
    "series": 8192,
    "transition": 32768,
}


@pytest.fixture(params=sorted(CASES))
def case_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def case(case_name: str) -> tuple[Callable[[], Detector], Callable[[int], Stream]]:
    return CASES[case_name]


def _scores(detector: Detector, stream: Stream) -> list[float]:
    scores = []
    for x in stream:
        scores.append(detector.score_one(x))
        detector.learn_one(x)
    return scores


def test_finite_score_before_learning(case: Any) -> None:
    make, stream = case
    score = make().score_one(stream(0)[0])
    assert math.isfinite(score)
    assert score >= 0.0
    if isinstance(make(), ActionRateDetector):
        assert score == 0.0  # warm-up


def test_score_one_mutates_neither_detector_nor_input(case: Any) -> None:
    make, stream = case
    detector = make()
    for x in stream(1):
        before = pickle.dumps(detector)
        x_before = copy.deepcopy(x)
        detector.score_one(x)
        assert pickle.dumps(detector) == before
        assert x == x_before
        detector.learn_one(x)
        assert x == x_before


def test_pickle_round_trip_keeps_scores(case: Any) -> None:
    make, stream = case
    detector = make()
    data = stream(2)
    _scores(detector, data[:200])
    restored = pickle.loads(pickle.dumps(detector))
    assert _scores(restored, data[200:]) == _scores(detector, data[200:])


def test_deterministic(case: Any) -> None:
    make, stream = case
    assert _scores(make(), stream(3)) == _scores(make(), stream(3))


def test_scores_are_finite_and_non_negative(case: Any) -> None:
    make, stream = case
    assert all(math.isfinite(s) and s >= 0.0 for s in _scores(make(), stream(4)))


def test_memory_is_bounded(case: Any, case_name: str) -> None:
    make, stream = case
    detector = make()
    data = stream(5, n=4_000)
    _scores(detector, data[:1000])  # warm: fixed-size buffers are full
    small = len(pickle.dumps(detector))
    _scores(detector, data[1000:])
    large = len(pickle.dumps(detector))
    # Counters may grow a byte or two, a rare new context a few more; nothing accumulates.
    assert large <= small + max(64, small // 10)
    assert large < MAX_PICKLED_BYTES[case_name]


def test_one_agent_in_the_pipeline_stays_small() -> None:
    pipeline = DetectorPipeline()
    times = poisson_times(6, rate_per_s=3, start_s=T0_S, duration_s=10_000 / 3)
    for i, t in enumerate(times):
        pipeline.process(action(t, fingerprint=f"{i % 7:064x}"))
    empty = len(pickle.dumps(DetectorPipeline()))
    per_agent = len(pickle.dumps(pipeline)) - empty
    assert len(times) > 9_000
    # Eight families; a lone agent also pays for the class and attribute names a snapshot pickles
    # once (the marginal agent of a fleet costs less). DESIGN.md's budget: a few KiB.
    assert per_agent < 4096


def test_separates_injected_anomalies() -> None:
    loop = LoopDetector()
    normal = max(_scores(loop, _loop_stream(7)))
    injected = max(_scores(loop, [{"fingerprint": "stuck"}] * 6))
    assert normal < loop.min_repeats + 2 <= injected

    rate = ActionRateDetector()
    normal_times = poisson_times(8, rate_per_s=3, start_s=T0_S, duration_s=60)
    normal_max = max(_scores(rate, [{"t": t} for t in normal_times]))
    spike_max = max(_scores(rate, [{"t": t} for t in spike_times(T0_S + 60, n=30, duration_s=0.5)]))
    # Sums over two and three windows lift the normal maximum a little; the warning is at 6.
    assert normal_max < 5.0 < 8.0 < spike_max


@given(st.lists(st.floats(min_value=0, max_value=500, allow_nan=False), min_size=1, max_size=200))
def test_rate_observe_equals_score_then_learn(times: list[float]) -> None:
    fused, verbs = ActionRateDetector(warmup_windows=3), ActionRateDetector(warmup_windows=3)
    for t in sorted(times) + times[:20]:  # ordered, then some late events
        x = {"t": t}
        expected = (verbs.window_one(x), verbs.score_one(x), verbs.count_one(x))
        verbs.learn_one(x)
        window, z, count, mean, std = fused.observe(t)
        assert (window, count) == (expected[0], expected[2])
        assert math.isclose(z, expected[1], abs_tol=1e-9)
        # The baseline both scored against: learning an event changes it only when the event
        # closes windows, and the first event of a new window is scored after that.
        assert math.isclose(mean, verbs.baseline_mean, abs_tol=1e-9)
        assert math.isclose(std, verbs.std, abs_tol=1e-9)


@given(st.lists(st.sampled_from(["a", "b", "c" * 100]), max_size=60))
def test_loop_observe_equals_score_then_learn(fingerprints: list[str]) -> None:
    fused, verbs = LoopDetector(), LoopDetector()
    for fp in fingerprints:
        expected = verbs.score_one({"fingerprint": fp})
        verbs.learn_one({"fingerprint": fp})
        assert fused.observe(fp) == expected
    assert fused.run_length == verbs.run_length
