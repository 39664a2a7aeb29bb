"""Missed heartbeats, by timer: an agent is lost when its heartbeats stop, not on an event.

Runs on the service's maintenance tick over the agent registry; each agent's own heartbeat
interval (from its heartbeat spans) sets its deadline.
"""

from __future__ import annotations

import uuid

from agentwatch.detectors import Anomaly, Severity

from ._registry import AgentInfo

DETECTOR = "liveness"


def missed_heartbeat(info: AgentInfo, now_ns: int, misses: float) -> Anomaly | None:
    """An anomaly when ``info``'s last heartbeat is more than ``misses`` intervals old."""
    if not info.last_heartbeat_ns or info.heartbeat_interval_s <= 0:
        return None
    silent_s = (now_ns - info.last_heartbeat_ns) / 1e9
    missed = silent_s / info.heartbeat_interval_s
    if missed <= misses:
        return None
    return Anomaly(
        id=uuid.uuid4().hex,
        agent=info.agent,
        service=info.service,
        detector=DETECTOR,
        score=round(missed, 2),
        threshold=misses,
        severity=Severity.CRITICAL,
        onset_ns=info.last_heartbeat_ns + int(info.heartbeat_interval_s * 1e9),
        detected_ns=now_ns,
        evidence={
            "summary": (
                f"agent {info.agent} sent no heartbeat for {silent_s:.1f} s "
                f"({missed:.1f} intervals of {info.heartbeat_interval_s:g} s)"
            ),
            "last_heartbeat_ns": info.last_heartbeat_ns,
            "interval_s": info.heartbeat_interval_s,
            "expected": f"a heartbeat every {info.heartbeat_interval_s:g} s",
        },
    )
