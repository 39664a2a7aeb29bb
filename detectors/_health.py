"""Health: error bursts, slow decisions, goal progress stalled while actions continue."""

from __future__ import annotations

import hashlib
import math
from typing import Any, Final

from agentwatch.detectors._state import Pickled

__all__ = ["ErrorBurstDetector", "GoalStallDetector", "LatencyDetector"]


def binomial_tail_nats(k: int, n: int, p: float) -> float:
    """``-ln P(X >= k)`` for ``X ~ Binomial(n, p)``; 0.0 for ``k <= 0``."""
    if k <= 0:
        return 0.0
    if k > n:
        return math.inf
    q = 1.0 - p
    tail = sum(math.comb(n, i) * p**i * q ** (n - i) for i in range(k, n + 1))
    return -math.log(tail) if tail > 0 else math.inf


class ErrorBurstDetector(Pickled):
    """Scores the failed calls among an agent's last ``window`` calls against its error rate.

    ``score_one(x)`` is the binomial tail surprise, in nats, of the number of failures in the last
    ``window`` calls (``x`` included) given the learned error rate ``p`` (an exponentially
    weighted share of failed calls, at least ``min_rate``, starting from ``prior_rate``):
    ``-ln P(Binomial(window, p) >= failures)``. 0.0 during the first ``warmup`` calls. Failures
    scored at or above ``learn_below_nats`` are not learned into the rate, so a burst does not
    teach its own baseline.

    State: the indexes of the failures within the window and the rate: well under a KiB. A call
    that does not fail costs O(1) and no arithmetic beyond a counter. Not thread-safe; no I/O.

    Args:
        window: Calls looked back over (>= 2).
        alpha: Fading factor of the error rate, per call, in (0, 1).
        prior_rate: Error rate assumed before any learning.
        min_rate: Least error rate scored against, in (0, 1).
        warmup: Calls learned before scores are given.
        learn_below_nats: Failures scoring at or above this are not learned.

    Example:
        >>> from agentwatch.detectors import ErrorBurstDetector
        >>> detector = ErrorBurstDetector()
        >>> for i in range(500):  # 2 % of calls fail
        ...     detector.learn_one({"error": i % 50 == 0})
        >>> for _ in range(7):
        ...     detector.learn_one({"error": True})
        >>> detector.score_one({"error": True}) > 14
        True
    """

    __slots__ = (
        "_failures",
        "_rate",
        "_rate_at",
        "alpha",
        "learn_below_nats",
        "min_rate",
        "n",
        "prior_rate",
        "warmup",
        "window",
    )

    def __init__(
        self,
        window: int = 20,
        alpha: float = 0.005,
        prior_rate: float = 0.02,
        min_rate: float = 0.01,
        warmup: int = 100,
        learn_below_nats: float = 7.0,
    ) -> None:
        if window < 2:
            raise ValueError(f"window must be >= 2, got {window}")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if not 0 <= prior_rate < 1:
            raise ValueError(f"prior_rate must be in [0, 1), got {prior_rate}")
        if not 0 < min_rate < 1:
            raise ValueError(f"min_rate must be in (0, 1), got {min_rate}")
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        self.window = window
        self.alpha = alpha
        self.prior_rate = prior_rate
        self.min_rate = min_rate
        self.warmup = warmup
        self.learn_below_nats = learn_below_nats
        self.n = 0  # calls seen
        self._failures: list[int] = []  # indexes (1-based) of failed calls within the window
        self._rate = prior_rate
        self._rate_at = 0  # the call index ``_rate`` is up to date at

    def learn_one(self, x: dict[str, Any]) -> None:
        """Counts one call. Args: x: ``{"error": bool}``."""
        if x["error"]:
            self.fail()
        else:
            self.n += 1

    def score_one(self, x: dict[str, Any]) -> float:
        """The surprise (nats) of the window's failures with ``x``; never mutates."""
        n = self.n + 1
        failures = sum(1 for i in self._failures if i > n - self.window) + bool(x["error"])
        return self._score(failures, n)

    def fail(self, n: int | None = None) -> tuple[float, int, float]:
        """Score then learn one failed call, the pipeline's path.

        Args:
            n: The caller's running total of the agent's calls, this one included, instead of
                counting successful calls one by one (the pipeline keeps one counter per agent).

        Returns:
            (score in nats, failures in the window, the error rate scored against).
        """
        n = self.n = self.n + 1 if n is None else n
        oldest = n - self.window
        failures = [i for i in self._failures if i > oldest]
        failures.append(n)
        self._failures = failures
        rate = self.rate
        score = self._score(len(failures), n)
        if score < self.learn_below_nats:
            self._rate = self._rate * (1 - self.alpha) ** (n - self._rate_at) + self.alpha
            self._rate_at = n
        return score, len(failures), max(rate, self.min_rate)

    @property
    def rate(self) -> float:
        """The learned error rate as of the last call."""
        return self._rate * (1 - self.alpha) ** (self.n - self._rate_at)

    def _score(self, failures: int, n: int) -> float:
        if n <= self.warmup or failures < 2:
            return 0.0
        rate = max(self._rate * (1 - self.alpha) ** (n - 1 - self._rate_at), self.min_rate)
        return binomial_tail_nats(failures, self.window, rate)

    def __repr__(self) -> str:
        return (
            f"ErrorBurstDetector(window={self.window}, alpha={self.alpha}, "
            f"prior_rate={self.prior_rate}, min_rate={self.min_rate}, warmup={self.warmup}, "
            f"learn_below_nats={self.learn_below_nats})"
        )


