"""Loops: the same action fingerprint repeated back to back."""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["LoopDetector"]

# Fingerprints are meant to be short stable hashes (DESIGN.md, telemetry contract); anything longer
# is digested so that one agent's state stays a few dozen bytes whatever the wire carries.
_MAX_FINGERPRINT_CHARS = 64


def _key(fingerprint: str) -> str:
    if len(fingerprint) <= _MAX_FINGERPRINT_CHARS:
        return fingerprint
    return hashlib.blake2b(fingerprint.encode(), digest_size=16).hexdigest()


class LoopDetector:
    """Counts identical consecutive action fingerprints.

    ``score_one(x)`` is the length the current run of identical fingerprints would have if ``x``
    were learned: 1 for a fingerprint that differs from the previous one, 2 for its first repeat,
    3 for the third identical call in a row, and so on. There is no warm-up: the score before any
    learning is 1.0 (a fresh run), which is the lowest score this detector gives. A caller flags a
    loop when the score reaches ``min_repeats`` (the 3rd identical call by default).

    The state is the last fingerprint (digested when longer than 64 characters) and the run
    length, whatever the length of the stream. Not thread-safe; no I/O, never blocks.

    Args:
        min_repeats: Run length at which a caller should flag a loop; at least 2.

    Example:
        >>> from agentwatch.detectors import LoopDetector
        >>> detector = LoopDetector()
        >>> for fingerprint in ["a", "b", "c", "d"]:
        ...     detector.learn_one({"fingerprint": fingerprint})
        >>> detector.score_one({"fingerprint": "e"})
        1.0
        >>> detector.learn_one({"fingerprint": "e"})
        >>> detector.learn_one({"fingerprint": "e"})
        >>> detector.score_one({"fingerprint": "e"}) >= detector.min_repeats
        True
    """

    def __init__(self, min_repeats: int = 3) -> None:
        if min_repeats < 2:
            raise ValueError(f"min_repeats must be >= 2, got {min_repeats}")
        self.min_repeats = min_repeats
        self._last: str | None = None
        self._run = 0

    def learn_one(self, x: dict[str, Any]) -> None:
        """Extends the current run, or starts a new one.

        Args:
            x: ``{"fingerprint": str}``.
        """
        key = _key(x["fingerprint"])
        if key == self._last:
            self._run += 1
        else:
            self._last = key
            self._run = 1

    def score_one(self, x: dict[str, Any]) -> float:
        """Returns the run length ``x`` would make; never mutates the detector.

        Args:
            x: ``{"fingerprint": str}``.

        Returns:
            The would-be run length (>= 1.0).
        """
        if _key(x["fingerprint"]) == self._last:
            return float(self._run + 1)
        return 1.0

    def observe(self, fingerprint: str) -> float:
        """``score_one`` then ``learn_one`` of ``{"fingerprint": fingerprint}`` in one step.

        The pipeline's hot path: same result and state, without building ``x``.
        """
        key = fingerprint if len(fingerprint) <= _MAX_FINGERPRINT_CHARS else _key(fingerprint)
        if key == self._last:
            self._run += 1
        else:
            self._last = key
            self._run = 1
        return float(self._run)

    @property
    def run_length(self) -> int:
        """Length of the current run of identical fingerprints (0 before any learning)."""
        return self._run

    def __repr__(self) -> str:
        return f"LoopDetector(min_repeats={self.min_repeats})"
