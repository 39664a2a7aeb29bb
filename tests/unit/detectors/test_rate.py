from __future__ import annotations

import copy
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwatch.detectors import ActionRateDetector, Anomaly, DetectorPipeline, Severity
from agentwatch.detectors._windows import poisson_surprise
from tests.unit.detectors.streams import (
    NS_PER_S,
    T0_S,
    action,
    poisson_times,
    spike_times,
    window_start_ns,
)

SPIKE_START_S = T0_S + 60.2  # inside the window [T0 + 60, T0 + 61)


def _run(times: list[float], pipeline: DetectorPipeline | None = None) -> list[Anomaly]:
    pipeline = pipeline or DetectorPipeline(clock=lambda: 0)
    found = []
    for i, t in enumerate(times):
        found += pipeline.process(action(t, span_id=f"{i:016x}"))
    return [a for a in found if a.detector == "action_rate"]


def test_a_poisson_stream_raises_nothing() -> None:
    assert _run(poisson_times(0, rate_per_s=3, start_s=T0_S, duration_s=60)) == []


def test_a_spike_is_flagged_in_its_open_window_once_per_severity() -> None:
    normal = poisson_times(0, rate_per_s=3, start_s=T0_S, duration_s=120)
    spike = spike_times(SPIKE_START_S, n=30, duration_s=0.5)
    times = sorted(normal + spike)
    found = _run(times)

    assert [a.severity for a in found] == [Severity.WARNING, Severity.CRITICAL]
    onset = window_start_ns(SPIKE_START_S)
    window_end_ns = onset + NS_PER_S
    last_spike_ns = round(spike[-1] * NS_PER_S)
    for anomaly in found:
        assert anomaly.onset_ns == onset
        trigger_ns = round(times[int(anomaly.span_id, 16)] * NS_PER_S)
        # Detected at an event inside the spike, i.e. before the window closed.
        assert round(SPIKE_START_S * NS_PER_S) <= trigger_ns <= last_spike_ns < window_end_ns
        assert anomaly.score >= anomaly.threshold
    warning, critical = found
    assert (warning.threshold, critical.threshold) == (5.5, 8.0)
    assert warning.evidence["observed"] < critical.evidence["observed"] <= 30 + 10
    assert warning.evidence["window_s"] == 1.0
    assert warning.evidence["summary"].startswith(
        f"agent a1: {warning.evidence['observed']} actions in the current 1 s window, baseline "
    )
    # The open window's count alone is at least this surprising (the score is the largest of
    # it, the sums with the windows before, and the pace).
    mean, std = warning.evidence["expected_mean"], warning.evidence["expected_std"]
    alone = poisson_surprise(warning.evidence["observed"], mean, max(1.0, std * std / mean))
    assert alone <= warning.score < alone + 3.0


def test_the_score_is_the_largest_surprise_of_the_open_window_and_its_sums() -> None:
    detector = ActionRateDetector(warmup_windows=3)
    for second in range(10):  # exactly 3 actions a window: mean 3, variance 0, dispersion 1
        for k in range(3):
            detector.learn_one({"t": second + 0.1 + k * 0.3})
    for k in range(9):  # the open window [10, 11): 9 actions by 10.45
        detector.learn_one({"t": 10.0 + k * 0.05})
    assert not detector.pace.warm  # the count alone
    # A tenth at 10.5: half the window elapsed. The window before held 3, the one before 3.
    expected = max(
        poisson_surprise(10, 3.0, 1.0),
        poisson_surprise(13, 3.0 * 1.5, 1.0),
        poisson_surprise(16, 3.0 * 2.5, 1.0),
    )
    assert math.isclose(detector.score_one({"t": 10.5}), expected)
    assert math.isclose(detector.observe(10.5)[1], expected)  # the pipeline's path agrees


def test_two_spikes_far_apart_are_two_excursions() -> None:
    normal = poisson_times(0, rate_per_s=3, start_s=T0_S, duration_s=180)
    spikes = spike_times(SPIKE_START_S, n=30, duration_s=0.5) + spike_times(
        SPIKE_START_S + 90, n=30, duration_s=0.5
    )
    found = _run(sorted(normal + spikes))
    assert [a.severity for a in found] == [Severity.WARNING, Severity.CRITICAL] * 2


def test_a_sustained_level_shift_does_not_flap() -> None:
    before = spike_times(T0_S, n=3 * 30, duration_s=30)
    after = spike_times(T0_S + 30, n=30 * 60, duration_s=60)
    found = _run(before + after)
    assert [a.severity for a in found] == [Severity.WARNING, Severity.CRITICAL]


def test_silent_during_warmup() -> None:
    assert (
        _run(spike_times(T0_S, n=100, duration_s=5.5) + spike_times(T0_S + 6, n=50, duration_s=0.5))
        == []
    )


def test_closing_learns_empty_windows_capped() -> None:
    detector = ActionRateDetector(max_gap_windows=5)
    detector.learn_one({"t": 0.5})
    detector.learn_one({"t": 1_000_000.5})
    assert detector._n_windows == 1 + 5
    assert detector.window == 1_000_000


def test_late_events_count_in_the_open_window() -> None:
    detector = ActionRateDetector()
    for t in [10.1, 10.2, 11.5]:
        detector.learn_one({"t": t})
    assert detector.window_one({"t": 10.9}) == 11
    assert detector.count_one({"t": 10.9}) == 2
    detector.learn_one({"t": 10.9})
    assert (detector.window, detector.count_one({"t": 11.9})) == (11, 3)


