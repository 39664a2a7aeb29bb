"""Liveness: missed heartbeats, judged by a timer rather than on an event.

An agent is lost when its heartbeats stop; nothing arrives to say so, so a caller evaluates every
watched agent on a periodic tick (the service's maintenance tick over its agent registry, the
scenario backtest's simulated tick). Pure and stateless: the caller keeps each agent's last
heartbeat time and interval and whether it already raised the loss.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from agentwatch.detectors._types import Anomaly, Severity

__all__ = ["LIVENESS", "heartbeat_deadline_ns", "missed_heartbeat"]

LIVENESS = "liveness"


def heartbeat_deadline_ns(last_heartbeat_ns: int, interval_s: float, misses: float) -> int:
    """When an agent whose last heartbeat was at ``last_heartbeat_ns`` becomes lost: ``misses``
    intervals later (past this time, not at it)."""
    return last_heartbeat_ns + int(misses * interval_s * 1e9)


def missed_heartbeat(
    agent: str,
    service: str,
    *,
    last_heartbeat_ns: int,
    interval_s: float,
    now_ns: int,
    misses: float,
    id_factory: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> Anomaly | None:
    """A CRITICAL anomaly when the last heartbeat is more than ``misses`` intervals old.

    Args:
        agent: The agent instance id.
        service: Its cohort.
        last_heartbeat_ns: Event time of its newest heartbeat (0: never beat; no anomaly).
        interval_s: Its heartbeat interval (<= 0: unknown; no anomaly).
        now_ns: The tick's time.
        misses: Intervals of silence that make the agent lost (> 1).
        id_factory: Makes ``Anomaly.id``.

    Returns:
        The anomaly (onset: when the first missed beat was due), or None.
    """
    if not last_heartbeat_ns or interval_s <= 0:
        return None
    if now_ns <= heartbeat_deadline_ns(last_heartbeat_ns, interval_s, misses):
        return None
    silent_s = (now_ns - last_heartbeat_ns) / 1e9
    missed = silent_s / interval_s
    return Anomaly(
        id=id_factory(),
        agent=agent,
        service=service,
        detector=LIVENESS,
        score=round(missed, 2),
        threshold=misses,
        severity=Severity.CRITICAL,
        onset_ns=last_heartbeat_ns + int(interval_s * 1e9),
        detected_ns=now_ns,
        evidence={
            "summary": (
                f"agent {agent} sent no heartbeat for {silent_s:.1f} s "
                f"({missed:.1f} intervals of {interval_s:g} s)"
            ),
            "last_heartbeat_ns": last_heartbeat_ns,
            "interval_s": interval_s,
            "expected": f"a heartbeat every {interval_s:g} s",
        },
    )
