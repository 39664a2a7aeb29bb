"""Agent count: a cohort losing many of its agents at once, judged on the liveness timer.

Missed heartbeats (``_liveness``) flag each lost agent; this flags the cohort (``service.name``)
when many of its agents are lost together, which points at a shared cause (a node, a deploy, a
dependency) rather than at one agent. Like missed heartbeats it runs on a tick: the caller counts
each cohort's agents and hands the counts over, one detector per cohort.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agentwatch.detectors._types import Anomaly, Severity

__all__ = ["AGENT_COUNT", "COHORT_AGENT", "AgentCountDetector"]

AGENT_COUNT = "agent_count"
"""The detector's name. ``agentwatch.alerts`` lists it among the cohort detectors, whose
anomalies call for no per-agent command (no breaker, no rollback)."""

COHORT_AGENT = "*"
"""The ``agent`` of an agent-count anomaly: it concerns every agent of its ``service``."""

MAX_LISTED = 10
"""Lost agents named in the evidence; the count says how many there were."""


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class _Census:
    t_ns: int
    live: int
    level: int  # the highest live count within the window before this tick
    lost: dict[str, int]  # agents lost within the window -> deadline they missed
    need: int  # lost agents that make a drop
    score: float


class AgentCountDetector:
    """Flags a sharp drop in one cohort's live agents, when the agents were lost, not stopped.

    Each tick, ``x`` holds ``t_ns`` (the tick's time), ``live`` (the cohort's agents whose last
    heartbeat is within its deadline and that have not reported ``stopped``) and ``lost`` (agent
    id -> the deadline it missed, in ns, for the cohort's agents that went silent without
    stopping; older ones are ignored, so the caller may pass all of them). Agents that stop
    cleanly are in neither: a cohort scaled down on purpose lowers ``live`` without losses.

    A drop needs, within ``window_s``, both ``need`` agents lost and the live count ``need``
    below its highest value, where ``need = max(min_lost, ceil(min_fraction * before))`` and
    ``before`` is ``live`` plus those lost. The score is ``min(lost, fall) / need`` (``fall``:
    the highest live count minus ``live``), so a drop scores >= 1.0. Defaults, and why:

    - ``window_s=60``: the losses of one event are declared within one heartbeat interval of
      each other (the SDK beats every 5 s; missed deadlines trail the last beats by the same
      ``misses * interval``), with room for intervals up to about a minute; churn slower than
      that is per-agent liveness's business.
    - ``min_lost=2``: one agent's loss is what per-agent liveness reports, so a cohort of two or
      three agents needs two of them gone before this speaks too.
    - ``min_fraction=0.25``: a quarter of a cohort gone within a minute is a fleet problem;
      fewer is left to per-agent liveness (in a cohort of 100, 25 agents).
    - Requiring the fall as well as the losses keeps churn quiet: crashed agents replaced by
      new ones within the window do not lower the count.
    - ``settle_s=600``: once raised, the detector re-arms when the count recovers (climbs back
      above the level it fell from less ``need``), or when it has not fallen further for
      ``settle_s``: a cohort that stays smaller is its new normal, and a later drop from there
      is a new event. Until then it stays quiet, however many more agents are lost.
    - ``severity=WARNING``: a fleet signal for people; the lost agents' own CRITICAL liveness
      anomalies drive per-agent remediation.

    The anomaly's ``agent`` is :data:`COHORT_AGENT` and its ``service`` the cohort; its onset is
    the earliest deadline the lost agents missed; its evidence gives the live count now and
    before, the lost agents (up to :data:`MAX_LISTED`, earliest first) and what was expected.

    State is a few integers and the window's falling maxima of the live count, so it pickles
    small. Not thread-safe; non-blocking.

    Args:
        window_s: How close together losses must be, and how far back the count's level looks.
        min_lost: The fewest lost agents that make a drop (>= 1).
        min_fraction: The least share of the cohort's agents that makes a drop, in (0, 1].
        settle_s: Time without a further fall after which a raised drop re-arms (>= window_s;
            ``math.inf``: only a recovery re-arms).
        severity: The anomaly's severity.
        id_factory: Makes ``Anomaly.id`` (a module-level function, so the detector pickles).

    Raises:
        ValueError: A parameter is out of range; the message names it.

    >>> detector = AgentCountDetector(id_factory=lambda: "a1")
    >>> s = 1_000_000_000
    >>> for t in range(5):  # twenty agents, all alive
    ...     assert detector.observe("workers", {"t_ns": t * s, "live": 20, "lost": {}}) is None
    >>> lost = {f"w{i}": 4 * s + i for i in range(6)}  # six missed their deadlines at once
    >>> x = {"t_ns": 5 * s, "live": 14, "lost": lost}
    >>> detector.score_one(x)
    1.2
    >>> anomaly = detector.observe("workers", x)
    >>> anomaly.agent, anomaly.service, anomaly.detector, anomaly.onset_ns == 4 * s
    ('*', 'workers', 'agent_count', True)
    >>> print(anomaly.summary)
    6 of 20 agents of workers lost within 60 s: live 20 -> 14 (w0, w1, w2, w3, w4, w5)
    >>> detector.observe("workers", {"t_ns": 6 * s, "live": 13, "lost": lost}) is None  # raised
    True
    """

    def __init__(
        self,
        *,
        window_s: float = 60.0,
        min_lost: int = 2,
        min_fraction: float = 0.25,
        settle_s: float = 600.0,
        severity: Severity = Severity.WARNING,
        id_factory: Callable[[], str] = _new_id,
    ) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        if min_lost < 1:
            raise ValueError(f"min_lost must be >= 1, got {min_lost}")
        if not 0 < min_fraction <= 1:
            raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}")
        if not settle_s >= window_s:
            raise ValueError(f"settle_s must be >= window_s ({window_s}), got {settle_s}")
        self.window_s = window_s
        self.min_lost = min_lost
        self.min_fraction = min_fraction
        self.settle_s = settle_s
        self.severity = severity
        self.id_factory = id_factory
        # (t_ns, live) with live strictly falling: the front is the window's highest count.
        self._peaks: deque[tuple[int, int]] = deque()
        self._raised = False
        self._floor = 0  # while raised: a live count above it is a recovery
        self._low = 0  # while raised: the lowest live count since, and when it was reached
        self._low_ns = 0

    # --- river's verbs -----------------------------------------------------------------------
    def score_one(self, x: Mapping[str, Any]) -> float:
        """``min(lost, fall) / need`` for this tick (>= 1.0: a drop); changes nothing."""
        return self._census(x).score

    def learn_one(self, x: Mapping[str, Any]) -> None:
        """Take in one tick's count: the level's window and the raised drop's hysteresis."""
        self._learn(self._census(x))

    # --- the service's verb ------------------------------------------------------------------
    def observe(self, service: str, x: Mapping[str, Any]) -> Anomaly | None:
        """Score, then learn, one tick of cohort ``service``; an anomaly when a drop starts."""
        census = self._census(x)
        fire = census.score >= 1.0 and not self._raised
        self._learn(census)
        return self._anomaly(service, census) if fire else None

    # --- internals ---------------------------------------------------------------------------
    def _census(self, x: Mapping[str, Any]) -> _Census:
        t_ns, live = int(x["t_ns"]), int(x["live"])
        since_ns = t_ns - int(self.window_s * 1e9)
        lost = {a: int(d) for a, d in x.get("lost", {}).items() if since_ns <= d <= t_ns}
        level = next((n for t, n in self._peaks if t >= since_ns), live)
        need = max(self.min_lost, math.ceil(self.min_fraction * (live + len(lost)) - 1e-9))
        fall = max(0, level - live)
        return _Census(t_ns, live, level, lost, need, round(min(len(lost), fall) / need, 3))

    def _learn(self, c: _Census) -> None:
        if self._raised:
            if c.live > self._floor:
                self._raised = False  # recovered
            elif c.live < self._low:
                self._low, self._low_ns = c.live, c.t_ns  # still falling
            elif c.t_ns - self._low_ns >= self.settle_s * 1e9:
                self._raised = False  # settled at a new level
        elif c.score >= 1.0:
            self._raised = True
            self._floor = c.level - c.need
            self._low, self._low_ns = c.live, c.t_ns
        peaks = self._peaks
        while peaks and peaks[-1][1] <= c.live:
            peaks.pop()
        peaks.append((c.t_ns, c.live))
        since_ns = c.t_ns - int(self.window_s * 1e9)
        while peaks[0][0] < since_ns:
            peaks.popleft()

    def _anomaly(self, service: str, c: _Census) -> Anomaly:
        lost = sorted(c.lost.items(), key=lambda item: (item[1], item[0]))
        named = [agent for agent, _ in lost[:MAX_LISTED]]
        more = f", and {len(lost) - len(named)} more" if len(lost) > len(named) else ""
        before = c.live + len(lost)
        return Anomaly(
            id=self.id_factory(),
            agent=COHORT_AGENT,
            service=service,
            detector=AGENT_COUNT,
            score=c.score,
            threshold=1.0,
            severity=self.severity,
            onset_ns=lost[0][1],
            detected_ns=c.t_ns,
            evidence={
                "summary": (
                    f"{len(lost)} of {before} agents of {service} lost within "
                    f"{self.window_s:g} s: live {c.level} -> {c.live} ({', '.join(named)}{more})"
                ),
                "live": c.live,
                "live_before": c.level,
                "lost": len(lost),
                "lost_agents": named,
                "window_s": self.window_s,
                "expected": (
                    f"fewer than {c.need} agents lost within {self.window_s:g} s "
                    f"(max({self.min_lost}, {self.min_fraction:.0%} of {before})), "
                    "or the live count held up by new agents"
                ),
            },
        )
