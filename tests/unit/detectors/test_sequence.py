"""TransitionModel and the synthetic labelled sessions."""

from __future__ import annotations

import pytest

from agentwatch.detectors import TransitionModel
from agentwatch.detectors._sequence import precision_recall_f1
from agentwatch.detectors._sessions import synthetic_sessions

NORMAL = ["plan", "search", "read", "read", "answer"]


def _trained() -> TransitionModel:
    model = TransitionModel()
    for k in range(60):
        model.learn_one({"keys": NORMAL if k % 3 else ["plan", "search", "read", "answer"]})
    return model


def _flagged(model: TransitionModel, keys: list[str]) -> bool:
    return model.score_one({"keys": keys}) >= model.threshold_nats


def test_normal_sessions_pass() -> None:
    model = _trained()
    assert not _flagged(model, NORMAL)
    assert not _flagged(model, ["plan", "search", "read", "answer"])


@pytest.mark.parametrize(
    "keys",
    [
        ["plan", "search", "delete_repo", "answer"],  # unseen tool
        ["plan", "read", "search", "answer"],  # reordered
        ["search", "read", "answer"],  # skipped first step
        ["plan", "search", *["read"] * 8, "answer"],  # loop
    ],
    ids=["destructive", "reorder", "skip", "loop"],
)
def test_faults_are_flagged(keys: list[str]) -> None:
    assert _flagged(_trained(), keys)


def test_untrained_model_scores_zero() -> None:
    assert TransitionModel().score_one({"keys": ["a", "b"]}) == 0.0


def test_explain_points_at_the_surprising_step() -> None:
    steps = _trained().explain_one({"keys": ["plan", "search", "drop_table", "answer"]})
    key, surprise = max(steps, key=lambda s: s[1])
    assert key == "drop_table" and surprise > 5


def test_f1_on_synthetic_sessions() -> None:
    data = synthetic_sessions(1, n_train=1000, n_test=1000)
    model = TransitionModel()
    for keys in data.train:
        model.learn_one({"keys": keys})
    flags = [_flagged(model, keys) for keys in data.test]
    result = precision_recall_f1(flags, data.labels)
    assert result.precision >= 0.98
    assert result.f1 >= 0.95


def test_synthetic_sessions_are_seeded_and_labelled() -> None:
    a, b = (
        synthetic_sessions(5, n_train=50, n_test=50),
        synthetic_sessions(5, n_train=50, n_test=50),
    )
    assert a == b
    assert a.labels == [bool(f) for f in a.faults]
    with pytest.raises(ValueError, match="anomaly_fraction"):
        synthetic_sessions(anomaly_fraction=2.0)


def test_precision_recall_f1() -> None:
    r = precision_recall_f1([True, True, False, False], [True, False, True, False])
    assert (r.tp, r.fp, r.fn, r.tn) == (1, 1, 1, 1)
    assert r.precision == r.recall == r.f1 == 0.5
    assert precision_recall_f1([], []).f1 == 0.0
    with pytest.raises(ValueError):
        precision_recall_f1([True], [])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"order": 0}, "order"),
        ({"top_k": 0}, "top_k"),
        ({"min_probability": 1.0}, "min_probability"),
        ({"smoothing": 0.0}, "smoothing"),
        ({"loop_nats": 0.0}, "loop_nats"),
    ],
)
def test_validates_arguments(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TransitionModel(**kwargs)  # type: ignore[arg-type]
