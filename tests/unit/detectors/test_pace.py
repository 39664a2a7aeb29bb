from __future__ import annotations

import math
import pickle
import random

import pytest

from agentwatch.detectors import (
    ActionRateDetector,
    AgentEvent,
    DetectorPipeline,
    EventKind,
    PaceDetector,
)
from tests.unit.detectors.streams import NS_PER_S, T0_S, action


def deliberating_times(seed: int, *, start_s: float, duration_s: float) -> list[float]:
    """A slow agent (about 1.5 actions/s) that decides before each call: a model call of
    0.15-0.4 s, then the tool."""
    rng = random.Random(seed)
    times, t = [], start_s
    while t < start_s + duration_s:
        t += max(rng.expovariate(2.0), rng.lognormvariate(math.log(0.25), 0.3) + 0.02)
        times.append(t)
    return times


def flood_times(seed: int, *, start_s: float, duration_s: float, rate_per_s: float) -> list[float]:
    """Calls without deliberation: exponential gaps, no floor."""
    rng = random.Random(seed)
    times, t = [], start_s
    while True:
        t += rng.expovariate(rate_per_s)
        if t >= start_s + duration_s:
            return times
        times.append(t)


def _scores(detector: PaceDetector, times: list[float]) -> list[float]:
    return [detector.observe(t) for t in times]


@pytest.mark.parametrize("seed", range(5))
def test_a_slow_agents_5x_spike_is_flagged_within_two_seconds(seed: int) -> None:
    normal = deliberating_times(seed, start_s=T0_S, duration_s=600)
    usual_rate = len(normal) / 600
    onset = normal[-1] + 0.3
    spike = flood_times(seed, start_s=onset, duration_s=20, rate_per_s=5 * usual_rate)
    pipeline = DetectorPipeline(clock=lambda: 0)
    before = [a for t in normal for a in pipeline.process(action(t))]
    assert [a for a in before if a.detector == "action_rate"] == []
    found = [
        (t, a) for t in spike for a in pipeline.process(action(t)) if a.detector == "action_rate"
    ]
    assert found, "the spike was not flagged"
    t, first = found[0]
    # 2 s hold about 3 of this agent's usual actions and 15 of the spike's: the count alone
    # needs longer (it is what flagged these before the pace); most of them are fast.
    assert t - onset <= 2.0
    assert first.evidence["fast_actions"] >= 2 and first.evidence["pace_nats"] > 15.0
    assert "came within" in first.evidence["summary"]


def test_usual_pace_scores_nothing_and_a_flood_scores_high() -> None:
    pace = PaceDetector()
    normal = deliberating_times(7, start_s=0, duration_s=600)
    assert max(_scores(pace, normal)) < 4.0
    assert pace.warm and 0.15 < pace.gap_s < 0.3  # about the 5 % quantile of the gaps
    assert 0.5 < pace.mean_gap_s < 0.8  # about 1.5 actions/s
    flood = [normal[-1] + 0.2 + k * 0.01 for k in range(8)]
    scores = _scores(pace, flood)
    assert scores[-1] > 6.0 and scores == sorted(scores)  # each fast gap adds evidence
    assert pace.fast >= 7 and pace.nats > 18.0  # 18 nats: a score of 6


def test_usual_gaps_soon_outweigh_a_few_fast_ones() -> None:
    pace = PaceDetector()
    normal = deliberating_times(13, start_s=0, duration_s=600)
    _scores(pace, normal)
    t = normal[-1]
    for k in range(2):  # two quick calls: some evidence, not an alarm
        pace.observe(t + 0.02 * (k + 1))
    assert 0.0 < pace.nats < 18.0
    later = deliberating_times(14, start_s=t + 0.5, duration_s=10)
    _scores(pace, later)
    assert pace.nats == 0.0 and pace.fast == 0


def test_an_agent_calling_tools_in_parallel_learns_it() -> None:
    pace = PaceDetector()
    times = [second + 0.2 for second in range(600) for _ in range(3)]  # 3 at once, each second
    assert max(_scores(pace, times[600:])) < 3.0
    # Two gaps in three are 0: the learned gap shrinks towards 0 and they are its usual.
    assert pace.warm and pace.gap_s < 1e-6 and pace.nats == 0.0


def test_gaps_after_a_pause_are_not_judged() -> None:
    pace = PaceDetector()
    normal = deliberating_times(8, start_s=0, duration_s=600)
    _scores(pace, normal)
    pace.observe(normal[-1] + 0.01)  # a fast gap: some evidence
    assert pace.nats > 0.0
    pace.pause()  # the CUSUM restarts
    assert (pace.nats, pace.fast) == (0.0, 0)
    learned = pace.gap_s, pace.mean_gap_s
    assert pace.observe(normal[-1] + 60) == 0.0
    assert (pace.gap_s, pace.mean_gap_s) == learned  # the silence is not a gap
    assert pace.observe(normal[-1] + 60.5) == 0.0
    assert (pace.gap_s, pace.mean_gap_s) != learned  # the gap after the first action is


