"""NAB's scoring (Numenta Anomaly Benchmark v1.1): windows, the scaled sigmoid, the threshold sweep.

Pure: callers read the files and pass rows, window edges and anomaly scores. The semantics follow
NAB's published sweeper (``nab/sweeper.py``) and scorer:

* the first ``min(floor(0.15 * rows), 750)`` rows of a file are a probation period, not scored;
* a row is a detection when its anomaly score is at or above one threshold shared by the corpus;
* in a window only the earliest detection counts, worth ``A_TP * sigmoid(y) / sigmoid(-1)`` with
  ``sigmoid(y) = 2 / (1 + e^(5y)) - 1`` and ``y = -(right - i + 1) / width`` (-1 at the left edge);
  a window without a detection costs ``A_FN``;
* a detection outside every window costs ``A_FP * sigmoid(d)`` where ``d`` is its distance past the
  previous window's right edge in units of that window's width minus one (``sigmoid(d) = -1`` for
  ``d >= 3`` and before the first window);
* normalised score ``100 * (raw - null) / (perfect - null)`` with ``null = -A_FN * windows`` and
  ``perfect = A_TP * windows``, windows counted when they have a row after probation.

The threshold is the one that maximises the corpus's raw score for each profile, searched exactly
over every distinct anomaly score (NAB searches the same objective by hill climbing).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PROFILES",
    "CostProfile",
    "FileLabels",
    "NabScore",
    "label_rows",
    "probation_rows",
    "scaled_sigmoid",
    "score_corpus",
]

_PROBATION_FRACTION = 0.15
_PROBATION_MAX_ROWS = 750
_OUTSIDE = -1
_PROBATION = -2


@dataclass(frozen=True, slots=True)
class CostProfile:
    """Weights of one NAB application profile.

    Attributes:
        name: NAB's name for it (``standard``, ``reward_low_FP_rate``, ``reward_low_FN_rate``).
        tp: ``A_TP``, the reward of a detection at a window's left edge.
        fn: ``A_FN``, the cost of a window without a detection.
        fp: ``A_FP``, the largest cost of a detection outside every window.
    """

    name: str
    tp: float
    fn: float
    fp: float


PROFILES: tuple[CostProfile, ...] = (
    CostProfile("standard", 1.0, 1.0, 0.11),
    CostProfile("reward_low_FP_rate", 1.0, 1.0, 0.22),
    CostProfile("reward_low_FN_rate", 1.0, 2.0, 0.11),
)


def scaled_sigmoid(position: float) -> float:
    """NAB's scaled sigmoid: ``2 / (1 + e^(5 * position)) - 1``, and -1.0 from ``position >= 3``."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


_MAX_TP = scaled_sigmoid(-1.0)  # 0.98661: a detection at the left edge earns exactly A_TP


def probation_rows(n_rows: int) -> int:
    """Rows at the start of a file that are not scored: ``min(floor(15% of rows), 750)``."""
    return min(math.floor(_PROBATION_FRACTION * n_rows), _PROBATION_MAX_ROWS)


@dataclass(frozen=True, slots=True)
class FileLabels:
    """Each row's role in NAB's scoring, independent of profile and detector.

    Attributes:
        window: Per row: the index of its window (0, 1, ...), -1 outside every window, -2 in the
            probation period.
        weight: Per row: the unweighted sweep score, in [-1, 1]; times ``A_TP`` in a window (a
            true positive), times ``A_FP`` outside (a false positive, so it is <= 0 there).
        n_windows: Windows with at least one row after probation.
    """

    window: tuple[int, ...]
    weight: tuple[float, ...]
    n_windows: int

    def __len__(self) -> int:
        return len(self.window)


