"""NAB scoring: values known by construction (datasets/README.md, NAB's sweeper)."""

from __future__ import annotations

import math

import pytest

from agentwatch.detectors._nab import (
    PROFILES,
    label_rows,
    probation_rows,
    scaled_sigmoid,
    score_corpus,
)

STANDARD, LOW_FP, LOW_FN = PROFILES
N = 1000  # probation: 150 rows
WINDOWS = [(300, 349), (600, 649)]


def _scores(*hits: int, n: int = N) -> list[float]:
    scores = [0.0] * n
    for i in hits:
        scores[i] = 1.0
    return scores


def test_probation_is_15_percent_capped_at_750() -> None:
    assert probation_rows(1000) == 150
    assert probation_rows(4033) == 604
    assert probation_rows(22695) == 750


def test_scaled_sigmoid() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(3.0) == -1.0
    assert scaled_sigmoid(2.9) > -1.0


def test_labels() -> None:
    labels = label_rows(list(range(N)), WINDOWS)
    assert labels.n_windows == 2
    assert labels.window[:150] == (-2,) * 150
    assert labels.window[300] == labels.window[349] == 0
    assert labels.window[350] == -1
    assert labels.weight[300] == pytest.approx(1.0)  # left edge earns exactly A_TP
    assert labels.weight[349] == pytest.approx(scaled_sigmoid(-1 / 50) / scaled_sigmoid(-1.0))
    assert labels.weight[200] == -1.0  # before the first window: full A_FP
    assert labels.weight[350] == pytest.approx(scaled_sigmoid(1 / 49))
    assert labels.weight[349 + 3 * 49] == -1.0


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_perfect_scores_100_and_null_0(profile: object) -> None:
    labels = label_rows(list(range(N)), WINDOWS)
    perfect = score_corpus([(labels, _scores(300, 600))], profile)  # type: ignore[arg-type]
    assert perfect.normalized == pytest.approx(100.0)
    assert (perfect.tp, perfect.fn, perfect.fp) == (2, 0, 0)
    null = score_corpus([(labels, [0.5] * N)], profile)  # type: ignore[arg-type]
    assert null.normalized == pytest.approx(0.0)
    assert null.threshold == math.inf


def test_only_the_earliest_detection_in_a_window_counts() -> None:
    labels = label_rows(list(range(N)), WINDOWS)
    score = score_corpus([(labels, _scores(300, 320, 340, 600))], STANDARD)
    assert score.normalized == pytest.approx(100.0)
    assert score.tp == 2


def test_false_positive_costs_and_probation() -> None:
    labels = label_rows(list(range(N)), WINDOWS)
    # one detection in probation (free), one before the first window (full A_FP)
    s = score_corpus([(labels, _scores(10, 200, 300, 600))], STANDARD, threshold=1.0)
    assert s.raw == pytest.approx(2.0 - 0.11)
    assert s.fp == 1
    low_fp = score_corpus([(labels, _scores(200, 300, 600))], LOW_FP, threshold=1.0)
    assert low_fp.raw == pytest.approx(2.0 - 0.22)


def test_missed_window_costs_a_fn() -> None:
    labels = label_rows(list(range(N)), WINDOWS)
    s = score_corpus([(labels, _scores(300))], LOW_FN)
    assert s.raw == pytest.approx(1.0 - 2.0)
    assert s.normalized == pytest.approx(100 * (-1.0 + 4.0) / (2.0 + 4.0))


def test_threshold_is_shared_and_maximises_the_corpus_score() -> None:
    labels = label_rows(list(range(N)), WINDOWS)
    a = [0.0] * N
    a[300], a[600], a[700] = 0.9, 0.9, 0.95  # an FP above both hits: still worth taking them
    s = score_corpus([(labels, a), (labels, _scores(300, 600))], STANDARD)
    assert s.threshold == 0.9
    assert s.tp == 4 and s.fp == 1


def test_rejects_bad_input() -> None:
    labels = label_rows(list(range(N)), WINDOWS)
    with pytest.raises(ValueError, match="scores for"):
        score_corpus([(labels, [0.0])], STANDARD)
    with pytest.raises(ValueError, match="not finite"):
        score_corpus([(labels, [math.nan] * N)], STANDARD)
    with pytest.raises(ValueError, match="overlaps"):
        label_rows(list(range(N)), [(300, 400), (350, 500)])
