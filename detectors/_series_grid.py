"""The level grid of :class:`SeriesDetector`: which levels, and steps between them, are news."""

from __future__ import annotations

import math

__all__ = ["LevelGrid"]

_MAX_LEVEL = 2.0**52  # levels are clamped to what a float still counts exactly


class LevelGrid:
    """Counts a value stream's visits to levels of a grid that coarsens as the range grows.

    The grid is frozen after the first ``freeze_n`` values: ``levels`` levels across their range,
    extended either side. When the visited levels come to span ``max_span_levels``, the width
    doubles from the same origin, so level ``l`` becomes ``l // 2`` and counts add up exactly.

    The chance that the next value opens a new level is estimated as ``(f + 1) / (n + f + 1)``
    from the ``f`` new levels found in the ``n`` values filed since the freeze (a
    Chinese-restaurant estimate), and likewise for steps between levels (the previous value's
    level to this one's) when ``max_steps`` > 0.

    State: at most ``max_levels`` counts (the least visited is forgotten) and ``max_steps`` steps
    (the oldest is forgotten), plus ``freeze_n`` values until the freeze. Not thread-safe.

    Args:
        levels: Levels across the range of the first ``freeze_n`` values, >= 1.
        freeze_n: Values filed before the grid is frozen, >= 1.
        max_levels: Levels remembered, >= 1.
        max_span_levels: Span of the visited levels at which the grid coarsens, >= 1.
        max_steps: Steps between levels remembered; 0 keeps none.
    """

    def __init__(
        self, levels: int, freeze_n: int, max_levels: int, max_span_levels: int, max_steps: int
    ) -> None:
        self.levels = levels
        self.freeze_n = freeze_n
        self.max_levels = max_levels
        self.max_span_levels = max_span_levels
        self.max_steps = max_steps
        self._lo = 0.0
        self._width = 0.0  # 0.0 until the grid is frozen
        self._counts: dict[int, int] = {}
        self._filed = 0  # values filed since the freeze
        self._found = 0  # of which in a level not visited before
        self._at = 0  # the last value's level
        self._steps: dict[tuple[int, int], None] = {}  # steps taken, oldest first
        self._stepped = 0  # steps taken since the freeze
        self._new_steps = 0  # of which not taken before
        self._pending: list[float] = []  # the values before the freeze

    @property
    def frozen(self) -> bool:
        """Whether the grid is frozen, so that counts and surprises mean something."""
        return self._width > 0.0

    def count(self, value: float) -> int:
        """Values filed in ``value``'s level (0 for a new level); 0 before the freeze."""
        return self._counts.get(self._level(value), 0) if self.frozen else 0

    def new_level_nats(self) -> float:
        """``-ln`` of the chance that the next value opens a new level."""
        return -math.log((self._found + 1) / (self._filed + self._found + 1))

    def new_step_nats(self, value: float) -> float:
        """``-ln`` of the chance of a new step if the step to ``value`` is new, else 0.0."""
        if not self.max_steps or not self.frozen or (self._at, self._level(value)) in self._steps:
            return 0.0
        return -math.log((self._new_steps + 1) / (self._stepped + self._new_steps + 1))

    def learn(self, value: float) -> None:
        """Files one value (finite)."""
        if not self.frozen:
            self._pending.append(value)
            if len(self._pending) < self.freeze_n:
                return
            pending, self._pending = self._pending, []
            lo, hi = min(pending), max(pending)
            self._lo = lo
            self._width = (hi - lo if hi > lo else max(abs(hi), 1.0)) / self.levels
            self._at = self._level(value)
        else:
            pending = [value]
            level = self._level(value)
            self._filed += 1
            self._found += level not in self._counts
            if self.max_steps:
                self._learn_step(level)
            self._at = level
        counts = self._counts
        n_levels = len(counts)
        for v in pending:
            level = self._level(v)
            counts[level] = counts.get(level, 0) + 1
        if len(counts) > n_levels:
            while max(self._counts) - min(self._counts) >= self.max_span_levels:
                self._coarsen()
        while len(self._counts) > self.max_levels:
            del self._counts[min(self._counts, key=self._counts.__getitem__)]

    def _learn_step(self, level: int) -> None:
        step = (self._at, level)
        self._stepped += 1
        if step not in self._steps:
            self._new_steps += 1
            self._steps[step] = None
            if len(self._steps) > self.max_steps:
                del self._steps[next(iter(self._steps))]

    def _coarsen(self) -> None:
        # Doubling the width from the same origin maps level l to l // 2 (l >> 1) exactly.
        self._width *= 2.0
        merged: dict[int, int] = {}
        for level, count in self._counts.items():
            merged[level >> 1] = merged.get(level >> 1, 0) + count
        self._counts = merged
        self._steps = {(a >> 1, b >> 1): None for a, b in self._steps}
        self._at >>= 1
        self._found //= 2  # about half the levels found were a neighbour of another one

    def _level(self, value: float) -> int:
        q = (value - self._lo) / self._width
        return math.floor(min(max(q, -_MAX_LEVEL), _MAX_LEVEL))
