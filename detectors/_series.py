"""Time series: surprise of a value stream (per-window action counts, any metric)."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from agentwatch.detectors._series_grid import LevelGrid

__all__ = ["SeriesDetector"]

_TINY = 1e-300


class SeriesDetector:
    """Scores how surprising a value is, in [0, 1), from three running views of the stream.

    Each value ``x["value"]`` gets the largest of three surprises, each on a scale where 1.0
    means "clearly new":

    * novelty: levels are a grid frozen after the first ``grid_n`` values (``grid_levels``
      levels across their range, extended either side); when the visited levels come to span
      ``max_span_levels``, the grid coarsens, each pair of neighbouring levels merging into one
      (counts add up), so its resolution follows the range the stream has shown while no count
      is lost. A value in a level never visited scores ``-ln P(new) / novelty_nats`` with
      ``P(new) = (f + 1) / (n + f + 1)``, the chance of a new level estimated from the ``f`` new
      levels found in the ``n`` values since the grid froze (a Chinese-restaurant estimate): a
      new level is news in a steady stream, and routine in one that keeps drifting. A value in a
      level visited ``c`` times scores ``1 / (1 + c) ** novelty_power``. A step between two
      levels (from the previous value's level to this one's) never taken before scores
      ``-ln P(new step) / step_nats``, estimated the same way from the steps since the freeze.
      A second grid follows an exponentially weighted mean of the values (fading factor
      ``smooth_alpha``), whose new levels score the same way: a shift too small to leave the
      noise's levels still takes the smoothed stream somewhere new;
    * context: ``-ln p`` of the value's bin given the previous value's bin (a first-order Markov
      chain over ``n_bins`` bins of the running ``[min, max]``), over ``context_nats``, so a known
      value in an unknown order is surprising too;
    * deviation: ``-ln`` of the two-sided normal tail of the value's z-score under an
      exponentially weighted mean and variance (fading factor ``alpha``), over
      ``deviation_nats``. In a level already visited it is capped at ``known_level_cap``: a value
      the stream has taken before is at most that surprising, however far it is from the recent
      mean; in a new level it ranks new levels by how far out they are.

    Then repeats are suppressed: the score is 0.0 unless the surprise is above every surprise of
    the last ``suppress_n`` learned values, so one episode gives one detection, at its start,
    whatever threshold a caller picks (NAB rewards the earliest detection in a window and charges
    every other one as a false positive). A surprise ``s`` is returned as ``s / (1 + s)``, which
    keeps the order of surprises above 1.0 too.

    One configuration for every stream: the defaults score 70.2 (standard), 60.6 (low FP) and
    75.3 (low FN) on the NAB subset in ``datasets/nab`` (``agentwatch backtest nab``).

    State is O(``n_bins``² + ``max_levels`` + ``max_steps``) numbers (and up to ``suppress_n``,
    typically a handful), at most 3.5 KiB pickled with the defaults on NAB's streams; cost is
    O(1) per value but for the rare coarsening and forgetting. Not thread-safe; no I/O.

    Args:
        n_bins: Bins of the running value range (context), >= 2.
        alpha: Fading factor of the mean and variance, in (0, 1].
        smoothing: Pseudo-count of every bin transition (Laplace smoothing), > 0.
        context_nats: Context surprise, in nats, that scores like a new level, > 0.
        deviation_nats: Deviation surprise, in nats, that scores like a new level, > 0.
        novelty_nats: Surprise of a new level, in nats, that scores 1.0, > 0.
        novelty_power: How fast a level's novelty fades with visits, > 0.
        known_level_cap: Largest deviation surprise of a value in a visited level, > 0.
        step_nats: Surprise of a new step between levels, in nats, that scores 1.0, > 0.
        max_steps: Steps between levels remembered; beyond it the oldest is forgotten, >= 1.
        grid_levels: Levels across the range of the first ``grid_n`` values, >= 1.
        grid_n: Values learned before the novelty grid is frozen, >= 1; no novelty before.
        max_levels: Levels remembered; beyond it the least visited is forgotten, >= 1.
        max_span_levels: Span of the visited levels at which the grid coarsens, >= 1.
        smooth_alpha: Fading factor of the smoothed copy of the stream, in (0, 1].
        suppress_n: Values after which a surprise no longer masks a lower one; 0 turns
            suppression off.
        warmup_n: Values learned before scores are given (0.0 before).

    Example:
        >>> from agentwatch.detectors import SeriesDetector
        >>> detector = SeriesDetector()
        >>> for k in range(500):  # warm up: a steady oscillation
        ...     detector.learn_one({"value": 10.0 + (k % 5)})
        >>> detector.score_one({"value": 10.0}) < 0.2  # the next value of the cycle
        True
        >>> detector.score_one({"value": 60.0}) > 0.5
        True
    """

    def __init__(
        self,
        n_bins: int = 8,
        alpha: float = 0.01,
        smoothing: float = 0.1,
        context_nats: float = 12.0,
        deviation_nats: float = 23.0,
        novelty_nats: float = 4.0,
        novelty_power: float = 2.0,
        known_level_cap: float = 0.8,
        step_nats: float = 6.0,
        max_steps: int = 128,
        grid_levels: int = 16,
        grid_n: int = 150,
        max_levels: int = 64,
        max_span_levels: int = 48,
        smooth_alpha: float = 0.1,
        suppress_n: int = 90,
        warmup_n: int = 10,
    ) -> None:
        if n_bins < 2:
            raise ValueError(f"n_bins must be >= 2, got {n_bins}")
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not smoothing > 0:
            raise ValueError(f"smoothing must be > 0, got {smoothing}")
        if not context_nats > 0:
            raise ValueError(f"context_nats must be > 0, got {context_nats}")
        if not deviation_nats > 0:
            raise ValueError(f"deviation_nats must be > 0, got {deviation_nats}")
        if not novelty_nats > 0:
            raise ValueError(f"novelty_nats must be > 0, got {novelty_nats}")
        if not novelty_power > 0:
            raise ValueError(f"novelty_power must be > 0, got {novelty_power}")
        if not known_level_cap > 0:
            raise ValueError(f"known_level_cap must be > 0, got {known_level_cap}")
        if not step_nats > 0:
            raise ValueError(f"step_nats must be > 0, got {step_nats}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        if grid_levels < 1:
            raise ValueError(f"grid_levels must be >= 1, got {grid_levels}")
        if grid_n < 1:
            raise ValueError(f"grid_n must be >= 1, got {grid_n}")
        if max_levels < 1:
            raise ValueError(f"max_levels must be >= 1, got {max_levels}")
        if max_span_levels < 1:
            raise ValueError(f"max_span_levels must be >= 1, got {max_span_levels}")
        if not 0 < smooth_alpha <= 1:
            raise ValueError(f"smooth_alpha must be in (0, 1], got {smooth_alpha}")
        if suppress_n < 0:
            raise ValueError(f"suppress_n must be >= 0, got {suppress_n}")
        if warmup_n < 0:
            raise ValueError(f"warmup_n must be >= 0, got {warmup_n}")
        self.n_bins = n_bins
        self.alpha = alpha
        self.smoothing = smoothing
        self.context_nats = context_nats
        self.deviation_nats = deviation_nats
        self.novelty_nats = novelty_nats
        self.novelty_power = novelty_power
        self.known_level_cap = known_level_cap
        self.step_nats = step_nats
        self.max_steps = max_steps
        self.grid_levels = grid_levels
        self.grid_n = grid_n
        self.max_levels = max_levels
        self.max_span_levels = max_span_levels
        self.smooth_alpha = smooth_alpha
        self.suppress_n = suppress_n
        self.warmup_n = warmup_n
        self._n = 0
        self._lo = 0.0
        self._hi = 0.0
        self._mean = 0.0
        self._var = 0.0
        self._prev_bin = -1
        self._transitions = [0] * (n_bins * n_bins)
        self._from = [0] * n_bins
        self._grid = LevelGrid(grid_levels, grid_n, max_levels, max_span_levels, max_steps)
        self._smooth_grid = LevelGrid(grid_levels, grid_n, max_levels, max_span_levels, 0)
        self._smoothed = 0.0  # the smoothed copy of the stream, once a value is learned
        # (index, surprise) of the learned values that may still mask a later one: the running
        # maximum of the last ``suppress_n`` surprises, kept as a decreasing queue.
        self._recent: deque[tuple[int, float]] = deque()

    def learn_one(self, x: dict[str, Any]) -> None:
        """Learns one value: its surprise for suppression, then bins, levels and moments.

        Args:
            x: ``{"value": a finite number}``.
        """
        value = self._value(x)
        if self.suppress_n:
            surprise, recent = self._surprise(value), self._recent
            while recent and recent[-1][1] <= surprise:
                recent.pop()
            recent.append((self._n, surprise))
            while recent[0][0] <= self._n - self.suppress_n:
                recent.popleft()
        smoothed = self._smooth(value)
        if self._n == 0:
            self._lo = self._hi = self._mean = value
        self._lo = min(self._lo, value)
        self._hi = max(self._hi, value)
        b = self._bin(value, self._lo, self._hi)
        if self._prev_bin >= 0:
            self._transitions[self._prev_bin * self.n_bins + b] += 1
            self._from[self._prev_bin] += 1
        self._prev_bin = b
        d = value - self._mean
        self._mean += self.alpha * d
        self._var = (1.0 - self.alpha) * (self._var + self.alpha * d * d)
        self._n += 1
        self._grid.learn(value)
        self._smooth_grid.learn(smoothed)
        self._smoothed = smoothed

    def score_one(self, x: dict[str, Any]) -> float:
        """Returns the value's surprise in [0, 1), or 0.0 when a recent one was higher.

        Never mutates the detector.

        Args:
            x: ``{"value": a finite number}``.

        Returns:
            The score; 0.0 during warm-up.
        """
        value = self._value(x)
        if self._n < max(self.warmup_n, 1):
            return 0.0
        surprise = self._surprise(value)
        if self.suppress_n and self._recent and surprise <= self._recent[0][1]:
            return 0.0
        return surprise / (1.0 + surprise)

    def raw_score_one(self, x: dict[str, Any]) -> float:
        """Returns the value's surprise in [0, 1) without suppression; never mutates."""
        value = self._value(x)
        if self._n < max(self.warmup_n, 1):
            return 0.0
        surprise = self._surprise(value)
        return surprise / (1.0 + surprise)

    def _surprise(self, value: float) -> float:
        if self._n == 0:
            return 0.0
        n_bins, smoothing = self.n_bins, self.smoothing
        lo, hi = min(self._lo, value), max(self._hi, value)
        b = self._bin(value, lo, hi)
        context = 0.0
        if self._prev_bin >= 0:
            k = self._prev_bin
            p = (self._transitions[k * n_bins + b] + smoothing) / (
                self._from[k] + smoothing * n_bins
            )
            context = -math.log(p)
        eps = (1e-3 * (hi - lo) + 1e-12) ** 2
        z = abs(value - self._mean) / math.sqrt(self._var + eps)
        deviation = -math.log(max(math.erfc(z / math.sqrt(2.0)), _TINY)) / self.deviation_nats
        novelty = 0.0
        grid = self._grid
        if grid.frozen:
            count = grid.count(value)
            if count:
                novelty = 1.0 / math.pow(1.0 + count, self.novelty_power)
                deviation = min(deviation, self.known_level_cap)
            else:
                novelty = grid.new_level_nats() / self.novelty_nats
            novelty = max(novelty, grid.new_step_nats(value) / self.step_nats)
        smooth = self._smooth_grid
        if smooth.frozen and not smooth.count(self._smooth(value)):
            novelty = max(novelty, smooth.new_level_nats() / self.novelty_nats)
        return max(novelty, context / self.context_nats, deviation)

    def _smooth(self, value: float) -> float:
        if self._n == 0:
            return value
        return self._smoothed + self.smooth_alpha * (value - self._smoothed)

    def _bin(self, value: float, lo: float, hi: float) -> int:
        span = hi - lo
        if span <= 0:
            return 0
        return min(max(int((value - lo) / span * (self.n_bins - 1) + 0.5), 0), self.n_bins - 1)

    @staticmethod
    def _value(x: dict[str, Any]) -> float:
        value = float(x["value"])
        if not math.isfinite(value):
            raise ValueError(f"x['value'] must be finite, got {value}")
        return value

    def __repr__(self) -> str:
        return (
            f"SeriesDetector(n_bins={self.n_bins}, alpha={self.alpha}, "
            f"smoothing={self.smoothing}, context_nats={self.context_nats}, "
            f"deviation_nats={self.deviation_nats}, novelty_nats={self.novelty_nats}, "
            f"novelty_power={self.novelty_power}, known_level_cap={self.known_level_cap}, "
            f"step_nats={self.step_nats}, max_steps={self.max_steps}, "
            f"grid_levels={self.grid_levels}, grid_n={self.grid_n}, "
            f"max_levels={self.max_levels}, max_span_levels={self.max_span_levels}, "
            f"smooth_alpha={self.smooth_alpha}, "
            f"suppress_n={self.suppress_n}, "
            f"warmup_n={self.warmup_n})"
        )
