"""Liveness by timer: an agent is lost when its heartbeats stop, not on an event.

Runs on the service's maintenance tick over the agent registry; each agent's own heartbeat
interval (from its heartbeat spans) sets its deadline. Two rules, both in
``agentwatch.detectors``: missed heartbeats per agent (shared with the scenario backtest) and the
agent count per cohort (many of a cohort's agents lost together, a warning for people).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from agentwatch.detectors import AgentCountDetector, Anomaly
from agentwatch.detectors._liveness import LIVENESS, heartbeat_deadline_ns
from agentwatch.detectors._liveness import missed_heartbeat as _missed_heartbeat
from agentwatch.sdk import semconv

from ._registry import AgentInfo

DETECTOR = LIVENESS


def missed_heartbeat(info: AgentInfo, now_ns: int, misses: float) -> Anomaly | None:
    """An anomaly when ``info``'s last heartbeat is more than ``misses`` intervals old."""
    return _missed_heartbeat(
        info.agent,
        info.service,
        last_heartbeat_ns=info.last_heartbeat_ns,
        interval_s=info.heartbeat_interval_s,
        now_ns=now_ns,
        misses=misses,
    )


class AgentCount:
    """One :class:`AgentCountDetector` per cohort, fed the registry's counts each tick.

    An agent is live while its last heartbeat is within ``misses`` intervals (the deadline
    :func:`missed_heartbeat` judges by), lost past that deadline, and in neither count once its
    last heartbeat said ``stopped`` or while its interval is unknown.

    Args:
        misses: Missed heartbeat intervals that make an agent lost (the service's setting).
        make: Makes a cohort's detector (defaults: see :class:`AgentCountDetector`).

    Not thread-safe: the maintenance thread alone ticks it.
    """

    def __init__(
        self, misses: float, *, make: Callable[[], AgentCountDetector] = AgentCountDetector
    ) -> None:
        self.misses = misses
        self.make = make
        self._detectors: dict[str, AgentCountDetector] = {}

    def tick(self, agents: Iterable[AgentInfo], now_ns: int) -> list[Anomaly]:
        """Count each cohort's live and lost agents at ``now_ns``; the drops that start now."""
        live: dict[str, int] = {}
        lost: dict[str, dict[str, int]] = {}
        for info in agents:
            live.setdefault(info.service, 0)
            lost.setdefault(info.service, {})
            if info.status == semconv.STATUS_STOPPED:
                continue
            if not info.last_heartbeat_ns or info.heartbeat_interval_s <= 0:
                continue
            deadline_ns = heartbeat_deadline_ns(
                info.last_heartbeat_ns, info.heartbeat_interval_s, self.misses
            )
            if now_ns > deadline_ns:
                lost[info.service][info.agent] = deadline_ns
            else:
                live[info.service] += 1
        anomalies = []
        for service, count in live.items():
            detector = self._detectors.get(service)
            if detector is None:
                detector = self._detectors[service] = self.make()
            x = {"t_ns": now_ns, "live": count, "lost": lost[service]}
            anomaly = detector.observe(service, x)
            if anomaly is not None:
                anomalies.append(anomaly)
        return anomalies
