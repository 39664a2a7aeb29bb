"""Decision patterns: sessions of action keys against a learned transition model."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["SequenceScores", "TransitionModel", "precision_recall_f1"]

_START = "\x00start"
_END = "\x00end"


class TransitionModel:
    """Learns normal sessions of keys; scores a session by its least probable step.

    One model per cohort (``service.name``): it learns sessions of action keys (tools, decisions,
    states), each a list of strings, from normal traffic only. ``score_one`` walks a session,
    bracketed by start and end markers, and for each step takes the probability of the key given
    the longest preceding context of up to ``order`` keys that was seen in training (backing off
    to shorter ones, DeepLog-style). A step is surprising when:

    * its key was never seen (a destructive tool appearing): ``-ln(smoothing / total)``;
    * it is not among the ``top_k`` most frequent followers of its context (DeepLog's rule), or
      its probability is low: ``-ln p``;
    * it extends a run of identical keys beyond the longest run of that key seen in training
      (a loop): ``loop_nats`` per extra repeat.

    The session's score is its largest step surprise in nats; :attr:`threshold_nats` separates
    normal from anomalous (``score >= threshold_nats``). Unseen keys, reordered or skipped steps
    and loops all reach it; a session of normal steps stays below.

    State grows with the number of distinct contexts seen (bounded by the workflows' variety, not
    the traffic), so it is kept per cohort, not per agent. Not thread-safe; no I/O.

    Args:
        order: Longest context, in keys (>= 1).
        top_k: A step whose key ranks among the ``top_k`` followers of its context is normal.
        min_probability: Outside the top ``k``, a step below this probability is surprising.
        smoothing: Pseudo-count for unseen continuations (> 0).
        loop_nats: Surprise per repeat beyond the longest run seen in training.

    Example:
        >>> from agentwatch.detectors import TransitionModel
        >>> model = TransitionModel()
        >>> for _ in range(50):
        ...     model.learn_one({"keys": ["plan", "search", "read", "answer"]})
        >>> model.score_one({"keys": ["plan", "search", "read", "answer"]}) < model.threshold_nats
        True
        >>> model.score_one({"keys": ["plan", "delete_repo", "answer"]}) >= model.threshold_nats
        True
    """

    def __init__(
        self,
        order: int = 3,
        top_k: int = 3,
        min_probability: float = 0.02,
        smoothing: float = 0.1,
        loop_nats: float = 5.0,
    ) -> None:
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if not 0 < min_probability < 1:
            raise ValueError(f"min_probability must be in (0, 1), got {min_probability}")
        if not smoothing > 0:
            raise ValueError(f"smoothing must be > 0, got {smoothing}")
        if not loop_nats > 0:
            raise ValueError(f"loop_nats must be > 0, got {loop_nats}")
        self.order = order
        self.top_k = top_k
        self.min_probability = min_probability
        self.smoothing = smoothing
        self.loop_nats = loop_nats
        self._next: dict[tuple[str, ...], dict[str, int]] = {}
        self._keys: dict[str, int] = {}
        self._max_run: dict[str, int] = {}
        self._n_steps = 0

    @property
    def threshold_nats(self) -> float:
        """Session score at and above which a session is anomalous: ``-ln(min_probability)``."""
        return -math.log(self.min_probability)

    def learn_one(self, x: dict[str, Any]) -> None:
        """Learns one normal session.

        Args:
            x: ``{"keys": a sequence of strings}``.
        """
        keys = self._keys_of(x)
        path = [_START, *keys, _END]
        for i in range(1, len(path)):
            for h in range(1, self.order + 1):
                if i - h < 0:
                    break
                followers = self._next.setdefault(tuple(path[i - h : i]), {})
                followers[path[i]] = followers.get(path[i], 0) + 1
        for key in keys:
            self._keys[key] = self._keys.get(key, 0) + 1
        for key, run in _runs(keys):
            if run > self._max_run.get(key, 0):
                self._max_run[key] = run
        self._n_steps += len(path) - 1

    def score_one(self, x: dict[str, Any]) -> float:
        """Returns the session's largest step surprise in nats (0.0 before learning); no mutation.

        Args:
            x: ``{"keys": a sequence of strings}``.
        """
        return max((s for _, s in self.explain_one(x)), default=0.0)

    def explain_one(self, x: dict[str, Any]) -> list[tuple[str, float]]:
        """Returns each step's key and surprise in nats, end marker included, for evidence."""
        keys = self._keys_of(x)
        if not self._n_steps:
            return [(k, 0.0) for k in keys]
        path = [_START, *keys, _END]
        out: list[tuple[str, float]] = []
        run = 0
        for i in range(1, len(path)):
            key = path[i]
            run = run + 1 if key == path[i - 1] else 1
            surprise = self._step_surprise(path, i)
            excess = run - self._max_run.get(key, 1)
            if key != _END and excess > 0:
                surprise = max(surprise, self.loop_nats * excess)
            out.append((key, surprise))
        return out

    def novel_steps(self, keys: Sequence[str]) -> list[tuple[int, str]]:
        """The steps never seen in training: (index, key) of each call whose key, or whose
        transition from the call before (the session's start for the first), never occurred,
        or that extends a run of its key beyond the longest seen; index ``len(keys)`` with key
        "" when the session's end after its last call never occurred. Empty before learning."""
        if not self._n_steps:
            return []
        path = [_START, *keys, _END]
        out: list[tuple[int, str]] = []
        run = 0
        for i in range(1, len(path)):
            key = path[i]
            run = run + 1 if key == path[i - 1] else 1
            followers = self._next.get((path[i - 1],))
            if (
                followers is None
                or key not in followers
                or (key != _END and run > self._max_run.get(key, 1))
            ):
                out.append((i - 1, "" if key == _END else key))
        return out

    def _step_surprise(self, path: list[str], i: int) -> float:
        key = path[i]
        if key != _END and key not in self._keys:
            return -math.log(self.smoothing / (self._n_steps + self.smoothing))
        for h in range(min(self.order, i), 0, -1):
            followers = self._next.get(tuple(path[i - h : i]))
            if followers is None:
                continue
            count = followers.get(key, 0)
            ranked = sorted(followers.values(), reverse=True)
            if count and count >= ranked[min(self.top_k, len(ranked)) - 1]:
                return 0.0
            total = sum(ranked)
            return -math.log((count + self.smoothing) / (total + self.smoothing * len(ranked)))
        return -math.log(self.smoothing / (self._n_steps + self.smoothing))

    @staticmethod
    def _keys_of(x: dict[str, Any]) -> list[str]:
        return [str(k) for k in x["keys"]]

    def __repr__(self) -> str:
        return (
            f"TransitionModel(order={self.order}, top_k={self.top_k}, "
            f"min_probability={self.min_probability}, smoothing={self.smoothing}, "
            f"loop_nats={self.loop_nats})"
        )


def _runs(keys: Sequence[str]) -> list[tuple[str, int]]:
    runs: list[tuple[str, int]] = []
    for key in keys:
        if runs and runs[-1][0] == key:
            runs[-1] = (key, runs[-1][1] + 1)
        else:
            runs.append((key, 1))
    return runs


@dataclass(frozen=True, slots=True)
class SequenceScores:
    """Detection counts and rates of a labelled evaluation.

    Attributes:
        tp: Anomalous sessions flagged.
        fp: Normal sessions flagged.
        fn: Anomalous sessions missed.
        tn: Normal sessions passed.
    """

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def precision_recall_f1(flags: Sequence[bool], labels: Sequence[bool]) -> SequenceScores:
    """Counts flagged against labelled-anomalous sessions.

    Raises:
        ValueError: The sequences differ in length.
    """
    if len(flags) != len(labels):
        raise ValueError(f"{len(flags)} flags for {len(labels)} labels")
    tp = sum(1 for f, y in zip(flags, labels, strict=True) if f and y)
    fp = sum(1 for f, y in zip(flags, labels, strict=True) if f and not y)
    fn = sum(1 for f, y in zip(flags, labels, strict=True) if not f and y)
    return SequenceScores(tp, fp, fn, len(flags) - tp - fp - fn)