def test_late_actions_are_never_fast_and_teach_nothing() -> None:
    pace = PaceDetector()
    normal = deliberating_times(9, start_s=0, duration_s=600)
    _scores(pace, normal)
    state = pace.gap_s, pace.mean_gap_s, pace.nats, pace.fast
    for k in range(10):
        assert pace.observe(normal[-1] - 5 + k * 0.001) == 0.0
    assert (pace.gap_s, pace.mean_gap_s, pace.nats, pace.fast) == state


def test_a_flood_does_not_teach_its_own_pace() -> None:
    pace = PaceDetector()
    normal = deliberating_times(10, start_s=0, duration_s=600)
    _scores(pace, normal)
    learned, mean_gap = pace.gap_s, pace.mean_gap_s
    flood = flood_times(10, start_s=normal[-1] + 0.3, duration_s=20, rate_per_s=8.0)
    scores = _scores(pace, flood)
    assert sum(z >= 6.0 for z in scores[-40:]) > 30  # still flagged at its end
    # Nothing is learned while the CUSUM holds 4.5 nats or more (the flood's first gaps are).
    assert pace.gap_s > 0.8 * learned and pace.mean_gap_s > 0.8 * mean_gap


def test_score_one_never_mutates() -> None:
    pace = PaceDetector()
    _scores(pace, deliberating_times(15, start_s=0, duration_s=300))
    before = pickle.dumps(pace)
    pace.score_one({"t": 300.5})
    assert pickle.dumps(pace) == before


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"window_s": 0.0}, "window_s"),
        ({"quantile": 0.7}, "quantile"),
        ({"step": 0.0}, "step"),
        ({"alpha": 1.5}, "alpha"),
        ({"gap_alpha": 0.0}, "gap_alpha"),
        ({"factor": 1.0}, "factor"),
        ({"hold_nats": 50.0}, "hold_nats"),
        ({"warmup_windows": 0}, "warmup_windows"),
        ({"refresh_windows": 0}, "refresh_windows"),
        ({"report_z": 0.5}, "report_z"),
    ],
)
def test_arguments_are_validated(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        PaceDetector(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="t must be finite"):
        PaceDetector().observe(math.nan)


def test_a_pace_pickled_before_the_cusum_restores_as_a_fresh_one_in_step() -> None:
    # The state a version-4 snapshot holds for an agent's pace (PaceDetector's slots then).
    old = {
        "_down": 0.98, "_fast": 2, "_gap": 0.2, "_held": 0, "_last_t": 100.5, "_mean": 0.07,
        "_n_windows": 90, "_need": 3.0, "_p1": 1, "_p2": 0, "_settling": 0, "_up": 1.001,
        "_window": 100, "alpha": 0.02, "clip_z": 3.0, "floor": 0.05, "hold_windows": 30,
        "quantile": 0.05, "report_z": 6.0, "step": 0.02, "warmup_windows": 30, "window_s": 1.0,
    }  # fmt: skip
    pace = PaceDetector.__new__(PaceDetector)
    pace.__setstate__((None, old))
    assert not pace.warm and pace.gap_s == 0.0 and pace.report_z == 6.0
    assert pace._window == 100  # in step with its action rate's windows
    assert pace.observe(100.7) == 0.0 and pace.paused is False


def test_an_action_rate_pickled_before_the_pace_restores_with_a_fresh_one() -> None:
    detector = ActionRateDetector()
    for t in deliberating_times(11, start_s=0, duration_s=120):
        detector.learn_one({"t": t})
    state = pickle.loads(pickle.dumps(detector)).__getstate__()
    del state["pace"], state["_base_m"], state["_base_dispersion"]
    old = ActionRateDetector.__new__(ActionRateDetector)
    old.__setstate__(state)
    assert not old.pace.warm and old.pace.window_s == detector.window_s
    assert old.score_one({"t": 121.0}) == detector.score_one({"t": 121.0})  # the count's


def test_idle_status_pauses_the_pace_too() -> None:
    pipeline = DetectorPipeline(clock=lambda: 0)
    for t in deliberating_times(12, start_s=T0_S, duration_s=300):
        pipeline.process(action(t))
    idle = AgentEvent(
        ts_ns=round((T0_S + 301) * NS_PER_S),
        agent="a1",
        service="researcher",
        kind=EventKind.HEARTBEAT,
        key="idle",
    )
    pipeline.process(idle)
    assert pipeline._agents["a1"].rate.pace.paused
