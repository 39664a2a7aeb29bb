"""The agent count on the registry: who counts as live, lost, or neither."""

from __future__ import annotations

from agentwatch.collector._liveness import AgentCount, missed_heartbeat
from agentwatch.collector._registry import AgentInfo
from agentwatch.sdk import semconv

S = 1_000_000_000
T0_S = 1_700_000_000  # a heartbeat time of 0 means "never beat"


def agent(
    name: str, last_beat_s: int, *, status: str = "running", interval_s: float = 1.0
) -> AgentInfo:
    beat = (T0_S + last_beat_s) * S
    return AgentInfo(
        name,
        "workers",
        0,
        beat,
        last_heartbeat_ns=beat,
        heartbeat_interval_s=interval_s,
        status=status,
    )


def test_lost_agents_count_by_the_deadline_missed_heartbeat_uses() -> None:
    count = AgentCount(misses=3.0)
    fleet = [agent(f"a{i}", 0) for i in range(8)]
    for t in range(1, 4):
        assert count.tick(fleet, (T0_S + t) * S) == []
    now = (T0_S + 3) * S + 1  # just past the deadline: 3 intervals after the last beat
    silent = [agent(f"a{i}", 0) for i in range(3)]
    fine = [agent(f"a{i}", 3) for i in range(3, 8)]
    assert all(missed_heartbeat(info, now, 3.0) for info in silent)
    [anomaly] = count.tick(silent + fine, now)
    assert anomaly.service == "workers"
    assert anomaly.evidence["lost_agents"] == ["a0", "a1", "a2"]
    assert (anomaly.evidence["live"], anomaly.evidence["live_before"]) == (5, 8)
    assert anomaly.onset_ns == (T0_S + 3) * S


def test_stopped_agents_and_unknown_intervals_are_not_counted() -> None:
    count = AgentCount(misses=3.0)
    fleet = [agent(f"a{i}", 0) for i in range(8)]
    assert count.tick(fleet, (T0_S + 2) * S) == []
    later = [
        *(agent(f"a{i}", 0, status=semconv.STATUS_STOPPED) for i in range(4)),
        *(agent(f"a{i}", 0, interval_s=0.0) for i in range(4, 6)),
        *(agent(f"a{i}", 9) for i in range(6, 8)),
    ]
    assert count.tick(later, (T0_S + 10) * S) == []  # six gone, none of them lost
