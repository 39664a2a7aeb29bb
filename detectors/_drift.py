"""Decision patterns: an action key's recent share against the agent's own baseline share."""

from __future__ import annotations

import math
import sys
from typing import Any

__all__ = ["KeyDriftDetector"]


class KeyDriftDetector:
    """Scores how surprising the current key's recent share of actions is (distribution drift).

    Two views of an agent's action keys: the last ``window`` actions (a ring) and a slow,
    exponentially weighted baseline share per key (memory ``~1 / slow_alpha`` actions). The
    baseline is kept as weighted counts whose weight grows by ``1 / (1 - slow_alpha)`` per
    action (rescaled now and then), so an action costs one dictionary update whatever the number
    of keys, and the shares are exact weighted averages from the first action on. ``score_one(x)``
    is, once ``x``'s key takes at least ``min_share`` of the window, the binomial
    Kullback-Leibler surprise of that share ``f`` against the baseline share ``p``:
    ``window * (f ln(f / p) + (1 - f) ln((1 - f) / (1 - p)))`` nats; 0.0 below ``min_share`` and
    during the first ``warmup`` actions. A rarely used (say, destructive) tool that suddenly takes
    most calls scores high; a common tool's usual fluctuations, and gradual changes of the mix (a
    deploy), which the baseline follows, stay low.

    State: the ring and one weight per distinct key (bounded by the agent's repertoire).
    Not thread-safe; no I/O.

    Args:
        window: Recent actions looked at (>= 2).
        slow_alpha: Fading factor of the baseline shares, in (0, 1).
        min_share: Recent share below which a key is not scored.
        warmup: Actions learned before scores are given.

    Example:
        >>> from agentwatch.detectors import KeyDriftDetector
        >>> detector = KeyDriftDetector()
        >>> for i in range(1000):
        ...     detector.learn_one({"key": ["search", "read", "write"][i % 3]})
        >>> detector.score_one({"key": "read"}) < 5
        True
        >>> for _ in range(6):
        ...     detector.learn_one({"key": "drop_table"})
        >>> detector.score_one({"key": "drop_table"}) > 10
        True
    """

    __slots__ = (
        "_grow",
        "_n",
        "_pos",
        "_recent",
        "_total",
        "_weight",
        "_weights",
        "min_share",
        "slow_alpha",
        "warmup",
        "window",
    )

    def __init__(
        self,
        window: int = 20,
        slow_alpha: float = 0.002,
        min_share: float = 0.3,
        warmup: int = 200,
    ) -> None:
        if window < 2:
            raise ValueError(f"window must be >= 2, got {window}")
        if not 0 < slow_alpha < 1:
            raise ValueError(f"slow_alpha must be in (0, 1), got {slow_alpha}")
        if not 0 < min_share < 1:
            raise ValueError(f"min_share must be in (0, 1), got {min_share}")
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        self.window = window
        self.slow_alpha = slow_alpha
        self.min_share = min_share
        self.warmup = warmup
        self._n = 0
        self._recent: list[str] = [""] * window  # ring of the last keys
        self._pos = 0
        self._weights: dict[str, float] = {}  # key -> summed weight of its actions
        self._total = 0.0
        self._weight = 1.0  # the next action's weight
        self._grow = 1.0 / (1.0 - slow_alpha)

    def learn_one(self, x: dict[str, Any]) -> None:
        """Counts one action. Args: x: ``{"key": str}``."""
        self.observe(str(x["key"]))

    def score_one(self, x: dict[str, Any]) -> float:
        """The surprise (nats) of ``x``'s key's share if ``x`` were learned; no mutation."""
        key = str(x["key"])
        n = self._n + 1
        count = self._recent.count(key) + 1 - (self._recent[self._pos] == key)
        weight = self._weights.get(key, 0.0) + self._weight
        return self._score(count, weight / (self._total + self._weight), n)[0]

    def observe(self, key: str) -> tuple[float, float, float]:
        """``score_one`` then ``learn_one``, the pipeline's path.

        Returns:
            (score in nats, the key's recent share, its baseline share); the shares only when
            the key is scored (0.0 otherwise).
        """
        # Keys are few (a repertoire of tools) but each event brings its own copy of the string:
        # interned, the ring and the dictionary compare by identity instead of touching copies.
        key = sys.intern(key)
        n = self._n = self._n + 1
        recent, pos = self._recent, self._pos
        recent[pos] = key
        self._pos = pos + 1 if pos + 1 < self.window else 0
        w = self._weight
        weights = self._weights
        weights[key] = weights.get(key, 0.0) + w
        total = self._total = self._total + w
        w *= self._grow
        if w > 1e100:  # rescale before the weights overflow (every ~100,000 actions)
            for k in weights:
                weights[k] /= w
            self._total /= w
            total = self._total
            w = 1.0
        self._weight = w
        count = recent.count(key)
        if count < self.min_share * self.window or n <= self.warmup:
            return 0.0, 0.0, 0.0
        return self._score(count, weights[key] / total, n)

    def _score(self, count: int, baseline: float, n: int) -> tuple[float, float, float]:
        f = count / self.window
        if f < self.min_share or n <= self.warmup or f <= baseline:
            return 0.0, f, baseline
        f, p = min(f, 1 - 1e-9), min(baseline, 1 - 1e-9)
        kl = f * math.log(f / p) + (1 - f) * math.log((1 - f) / (1 - p))
        return self.window * kl, f, baseline

    def share(self, key: str) -> float:
        """``key``'s share of the last ``window`` actions."""
        return self._recent.count(key) / self.window

    def baseline(self, key: str) -> float:
        """``key``'s baseline share."""
        return self._weights.get(key, 0.0) / self._total if self._total else 0.0

    def __repr__(self) -> str:
        return (
            f"KeyDriftDetector(window={self.window}, slow_alpha={self.slow_alpha}, "
            f"min_share={self.min_share}, warmup={self.warmup})"
        )
