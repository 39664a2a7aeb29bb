"""SeriesDetector: surprise of a value stream."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from agentwatch.detectors import SeriesDetector


def _run(detector: SeriesDetector, values: list[float]) -> list[float]:
    scores = []
    for v in values:
        x = {"value": v}
        scores.append(detector.score_one(x))
        detector.learn_one(x)
    return scores


def _noise(seed: int, n: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return [float(v) for v in 50 + 5 * rng.standard_normal(n)]


def test_spike_scores_high_after_noise() -> None:
    detector = SeriesDetector()
    normal = _run(detector, _noise(0, 2000))
    [spike] = _run(detector, [200.0])
    # A new extreme of the noise may reach a new level; the spike is far beyond.
    assert max(normal[500:]) < 0.6 < 0.8 < spike


def test_level_shift_is_detected_once() -> None:
    detector = SeriesDetector()
    _run(detector, _noise(1, 2000))
    shifted = _run(detector, [v + 100 for v in _noise(2, 200)])
    assert shifted[0] > 0.5
    assert sum(s > 0.3 for s in shifted) == 1  # later rows are masked by the first


def test_suppression_can_be_turned_off() -> None:
    detector = SeriesDetector(suppress_n=0)
    _run(detector, _noise(3, 1000))
    assert sum(s > 0.5 for s in _run(detector, [300.0, -200.0])) == 2


def test_raw_score_ignores_suppression() -> None:
    detector = SeriesDetector()
    _run(detector, [*_noise(4, 1000), 300.0])
    assert detector.score_one({"value": 300.0}) == 0.0
    assert detector.raw_score_one({"value": 300.0}) > 0.0


def test_flat_series_does_not_divide_by_zero() -> None:
    detector = SeriesDetector()
    assert max(_run(detector, [7.0] * 500)) < 0.1
    assert _run(detector, [8.0])[0] > 0.9


def test_steady_cycle_scores_low_and_a_new_level_high() -> None:
    detector = SeriesDetector()
    cycle = [10.0 + (k % 24) / 4 for k in range(3000)]
    scores = _run(detector, cycle)
    assert max(scores[500:]) < 0.2
    assert detector.raw_score_one({"value": 30.0}) > 0.5


def test_level_inside_the_range_but_never_visited_is_novel() -> None:
    # A square wave between 0 and 10: a run at 5 stays inside the range yet is new.
    wave = [0.0 if (k // 50) % 2 else 10.0 for k in range(3000)]
    detector = SeriesDetector()
    _run(detector, wave)
    assert detector.raw_score_one({"value": 0.0}) < 0.2  # the run at 0 goes on
    assert detector.raw_score_one({"value": 5.0}) >= 0.5


def test_recurring_spikes_to_one_height_fade() -> None:
    detector = SeriesDetector()
    values = [0.0 if k % 100 else 20.0 for k in range(1, 4001)]
    scores = _run(detector, values)
    # At a height already seen the deviation is capped below a new level's 1.0 (0.5 scored).
    cap = detector.known_level_cap
    assert max(scores[2000:]) <= cap / (1 + cap) < 0.5
    assert _run(detector, [40.0])[0] > 0.5


def test_a_new_level_means_less_in_a_drifting_stream() -> None:
    steady, drifting = SeriesDetector(), SeriesDetector()
    _run(steady, _noise(6, 3000))
    _run(drifting, [v + k / 20 for k, v in enumerate(_noise(6, 3000))])  # a new level every ~20
    assert steady.raw_score_one({"value": 150.0}) > 0.5
    assert drifting.raw_score_one({"value": 300.0}) < steady.raw_score_one({"value": 150.0})


def test_a_step_never_taken_is_novel() -> None:
    # A staircase 0 -> 1 -> 2 -> 3 -> 0 ...: every level is known, 0 -> 2 is a new step.
    stairs = [float((k // 25) % 4) for k in range(6000)]
    detector = SeriesDetector()
    _run(detector, [*stairs, 0.0])  # ends at the start of a run at 0
    assert detector.raw_score_one({"value": 0.0}) < 0.2
    assert detector.raw_score_one({"value": 2.0}) > 0.5


def test_suppression_matches_the_maximum_of_the_last_surprises() -> None:
    values = _noise(7, 1500)
    masked = SeriesDetector(suppress_n=40, warmup_n=0)
    raw = SeriesDetector(suppress_n=0, warmup_n=0)
    history: list[float] = []
    for v in values:
        x = {"value": v}
        surprise = raw.raw_score_one(x)
        expected = 0.0 if history and surprise <= max(history[-40:]) else surprise
        assert masked.score_one(x) == expected
        history.append(surprise)
        masked.learn_one(x)
        raw.learn_one(x)


def test_the_grid_coarsens_when_the_range_grows() -> None:
    # The grid freezes on small noise; spikes ten times higher follow, always about as high.
    rng = np.random.default_rng(8)
    values = [0.1 + 0.01 * rng.standard_normal() for _ in range(3000)]
    for k in range(200, 3000, 100):
        values[k] = 1.5 + 0.005 * rng.standard_normal()
    detector = SeriesDetector()
    scores = _run(detector, values)
    cap = detector.known_level_cap
    assert max(scores[1500:]) <= cap / (1 + cap) < 0.5  # a spike like the ones before
    assert detector.raw_score_one({"value": 5.0}) > 0.5


def test_a_shift_within_the_noise_shows_in_the_smoothed_stream() -> None:
    # A shift of one noise sigma: no single value leaves the noise's levels.
    values = _noise(9, 3000) + [v + 5 for v in _noise(10, 100)]
    detector, plain = SeriesDetector(), SeriesDetector(smooth_alpha=1.0)  # 1.0: no smoothing
    shifted, plain_shifted = _run(detector, values)[3000:], _run(plain, values)[3000:]
    assert max(shifted) > 0.5 > max(plain_shifted)


def test_levels_stay_bounded_on_a_trend() -> None:
    detector = SeriesDetector(max_levels=16)
    _run(detector, [float(k) for k in range(20_000)])
    small = len(pickle.dumps(detector))
    _run(detector, [float(k) for k in range(20_000, 40_000)])
    assert len(pickle.dumps(detector)) <= small + 64  # a trend visits a new level every few values


def test_pickle_round_trip_across_the_grid_freeze() -> None:
    values = _noise(5, 400)
    detector = SeriesDetector(grid_n=150)
    _run(detector, values[:100])  # the grid is not frozen yet
    restored = pickle.loads(pickle.dumps(detector))
    assert _run(restored, values[100:]) == _run(detector, values[100:])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_bins": 1}, "n_bins"),
        ({"alpha": 0.0}, "alpha"),
        ({"smoothing": 0.0}, "smoothing"),
        ({"context_nats": 0.0}, "context_nats"),
        ({"deviation_nats": 0.0}, "deviation_nats"),
        ({"novelty_nats": 0.0}, "novelty_nats"),
        ({"novelty_power": 0.0}, "novelty_power"),
        ({"known_level_cap": 0.0}, "known_level_cap"),
        ({"step_nats": 0.0}, "step_nats"),
        ({"max_steps": 0}, "max_steps"),
        ({"grid_levels": 0}, "grid_levels"),
        ({"grid_n": 0}, "grid_n"),
        ({"max_levels": 0}, "max_levels"),
        ({"max_span_levels": 0}, "max_span_levels"),
        ({"smooth_alpha": 0.0}, "smooth_alpha"),
        ({"suppress_n": -1}, "suppress_n"),
        ({"warmup_n": -1}, "warmup_n"),
    ],
)
def test_validates_arguments(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SeriesDetector(**kwargs)  # type: ignore[arg-type]


def test_rejects_non_finite_value() -> None:
    with pytest.raises(ValueError, match="finite"):
        SeriesDetector().learn_one({"value": float("inf")})
