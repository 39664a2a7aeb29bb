"""Pace: actions following each other faster than the agent's usual fastest."""

from __future__ import annotations

import copy
import math
from typing import Any

from agentwatch.detectors._windows import _SQRT2, check_window_settings, surprise_above

__all__ = ["PaceDetector"]

# The first gaps are learned with ten times the step (the estimate settles within them); no
# score is given before.
_SETTLING_GAPS = 200
_MAX_GAP_WINDOWS = 60  # most empty windows learned after a silence (as the action rate's)


class PaceDetector:
    """Scores how many of an agent's recent actions came faster than its usual fastest.

    An agent that deliberates before it acts (a model call, then a tool call) has a floor under
    the time between its actions; a runaway one that floods calls without deliberating does not.
    Each gap between two actions is compared with the agent's learned ``quantile`` of gaps (5 %
    by default: a stochastic-approximation estimate, multiplied by ``exp(-step * (1 - q))``
    after a shorter gap and by ``exp(step * q)`` after a longer one); a shorter gap makes the
    action *fast*. Fast actions are counted in the same fixed event-time windows as
    :class:`ActionRateDetector`'s, and their per-window mean is learned (exponentially
    weighted, ``alpha``). The score is the largest Poisson surprise
    (:func:`~agentwatch.detectors._windows.poisson_surprise`) of the fast actions in the open
    window, in it and the window before, or in it and the two before, against that mean times
    the time they cover (the open window alone is judged against a whole window's mean: a
    clump of parallel calls is not a spike); scores below ``report_z`` are reported as 0.0.

    Under the agent's own pace about ``quantile`` of its actions are fast, so a doubled rate
    barely moves the score; five times the rate without deliberation makes most actions fast,
    and a slow agent's spike is visible within a second or two, long before its count alone is.
    An agent that often calls tools in parallel learns a gap of 0 and is never fast: the count
    (:class:`ActionRateDetector`) still watches it.

    A window or an action whose score is ``clip_z`` or more is not learned (a spike does not
    teach its own pace), for at most ``hold_windows`` windows in a row. :meth:`pause` marks the
    silence up to the next action as expected: its gap is not judged, and its empty windows are
    not learned. Late actions (earlier than the latest) count in the open window, are never
    fast and teach nothing. The score is 0.0 until ``warmup_windows`` windows and 200 gaps
    have been learned (the first 200 with ten times the step: the estimate settles in them).

    Cost is O(1) per action; the state is a dozen floats and ints. Not thread-safe.

    Args:
        window_s: Window length in seconds (event time).
        quantile: Share of the agent's gaps that count as fast, in (0, 0.5].
        step: Learning step of the gap quantile, in (0, 1].
        alpha: Fading factor of the mean of fast actions per window, in (0, 1].
        warmup_windows: Learned windows before scores are given.
        floor: Least mean of fast actions per window scored against (an agent that is never
            fast would otherwise alarm on its first fast action).
        clip_z: Score at and above which actions and windows are not learned.
        hold_windows: Most windows in a row held out of the baseline.
        report_z: Scores below this (>= 1) are reported as 0.0 and, on the usual path, not
            computed.

    Example:
        >>> from agentwatch.detectors import PaceDetector
        >>> pace = PaceDetector()
        >>> for k in range(400):  # warm up: an action every 0.2-0.5 s
        ...     pace.learn_one({"t": k * 0.4 + 0.1 * (k % 3)})
        >>> pace.score_one({"t": 160.5}) < 2.0  # its usual pace
        True
        >>> for k in range(8):  # eight calls 10 ms apart
        ...     pace.learn_one({"t": 160.5 + k / 100})
        >>> pace.score_one({"t": 160.6}) > 6.0
        True
    """

    __slots__ = (
        "_down",
        "_fast",
        "_gap",
        "_held",
        "_last_t",
        "_mean",
        "_n_windows",
        "_need",
        "_p1",
        "_p2",
        "_settling",
        "_up",
        "_window",
        "alpha",
        "clip_z",
        "floor",
        "hold_windows",
        "quantile",
        "report_z",
        "step",
        "warmup_windows",
        "window_s",
    )

    def __init__(
        self,
        window_s: float = 1.0,
        quantile: float = 0.05,
        step: float = 0.02,
        alpha: float = 0.02,
        warmup_windows: int = 30,
        floor: float = 0.05,
        clip_z: float = 3.0,
        hold_windows: int = 30,
        report_z: float = 1.0,
    ) -> None:
        check_window_settings(
            window_s, alpha, warmup_windows, _MAX_GAP_WINDOWS, clip_z, hold_windows
        )
        for name, value, high in (("quantile", quantile, 0.5), ("step", step, 1.0)):
            if not 0 < value <= high:
                raise ValueError(f"{name} must be in (0, {high:g}], got {value}")
        if not floor > 0:
            raise ValueError(f"floor must be > 0, got {floor}")
        if not report_z >= 1.0:
            raise ValueError(f"report_z must be >= 1, got {report_z}")
        self.report_z = report_z
        self.window_s = window_s
        self.quantile = quantile
        self.step = step
        self.alpha = alpha
        self.warmup_windows = warmup_windows
        self.floor = floor
        self.clip_z = clip_z
        self.hold_windows = hold_windows
        # The gap estimate's factor after a shorter gap and after a longer one: ten times the
        # step while the first gaps settle it (see _settled).
        self._down = math.exp(-10.0 * step * (1.0 - quantile))
        self._up = math.exp(10.0 * step * quantile)
        self._gap = 0.0  # the learned quantile of gaps; 0.0 until the first gap
        self._settling = _SETTLING_GAPS  # gaps left to learn with the larger step
        # The latest action's time; infinite after a pause (and before the first action): the
        # gap to the next action is then negative, and not judged.
        self._last_t = math.inf
        self._window: int | None = None
        self._fast = 0  # fast actions in the open window
        self._p1 = 0  # in the window before it (0: not adjacent)
        self._p2 = 0  # and the one before that
        self._mean = 0.0  # learned mean of fast actions per window
        self._n_windows = 0
        self._held = 0  # consecutive windows held out of the baseline
        self._need = math.inf  # the open window's fast count from which scores are computed

    def pause(self) -> None:
        """The agent is idle: the gap to its next action is not judged, its silence not
        learned."""
        self._last_t = math.inf

    def observe(self, t: float) -> float:
        """``score_one`` then ``learn_one`` of ``{"t": t}`` in one step; returns the score."""
        if not math.isfinite(t):
            raise ValueError(f"t must be finite, got {t}")
        q = t / self.window_s
        window = math.floor(q)
        return self.step_to(t, window, q - window)

    def step_to(self, t: float, window: int, into: float) -> float:
        """:meth:`observe` with the window and the share of it elapsed already computed (the
        action rate, which counts in the same windows, calls this)."""
        current = self._window
        if current is not None and window < current:
            window, into = current, 1.0  # a late action counts in the open window
        paused = self._last_t == math.inf
        gap = t - self._last_t
        if gap >= 0.0 or paused:
            self._last_t = t
        # (after a pause, or a late action: gap < 0, never fast, teaches nothing)
        if window != current:
            self._close(window, paused)
        learned = self._gap
        fast = 0.0 <= gap < learned
        if fast:
            self._fast += 1
        z = 0.0
        if self._fast >= self._need:  # else the score is below clip_z and report_z
            z = self._score(self._fast, into)
        if gap >= 0.0 and z < self.clip_z:
            self._gap = learned * (self._down if fast else self._up) if learned else gap
            if self._settling:
                self._settling -= 1
                if not self._settling:
                    self._settled()
        return z if z >= self.report_z else 0.0

    def _settled(self) -> None:
        """The first gaps are learned: the step is ``step`` from now on."""
        self._down = math.exp(-self.step * (1.0 - self.quantile))
        self._up = math.exp(self.step * self.quantile)
        self._set_need()

    def _set_need(self) -> None:
        """The least fast count of the open window whose score can reach ``clip_z`` or
        ``report_z`` (infinite before the warm-up): the z-score never falls below the surprise,
        and the sums' expectation is least at the window's start."""
        if self._settling or self._n_windows < self.warmup_windows:  # not warm
            self._need = math.inf
            return
        m = self._mean if self._mean > self.floor else self.floor
        bar = min(self.clip_z, self.report_z) * math.sqrt(m)
        one = m + bar - self._p1
        two = 2 * m + _SQRT2 * bar - self._p1 - self._p2
        self._need = one if one < two else two

    def _close(self, window: int, paused: bool) -> None:
        """Learn the open window and, unless ``paused``, the empty ones before ``window``."""
        current = self._window
        self._window = window
        if current is None:
            return
        fast = self._fast
        if (
            fast >= self._need
            and self._score(fast, 1.0) >= self.clip_z
            and self._held < self.hold_windows
        ):
            self._held += 1
        else:
            self._held = 0
            self._learn(fast)
        gap = window - current
        if gap == 1:
            self._p1, self._p2 = fast, self._p1
        else:
            self._p1, self._p2 = 0, (fast if gap == 2 else 0)
            if not paused:
                for _ in range(min(gap - 1, _MAX_GAP_WINDOWS)):
                    self._learn(0)
        self._fast = 0
        self._set_need()

    def _learn(self, fast: int) -> None:
        self._mean = fast if not self._n_windows else self._mean + self.alpha * (fast - self._mean)
        self._n_windows += 1

    def _score(self, fast: int, into: float) -> float:
        """The largest surprise of the fast actions in the last one, two or three windows."""
        p1, p2 = self._p1, self._p2
        if not (fast or p1 or p2):
            return 0.0
        m = self._mean if self._mean > self.floor else self.floor
        z = surprise_above(fast, m, 1.0, 0.0)
        if p1:
            z = surprise_above(fast + p1, m * (1.0 + into), 1.0, z)
        return surprise_above(fast + p1 + p2, m * (2.0 + into), 1.0, z)

    def learn_one(self, x: dict[str, Any]) -> None:
        """Learns the action at ``x["t"]`` (seconds, finite)."""
        self.observe(float(x["t"]))

    def score_one(self, x: dict[str, Any]) -> float:
        """Returns the score the action at ``x["t"]`` would get; never mutates the detector."""
        return copy.copy(self).observe(float(x["t"]))  # its state is numbers only

    @property
    def paused(self) -> bool:
        """True from :meth:`pause` (and before the first action) until the next action."""
        return self._last_t == math.inf

    @property
    def gap_s(self) -> float:
        """The learned quantile of the agent's gaps between actions, in seconds (0.0: none)."""
        return self._gap

    @property
    def mean(self) -> float:
        """Learned mean of fast actions per window."""
        return self._mean

    @property
    def recent(self) -> int:
        """Fast actions in the open window and the two before it."""
        return self._fast + self._p1 + self._p2

    @property
    def warm(self) -> bool:
        """True once ``warmup_windows`` windows and 200 gaps have been learned."""
        return self._n_windows >= self.warmup_windows and not self._settling

    def __repr__(self) -> str:
        return (
            f"PaceDetector(window_s={self.window_s}, quantile={self.quantile}, "
            f"step={self.step}, alpha={self.alpha}, warmup_windows={self.warmup_windows}, "
            f"floor={self.floor}, clip_z={self.clip_z}, hold_windows={self.hold_windows}, "
            f"report_z={self.report_z})"
        )
