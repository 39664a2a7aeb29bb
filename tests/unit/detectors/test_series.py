"""SeriesDetector: surprise of a value stream."""

from __future__ import annotations

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
    assert max(normal[500:]) < 0.5 < spike


def test_level_shift_is_detected_once() -> None:
    detector = SeriesDetector()
    _run(detector, _noise(1, 2000))
    shifted = _run(detector, [v + 100 for v in _noise(2, 200)])
    assert shifted[0] > 0.5
    assert sum(s > 0.3 for s in shifted) == 1  # later rows are masked by the first


def test_suppression_can_be_turned_off() -> None:
    detector = SeriesDetector(suppress_n=0)
    _run(detector, _noise(3, 1000))
    assert sum(s > 0.5 for s in _run(detector, [300.0, 300.0])) == 2


def test_raw_score_ignores_suppression() -> None:
    detector = SeriesDetector()
    _run(detector, [*_noise(4, 1000), 300.0])
    assert detector.score_one({"value": 300.0}) == 0.0
    assert detector.raw_score_one({"value": 300.0}) > 0.0


def test_flat_series_does_not_divide_by_zero() -> None:
    detector = SeriesDetector()
    assert max(_run(detector, [7.0] * 500)) < 0.1
    assert _run(detector, [8.0])[0] == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_bins": 1}, "n_bins"),
        ({"alpha": 0.0}, "alpha"),
        ({"z_weight": -1.0}, "z_weight"),
        ({"scale_nats": 0.0}, "scale_nats"),
        ({"smoothing": 0.0}, "smoothing"),
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
