"""Decision patterns: an action key's recent share against the agent's own baseline share."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["KeyDriftDetector"]


class KeyDriftDetector:
    """Scores how surprising the current key's recent share of actions is (distribution drift).

    Per key, two exponentially weighted shares of the agent's actions: a fast one (the last
    ``~2 / fast_alpha`` actions) and a slow baseline (``~2 / slow_alpha`` actions). Both decay
    lazily: a key's shares are brought up to date only when it is seen, so an action costs O(1)
    whatever the number of keys. ``score_one(x)`` is, for ``x``'s key once its recent share ``f``
    reaches ``min_share``, the binomial Kullback-Leibler surprise of that share against the
    baseline share ``p`` over the fast window's effective length ``n``:
    ``n * (f ln(f / p) + (1 - f) ln((1 - f) / (1 - p)))`` nats; 0.0 below ``min_share`` and during
    the first ``warmup`` actions. A rarely used (say, destructive) tool that suddenly takes most
    calls scores high; a common tool's usual fluctuations, and gradual changes of the mix (a
    deploy), which the baseline follows, stay low.

    State: one small list per distinct key (bounded by the agent's repertoire). Not thread-safe.

    Args:
        fast_alpha: Fading factor of the recent shares, in (0, 1).
        slow_alpha: Fading factor of the baseline shares, in (0, fast_alpha).
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

    def __init__(
        self,
        fast_alpha: float = 0.1,
        slow_alpha: float = 0.002,
        min_share: float = 0.3,
        warmup: int = 200,
    ) -> None:
        if not 0 < fast_alpha < 1:
            raise ValueError(f"fast_alpha must be in (0, 1), got {fast_alpha}")
        if not 0 < slow_alpha < fast_alpha:
            raise ValueError(f"slow_alpha must be in (0, fast_alpha), got {slow_alpha}")
        if not 0 < min_share < 1:
            raise ValueError(f"min_share must be in (0, 1), got {min_share}")
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        self.fast_alpha = fast_alpha
        self.slow_alpha = slow_alpha
        self.min_share = min_share
        self.warmup = warmup
        self._n = 0
        # key -> [baseline share, recent share, action index they are up to date at]
        self._keys: dict[str, list[float]] = {}
        self._window = (2 - fast_alpha) / fast_alpha  # effective length of the fast window

    def learn_one(self, x: dict[str, Any]) -> None:
        """Counts one action. Args: x: ``{"key": str}``."""
        self.observe(str(x["key"]))

    def score_one(self, x: dict[str, Any]) -> float:
        """The surprise (nats) of ``x``'s key's share if ``x`` were learned; no mutation."""
        slow, fast = self._shares(str(x["key"]), self._n + 1)
        return self._score(slow, fast, self._n + 1)

    def observe(self, key: str) -> tuple[float, float, float]:
        """``score_one`` then ``learn_one``, the pipeline's path.

        Returns:
            (score in nats, the key's recent share, its baseline share).
        """
        n = self._n = self._n + 1
        slow, fast = self._shares(key, n)
        score = self._score(slow, fast, n)
        entry = self._keys.get(key)
        if entry is None:
            self._keys[key] = [slow, fast, n]
        else:
            entry[0], entry[1], entry[2] = slow, fast, n
        return score, fast, slow / (1 - (1 - self.slow_alpha) ** n)

    def share(self, key: str) -> float:
        """``key``'s recent share as of the last learned action."""
        entry = self._keys.get(key)
        if entry is None:
            return 0.0
        return float(entry[1] * (1 - self.fast_alpha) ** (self._n - entry[2]))

    def baseline(self, key: str) -> float:
        """``key``'s baseline share as of the last learned action."""
        entry = self._keys.get(key)
        if entry is None:
            return 0.0
        return float(entry[0] * (1 - self.slow_alpha) ** (self._n - entry[2]))

    def _shares(self, key: str, n: int) -> tuple[float, float]:
        """(baseline, recent) shares of ``key`` after action ``n``, which is ``key``."""
        entry = self._keys.get(key)
        if entry is None:
            return self.slow_alpha, self.fast_alpha
        gap = n - entry[2]
        slow = entry[0] * (1 - self.slow_alpha) ** gap + self.slow_alpha
        fast = entry[1] * (1 - self.fast_alpha) ** gap + self.fast_alpha
        return slow, fast

    def _score(self, slow: float, fast: float, n: int) -> float:
        if fast < self.min_share or n <= self.warmup:
            return 0.0
        # Shares start at 0 for every key: divide by the weight learned so far (Adam's bias
        # correction) so that a young baseline is not read as "rare".
        f = min(fast / (1 - (1 - self.fast_alpha) ** n), 1 - 1e-9)
        p = min(slow / (1 - (1 - self.slow_alpha) ** n), 1 - 1e-9)
        if f <= p:
            return 0.0
        kl = f * math.log(f / p) + (1 - f) * math.log((1 - f) / (1 - p))
        return self._window * kl

    def __repr__(self) -> str:
        return (
            f"KeyDriftDetector(fast_alpha={self.fast_alpha}, slow_alpha={self.slow_alpha}, "
            f"min_share={self.min_share}, warmup={self.warmup})"
        )
