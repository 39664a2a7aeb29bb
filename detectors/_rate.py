"""Action frequency: per-agent action counts in fixed event-time windows."""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar, Final

from agentwatch.detectors._pace import PaceDetector
from agentwatch.detectors._state import Pickled, restore, slots_of
from agentwatch.detectors._windows import _SQRT2, _SQRT3, check_window_settings, surprise_above

__all__ = ["ActionRateDetector"]

# A learned mean below this share of the slower mean is a lull (a drop, a stall, a restart),
# not a load cycle (+-35 % in the scenarios, rarely more than +-50 % in a day's traffic).
_LULL_SHARE: Final = 0.5
_SLOW_ALPHA: Final = 0.003  # the slower mean's default fading factor (also for older pickles)
_LEAST_MEAN: Final = 0.05  # the least per-window mean a count is judged against


class ActionRateDetector(Pickled):
    """Scores how far the current window's actions are above the agent's usual rate and pace.

    Events are counted in fixed event-time windows, ``floor(t / window_s)``. When an event lands
    in a later window, the window that closed, then the empty windows in between (at most
    ``max_gap_windows`` of them), are learned into an exponentially weighted mean and variance of
    per-window counts (as river's ``stats.EWMean`` and ``stats.EWVar`` learn them, to the bit: the
    variance is the weighted mean of squares less the square of the mean; kept as plain floats,
    since a window closes every few events). An event whose window has
    already closed (late, out of order) is counted in the current window: no closed window is kept,
    so totals stay exact and per-window counts are exact for in-order streams.

    ``score_one(x)`` is the largest surprise of the open window's count including ``x``: that
    count alone, against a whole window's mean; with the window before, against ``1 + f``
    means; with the two before, against ``2 + f`` means, where ``f`` is the share of the open
    window already elapsed at ``x`` (the sums cover that much time). Each surprise is
    :func:`~agentwatch.detectors._windows.poisson_surprise` (the signed root of the Poisson
    deviance, on the z-score's scale but with a Poisson's heavier upper tail) with the counts'
    variance-to-mean ratio as the dispersion (at least 1), against :attr:`baseline_mean` (at
    least 0.05 per window): the learned mean, or a slower mean of the same counts
    (``slow_alpha``) while the learned one is below half of it, so that an agent coming back to
    its usual rate after a lull (a drop, a stall, a restart) is not a spike above the lull's low
    mean, while a load cycle's slower hours are still judged against their own. Scores below
    ``report_z`` are reported as 0.0 (their logarithm is not worth taking on every event).

    The score is also the :class:`PaceDetector`'s (``pace``) when that is higher: how much
    likelier the latest gaps between actions are a flood's without deliberation than the
    agent's own pace. A runaway agent that floods calls shows there first: a slow agent's 5x
    spike holds too few actions within two seconds to stand out by count alone, but most of
    them come faster than its usual fastest.

    The open window is scored (a spike is visible before it closes); the first event of a new
    one once the windows it closes are learned. :meth:`pause` marks the silence up to the next
    event as expected (the agent said it was idle): the empty windows it spans are not learned.

    Once warm, a closed window whose count, or whose sum with the two windows before it, is
    more than ``clip_z`` scales above the baseline is held out of it (a slow agent's spike has
    no single window far out, and a baseline learning its windows would follow it up).

    Spikes only (drops and stalls are :class:`ActivityDropDetector`'s). The count scores 0.0
    until ``warmup_windows`` windows have been learned (the pace until its own warm-up). Cost is
    O(1) per event; the state is a few hundred bytes. Not thread-safe; no I/O, never blocks.

    Args:
        window_s: Window length in seconds (event time).
        alpha: Fading factor of the exponentially weighted statistics, in (0, 1]; higher adapts
            faster.
        warmup_windows: Learned windows before scores are given.
        max_gap_windows: Most empty windows learned when events resume after a silence.
        clip_z: Once warm, a closed window's count above the baseline mean plus this many scales
            (or its sum with the two before above three means plus ``sqrt(3)`` times as many)
            is an outlier: held out of the baseline, then learned as that limit.
        hold_windows: Most outlier windows in a row held out of the baseline.
        slow_alpha: Fading factor of the slower mean, in (0, ``alpha``].
        report_z: Scores below this (>= 1) are reported as 0.0 and, on the usual path, not
            computed: a count that cannot reach it costs one comparison (the pipeline passes
            its ``rate_warning_z``).

    Example:
        >>> from agentwatch.detectors import ActionRateDetector
        >>> detector = ActionRateDetector(window_s=1.0)
        >>> for second in range(20):  # warm up: 3 actions per second
        ...     for k in range(3):
        ...         detector.learn_one({"t": second + k / 3})
        >>> detector.score_one({"t": 20.0})
        0.0
        >>> for k in range(29):  # a spike of 30 actions within 0.3 s
        ...     detector.learn_one({"t": 20.0 + k / 100})
        >>> detector.score_one({"t": 20.3}) > 8.0
        True
    """

    __slots__ = (
        "_base_dispersion",
        "_base_m",
        "_base_mean",
        "_base_scale",
        "_base_std",
        "_count",
        "_ew_mean",
        "_ew_square",
        "_held",
        "_n_windows",
        "_need",
        "_paused",
        "_prev_count",
        "_prev_count2",
        "_slow_mean",
        "_window",
        "alpha",
        "clip_z",
        "hold_windows",
        "max_gap_windows",
        "pace",
        "report_z",
        "slow_alpha",
        "warmup_windows",
        "window_s",
    )

    def __init__(
        self,
        window_s: float = 1.0,
        alpha: float = 0.1,
        warmup_windows: int = 10,
        max_gap_windows: int = 60,
        clip_z: float = 3.0,
        hold_windows: int = 30,
        slow_alpha: float = _SLOW_ALPHA,
        report_z: float = 1.0,
    ) -> None:
        check_window_settings(
            window_s, alpha, warmup_windows, max_gap_windows, clip_z, hold_windows
        )
        if not 0 < slow_alpha <= alpha:
            raise ValueError(f"slow_alpha must be in (0, alpha], got {slow_alpha}")
        if not report_z >= 1.0:
            raise ValueError(f"report_z must be >= 1, got {report_z}")
        self.report_z = report_z
        self.window_s = window_s
        self.alpha = alpha
        self.warmup_windows = warmup_windows
        self.max_gap_windows = max_gap_windows
        self.clip_z = clip_z
        self.hold_windows = hold_windows
        self.slow_alpha = slow_alpha
        self._held = 0  # consecutive windows held out of the baseline
        self._ew_mean = 0.0  # exponentially weighted mean of the learned counts
        self._ew_square = 0.0  # and of their squares
        self._slow_mean = 0.0  # a slower mean of the same counts (the level before a lull)
        self._window: int | None = None
        self._count = 0
        self._n_windows = 0
        # The baseline changes only when a window closes: cache what scoring needs.
        self._base_mean = 0.0
        self._base_std = 0.0
        self._base_scale = 1.0
        self._base_m = _LEAST_MEAN
        self._base_dispersion = 1.0
        self._need = 0.0  # the open window's count from which scores are computed
        self.pace = PaceDetector(window_s=window_s, report_z=report_z)
        self._prev_count = 0  # count of the window just before the open one (0: not adjacent)
        self._prev_count2 = 0  # and of the one before that
        self._paused = False

    # Defaults for detectors pickled before these attributes existed (snapshot version 1).
    _PICKLED_DEFAULTS: ClassVar[dict[str, Any]] = {
        "_prev_count": 0,
        "_prev_count2": 0,
        "_paused": False,
        "clip_z": 1e9,  # version 1 detectors learned every count as it was
        "hold_windows": 0,
        "_held": 0,
        "slow_alpha": _SLOW_ALPHA,
        "report_z": 1.0,
    }

    def __setstate__(self, state: Any) -> None:
        state = {**self._PICKLED_DEFAULTS, **slots_of(state)}
        if "_slow_mean" not in state:  # pickled before the slow mean: start it at the mean
            state["_slow_mean"] = state.get("_ew_mean", 0.0)
        if "_mean" in state:  # pickled before the statistics were floats: river's objects
            mean, var = state.pop("_mean"), state.pop("_var")
            state["_ew_mean"] = float(mean.get())
            state["_ew_square"] = float(var.get()) + state["_ew_mean"] ** 2
        restore(self, state)
        if "pace" not in state:  # pickled before the pace: it learns afresh, in step
            self.pace = PaceDetector(window_s=self.window_s, report_z=self.report_z)
            self.pace._window = self._window
        self._refresh()

    def pause(self) -> None:
        """The agent is idle: do not learn the empty windows before its next action."""
        self._paused = True
        self.pace.pause()

    def learn_one(self, x: dict[str, Any]) -> None:
        """Counts ``x`` in its window, first learning the windows its arrival closes, and
        teaches the pace its gap.

        Args:
            x: ``{"t": event time in seconds}`` (finite).
        """
        self.window_one(x)  # validates x["t"], naming it
        self.observe(float(x["t"]))

    def observe(self, t: float) -> tuple[int, float, int, float, float]:
        """``score_one`` then ``learn_one`` of ``{"t": t}`` in one step (the pipeline's path).

        Returns:
            (window index, score, the open window's count with this event, and the baseline
            mean and standard deviation the count was scored against).
        """
        if not math.isfinite(t):
            raise ValueError(f"t must be finite, got {t}")
        q = t / self.window_s
        window = math.floor(q)
        into = q - window
        current = self._window
        if current is not None and window < current:
            window, into = current, 1.0  # a late event counts in the open window
        mean, std = self._base_mean, self._base_std
        if window == current:  # the usual case: scored only past the gate set at the close
            count = self._count = self._count + 1
            z = 0.0
            if count >= self._need and self._n_windows >= self.warmup_windows:
                z = self._score(count, into, self._prev_count, self._prev_count2)
        else:  # the first of a new window, scored once the windows it closes are learned
            self._close(window)
            self._window = window
            mean, std = self._base_mean, self._base_std
            count = self._count = 1
            z = 0.0
            if self._need <= 1 and self._n_windows >= self.warmup_windows:
                z = self._score(1, into, self._prev_count, self._prev_count2)
        pace = self.pace.step_to(t, window)
        if pace > z:
            z = pace
        return window, (z if z >= self.report_z else 0.0), count, mean, std

    def start_from(self, other: ActionRateDetector) -> None:
        """Adopt ``other``'s learned baseline (not its open window): a new agent of a cohort
        starts from a cohort member's normal instead of being blind for its warm-up."""
        self._ew_mean, self._ew_square = other._ew_mean, other._ew_square
        self._slow_mean = other._slow_mean
        self._n_windows = other._n_windows
        self._refresh()

    def _close(self, window: int) -> None:
        """Learn the open window and the empty ones before ``window``; refresh the baseline."""
        if self._window is None:
            return
        # A window above ``clip_z`` scales is held out of the baseline, for up to ``hold_windows``
        # in a row, so that a spike is not learned as normal within a few windows (it would
        # inflate the variance first); past that, a lasting shift is learned, winsorized.
        count = float(self._count)
        mean, scale = self._base_mean, self._base_scale
        limit = mean + self.clip_z * scale
        if self._n_windows >= self.warmup_windows and (
            count > limit
            # a slow agent's spike: no window far out, but its sum with the two before it is
            or count + self._prev_count + self._prev_count2 - 3 * mean
            > self.clip_z * _SQRT3 * scale
        ):
            self._held += 1
            count = -1.0 if self._held <= self.hold_windows else limit
        else:
            self._held = 0
        if count >= 0:
            self._learn_count(count)
        after = window - self._window  # > 0: the counts of the two windows before the new
        if after == 1:
            self._prev_count, self._prev_count2 = self._count, self._prev_count
        else:
            self._prev_count, self._prev_count2 = 0, (self._count if after == 2 else 0)
        gap = 0 if self._paused else min(after - 1, self.max_gap_windows)
        self._paused = False
        if gap > 0:
            for _ in range(gap):
                self._learn_count(0.0)
        self._refresh()

    def _refresh(self) -> None:
        """Cache what scoring reads from the baseline (it changes only when a window closes)."""
        mean = self._ew_mean
        var = self._ew_square - mean * mean
        std = self._base_std = math.sqrt(var) if var > 0.0 else 0.0
        if mean < self._slow_mean * _LULL_SHARE:  # as baseline_mean
            mean = self._slow_mean
        self._base_mean = mean
        m = self._base_m = mean if mean > _LEAST_MEAN else _LEAST_MEAN
        root = math.sqrt(m)
        floor = root if mean > 1.0 else 1.0
        self._base_scale = std if std > floor else floor
        var = std * std
        self._base_dispersion = var / m if var > m else 1.0
        # The least open count whose score can reach report_z: the z-score, sums / sqrt(var)
        # with var = dispersion * m = max(m, std^2), never falls below the surprise, and the
        # sums' expectation is least at the window's start.
        bar = self.report_z * (std if std > root else root)
        one = m + bar - self._prev_count
        two = 2 * m + _SQRT2 * bar - self._prev_count - self._prev_count2
        self._need = one if one < two else two

    def score_one(self, x: dict[str, Any]) -> float:
        """Returns the score ``x`` would get (see the class); never mutates the detector.

        Args:
            x: ``{"t": event time in seconds}`` (finite).

        Returns:
            The score, >= 0.0; 0.0 during warm-up.
        """
        self.window_one(x)  # validates x["t"], naming it
        return copy.deepcopy(self).observe(float(x["t"]))[1]

    def _score(self, count: int, into: float, p1: int, p2: int) -> float:
        """The count's largest surprise: the open window's alone (against a whole window's
        mean), with the window before (against ``1 + into`` means) or the two before
        (``2 + into``)."""
        m, dispersion = self._base_m, self._base_dispersion
        z = surprise_above(count, m, dispersion, 0.0)
        if p1:
            z = surprise_above(count + p1, m * (1.0 + into), dispersion, z)
        if p1 or p2:
            z = surprise_above(count + p1 + p2, m * (2.0 + into), dispersion, z)
        return z

    def window_one(self, x: dict[str, Any]) -> int:
        """Returns the index of the window ``x`` would be counted in (late events: the open one).

        Args:
            x: ``{"t": event time in seconds}`` (finite).

        Raises:
            ValueError: ``x["t"]`` is not finite.
        """
        t = float(x["t"])
        if not math.isfinite(t):
            raise ValueError(f"x['t'] must be finite, got {t}")
        window = math.floor(t / self.window_s)
        if self._window is not None and window < self._window:
            return self._window
        return window

    def count_one(self, x: dict[str, Any]) -> int:
        """Returns the open window's count if ``x`` were learned; never mutates the detector."""
        return self._count + 1 if self.window_one(x) == self._window else 1

    @property
    def window(self) -> int | None:
        """Index of the open window, ``floor(t / window_s)``; None before any learning."""
        return self._window

    @property
    def mean(self) -> float:
        """Learned mean of per-window counts."""
        return self._ew_mean

    @property
    def baseline_mean(self) -> float:
        """The mean scores are computed against: the learned mean, or the slower mean when the
        learned one is below half of it (after a lull, the usual level is the one a spike must be
        above)."""
        mean = self._ew_mean
        return self._slow_mean if mean < self._slow_mean * _LULL_SHARE else mean

    @property
    def std(self) -> float:
        """Learned standard deviation of per-window counts (without the Poisson floor)."""
        return math.sqrt(max(self._ew_square - self._ew_mean * self._ew_mean, 0.0))

    @property
    def warm(self) -> bool:
        """True once ``warmup_windows`` windows have been learned."""
        return self._n_windows >= self.warmup_windows

    def _learn_count(self, count: float) -> None:
        if self._n_windows:
            a = self.alpha
            self._ew_mean = a * count + (1 - a) * self._ew_mean
            self._ew_square = a * (count * count) + (1 - a) * self._ew_square
            self._slow_mean += self.slow_alpha * (count - self._slow_mean)
        else:  # river's first value is taken as it is
            self._ew_mean, self._ew_square = float(count), float(count) * count
            self._slow_mean = float(count)
        self._n_windows += 1

    def __repr__(self) -> str:
        return (
            f"ActionRateDetector(window_s={self.window_s}, alpha={self.alpha}, "
            f"warmup_windows={self.warmup_windows}, max_gap_windows={self.max_gap_windows}, "
            f"clip_z={self.clip_z}, hold_windows={self.hold_windows}, "
            f"slow_alpha={self.slow_alpha}, report_z={self.report_z})"
        )