class LatencyDetector(Pickled):
    """Counts consecutive decisions much slower than the agent's usual decision latency.

    Latencies are compared on a log scale (they are roughly log-normal), floored at
    ``floor_s`` so that instantaneous decisions do not make a hair trigger. A decision is slow
    when its z-score against the exponentially weighted mean and standard deviation (at least
    ``min_std``) of log latency reaches ``slow_z``. ``score_one(x)`` is the length the current run
    of slow decisions would have with ``x`` (0.0 when ``x`` is not slow, or during the first
    ``warmup`` decisions). Slow decisions are learned at a tenth of the rate: a lasting change is
    learned eventually, a burst barely moves the baseline.

    State: a handful of floats. Not thread-safe; no I/O.

    Args:
        alpha: Fading factor of the baseline, per decision, in (0, 1).
        slow_z: z-score of log latency that makes a decision slow.
        min_std: Least standard deviation of log latency scored against.
        floor_s: Latencies below this count as this (s).
        warmup: Decisions learned before scores are given.

    Example:
        >>> import math
        >>> from agentwatch.detectors import LatencyDetector
        >>> detector = LatencyDetector()
        >>> for i in range(200):
        ...     detector.learn_one({"duration_s": 0.2 * math.exp(0.3 * math.sin(i))})
        >>> for _ in range(3):
        ...     detector.learn_one({"duration_s": 2.0})
        >>> detector.score_one({"duration_s": 2.0})  # the 4th slow decision in a row
        4.0
    """

    __slots__ = ("_mean", "_n", "_run", "_run_log_sum", "_var", "alpha", "floor_s", "min_std",
                 "slow_z", "warmup")  # fmt: skip

    def __init__(
        self,
        alpha: float = 0.02,
        slow_z: float = 2.5,
        min_std: float = 0.35,
        floor_s: float = 0.05,
        warmup: int = 50,
    ) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if not slow_z > 0:
            raise ValueError(f"slow_z must be > 0, got {slow_z}")
        if not min_std > 0:
            raise ValueError(f"min_std must be > 0, got {min_std}")
        if not floor_s > 0:
            raise ValueError(f"floor_s must be > 0, got {floor_s}")
        self.alpha = alpha
        self.slow_z = slow_z
        self.min_std = min_std
        self.floor_s = floor_s
        self.warmup = warmup
        self._mean = 0.0
        self._var = 0.0
        self._n = 0
        self._run = 0  # consecutive slow decisions
        self._run_log_sum = 0.0  # their summed log latency, for evidence

    def learn_one(self, x: dict[str, Any]) -> None:
        """Learns one decision. Args: x: ``{"duration_s": float}``; 0 or less is skipped."""
        self.observe(float(x["duration_s"]))

    def score_one(self, x: dict[str, Any]) -> float:
        """The slow run ``x`` would make; never mutates."""
        duration = float(x["duration_s"])
        if not duration > 0 or not math.isfinite(duration):
            return 0.0
        return float(self._run + 1) if self._z(math.log(max(duration, self.floor_s))) else 0.0

    def observe(self, duration_s: float) -> tuple[float, float, float]:
        """``score_one`` then ``learn_one``, the pipeline's path.

        Returns:
            (score, the slow run's median-ish latency in s, the usual median latency in s).
        """
        if not duration_s > 0 or not math.isfinite(duration_s):
            return 0.0, 0.0, 0.0
        x = math.log(max(duration_s, self.floor_s))
        slow = self._z(x)
        usual = math.exp(self._mean)
        if slow:
            self._run += 1
            self._run_log_sum += x
        else:
            self._run = 0
            self._run_log_sum = 0.0
        a = self.alpha / 10 if slow else self.alpha
        if not self._n:
            self._mean = x
        else:
            diff = x - self._mean
            self._mean += a * diff
            self._var = (1 - a) * (self._var + a * diff * diff)
        self._n += 1
        if not slow:
            return 0.0, 0.0, usual
        return float(self._run), math.exp(self._run_log_sum / self._run), usual

    def _z(self, x: float) -> bool:
        if self._n < self.warmup:
            return False
        std = max(math.sqrt(self._var), self.min_std)
        return (x - self._mean) / std >= self.slow_z

    @property
    def run(self) -> int:
        return self._run

    def __repr__(self) -> str:
        return (
            f"LatencyDetector(alpha={self.alpha}, slow_z={self.slow_z}, min_std={self.min_std}, "
            f"floor_s={self.floor_s}, warmup={self.warmup})"
        )


