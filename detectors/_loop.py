"""Loops: the same action fingerprint repeated back to back."""

from __future__ import annotations

import hashlib
from typing import Any, Final

from agentwatch.detectors._state import Pickled

__all__ = ["LoopDetector"]

# Fingerprints are meant to be short stable hashes (DESIGN.md, telemetry contract); anything longer
# is digested so that one agent's state stays a few dozen bytes whatever the wire carries.
_MAX_FINGERPRINT_CHARS: Final = 64


def _key(fingerprint: str) -> str:
    if len(fingerprint) <= _MAX_FINGERPRINT_CHARS:
        return fingerprint
    return hashlib.blake2b(fingerprint.encode(), digest_size=16).hexdigest()


class LoopDetector(Pickled):
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


class CycleDetector(Pickled):
    """Counts repeats of a short cycle of distinct action fingerprints: A-B-A-B..., A-B-C-A-B-C...

    A call whose fingerprint was also among the last ``max_period`` calls recurs with a period:
    how many calls back it was last seen (the nearest). A cycle of period ``p`` goes on while
    calls keep recurring at that same period; ``score_one(x)`` is the number of times the cycle
    would have been played if ``x`` were learned, ``1 + recurrences / p`` (A-B-A-B-A-B: 3.0 at
    the 6th call); 1.0 when ``x`` continues no cycle. Period 1 (one fingerprint repeated) is
    :class:`LoopDetector`'s, not a cycle; a cycle that repeats a call inside its period (A-A-B)
    is seen as loops, not as a cycle.

    The state is the last ``max_period`` fingerprints (digested beyond 64 characters) and event
    times, the current period, its count and onset: a few hundred bytes. O(1) per call; a call
    that repeats none of the last ``max_period`` (the usual case) costs one membership test.
    Not thread-safe; no I/O.

    Args:
        max_period: Longest cycle, in calls (>= 2).

    Example:
        >>> from agentwatch.detectors import CycleDetector
        >>> detector = CycleDetector()
        >>> for fingerprint in ["a", "b", "c", "d", "e"]:
        ...     detector.learn_one({"fingerprint": fingerprint})
        >>> detector.score_one({"fingerprint": "f"})
        1.0
        >>> for fingerprint in ["x", "y", "x", "y", "x"]:
        ...     detector.learn_one({"fingerprint": fingerprint})
        >>> detector.score_one({"fingerprint": "y"})  # x-y played three times
        3.0
    """

    __slots__ = ("_onset", "_period", "_recent", "_run", "_times", "max_period")

    def __init__(self, max_period: int = 4) -> None:
        if max_period < 2:
            raise ValueError(f"max_period must be >= 2, got {max_period}")
        self.max_period = max_period
        self._recent: list[str] = []  # newest first, at most max_period
        self._times: list[int] = []  # their event times (ns)
        self._period = 0  # period of the current cycle; 0 when none
        self._run = 0  # consecutive calls recurring at that period
        self._onset = 0  # event time of the cycle's first call

    def learn_one(self, x: dict[str, Any]) -> None:
        """Appends one call. Args: x: ``{"fingerprint": str, "t_ns": int (optional)}``."""
        self.observe(x["fingerprint"], int(x.get("t_ns", 0)))

    def score_one(self, x: dict[str, Any]) -> float:
        """Returns the cycle repeats ``x`` would make (>= 1.0); never mutates the detector."""
        key = _key(x["fingerprint"])
        if key not in self._recent:
            return 1.0
        p = self._recent.index(key) + 1
        if p == 1:
            return 1.0
        run = self._run + 1 if p == self._period else 1
        return 1.0 + run / p

    def observe(self, fingerprint: str, t_ns: int = 0) -> tuple[float, int, int]:
        """``score_one`` then ``learn_one`` in one step, the pipeline's hot path.

        Returns:
            (repeats, period, onset): the score, the cycle's period (0 when the score is 1.0)
            and the event time of the cycle's first call.
        """
        key = fingerprint if len(fingerprint) <= _MAX_FINGERPRINT_CHARS else _key(fingerprint)
        recent, times = self._recent, self._times
        result = (1.0, 0, 0)
        if key in recent:
            p = recent.index(key) + 1
            if p == 1:
                self._period = self._run = 0
            else:
                if p == self._period:
                    self._run += 1
                else:
                    self._period, self._run, self._onset = p, 1, times[p - 1]
                result = (1.0 + self._run / p, p, self._onset)
        elif self._period:
            self._period = self._run = 0
        recent.insert(0, key)
        times.insert(0, t_ns)
        if len(recent) > self.max_period:
            recent.pop()
            times.pop()
        return result

    def __repr__(self) -> str:
        return f"CycleDetector(max_period={self.max_period})"
