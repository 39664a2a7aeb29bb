"""Decision patterns: an action key's recent share against the agent's own baseline share."""

from __future__ import annotations

import math
import sys
from typing import Any, Final

from agentwatch.detectors._state import Pickled, fields, restore, slots_of

__all__ = ["KeyDriftDetector"]

_UNSCORED = (0.0, 0.0, 0.0)
_intern: Final = sys.intern  # compiled, a C static: no lookup of sys, then of its intern


class KeyDriftDetector(Pickled):
    """Scores how surprising the current key's recent share of actions is (distribution drift).

    Two views of an agent's action keys: the last ``window`` actions (a ring of interned keys)
    and a slow, exponentially weighted baseline share per key (memory ``~1 / slow_alpha``
    actions). Each time the ring has been filled anew, its counts are folded into the baseline
    as weighted counts whose weight grows by ``(1 / (1 - slow_alpha)) ** window`` per fold
    (rescaled now and then): an action costs a store into the ring (and, once warm, a count of
    its key there) whatever the number of keys, and the shares are exact weighted averages from
    the first fold on. ``score_one(x)``
    is, once ``x``'s key takes at least ``min_share`` of the window, the binomial
    Kullback-Leibler surprise of that share ``f`` against the baseline share ``p`` (once ``f``
    is also ``min_ratio`` times ``p``):
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
        min_ratio: Nor is a key whose recent share is less than this many times its baseline
            share: drift is toward keys that were rare, not a common tool's runs.
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
        "_recent",
        "_total",
        "_weight",
        "_weights",
        "min_ratio",
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
        min_ratio: float = 3.0,
        warmup: int = 200,
    ) -> None:
        if window < 2:
            raise ValueError(f"window must be >= 2, got {window}")
        if not 0 < slow_alpha < 1:
            raise ValueError(f"slow_alpha must be in (0, 1), got {slow_alpha}")
        if not 0 < min_share < 1:
            raise ValueError(f"min_share must be in (0, 1), got {min_share}")
        if not min_ratio >= 1:
            raise ValueError(f"min_ratio must be >= 1, got {min_ratio}")
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        self.window = window
        self.slow_alpha = slow_alpha
        self.min_share = min_share
        self.min_ratio = min_ratio
        self.warmup = warmup
        self._n = 0
        self._recent: list[str] = [""] * window  # the last keys: action n at (n - 1) % window
        self._weights: dict[str, float] = {}  # key -> summed weight of its actions
        self._total = 0.0
        self._weight = 1.0  # the next fold's weight per action
        self._grow = (1.0 / (1.0 - slow_alpha)) ** window

    def learn_one(self, x: dict[str, Any]) -> None:
        """Counts one action. Args: x: ``{"key": str}``."""
        self.observe(str(x["key"]))

    def score_one(self, x: dict[str, Any]) -> float:
        """The surprise (nats) of ``x``'s key's share if ``x`` were learned; no mutation."""
        key = str(x["key"])
        recent = self._recent
        count = recent.count(key) + 1 - (recent[self._n % self.window] == key)
        return self._score(count, self.baseline(key), self._n + 1)[0]

    def observe(self, key: str) -> tuple[float, float, float]:
        """``score_one`` then ``learn_one``, the pipeline's path.

        Returns:
            (score in nats, the key's recent share, its baseline share); the shares only when
            the key is scored (0.0 otherwise).
        """
        # Keys are few (a repertoire of tools) but each event brings its own copy of the string:
        # interned, the ring and the dictionaries compare by identity instead of touching copies.
        key = _intern(key)
        n = self._n = self._n + 1
        recent, window = self._recent, self.window
        pos = (n - 1) % window
        recent[pos] = key
        if pos == window - 1:
            self._fold()
        if n <= self.warmup:
            return _UNSCORED
        count = recent.count(key)  # by identity, mostly: the keys are interned
        if count < self.min_share * window:
            return _UNSCORED
        return self._score(count, self.baseline(key), n)

    def start_from(self, other: KeyDriftDetector) -> None:
        """Adopt ``other``'s baseline shares (not its recent actions): a new agent of a cohort
        is judged against the cohort's tool mix as soon as its own ``window`` actions fill the
        ring, instead of after ``warmup`` actions of its own."""
        self._weights = dict(other._weights)
        self._total, self._weight = other._total, other._weight
        if other._n > other.warmup:  # only a warm baseline; a cold one would be no better
            self.warmup = min(self.warmup, self.window)

    def _fold(self) -> None:
        """Adds the ring's counts to the baseline, weighted by the current weight."""
        weights, w = self._weights, self._weight
        counts: dict[str, int] = {}
        for key in self._recent:
            counts[key] = counts.get(key, 0) + 1
        for key, count in counts.items():
            weights[key] = weights.get(key, 0.0) + count * w
        self._total += self.window * w
        w *= self._grow
        if w > 1e100:  # rescale before the weights overflow
            for key in weights:
                weights[key] /= w
            self._total /= w
            w = 1.0
        self._weight = w

    def _score(self, count: int, baseline: float, n: int) -> tuple[float, float, float]:
        f = count / self.window
        if f < self.min_share or n <= self.warmup or f < self.min_ratio * baseline:
            return 0.0, f, baseline
        # A key never seen before has a baseline share of 0: floor it at one action in the
        # baseline's memory, so that the surprise stays finite (and large).
        f, p = min(f, 1 - 1e-9), min(max(baseline, self.slow_alpha), 1 - 1e-9)
        kl = f * math.log(f / p) + (1 - f) * math.log((1 - f) / (1 - p))
        return self.window * kl, f, baseline

    def share(self, key: str) -> float:
        """``key``'s share of the last ``window`` actions."""
        return self._recent.count(key) / self.window

    def baseline(self, key: str) -> float:
        """``key``'s baseline share."""
        return self._weights.get(key, 0.0) / self._total if self._total else 0.0

    def __setstate__(self, state: Any) -> None:
        # Pickled before the ring's counts were counted on demand: drop them (and the position,
        # which was always ``_n % window``).
        known = fields(KeyDriftDetector)
        restore(self, {k: v for k, v in slots_of(state).items() if k in known})

    def __repr__(self) -> str:
        return (
            f"KeyDriftDetector(window={self.window}, slow_alpha={self.slow_alpha}, "
            f"min_share={self.min_share}, min_ratio={self.min_ratio}, warmup={self.warmup})"
        )
