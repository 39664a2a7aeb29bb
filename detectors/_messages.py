"""Health: message volume, an agent's messages to its peers per event-time window."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from agentwatch.detectors._state import Pickled, restore, slots_of
from agentwatch.detectors._windows import _SQRT2, _SQRT3, check_window_settings

__all__ = ["MessageVolumeDetector", "message_evidence"]


class MessageVolumeDetector(Pickled):
    """Scores how far the open window's messages (count and bytes) are above the agent's usual.

    Messages are counted, and their bytes summed, in fixed event-time windows,
    ``floor(t / window_s)``. When a message lands in a later window, the closed window and the
    empty ones after it (at most ``max_gap_windows``) are learned into exponentially weighted
    means and variances of the per-window count and bytes (the mean of squares less the square
    of the mean, as :class:`ActionRateDetector` learns them). A late message counts in the open
    window. ``score_one(x)`` is the highest z-score of the open window with ``x``: of its count,
    of its count summed with the previous one or two windows' (a flood a little too slow to
    stand out in one window adds up over two or three), and of its bytes::

        (count - mean) / scale,  (count + p1 - 2 mean) / (sqrt(2) scale),
        (count + p1 + p2 - 3 mean) / (sqrt(3) scale),  scale = max(std, sqrt(max(mean, min_mean)))
        (bytes - mean_bytes) / max(std_bytes, sqrt(max(mean, min_mean)) * size)

    where ``size`` is the larger of the learned bytes per message and the open window's. The
    floor ``min_mean`` treats an agent sending fewer messages than that per window as if it sent
    that many: a flood must be many messages above the usual, not a few (a quiet agent's bursts,
    an idle agent getting busy). Bytes add to the count when a flood's messages are also larger
    than usual; one large message alone is never a flood.
    Spikes only: a score is at least 0.0, and 0.0 until ``warmup_windows`` windows are learned.

    Once warm, a closed window scoring ``clip_z`` or more is held out of the baseline (so that
    a flood is not learned as normal while it lasts), for at most ``hold_windows`` in a row;
    past that, a lasting change is learned. :attr:`onset_window` is the first of the held windows
    just before the open one: where a flood began, even when it crossed the warning only later.

    The peer most messages of the open window went to is tracked with a majority vote
    (Boyer-Moore): :attr:`top_peer` is that peer whenever one peer has more than half of them,
    and :attr:`top_peer_messages` a lower bound of its messages.

    Cost is O(1) per message (closing windows is bounded by ``max_gap_windows``); the state is
    a dozen floats and ints and one peer id. Not thread-safe; no I/O, never blocks.

    Args:
        window_s: Window length in seconds (event time).
        alpha: Fading factor of the baseline, per window, in (0, 1].
        warmup_windows: Learned windows before scores are given.
        max_gap_windows: Most empty windows learned when messages resume after a silence.
        min_mean: The least per-window mean a count is scored against (> 0).
        clip_z: Once warm, a closed window scoring this or more is held out of the baseline.
        hold_windows: Most windows in a row held out of the baseline.

    Example:
        >>> from agentwatch.detectors import MessageVolumeDetector
        >>> detector = MessageVolumeDetector(window_s=10.0)
        >>> for second in range(300):  # warm up: one 2 KB message every 3 s
        ...     if second % 3 == 0:
        ...         detector.learn_one({"t": second, "bytes": 2000, "peer": "planner"})
        >>> detector.score_one({"t": 300.0, "bytes": 2000, "peer": "critic"})
        0.0
        >>> for k in range(40):  # a chatty loop: 40 messages to one peer within 8 s
        ...     detector.learn_one({"t": 300 + k / 5, "bytes": 2000, "peer": "critic"})
        >>> detector.score_one({"t": 308.0, "bytes": 2000, "peer": "critic"}) > 8
        True
        >>> detector.top_peer
        'critic'
    """

    __slots__ = (
        "_bytes",
        "_count",
        "_ew_bytes",
        "_ew_bytes_sq",
        "_ew_count",
        "_ew_count_sq",
        "_held",
        "_n_windows",
        "_peer",
        "_peer_messages",
        "_peer_votes",
        "_prev1",
        "_prev2",
        "_window",
        "alpha",
        "clip_z",
        "hold_windows",
        "max_gap_windows",
        "min_mean",
        "warmup_windows",
        "window_s",
    )

    def __init__(
        self,
        window_s: float = 10.0,
        alpha: float = 0.05,
        warmup_windows: int = 12,
        max_gap_windows: int = 30,
        min_mean: float = 4.0,
        clip_z: float = 4.0,
        hold_windows: int = 30,
    ) -> None:
        check_window_settings(
            window_s, alpha, warmup_windows, max_gap_windows, clip_z, hold_windows
        )
        if not (min_mean > 0 and math.isfinite(min_mean)):
            raise ValueError(f"min_mean must be a finite number > 0, got {min_mean}")
        self.window_s = window_s
        self.alpha = alpha
        self.warmup_windows = warmup_windows
        self.max_gap_windows = max_gap_windows
        self.min_mean = min_mean
        self.clip_z = clip_z
        self.hold_windows = hold_windows
        self._window: int | None = None
        self._count = 0  # the open window's messages
        self._bytes = 0.0  # and their bytes
        self._ew_count = 0.0  # exponentially weighted mean of the learned counts
        self._ew_count_sq = 0.0  # and of their squares
        self._ew_bytes = 0.0  # the same for bytes per window
        self._ew_bytes_sq = 0.0
        self._n_windows = 0
        self._held = 0  # consecutive closed windows held out of the baseline, up to the open one
        self._peer = ""  # the open window's majority vote: candidate, votes, its messages since
        self._peer_votes = 0
        self._peer_messages = 0
        self._prev1 = 0  # messages of the window before the open one (0: none, or not adjacent)
        self._prev2 = 0  # and of the one before that

    # Defaults for attributes a future version adds, so that older pickles still restore.
    _PICKLED_DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __setstate__(self, state: Any) -> None:
        restore(self, {**self._PICKLED_DEFAULTS, **slots_of(state)})

    # --- river's verbs ------------------------------------------------------------------------
    def learn_one(self, x: dict[str, Any]) -> None:
        """Counts one message in its window, first learning the windows its arrival closes.

        Args:
            x: ``{"t": event time in s (finite), "bytes": its size, "peer": the peer's id}``;
                ``bytes`` and ``peer`` are optional.
        """
        self.observe(float(x["t"]), float(x.get("bytes", 0.0)), str(x.get("peer", "")))

    def score_one(self, x: dict[str, Any]) -> float:
        """The open window's score with ``x`` counted; never mutates the detector."""
        window = self._window_of(float(x["t"]))
        size = _size(float(x.get("bytes", 0.0)))
        if window == self._window:
            return self._score(self._count + 1, self._bytes + size, self._prev1, self._prev2)
        return self._score(1, size, *self._previous(window))

    def observe(self, t: float, size_bytes: float = 0.0, peer: str = "") -> tuple[int, float]:
        """``score_one`` then ``learn_one`` in one step, the pipeline's path.

        Returns:
            (the window the message was counted in, the open window's score with it).
        """
        window = self._window_of(t)
        size = _size(size_bytes)
        if window != self._window:
            # Scored against the baseline as it stands, before the windows it closes are learned
            # (as score_one sees it): one message rarely scores, so this never hides a flood.
            z = self._score(1, size, *self._previous(window))
            self._close(window)
            self._count, self._bytes = 1, size
            self._peer, self._peer_votes, self._peer_messages = peer, 1, 1
            return window, z
        count = self._count = self._count + 1
        total = self._bytes = self._bytes + size
        if peer == self._peer:
            self._peer_votes += 1
            self._peer_messages += 1
        elif self._peer_votes:
            self._peer_votes -= 1
        else:
            self._peer, self._peer_votes, self._peer_messages = peer, 1, 1
        return window, self._score(count, total, self._prev1, self._prev2)

    # --- what the pipeline's evidence reads ---------------------------------------------------
    @property
    def window(self) -> int | None:
        """Index of the open window, ``floor(t / window_s)``; None before any message."""
        return self._window

    @property
    def count(self) -> int:
        """Messages in the open window."""
        return self._count

    @property
    def previous_counts(self) -> tuple[int, int]:
        """Messages of the two windows before the open one, newest first (0: empty or none)."""
        return self._prev1, self._prev2

    @property
    def size_bytes(self) -> float:
        """Bytes of the open window's messages."""
        return self._bytes

    @property
    def mean(self) -> float:
        """Learned mean of messages per window."""
        return self._ew_count

    @property
    def std(self) -> float:
        """Learned standard deviation of messages per window (without the floor)."""
        return _std(self._ew_count, self._ew_count_sq)

    @property
    def mean_bytes(self) -> float:
        """Learned mean of bytes per window."""
        return self._ew_bytes

    @property
    def warm(self) -> bool:
        """True once ``warmup_windows`` windows have been learned."""
        return self._n_windows >= self.warmup_windows

    @property
    def onset_window(self) -> int | None:
        """The first window of the current excursion: the open one, or the first of the held
        windows just before it."""
        return None if self._window is None else self._window - self._held

    @property
    def top_peer(self) -> str:
        """The open window's majority peer candidate ("" before any message)."""
        return self._peer

    @property
    def top_peer_messages(self) -> int:
        """A lower bound of the open window's messages to :attr:`top_peer`."""
        return self._peer_messages

    # --- internals ----------------------------------------------------------------------------
    def _window_of(self, t: float) -> int:
        if not math.isfinite(t):
            raise ValueError(f"t must be finite, got {t}")
        window = math.floor(t / self.window_s)
        if self._window is not None and window < self._window:
            return self._window  # a late message counts in the open window
        return window

    def _previous(self, window: int) -> tuple[int, int]:
        """Messages of the two windows before ``window`` (0 for empty or forgotten ones)."""
        current = self._window
        if current is None or window - current > 2:
            return 0, 0
        if window == current:
            return self._prev1, self._prev2
        if window == current + 1:
            return self._count, self._prev1
        return 0, self._count

    def _score(self, count: int, total: float, p1: int, p2: int) -> float:
        if self._n_windows < self.warmup_windows:
            return 0.0
        mean, mean_bytes = self._ew_count, self._ew_bytes
        floor = math.sqrt(mean if mean > self.min_mean else self.min_mean)
        scale = max(_std(mean, self._ew_count_sq), floor)
        z = (count - mean) / scale
        if p1:  # a flood slower than the floor adds up over windows
            z = max(z, (count + p1 - 2 * mean) / (_SQRT2 * scale))
        if p1 or p2:
            z = max(z, (count + p1 + p2 - 3 * mean) / (_SQRT3 * scale))
        # The bytes' floor takes the larger of the usual and the open window's message size:
        # one large message is never a flood (nor a usual size learned from a few messages).
        size = total / count
        if mean > 0.0 and mean_bytes / mean > size:
            size = mean_bytes / mean
        scale_bytes = max(_std(mean_bytes, self._ew_bytes_sq), floor * size)
        if scale_bytes > 0.0:
            zb = (total - mean_bytes) / scale_bytes
            if zb > z:
                z = zb
        return z if z > 0.0 else 0.0

    def _close(self, window: int) -> None:
        """Learn the open window and the empty ones before ``window``; open ``window``."""
        current = self._window
        previous = self._previous(window)
        self._window = window
        count, total = self._count, self._bytes
        self._count, self._bytes = 0, 0.0
        self._peer, self._peer_votes, self._peer_messages = "", 0, 0
        if current is None:
            return
        closed = self._score(count, total, self._prev1, self._prev2)
        self._prev1, self._prev2 = previous
        if self._n_windows >= self.warmup_windows and closed >= self.clip_z:
            self._held += 1
            if self._held <= self.hold_windows:
                count = -1  # held out
        else:
            self._held = 0
        if count >= 0:
            self._learn(count, total)
        gap = min(window - current - 1, self.max_gap_windows)
        if gap > 0:
            self._held = 0  # an empty window ends a flood
            for _ in range(gap):
                self._learn(0, 0.0)
        elif window > current + 1:
            self._held = 0

    def _learn(self, count: int, total: float) -> None:
        if self._n_windows:
            a = self.alpha
            self._ew_count += a * (count - self._ew_count)
            self._ew_count_sq += a * (count * count - self._ew_count_sq)
            self._ew_bytes += a * (total - self._ew_bytes)
            self._ew_bytes_sq += a * (total * total - self._ew_bytes_sq)
        else:  # the first window is taken as it is
            self._ew_count, self._ew_count_sq = float(count), float(count * count)
            self._ew_bytes, self._ew_bytes_sq = total, total * total
        self._n_windows += 1

    def __repr__(self) -> str:
        return (
            f"MessageVolumeDetector(window_s={self.window_s}, alpha={self.alpha}, "
            f"warmup_windows={self.warmup_windows}, max_gap_windows={self.max_gap_windows}, "
            f"min_mean={self.min_mean}, clip_z={self.clip_z}, hold_windows={self.hold_windows})"
        )


def message_evidence(detector: MessageVolumeDetector, agent: str) -> dict[str, Any]:
    """What an anomaly about ``detector``'s open window says: seen against usual, top peer."""
    count, size = detector.count, detector.size_bytes
    mean, mean_bytes = detector.mean, detector.mean_bytes
    peer, to_peer = detector.top_peer, detector.top_peer_messages
    p1, p2 = detector.previous_counts
    window_s = detector.window_s
    earlier = f", {count + p1 + p2} in the last {3 * window_s:g} s" if p1 or p2 else ""
    return {
        "summary": (
            f"agent {agent}: {count} messages ({_kib(size)}) in the current {window_s:g} s "
            f"window{earlier}, usually {mean:.1f} ({_kib(mean_bytes)}) per window; "
            f"top peer {peer or '(unnamed)'} (at least {to_peer})"
        ),
        "observed": count,
        "observed_previous_windows": [p1, p2],
        "observed_bytes": round(size),
        "expected_mean": round(mean, 3),
        "expected_std": round(detector.std, 3),
        "expected_bytes": round(mean_bytes),
        "window_s": window_s,
        "top_peer": peer,
        "top_peer_messages": to_peer,
    }


def _kib(size_bytes: float) -> str:
    return f"{size_bytes / 1024:.1f} KiB"


def _size(size_bytes: float) -> float:
    """A message's bytes as scored: unknown, negative or non-finite sizes count as 0."""
    return size_bytes if size_bytes > 0.0 and math.isfinite(size_bytes) else 0.0


def _std(mean: float, mean_square: float) -> float:
    var = mean_square - mean * mean
    return math.sqrt(var) if var > 0.0 else 0.0