def test_quiet_agent_floor() -> None:
    detector = ActionRateDetector(warmup_windows=3)
    for t in [0.5, 10.5]:  # a closed window of 1, then nine empty ones: mean well below 1
        detector.learn_one({"t": t})
    assert detector.mean < 1
    assert detector.score_one({"t": 10.6}) <= 2.0  # two actions: z <= count with a floor of 1


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"window_s": 0}, "window_s"),
        ({"window_s": math.inf}, "window_s"),
        ({"alpha": 0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"warmup_windows": 0}, "warmup_windows"),
        ({"max_gap_windows": -1}, "max_gap_windows"),
        ({"slow_alpha": 0}, "slow_alpha"),
        ({"slow_alpha": 0.5}, "slow_alpha"),  # slower than alpha (0.1), or it is not slow
    ],
)
def test_arguments_are_validated(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        ActionRateDetector(**kwargs)


def test_non_finite_time_is_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        ActionRateDetector().score_one({"t": math.nan})


@settings(derandomize=True, database=None, max_examples=200)
@given(
    st.lists(
        st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False),
        max_size=80,
    ),
    st.sampled_from([0.01, 1.0, 60.0]),
)
def test_scores_are_finite_and_non_negative_for_any_times(
    times: list[float], window_s: float
) -> None:
    detector = ActionRateDetector(window_s=window_s, warmup_windows=2)
    for t in times:
        score = detector.score_one({"t": t})
        assert math.isfinite(score)
        assert score >= 0.0
        detector.learn_one({"t": t})
        assert math.isfinite(detector.mean)
        assert math.isfinite(detector.std)


def _closed_window_counts(seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.choice([1, 1, 2, 3, 3, 5, 40]) for _ in range(300)]


def test_the_baseline_learns_exactly_as_rivers_ew_statistics() -> None:
    # The statistics are plain floats on the hot path; they must stay river's, to the bit.
    from river import stats

    detector = ActionRateDetector(warmup_windows=1, clip_z=1e9, hold_windows=0)
    mean, var = stats.EWMean(fading_factor=0.1), stats.EWVar(fading_factor=0.1)
    counts = _closed_window_counts(0)
    for second, count in enumerate(counts):
        for k in range(count):
            detector.learn_one({"t": second + k / (count + 1)})
        if second:  # the previous window closed at this one's first event
            mean.update(counts[second - 1])
            var.update(counts[second - 1])
            assert (detector.mean, detector.std) == (mean.get(), math.sqrt(max(var.get(), 0.0)))


def test_a_detector_pickled_with_rivers_statistics_restores() -> None:
    # Snapshots written before the statistics were floats hold river's objects.
    from river import stats

    detector = ActionRateDetector(warmup_windows=1, clip_z=1e9, hold_windows=0)
    mean, var = stats.EWMean(fading_factor=0.1), stats.EWVar(fading_factor=0.1)
    counts = _closed_window_counts(1)[:50]
    for second, count in enumerate(counts):
        for k in range(count):
            detector.learn_one({"t": second + k / (count + 1)})
    for count in counts[:-1]:  # the last window is still open
        mean.update(count)
        var.update(count)
    state = detector.__getstate__()
    del state["_ew_mean"], state["_ew_square"], state["_prev_count"], state["clip_z"]
    state |= {"_mean": mean, "_var": var}
    old = ActionRateDetector.__new__(ActionRateDetector)
    old.__setstate__(state)
    assert math.isclose(old.mean, mean.get(), rel_tol=1e-12)
    assert math.isclose(old.std, math.sqrt(var.get()), rel_tol=1e-9)
    assert old.clip_z == 1e9 and old.score_one({"t": 60.0}) >= 0.0


def _max_z(detector: ActionRateDetector, times: list[float]) -> float:
    best = 0.0
    for t in times:
        best = max(best, detector.observe(t)[1])
    return best


def test_a_slow_agents_spike_is_held_out_of_its_baseline() -> None:
    # 1.5 actions/s, then 4x for 30 s: no single window is beyond the clip (mean + 3 scales
    # is ~5.2), so windows of 4-7 used to be learned, the mean chased the spike and its
    # z-score never reached the warning; the sum of three windows is what holds them out.
    detector = ActionRateDetector()
    assert _max_z(detector, poisson_times(1, rate_per_s=1.5, start_s=0, duration_s=300)) < 6
    mean = detector.mean
    assert _max_z(detector, poisson_times(2, rate_per_s=6.0, start_s=300, duration_s=30)) > 6
    assert detector.mean < mean + 0.5


def test_resuming_the_usual_rate_after_a_lull_is_not_a_spike() -> None:
    # Three minutes at 10 % of the usual rate teach the baseline a low mean; coming back to
    # the usual rate is measured against the slower mean, which still remembers it.
    detector = ActionRateDetector()
    _max_z(detector, poisson_times(3, rate_per_s=2.0, start_s=0, duration_s=600))
    _max_z(detector, poisson_times(4, rate_per_s=0.2, start_s=600, duration_s=180))
    assert detector.mean < 0.6
    assert _max_z(detector, poisson_times(5, rate_per_s=2.0, start_s=780, duration_s=120)) < 6


def test_a_detector_pickled_before_the_slow_mean_starts_it_at_its_mean() -> None:
    detector = ActionRateDetector()
    _max_z(detector, poisson_times(6, rate_per_s=2.0, start_s=0, duration_s=60))
    state = copy.deepcopy(detector.__getstate__())  # as a pickle holds it
    del state["_slow_mean"], state["slow_alpha"]
    old = ActionRateDetector.__new__(ActionRateDetector)
    old.__setstate__(state)
    assert old._slow_mean == detector.mean
    assert old.observe(61.0)[1] == detector.observe(61.0)[1]
