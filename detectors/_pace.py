"""Pace: a CUSUM of how much likelier an agent's recent gaps are a flood's than its own pace's."""

from __future__ import annotations

import copy
import math
from typing import Any, Final

from agentwatch.detectors._state import Pickled, restore, slots_of

__all__ = ["PaceDetector"]

# The first gaps are learned with ten times the step (the estimate settles within them); no
# score is given before.
_SETTLING_GAPS: Final = 200
_TIERS: Final = 6  # a gap's tier: [0, q/4), [q/4, q/2), [q/2, q), [q, 2q), [2q, 4q), [4q, inf)
# Least learned probabilities of the two fastest tiers: an agent that is never that fast would
# otherwise make its first such gap infinitely surprising.
_LEAST_FASTEST = (1e-4, 5e-4)
_LEAST_SLOW: Final = 0.005  # least learned probability of each tier above the usual fastest
_LEAST_FLOOD: Final = 1e-12  # least probability of a tier under the flood's model


class PaceDetector(Pickled):
    """Scores how much likelier an agent's latest gaps between actions are a flood's than its own.

    An agent that deliberates before it acts (a model call, then a tool call) has a floor under
    the time between its actions; a runaway one that floods calls without deliberating does not.
    Each gap is put in one of six tiers relative to the agent's learned ``quantile`` of gaps
    ``q`` (5 % by default: a stochastic-approximation estimate, multiplied by
    ``exp(-step * (1 - quantile))`` after a shorter gap and by ``exp(step * quantile)`` after a
    longer one): ``[0, q/4)``, ``[q/4, q/2)``, ``[q/2, q)``, ``[q, 2q)``, ``[2q, 4q)``,
    ``[4q, inf)``. Two models give each tier a probability. The agent's own: the share of its
    gaps learned per tier (fading factor ``alpha`` per window), with ``quantile`` of them below
    ``q`` by construction and floors under the fastest tiers. A flood's: exponential gaps with
    ``factor`` (5) times the agent's mean rate and no floor (the mean gap is learned with fading
    factor ``gap_alpha``). A gap adds its tier's log-likelihood ratio (flood against own) to a
    one-sided CUSUM, ``S = min(max_nats, max(0, S + llr))``, where the tiers at and above ``q``
    never add evidence for a flood (their ratio is capped at 0: only gaps faster than the
    agent's usual fastest are that), and the score is ``sqrt(2 S)``, a z-score's scale (6 is 18
    nats). The tiers' ratios are recomputed every ``refresh_windows`` windows, not per action.

    Under the agent's own pace a fast gap now and then is soon outweighed by usual ones; a flood
    without deliberation makes most gaps fast, and a slow agent's 5x spike scores high within a
    second or two, long before its count alone does. An agent that often calls tools in parallel
    learns a gap of 0 and is never fast: the count (:class:`ActionRateDetector`) still watches it.

    While ``S`` is ``hold_nats`` or more, nothing is learned (a flood does not teach its own
    pace). :meth:`pause` marks the silence up to the next action as expected: its gap is not
    judged, and the CUSUM restarts. Late actions (earlier than the latest) are not judged and
    teach nothing. The score is 0.0 until ``warmup_windows`` windows and 200 gaps have been
    learned (the first 200 with ten times the step: the estimate settles in them); scores below
    ``report_z`` are reported as 0.0.

    Cost is O(1) per action (a few comparisons and additions; the tiers' 6 logarithms once per
    ``refresh_windows`` windows); the state is about 40 numbers. Not thread-safe.

    Args:
        window_s: Window length in seconds (event time), as the action rate's.
        quantile: Share of the agent's gaps that count as fast, in (0, 0.5].
        step: Learning step of the gap quantile, in (0, 1].
        factor: A flood's rate as a multiple of the agent's mean rate (> 1).
        alpha: Fading factor of the tiers' shares per window, in (0, 1].
        gap_alpha: Fading factor of the mean gap, per gap, in (0, 1].
        max_nats: Most evidence the CUSUM holds (a flood that stops is forgotten within a few
            usual gaps).
        hold_nats: Evidence from which nothing is learned, in (0, ``max_nats``).
        warmup_windows: Learned windows before scores are given.
        refresh_windows: Windows between recomputations of the tiers' ratios.
        report_z: Scores below this (>= 1) are reported as 0.0.

    Example:
        >>> from agentwatch.detectors import PaceDetector
        >>> pace = PaceDetector()
        >>> for k in range(400):  # warm up: an action every 0.2-0.5 s
        ...     pace.learn_one({"t": k * 0.4 + 0.1 * (k % 3)})
        >>> pace.score_one({"t": 160.5}) < 2.0  # its usual pace
        True
        >>> for k in range(8):  # eight calls 10 ms apart
        ...     pace.learn_one({"t": 160.5 + k / 100})
        >>> pace.score_one({"t": 160.59}) > 6.0
        True
    """

    __slots__ = (
        "_bar",
        "_c0",
        "_c1",
        "_c2",
        "_c3",
        "_c4",
        "_c5",
        "_down",
        "_e1",
        "_e2",
        "_e3",
        "_e4",
        "_e5",
        "_fast",
        "_gap",
        "_l0",
        "_l1",
        "_l2",
        "_l3",
        "_l4",
        "_l5",
        "_last_t",
        "_mean_gap",
        "_n_windows",
        "_nats",
        "_settling",
        "_shares",
        "_since",
        "_up",
        "_window",
        "alpha",
        "factor",
        "gap_alpha",
        "hold_nats",
        "max_nats",
        "quantile",
        "refresh_windows",
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
        factor: float = 5.0,
        alpha: float = 0.005,
        gap_alpha: float = 0.01,
        max_nats: float = 40.0,
        hold_nats: float = 4.5,
        warmup_windows: int = 30,
        refresh_windows: int = 8,
        report_z: float = 1.0,
    ) -> None:
        if not (window_s > 0 and math.isfinite(window_s)):
            raise ValueError(f"window_s must be a finite number > 0, got {window_s}")
        for name, value, high in (
            ("quantile", quantile, 0.5),
            ("step", step, 1.0),
            ("alpha", alpha, 1.0),
            ("gap_alpha", gap_alpha, 1.0),
        ):
            if not 0 < value <= high:
                raise ValueError(f"{name} must be in (0, {high:g}], got {value}")
        if not factor > 1:
            raise ValueError(f"factor must be > 1, got {factor}")
        if not 0 < hold_nats < max_nats < math.inf:
            raise ValueError(
                f"hold_nats and max_nats must be 0 < hold_nats < max_nats < inf, got "
                f"{hold_nats} and {max_nats}"
            )
        for name, count in (
            ("warmup_windows", warmup_windows),
            ("refresh_windows", refresh_windows),
        ):
            if count < 1:
                raise ValueError(f"{name} must be >= 1, got {count}")
        if not report_z >= 1.0:
            raise ValueError(f"report_z must be >= 1, got {report_z}")
        self.window_s = window_s
        self.quantile = quantile
        self.step = step
        self.factor = factor
        self.alpha = alpha
        self.gap_alpha = gap_alpha
        self.max_nats = max_nats
        self.hold_nats = hold_nats
        self.warmup_windows = warmup_windows
        self.refresh_windows = refresh_windows
        self.report_z = report_z
        self._bar = report_z * report_z / 2.0  # the least evidence whose score is reported
        # The gap estimate's factor after a shorter gap and after a longer one: ten times the
        # step while the first gaps settle it (see _settled).
        self._down = math.exp(-10.0 * step * (1.0 - quantile))
        self._up = math.exp(10.0 * step * quantile)
        self._gap = 0.0  # the learned quantile of gaps; 0.0 until the first gap
        self._mean_gap = 0.0  # and their mean
        self._settling = _SETTLING_GAPS  # gaps left to learn with the larger step
        # The latest action's time; infinite after a pause (and before the first action): the
        # gap to the next action is then negative, and not judged.
        self._last_t = math.inf
        self._nats = 0.0  # the CUSUM
        self._fast = 0  # fast gaps since the CUSUM last left 0
        self._window: int | None = None
        self._n_windows = 0
        self._since = 0  # windows closed since the tiers' ratios were computed
        # Gaps per tier since then (slots rather than a list: one object less to reach on
        # every action).
        self._c0 = self._c1 = self._c2 = self._c3 = self._c4 = self._c5 = 0
        self._shares = [0.0] * _TIERS  # learned gaps per tier and window
        # The tiers' upper edges (q/4 ... 4q at the last refresh; 0.0: every gap in the top
        # tier) and their log-likelihood ratios (0.0 until warm).
        self._e1 = self._e2 = self._e3 = self._e4 = self._e5 = 0.0
        self._l0 = self._l1 = self._l2 = self._l3 = self._l4 = self._l5 = 0.0

    def pause(self) -> None:
        """The agent is idle: the gap to its next action is not judged; the CUSUM restarts."""
        self._last_t = math.inf
        self._nats = 0.0
        self._fast = 0

    def observe(self, t: float) -> float:
        """``score_one`` then ``learn_one`` of ``{"t": t}`` in one step; returns the score."""
        if not math.isfinite(t):
            raise ValueError(f"t must be finite, got {t}")
        return self.step_to(t, math.floor(t / self.window_s))

    def step_to(self, t: float, window: int) -> float:
        """:meth:`observe` with the window already computed (the action rate, which counts in
        the same windows, calls this)."""
        current = self._window
        if current is not None and window < current:
            window = current  # a late action belongs to the open window
        if window != current:
            self._close(window)
        gap = t - self._last_t
        if gap < 0.0:  # after a pause (-inf) or a late action: not judged, teaches nothing
            if self._last_t == math.inf:
                self._last_t = t
            return 0.0
        self._last_t = t
        nats = self._nats
        if gap >= self._e5:  # the usual gaps: evidence against a flood, if any
            self._c5 += 1
            nats += self._l5
        elif gap >= self._e4:
            self._c4 += 1
            nats += self._l4
        elif gap >= self._e3:
            self._c3 += 1
            nats += self._l3
        else:  # faster than the agent's usual fastest
            self._fast += 1
            if gap >= self._e2:
                self._c2 += 1
                nats += self._l2
            elif gap >= self._e1:
                self._c1 += 1
                nats += self._l1
            else:
                self._c0 += 1
                nats += self._l0
            if nats > self.max_nats:
                nats = self.max_nats
        if nats <= 0.0:
            nats = 0.0
            self._fast = 0
        self._nats = nats
        if nats < self.hold_nats:  # a flood does not teach its own pace
            learned = self._gap
            if learned:
                self._gap = learned * (self._down if gap < learned else self._up)
                self._mean_gap += self.gap_alpha * (gap - self._mean_gap)
            else:
                self._gap = self._mean_gap = gap
            if self._settling:
                self._settling -= 1
                if not self._settling:
                    self._settled()
        return math.sqrt(2.0 * nats) if nats >= self._bar else 0.0

    def _settled(self) -> None:
        """The first gaps are learned: the step is ``step`` from now on."""
        self._down = math.exp(-self.step * (1.0 - self.quantile))
        self._up = math.exp(self.step * self.quantile)

    def _close(self, window: int) -> None:
        """Open ``window``; every ``refresh_windows`` windows, learn the tiers' counts and
        recompute their ratios."""
        current = self._window
        self._window = window
        if current is None:
            return
        self._n_windows += 1  # windows with an action: the warm-up counts only those
        self._since += 1
        if self._since < self.refresh_windows:
            return
        self._since = 0
        if self._nats < self.hold_nats:
            counts = (self._c0, self._c1, self._c2, self._c3, self._c4, self._c5)
            a = min(1.0, self.alpha * self.refresh_windows)
            per_window = 1.0 / self.refresh_windows
            shares = self._shares
            for j in range(_TIERS):
                shares[j] += a * (counts[j] * per_window - shares[j])
        self._c0 = self._c1 = self._c2 = self._c3 = self._c4 = self._c5 = 0
        self._refresh()

    def _refresh(self) -> None:
        """The tiers' edges from the learned quantile, and their log-likelihood ratios."""
        q, mean_gap = self._gap, self._mean_gap
        # No gap yet: every gap lands in the top tier (edges 0), adding 0.
        edges = (0.25 * q, 0.5 * q, q, 2.0 * q, 4.0 * q) if mean_gap else (0.0,) * 5
        self._e1, self._e2, self._e3, self._e4, self._e5 = edges
        if not (q and mean_gap and self.warm):
            self._l0 = self._l1 = self._l2 = self._l3 = self._l4 = self._l5 = 0.0
            return
        own = self._own_probabilities()
        # A flood's gaps: exponential at ``factor`` times the agent's mean rate.
        rate = self.factor / mean_gap
        below = [1.0 - math.exp(-rate * edge) for edge in edges] + [1.0]
        flood = [below[0]] + [below[j] - below[j - 1] for j in range(1, _TIERS)]
        llr = [math.log(max(f, _LEAST_FLOOD) / p) for f, p in zip(flood, own, strict=True)]
        self._l0, self._l1, self._l2 = llr[0], llr[1], llr[2]
        self._l3, self._l4, self._l5 = min(llr[3], 0.0), min(llr[4], 0.0), min(llr[5], 0.0)

    def _own_probabilities(self) -> list[float]:
        """Each tier's probability under the agent's own pace: ``quantile`` below ``q`` by
        construction, split as learned (floored, at most a quarter of it in each of the two
        fastest tiers), the rest as learned."""
        shares, fast = self._shares, self.quantile
        total = sum(shares) or 1.0
        p0 = min(max(shares[0] / total, _LEAST_FASTEST[0]), fast / 4)
        p1 = min(max(shares[1] / total, _LEAST_FASTEST[1]), fast / 4)
        slow = (shares[3] + shares[4] + shares[5]) or 1.0
        scale = (1.0 - fast) / slow
        return [p0, p1, fast - p0 - p1] + [max(shares[j] * scale, _LEAST_SLOW) for j in (3, 4, 5)]

    def learn_one(self, x: dict[str, Any]) -> None:
        """Learns the action at ``x["t"]`` (seconds, finite)."""
        self.observe(float(x["t"]))

    def score_one(self, x: dict[str, Any]) -> float:
        """Returns the score the action at ``x["t"]`` would get; never mutates the detector."""
        return copy.deepcopy(self).observe(float(x["t"]))

    def __setstate__(self, state: Any) -> None:
        slots = slots_of(state)
        if "_shares" not in slots:  # pickled before the CUSUM: it learns afresh, in step
            PaceDetector.__init__(
                self,
                window_s=slots["window_s"],
                quantile=slots["quantile"],
                step=slots["step"],
                warmup_windows=slots["warmup_windows"],
                report_z=slots["report_z"],
            )
            self._window = slots["_window"]
            return
        restore(self, slots)

    @property
    def paused(self) -> bool:
        """True from :meth:`pause` (and before the first action) until the next action."""
        return self._last_t == math.inf

    @property
    def gap_s(self) -> float:
        """The learned quantile of the agent's gaps between actions, in seconds (0.0: none)."""
        return self._gap

    @property
    def mean_gap_s(self) -> float:
        """The learned mean gap between the agent's actions, in seconds (0.0: none)."""
        return self._mean_gap

    @property
    def nats(self) -> float:
        """The CUSUM: how much likelier (in nats) the latest gaps are a flood's than the
        agent's own."""
        return self._nats

    @property
    def fast(self) -> int:
        """Gaps shorter than :attr:`gap_s` since the CUSUM last left 0."""
        return self._fast

    @property
    def warm(self) -> bool:
        """True once ``warmup_windows`` windows and 200 gaps have been learned."""
        return self._n_windows >= self.warmup_windows and not self._settling

    def __repr__(self) -> str:
        return (
            f"PaceDetector(window_s={self.window_s}, quantile={self.quantile}, "
            f"step={self.step}, factor={self.factor}, alpha={self.alpha}, "
            f"gap_alpha={self.gap_alpha}, max_nats={self.max_nats}, "
            f"hold_nats={self.hold_nats}, warmup_windows={self.warmup_windows}, "
            f"refresh_windows={self.refresh_windows}, report_z={self.report_z})"
        )
