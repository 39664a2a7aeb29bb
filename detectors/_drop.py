"""Action frequency, downwards: drops and stalls while heartbeats go on."""

from __future__ import annotations

import math
from typing import Any, Final

from agentwatch.detectors._state import Pickled, restore, slots_of

__all__ = ["ActivityDropDetector"]

_RUNNING: Final = "running"
_MAX_SHARE: Final = 0.5  # max_share's default (also for older pickles)
# Actions after which a fallback is the agent's own (the rate's alpha 0.1).
_OWN_ACTIONS: Final = 150


class ActivityDropDetector(Pickled):
    """Scores how far an agent's recent actions fall below its usual rate while it says it runs.

    An agent that stops acting sends no event to score, but its heartbeats go on: they are this
    detector's clock. Actions are counted between consecutive heartbeats (a *period*). A period
    counts only when the heartbeats at both its ends report status ``running`` (an ``idle`` or
    ``paused`` agent is not expected to act; a missing status counts as running); anything else
    clears the recent periods. The baseline is an exponentially weighted mean of the action rate
    over running periods, and of their dispersion (variance over mean of the counts, at least 1:
    real agents are burstier than a Poisson process).

    ``score_one`` at a heartbeat is, over the most recent 2 to ``periods`` running periods, the
    largest Poisson rate-function surprise of seeing ``c`` actions where ``mu`` were expected,
    divided by the dispersion: ``(mu - c + c ln(c / mu)) / dispersion`` nats for ``c < mu``
    (``mu / dispersion`` for ``c = 0``, a stall). Actions score 0.0. The score is 0.0 until
    ``warmup_periods`` periods are learned (unless :meth:`beat` is given a ``fallback``).

    Once warm, a period is learned only when it leaves the look-back (``periods`` heartbeats
    later, or when a non-running status ends the look-back), so the baseline a look-back is
    judged against never contains that look-back's own periods: a slow agent's drop (a few
    actions per period, a fraction of a nat each) needs many periods to add up, and a baseline
    learning each of them as it closes would follow the drop down before it added up. A period
    leaving while the look-back scores at least ``learn_below_nats`` is not learned, so a drop
    does not teach the baseline that it is normal; nor is a period far above the usual rate (a
    spike), for up to ``hold_periods`` in a row.

    State: the baseline (four floats), the counts of the last ``periods`` periods and the current
    one's, with the ``fallback`` each opened with: under a KiB. O(1) per action, O(``periods``)
    per heartbeat. Not thread-safe.

    Args:
        periods: Most recent periods looked back over (>= 2).
        alpha: Fading factor of the baseline, per period, in (0, 1].
        warmup_periods: Learned periods before scores are given.
        learn_below_nats: Periods scoring at or above this are not learned.
        hold_periods: Most outlier periods in a row kept out of the baseline.
        max_share: A look-back scores only when it saw at most this share of the actions
            expected: a drop is a fall to a fraction of the usual rate, not a slow hour (over
            a minute of a busy agent, 30 % fewer actions than usual is already improbable
            under a Poisson model, and common on a real one's load cycle).

    Example:
        >>> from agentwatch.detectors import ActivityDropDetector
        >>> detector = ActivityDropDetector()
        >>> for second in range(60):  # 3 actions per second, a heartbeat every second
        ...     detector.learn_one({"t": second, "heartbeat": True, "status": "running"})
        ...     for k in range(3):
        ...         detector.learn_one({"t": second + k / 3})
        >>> for second in range(60, 70):  # actions stop; heartbeats go on
        ...     detector.learn_one({"t": second, "heartbeat": True, "status": "running"})
        >>> detector.score_one({"t": 70, "heartbeat": True, "status": "running"}) > 12
        True
    """

    __slots__ = (
        "_acted",
        "_base",
        "_bases",
        "_counts",
        "_held",
        "_last_beat",
        "_lengths",
        "_mean_count",
        "_n",
        "_open",
        "_rate",
        "_unlearned",
        "_var_count",
        "alpha",
        "count",
        "hold_periods",
        "learn_below_nats",
        "max_share",
        "periods",
        "warmup_periods",
    )

    def __init__(
        self,
        periods: int = 16,
        alpha: float = 0.05,
        warmup_periods: int = 10,
        learn_below_nats: float = 12.0,
        hold_periods: int = 30,
        max_share: float = _MAX_SHARE,
    ) -> None:
        if periods < 2:
            raise ValueError(f"periods must be >= 2, got {periods}")
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if warmup_periods < 1:
            raise ValueError(f"warmup_periods must be >= 1, got {warmup_periods}")
        if not 0 < max_share < 1:
            raise ValueError(f"max_share must be in (0, 1), got {max_share}")
        if not learn_below_nats > 0:
            raise ValueError(f"learn_below_nats must be > 0, got {learn_below_nats}")
        self.periods = periods
        self.alpha = alpha
        self.warmup_periods = warmup_periods
        self.learn_below_nats = learn_below_nats
        self.hold_periods = hold_periods
        self.max_share = max_share
        self._held = 0  # outlier periods in a row, not learned
        self.count = 0  # actions since the last heartbeat (learn_one's count)
        self._base = 0  # the caller's action total at the last heartbeat (beat's ``actions``)
        self._last_beat = math.nan  # seconds; NaN before the first running heartbeat
        self._counts: list[int] = []  # recent running periods' counts, newest last
        self._lengths: list[float] = []  # and their lengths in seconds
        # and the fallback (rate per second, dispersion) each opened with; (0, 0): none
        self._bases: list[tuple[float, float]] = []
        self._open = (0.0, 0.0)  # the fallback the open period started with
        self._acted = 0  # actions in closed periods, up to _OWN_ACTIONS
        self._rate = 0.0  # actions per second
        self._mean_count = 0.0
        self._var_count = 0.0
        self._n = 0
        self._unlearned = 0  # the newest periods of the look-back not learned yet

    def __setstate__(self, state: Any) -> None:
        state = slots_of(state)
        if "_bases" not in state:  # pickled before the look-back kept its baselines: restart it
            state = {
                **state,
                **{"_counts": [], "_lengths": [], "_bases": [], "_open": (0.0, 0.0)},
                "_acted": _OWN_ACTIONS,
            }
        # pickled when every period was learned at once, and any shortfall scored
        restore(self, {"_unlearned": 0, "max_share": _MAX_SHARE, **state})

    @property
    def warm(self) -> bool:
        return self._n >= self.warmup_periods

    @property
    def rate(self) -> float:
        """Learned actions per second over running periods."""
        return self._rate

    def learn_one(self, x: dict[str, Any]) -> None:
        """Counts an action, or closes a period at a heartbeat.

        Args:
            x: ``{"t": seconds}`` for an action; ``{"t": seconds, "heartbeat": True, "status":
                str}`` for a heartbeat.
        """
        if x.get("heartbeat"):
            self.beat(float(x["t"]), str(x.get("status", _RUNNING)))
        else:
            self.count += 1

    def score_one(self, x: dict[str, Any]) -> float:
        """The surprise (nats) of the recent periods if ``x``, a heartbeat, closed one; actions
        score 0.0. Never mutates the detector."""
        if not x.get("heartbeat"):
            return 0.0
        counts, lengths, bases = self._with_period(float(x["t"]), str(x.get("status", _RUNNING)))
        return self._surprise(counts, lengths, bases)[0]

    def beat(
        self,
        t: float,
        status: str,
        fallback: tuple[float, float] | None = None,
        actions: int | None = None,
    ) -> tuple[float, int, float, float]:
        """``score_one`` then ``learn_one`` of a heartbeat, the pipeline's path.

        Args:
            t: Event time (s).
            status: The heartbeat's agent status ("" when absent: running).
            fallback: (actions per second, dispersion) of another estimate of the agent's
                working rate (the pipeline passes the action-rate detector's); scored against
                when this detector is not warm or its own rate is lower. An agent that works in
                bursts shorter than its heartbeat interval shows few running periods, and those
                few are not typical; the action-rate detector still knows its working rate. That
                estimate learns every window within seconds, a drop's too: each look-back is
                judged against the fallback as it stood when its first period opened.
            actions: The caller's running total of the agent's actions, instead of counting
                them one by one with ``learn_one`` (the pipeline keeps one counter per agent).

        Returns:
            (score in nats, actions seen, actions expected, seconds looked back over) of the
            most surprising look-back; zeros when nothing was scored.
        """
        if actions is not None:
            self.count = actions - self._base
        running = status in (_RUNNING, "")
        if running and t <= self._last_beat:  # False while _last_beat is NaN
            return 0.0, 0, 0.0, 0.0  # a duplicate or late beat: nothing closes, keep counting
        counts, lengths, bases = self._with_period(t, status)
        score, seen, expected, span = self._surprise(counts, lengths, bases, fallback)
        self._learn_closed(counts, lengths, score)
        self._counts, self._lengths, self._bases = counts, lengths, bases
        if self._acted < _OWN_ACTIONS:
            self._acted += max(self.count, 0)
        self._open = self._opening(fallback) if running else (0.0, 0.0)
        self._last_beat = t if running else math.nan
        self.count = 0
        if actions is not None:
            self._base = actions
        return score, seen, expected, span

    def clear_recent(self) -> None:
        """Forgets the recent periods (not the baseline): the next look-back starts now.

        The pipeline calls it when a raised drop ends, so that the periods of that drop, still
        in the look-back for up to ``periods`` heartbeats, do not raise it a second time.
        """
        self._counts, self._lengths, self._bases = [], [], []
        self._unlearned = 0  # the drop's periods: not to be learned

    def _learn_closed(self, counts: list[int], lengths: list[float], score: float) -> None:
        """Learns what a heartbeat closed: the new period (``counts[-1]``) at once while not
        warm; once warm, the period the look-back drops (when it is full) or, when a non-running
        status empties it, every period not learned yet."""
        old_counts, old_lengths, pending = self._counts, self._lengths, self._unlearned
        if not counts:  # the look-back ends: its periods are no longer judged
            for k in range(min(pending, len(old_counts)), 0, -1):
                self._maybe_learn(old_counts[-k], old_lengths[-k], score)
            self._unlearned = 0
            return
        if counts is old_counts:  # a duplicate or late beat: nothing closed
            return
        if pending >= self.periods:  # the look-back is full of unlearned periods: drop its oldest
            self._maybe_learn(old_counts[0], old_lengths[0], score)
            pending -= 1
        if self._n < self.warmup_periods:
            self._maybe_learn(counts[-1], lengths[-1], score)
        else:
            pending += 1
        self._unlearned = min(pending, len(counts))

    def _with_period(
        self, t: float, status: str
    ) -> tuple[list[int], list[float], list[tuple[float, float]]]:
        """The recent periods as they would be after a heartbeat at ``t`` with ``status``."""
        if status not in (_RUNNING, "") or math.isnan(self._last_beat):
            return [], [], []
        length = t - self._last_beat
        if not length > 0:  # a duplicate or late beat: nothing closes
            return self._counts, self._lengths, self._bases
        keep = self.periods - 1
        return (
            [*self._counts[-keep:], self.count],
            [*self._lengths[-keep:], length],
            [*self._bases[-keep:], self._open],
        )

    def _opening(self, fallback: tuple[float, float] | None) -> tuple[float, float]:
        """The fallback a period opening now is judged against, kept only while this detector
        is not warm (once it is, its own baseline holds drops out and the current fallback is
        used as it stands), and only once the agent has acted ``_OWN_ACTIONS`` times: a new
        agent's fallback may still be its cohort's rate, not its own."""
        if fallback is None or self._n >= self.warmup_periods or self._acted < _OWN_ACTIONS:
            return 0.0, 0.0
        return fallback[0], max(1.0, fallback[1])

    def _own(self) -> tuple[float, float]:
        """(actions per second, dispersion) learned; (0, 0) until warm."""
        if self._n < self.warmup_periods or not self._rate > 0:
            return 0.0, 0.0
        dispersion = max(1.0, self._var_count / self._mean_count) if self._mean_count else 1.0
        return self._rate, dispersion

    def _surprise(
        self,
        counts: list[int],
        lengths: list[float],
        bases: list[tuple[float, float]],
        fallback: tuple[float, float] | None = None,
    ) -> tuple[float, int, float, float]:
        if len(counts) < 2:
            return 0.0, 0, 0.0, 0.0
        own = self._own()
        now = (fallback[0], max(1.0, fallback[1])) if fallback is not None else (0.0, 0.0)
        best = (0.0, 0, 0.0, 0.0)
        seen, span = 0, 0.0
        for k in range(1, len(counts) + 1):
            seen += counts[-k]
            span += lengths[-k]
            if k < 2:
                continue
            for rate, dispersion in (own, bases[-k] if bases[-k][0] > 0 else now):
                expected = rate * span
                if rate <= 0 or seen > self.max_share * expected:  # no estimate, or no drop
                    continue
                nats = expected - seen + (seen * math.log(seen / expected) if seen else 0.0)
                nats /= dispersion
                if nats > best[0]:
                    best = (nats, seen, expected, span)
        return best

    def _maybe_learn(self, count: int, length: float, score: float) -> None:
        """Learns a period unless it is an outlier (a drop scoring ``learn_below_nats``, or a
        burst above four standard deviations, and the periods after it at twice the usual rate
        or more: a rate spike must not teach the baseline a rate the agent will then seem to drop
        from); after ``hold_periods`` outliers in a row the change is taken as lasting and
        learned."""
        if self._n >= self.warmup_periods:
            expected = self._rate * length
            dispersion = max(1.0, self._var_count / self._mean_count) if self._mean_count else 1.0
            high = count > expected + 4.0 * math.sqrt(max(dispersion * expected, 1.0))
            # A run of outliers goes on while its periods stay at twice the usual rate: one
            # less far out, if learned, raises the bar for the next, and the baseline would
            # climb to a long spike's rate, from which the usual rate after it is a drop.
            high = high or (self._held > 0 and count > 2.0 * expected)
            if (high or score >= self.learn_below_nats) and self._held < self.hold_periods:
                self._held += 1
                return
        self._held = 0
        self._learn(count, length)

    def _learn(self, count: int, length: float) -> None:
        a = max(self.alpha, 1.0 / (self._n + 1))  # a plain mean while warming up
        self._rate += a * (count / length - self._rate)
        diff = count - self._mean_count
        self._mean_count += a * diff
        self._var_count = (1 - a) * (self._var_count + a * diff * diff)
        self._n += 1

    def __repr__(self) -> str:
        return (
            f"ActivityDropDetector(periods={self.periods}, alpha={self.alpha}, "
            f"warmup_periods={self.warmup_periods}, learn_below_nats={self.learn_below_nats}, "
            f"hold_periods={self.hold_periods}, max_share={self.max_share})"
        )