def label_rows(timestamps: Sequence[Any], windows: Sequence[tuple[Any, Any]]) -> FileLabels:
    """Labels a file's rows with NAB's windows and sweep weights.

    Args:
        timestamps: The rows' timestamps, ascending (any ordered type, e.g. ``datetime``).
        windows: ``(start, end)`` pairs of the same type, inclusive, ascending, not overlapping.
            An edge between rows snaps inward to the nearest row.

    Returns:
        The rows' labels.

    Raises:
        ValueError: A window has no row or windows overlap.
    """
    n = len(timestamps)
    spans: list[tuple[int, int]] = []
    for start, end in windows:
        left = bisect.bisect_left(timestamps, start)
        right = bisect.bisect_right(timestamps, end) - 1
        if left > right:
            raise ValueError(f"window {start}..{end} holds no row")
        if spans and left <= spans[-1][1]:
            raise ValueError(f"window {start}..{end} overlaps the previous one")
        spans.append((left, right))
    probation = probation_rows(n)
    window = [_OUTSIDE] * n
    weight = [-1.0] * n
    for k, (left, right) in enumerate(spans):
        width = right - left + 1
        for i in range(left, right + 1):
            window[i] = k
            weight[i] = scaled_sigmoid(-(right - i + 1) / width) / _MAX_TP
        end = spans[k + 1][0] if k + 1 < len(spans) else n
        for i in range(right + 1, end):
            # NAB divides by (width - 1): a one-row window makes every later detection a full FP.
            distance = (i - right) / (width - 1) if width > 1 else 3.0
            weight[i] = scaled_sigmoid(distance)
    counted = {window[i] for i in range(probation, n) if window[i] >= 0}
    for i in range(min(probation, n)):
        window[i] = _PROBATION
    return FileLabels(tuple(window), tuple(weight), len(counted))


@dataclass(frozen=True, slots=True)
class NabScore:
    """One profile's result over a corpus.

    Attributes:
        profile: The profile.
        threshold: The threshold that maximised the raw score (rows at or above it are detections);
            ``inf`` when detecting nothing was best.
        raw: The raw score at that threshold.
        null: The raw score of the detector that never fires.
        perfect: The raw score of the detector that fires at every window's left edge only.
        tp: Windows detected.
        fn: Windows missed.
        fp: Detections outside every window (after probation).
    """

    profile: CostProfile
    threshold: float
    raw: float
    null: float
    perfect: float
    tp: int
    fn: int
    fp: int

    @property
    def normalized(self) -> float:
        """``100 * (raw - null) / (perfect - null)``; 0.0 for a corpus without windows."""
        if self.perfect == self.null:
            return 0.0
        return 100.0 * (self.raw - self.null) / (self.perfect - self.null)


def score_corpus(
    files: Sequence[tuple[FileLabels, Sequence[float]]],
    profile: CostProfile,
    *,
    threshold: float | None = None,
) -> NabScore:
    """Scores a corpus for one profile, at the best threshold or a given one.

    Args:
        files: Per file, its labels and its rows' anomaly scores (finite, same length).
        profile: The cost weights.
        threshold: Score at this threshold instead of searching the best.

    Returns:
        The score, with the threshold used.

    Raises:
        ValueError: A file's scores and labels differ in length, or a score is not finite.
    """
    n_windows = 0
    points: list[tuple[float, int, int, float]] = []  # (score, file, window, weight)
    for f, (labels, scores) in enumerate(files):
        if len(labels) != len(scores):
            raise ValueError(f"file {f}: {len(scores)} scores for {len(labels)} rows")
        n_windows += labels.n_windows
        for w, weight, s in zip(labels.window, labels.weight, scores, strict=True):
            s = float(s)
            if not math.isfinite(s):
                raise ValueError(f"file {f}: anomaly score {s} is not finite")
            if w != _PROBATION:
                points.append((s, f, w, weight))
    points.sort(key=lambda p: -p[0])
    null = -profile.fn * n_windows
    best: dict[tuple[int, int], float] = {}  # earliest detection's weight per detected window
    fp_cost = 0.0
    fp = 0
    tp_sum = 0.0
    best_raw, best_threshold, best_counts = null, math.inf, (0, n_windows, 0)
    i = 0
    while i < len(points):
        level = points[i][0]
        if threshold is not None and level < threshold:
            break
        while i < len(points) and points[i][0] == level:
            _, f, w, weight = points[i]
            i += 1
            if w == _OUTSIDE:
                fp_cost += weight * profile.fp
                fp += 1
                continue
            old = best.get((f, w))
            if old is None or weight > old:
                best[(f, w)] = weight
                tp_sum += weight - (0.0 if old is None else old)
        raw = fp_cost + profile.tp * tp_sum - profile.fn * (n_windows - len(best))
        if threshold is not None or raw > best_raw:
            best_raw, best_threshold = raw, level
            best_counts = (len(best), n_windows - len(best), fp)
    if threshold is not None:
        best_threshold = threshold
    tp, fn, n_fp = best_counts
    return NabScore(profile, best_threshold, best_raw, null, profile.tp * n_windows, tp, fn, n_fp)
