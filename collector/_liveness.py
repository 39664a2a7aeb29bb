"""Missed heartbeats, by timer: an agent is lost when its heartbeats stop, not on an event.

Runs on the service's maintenance tick over the agent registry; each agent's own heartbeat
interval (from its heartbeat spans) sets its deadline. The rule itself lives in
``agentwatch.detectors._liveness``, shared with the scenario backtest.
"""

from __future__ import annotations

from agentwatch.detectors import Anomaly
from agentwatch.detectors._liveness import LIVENESS
from agentwatch.detectors._liveness import missed_heartbeat as _missed_heartbeat

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