_MAX_GOAL_CHARS: Final = 64


class GoalStallDetector(Pickled):
    """Counts actions since the agent's current goal last progressed.

    Goal progress events (``agentwatch.goal_progress``: a goal id and a progress in 0..1) set the
    current goal; a higher progress for it resets the count; a new goal id starts afresh; a goal
    at 1.0 is done and disarms the count until the next goal. ``score_one`` of an action is the
    count with it, as a multiple of the stall threshold: actions since the last progress divided
    by ``max(min_actions, factor * typical)``, where ``typical`` is the learned (exponentially
    weighted) number of actions between progress steps. Progress events score 0.0. An agent that
    never reports goals is never scored.

    State: the goal id (digested beyond 64 characters) and a few numbers. Not thread-safe.

    Args:
        min_actions: Least actions without progress that make a stall.
        factor: A stall is also this many times the typical actions per progress step.
        alpha: Fading factor of the typical step, in (0, 1).

    Example:
        >>> from agentwatch.detectors import GoalStallDetector
        >>> detector = GoalStallDetector()
        >>> for step in range(1, 6):
        ...     detector.learn_one({"goal": "g1", "progress": step / 10})
        ...     detector.learn_one({})  # an action
        >>> for _ in range(11):
        ...     detector.learn_one({})  # actions, no progress
        >>> detector.score_one({})  # the 12th action without progress
        1.0
    """

    __slots__ = ("_base", "_goal", "_progress", "_typical", "actions", "alpha", "armed", "factor",
                 "min_actions", "since_ns")  # fmt: skip

    def __init__(self, min_actions: int = 12, factor: float = 4.0, alpha: float = 0.05) -> None:
        if min_actions < 1:
            raise ValueError(f"min_actions must be >= 1, got {min_actions}")
        if not factor > 0:
            raise ValueError(f"factor must be > 0, got {factor}")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        self.min_actions = min_actions
        self.factor = factor
        self.alpha = alpha
        self.actions = 0  # since the last progress
        self._base = 0  # the caller's action total at the last progress (progress_to's)
        self.armed = False  # a goal is in progress
        self._goal = ""
        self._progress = 0.0
        self._typical = 1.0
        self.since_ns = 0  # event time of the last progress

    def catch_up(self, actions: int) -> None:
        """Brings ``actions`` up to date from the caller's running total (``progress_to``'s)."""
        self.actions = actions - self._base

    def deadline(self, actions: int) -> float:
        """The caller's action total at which, without progress, the goal stalls."""
        return actions - self.actions + math.ceil(self.limit)

    @property
    def limit(self) -> float:
        """Actions without progress that make a stall."""
        return max(float(self.min_actions), self.factor * self._typical)

    @property
    def progress(self) -> float:
        return self._progress

    @property
    def goal(self) -> str:
        return self._goal

    def learn_one(self, x: dict[str, Any]) -> None:
        """An action (``{}``) or a progress report (``{"goal": str, "progress": float}``)."""
        if "goal" in x:
            self.progress_to(str(x["goal"]), float(x["progress"]), int(x.get("t_ns", 0)))
        else:
            self.actions += 1

    def score_one(self, x: dict[str, Any]) -> float:
        """Actions without progress, with ``x``, over the limit; 0.0 for progress reports."""
        if "goal" in x or not self.armed:
            return 0.0
        return (self.actions + 1) / self.limit

    def progress_to(
        self, goal: str, progress: float, t_ns: int = 0, actions: int | None = None
    ) -> None:
        """Learns one progress report.

        Args:
            goal: The goal id.
            progress: Its progress, 0..1.
            t_ns: Event time.
            actions: The caller's running total of the agent's actions, instead of counting them
                one by one with ``learn_one`` (the pipeline keeps one counter per agent).
        """
        if actions is not None:
            self.actions = actions - self._base
        if len(goal) > _MAX_GOAL_CHARS:
            goal = hashlib.blake2b(goal.encode(), digest_size=16).hexdigest()
        if goal != self._goal or progress > self._progress:
            if goal == self._goal and self.actions:
                self._typical += self.alpha * (self.actions - self._typical)
            self._goal, self._progress = goal, progress
            self.actions, self.since_ns = 0, t_ns
            if actions is not None:
                self._base = actions
        self.armed = self._progress < 1.0

    def __repr__(self) -> str:
        return (
            f"GoalStallDetector(min_actions={self.min_actions}, factor={self.factor}, "
            f"alpha={self.alpha})"
        )
